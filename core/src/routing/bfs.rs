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
//! All trees from one root share their distances, so one search builds as many of them
//! as the caller asks for (multicast forwards along two); and a caller that needs only
//! one node's children stops once that node's level is done.

use smallvec::{SmallVec, smallvec};

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
    /// `parents[i][slot]`: the slot's parent in the `i`-th tree searched for.
    parents: Vec<Vec<u32>>,
    /// The rank of that parent (so a tie costs one comparison, not two hashes).
    parent_ranks: Vec<Vec<(u64, u64)>>,
    /// Slots reached, in the order they were reached (root first).
    pub order: Vec<u32>,
}

impl Bfs {
    /// Search from `root` (a slot of `g`) for each tree in `trees`. With `stop_after`,
    /// stop once that slot's level has been expanded: its children are final then, and
    /// nothing deeper is computed.
    pub fn run(&mut self, g: &Packed, root: u32, trees: &[u8], stop_after: Option<u32>) {
        let n = g.slot_count();
        for &s in &self.order {
            if let Some(d) = self.dist.get_mut(s as usize) {
                *d = UNSEEN;
            }
        }
        self.dist.resize(n, UNSEEN);
        self.parents.resize_with(trees.len(), Vec::new);
        self.parent_ranks.resize_with(trees.len(), Vec::new);
        for (parents, ranks) in self.parents.iter_mut().zip(&mut self.parent_ranks) {
            parents.resize(n, UNSEEN);
            ranks.resize(n, (0, 0));
            parents[root as usize] = UNSEEN;
        }
        self.order.clear();
        self.dist[root as usize] = 0;
        self.order.push(root);
        let mut ranks: SmallVec<[(u64, u64); 4]> = smallvec![(0, 0); trees.len()];
        let mut level_start = 0;
        let mut depth = 0;
        while level_start < self.order.len() {
            if stop_after.is_some_and(|s| self.dist[s as usize] < depth) {
                break;
            }
            let level_end = self.order.len();
            for i in level_start..level_end {
                let u = self.order[i];
                let uid = g.id_of(u);
                for (r, &tree) in ranks.iter_mut().zip(trees) {
                    *r = rank(tree, uid);
                }
                for &v in g.out(u) {
                    let v = v as usize;
                    if self.dist[v] == UNSEEN {
                        // Found: `u` is its parent unless a lower-ranked one comes.
                        self.dist[v] = depth + 1;
                        self.order.push(v as u32);
                        for (parents, best) in self.parents.iter_mut().zip(&mut self.parent_ranks) {
                            parents[v] = u;
                            best[v] = (u64::MAX, u64::MAX);
                        }
                    }
                    if self.dist[v] == depth + 1 {
                        for ((parents, best), r) in self
                            .parents
                            .iter_mut()
                            .zip(&mut self.parent_ranks)
                            .zip(&*ranks)
                        {
                            if *r < best[v] {
                                parents[v] = u;
                                best[v] = *r;
                            }
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

    /// `slot`'s parent in the `i`-th tree of the last search (`UNSEEN` for the root).
    pub fn parent(&self, i: usize, slot: u32) -> u32 {
        self.parents[i][slot as usize]
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
