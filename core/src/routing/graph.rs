//! The cluster graph as routing reads it: every node's out-adjacency, interned into
//! dense slots so a breadth-first search runs over plain vectors.
//!
//! A node is *present* when its own adjacency is known (global membership holds its
//! entry) and *referenced* when another node lists it. Both kinds are graph nodes: a
//! node listed by a reachable neighbour is reachable even before its own entry arrives.
//! A slot is freed (and reused) once its node is neither present nor referenced, so the
//! graph never grows beyond the nodes that matter.
//!
//! Slots are private: every order that reaches an output (adjacency lists, tie-breaks)
//! is by [`NodeId`], so two nodes that interned the same graph in different orders still
//! compute the same trees.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::id::NodeId;

/// Out-edges a slot holds inline: an overlay node has a handful of neighbours (6 by
/// default), so nearly every slot's edges sit in the slot array itself and a search
/// walks one contiguous block rather than one allocation per node.
const INLINE_EDGES: usize = 8;

#[derive(Debug)]
struct Slot {
    id: NodeId,
    /// Out-edges, as slots, sorted by the target's `NodeId`.
    out: SmallVec<[u32; INLINE_EDGES]>,
    present: bool,
    /// How many present nodes list this one.
    referenced: u32,
}

impl Slot {
    fn vacant(id: NodeId) -> Slot {
        Slot {
            id,
            out: SmallVec::new(),
            present: false,
            referenced: 0,
        }
    }
}

/// A directed graph over node ids; see the module docs.
#[derive(Debug, Default)]
pub struct Graph {
    /// Lookups only: every order that reaches an output is by id (see the module docs).
    index: FxHashMap<NodeId, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Bumped on every change, so caches derived from the graph know they are stale.
    generation: u64,
}

/// What [`Graph::set_adjacency`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EdgeDiff {
    pub added: Vec<NodeId>,
    pub removed: Vec<NodeId>,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// Graph nodes (present or referenced).
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    pub fn contains(&self, node: NodeId) -> bool {
        self.index.contains_key(&node)
    }
    pub fn is_present(&self, node: NodeId) -> bool {
        self.slot(node)
            .is_some_and(|s| self.slots[s as usize].present)
    }
    /// Every graph node, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + use<> {
        let mut ids: Vec<NodeId> = self.index.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
    }
    /// `node`'s out-neighbours, in id order (none if it is not in the graph).
    pub fn neighbors(&self, node: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let out: &[u32] = match self.slot(node) {
            Some(s) => &self.slots[s as usize].out,
            None => &[],
        };
        out.iter().map(|&t| self.slots[t as usize].id)
    }
    /// Edges in the graph.
    pub fn edge_count(&self) -> usize {
        self.slots.iter().map(|s| s.out.len()).sum()
    }

    /// Set `node`'s out-adjacency (self-loops and repeats are ignored) and mark it
    /// present. Returns which edges appeared and disappeared.
    pub fn set_adjacency(&mut self, node: NodeId, targets: &[NodeId]) -> EdgeDiff {
        // Entries list their neighbours sorted, once each, never themselves; only
        // anything else is copied to be put in that form.
        let normal = targets.is_sorted_by(|a, b| a < b) && targets.binary_search(&node).is_err();
        let sorted;
        let new: &[NodeId] = if normal {
            targets
        } else {
            let mut v: Vec<NodeId> = targets.iter().copied().filter(|t| *t != node).collect();
            v.sort_unstable();
            v.dedup();
            sorted = v;
            &sorted
        };
        let s = self.intern(node);
        self.slots[s as usize].present = true;
        let diff = sorted_diff(self.neighbors(node), new);
        if diff.added.is_empty() && diff.removed.is_empty() {
            return diff;
        }
        self.generation += 1;
        let mut out = SmallVec::with_capacity(new.len());
        for t in new {
            let ts = self.intern(*t);
            if diff.added.binary_search(t).is_ok() {
                self.slots[ts as usize].referenced += 1;
            }
            out.push(ts);
        }
        self.slots[s as usize].out = out;
        for t in &diff.removed {
            self.unreference(*t);
        }
        diff
    }

    /// Forget `node`'s own adjacency. It stays a graph node while others list it.
    pub fn remove(&mut self, node: NodeId) -> EdgeDiff {
        let Some(s) = self.slot(node) else {
            return EdgeDiff::default();
        };
        let diff = self.set_adjacency(node, &[]);
        self.slots[s as usize].present = false;
        self.generation += 1;
        self.release_if_unused(s);
        diff
    }

    /// Whether `from` lists `to` among its out-neighbours.
    pub fn lists(&self, from: NodeId, to: NodeId) -> bool {
        self.slot(from).is_some_and(|s| {
            self.slots[s as usize]
                .out
                .binary_search_by_key(&to, |&t| self.slots[t as usize].id)
                .is_ok()
        })
    }

    pub(crate) fn slot(&self, node: NodeId) -> Option<u32> {
        self.index.get(&node).copied()
    }
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }
    pub(crate) fn id_of(&self, slot: u32) -> NodeId {
        self.slots[slot as usize].id
    }
    pub(crate) fn out(&self, slot: u32) -> &[u32] {
        &self.slots[slot as usize].out
    }

    /// Heap bytes held (an estimate from capacities), for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        // A hashed slot is the pair plus one control byte.
        let index = self.index.capacity() * (size_of::<NodeId>() + size_of::<u32>() + 1);
        let slots = self.slots.capacity() * size_of::<Slot>();
        let edges: usize = self
            .slots
            .iter()
            .filter(|s| s.out.spilled())
            .map(|s| s.out.capacity() * 4)
            .sum();
        index + slots + edges + self.free.capacity() * 4
    }

    fn intern(&mut self, node: NodeId) -> u32 {
        if let Some(s) = self.slot(node) {
            return s;
        }
        let slot = Slot::vacant(node);
        // A new slot is a change even before it has edges: a packed copy made before it
        // (see `packed`) has no such slot.
        self.generation += 1;
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = slot;
                s
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(node, s);
        s
    }

    fn unreference(&mut self, node: NodeId) {
        if let Some(s) = self.slot(node) {
            let slot = &mut self.slots[s as usize];
            slot.referenced = slot.referenced.saturating_sub(1);
            self.release_if_unused(s);
        }
    }

    fn release_if_unused(&mut self, s: u32) {
        let slot = &mut self.slots[s as usize];
        if !slot.present && slot.referenced == 0 {
            self.index.remove(&slot.id);
            *slot = Slot::vacant(slot.id);
            self.free.push(s);
        }
    }
}

/// What is in `new` and not `old`, and the reverse (both sorted).
fn sorted_diff(old: impl Iterator<Item = NodeId>, new: &[NodeId]) -> EdgeDiff {
    let mut diff = EdgeDiff::default();
    let mut old = old.peekable();
    let mut new = new.iter().copied().peekable();
    loop {
        match (old.peek().copied(), new.peek().copied()) {
            (Some(a), Some(b)) if a == b => {
                old.next();
                new.next();
            }
            (Some(a), Some(b)) if a < b => {
                diff.removed.push(a);
                old.next();
            }
            (Some(a), None) => {
                diff.removed.push(a);
                old.next();
            }
            (_, Some(b)) => {
                diff.added.push(b);
                new.next();
            }
            (None, None) => return diff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn adjacency_is_sorted_deduplicated_and_diffed() {
        let mut g = Graph::new();
        let d = g.set_adjacency(NodeId(1), &ids(&[3, 2, 3, 1]));
        assert_eq!(d.added, ids(&[2, 3]));
        assert_eq!(g.neighbors(NodeId(1)).collect::<Vec<_>>(), ids(&[2, 3]));
        let d = g.set_adjacency(NodeId(1), &ids(&[4, 2]));
        assert_eq!((d.added, d.removed), (ids(&[4]), ids(&[3])));
        assert!(
            !g.contains(NodeId(3)),
            "an unreferenced, absent node is dropped"
        );
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn a_new_node_is_a_new_generation_even_without_edges() {
        let mut g = Graph::new();
        g.set_adjacency(NodeId(1), &ids(&[2]));
        let before = g.generation();
        g.set_adjacency(NodeId(3), &[]);
        assert_ne!(
            g.generation(),
            before,
            "a copy packed before lacks n3's slot"
        );
        let before = g.generation();
        g.set_adjacency(NodeId(3), &[]);
        assert_eq!(g.generation(), before, "nothing changed");
    }

    #[test]
    fn removed_node_stays_while_referenced_and_slots_are_reused() {
        let mut g = Graph::new();
        g.set_adjacency(NodeId(1), &ids(&[2]));
        g.set_adjacency(NodeId(2), &ids(&[1]));
        g.remove(NodeId(2));
        assert!(g.contains(NodeId(2)) && !g.is_present(NodeId(2)));
        g.remove(NodeId(1));
        assert!(g.is_empty());
        g.set_adjacency(NodeId(7), &ids(&[8]));
        assert_eq!(g.slot_count(), 2, "freed slots were reused");
    }
}
