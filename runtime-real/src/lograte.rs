//! Rate limits for log lines that a remote party can cause.
//!
//! A refused connection, a failed handshake or a bad frame is logged with who caused it.
//! Anyone who can reach the peer port can cause them by the thousand (2,000 reconnecting
//! connections wrote 106,388 warnings in 30 s), so each kind of line gets a small burst
//! per window; lines beyond it are counted instead of written, and the next line of that
//! kind says how many were left out. The caller passes the time in, so this is plain
//! data and tested without a clock.

use std::collections::BTreeMap;
use std::time::Duration;

/// Lines of one kind written per window before the rest are only counted.
pub const BURST: u32 = 10;
/// The window over which [`BURST`] applies.
pub const WINDOW: Duration = Duration::from_secs(10);

/// What a refusal line is about; each kind has its own budget, so a flood of one kind
/// cannot hide the first line of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LineKind {
    ConnectionRefused,
    PendingRefused,
    AuthFailure,
    DecodeError,
    BadMessage,
    DuplicateName,
    Unreplicable,
}

#[derive(Default)]
struct Bucket {
    window_start: Duration,
    written: u32,
    suppressed: u64,
}

/// Per-kind budgets.
#[derive(Default)]
pub struct LogLimiter {
    buckets: BTreeMap<LineKind, Bucket>,
}

impl LogLimiter {
    /// Whether to write a line of `kind` at `now` (time since any fixed origin): `Some(n)`
    /// to write it, `n` being how many lines of this kind were left out since the last
    /// one written; `None` to leave it out (it is counted).
    pub fn admit(&mut self, kind: LineKind, now: Duration) -> Option<u64> {
        let b = self.buckets.entry(kind).or_default();
        if now.saturating_sub(b.window_start) >= WINDOW || b.written == 0 {
            b.window_start = now;
            b.written = 0;
        }
        if b.written < BURST {
            b.written += 1;
            Some(std::mem::take(&mut b.suppressed))
        } else {
            b.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_window_then_counted_and_reported() {
        let mut l = LogLimiter::default();
        let t0 = Duration::from_secs(100);
        for _ in 0..BURST {
            assert_eq!(l.admit(LineKind::AuthFailure, t0), Some(0));
        }
        for _ in 0..500 {
            assert_eq!(l.admit(LineKind::AuthFailure, t0), None);
        }
        assert_eq!(
            l.admit(LineKind::DecodeError, t0),
            Some(0),
            "each kind has its own budget"
        );
        assert_eq!(l.admit(LineKind::AuthFailure, t0 + WINDOW), Some(500));
        assert_eq!(l.admit(LineKind::AuthFailure, t0 + WINDOW), Some(0));
    }
}
