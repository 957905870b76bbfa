//! Memory the replicated KV holds per key, for small values, measured by a counting
//! allocator: live heap bytes (the sizes requested from the allocator, so without
//! malloc's own per-block overhead) of a `Kv` holding 10,000 keys, minus before, divided by
//! the number of keys. Also the encoded size per key (key + bincode value: what the disk
//! record and an anti-entropy entry carry).
//!
//! The `Kv` is built the way a restarted node builds it, from a snapshot of its disk; the
//! snapshot is built first and is not counted (it is the driver's copy, not the KV's).
//!
//! `cargo bench -p hawser-core --bench kv_memory`

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use hawser_core::crdt::{Actor, CounterOp, FieldOp, Map, MapOp, SetOp, TypedOp};
use hawser_core::kv::{Kv, KvConfig};
use hawser_core::{NodeId, Snapshot, wire};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

const KEYS: usize = 10_000;

fn update(name: &str, op: TypedOp) -> MapOp {
    MapOp::Update(vec![FieldOp::Update {
        name: name.to_string(),
        op,
    }])
}

/// The value of every key: `ops` applied in turn by actors 1, 2, 3, 1, 2, ...
fn value(ops: &[MapOp]) -> Map {
    let mut m = Map::new();
    for (i, op) in ops.iter().enumerate() {
        m.apply(Actor::new(NodeId(1 + i as u64 % 3), 7), op)
            .expect("valid op");
    }
    m
}

fn measure(what: &str, ops: &[MapOp]) {
    let map = value(ops);
    let mut disk = BTreeMap::new();
    let mut encoded = 0;
    for i in 0..KEYS {
        let key = format!("key-{i:05}");
        let bytes = wire::encode(&map);
        encoded += key.len() + bytes.len();
        disk.insert(format!("kv/v/{key}").into_bytes(), bytes);
    }
    let snapshot = Snapshot(disk);
    // One value on its own: the heap a clone of it holds (B-tree nodes are allocated
    // whole, 11 slots, however few entries they hold).
    let before = counting_alloc::live();
    let one = map.clone();
    let value_heap = counting_alloc::live() - before;
    drop(one);
    let before = counting_alloc::live();
    let kv = Kv::new(KvConfig::default(), &snapshot).expect("kv");
    let bytes = counting_alloc::live() - before;
    assert_eq!(kv.len(), KEYS);
    println!(
        "kv, {KEYS} keys of {what}: {bytes} heap bytes live ({:.2} MiB), {} B/key in memory; \
         of which the value's own heap {value_heap} B (Map inline {} B); \
         {} B/key encoded (key + value), value {} B, key 9 B",
        bytes as f64 / (1 << 20) as f64,
        bytes / KEYS,
        std::mem::size_of::<Map>(),
        encoded / KEYS,
        wire::encode(&map).len(),
    );
    drop(kv);
}

fn main() {
    let inc = |n| TypedOp::Counter(CounterOp::Increment(NonZeroU64::new(n).expect("n > 0")));
    measure("{\"n:counter\"} written by 1 node", &[update("n", inc(5))]);
    measure(
        "{\"n:counter\"} written by 3 nodes",
        &[
            update("n", inc(5)),
            update("n", inc(3)),
            update("n", inc(7)),
        ],
    );
    measure(
        "{\"s:set\"} of 10 elements (\"element-0\"..), added by 1 node",
        &[update(
            "s",
            TypedOp::Set(SetOp::AddAll(
                (0..10).map(|i| format!("element-{i}")).collect(),
            )),
        )],
    );
    measure(
        "{\"s:set\"} of 10 elements, added one by one by 3 nodes",
        &(0..10)
            .map(|i| update("s", TypedOp::Set(SetOp::Add(format!("element-{i}")))))
            .collect::<Vec<_>>(),
    );
}
