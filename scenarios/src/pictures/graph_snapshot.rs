//! The overlay graph at one instant: who is running, who links to whom, which overlay
//! component each node is in, and where the network (not the overlay) is cut.

use std::collections::BTreeSet;

use hawser_core::Instant;
use hawser_sim::{Sim, Status};

use crate::file::ExpectKind;
use crate::network;
use crate::runner::live;
use crate::target::Target;

use super::layout::{Layout, layout};

/// A node's state as the picture colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Running, with at least one overlay link to another live node.
    Live,
    /// Running but alone: no overlay link to any other live node.
    Isolated,
    /// Running, processing nothing for a while (a `pause` step).
    Paused,
    Frozen,
    Killed,
    /// Not started yet.
    Idle,
}

impl NodeStatus {
    pub fn name(self) -> &'static str {
        match self {
            NodeStatus::Live => "live",
            NodeStatus::Isolated => "isolated",
            NodeStatus::Paused => "paused",
            NodeStatus::Frozen => "frozen",
            NodeStatus::Killed => "killed",
            NodeStatus::Idle => "idle",
        }
    }
}

/// One link of the overlay (either end holds the other in its active view).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub a: usize,
    pub b: usize,
    /// The network no longer carries frames between the ends (a partition or a broken
    /// cookie cuts it); the overlay has not dropped the link yet.
    pub cut: bool,
}

#[derive(Clone, Debug)]
pub struct GraphSnapshot {
    /// Why this instant: "before", "during", "end" or "at 25s".
    pub label: String,
    pub at_ms: u64,
    pub status: Vec<NodeStatus>,
    pub edges: Vec<Edge>,
    /// Overlay component of each live node (numbered from the lowest node index).
    pub component: Vec<Option<u32>>,
    pub layout: Layout,
}

impl GraphSnapshot {
    pub(crate) fn take<T: Target>(sim: &Sim<T>, label: String, now: Instant) -> GraphSnapshot {
        let views = views(sim);
        let component = components(&views);
        let net = network::components(sim);
        let mut links = BTreeSet::new();
        for (a, view) in views.iter().enumerate() {
            for &b in view.iter().flatten() {
                if b != a && views.get(b).is_some_and(Option::is_some) {
                    links.insert((a.min(b), a.max(b)));
                }
            }
        }
        let edges: Vec<Edge> = links
            .into_iter()
            .map(|(a, b)| Edge {
                a,
                b,
                cut: !network::together(&net, a, b),
            })
            .collect();
        let count = component
            .iter()
            .flatten()
            .max()
            .map_or(0, |&c| c as usize + 1);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (i, c) in component.iter().enumerate() {
            if let Some(c) = c {
                members[*c as usize].push(i);
            }
        }
        let running = members.iter().map(Vec::len).sum::<usize>();
        let status: Vec<NodeStatus> = (0..sim.len())
            .map(|i| match sim.status(i) {
                Status::Idle => NodeStatus::Idle,
                Status::Down => NodeStatus::Killed,
                Status::Frozen => NodeStatus::Frozen,
                Status::Paused => NodeStatus::Paused,
                Status::Up => {
                    let alone = component[i].is_some_and(|c| members[c as usize].len() == 1);
                    if alone && running > 1 && T::supports(ExpectKind::OverlayConnected) {
                        NodeStatus::Isolated
                    } else {
                        NodeStatus::Live
                    }
                }
            })
            .collect();
        let stopped: Vec<usize> = (0..sim.len()).filter(|&i| component[i].is_none()).collect();
        let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (e.a, e.b)).collect();
        GraphSnapshot {
            label,
            at_ms: now.as_millis(),
            layout: layout(sim.len(), &members, &stopped, &pairs),
            status,
            edges,
            component,
        }
    }

    /// Number of overlay components among the live nodes.
    pub fn components(&self) -> usize {
        self.component
            .iter()
            .flatten()
            .max()
            .map_or(0, |&c| c as usize + 1)
    }
}

/// Active views by node index; `None` for nodes that are not live (or when the target
/// keeps no overlay).
pub(crate) fn views<T: Target>(sim: &Sim<T>) -> Vec<Option<Vec<usize>>> {
    let overlay = T::supports(ExpectKind::OverlayConnected);
    (0..sim.len())
        .map(|i| {
            let node = sim.node(i).filter(|_| live(sim, i))?;
            Some(if overlay {
                node.protocol()
                    .active_view()
                    .iter()
                    .map(|p| p.0 as usize)
                    .collect()
            } else {
                Vec::new()
            })
        })
        .collect()
}

/// Overlay components among the live nodes: links count in either direction, links to
/// nodes that are not live are ignored (as `overlay-connected` judges). Components are
/// numbered in order of their lowest node, so the labels are the same on every run.
pub(crate) fn components(views: &[Option<Vec<usize>>]) -> Vec<Option<u32>> {
    let n = views.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (i, view) in views.iter().enumerate() {
        for &p in view.iter().flatten() {
            if p < n && views[p].is_some() {
                let (a, b) = (root(&mut parent, i), root(&mut parent, p));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut label_of_root: Vec<Option<u32>> = vec![None; n];
    let mut next = 0;
    (0..n)
        .map(|i| {
            views[i].as_ref()?;
            let r = root(&mut parent, i);
            Some(*label_of_root[r].get_or_insert_with(|| {
                next += 1;
                next - 1
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(adj: &[Option<&[usize]>]) -> Vec<Option<Vec<usize>>> {
        adj.iter().map(|a| a.map(<[usize]>::to_vec)).collect()
    }

    #[test]
    fn components_are_numbered_from_the_lowest_node_and_skip_the_dead() {
        // 0-1 and 2-3, node 4 dead (its link to 0 ignored), node 5 alone.
        let views = v(&[
            Some(&[1]),
            Some(&[]),
            Some(&[3]),
            Some(&[2]),
            None,
            Some(&[4]),
        ]);
        assert_eq!(
            components(&views),
            vec![Some(0), Some(0), Some(1), Some(1), None, Some(2)]
        );
    }

    #[test]
    fn one_sided_links_join_components() {
        let views = v(&[Some(&[]), Some(&[0]), Some(&[1])]);
        assert_eq!(components(&views), vec![Some(0); 3]);
    }
}
