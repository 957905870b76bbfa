//! How long the cluster takes to learn of a failure: from a `kill` or `freeze` of node
//! X to each live node's "X is unreachable" event.

use std::collections::BTreeMap;

use hawser_core::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Detection {
    /// Failed nodes not yet forgotten: when they failed, and who has noticed since.
    failed: BTreeMap<usize, (Instant, usize, Vec<Duration>)>,
    /// Per failure: the delays of every observer that noticed, and how many could have.
    pub(crate) done: Vec<(Vec<Duration>, usize)>,
}

impl Detection {
    /// `node` failed at `at`, with `observers` live nodes left to notice.
    pub(crate) fn failed(&mut self, at: Instant, node: usize, observers: usize) {
        if let Some((_, n, seen)) = self.failed.insert(node, (at, observers, Vec::new())) {
            self.done.push((seen, n));
        }
    }

    /// `observer` reported `node` unreachable at `at`.
    pub(crate) fn noticed(&mut self, at: Instant, node: usize) {
        if let Some((t0, _, seen)) = self.failed.get_mut(&node) {
            seen.push(at - *t0);
        }
    }

    /// `node` is running again: its failure is over.
    pub(crate) fn back(&mut self, node: usize) {
        if let Some((_, n, seen)) = self.failed.remove(&node) {
            self.done.push((seen, n));
        }
    }

    /// Every failure, finished or not: (delays, observers).
    pub(crate) fn all(&self) -> Vec<(Vec<Duration>, usize)> {
        let mut all = self.done.clone();
        all.extend(self.failed.values().map(|(_, n, seen)| (seen.clone(), *n)));
        all
    }
}
