//! A node's own clock: the simulator's time, offset and running fast or slow.
//!
//! Real hosts' monotonic clocks drift (crystals are off by tens to hundreds of ppm, more
//! under temperature or a misbehaving hypervisor) and can jump forward (a VM paused and
//! resumed). A protocol whose timeouts assume every node measures a second alike should
//! be caught here, not in production. Each node reads its clock for every `now` it is
//! handed, and its deadlines are read back through the same clock, so a node that runs
//! 200 ppm fast fires its timers 200 ppm early in everybody else's time.
//!
//! The clock is piecewise linear: since the last change (`since`, in simulator time) it
//! reads `at_since + (t - since) × (10⁶ + ppm) / 10⁶`. Integer arithmetic only, so a run
//! replays on every machine; a deadline converts back rounded up, so a timer never fires
//! before the node's clock reaches it. It never goes backwards (a monotonic clock does
//! not): steps are forward only and drift is bounded well above −10⁶ ppm.

use hawser_core::{Duration, Instant};

/// The largest drift accepted either way, in parts per million (10 %: far beyond any
/// real crystal, enough to make a protocol's assumptions visible).
pub const MAX_DRIFT_PPM: i64 = 100_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    /// Simulator time of the last change.
    since: Instant,
    /// What the clock read then.
    at_since: Instant,
    ppm: i64,
}

impl Clock {
    /// The clock's reading at simulator time `t` (not before the last change).
    pub fn read(&self, t: Instant) -> Instant {
        if self.is_true() {
            return t;
        }
        let elapsed = u128::from((t - self.since).as_nanos());
        let scaled = elapsed * (1_000_000 + self.ppm) as u128 / 1_000_000;
        self.at_since + Duration::from_nanos(scaled.min(u64::MAX.into()) as u64)
    }

    /// The simulator time at which the clock reads `local`: the first instant it reads at
    /// least that, or `since` if it already did.
    pub fn when(&self, local: Instant) -> Instant {
        if self.is_true() {
            return local;
        }
        let ahead = u128::from((local - self.at_since).as_nanos());
        let rate = (1_000_000 + self.ppm) as u128;
        let elapsed = (ahead * 1_000_000).div_ceil(rate);
        self.since + Duration::from_nanos(elapsed.min(u64::MAX.into()) as u64)
    }

    /// From simulator time `now` on, run `ppm` fast (negative: slow) and read `step`
    /// ahead of where the clock was.
    pub fn change(&mut self, now: Instant, ppm: i64, step: Duration) {
        let reading = self.read(now);
        *self = Clock {
            since: now,
            at_since: reading + step,
            ppm: ppm.clamp(-MAX_DRIFT_PPM, MAX_DRIFT_PPM),
        };
    }

    /// Reads the simulator's time exactly (the default, and the fast path).
    fn is_true(&self) -> bool {
        self.ppm == 0 && self.since == self.at_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn drift_and_step_and_deadlines_round_up() {
        let t = Instant::from_nanos;
        let mut c = Clock::default();
        assert_eq!(c.read(t(5 * S)), t(5 * S));
        c.change(t(10 * S), 200, Duration::ZERO);
        assert_eq!(
            c.read(t(20 * S)),
            t(20 * S + 2_000_000),
            "200 ppm over 10 s: 2 ms"
        );
        let deadline = t(20 * S + 2_000_000);
        assert!(c.when(deadline) <= t(20 * S) && c.read(c.when(deadline)) >= deadline);
        c.change(t(20 * S), -500, Duration::from_secs(3));
        assert_eq!(
            c.read(t(20 * S)),
            t(23 * S + 2_000_000),
            "stepped 3 s ahead"
        );
        assert_eq!(c.read(t(30 * S)), t(33 * S - 3_000_000));
        let odd = t(31 * S + 7);
        let fire = c.when(odd);
        assert!(c.read(fire) >= odd && c.read(t(fire.as_nanos() - 1)) < odd);
        assert_eq!(c.when(t(S)), t(20 * S), "a past reading fires at once");
    }
}
