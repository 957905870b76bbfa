//! Shortest-hop trees: a level-synchronous breadth-first search with a deterministic
//! choice of parent.
//!
//! Among the nodes one hop closer to the root that list `v`, `v`'s parent is the one of
//! lowest *rank*. Tree 0 ranks by `NodeId`; the redundant trees multicast uses rank by a
//! per-tree hash of the id, so they pick different parents wherever the graph offers a
//! choice, while staying shortest-hop trees. The rank depends on ids only, never on
//! slots or on the order entries arrived, so every node holding the same graph builds
//! the same tree.

use super::graph::Graph;
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
    pub parent: Vec<u32>,
    /// Slots reached, in the order they were reached (root first).
    pub order: Vec<u32>,
    frontier: Vec<u32>,
}

impl Bfs {
    /// Search from `root` (a slot of `g`) for tree `tree`.
    pub fn run(&mut self, g: &Graph, root: u32, tree: u8) {
        let n = g.slot_count();
        for &s in &self.order {
            if let Some(d) = self.dist.get_mut(s as usize) {
                *d = UNSEEN;
            }
        }
        self.dist.resize(n, UNSEEN);
        self.parent.resize(n, UNSEEN);
        self.order.clear();
        self.frontier.clear();
        self.dist[root as usize] = 0;
        self.parent[root as usize] = UNSEEN;
        self.order.push(root);
        let mut level_start = 0;
        let mut depth = 0;
        while level_start < self.order.len() {
            let level_end = self.order.len();
            for i in level_start..level_end {
                let u = self.order[i];
                for &v in g.out(u) {
                    let d = &mut self.dist[v as usize];
                    if *d == UNSEEN {
                        *d = depth + 1;
                        self.parent[v as usize] = u;
                        self.order.push(v);
                    } else if *d == depth + 1 {
                        let p = self.parent[v as usize];
                        if rank(tree, g.id_of(u)) < rank(tree, g.id_of(p)) {
                            self.parent[v as usize] = u;
                        }
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
