//! Membership tests over an in-memory network of real [`Node`](crate::Node)s.

mod harness;
mod overlay;
mod props;

use super::Membership;

impl Membership {
    /// Timers this node should have pending: repair, shuffle, maybe join, one per
    /// neighbour, one per open request and relayed probe. More would be a leak.
    pub(in crate::membership) fn expected_timers(&self) -> usize {
        2 + usize::from(self.join.timer.is_some())
            + usize::from(self.cfg.rotate_pings)
            + self
                .active
                .values()
                .filter(|n| n.health.probe.timer().is_some())
                .count()
            + self
                .pending
                .values()
                .filter(|p| p.request.is_some())
                .count()
            + self.relays.len()
    }
}
