//! Failure detection state: per-neighbour probing, and the node's own local health.
//!
//! A neighbour goes through rounds: wait (`Idle`), ping and wait for the pong (`Direct`),
//! and — only if the pong is late — ping again while asking other neighbours to probe it
//! (`Indirect`, SWIM's indirect probe). One lost pong therefore never cuts a link; a
//! neighbour is evicted only when neither it nor any helper answered within the indirect
//! window. The logic that moves between these states is in `detector.rs`.

use super::rtt::RttEstimator;
use crate::protocol::TimerId;
use crate::time::{Duration, Instant};

/// Where a neighbour is in its probing round.
#[derive(Debug)]
pub enum Probe {
    /// Between rounds since `since`: waiting for `timer` to send the next ping, or
    /// (with `rotate_pings`, no timer of its own) for the node's rotation to pick it.
    Idle {
        timer: Option<TimerId>,
        since: Instant,
    },
    /// Ping `seq` sent at `sent`; `timer` ends the wait.
    Direct {
        seq: u64,
        sent: Instant,
        timer: TimerId,
    },
    /// The direct wait expired: pinged again (as `again`) and `asked` helpers asked
    /// about `seq`, `nacks` of them have answered that they could not reach it. A pong
    /// for `seq` (the first ping, sent at `sent`: a round-trip sample, so a link that
    /// turned slow raises its own timeout) or for `again`, or any helper's positive
    /// answer, before `timer` ends the round well.
    Indirect {
        seq: u64,
        sent: Instant,
        again: u64,
        timer: TimerId,
        asked: u32,
        nacks: u32,
    },
}

impl Probe {
    pub fn timer(&self) -> Option<TimerId> {
        match self {
            Probe::Idle { timer, .. } => *timer,
            Probe::Direct { timer, .. } | Probe::Indirect { timer, .. } => Some(*timer),
        }
    }
}

/// What the detector keeps per active neighbour.
#[derive(Debug)]
pub struct NeighborHealth {
    pub rtt: RttEstimator,
    pub probe: Probe,
    /// Consecutive rounds in which the neighbour answered only through a helper: it is
    /// alive, but the link between us is not healthy.
    pub rescues: u32,
    /// When we last heard anything from it (see `MembershipConfig::traffic_is_liveness`).
    pub heard: Instant,
}

/// Lifeguard's local health multiplier. A node that sees its own timers fire late, or
/// hears nothing (not even a nack) from the helpers it asked, is probably the slow one:
/// it raises its score, which lengthens every timeout it applies to others. Timely pongs
/// lower it again.
#[derive(Debug, Default)]
pub struct LocalHealth {
    score: u32,
}

impl LocalHealth {
    pub fn score(&self) -> u32 {
        self.score
    }
    pub fn worse(&mut self, max: u32) {
        self.score = (self.score + 1).min(max);
    }
    pub fn better(&mut self) {
        self.score = self.score.saturating_sub(1);
    }
    /// `timeout` stretched by the current score.
    pub fn scale(&self, timeout: Duration) -> Duration {
        timeout.saturating_mul(1 + u64::from(self.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_health_is_bounded_and_scales() {
        let mut h = LocalHealth::default();
        for _ in 0..10 {
            h.worse(3);
        }
        assert_eq!(h.score(), 3);
        assert_eq!(
            h.scale(Duration::from_millis(100)),
            Duration::from_millis(400)
        );
        for _ in 0..10 {
            h.better();
        }
        assert_eq!(
            h.scale(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }
}
