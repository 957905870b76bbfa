//! One node's part in one overlay network, as a state machine that the agent and the
//! simulator run alike: fed the network's KV keys as they change, and polled with the
//! time and who membership sees, it answers the KV writes this node should make
//! (claim a slot, publish its VTEP record, forget a long-gone node) and the kernel
//! state it should hold.
//!
//! The writes go through the caller (the agent's driver, the simulator's node), which
//! applies them to the KV; their effect comes back as key changes. Until it does, a
//! write is not repeated: the same write is issued again only after [`RETRY_MS`], so a
//! write lost with a stopping driver is not lost for good, and a busy node does not
//! pile up copies.
//!
//! Forgetting: a node is *present* while membership reaches it; one that has not been
//! present for the forget time is forgotten ([`super::alloc::Liveness`]). A node is
//! first counted as seen when its entry is first read, so a freshly started member
//! that knows nobody yet forgets nobody for a whole forget time. Only the present node
//! with the lowest id writes the forgetting (every node would write the same observed
//! remove; one is enough, and if it goes, the next lowest takes over).

use std::collections::BTreeMap;
use std::net::IpAddr;

use hawser_core::NodeId;
use hawser_core::crdt::{Map, MapOp};

use super::alloc::{Allocation, Liveness, Step, resolve, step};
use super::config::Network;
use super::desired::{Desired, desired};
use super::kv::{Catalog, claim, forget, key_of, publish};
use super::vtep::VtepRecord;

/// How long a write is not issued again while the KV does not show its effect.
pub const RETRY_MS: u64 = 5_000;

/// A write this node should make to the KV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    pub op: MapOp,
}

/// One node in one overlay network (see the module docs).
#[derive(Clone, Debug)]
pub struct Member {
    net: Network,
    me: NodeId,
    underlay: IpAddr,
    forget_after_ms: u64,
    catalog: Catalog,
    /// When each node in the catalog was last present (or first read).
    last_seen: BTreeMap<NodeId, u64>,
    /// Writes issued and when, until [`RETRY_MS`] has passed.
    issued: Vec<(Write, u64)>,
    alloc: Allocation,
    desired: Desired,
}

impl Member {
    /// `me`, reachable by the other nodes at `underlay`, in `net`.
    pub fn new(net: Network, me: NodeId, underlay: IpAddr, forget_after_ms: u64) -> Member {
        Member {
            catalog: Catalog::new(&net.name),
            net,
            me,
            underlay,
            forget_after_ms,
            last_seen: BTreeMap::new(),
            issued: Vec::new(),
            alloc: Allocation::default(),
            desired: Desired::default(),
        }
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Take `key`'s new value; keys of other networks are ignored.
    pub fn kv_changed(&mut self, key: &str, value: Option<&Map>) {
        self.catalog.update(key, value);
    }

    /// What the network's keys hold, as last read.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Who holds which slot, as of the last poll.
    pub fn allocation(&self) -> &Allocation {
        &self.alloc
    }

    /// The kernel state this node should hold, as of the last poll.
    pub fn desired(&self) -> &Desired {
        &self.desired
    }

    /// Decide at `now_ms` (any epoch, never going back): `present(node)` says whether
    /// membership reaches `node` now, `value(key)` is a key's current value (writes are
    /// built on it). Returns the writes to make, in order.
    pub fn poll<'a>(
        &mut self,
        now_ms: u64,
        present: impl Fn(NodeId) -> bool,
        value: impl Fn(&str) -> Option<&'a Map>,
    ) -> Vec<Write> {
        let nodes = self.catalog.nodes();
        self.last_seen.retain(|n, _| nodes.contains_key(n));
        for node in nodes.keys() {
            if *node == self.me || present(*node) || !self.last_seen.contains_key(node) {
                self.last_seen.insert(*node, now_ms);
            }
        }
        let claims = self.catalog.claims();
        let live = Liveness {
            now_ms,
            forget_after_ms: self.forget_after_ms,
            last_seen: &self.last_seen,
        };
        self.alloc = resolve(&self.net, &claims, &live);
        self.desired = desired(&self.net, self.me, self.underlay, &self.alloc, &nodes);

        let mut writes = Vec::new();
        let mine = key_of(&self.net.name, self.me);
        let held = match step(&self.net, self.me, &claims, &self.alloc) {
            Step::Hold(slot) => Some(slot),
            Step::Claim(slot) => {
                writes.push(Write {
                    key: mine.clone(),
                    op: claim(value(&mine), self.me, slot),
                });
                Some(slot)
            }
            Step::Full => None,
        };
        if let Some(share) = held.and_then(|s| self.net.share(s)) {
            let record = VtepRecord::new(self.me, self.underlay, &share);
            if let Some(op) = publish(value(&mine), self.me, &record) {
                writes.push(Write { key: mine, op });
            }
        }
        let lowest_present = nodes
            .keys()
            .copied()
            .filter(|n| *n == self.me || (present(*n) && !self.alloc.forgotten.contains(n)))
            .min();
        if lowest_present == Some(self.me) {
            for gone in &self.alloc.forgotten {
                let key = key_of(&self.net.name, *gone);
                if let Some(op) = forget(value(&key), *gone) {
                    writes.push(Write { key, op });
                }
            }
        }

        self.issued
            .retain(|(_, at)| now_ms.saturating_sub(*at) < RETRY_MS);
        writes.retain(|w| !self.issued.iter().any(|(done, _)| done == w));
        self.issued
            .extend(writes.iter().map(|w| (w.clone(), now_ms)));
        writes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::overlay::kv::tests::Replica;
    use crate::overlay::share::Slot;

    const FORGET: u64 = 60_000;

    fn net() -> Network {
        "name=t,subnet=198.18.0.0/16,vtep=198.19.0.0/24"
            .parse()
            .unwrap()
    }

    fn member(id: u64) -> Member {
        Member::new(
            net(),
            NodeId(id),
            IpAddr::from([198, 18, 255, id as u8]),
            FORGET,
        )
    }

    /// Poll `m` over `r` as node `id`, apply its writes to `r`, and feed the changed keys
    /// back; returns how many writes it made.
    fn round(m: &mut Member, r: &mut Replica, now: u64, present: &[u64]) -> usize {
        for (k, v) in &r.keys {
            m.kv_changed(k, Some(v));
        }
        let writes = m.poll(now, |n| present.contains(&n.0), |k| r.keys.get(k));
        for w in &writes {
            r.write(&w.key, (m.me.0, 1), |_| Some(w.op.clone()));
        }
        for (k, v) in &r.keys {
            m.kv_changed(k, Some(v));
        }
        writes.len()
    }

    /// Rounds at `now` until `m` writes nothing more.
    fn settle(m: &mut Member, r: &mut Replica, now: u64, present: &[u64]) {
        for _ in 0..4 {
            if round(m, r, now, present) == 0 {
                return;
            }
        }
        panic!("node {} keeps writing", m.me.0);
    }

    fn slot_of(m: &Member) -> Option<Slot> {
        m.allocation().slots.get(&m.me).copied()
    }

    #[test]
    fn a_node_claims_publishes_and_then_writes_nothing() {
        let (mut m, mut r) = (member(1), Replica::default());
        assert_eq!(round(&mut m, &mut r, 0, &[]), 2, "a claim and a record");
        assert_eq!(round(&mut m, &mut r, 10, &[]), 0);
        let slot = slot_of(&m).expect("holds a slot");
        let share = net().share(slot).unwrap();
        let nodes = m.catalog().nodes();
        assert!(nodes[&NodeId(1)].vtep.is_some_and(|v| v.matches(&share)));
        assert_eq!(m.desired().share, Some(share));
    }

    #[test]
    fn a_write_is_not_repeated_until_the_retry_time() {
        let (mut m, r) = (member(1), Replica::default());
        let first = m.poll(0, |_| false, |k| r.keys.get(k));
        assert_eq!(first.len(), 2);
        // The writes were lost: not issued again at once, but again after RETRY_MS.
        assert!(
            m.poll(RETRY_MS - 1, |_| false, |k| r.keys.get(k))
                .is_empty()
        );
        assert_eq!(m.poll(RETRY_MS, |_| false, |k| r.keys.get(k)), first);
    }

    #[test]
    fn two_claims_of_one_slot_across_a_partition_end_distinct_after_the_heal() {
        let (mut a, mut b) = (member(1), member(2));
        // Force the clash: node 2 claims the slot node 1 will pick.
        let mut left = Replica::default();
        settle(&mut a, &mut left, 0, &[]);
        let contested = slot_of(&a).unwrap();
        let mut right = Replica::default();
        right.write(&key_of("t", NodeId(2)), (2, 1), |v| {
            Some(claim(v, NodeId(2), contested))
        });
        settle(&mut b, &mut right, 0, &[]);
        assert_eq!(slot_of(&b), Some(contested));

        let mut healed = left.clone();
        healed.merge(&right);
        let (mut ra, mut rb) = (healed.clone(), healed);
        for t in 1..5 {
            round(&mut a, &mut ra, t, &[1, 2]);
            round(&mut b, &mut rb, t, &[1, 2]);
            let (x, y) = (ra.clone(), rb.clone());
            ra.merge(&y);
            rb.merge(&x);
        }
        assert_eq!(slot_of(&a), Some(contested), "the lower id keeps it");
        let moved = slot_of(&b).expect("the higher id moved");
        assert_ne!(moved, contested);
        for m in [&a, &b] {
            let owners: BTreeSet<Slot> = m.allocation().owners.keys().copied().collect();
            assert_eq!(owners, [contested, moved].into());
            assert_eq!(m.desired().peers.len(), 1, "each programs the other");
        }
    }

    #[test]
    fn a_long_gone_node_is_forgotten_by_the_lowest_present_node_only() {
        let mut r = Replica::default();
        let (mut m1, mut m2, mut m3) = (member(1), member(2), member(3));
        for _ in 0..2 {
            for m in [&mut m1, &mut m2, &mut m3] {
                settle(m, &mut r, 0, &[1, 2, 3]);
            }
        }
        // Node 2 goes away; node 1 and node 3 stay.
        assert_eq!(round(&mut m1, &mut r, FORGET, &[1, 3]), 0);
        assert_eq!(round(&mut m3, &mut r, FORGET + 1, &[1, 3]), 0);
        assert!(r.catalog("t").nodes().contains_key(&NodeId(2)));
        // Past the forget time: node 3 leaves node 2 out but does not write; node 1 forgets it.
        assert_eq!(round(&mut m3, &mut r, FORGET + 2, &[1, 3]), 0);
        assert!(m3.allocation().forgotten.contains(&NodeId(2)));
        assert_eq!(round(&mut m1, &mut r, FORGET + 2, &[1, 3]), 1);
        assert!(!r.catalog("t").nodes().contains_key(&NodeId(2)));
        assert!(m1.desired().peers.keys().eq([&NodeId(3)]));
    }

    #[test]
    fn a_fresh_member_forgets_nobody_for_a_forget_time() {
        let mut r = Replica::default();
        settle(&mut member(2), &mut r, 0, &[]);
        // Node 1 starts long after, and never sees node 2 present.
        let mut m1 = member(1);
        let t0 = 10 * FORGET;
        settle(&mut m1, &mut r, t0, &[]);
        assert!(m1.allocation().slots.contains_key(&NodeId(2)));
        assert_eq!(round(&mut m1, &mut r, t0 + FORGET, &[]), 0);
        assert_eq!(round(&mut m1, &mut r, t0 + FORGET + 1, &[]), 1);
        assert!(!m1.allocation().slots.contains_key(&NodeId(2)));
    }
}
