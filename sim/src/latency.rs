//! A heavy tail on the network's latency: most frames take the configured uniform
//! latency, a few take far longer (a retransmission, a congested switch, a GC pause in a
//! middlebox), which is where timeouts tuned on averages go wrong.
//!
//! The tail is a discrete Pareto with α = 1, drawn with integers only (so a run replays
//! bit for bit on any machine, which floating-point `powf` would not promise): the high
//! end of the uniform range doubled `k` more times with probability 2^-k, capped. So
//! P(latency > x) falls as 1/x: one tail frame in two takes at least 2 × the high end,
//! one in 1,024 at least 1,024 ×.

use hawser_core::{Duration, NodeRng};

/// `ppm` of frames (per million) get a tail latency, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyTail {
    pub ppm: u32,
    pub max: Duration,
}

impl LatencyTail {
    /// One tail latency above `high` (the uniform range's high end).
    pub(crate) fn draw(&self, high: Duration, rng: &mut NodeRng) -> Duration {
        let mut latency = high.max(Duration::from_micros(1)).saturating_mul(2);
        while latency < self.max && rng.below(0, 2) == 1 {
            latency = latency.saturating_mul(2);
        }
        latency.min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_odds_per_doubling_up_to_the_cap() {
        let tail = LatencyTail {
            ppm: 1_000_000,
            max: Duration::from_millis(640),
        };
        let mut rng = NodeRng::from_seed(7);
        let high = Duration::from_millis(5);
        let draws: Vec<Duration> = (0..100_000).map(|_| tail.draw(high, &mut rng)).collect();
        let share = |at_least: u64| {
            let n = draws.iter().filter(|d| d.as_millis() >= at_least).count();
            n as f64 / draws.len() as f64
        };
        assert_eq!(share(10), 1.0, "every tail frame takes at least 2 x high");
        assert!((share(20) - 0.5).abs() < 0.01, "{}", share(20));
        assert!((share(80) - 0.125).abs() < 0.01, "{}", share(80));
        assert!(draws.iter().all(|d| d.as_millis() <= 640));
        assert!(share(640) > 0.0, "the cap is reached");
    }
}
