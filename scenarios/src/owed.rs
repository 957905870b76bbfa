//! One event that other nodes owe a delivery of — a multicast to deliver, a KV op to make
//! visible — judged on its own deadline. It is owed by the nodes that reach its origin
//! through the network when it happens, for as long as they keep reaching it: a node cut
//! off (or stopped) before the deadline is released, one cut off after the deadline had
//! already missed it. The same rule for every per-event expectation, so
//! `multicast-delivered` and `kv-op-visible` mean the same thing by "reached".

use hawser_core::{Duration, Instant};

use crate::network::{Components, together};

pub(crate) struct Owed {
    pub(crate) at: Instant,
    origin: usize,
    /// Nodes that owe it and have not delivered it yet.
    waiting: Vec<bool>,
    /// The slowest delivery by a node that owed it: (delay, node).
    slowest: Option<(Duration, usize)>,
    /// The last instant a node that still owed it stopped reaching the origin, and that
    /// node.
    last_release: Option<(Instant, usize)>,
}

impl Owed {
    /// `origin` made it happen at `at`; every other node of its component for which
    /// `owes` says yes owes it.
    pub(crate) fn new(
        at: Instant,
        origin: usize,
        net: &Components,
        owes: impl Fn(usize) -> bool,
    ) -> Owed {
        Owed {
            at,
            origin,
            waiting: (0..net.len())
                .map(|i| i != origin && together(net, origin, i) && owes(i))
                .collect(),
            slowest: None,
            last_release: None,
        }
    }

    pub(crate) fn owed_by(&self, node: usize) -> bool {
        self.waiting.get(node).copied().unwrap_or(false)
    }

    /// Somebody still owes it.
    pub(crate) fn pending(&self) -> bool {
        self.waiting.iter().any(|w| *w)
    }

    /// `node` delivered it at `at`: if `node` owed it, it owes it no more.
    pub(crate) fn delivered(&mut self, at: Instant, node: usize) {
        if let Some(w) = self.waiting.get_mut(node)
            && std::mem::replace(w, false)
        {
            let delay = at - self.at;
            if self.slowest.is_none_or(|(d, _)| delay > d) {
                self.slowest = Some((delay, node));
            }
        }
    }

    /// The network changed at `now`: a node that no longer reaches the origin is released.
    pub(crate) fn network_changed(&mut self, now: Instant, net: &Components) {
        for (i, w) in self.waiting.iter_mut().enumerate() {
            if *w && !together(net, self.origin, i) {
                *w = false;
                self.last_release = Some((now, i));
            }
        }
    }

    /// Judged at `now`: `None` while its deadline (`at + within`, or `until` without
    /// `within`) has not come, or when it is outside `[since, until)` or its deadline
    /// falls after `until` (the expectation ends before it). `label` names it in a miss,
    /// e.g. "n4's #1, sent at 30s".
    pub(crate) fn verdict(
        &self,
        since: Instant,
        until: Instant,
        within: Option<Duration>,
        now: Instant,
        label: impl FnOnce() -> String,
    ) -> Option<Result<(), String>> {
        if self.at < since || self.at >= until {
            return None;
        }
        let deadline = within.map_or(until, |w| self.at + w);
        if deadline > now {
            return None;
        }
        let by = deadline - Instant::ZERO;
        let ms = |d: Duration| format!("{:.3}ms", d.as_nanos() as f64 / 1e6);
        if let (Some(w), Some((delay, node))) = (within, self.slowest)
            && delay > w
        {
            return Some(Err(format!(
                "{}, reached n{node} after {}, later than within = {w}",
                label(),
                ms(delay)
            )));
        }
        let missing = self.waiting.iter().filter(|w| **w).count();
        if let Some(first) = self.waiting.iter().position(|w| *w) {
            return Some(Err(format!(
                "{}, had not reached {missing} node(s) that reach its origin by {by}, n{first} \
                 first",
                label()
            )));
        }
        if let Some((cut, node)) = self.last_release.filter(|(cut, _)| *cut > deadline) {
            return Some(Err(format!(
                "{}, had not reached n{node} by {by} (it stopped reaching the origin only at \
                 {})",
                label(),
                cut - Instant::ZERO
            )));
        }
        Some(Ok(()))
    }
}

/// Judges every event of `events` due at `now` (see [`Owed::verdict`]): the first miss,
/// or how many were due (0: nothing to judge yet).
pub(crate) fn check_all<'a, L: FnOnce() -> String>(
    events: impl Iterator<Item = (&'a Owed, L)>,
    since: Instant,
    until: Instant,
    within: Option<Duration>,
    now: Instant,
) -> Result<usize, String> {
    let mut due = 0;
    for (owed, label) in events {
        if let Some(verdict) = owed.verdict(since, until, within, now, label) {
            verdict?;
            due += 1;
        }
    }
    Ok(due)
}
