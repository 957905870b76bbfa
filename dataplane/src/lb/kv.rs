//! How VIPs and their backends live in the replicated KV.
//!
//! VIPs are spread over [`BUCKETS`] keys, `lb/vips/00` .. `lb/vips/ff`, by a hash of
//! their canonical spelling. Each key's value is a map with one field per VIP (a map
//! field named by the VIP, e.g. `tcp://11.1.2.3:80:map`), and in it a set field
//! `backends:set` of backend elements (`"<node> <ip:port> <weight>"`, see
//! [`Backend::element`]):
//!
//! ```json
//! {"tcp://11.1.2.3:80:map": {"backends:set": ["00000000000000ab 198.18.1.2:8080 1"]}}
//! ```
//!
//! Why this shape:
//! - the set is add-wins, so nodes adding and removing their own backends concurrently,
//!   even on two sides of a partition, merge without losing any: a remove drops only the
//!   elements its node had seen;
//! - a node that withdraws the last backend it sees removes the whole VIP field, and a
//!   field removal is observed-remove too, so a backend added concurrently elsewhere
//!   survives (with its VIP) while a VIP nobody serves any more leaves nothing behind;
//! - two nodes withdrawing the last two backends concurrently each see the other's and
//!   so remove only their own element, which leaves the VIP's field holding an empty set
//!   (a map field stays until removed). Every op [`publish`] and [`withdraw`] build
//!   therefore also removes the fields of the key that hold no backend, so such
//!   leftovers last only until the next write to their key;
//! - a fixed number of keys keeps the KV bounded however many VIPs come and go (the KV
//!   never deletes a key, so one key per VIP would grow with every VIP ever used), while
//!   a change still touches one key of a few dozen VIPs, not one key holding them all.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use hawser_core::NodeId;
use hawser_core::crdt::{FieldKey, FieldOp, FieldType, Map, MapOp, SetOp, TypedOp};

use super::vip::{Backend, Vip};

/// The prefix of every load-balancer key.
pub const PREFIX: &str = "lb/vips/";
/// How many keys the VIPs are spread over (a cluster-wide constant).
pub const BUCKETS: u32 = 256;
/// The set field of a VIP's map that holds its backends.
const BACKENDS: &str = "backends";

/// The key a VIP lives under: FNV-1a of its canonical spelling, modulo [`BUCKETS`].
pub fn key_of(vip: &Vip) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in vip.to_string().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{PREFIX}{:02x}", h % BUCKETS)
}

/// The elements `node` has published for `addr` under `vip`, as `value` holds them.
fn mine(value: Option<&Map>, vip: &Vip, node: NodeId, addr: SocketAddr) -> Vec<String> {
    let Some(set) = value
        .and_then(|m| m.store().map(&vip.to_string()))
        .and_then(|v| v.set(BACKENDS))
    else {
        return Vec::new();
    };
    set.iter()
        .filter(|e| Backend::from_element(e).is_ok_and(|b| b.node == node && b.addr == addr))
        .map(str::to_owned)
        .collect()
}

/// Removals of the VIP fields in `value`, other than `except`'s, that hold no backend
/// (left by concurrent last withdrawals, see the module docs). Fields that are not VIPs
/// are not this module's and stay.
fn sweep(value: Option<&Map>, except: &Vip) -> Vec<FieldOp> {
    let Some(m) = value else {
        return Vec::new();
    };
    let except = except.to_string();
    m.store()
        .keys()
        .into_iter()
        .filter(|f| f.kind == FieldType::Map && f.name != except)
        .filter(|f| f.name.parse::<Vip>().is_ok_and(|v| v.to_string() == f.name))
        .filter(|f| {
            m.store()
                .map(&f.name)
                .and_then(|v| v.set(BACKENDS))
                .is_none_or(|s| s.is_empty())
        })
        .map(FieldOp::Remove)
        .collect()
}

fn on_vip(value: Option<&Map>, vip: &Vip, ops: Vec<FieldOp>) -> MapOp {
    let mut all = sweep(value, vip);
    all.push(FieldOp::Update {
        name: vip.to_string(),
        op: TypedOp::Map(MapOp::Update(ops)),
    });
    MapOp::Update(all)
}

fn on_backends(op: SetOp) -> FieldOp {
    FieldOp::Update {
        name: BACKENDS.into(),
        op: TypedOp::Set(op),
    }
}

/// The op that publishes `backend` under `vip` on the key's current `value`: it adds the
/// backend's element and, in the same op, removes what its node published before for
/// the same address (so a new weight replaces the old one).
pub fn publish(value: Option<&Map>, vip: &Vip, backend: Backend) -> MapOp {
    let element = backend.element();
    let old: Vec<String> = mine(value, vip, backend.node, backend.addr)
        .into_iter()
        .filter(|e| *e != element)
        .collect();
    let mut ops = Vec::new();
    if !old.is_empty() {
        ops.push(on_backends(SetOp::RemoveAll(old)));
    }
    ops.push(on_backends(SetOp::Add(element)));
    on_vip(value, vip, ops)
}

/// The op that withdraws `node`'s backend `addr` from `vip`, or `None` if `value` holds
/// none. When it is the last backend this node sees, the whole VIP is removed.
pub fn withdraw(value: Option<&Map>, vip: &Vip, node: NodeId, addr: SocketAddr) -> Option<MapOp> {
    let old = mine(value, vip, node, addr);
    if old.is_empty() {
        return None;
    }
    let all = value
        .and_then(|m| m.store().map(&vip.to_string()))
        .and_then(|v| v.set(BACKENDS))
        .map_or(0, |s| s.len());
    if all == old.len() {
        let mut ops = sweep(value, vip);
        ops.push(FieldOp::Remove(FieldKey::new(
            vip.to_string(),
            FieldType::Map,
        )));
        return Some(MapOp::Update(ops));
    }
    Some(on_vip(value, vip, vec![on_backends(SetOp::RemoveAll(old))]))
}

/// What one key holds: its VIPs and their backends (sorted), and how many fields or
/// elements did not parse (written by a buggy or hostile node: skipped and counted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub vips: BTreeMap<Vip, Vec<Backend>>,
    pub malformed: u64,
}

/// Read one key's value. Never fails: what does not parse is counted in `malformed`.
/// Two elements for the same node and address (only a node writing from two lives at
/// once can leave that) count as one, with the lower weight.
pub fn read(value: &Map) -> Bucket {
    let mut bucket = Bucket::default();
    for field in value.store().keys() {
        let (Ok(vip), FieldType::Map) = (field.name.parse::<Vip>(), field.kind) else {
            bucket.malformed += 1;
            continue;
        };
        if vip.to_string() != field.name {
            // Not canonical: a node that did not write through this module.
            bucket.malformed += 1;
            continue;
        }
        let mut backends: BTreeMap<(NodeId, SocketAddr), u32> = BTreeMap::new();
        let set = value.store().map(&field.name).and_then(|m| m.set(BACKENDS));
        for e in set.into_iter().flat_map(|s| s.iter()) {
            match Backend::from_element(e) {
                Ok(b) => {
                    let w = backends.entry((b.node, b.addr)).or_insert(b.weight);
                    *w = (*w).min(b.weight);
                }
                Err(_) => bucket.malformed += 1,
            }
        }
        if backends.is_empty() {
            continue;
        }
        let list = backends
            .into_iter()
            .map(|((node, addr), weight)| Backend { node, addr, weight })
            .collect();
        bucket.vips.insert(vip, list);
    }
    bucket
}

/// Every VIP in the KV, kept up to date key by key: a change to one key re-reads that
/// key alone (a few dozen VIPs), not all of them.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    buckets: BTreeMap<String, Bucket>,
}

impl Catalog {
    /// Take `key`'s new value (`None`: the key holds nothing). Keys outside [`PREFIX`]
    /// are ignored.
    pub fn update(&mut self, key: &str, value: Option<&Map>) {
        if !key.starts_with(PREFIX) {
            return;
        }
        match value.map(read) {
            Some(b) if !(b.vips.is_empty() && b.malformed == 0) => {
                self.buckets.insert(key.to_owned(), b);
            }
            _ => {
                self.buckets.remove(key);
            }
        }
    }

    /// Every VIP and its backends. A VIP found under two keys (only a node not writing
    /// through this module could do that) has the backends of both.
    pub fn vips(&self) -> BTreeMap<Vip, Vec<Backend>> {
        let mut out: BTreeMap<Vip, Vec<Backend>> = BTreeMap::new();
        for b in self.buckets.values() {
            for (vip, backends) in &b.vips {
                out.entry(vip.clone())
                    .or_default()
                    .extend(backends.iter().copied());
            }
        }
        out
    }

    /// Fields and elements that did not parse, over all keys.
    pub fn malformed(&self) -> u64 {
        self.buckets.values().map(|b| b.malformed).sum()
    }
}

#[cfg(test)]
mod tests {
    use hawser_core::crdt::Actor;

    use super::*;

    fn b(node: u64, addr: &str, weight: u32) -> Backend {
        Backend::test(node, addr, weight)
    }

    /// A replica of one key, writing as `node`.
    struct Replica {
        node: u64,
        value: Map,
    }

    impl Replica {
        fn new(node: u64) -> Replica {
            Replica {
                node,
                value: Map::default(),
            }
        }
        fn apply(&mut self, op: &MapOp) {
            self.value
                .apply(Actor::new(NodeId(self.node), 1), op)
                .unwrap();
        }
        fn publish(&mut self, vip: &Vip, addr: &str, weight: u32) {
            let op = publish(Some(&self.value), vip, b(self.node, addr, weight));
            self.apply(&op);
        }
        fn withdraw(&mut self, vip: &Vip, addr: &str) {
            let op = withdraw(
                Some(&self.value),
                vip,
                NodeId(self.node),
                addr.parse().unwrap(),
            );
            self.apply(&op.expect("something to withdraw"));
        }
    }

    #[test]
    fn keys_are_stable_and_spread() {
        let vip: Vip = "tcp://11.1.2.3:80".parse().unwrap();
        // The key is part of the cluster's format (FNV-1a, checked against an independent
        // computation): it must never change between versions.
        assert_eq!(key_of(&vip), "lb/vips/42");
        let keys: std::collections::BTreeSet<String> = (0..1000)
            .map(|i| {
                key_of(
                    &format!("tcp://11.0.{}.{}:80", i / 250, i % 250 + 1)
                        .parse()
                        .unwrap(),
                )
            })
            .collect();
        assert!(keys.len() > 200, "{} keys for 1000 VIPs", keys.len());
    }

    #[test]
    fn a_new_weight_replaces_the_old_one() {
        let vip: Vip = "tcp://11.1.2.3:80".parse().unwrap();
        let mut r = Replica::new(1);
        r.publish(&vip, "198.18.1.2:8080", 1);
        r.publish(&vip, "198.18.1.2:8080", 0);
        r.publish(&vip, "198.18.1.3:8080", 5);
        let bucket = read(&r.value);
        assert_eq!(
            bucket.vips[&vip],
            vec![b(1, "198.18.1.2:8080", 0), b(1, "198.18.1.3:8080", 5)]
        );
        assert_eq!(bucket.malformed, 0);
    }

    #[test]
    fn concurrent_adds_and_removes_across_a_partition_lose_nothing() {
        let vip: Vip = "tcp://web:80".parse().unwrap();
        let (mut a, mut c) = (Replica::new(1), Replica::new(2));
        a.publish(&vip, "198.18.1.2:80", 1);
        c.value.merge(&a.value);
        // Partition: A withdraws its (only, as it sees it) backend, which removes the
        // VIP; C adds its own backend concurrently.
        a.withdraw(&vip, "198.18.1.2:80");
        c.publish(&vip, "198.18.2.2:80", 1);
        // Heal, both ways.
        let (av, cv) = (a.value.clone(), c.value.clone());
        a.value.merge(&cv);
        c.value.merge(&av);
        assert_eq!(a.value, c.value);
        assert_eq!(read(&a.value).vips[&vip], vec![b(2, "198.18.2.2:80", 1)]);
    }

    #[test]
    fn the_last_withdrawal_removes_the_vip() {
        let vip: Vip = "udp://[fd01:c::1]:53".parse().unwrap();
        let mut r = Replica::new(1);
        r.publish(&vip, "[2001:db8::1]:53", 1);
        r.publish(&vip, "[2001:db8::2]:53", 1);
        r.withdraw(&vip, "[2001:db8::1]:53");
        assert_eq!(read(&r.value).vips.len(), 1);
        r.withdraw(&vip, "[2001:db8::2]:53");
        assert!(read(&r.value).vips.is_empty());
        assert!(r.value.store().is_empty(), "nothing left of the VIP");
        assert!(
            withdraw(
                Some(&r.value),
                &vip,
                NodeId(1),
                "[2001:db8::2]:53".parse().unwrap()
            )
            .is_none()
        );
    }

    #[test]
    fn concurrent_last_withdrawals_leave_nothing_after_the_next_write() {
        let vip: Vip = "tcp://11.1.2.3:80".parse().unwrap();
        let (mut a, mut c) = (Replica::new(1), Replica::new(2));
        a.publish(&vip, "198.18.1.2:80", 1);
        c.publish(&vip, "198.18.2.2:80", 1);
        let (av, cv) = (a.value.clone(), c.value.clone());
        a.value.merge(&cv);
        c.value.merge(&av);
        // Each withdraws its own, seeing the other's: neither removes the VIP.
        a.withdraw(&vip, "198.18.1.2:80");
        c.withdraw(&vip, "198.18.2.2:80");
        let cv = c.value.clone();
        a.value.merge(&cv);
        assert!(read(&a.value).vips.is_empty());
        assert_eq!(a.value.store().len(), 1, "an empty field is left");
        // The next write to the key, for any VIP, sweeps it.
        let other: Vip = "udp://11.1.2.4:53".parse().unwrap();
        a.publish(&other, "198.18.1.2:53", 1);
        assert_eq!(read(&a.value).vips.len(), 1);
        assert_eq!(a.value.store().len(), 1, "only the new VIP's field");
        // A sweep is observed-remove: a backend added concurrently to the swept VIP
        // survives it, with its VIP.
        let mut d = Replica::new(3);
        d.value.merge(&cv);
        d.publish(&vip, "198.18.3.2:80", 1);
        a.value.merge(&d.value);
        assert_eq!(read(&a.value).vips[&vip], vec![b(3, "198.18.3.2:80", 1)]);
        a.withdraw(&other, "198.18.1.2:53");
        assert_eq!(read(&a.value).vips.len(), 1);
    }

    #[test]
    fn the_catalog_follows_keys_one_by_one() {
        let vip: Vip = "tcp://11.1.2.3:80".parse().unwrap();
        let mut r = Replica::new(1);
        r.publish(&vip, "198.18.1.2:80", 1);
        let mut c = Catalog::default();
        c.update("other/key", Some(&r.value));
        assert!(c.vips().is_empty());
        c.update(&key_of(&vip), Some(&r.value));
        assert_eq!(c.vips()[&vip], vec![b(1, "198.18.1.2:80", 1)]);
        r.withdraw(&vip, "198.18.1.2:80");
        c.update(&key_of(&vip), Some(&r.value));
        assert!(c.vips().is_empty());
    }

    #[test]
    fn malformed_entries_are_counted_not_trusted() {
        let mut r = Replica::new(9);
        let op = |name: &str, element: &str| {
            MapOp::Update(vec![FieldOp::Update {
                name: name.into(),
                op: TypedOp::Map(MapOp::Update(vec![on_backends(SetOp::Add(element.into()))])),
            }])
        };
        r.apply(&op("tcp://11.1.2.3:80", "garbage"));
        r.apply(&op("tcp://11.1.2.3:80", "0000000000000001 198.18.1.2:80 1"));
        r.apply(&op("not a vip", "0000000000000001 198.18.1.2:80 1"));
        r.apply(&op("TCP://11.1.2.4:80", "0000000000000001 198.18.1.2:80 1"));
        r.apply(&MapOp::Update(vec![FieldOp::Update {
            name: "x".into(),
            op: TypedOp::Counter(hawser_core::crdt::CounterOp::Increment(
                1.try_into().unwrap(),
            )),
        }]));
        let bucket = read(&r.value);
        assert_eq!(bucket.malformed, 4);
        assert_eq!(bucket.vips.len(), 1);
    }
}
