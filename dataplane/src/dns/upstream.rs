//! What the forwarder knows of one upstream: its recent latency and failures, and
//! whether it is in rotation.
//!
//! Both decay: the latency is a smoothed RTT (RFC 6298's estimator), and the failure
//! rate an exponentially weighted average over recent attempts, so an upstream that
//! failed for a while an hour ago is judged by what it does now (dcos-net counted
//! failures forever). Failures in a row take it out of rotation; then it only sees
//! copies of live queries, at most one per probe interval, and its first answer of any
//! kind brings it back, so an upstream that returns is used again within about one
//! probe interval.

use std::net::SocketAddr;

use hawser_core::time::{Duration, Instant};

use super::config::DnsConfig;

/// Weight of the newest attempt in the failure rate.
const FAILURE_WEIGHT: f64 = 0.1;

#[derive(Clone, Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// Smoothed RTT and its variation, in nanoseconds, once one answer came back.
    srtt: Option<(f64, f64)>,
    /// Attempts that failed in a row (reset by any answer).
    consecutive_failures: u32,
    /// Decaying share of recent attempts that failed, 0..=1.
    failure_rate: f64,
    /// Out of rotation since, while it is.
    down_since: Option<Instant>,
    /// When it last answered anything.
    last_answer: Option<Instant>,
    /// While out of rotation: when it may get the next probe.
    next_probe: Instant,
    /// Running totals.
    pub answers: u64,
    pub failures: u64,
}

/// A change of rotation, for the log and the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Taken out after this many failures in a row.
    Down { failures: u32 },
    /// Back, after being out for this long.
    Up { after: Duration },
}

impl Upstream {
    pub fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            srtt: None,
            consecutive_failures: 0,
            failure_rate: 0.0,
            down_since: None,
            last_answer: None,
            next_probe: Instant::ZERO,
            answers: 0,
            failures: 0,
        }
    }

    pub fn is_up(&self) -> bool {
        self.down_since.is_none()
    }

    /// The smoothed RTT, once known.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt.map(|(s, _)| Duration::from_nanos(s as u64))
    }

    pub fn failure_rate(&self) -> f64 {
        self.failure_rate
    }

    /// An answer came back after `rtt` (any answer: a SERVFAIL proves it is alive).
    pub fn answered(&mut self, now: Instant, rtt: Duration) -> Option<Health> {
        let r = rtt.as_nanos() as f64;
        self.srtt = Some(match self.srtt {
            None => (r, r / 2.0),
            Some((s, v)) => (0.875 * s + 0.125 * r, 0.75 * v + 0.25 * (s - r).abs()),
        });
        self.answers += 1;
        self.last_answer = Some(now);
        self.consecutive_failures = 0;
        self.failure_rate *= 1.0 - FAILURE_WEIGHT;
        let since = self.down_since.take()?;
        // Back in rotation: the probes it missed while out say nothing about it now, and
        // a rate left high would rank it after the others for good (asked only as a
        // hedge, it might never answer enough to bring the rate down).
        self.failure_rate = 0.0;
        Some(Health::Up {
            after: now.saturating_since(since),
        })
    }

    /// An attempt went unanswered for its timeout, or its connection failed. Out of
    /// rotation after `fail_threshold` in a row *and* no answer at all for a timeout:
    /// an overloaded upstream that is slow on some queries but answers the rest stays.
    pub fn failed(&mut self, now: Instant, config: &DnsConfig) -> Option<Health> {
        self.failures += 1;
        self.consecutive_failures += 1;
        self.failure_rate = (1.0 - FAILURE_WEIGHT) * self.failure_rate + FAILURE_WEIGHT;
        let silent = self
            .last_answer
            .is_none_or(|t| now.saturating_since(t) >= config.attempt_timeout_min);
        if self.is_up() && silent && self.consecutive_failures >= config.fail_threshold {
            self.down_since = Some(now);
            self.next_probe = now + config.probe_interval;
            return Some(Health::Down {
                failures: self.consecutive_failures,
            });
        }
        None
    }

    /// Whether an out-of-rotation upstream may get a probe now; if so, the next one is
    /// a probe interval away.
    pub fn take_probe(&mut self, now: Instant, config: &DnsConfig) -> bool {
        if self.is_up() || now < self.next_probe {
            return false;
        }
        self.next_probe = now + config.probe_interval;
        true
    }

    /// How long to wait for it before asking the next upstream too: three smoothed
    /// RTTs, within the configured bounds.
    pub fn hedge_delay(&self, config: &DnsConfig) -> Duration {
        match self.srtt {
            None => config.hedge_initial,
            Some((s, v)) => clamp(
                Duration::from_nanos((3.0 * s + v) as u64),
                config.hedge_min,
                config.hedge_max,
            ),
        }
    }

    /// How long an attempt may go unanswered before it counts as a failure (and the
    /// query moves on): eight smoothed RTTs, within the configured bounds; the lower
    /// bound while the RTT is not known. (Its answer is still taken until
    /// `attempt_timeout_max`.)
    pub fn attempt_timeout(&self, config: &DnsConfig) -> Duration {
        let guess = match self.srtt {
            None => config.attempt_timeout_min,
            Some((s, v)) => Duration::from_nanos((8.0 * s + 4.0 * v) as u64),
        };
        clamp(
            guess,
            config.attempt_timeout_min,
            config.attempt_timeout_max,
        )
    }

    /// Much slower than `best`, or failing often: asked after the others.
    pub fn is_poor(&self, best: Option<Duration>) -> bool {
        let slow = match (self.srtt(), best) {
            (Some(mine), Some(best)) => {
                mine.as_nanos() > 2 * best.as_nanos() + Duration::from_millis(1).as_nanos()
            }
            _ => false,
        };
        slow || self.failure_rate > 0.5
    }
}

fn clamp(d: Duration, low: Duration, high: Duration) -> Duration {
    if d < low {
        low
    } else if d > high {
        high
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn failures_in_a_row_take_it_out_and_an_answer_brings_it_back() {
        let c = DnsConfig::default();
        let mut u = Upstream::new("127.0.0.1:53".parse().unwrap());
        let t = Instant::from_nanos(0) + ms(1000);
        assert_eq!(u.failed(t, &c), None);
        assert_eq!(u.answered(t, ms(1)), None);
        assert_eq!(u.failed(t, &c), None);
        assert_eq!(u.failed(t, &c), None);
        // Three in a row, but it answered 100 ms ago: slow, not gone.
        assert_eq!(u.failed(t + ms(100), &c), None);
        let t = t + c.attempt_timeout_min;
        assert_eq!(u.failed(t, &c), Some(Health::Down { failures: 4 }));
        assert!(!u.is_up());
        // Probes: at most one per interval.
        assert!(!u.take_probe(t, &c));
        assert!(u.take_probe(t + c.probe_interval, &c));
        assert!(!u.take_probe(t + c.probe_interval, &c));
        assert_eq!(
            u.answered(t + ms(30), ms(1)),
            Some(Health::Up { after: ms(30) })
        );
        assert!(u.is_up() && !u.take_probe(t + ms(100), &c));
    }

    #[test]
    fn delays_follow_the_rtt_within_bounds() {
        let c = DnsConfig::default();
        let mut u = Upstream::new("127.0.0.1:53".parse().unwrap());
        assert_eq!(u.hedge_delay(&c), c.hedge_initial);
        for _ in 0..50 {
            u.answered(Instant::ZERO, Duration::from_micros(100));
        }
        assert_eq!(u.hedge_delay(&c), c.hedge_min);
        assert_eq!(u.attempt_timeout(&c), c.attempt_timeout_min);
        for _ in 0..50 {
            u.answered(Instant::ZERO, ms(20));
        }
        let hedge = u.hedge_delay(&c);
        assert!(hedge >= ms(59) && hedge <= ms(70), "{hedge:?}");
        for _ in 0..50 {
            u.answered(Instant::ZERO, ms(900));
        }
        assert_eq!(u.hedge_delay(&c), c.hedge_max);
        assert_eq!(u.attempt_timeout(&c), c.attempt_timeout_max);
    }

    #[test]
    fn the_failure_rate_decays() {
        let c = DnsConfig::default();
        let mut u = Upstream::new("127.0.0.1:53".parse().unwrap());
        // It answers some queries, so failing others keeps it in rotation.
        u.answered(Instant::ZERO, ms(1));
        for _ in 0..10 {
            assert_eq!(u.failed(Instant::ZERO, &c), None);
        }
        assert!(u.failure_rate() > 0.6 && u.is_poor(None));
        for _ in 0..10 {
            u.answered(Instant::ZERO, ms(1));
        }
        assert!(u.failure_rate() < 0.25 && !u.is_poor(None));
        assert_eq!((u.answers, u.failures), (11, 10));
    }

    #[test]
    fn an_upstream_back_from_an_outage_is_not_ranked_last() {
        let c = DnsConfig::default();
        let mut u = Upstream::new("127.0.0.1:53".parse().unwrap());
        let mut now = Instant::ZERO;
        // Down, then a long outage of failed probes.
        for _ in 0..100 {
            u.failed(now, &c);
            now += c.probe_interval;
        }
        assert!(!u.is_up() && u.is_poor(None));
        assert!(matches!(u.answered(now, ms(1)), Some(Health::Up { .. })));
        assert!(!u.is_poor(Some(ms(1))), "rate {}", u.failure_rate());
    }
}
