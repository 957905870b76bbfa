//! Subnet allocation without a central allocator: each node claims a slot (its share
//! of the network, see [`super::share`]) in the KV, and every node decides who holds
//! what from the claims it reads, with the same pure function.
//!
//! DC/OS had Mesos hand subnets out; hawser has only the KV, where two nodes can claim
//! the same slot on two sides of a partition. Both claims survive the heal (each lives
//! in its claimant's own field, see [`super::kv`]), and [`resolve`] settles them:
//! nodes in ascending id order each take the lowest slot they claim that no lower node
//! took. So the lower id keeps a contested slot; the other node holds nothing until it
//! moves, which [`step`] tells it to do, to a free slot it picks from its id
//! ([`crate::probe`]), so that nodes displaced together rarely pick the same one. A
//! slot is never held by two nodes in any view, so a subnet is routed to two nodes at
//! most until the views converge.
//!
//! A node absent for longer than the forget time no longer holds anything, and its
//! entry can be removed ([`super::kv::forget`]). When a node was last seen is an input
//! ([`Liveness`]), never read from a clock here.

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::NodeId;

use super::config::Network;
use super::share::Slot;
use crate::probe::first_free;

/// When nodes were last known to be present, to forget the long-gone ones.
///
/// A node with no entry in `last_seen` is treated as present: forgetting takes
/// evidence. A freshly started agent that knows nobody yet must not take every slot
/// for free; it records the first time it read a node's claim as a sighting, so a
/// node that never comes back is forgotten `forget_after_ms` after that.
#[derive(Clone, Copy, Debug)]
pub struct Liveness<'a> {
    /// Now, in the caller's milliseconds (any epoch, the same as `last_seen`'s).
    pub now_ms: u64,
    pub forget_after_ms: u64,
    pub last_seen: &'a BTreeMap<NodeId, u64>,
}

impl Liveness<'_> {
    /// Whether `node` has been absent for longer than the forget time.
    pub fn forgotten(&self, node: NodeId) -> bool {
        self.last_seen
            .get(&node)
            .is_some_and(|t| self.now_ms.saturating_sub(*t) > self.forget_after_ms)
    }
}

/// Who holds what, as one view of the claims resolves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Each held slot and its holder.
    pub owners: BTreeMap<Slot, NodeId>,
    /// Each holder and its slot (the inverse of `owners`).
    pub slots: BTreeMap<NodeId, Slot>,
    /// Nodes that claim only slots lower nodes hold: they must move.
    pub displaced: BTreeSet<NodeId>,
    /// Nodes whose claims are ignored because they have been gone too long.
    pub forgotten: BTreeSet<NodeId>,
    /// Claims of slots the network does not have (a smaller range than when they were
    /// made, or a hostile writer): ignored.
    pub out_of_range: usize,
}

/// Resolve every node's claims into at most one slot per node and one node per slot.
/// A pure function of the claims (whatever order they were merged in), the network's
/// size and who is forgotten.
pub fn resolve(
    net: &Network,
    claims: &BTreeMap<NodeId, BTreeSet<Slot>>,
    live: &Liveness,
) -> Allocation {
    let capacity = net.capacity();
    let mut out = Allocation::default();
    for (node, slots) in claims {
        if live.forgotten(*node) {
            out.forgotten.insert(*node);
            continue;
        }
        out.out_of_range += slots.iter().filter(|s| s.0 >= capacity).count();
        let free = slots
            .iter()
            .find(|s| s.0 < capacity && !out.owners.contains_key(s));
        match free {
            Some(slot) => {
                out.owners.insert(*slot, *node);
                out.slots.insert(*node, *slot);
            }
            None if slots.iter().any(|s| s.0 < capacity) => {
                out.displaced.insert(*node);
            }
            None => {}
        }
    }
    out
}

/// What a node should do about its claim in one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// It holds this slot and claims nothing else: nothing to write.
    Hold(Slot),
    /// Claim this slot (dropping any other claim): it is the node's own slot with
    /// stray claims to drop, or a free slot to move to.
    Claim(Slot),
    /// No slot is free: the network is full, and the node gets no subnet.
    Full,
}

/// What `me` should do, given the claims and their resolution. A node that holds a
/// slot keeps it; one that holds none (new, displaced, forgotten and back, or out of
/// range) takes the first free slot in its own probe order: free means neither held
/// nor claimed by any node that is not forgotten.
pub fn step(
    net: &Network,
    me: NodeId,
    claims: &BTreeMap<NodeId, BTreeSet<Slot>>,
    alloc: &Allocation,
) -> Step {
    let mine = claims.get(&me);
    if let Some(slot) = alloc.slots.get(&me) {
        return if mine.is_some_and(|s| s.len() == 1) {
            Step::Hold(*slot)
        } else {
            Step::Claim(*slot)
        };
    }
    let taken: BTreeSet<Slot> = claims
        .iter()
        .filter(|(node, _)| !alloc.forgotten.contains(node))
        .flat_map(|(_, slots)| slots.iter().copied())
        .chain(alloc.owners.keys().copied())
        .collect();
    let key = format!("{}/{:016x}", net.name, me.0);
    let free = |k: u128| u32::try_from(k).is_ok_and(|k| !taken.contains(&Slot(k)));
    match first_free(&key, u128::from(net.capacity()), free) {
        Some(k) => Step::Claim(Slot(k as u32)),
        None => Step::Full,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::overlay::kv::tests::Replica;
    use crate::overlay::kv::{claim, key_of};

    /// A network with 4 slots, so that claims collide often.
    fn net() -> Network {
        "name=t,subnet=198.18.0.0/22,vtep=198.19.0.0/24"
            .parse()
            .unwrap()
    }

    fn claims(list: &[(u64, &[u32])]) -> BTreeMap<NodeId, BTreeSet<Slot>> {
        list.iter()
            .map(|(n, s)| (NodeId(*n), s.iter().map(|s| Slot(*s)).collect()))
            .collect()
    }

    const NOBODY: Liveness<'static> = Liveness {
        now_ms: 0,
        forget_after_ms: 0,
        last_seen: &BTreeMap::new(),
    };

    #[test]
    fn the_lower_id_keeps_a_contested_slot_and_the_other_moves() {
        let c = claims(&[(5, &[2]), (3, &[2]), (7, &[0])]);
        let a = resolve(&net(), &c, &NOBODY);
        assert_eq!(
            a.owners,
            [(Slot(0), NodeId(7)), (Slot(2), NodeId(3))].into()
        );
        assert_eq!(a.displaced, [NodeId(5)].into());
        assert_eq!(step(&net(), NodeId(3), &c, &a), Step::Hold(Slot(2)));
        let Step::Claim(next) = step(&net(), NodeId(5), &c, &a) else {
            panic!("node 5 must move");
        };
        assert!(next == Slot(1) || next == Slot(3), "{next:?}");
        // Deterministic: the same view gives the same answer.
        assert_eq!(step(&net(), NodeId(5), &c, &a), Step::Claim(next));
    }

    #[test]
    fn a_full_network_gives_nothing_and_stray_claims_are_dropped() {
        let c = claims(&[(1, &[0]), (2, &[1]), (3, &[2]), (4, &[3]), (5, &[9])]);
        let a = resolve(&net(), &c, &NOBODY);
        assert_eq!(a.out_of_range, 1);
        assert!(!a.displaced.contains(&NodeId(5)));
        assert_eq!(step(&net(), NodeId(5), &c, &a), Step::Full);
        assert_eq!(step(&net(), NodeId(6), &c, &a), Step::Full);
        // Two claims of one node (two lives): it holds the lower, and is told to claim
        // it alone.
        let c = claims(&[(1, &[3, 1])]);
        let a = resolve(&net(), &c, &NOBODY);
        assert_eq!(a.slots[&NodeId(1)], Slot(1));
        assert_eq!(step(&net(), NodeId(1), &c, &a), Step::Claim(Slot(1)));
    }

    #[test]
    fn a_node_gone_longer_than_the_forget_time_frees_its_slot() {
        let c = claims(&[(1, &[0]), (2, &[1]), (3, &[2]), (4, &[3])]);
        let seen: BTreeMap<NodeId, u64> = [(NodeId(1), 1_000), (NodeId(2), 9_000)].into();
        let live = Liveness {
            now_ms: 10_000,
            forget_after_ms: 5_000,
            last_seen: &seen,
        };
        assert!(live.forgotten(NodeId(1)));
        assert!(!live.forgotten(NodeId(2)));
        assert!(!live.forgotten(NodeId(3)), "never seen: kept");
        let a = resolve(&net(), &c, &live);
        assert_eq!(a.forgotten, [NodeId(1)].into());
        assert!(!a.owners.contains_key(&Slot(0)));
        // Slot 0 is the only free one for a newcomer.
        assert_eq!(step(&net(), NodeId(9), &c, &a), Step::Claim(Slot(0)));
    }

    /// Something that happens to the replicas before they all merge.
    #[derive(Clone, Debug)]
    enum Event {
        /// Replica `r` (node `r % 6`, life `r / 6`) claims a slot (0..5; 4 is out of
        /// range).
        Claim { r: usize, slot: u32 },
        /// Replica `to` merges replica `from`.
        Sync { to: usize, from: usize },
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            3 => (0usize..8, 0u32..5).prop_map(|(r, slot)| Event::Claim { r, slot }),
            1 => (0usize..8, 0usize..8).prop_map(|(to, from)| Event::Sync { to, from }),
        ]
    }

    fn check(a: &Allocation) -> Result<(), TestCaseError> {
        prop_assert_eq!(a.owners.len(), a.slots.len());
        for (slot, node) in &a.owners {
            prop_assert_eq!(a.slots.get(node), Some(slot));
        }
        Ok(())
    }

    proptest! {
        /// After any claims and partial merges, and whole merges in two different
        /// orders: every view resolves each slot to one owner and each owner to one
        /// slot, every claimed slot in range has an owner, and the resolution depends
        /// on the merged claims alone.
        #[test]
        fn every_merge_order_resolves_to_one_owner_per_slot(
            events in proptest::collection::vec(event(), 1..30),
            order in Just((0..8).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            let net = net();
            let mut replicas = vec![Replica::default(); 8];
            for e in &events {
                match *e {
                    Event::Claim { r, slot } => {
                        let node = (r % 6) as u64;
                        replicas[r].write(&key_of("t", NodeId(node)), (node, 1 + r as u64 / 6), |v| {
                            Some(claim(v, NodeId(node), Slot(slot)))
                        });
                    }
                    Event::Sync { to, from } => {
                        let from = replicas[from].clone();
                        replicas[to].merge(&from);
                    }
                }
                for r in &replicas {
                    check(&resolve(&net, &r.catalog("t").claims(), &NOBODY))?;
                }
            }
            let (mut forward, mut shuffled) = (Replica::default(), Replica::default());
            for r in &replicas {
                forward.merge(r);
            }
            for i in &order {
                shuffled.merge(&replicas[*i]);
            }
            let claims = forward.catalog("t").claims();
            prop_assert_eq!(&claims, &shuffled.catalog("t").claims());
            let a = resolve(&net, &claims, &NOBODY);
            prop_assert_eq!(&a, &resolve(&net, &shuffled.catalog("t").claims(), &NOBODY));
            check(&a)?;
            // A node holds one of its claims, or every one of them is held by a lower
            // node (so the lower id keeps a contested slot).
            for (node, slots) in &claims {
                let in_range: Vec<&Slot> = slots.iter().filter(|s| s.0 < net.capacity()).collect();
                let holds = a.slots.get(node).is_some_and(|s| in_range.contains(&s));
                let beaten = in_range.iter().all(|s| a.owners.get(s).is_some_and(|o| o < node));
                prop_assert!(holds || beaten, "node {:?} with {:?} in {:?}", node, slots, a);
                prop_assert_eq!(a.displaced.contains(node), !holds && !in_range.is_empty());
            }
        }

        /// Nodes that claim in separate partitions, then heal and follow [`step`] in
        /// rounds (all acting on the same view, concurrently): within as many rounds as
        /// there are nodes, every node holds a slot of its own and nobody writes again.
        #[test]
        fn displaced_nodes_settle_on_distinct_slots(
            groups in proptest::collection::vec(0usize..3, 1..=4),
        ) {
            let net = net();
            let nodes: Vec<NodeId> = (0..groups.len() as u64).map(|n| NodeId(n * 37 + 1)).collect();
            let round = |view: &mut Replica, members: &[NodeId]| -> usize {
                let snapshot = view.clone();
                let claims = snapshot.catalog("t").claims();
                let alloc = resolve(&net, &claims, &NOBODY);
                let mut writes = 0;
                for me in members {
                    if let Step::Claim(slot) = step(&net, *me, &claims, &alloc) {
                        let mut own = snapshot.clone();
                        own.write(&key_of("t", *me), (me.0, 1), |v| Some(claim(v, *me, slot)));
                        view.merge(&own);
                        writes += 1;
                    }
                }
                writes
            };
            // Partitioned: each group settles among itself.
            let mut sides = vec![Replica::default(); 3];
            for (g, side) in sides.iter_mut().enumerate() {
                let members: Vec<NodeId> = nodes.iter().zip(&groups).filter(|(_, x)| **x == g).map(|(n, _)| *n).collect();
                while round(side, &members) > 0 {}
            }
            let mut view = Replica::default();
            for side in &sides {
                view.merge(side);
            }
            let mut rounds = 0;
            while round(&mut view, &nodes) > 0 {
                rounds += 1;
                prop_assert!(rounds <= nodes.len(), "no convergence after {} rounds", rounds);
            }
            let a = resolve(&net, &view.catalog("t").claims(), &NOBODY);
            prop_assert_eq!(a.slots.len(), nodes.len());
            prop_assert!(a.displaced.is_empty());
        }
    }
}
