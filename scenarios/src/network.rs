//! Who can reach whom through the simulated network: the ground truth that
//! `membership-agrees` and `multicast-delivered` hold the protocols to.
//!
//! Two running nodes can link when frames flow both ways between them and they hold the
//! same cookie; a node reaches every node of its component of that graph, through
//! relays (routing goes around a missing direct link). Computing it is quadratic in the
//! nodes, so the runner does it only when a step changes the network or a node's state.

use hawser_sim::{Sim, Status};

use crate::target::Target;

/// Each node's component number, `None` for a node that is not running or is frozen
/// (it reaches nobody and nobody reaches it).
pub(crate) type Components = Vec<Option<u32>>;

pub(crate) fn components<T: Target>(sim: &Sim<T>) -> Components {
    let n = sim.len();
    let running = |i: usize| matches!(sim.status(i), Status::Up | Status::Paused);
    let mut label: Components = vec![None; n];
    let mut next = 0;
    let mut stack = Vec::new();
    for root in 0..n {
        if label[root].is_some() || !running(root) {
            continue;
        }
        label[root] = Some(next);
        stack.push(root);
        while let Some(a) = stack.pop() {
            for (b, l) in label.iter_mut().enumerate() {
                if l.is_none()
                    && running(b)
                    && sim.path_open(a, b)
                    && sim.cookie(a) == sim.cookie(b)
                {
                    *l = Some(next);
                    stack.push(b);
                }
            }
        }
        next += 1;
    }
    label
}

/// Do `a` and `b` reach each other?
pub(crate) fn together(c: &Components, a: usize, b: usize) -> bool {
    c[a].is_some() && c[a] == c[b]
}

/// The components, recomputed only when asked for after something changed: a run of
/// 1,000 staggered starts must not cost 1,000 quadratic passes nobody looks at.
#[derive(Default)]
pub(crate) struct Network {
    components: Components,
    stale: bool,
}

impl Network {
    /// A step changed the network or a node's state.
    pub(crate) fn changed(&mut self) {
        self.stale = true;
    }

    pub(crate) fn is_stale(&self) -> bool {
        self.stale || self.components.is_empty()
    }

    pub(crate) fn current<T: Target>(&mut self, sim: &Sim<T>) -> &Components {
        if self.is_stale() {
            self.components = components(sim);
            self.stale = false;
        }
        &self.components
    }
}
