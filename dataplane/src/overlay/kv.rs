//! How overlay networks live in the replicated KV.
//!
//! Each network's nodes are spread over [`BUCKETS`] keys, `overlay/<net>/00` ..
//! `overlay/<net>/3f`, by node id. Each key's value is a map with one map field per
//! node, named by its id (16 hex digits), which only that node writes (except to
//! forget it, below). In it, a set field `slots` holds the slots the node claims
//! (decimal; normally one), and a register `vtep` its VTEP record
//! ([`super::vtep::VtepRecord`]):
//!
//! ```json
//! {"00000000000000ab:map": {"slots:set": ["17"],
//!   "vtep:register": "underlay=198.18.0.1 vtep=100.64.0.18 mac=ce:2d:f4:2d:0d:50 subnet=9.0.17.0/24"}}
//! ```
//!
//! Why this shape:
//! - a claim lives in its claimant's own field, so two nodes claiming the same slot on
//!   two sides of a partition never write the same field: after the heal both claims
//!   are there, and [`super::alloc::resolve`] decides between them, the same way on
//!   every node;
//! - the record is a register: only its node writes it, one write after another, and
//!   it describes the slot the node holds now (readers check it against the
//!   resolution, see [`super::desired`]);
//! - the slots are a set rather than a register: a node only ever replaces its own claim, so it
//!   normally holds one element; two lives of one node writing at once (a restored old
//!   disk) leave two, which stay visible rather than one silently winning;
//! - a node that has been gone longer than the forget time is forgotten by removing its
//!   whole field, an observed remove: a write it makes concurrently (it came back)
//!   survives;
//! - a fixed number of keys bounds the KV (it never deletes keys) however many nodes
//!   come and go, while a node's write touches one key of a few dozen nodes.

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::NodeId;
use hawser_core::crdt::{FieldKey, FieldOp, FieldType, Map, MapOp, RegisterOp, SetOp, TypedOp};

use super::share::Slot;
use super::vtep::VtepRecord;

/// The prefix of every overlay key.
pub const PREFIX: &str = "overlay/";
/// How many keys a network's nodes are spread over (a cluster-wide constant).
pub const BUCKETS: u64 = 64;
/// The set field of a node's map that holds its claimed slots.
const SLOTS: &str = "slots";
/// The register field of a node's map that holds its VTEP record.
const VTEP: &str = "vtep";

/// The prefix of network `net`'s keys.
pub fn net_prefix(net: &str) -> String {
    format!("{PREFIX}{net}/")
}

/// The key `node`'s entry in network `net` lives under.
pub fn key_of(net: &str, node: NodeId) -> String {
    format!("{}{:02x}", net_prefix(net), node.0 % BUCKETS)
}

fn field_of(node: NodeId) -> String {
    format!("{:016x}", node.0)
}

/// A node's field name back to its id: exactly 16 lower-case hex digits.
fn node_of(field: &str) -> Option<NodeId> {
    let hex = field.len() == 16
        && field
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| u64::from_str_radix(field, 16).ok().map(NodeId))
        .flatten()
}

fn slot_of(element: &str) -> Option<Slot> {
    let canonical = element == "0" || !element.starts_with(['0', '+']);
    canonical.then(|| element.parse().ok().map(Slot)).flatten()
}

/// An op on `node`'s own field.
fn on_node(node: NodeId, ops: Vec<FieldOp>) -> MapOp {
    MapOp::Update(vec![FieldOp::Update {
        name: field_of(node),
        op: TypedOp::Map(MapOp::Update(ops)),
    }])
}

/// The op by which `node` claims `slot`, on its key's current `value`: it adds the
/// slot and, in the same op, drops every other slot the node claims, so a node that
/// moves never holds two.
pub fn claim(value: Option<&Map>, node: NodeId, slot: Slot) -> MapOp {
    let old: Vec<String> = value
        .and_then(|m| m.store().map(&field_of(node)))
        .and_then(|f| f.set(SLOTS))
        .map(|s| {
            s.iter()
                .filter(|e| slot_of(e) != Some(slot))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut ops = Vec::new();
    if !old.is_empty() {
        ops.push(FieldOp::Update {
            name: SLOTS.into(),
            op: TypedOp::Set(SetOp::RemoveAll(old)),
        });
    }
    ops.push(FieldOp::Update {
        name: SLOTS.into(),
        op: TypedOp::Set(SetOp::Add(slot.to_string())),
    });
    on_node(node, ops)
}

/// The op by which `node` publishes its VTEP `record`, or `None` if the key already
/// holds exactly that (a restart writes nothing).
pub fn publish(value: Option<&Map>, node: NodeId, record: &VtepRecord) -> Option<MapOp> {
    let text = record.to_string();
    let current = value
        .and_then(|m| m.store().map(&field_of(node)))
        .and_then(|f| f.register(VTEP))
        .and_then(|r| r.winner());
    if current.is_some_and(|w| w.value == text) {
        return None;
    }
    Some(on_node(
        node,
        vec![FieldOp::Update {
            name: VTEP.into(),
            op: TypedOp::Register(RegisterOp::Assign {
                value: text,
                timestamp: None,
            }),
        }],
    ))
}

/// The op that forgets `node` (removes everything it published in this key), or
/// `None` if `value` holds nothing of it.
pub fn forget(value: Option<&Map>, node: NodeId) -> Option<MapOp> {
    let key = FieldKey::new(field_of(node), FieldType::Map);
    value
        .is_some_and(|m| m.store().contains(&key))
        .then(|| MapOp::Update(vec![FieldOp::Remove(key)]))
}

/// What one node published in a network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub slots: BTreeSet<Slot>,
    /// Its VTEP record, if it published one that parses.
    pub vtep: Option<VtepRecord>,
}

/// What one key holds: its nodes' entries, and how many fields or elements did not
/// parse (written by a buggy or hostile node: skipped and counted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub nodes: BTreeMap<NodeId, Entry>,
    pub malformed: u64,
}

/// Read one key's value. Never fails: what does not parse is counted in `malformed`.
pub fn read(value: &Map) -> Bucket {
    let mut bucket = Bucket::default();
    for field in value.store().keys() {
        let (Some(node), FieldType::Map) = (node_of(&field.name), field.kind) else {
            bucket.malformed += 1;
            continue;
        };
        let Some(inner) = value.store().map(&field.name) else {
            continue;
        };
        let mut entry = Entry::default();
        for f in inner.keys() {
            let known = matches!(
                (f.name.as_str(), f.kind),
                (SLOTS, FieldType::Set) | (VTEP, FieldType::Register)
            );
            if !known {
                bucket.malformed += 1;
            }
        }
        let record = inner.register(VTEP).and_then(|r| r.winner());
        match record.map(|w| w.value.parse::<VtepRecord>()) {
            Some(Ok(r)) => entry.vtep = Some(r),
            Some(Err(_)) => bucket.malformed += 1,
            None => {}
        }
        for e in inner.set(SLOTS).into_iter().flat_map(|s| s.iter()) {
            match slot_of(e) {
                Some(slot) => {
                    entry.slots.insert(slot);
                }
                None => bucket.malformed += 1,
            }
        }
        bucket.nodes.insert(node, entry);
    }
    bucket
}

/// One network's nodes as the KV holds them, kept up to date key by key.
#[derive(Clone, Debug)]
pub struct Catalog {
    prefix: String,
    buckets: BTreeMap<String, Bucket>,
}

impl Catalog {
    pub fn new(net: &str) -> Catalog {
        Catalog {
            prefix: net_prefix(net),
            buckets: BTreeMap::new(),
        }
    }

    /// Take `key`'s new value (`None`: the key holds nothing). Keys of other networks
    /// are ignored.
    pub fn update(&mut self, key: &str, value: Option<&Map>) {
        if !key.starts_with(&self.prefix) {
            return;
        }
        match value.map(read) {
            Some(b) if !(b.nodes.is_empty() && b.malformed == 0) => {
                self.buckets.insert(key.to_owned(), b);
            }
            _ => {
                self.buckets.remove(key);
            }
        }
    }

    /// Every node's entry. A node found under two keys (only a node not writing through
    /// this module could do that) has the slots of both and the record of the last.
    pub fn nodes(&self) -> BTreeMap<NodeId, Entry> {
        let mut out: BTreeMap<NodeId, Entry> = BTreeMap::new();
        for bucket in self.buckets.values() {
            for (node, entry) in &bucket.nodes {
                let e = out.entry(*node).or_default();
                e.slots.extend(entry.slots.iter().copied());
                e.vtep = entry.vtep.or(e.vtep);
            }
        }
        out
    }

    /// Every node's claimed slots: the input of [`super::alloc::resolve`].
    pub fn claims(&self) -> BTreeMap<NodeId, BTreeSet<Slot>> {
        self.nodes()
            .into_iter()
            .map(|(node, e)| (node, e.slots))
            .collect()
    }

    /// Fields and elements that did not parse, over all keys.
    pub fn malformed(&self) -> u64 {
        self.buckets.values().map(|b| b.malformed).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use hawser_core::crdt::Actor;

    use super::*;

    /// The keys of a network as one replica holds them, written as `node`.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Replica {
        pub(crate) keys: BTreeMap<String, Map>,
    }

    impl Replica {
        /// Apply an op built from the key's current value, as `(node, incarnation)`.
        pub(crate) fn write(
            &mut self,
            key: &str,
            actor: (u64, u64),
            op: impl FnOnce(Option<&Map>) -> Option<MapOp>,
        ) {
            let value = self.keys.entry(key.to_owned()).or_default();
            if let Some(op) = op(Some(value)) {
                value
                    .apply(Actor::new(NodeId(actor.0), actor.1), &op)
                    .unwrap();
            }
        }

        pub(crate) fn merge(&mut self, other: &Replica) {
            for (k, v) in &other.keys {
                self.keys.entry(k.clone()).or_default().merge(v);
            }
        }

        pub(crate) fn catalog(&self, net: &str) -> Catalog {
            let mut c = Catalog::new(net);
            for (k, v) in &self.keys {
                c.update(k, Some(v));
            }
            c
        }
    }

    fn claim_as(r: &mut Replica, node: u64, slot: u32) {
        r.write(&key_of("t", NodeId(node)), (node, 1), |v| {
            Some(claim(v, NodeId(node), Slot(slot)))
        });
    }

    #[test]
    fn keys_are_stable() {
        // Part of the cluster's format: must never change between versions.
        assert_eq!(key_of("dcos", NodeId(0xab)), "overlay/dcos/2b");
        assert_eq!(net_prefix("dcos"), "overlay/dcos/");
    }

    #[test]
    fn a_new_claim_replaces_the_old_one() {
        let mut r = Replica::default();
        claim_as(&mut r, 7, 3);
        claim_as(&mut r, 7, 5);
        claim_as(&mut r, 7, 5);
        assert_eq!(r.catalog("t").claims()[&NodeId(7)], [Slot(5)].into());
        assert_eq!(r.catalog("t").malformed(), 0);
        assert!(r.catalog("other").claims().is_empty());
    }

    #[test]
    fn claims_made_on_both_sides_of_a_partition_are_both_seen() {
        let (mut a, mut b) = (Replica::default(), Replica::default());
        claim_as(&mut a, 1, 4);
        claim_as(&mut b, 2, 4);
        // Two lives of node 3 (its old disk restored) claim concurrently.
        claim_as(&mut a, 3, 0);
        b.write(&key_of("t", NodeId(3)), (3, 2), |v| {
            Some(claim(v, NodeId(3), Slot(1)))
        });
        let mut healed = a.clone();
        healed.merge(&b);
        let claims = healed.catalog("t").claims();
        assert_eq!(claims[&NodeId(1)], [Slot(4)].into());
        assert_eq!(claims[&NodeId(2)], [Slot(4)].into());
        assert_eq!(claims[&NodeId(3)], [Slot(0), Slot(1)].into());
    }

    #[test]
    fn forgetting_removes_a_node_but_not_what_it_wrote_meanwhile() {
        let mut a = Replica::default();
        claim_as(&mut a, 9, 2);
        let mut gone = a.clone();
        let key = key_of("t", NodeId(9));
        a.write(&key, (1, 1), |v| forget(v, NodeId(9)));
        assert!(a.catalog("t").claims().is_empty());
        assert!(forget(a.keys.get(&key), NodeId(9)).is_none());
        // Node 9 comes back and claims again, concurrently with being forgotten.
        claim_as(&mut gone, 9, 6);
        a.merge(&gone);
        assert_eq!(a.catalog("t").claims()[&NodeId(9)], [Slot(6)].into());
    }

    #[test]
    fn a_vtep_record_is_published_once_and_replaced_by_the_next() {
        let net: crate::overlay::Network = "name=t,subnet=198.18.0.0/16,vtep=198.19.0.0/24"
            .parse()
            .unwrap();
        let node = NodeId(5);
        let record = |slot: u32| {
            let share = net.share(Slot(slot)).unwrap();
            VtepRecord::new(node, "198.18.200.5".parse().unwrap(), &share)
        };
        let key = key_of("t", node);
        let mut r = Replica::default();
        r.write(&key, (5, 1), |v| Some(claim(v, node, Slot(1))));
        r.write(&key, (5, 1), |v| publish(v, node, &record(1)));
        assert!(publish(r.keys.get(&key), node, &record(1)).is_none());
        r.write(&key, (5, 1), |v| publish(v, node, &record(2)));
        let nodes = r.catalog("t").nodes();
        assert_eq!(nodes[&node].vtep, Some(record(2)));
        assert_eq!(nodes[&node].slots, [Slot(1)].into());
        // A record that does not parse is counted, and the node's claims still count.
        r.write(&key, (5, 1), |_| {
            Some(on_node(
                node,
                vec![FieldOp::Update {
                    name: VTEP.into(),
                    op: TypedOp::Register(RegisterOp::Assign {
                        value: "underlay=nowhere".into(),
                        timestamp: None,
                    }),
                }],
            ))
        });
        let c = r.catalog("t");
        assert_eq!(c.malformed(), 1);
        assert_eq!(c.nodes()[&node].vtep, None);
        assert_eq!(c.claims()[&node], [Slot(1)].into());
    }

    #[test]
    fn malformed_entries_are_counted_not_trusted() {
        let mut r = Replica::default();
        let key = key_of("t", NodeId(1));
        let add = |field: &str, element: &str| {
            let (field, element) = (field.to_owned(), element.to_owned());
            move |_: Option<&Map>| {
                Some(MapOp::Update(vec![FieldOp::Update {
                    name: field,
                    op: TypedOp::Map(MapOp::Update(vec![FieldOp::Update {
                        name: SLOTS.into(),
                        op: TypedOp::Set(SetOp::Add(element)),
                    }])),
                }]))
            }
        };
        r.write(&key, (1, 1), add("0000000000000001", "7"));
        r.write(&key, (1, 1), add("0000000000000001", "07"));
        r.write(&key, (1, 1), add("0000000000000001", "x"));
        r.write(&key, (1, 1), add("0000000000000001", "4294967296"));
        r.write(&key, (1, 1), add("000000000000000G", "1"));
        r.write(&key, (1, 1), add("00000000000000AB", "1"));
        r.write(&key, (1, 1), add("1", "1"));
        let c = r.catalog("t");
        assert_eq!(c.malformed(), 6);
        assert_eq!(c.claims(), [(NodeId(1), [Slot(7)].into())].into());
    }
}
