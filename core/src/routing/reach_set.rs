//! The reachable set, kept three ways at once: in id order (what callers list and
//! events follow), hashed (what every edge change looks up, often several times), and
//! as an order-free fingerprint (so two nodes, or a checker holding the ground truth,
//! can compare whole sets in O(1)).

use std::collections::BTreeSet;

use rustc_hash::FxHashSet;

use crate::id::NodeId;
use crate::rng::mix_seed;

/// Salt of the members' hashes in [`ReachSet::digest`].
const DIGEST_SALT: u64 = 0x5EAC_4AB1_E5E7;

/// The fingerprint one node contributes to a set's digest; a set's digest is the XOR
/// of its members'.
pub fn digest_of(id: NodeId) -> u64 {
    mix_seed(id.0, DIGEST_SALT)
}

#[derive(Debug, Default)]
pub struct ReachSet {
    ordered: BTreeSet<NodeId>,
    hashed: FxHashSet<NodeId>,
    digest: u64,
}

impl ReachSet {
    pub fn contains(&self, id: NodeId) -> bool {
        self.hashed.contains(&id)
    }
    /// True when `id` was not in the set.
    pub fn insert(&mut self, id: NodeId) -> bool {
        let new = self.hashed.insert(id);
        if new {
            self.ordered.insert(id);
            self.digest ^= digest_of(id);
        }
        new
    }
    pub fn remove(&mut self, id: NodeId) {
        if self.hashed.remove(&id) {
            self.ordered.remove(&id);
            self.digest ^= digest_of(id);
        }
    }
    pub fn ordered(&self) -> &BTreeSet<NodeId> {
        &self.ordered
    }
    /// XOR of [`digest_of`] over the members.
    pub fn digest(&self) -> u64 {
        self.digest
    }
    /// Heap bytes held (estimate): a BTree ~1.5x its payload, a hashed slot the id and
    /// one control byte.
    pub fn heap_bytes(&self) -> usize {
        let id = size_of::<NodeId>();
        self.ordered.len() * id * 3 / 2 + self.hashed.capacity() * (id + 1)
    }
}
