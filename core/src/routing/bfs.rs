//! Shortest-hop trees: a level-synchronous breadth-first search with a deterministic
//! choice of parent.
//!
//! Among the nodes one hop closer to the root that list `v`, `v`'s parent is the one of
//! lowest *rank*. Tree 0 ranks by `NodeId`; the redundant trees multicast uses rank by a
//! per-tree hash of the id, so they pick different parents wherever the graph offers a
//! choice, while staying shortest-hop trees. The rank depends on ids only, never on
//! slots or on the order entries arrived, so every node holding the same graph builds
//! the same tree.
//!
//! The search itself computes distances only. A node's parent in any tree is read off
//! afterwards from its in-edges: the lowest-ranked of the nodes one level closer that
//! list it. So one search serves every tree, and a caller that needs only one node's
//! children (multicast, for each packet it forwards) stops once that node's level is
//! done and ranks a handful of in-edges, instead of ranking every edge of the graph.

use super::graph::Graph;
use super::packed::Packed;
use crate::id::NodeId;
use crate::rng::mix_seed;

/// Distance of a slot the search did not reach.
pub const UNSEEN: u32 = u32::MAX;

/// The rank that decides ties between equally short parents in tree `tree`: injective
/// (the id breaks hash collisions), and the identity order for tree 0.
pub fn rank(tree: u8, id: NodeId) -> (u64, u64) {
    if tree == 0 {
        (id.0, 0)
    } else {
        (mix_seed(id.0, u64::from(tree)), id.0)
    }
}

/// One search's results, by slot, in buffers reused from search to search.
#[derive(Debug, Default)]
pub struct Bfs {
    pub dist: Vec<u32>,
    /// Slots reached, in the order they were reached (root first).
    pub order: Vec<u32>,
}

impl Bfs {
    /// Search from `root` (a slot of `g`). With `stop_after`, stop once that slot's level
    /// has been expanded: the next level is then found, so the slot's children in every
    /// tree are final, and nothing deeper is computed.
    pub fn run(&mut self, g: &Packed, root: u32, stop_after: Option<u32>) {
        for &s in &self.order {
            if let Some(d) = self.dist.get_mut(s as usize) {
                *d = UNSEEN;
            }
        }
        self.dist.resize(g.slot_count(), UNSEEN);
        self.order.clear();
        self.dist[root as usize] = 0;
        self.order.push(root);
        let mut level_start = 0;
        let mut depth = 0;
        while level_start < self.order.len() {
            if stop_after.is_some_and(|s| self.dist[s as usize] < depth) {
                break;
            }
            let level_end = self.order.len();
            for i in level_start..level_end {
                for &v in g.out(self.order[i]) {
                    if self.dist[v as usize] == UNSEEN {
                        self.dist[v as usize] = depth + 1;
                        self.order.push(v);
                    }
                }
            }
            level_start = level_end;
            depth += 1;
        }
    }

    /// Whether the last search reached `slot`.
    pub fn reached(&self, slot: u32) -> bool {
        self.dist.get(slot as usize).is_some_and(|d| *d != UNSEEN)
    }

    /// `slot`'s parent in tree `tree` of the last search on `g`: the lowest-ranked node
    /// one level closer that lists it (`UNSEEN` for the root and for unreached slots).
    pub fn parent(&self, g: &Packed, tree: u8, slot: u32) -> u32 {
        let d = self.dist[slot as usize];
        if d == 0 || d == UNSEEN {
            return UNSEEN;
        }
        g.incoming(slot)
            .iter()
            .copied()
            .filter(|&u| self.dist[u as usize] == d - 1)
            .min_by_key(|&u| rank(tree, g.id_of(u)))
            .unwrap_or(UNSEEN)
    }
}

/// The reachable set (`seen`) and, for each node reached, the slot it was first reached
/// from (`via`; any spanning tree will do): what a node needs after a cutting removal.
pub fn reach(g: &Graph, root: u32, seen: &mut Vec<bool>, via: &mut Vec<u32>, stack: &mut Vec<u32>) {
    seen.clear();
    seen.resize(g.slot_count(), false);
    via.clear();
    via.resize(g.slot_count(), UNSEEN);
    stack.clear();
    seen[root as usize] = true;
    stack.push(root);
    while let Some(u) = stack.pop() {
        for &v in g.out(u) {
            if !seen[v as usize] {
                seen[v as usize] = true;
                via[v as usize] = u;
                stack.push(v);
            }
        }
    }
}
