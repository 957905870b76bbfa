//! Each node's membership views as the runner last read them: the `views-bounded` verdict
//! and the active view (for `overlay-connected` and the symmetry record).
//!
//! `views-bounded` is judged after every event and the active views are collected every
//! 100 ms; at 1,000 nodes, reading every node's views again each time cost more than
//! anything else the runner does, although most events (a global membership or KV
//! frame) leave the views as they were. A target that numbers its membership's runs
//! ([`Target::views_generation`]) is read again only when the number moved; the verdict
//! and the view are then exactly what reading them again would give.

use hawser_sim::Sim;

use crate::invariant::Violation;
use crate::runner::live;
use crate::target::Target;

pub(crate) struct ViewCache {
    nodes: Vec<Cached>,
}

#[derive(Default)]
struct Cached {
    /// The generation the verdict was read at, and the verdict.
    verdict: Option<(u64, Result<(), Violation>)>,
    /// The generation the view was read at, and the view.
    view: Option<(u64, Vec<usize>)>,
}

impl ViewCache {
    pub(crate) fn new(nodes: usize) -> ViewCache {
        ViewCache {
            nodes: (0..nodes).map(|_| Cached::default()).collect(),
        }
    }

    /// Node `i` was started, restarted, wiped or killed: its protocol is a new one (whose
    /// generations start over), or none.
    pub(crate) fn forget(&mut self, i: usize) {
        self.nodes[i] = Cached::default();
    }

    /// `check_views` of node `i`'s protocol, read again only if its generation moved.
    pub(crate) fn verdict<T: Target>(&mut self, i: usize, node: &T) -> Result<(), Violation> {
        let c = &mut self.nodes[i];
        match (node.views_generation(), &c.verdict) {
            (Some(g), Some((at, verdict))) if *at == g => verdict.clone(),
            (generation, _) => {
                let verdict = node.check_views(Sim::<T>::id(i));
                if let Some(g) = generation {
                    c.verdict = Some((g, verdict.clone()));
                }
                verdict
            }
        }
    }

    /// Every node's active view by index, `None` for nodes that are not live.
    pub(crate) fn active_views<T: Target>(&mut self, sim: &Sim<T>) -> Vec<Option<Vec<usize>>> {
        (0..sim.len())
            .map(|i| {
                let node = sim.node(i).filter(|_| live(sim, i))?.protocol();
                let c = &mut self.nodes[i];
                match (node.views_generation(), &c.view) {
                    (Some(g), Some((at, view))) if *at == g => Some(view.clone()),
                    (generation, _) => {
                        let view: Vec<usize> =
                            node.active_view().iter().map(|p| p.0 as usize).collect();
                        if let Some(g) = generation {
                            c.view = Some((g, view.clone()));
                        }
                        Some(view)
                    }
                }
            })
            .collect()
    }
}
