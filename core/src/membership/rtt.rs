//! Round-trip time of one link, and the ping timeout it implies.
//!
//! Jacobson/Karels smoothing (as TCP's retransmission timer): a smoothed mean and a
//! smoothed mean deviation, updated from every unambiguous sample. The timeout is
//! `mean + k·deviation`, clamped to the configured floor and ceiling: it follows the
//! link's history rather than its last sample, so one slow pong widens the margin
//! instead of being forgotten, and a link that has always been fast is still given the
//! floor (a healthy peer can be briefly busy).

use crate::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct RttEstimator {
    /// Smoothed RTT and mean deviation in nanoseconds; `None` before the first sample.
    smoothed: Option<(u64, u64)>,
}

impl RttEstimator {
    pub fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_nanos();
        self.smoothed = Some(match self.smoothed {
            None => (r, r / 2),
            Some((srtt, dev)) => {
                let err = srtt.abs_diff(r);
                (srtt - srtt / 8 + r / 8, dev - dev / 4 + err / 4)
            }
        });
    }

    /// The smoothed RTT, once there is one.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed.map(|(s, _)| Duration::from_nanos(s))
    }

    /// `initial` before any sample; then `mean + k·dev` within `[floor, ceiling]`.
    pub fn timeout(
        &self,
        k: u64,
        initial: Duration,
        floor: Duration,
        ceiling: Duration,
    ) -> Duration {
        match self.smoothed {
            None => initial,
            Some((srtt, _)) if crate::planted::on(crate::planted::Bug::HastyDetector) => {
                Duration::from_nanos(srtt)
            }
            Some((srtt, dev)) => Duration::from_nanos(srtt.saturating_add(dev.saturating_mul(k)))
                .max(floor)
                .min(ceiling),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn starts_at_initial_then_follows_history_within_bounds() {
        let mut e = RttEstimator::default();
        assert_eq!(e.timeout(4, MS(1000), MS(100), MS(5000)), MS(1000));
        for _ in 0..50 {
            e.sample(MS(10));
        }
        // A steady fast link gets the floor.
        assert_eq!(e.timeout(4, MS(1000), MS(100), MS(5000)), MS(100));
        // A jittery one gets a margin well above its mean.
        for i in 0..50 {
            e.sample(MS(if i % 2 == 0 { 100 } else { 300 }));
        }
        let t = e.timeout(4, MS(1000), MS(100), MS(5000));
        assert!(t > MS(500) && t < MS(1000), "{t:?}");
        // And never more than the ceiling.
        e.sample(MS(60_000));
        assert_eq!(e.timeout(4, MS(1000), MS(100), MS(5000)), MS(5000));
    }

    #[test]
    fn one_slow_sample_widens_rather_than_replaces() {
        let mut e = RttEstimator::default();
        for _ in 0..20 {
            e.sample(MS(200));
        }
        e.sample(MS(400));
        let s = e.smoothed().unwrap();
        assert!(s > MS(200) && s < MS(250), "{s:?}");
    }
}
