//! Routing over the global membership graph: who this node can reach, how far anyone
//! is from anyone, the path between them, and shortest-hop trees (Lashup's
//! `lashup_gm_route`).
//!
//! The one answer every change needs — this node's reachable set, which drives the
//! reachable / unreachable events — is kept up to date cheaply:
//! - an edge **added** from a reachable node extends the set by a search over the newly
//!   reached nodes only (nothing at all when its target was already reachable), which is
//!   what nearly every change in a growing or steady cluster is;
//! - an edge **removed** can only cut the set if it is the edge through which its target
//!   was reached (a spanning tree of the reachable set is kept for this). Every other
//!   removal — most of them, since the tree holds one edge per node out of several —
//!   costs nothing. A removed tree edge is first repaired locally: its target hangs on
//!   another neighbour that lists it and is still rooted, which in a churning overlay
//!   is nearly always there. Only when none is does the set go stale, and the owner
//!   (global membership) coalesces a burst of such changes into one full search
//!   ([`Routing::recompute`]) shortly after.
//!
//! Distances, paths and trees from arbitrary roots are computed on demand by a
//! level-synchronous BFS (see `bfs`), in O(nodes + edges).
//!
//! Files: `graph` (interned adjacency), `bfs` (the search and its tie-break), `tree`
//! (the owned result).

mod bfs;
mod graph;
mod packed;
mod reach_set;
mod tree;

#[cfg(test)]
mod props;

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

pub use bfs::rank;
pub use graph::{EdgeDiff, Graph};
pub use packed::Packed;
pub use reach_set::digest_of;

use reach_set::ReachSet;
pub use tree::{Hop, Tree};

pub(crate) use bfs::{Bfs, UNSEEN};

use crate::id::NodeId;

/// A node that became reachable (`true`) or unreachable (`false`) from this one.
pub type ReachChange = (NodeId, bool);

/// The graph, and this node's reachable set kept current; see the module docs.
#[derive(Debug)]
pub struct Routing {
    me: NodeId,
    graph: Graph,
    /// Reachable from `me` (`me` included), as of the last update.
    reachable: ReachSet,
    /// An edge removal may have cut `reachable`; [`Routing::recompute`] settles it.
    stale: bool,
    /// Changes to `reachable` not yet taken by the owner.
    changes: Vec<ReachChange>,
    /// For each reachable node but `me`, the node it was reached through: a spanning tree
    /// of `reachable`. Only removing one of these edges can cut the set. Looked up only
    /// (a removed edge's target, a parent's path to the root), never iterated.
    via: FxHashMap<NodeId, NodeId>,
    seen: Vec<bool>,
    via_slots: Vec<u32>,
    stack: Vec<u32>,
}

impl Routing {
    pub fn new(me: NodeId) -> Routing {
        let mut graph = Graph::new();
        graph.set_adjacency(me, &[]);
        let mut reachable = ReachSet::default();
        reachable.insert(me);
        Routing {
            me,
            graph,
            reachable,
            stale: false,
            changes: Vec::new(),
            via: FxHashMap::default(),
            seen: Vec::new(),
            via_slots: Vec::new(),
            stack: Vec::new(),
        }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Set `node`'s out-adjacency. True when that changed its edges.
    pub fn set_adjacency(&mut self, node: NodeId, targets: &[NodeId]) -> bool {
        let diff = self.graph.set_adjacency(node, targets);
        let changed = !(diff.added.is_empty() && diff.removed.is_empty());
        self.absorb(node, diff);
        changed
    }

    /// Forget `node`'s adjacency (it stays a graph node while someone lists it).
    pub fn remove(&mut self, node: NodeId) {
        if node == self.me {
            return;
        }
        // A reachable node is listed by a reachable one, so it stays in the graph
        // until that edge goes too, which marks the set stale.
        let diff = self.graph.remove(node);
        self.absorb(node, diff);
    }

    fn absorb(&mut self, node: NodeId, diff: EdgeDiff) {
        if self.stale || !self.reachable.contains(node) {
            // Edges out of an unreachable node change nothing we can reach; and a full
            // search is already due.
            return;
        }
        let cut: Vec<NodeId> = diff
            .removed
            .iter()
            .filter(|t| self.via.get(t) == Some(&node))
            .copied()
            .collect();
        if !self.reattach(cut) {
            self.stale = true;
            return;
        }
        for t in diff.added {
            if !self.reachable.contains(t) {
                self.extend_from(node, t);
            }
        }
    }

    /// The tree edges into `cut` are gone: hang each of them on another reachable node
    /// that lists it and does not itself hang below it. Overlay links are nearly always
    /// symmetric, so a node's own neighbours are where such a parent is looked for; a
    /// node that one freed now can take in turn. False when some node finds no parent
    /// that way (the set may really be cut: a full search must settle it).
    fn reattach(&mut self, mut cut: Vec<NodeId>) -> bool {
        for t in &cut {
            self.via.remove(t);
        }
        while !cut.is_empty() {
            let before = cut.len();
            cut.retain(|&t| match self.new_parent(t) {
                Some(p) => {
                    self.via.insert(t, p);
                    false
                }
                None => true,
            });
            if cut.len() == before {
                return false;
            }
        }
        true
    }

    /// A reachable neighbour of `t` that lists `t` and whose tree path to this node is
    /// whole and does not pass through `t`.
    fn new_parent(&self, t: NodeId) -> Option<NodeId> {
        let ts = self.graph.slot(t)?;
        self.graph
            .out(ts)
            .iter()
            .map(|&p| self.graph.id_of(p))
            .find(|&p| self.reachable.contains(p) && self.graph.lists(p, t) && self.rooted(p))
    }

    /// Whether `p`'s tree path leads to this node (it does not while it passes through
    /// a node whose tree edge is cut: that node has no `via`).
    fn rooted(&self, mut p: NodeId) -> bool {
        while p != self.me {
            match self.via.get(&p) {
                Some(&up) => p = up,
                None => return false,
            }
        }
        true
    }

    /// `start` just became reachable through `from`: add it and whatever it reaches that
    /// we did not.
    fn extend_from(&mut self, from: NodeId, start: NodeId) {
        self.stack.clear();
        if let Some(s) = self.graph.slot(start) {
            self.reachable.insert(start);
            self.via.insert(start, from);
            self.changes.push((start, true));
            self.stack.push(s);
        }
        while let Some(u) = self.stack.pop() {
            let uid = self.graph.id_of(u);
            for i in 0..self.graph.out(u).len() {
                let v = self.graph.out(u)[i];
                let id = self.graph.id_of(v);
                if self.reachable.insert(id) {
                    self.via.insert(id, uid);
                    self.changes.push((id, true));
                    self.stack.push(v);
                }
            }
        }
    }

    /// Whether a removal awaits [`Routing::recompute`].
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Settle the reachable set with one full search, if a removal made it stale.
    pub fn recompute(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        let Some(root) = self.graph.slot(self.me) else {
            return;
        };
        bfs::reach(
            &self.graph,
            root,
            &mut self.seen,
            &mut self.via_slots,
            &mut self.stack,
        );
        let (graph, seen) = (&self.graph, &self.seen);
        let reached = |id: &NodeId| graph.slot(*id).is_some_and(|s| seen[s as usize]);
        let lost: Vec<NodeId> = self
            .reachable
            .ordered()
            .iter()
            .filter(|id| !reached(id))
            .copied()
            .collect();
        for id in lost {
            self.reachable.remove(id);
            self.changes.push((id, false));
        }
        self.via.clear();
        for (s, &from) in self.via_slots.iter().enumerate() {
            if from != UNSEEN {
                self.via
                    .insert(self.graph.id_of(s as u32), self.graph.id_of(from));
            }
        }
        for (s, &hit) in self.seen.iter().enumerate() {
            if hit {
                let id = self.graph.id_of(s as u32);
                if self.reachable.insert(id) {
                    self.changes.push((id, true));
                }
            }
        }
    }

    /// Reachability changes since the last call, in the order they happened.
    pub fn take_changes(&mut self) -> Vec<ReachChange> {
        std::mem::take(&mut self.changes)
    }

    /// Whether `node` is reachable from this node (as of the last update).
    pub fn is_reachable(&self, node: NodeId) -> bool {
        self.reachable.contains(node)
    }
    /// Nodes reachable from this node, itself included, in id order.
    pub fn reachable(&self) -> &BTreeSet<NodeId> {
        self.reachable.ordered()
    }
    /// XOR of [`digest_of`] over the reachable set: equal sets have equal digests, so a
    /// whole set compares in O(1).
    pub fn reachable_digest(&self) -> u64 {
        self.reachable.digest()
    }
    /// Graph nodes not reachable from this node, in id order.
    pub fn unreachable(&self) -> Vec<NodeId> {
        self.graph
            .nodes()
            .filter(|n| !self.reachable.contains(*n))
            .collect()
    }

    /// Nodes reachable from `from` (itself included), computed now.
    pub fn reachable_from(&self, from: NodeId) -> BTreeSet<NodeId> {
        let Some(root) = self.graph.slot(from) else {
            return BTreeSet::new();
        };
        let (mut seen, mut stack) = (Vec::new(), Vec::new());
        bfs::reach(&self.graph, root, &mut seen, &mut Vec::new(), &mut stack);
        seen.iter()
            .enumerate()
            .filter(|(_, hit)| **hit)
            .map(|(s, _)| self.graph.id_of(s as u32))
            .collect()
    }

    /// Hops from `from` to every node reachable from it (itself at 0): one search,
    /// where asking [`Routing::distance`] of each node searches once per node (an
    /// agent listing 100 members took ~5 ms per `GET /v1/members` that way).
    pub fn distances(&self, from: NodeId) -> BTreeMap<NodeId, u32> {
        let Some(root) = self.graph.slot(from) else {
            return BTreeMap::new();
        };
        let mut bfs = Bfs::default();
        bfs.run(&self.packed(), root, None);
        bfs.order
            .iter()
            .map(|&s| (self.graph.id_of(s), bfs.dist[s as usize]))
            .collect()
    }

    /// Hops from `a` to `b`, if `b` is reachable from `a`.
    pub fn distance(&self, a: NodeId, b: NodeId) -> Option<u32> {
        let (_, bfs, target) = self.search(a, b)?;
        let d = bfs.dist[target as usize];
        (d != UNSEEN).then_some(d)
    }

    /// The shortest path from `a` to `b`, both included: the path to `b` in `tree(a)`.
    pub fn path(&self, a: NodeId, b: NodeId) -> Option<Vec<NodeId>> {
        let (packed, bfs, target) = self.search(a, b)?;
        if !bfs.reached(target) {
            return None;
        }
        let mut path = vec![b];
        let mut at = target;
        while bfs.parent(&packed, 0, at) != UNSEEN {
            at = bfs.parent(&packed, 0, at);
            path.push(self.graph.id_of(at));
        }
        path.reverse();
        Some(path)
    }

    /// The shortest-hop tree from `root` (tree 0: ties go to the lowest id).
    pub fn tree(&self, root: NodeId) -> Option<Tree> {
        self.tree_k(root, 0)
    }

    /// Redundant tree `k` from `root` (see `rank`); `tree_k(root, 0) == tree(root)`.
    pub fn tree_k(&self, root: NodeId, k: u8) -> Option<Tree> {
        let (packed, bfs, _) = self.search(root, root)?;
        let hops = bfs
            .order
            .iter()
            .map(|&s| {
                let p = bfs.parent(&packed, k, s);
                let hop = Hop {
                    distance: bfs.dist[s as usize],
                    parent: (p != UNSEEN).then(|| self.graph.id_of(p)),
                };
                (self.graph.id_of(s), hop)
            })
            .collect();
        Some(Tree::new(root, hops))
    }

    /// This node's graph packed for repeated searches (see `packed`); valid while the
    /// graph's generation stays `Packed::generation`.
    pub fn packed(&self) -> Packed {
        Packed::of(&self.graph)
    }

    /// `node`'s children in each tree of `trees` from `root`, in id order, searched in
    /// `packed` (which must be of the current graph) with `bfs` as scratch; `None` when
    /// `root` does not reach `node`.
    pub(crate) fn children(
        &self,
        packed: &Packed,
        bfs: &mut Bfs,
        root: NodeId,
        trees: &[u8],
        node: NodeId,
    ) -> Option<Vec<Vec<NodeId>>> {
        debug_assert_eq!(packed.generation(), self.graph.generation());
        let me = self.graph.slot(node)?;
        let root = self.graph.slot(root)?;
        bfs.run(packed, root, Some(me));
        if !bfs.reached(me) {
            return None;
        }
        let below = bfs.dist[me as usize] + 1;
        let children = trees
            .iter()
            .map(|&k| {
                packed
                    .out(me)
                    .iter()
                    .filter(|&&v| bfs.dist[v as usize] == below && bfs.parent(packed, k, v) == me)
                    .map(|&v| packed.id_of(v))
                    .collect()
            })
            .collect();
        Some(children)
    }

    /// The search from `a` in a fresh packing, with `b`'s slot; `None` when either is not
    /// in the graph. (These on-demand queries pack the graph each time: one
    /// O(nodes + edges) copy, the price of one search implementation.)
    fn search(&self, a: NodeId, b: NodeId) -> Option<(Packed, Bfs, u32)> {
        let (root, target) = (self.graph.slot(a)?, self.graph.slot(b)?);
        let packed = self.packed();
        let mut bfs = Bfs::default();
        bfs.run(&packed, root, None);
        Some((packed, bfs, target))
    }

    /// Heap bytes held (estimate), for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        let set = self.reachable.heap_bytes();
        self.graph.heap_bytes() + set + self.seen.capacity() + self.stack.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u64) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn additions_extend_and_removals_wait_for_recompute() {
        let mut r = Routing::new(n(1));
        r.set_adjacency(n(1), &[n(2)]);
        r.set_adjacency(n(2), &[n(3), n(1)]);
        assert!(r.is_reachable(n(3)) && !r.is_stale());
        assert_eq!(r.take_changes(), [(n(2), true), (n(3), true)]);
        r.set_adjacency(n(4), &[n(1)]);
        assert!(
            !r.is_reachable(n(4)),
            "listing us does not make a node reachable"
        );
        r.set_adjacency(n(2), &[n(1)]);
        assert!(r.is_stale() && r.is_reachable(n(3)));
        r.recompute();
        assert!(!r.is_reachable(n(3)));
        assert_eq!(r.take_changes(), [(n(3), false)]);
        // 3 is listed by nobody and has no entry: it left the graph.
        assert_eq!(r.unreachable(), [n(4)]);
    }

    #[test]
    fn ties_go_to_the_lowest_id_in_tree_zero() {
        // 1 → {2, 3} → 4: both are one hop from 4's level; 2 wins.
        let mut r = Routing::new(n(1));
        r.set_adjacency(n(1), &[n(3), n(2)]);
        r.set_adjacency(n(3), &[n(4)]);
        r.set_adjacency(n(2), &[n(4)]);
        let t = r.tree(n(1)).unwrap();
        assert_eq!(t.parent(n(4)), Some(n(2)));
        assert_eq!(r.path(n(1), n(4)).unwrap(), [n(1), n(2), n(4)]);
        assert_eq!(t.path_to(n(4)).unwrap(), [n(1), n(2), n(4)]);
        assert_eq!(r.distance(n(1), n(4)), Some(2));
        assert_eq!(r.distance(n(4), n(1)), None);
        assert_eq!(t.children(n(1)), [n(2), n(3)]);
    }

    #[test]
    fn a_cut_tree_edge_is_repaired_through_another_neighbour_without_a_search() {
        // A ring 1 - 2 - 3 - 4 - 1 (links both ways): 3 is reached through 2 or 4.
        let mut r = Routing::new(n(1));
        for (a, b, c) in [(1, 2, 4), (2, 1, 3), (3, 2, 4), (4, 3, 1)] {
            r.set_adjacency(n(a), &[n(b), n(c)]);
        }
        r.take_changes();
        // Cut 2 - 3 (both directions), then 3 - 4: the first is repaired, the second
        // really cuts 3 off.
        r.set_adjacency(n(2), &[n(1)]);
        r.set_adjacency(n(3), &[n(4)]);
        assert!(!r.is_stale(), "3 still hangs on 4");
        assert!(r.is_reachable(n(3)));
        r.set_adjacency(n(4), &[n(1)]);
        assert!(r.is_stale(), "3 has no other neighbour that lists it");
        r.recompute();
        assert!(!r.is_reachable(n(3)));
        assert_eq!(r.take_changes(), [(n(3), false)]);
    }

    #[test]
    fn a_removed_reachable_node_is_reported_once() {
        let mut r = Routing::new(n(1));
        r.set_adjacency(n(1), &[n(2)]);
        r.take_changes();
        r.set_adjacency(n(1), &[]);
        r.recompute();
        assert_eq!(r.take_changes(), [(n(2), false)]);
        r.recompute();
        assert!(r.take_changes().is_empty());
    }
}
