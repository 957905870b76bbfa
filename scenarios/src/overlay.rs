//! `[[overlay]]` in the simulator: every running node runs one
//! `hawser_dataplane::overlay::Member` per network, the very state machine the agent
//! runs, fed its own KV's changes, polled with its own global membership's
//! reachability, and its writes applied to its own KV through its protocol.
//!
//! Schedule: a node whose overlay keys changed is polled at the next tick of
//! [`POLL_EVERY`]; any other running node every [`IDLE_POLL`] (what it decides then
//! depends only on time: forgetting, retrying a lost write). A paused node is not
//! polled. A killed or frozen node's members are dropped; a started, restarted or
//! wiped node gets fresh ones, which first read every key of their network from the
//! node's KV (a restarted node's claim survives on its disk).
//!
//! Node `nI`'s underlay address is the `I+1`-th of 198.18.0.0/15 (`n0` is
//! 198.18.0.1), wrapping past 131,070 nodes.
//!
//! Figures: which nodes some view showed displaced (a contested slot, lost to a lower
//! id), and how long after a node starts every other member programs it as a peer
//! (the KV side of "a new node's containers are reachable"), over every start and over
//! the starts into a settled cluster (one with other members, no earlier start still
//! waiting for that).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use hawser_core::{Duration, Instant, NodeId};
use hawser_dataplane::overlay::{Allocation, Desired, Member, Network, Slot};
use hawser_dataplane::prefix::Prefix;
use hawser_sim::{Sim, Status};

use crate::file::Overlay;
use crate::runner::live;
use crate::target::Target;
use crate::tracelog;

/// How soon a node whose overlay keys changed is polled.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(100);
/// How often a node is polled when nothing changed.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The members of one node, while its process lives.
struct Node {
    /// One per network, in `[[overlay]]` order.
    members: Vec<Member>,
    /// Its overlay keys changed since its last poll.
    dirty: bool,
    last_poll: Option<Instant>,
}

/// One network's "who programs whom", kept as members poll.
#[derive(Default)]
struct Reach {
    /// `holders[x]`: live members (other than node x's) whose desired state has node
    /// x as a peer.
    holders: Vec<usize>,
    /// Node starts not yet programmed by every other live member: node, when, and
    /// whether the cluster was settled then (no earlier start pending).
    pending: Vec<(usize, Instant, bool)>,
    /// From a start to the first tick at which every other live member programmed it,
    /// and whether it started into a settled cluster.
    times: Vec<(Duration, bool)>,
}

impl Reach {
    /// One more (`up`) or one fewer member programs `peer` (ids beyond the scenario's
    /// nodes, which only a hand-written `kv-op` could publish, are not followed).
    fn count(&mut self, peer: NodeId, up: bool) {
        if let Some(h) = self.holders.get_mut(peer.0 as usize) {
            *h = if up { *h + 1 } else { *h - 1 };
        }
    }
}

/// The overlay members of every node, and the figures they give.
pub(crate) struct Overlays {
    specs: Vec<Overlay>,
    nodes: Vec<Option<Node>>,
    next_poll: Instant,
    reach: Vec<Reach>,
    /// `(network, node)` some member's view showed displaced, and when first.
    displaced: BTreeMap<(usize, NodeId), Instant>,
    /// KV writes the members made, and those the node refused.
    pub(crate) writes: u64,
    pub(crate) refused: Vec<(Instant, String)>,
}

/// Node `i`'s underlay address (see the module docs).
pub(crate) fn underlay(i: usize) -> IpAddr {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    let offset = (i % 131_070) as u32 + 1;
    IpAddr::V4(Ipv4Addr::from(base + offset))
}

impl Overlays {
    pub(crate) fn new(specs: &[Overlay], nodes: usize) -> Overlays {
        Overlays {
            reach: specs
                .iter()
                .map(|_| Reach {
                    holders: vec![0; nodes],
                    ..Reach::default()
                })
                .collect(),
            specs: specs.to_vec(),
            nodes: (0..nodes).map(|_| None).collect(),
            next_poll: Instant::ZERO,
            displaced: BTreeMap::new(),
            writes: 0,
            refused: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// When the next poll is due (the end of time without networks).
    pub(crate) fn next_poll(&self) -> Option<Instant> {
        (!self.is_empty()).then_some(self.next_poll)
    }

    /// Node `i` was started (or restarted, or wiped) at `now`: fresh members, which
    /// read their networks' keys from its KV.
    pub(crate) fn started<T: Target>(&mut self, sim: &Sim<T>, i: usize, now: Instant) {
        if self.is_empty() {
            return;
        }
        self.stopped(i);
        let Some(node) = sim.node(i).map(|n| n.protocol()) else {
            return;
        };
        let gm_forget = node.forget_after_ms();
        let members = self
            .specs
            .iter()
            .map(|spec| {
                let forget = spec
                    .forget_after
                    .map(|d| d.as_millis())
                    .or(gm_forget)
                    .expect("checked before the run: the target knows its forget time");
                let net = spec.network.clone();
                let prefix = hawser_dataplane::overlay::kv::net_prefix(&net.name);
                let mut m = Member::new(net, Sim::<T>::id(i), underlay(i), forget);
                for key in node.kv_keys(&prefix) {
                    m.kv_changed(&key, node.kv_map(&key));
                }
                m
            })
            .collect();
        self.nodes[i] = Some(Node {
            members,
            dirty: true,
            last_poll: None,
        });
        // Into a settled cluster: one with other members, none of them still waiting.
        let others = self.nodes.iter().filter(|n| n.is_some()).count() > 1;
        for reach in &mut self.reach {
            let settled = others && reach.pending.is_empty();
            reach.pending.push((i, now, settled));
        }
    }

    /// Node `i`'s process ended (killed, frozen): its members go.
    pub(crate) fn stopped(&mut self, i: usize) {
        let Some(node) = self.nodes[i].take() else {
            return;
        };
        for (k, m) in node.members.iter().enumerate() {
            let reach = &mut self.reach[k];
            for peer in m.desired().peers.keys() {
                reach.count(*peer, false);
            }
            reach.pending.retain(|(x, _, _)| *x != i);
        }
    }

    /// `key` changed in node `i`'s KV: its members read the new value.
    pub(crate) fn changed<T: Target>(&mut self, sim: &Sim<T>, i: usize, key: &str) {
        if !key.starts_with(hawser_dataplane::overlay::kv::PREFIX) {
            return;
        }
        let (Some(node), Some(state)) = (self.nodes[i].as_mut(), sim.node(i)) else {
            return;
        };
        let value = state.protocol().kv_map(key);
        for m in &mut node.members {
            m.kv_changed(key, value);
        }
        node.dirty = true;
    }

    /// Poll the members that are due, apply their writes, and update the figures.
    pub(crate) fn poll<T: Target>(&mut self, sim: &mut Sim<T>) {
        let now = sim.now();
        if self.is_empty() || now < self.next_poll {
            return;
        }
        self.next_poll = now + POLL_EVERY;
        let now_ms = now.as_millis();
        for i in 0..self.nodes.len() {
            let Some(node) = self.nodes[i].as_mut() else {
                continue;
            };
            let due = node.dirty || node.last_poll.is_none_or(|t| now - t >= IDLE_POLL);
            if sim.status(i) != Status::Up || !due {
                continue;
            }
            node.dirty = false;
            node.last_poll = Some(now);
            let state = sim.node(i).expect("up").protocol();
            let mut writes = Vec::new();
            for (k, m) in node.members.iter_mut().enumerate() {
                let before: Vec<NodeId> = m.desired().peers.keys().copied().collect();
                writes.extend(m.poll(
                    now_ms,
                    |n| !state.considers_unreachable(n),
                    |key| state.kv_map(key),
                ));
                let reach = &mut self.reach[k];
                let after = m.desired().peers.keys();
                for x in &before {
                    reach.count(*x, false);
                }
                for x in after {
                    reach.count(*x, true);
                }
                for x in &m.allocation().displaced {
                    self.displaced.entry((k, *x)).or_insert(now);
                }
            }
            for w in writes {
                self.writes += 1;
                let op = || w.op.to_json();
                let written =
                    tracelog::kv_op(sim, i, &w.key, op, |p, ctx| p.kv_apply(ctx, &w.key, &w.op));
                if let Some(Err(why)) = written {
                    self.refused
                        .push((now, format!("overlay write on n{i} refused: {why}")));
                }
            }
        }
        let members = self.nodes.iter().filter(|n| n.is_some()).count();
        for reach in &mut self.reach {
            let (holders, times) = (&reach.holders, &mut reach.times);
            reach.pending.retain(|(x, started, settled)| {
                // A node alone is programmed by nobody: it waits for a second one.
                let done = members > 1 && holders[*x] + 1 >= members;
                if done {
                    times.push((now - *started, *settled));
                }
                !done
            });
        }
    }

    /// Each network with the views of the live nodes in `scope` (node, view).
    pub(crate) fn views<'a, T: Target>(
        &'a self,
        sim: &Sim<T>,
        scope: Option<&[bool]>,
    ) -> Vec<(&'a Network, Vec<View<'a>>)> {
        let nodes: Vec<(usize, &Node)> = (0..self.nodes.len())
            .filter(|&i| live(sim, i) && scope.is_none_or(|s| s[i]))
            .filter_map(|i| self.nodes[i].as_ref().map(|n| (i, n)))
            .collect();
        self.specs
            .iter()
            .enumerate()
            .map(|(k, spec)| {
                let views = nodes
                    .iter()
                    .map(|(i, n)| View {
                        node: Sim::<T>::id(*i),
                        alloc: n.members[k].allocation(),
                        desired: n.members[k].desired(),
                    })
                    .collect();
                (&spec.network, views)
            })
            .collect()
    }

    /// The figures for the report: `(name, value)`.
    pub(crate) fn figures(&self, last_disruption: Instant) -> Vec<(&'static str, f64)> {
        let mut out = vec![
            ("overlay_displaced_nodes", self.displaced.len() as f64),
            (
                "overlay_displaced_since_last_disruption",
                self.displaced
                    .values()
                    .filter(|t| **t >= last_disruption)
                    .count() as f64,
            ),
            ("overlay_writes", self.writes as f64),
        ];
        let names = [
            (
                false,
                [
                    "overlay_reach_p50_ms",
                    "overlay_reach_p90_ms",
                    "overlay_reach_max_ms",
                ],
            ),
            (
                true,
                [
                    "overlay_reach_settled_p50_ms",
                    "overlay_reach_settled_p90_ms",
                    "overlay_reach_settled_max_ms",
                ],
            ),
        ];
        for (settled_only, [p50, p90, max]) in names {
            let mut times: Vec<f64> = self
                .reach
                .iter()
                .flat_map(|r| r.times.iter())
                .filter(|(_, settled)| *settled || !settled_only)
                .map(|(d, _)| d.as_nanos() as f64 / 1e6)
                .collect();
            times.sort_by(f64::total_cmp);
            if !times.is_empty() {
                let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
                out.extend([(p50, at(0.5)), (p90, at(0.9)), (max, at(1.0))]);
            }
        }
        out.push((
            "overlay_reach_pending",
            self.reach.iter().map(|r| r.pending.len()).sum::<usize>() as f64,
        ));
        out
    }
}

/// One node's view of one network, as its member last resolved it.
pub(crate) struct View<'a> {
    pub(crate) node: NodeId,
    pub(crate) alloc: &'a Allocation,
    pub(crate) desired: &'a Desired,
}

fn slot_text(net: &Network, slot: Option<&Slot>) -> String {
    match slot.and_then(|s| net.share(*s).map(|share| (s, share))) {
        Some((s, share)) => format!("slot {s} ({})", share.subnet),
        None => match slot {
            Some(s) => format!("slot {s} (out of range)"),
            None => "no slot".into(),
        },
    }
}

/// `subnets-unique` over `views`, the views of the live nodes in scope of one network:
/// each view gives each slot one owner and each owner one slot; all views agree on the
/// slot of every node among them; each of those nodes holds one, unless the network is
/// full; and no subnet is routed (or held) by two views to two different nodes.
pub(crate) fn subnets_unique(net: &Network, views: &[View<'_>]) -> Result<(), String> {
    let name = &net.name;
    let Some(first) = views.first() else {
        return Ok(());
    };
    // A view whose maps equal the first's is checked by checking the first's: with a
    // thousand views, most checks compare equal maps, not look up every entry.
    let same: Vec<bool> = views
        .iter()
        .map(|v| v.alloc.slots == first.alloc.slots && v.alloc.owners == first.alloc.owners)
        .collect();
    for (v, _) in views
        .iter()
        .zip(&same)
        .filter(|(v, same)| v.node == first.node || !**same)
    {
        let a = v.alloc;
        let inverse = a.owners.len() == a.slots.len()
            && a.slots.iter().all(|(n, s)| a.owners.get(s) == Some(n));
        if !inverse {
            return Err(format!(
                "network {name}: n{}'s allocation gives a slot two owners or an owner two slots",
                v.node.0
            ));
        }
    }
    for (v, _) in views.iter().zip(&same).filter(|(_, same)| !**same) {
        for x in views.iter().map(|x| x.node) {
            let (a, b) = (first.alloc.slots.get(&x), v.alloc.slots.get(&x));
            if a != b {
                return Err(format!(
                    "network {name}: n{} sees n{} holding {}, but n{} sees it holding {}",
                    first.node.0,
                    x.0,
                    slot_text(net, a),
                    v.node.0,
                    slot_text(net, b)
                ));
            }
        }
    }
    let (held, capacity) = (first.alloc.owners.len(), net.capacity() as usize);
    if held < capacity
        && let Some(x) = views
            .iter()
            .find(|x| !first.alloc.slots.contains_key(&x.node))
    {
        return Err(format!(
            "network {name}: n{} holds no slot, though only {held} of {capacity} are held",
            x.node.0
        ));
    }
    // subnet -> (the node it goes to, the node that routes it there).
    let mut routes: BTreeMap<Prefix, (NodeId, NodeId)> = BTreeMap::new();
    let mut route = |subnet: Option<Prefix>, to: NodeId, by: NodeId| {
        let Some(subnet) = subnet else {
            return Ok(());
        };
        match routes.get(&subnet) {
            Some((other, first_by)) if *other != to => Err(format!(
                "network {name}: n{} routes {subnet} to n{}, but n{} routes it to n{}",
                first_by.0, other.0, by.0, to.0
            )),
            Some(_) => Ok(()),
            None => {
                routes.insert(subnet, (to, by));
                Ok(())
            }
        }
    };
    for v in views {
        if let Some(share) = v.desired.share {
            route(Some(share.subnet), v.node, v.node)?;
            route(share.subnet6, v.node, v.node)?;
        }
        // A peer the first view programs with the same subnets adds nothing new (both
        // maps are in id order: one merge pass).
        let mut reference = first.desired.peers.iter().peekable();
        for (n, r) in &v.desired.peers {
            while reference.next_if(|(m, _)| *m < n).is_some() {}
            let known = v.node != first.node
                && reference.peek().is_some_and(|(m, f)| {
                    *m == n && f.subnet == r.subnet && f.subnet6 == r.subnet6
                });
            if !known {
                route(Some(r.subnet), *n, v.node)?;
                route(r.subnet6, *n, v.node)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hawser_dataplane::overlay::VtepRecord;

    use super::*;

    /// 4 slots, so that a full network is easy to build.
    fn net() -> Network {
        "name=t,subnet=9.0.0.0/22,prefix=24".parse().unwrap()
    }

    /// A view in which each `(node, slot)` holds its slot, and `me` programs every
    /// other holder as a peer.
    fn view(me: u64, holders: &[(u64, u32)]) -> (NodeId, Allocation, Desired) {
        let net = net();
        let mut alloc = Allocation::default();
        let mut desired = Desired::default();
        for (n, s) in holders {
            let (node, slot) = (NodeId(*n), Slot(*s));
            alloc.owners.insert(slot, node);
            alloc.slots.insert(node, slot);
            let share = net.share(slot).unwrap();
            if *n == me {
                desired.share = Some(share);
            } else {
                let record = VtepRecord::new(node, underlay(*n as usize), &share);
                desired.peers.insert(node, record);
            }
        }
        (NodeId(me), alloc, desired)
    }

    fn check(views: &[(NodeId, Allocation, Desired)]) -> Result<(), String> {
        let views: Vec<View<'_>> = views
            .iter()
            .map(|(node, alloc, desired)| View {
                node: *node,
                alloc,
                desired,
            })
            .collect();
        subnets_unique(&net(), &views)
    }

    #[test]
    fn agreeing_views_pass() {
        let all = [(1, 0), (2, 3), (3, 1)];
        assert_eq!(
            check(&[view(1, &all), view(2, &all), view(3, &all)]),
            Ok(())
        );
        // A view may still hold a node that is not among the views (a dead one).
        let with_dead = [(1, 0), (2, 3), (3, 1), (9, 2)];
        assert_eq!(check(&[view(1, &with_dead), view(2, &all)]), Ok(()));
    }

    #[test]
    fn two_views_that_give_one_slot_to_two_nodes_are_caught() {
        // Across a partition: n1 and n2 each think they hold slot 0.
        let left = view(1, &[(1, 0)]);
        let right = view(2, &[(2, 0)]);
        assert_eq!(
            check(&[left, right]),
            Err(
                "network t: n1 sees n1 holding slot 0 (9.0.0.0/24), but n2 sees it \
                 holding no slot"
                    .into()
            )
        );
    }

    #[test]
    fn disagreeing_on_another_node_is_caught() {
        let a = view(1, &[(1, 0), (2, 1)]);
        let b = view(2, &[(1, 0), (2, 2)]);
        let err = check(&[a, b]).unwrap_err();
        assert!(
            err.contains("sees n2 holding slot 1") && err.contains("slot 2"),
            "{err}"
        );
    }

    #[test]
    fn a_node_without_a_slot_fails_unless_the_network_is_full() {
        let some = [(1, 0), (2, 1)];
        let views = [view(1, &some), view(2, &some), view(3, &some)];
        assert_eq!(
            check(&views),
            Err("network t: n3 holds no slot, though only 2 of 4 are held".into())
        );
        // Full: two dead nodes hold the other slots, and n3 cannot get one.
        let full = [(1, 0), (2, 1), (7, 2), (8, 3)];
        let views = [view(1, &full), view(2, &full), view(3, &full)];
        assert_eq!(check(&views), Ok(()));
    }

    #[test]
    fn a_subnet_routed_to_two_nodes_is_caught_even_when_allocations_agree() {
        let all = [(1, 0), (2, 1), (3, 2)];
        let a = view(1, &all);
        let mut b = view(2, &all);
        // n2 programs n3 with a record of n1's subnet (a stale record: not what
        // `desired` does, which is what this check is for).
        let wrong = VtepRecord::new(NodeId(3), underlay(3), &net().share(Slot(0)).unwrap());
        b.2.peers.insert(NodeId(3), wrong);
        assert_eq!(
            check(&[a, b]),
            Err("network t: n1 routes 9.0.0.0/24 to n1, but n2 routes it to n3".into())
        );
    }

    #[test]
    fn an_allocation_with_two_owners_of_a_slot_is_caught() {
        let (node, mut alloc, desired) = view(1, &[(1, 0), (2, 1)]);
        alloc.slots.insert(NodeId(2), Slot(0));
        let err = check(&[(node, alloc, desired)]).unwrap_err();
        assert!(err.contains("two owners"), "{err}");
    }

    #[test]
    fn underlay_addresses_are_distinct_and_in_the_benchmark_range() {
        assert_eq!(underlay(0), IpAddr::from([198, 18, 0, 1]));
        assert_eq!(underlay(255), IpAddr::from([198, 18, 1, 0]));
        assert_eq!(underlay(131_069), IpAddr::from([198, 19, 255, 254]));
        assert_eq!(underlay(131_070), underlay(0));
    }
}
