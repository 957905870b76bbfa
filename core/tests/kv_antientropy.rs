//! Anti-entropy costs what differs: two `Kv` replicas of 10,000 keys, 10 of them
//! different, hosted by two real `Node`s linked over the authenticated link layer and
//! pumped by hand. One anti-entropy round (A's greeting round with B) must converge them,
//! and every `KvMessage` exchanged must add up to under 5% of the bytes of shipping the
//! whole store.
//!
//! Prints the figures quoted in docs/benchmarks.md:
//! `cargo test -p hawser-core --release --test kv_antientropy -- --nocapture`

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use hawser_core::crdt::{Actor, CounterOp, FieldOp, Map, MapOp, SetOp, TypedOp};
use hawser_core::kv::{BUCKETS, Kv, KvConfig, KvEvent, KvMessage, KvTimer, MAX_BATCH, bucket_of};
use hawser_core::loopback;
use hawser_core::wire::{self, WireError};
use hawser_core::{
    Addr, Ctx, DownReason, Instant, Layered, LinkConfig, Node, NodeId, Protocol, Snapshot,
};

const KEYS: usize = 10_000;
const DIFFERING: usize = 10;

/// Hosts a `Kv` as the stack would for anti-entropy (every linked peer is a neighbour),
/// and records every message it receives: its kind and its size in bytes.
struct Host {
    kv: Kv,
    received: Vec<(&'static str, usize)>,
}

type C<'a> = Ctx<'a, KvTimer, KvEvent>;

impl Protocol for Host {
    type Timer = KvTimer;
    type Event = KvEvent;
    fn start(&mut self, ctx: &mut C<'_>) {
        self.kv.start(ctx);
    }
    fn link_up(&mut self, peer: NodeId, _: &Addr, ctx: &mut C<'_>) {
        self.kv.neighbor_up(peer, ctx);
    }
    fn link_down(&mut self, peer: NodeId, _: DownReason, ctx: &mut C<'_>) {
        self.kv.neighbor_down(peer, ctx);
    }
    fn message(&mut self, from: NodeId, body: &[u8], ctx: &mut C<'_>) -> Result<(), WireError> {
        let kind = match KvMessage::decode(body, usize::MAX)? {
            KvMessage::Delta { .. } => "Delta",
            KvMessage::Digest { .. } => "Digest",
            KvMessage::Summaries { .. } => "Summaries",
            KvMessage::Entries { .. } => "Entries",
            KvMessage::Want { .. } => "Want",
            KvMessage::Piece { .. } => "Piece",
        };
        self.received.push((kind, body.len()));
        self.kv.message(from, body, ctx)
    }
    fn timer(&mut self, timer: KvTimer, ctx: &mut C<'_>) {
        self.kv.timer(timer, ctx);
    }
}

fn node(id: u64, disk: &Snapshot) -> Node<Host> {
    node_with(id, disk, LinkConfig::default(), KvConfig::default())
}

fn node_with(id: u64, disk: &Snapshot, link: LinkConfig, kv: KvConfig) -> Node<Host> {
    let host = Host {
        kv: Kv::new(kv, disk).unwrap(),
        received: Vec::new(),
    };
    loopback::node(id, link, host)
}

/// Frames and their bytes (header and authentication tag included) moved each way.
#[derive(Default, Debug)]
struct Wire {
    frames: usize,
    bytes: usize,
}

/// A dials B; pump the handshake through. Returns their connection ids.
fn link(a: &mut Node<Host>, b: &mut Node<Host>) -> (hawser_core::ConnId, hawser_core::ConnId) {
    let (ca, cb) = loopback::connect(a, b, Addr::new("n2").unwrap()).expect("a dials");
    pump(a, ca, b, cb);
    assert!(a.links().is_linked(NodeId(2)));
    (ca, cb)
}

/// Move frames both ways until both nodes are quiet (no timers fire: time stands still).
fn pump(
    a: &mut Node<Host>,
    ca: hawser_core::ConnId,
    b: &mut Node<Host>,
    cb: hawser_core::ConnId,
) -> Wire {
    let mut w = Wire::default();
    loopback::pump(a, ca, b, cb, |_, frame| {
        w.frames += 1;
        w.bytes += frame.len();
    });
    w
}

fn update(name: &str, op: TypedOp) -> MapOp {
    MapOp::Update(vec![FieldOp::Update {
        name: name.to_string(),
        op,
    }])
}

fn inc(n: u64) -> TypedOp {
    TypedOp::Counter(CounterOp::Increment(NonZeroU64::new(n).unwrap()))
}

fn actor(n: u64) -> Actor {
    Actor::new(NodeId(n), 7)
}

fn key(i: usize) -> String {
    format!("key-{i:05}")
}

/// What one exchange cost.
struct Figures {
    buckets: usize,
    summarised: usize,
    a_to_b: Vec<(&'static str, usize)>,
    b_to_a: Vec<(&'static str, usize)>,
    round_bytes: usize,
    wire: Wire,
    whole_messages: usize,
    whole_bytes: usize,
}

/// Build A and B holding `value(i)` at every key, then make `DIFFERING` keys differ (a
/// third changed only at A, a third only at B, the rest concurrently at both), run one
/// round initiated by A, and check that A and B converged to the merge.
fn exchange(value: impl Fn(usize) -> Map) -> Figures {
    let differing: Vec<usize> = (0..DIFFERING).map(|d| d * 997 % KEYS).collect();
    let mut da = BTreeMap::new();
    let mut db = BTreeMap::new();
    let mut expected = BTreeMap::new();
    for i in 0..KEYS {
        let v = value(i);
        let (mut va, mut vb) = (v.clone(), v);
        if let Some(d) = differing.iter().position(|&k| k == i) {
            if d % 3 != 1 {
                va.apply(actor(10), &update("n", inc(1))).unwrap();
            }
            if d % 3 != 0 {
                vb.apply(actor(20), &update("extra", inc(2))).unwrap();
            }
        }
        let mut merged = va.clone();
        merged.merge(&vb);
        expected.insert(key(i), merged);
        da.insert(format!("kv/v/{}", key(i)).into_bytes(), wire::encode(&va));
        db.insert(format!("kv/v/{}", key(i)).into_bytes(), wire::encode(&vb));
    }
    let (mut a, mut b) = (node(1, &Snapshot(da)), node(2, &Snapshot(db)));
    assert_eq!((a.protocol().kv.len(), b.protocol().kv.len()), (KEYS, KEYS));
    // The buckets whose digests differ, and how many keys they hold (B summarises those).
    let differ: Vec<bool> = (0..BUCKETS)
        .map(|i| a.protocol().kv.digest()[i] != b.protocol().kv.digest()[i])
        .collect();
    let buckets = differ.iter().filter(|&&d| d).count();
    assert!(buckets > 0 && buckets <= DIFFERING);
    let summarised = (0..KEYS).filter(|&i| differ[bucket_of(&key(i))]).count();

    // Link A and B (the handshake is not counted).
    let now = Instant::ZERO;
    let (ca, cb) = link(&mut a, &mut b);

    // A's greeting round with B (what the `Greet` timer does once the link is up).
    a.command(now, |h, ctx| h.kv.timer(KvTimer::Greet(NodeId(2)), ctx));
    let wire = pump(&mut a, ca, &mut b, cb);

    let (ka, kb) = (&a.protocol().kv, &b.protocol().kv);
    assert_eq!(ka.digest(), kb.digest(), "one round converges A and B");
    for (k, v) in &expected {
        assert_eq!(ka.get(k), Some(v), "A holds the merge at {k}");
        assert_eq!(kb.get(k), Some(v), "B holds the merge at {k}");
    }
    // A repairs the keys B changed, B those A changed (keys changed at both: both).
    let changed_at = |side: usize| (0..DIFFERING).filter(|d| d % 3 != side).count() as u64;
    assert_eq!(
        (ka.counters().repaired_keys, kb.counters().repaired_keys),
        (changed_at(0), changed_at(1))
    );

    // Every KvMessage of the round, by direction (what B and A received).
    let a_to_b = b.protocol().received.clone();
    let b_to_a = a.protocol().received.clone();
    let round_bytes = a_to_b.iter().chain(&b_to_a).map(|(_, n)| n).sum();

    // The alternative: ship the whole store, as `Entries` messages of `MAX_BATCH` keys.
    let all: Vec<(String, Map)> = a
        .protocol()
        .kv
        .scan("")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let whole: Vec<usize> = all
        .chunks(MAX_BATCH)
        .map(|c| {
            KvMessage::Entries {
                entries: c.to_vec(),
            }
            .encode()
            .len()
        })
        .collect();
    Figures {
        buckets,
        summarised,
        a_to_b,
        b_to_a,
        round_bytes,
        wire,
        whole_messages: whole.len(),
        whole_bytes: whole.iter().sum(),
    }
}

fn report(what: &str, f: &Figures) {
    let kinds = |msgs: &[(&str, usize)]| {
        let v: Vec<String> = msgs.iter().map(|(k, n)| format!("{k} {n} B")).collect();
        v.join(", ")
    };
    println!(
        "{what}: {KEYS} keys, {DIFFERING} differing ({} buckets, {} keys in them): one round = {} KvMessages, {} B \
         (A→B: {}; B→A: {}); on the wire (frames, header + tag) {} frames, {} B; \
         whole store = {} Entries messages, {} B; round / whole = {:.2}%",
        f.buckets,
        f.summarised,
        f.a_to_b.len() + f.b_to_a.len(),
        f.round_bytes,
        kinds(&f.a_to_b),
        kinds(&f.b_to_a),
        f.wire.frames,
        f.wire.bytes,
        f.whole_messages,
        f.whole_bytes,
        100.0 * f.round_bytes as f64 / f.whole_bytes as f64,
    );
}

fn check(f: &Figures) {
    assert!(
        f.round_bytes * 20 < f.whole_bytes,
        "anti-entropy for {DIFFERING} differing keys of {KEYS} must cost under 5% of the \
         whole store: {} B vs {} B",
        f.round_bytes,
        f.whole_bytes
    );
    // Digest, Summaries, then at most Entries both ways and a Want and its answer.
    let messages = f.a_to_b.len() + f.b_to_a.len();
    assert!(messages <= 6, "{messages} messages");
}

#[test]
fn ten_differing_keys_of_ten_thousand_cost_a_few_percent_of_the_store() {
    // Every key a counter field written by three nodes.
    let f = exchange(|i| {
        let mut m = Map::new();
        for a in 1..=3 {
            m.apply(actor(a), &update("n", inc(1 + (i as u64 + a) % 5)))
                .unwrap();
        }
        m
    });
    report("counter values", &f);
    check(&f);
}

#[test]
fn same_with_ten_element_sets() {
    let f = exchange(|i| {
        let mut m = Map::new();
        let elements = (0..10)
            .map(|e| format!("element-{}", (i + e) % 50))
            .collect();
        m.apply(
            actor(1),
            &update("s", TypedOp::Set(SetOp::AddAll(elements))),
        )
        .unwrap();
        m
    });
    report("10-element set values", &f);
    check(&f);
}

/// A and B linked over 64 KiB frames; A holds `big` (a set grown by two actors' merged
/// adds to ~300 KB, as concurrent writers can make one), B nothing. One greeting round.
fn send_big(kv: KvConfig) -> (Node<Host>, Node<Host>, Map) {
    let mut big = Map::new();
    for a in [1, 2] {
        let items: Vec<String> = (0..10_000).map(|i| format!("element-{a}-{i:06}")).collect();
        big.apply(actor(a), &update("s", TypedOp::Set(SetOp::AddAll(items))))
            .unwrap();
    }
    assert!(wire::encode(&big).len() > 200_000);
    let disk = Snapshot(BTreeMap::from([(b"kv/v/big".to_vec(), wire::encode(&big))]));
    let small_frames = LinkConfig {
        max_frame: 64 << 10,
        ..LinkConfig::default()
    };
    let mut a = node_with(1, &disk, small_frames.clone(), kv.clone());
    let mut b = node_with(2, &Snapshot::default(), small_frames, kv);
    let now = Instant::ZERO;
    let (ca, cb) = link(&mut a, &mut b);
    a.command(now, |h, ctx| h.kv.timer(KvTimer::Greet(NodeId(2)), ctx));
    pump(&mut a, ca, &mut b, cb);
    (a, b, big)
}

/// A merged value larger than a frame was never sent by anti-entropy, and nothing said
/// so: a node that lacked it never got it. Now it goes in pieces.
#[test]
fn a_value_larger_than_a_frame_arrives_in_pieces() {
    let (a, b, big) = send_big(KvConfig::default());
    assert_eq!(b.protocol().kv.get("big"), Some(&big));
    assert_eq!(a.protocol().kv.counters().pieced_sent, 1);
    assert_eq!(b.protocol().kv.counters().pieced_received, 1);
    assert!(
        b.protocol()
            .received
            .iter()
            .filter(|(k, _)| *k == "Piece")
            .count()
            > 4
    );
}

/// Past `max_repair_value` a value cannot travel: counted and reported, not silent.
#[test]
fn a_value_past_the_repair_limit_is_counted_and_reported() {
    let kv = KvConfig {
        max_value: 64 << 10,
        max_repair_value: 100 << 10,
        ..KvConfig::default()
    };
    let (mut a, b, _) = send_big(kv);
    assert_eq!(b.protocol().kv.get("big"), None);
    assert_eq!(a.protocol().kv.counters().unreplicable, 1);
    let reported = std::iter::from_fn(|| a.poll_event()).any(|e| {
        matches!(e, hawser_core::Event::App(KvEvent::Unreplicable { ref key, .. }) if key == "big")
    });
    assert!(reported);
}
