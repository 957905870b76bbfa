//! The graph packed into flat arrays, for searches repeated on one graph generation.
//!
//! A multicast receiver searches from the origin of every packet it forwards (see
//! `bfs`). In a cluster of a thousand nodes each search walks a thousand slots, and the
//! live [`Graph`] keeps each slot's edges in an allocation of its own: a search was
//! mostly cache misses. Packed, the whole graph is flat arrays (out-edges, in-edges, ids —
//! about 60 KB at 1,000 nodes of degree 6), built once per generation and shared by every
//! search on it. Slots are the graph's own, so a slot means the same node in both.
//!
//! The in-edges are what make a parent cheap to find (see `bfs`): a node's parent is one
//! of the nodes that list it, so the search itself need not track parents at all.

use super::graph::Graph;
use crate::id::NodeId;

#[derive(Debug, Default)]
pub struct Packed {
    generation: u64,
    /// Slot `s`'s out-edges are `edges[offsets[s]..offsets[s + 1]]`, sorted by target id.
    offsets: Vec<u32>,
    edges: Vec<u32>,
    /// Slot `s`'s in-edges (the slots that list it), `in_edges[in_offsets[s]..in_offsets[s + 1]]`.
    in_offsets: Vec<u32>,
    in_edges: Vec<u32>,
    ids: Vec<NodeId>,
}

impl Packed {
    /// A packed copy of `g` as it is now.
    pub fn of(g: &Graph) -> Packed {
        let n = g.slot_count();
        let mut p = Packed {
            generation: g.generation(),
            offsets: Vec::with_capacity(n + 1),
            edges: Vec::new(),
            in_offsets: vec![0; n + 1],
            in_edges: Vec::new(),
            ids: Vec::with_capacity(n),
        };
        p.offsets.push(0);
        for s in 0..n as u32 {
            p.edges.extend_from_slice(g.out(s));
            p.offsets.push(p.edges.len() as u32);
            p.ids.push(g.id_of(s));
        }
        // Counting sort of the edges by target: count, prefix-sum, place.
        for &t in &p.edges {
            p.in_offsets[t as usize + 1] += 1;
        }
        for s in 0..n {
            p.in_offsets[s + 1] += p.in_offsets[s];
        }
        let mut next = p.in_offsets.clone();
        let mut in_edges = vec![0; p.edges.len()];
        for s in 0..n as u32 {
            for &t in p.out(s) {
                in_edges[next[t as usize] as usize] = s;
                next[t as usize] += 1;
            }
        }
        p.in_edges = in_edges;
        p
    }

    /// The generation of the graph this is a copy of.
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn slot_count(&self) -> usize {
        self.ids.len()
    }
    pub fn out(&self, slot: u32) -> &[u32] {
        let s = slot as usize;
        &self.edges[self.offsets[s] as usize..self.offsets[s + 1] as usize]
    }
    /// The slots whose out-edges include `slot`.
    pub fn incoming(&self, slot: u32) -> &[u32] {
        let s = slot as usize;
        &self.in_edges[self.in_offsets[s] as usize..self.in_offsets[s + 1] as usize]
    }
    pub fn id_of(&self, slot: u32) -> NodeId {
        self.ids[slot as usize]
    }
}
