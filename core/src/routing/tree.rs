//! A shortest-hop tree handed to callers: owned, keyed by node id, detached from the
//! graph's internal slots (so it stays meaningful after the graph changes).

use std::collections::BTreeMap;

use crate::id::NodeId;

/// Where a node sits in a [`Tree`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Hops from the root.
    pub distance: u32,
    /// The next node towards the root (`None` for the root itself).
    pub parent: Option<NodeId>,
}

/// The shortest-hop tree from `root` over the nodes it reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    root: NodeId,
    hops: BTreeMap<NodeId, Hop>,
}

impl Tree {
    pub(crate) fn new(root: NodeId, hops: BTreeMap<NodeId, Hop>) -> Tree {
        Tree { root, hops }
    }
    pub fn root(&self) -> NodeId {
        self.root
    }
    /// Nodes in the tree, the root included.
    pub fn len(&self) -> usize {
        self.hops.len()
    }
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }
    pub fn contains(&self, node: NodeId) -> bool {
        self.hops.contains_key(&node)
    }
    pub fn hop(&self, node: NodeId) -> Option<Hop> {
        self.hops.get(&node).copied()
    }
    pub fn distance(&self, node: NodeId) -> Option<u32> {
        self.hop(node).map(|h| h.distance)
    }
    pub fn parent(&self, node: NodeId) -> Option<NodeId> {
        self.hop(node)?.parent
    }
    /// The nodes whose parent is `node`, in id order.
    pub fn children(&self, node: NodeId) -> Vec<NodeId> {
        self.hops
            .iter()
            .filter(|(_, h)| h.parent == Some(node))
            .map(|(id, _)| *id)
            .collect()
    }
    /// Every node with its place, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, Hop)> + '_ {
        self.hops.iter().map(|(id, h)| (*id, *h))
    }
    /// The path from the root to `node`, both included.
    pub fn path_to(&self, node: NodeId) -> Option<Vec<NodeId>> {
        let mut path = vec![node];
        let mut at = self.hop(node)?;
        while let Some(p) = at.parent {
            path.push(p);
            at = self.hop(p)?;
        }
        path.reverse();
        Some(path)
    }
}
