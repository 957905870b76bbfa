//! Tracking each `[[expect]]` through a run: when it first held, whether it kept holding,
//! and whether it ever had anything to check (an expectation about no node, or about no
//! multicast, must not pass: the file that asked for it did not do what its author meant).

use hawser_core::{Duration, Instant};

use crate::file::{Expect, ExpectKind};

/// Where an expectation stands.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum State {
    /// Not held yet; the last reason it did not.
    Pending(String),
    /// Held continuously since this instant.
    Holding(Instant),
    Passed(Instant),
    Failed(Instant, String),
}

pub(crate) struct Tracker {
    pub(crate) expect: Expect,
    pub(crate) after: Instant,
    /// It must hold at some instant by this time...
    pub(crate) window_end: Instant,
    /// ...and keep holding until this one (excluded: a step at `until`, which the check
    /// at that instant would already see, is what the expectation ends at).
    pub(crate) until: Instant,
    pub(crate) state: State,
    /// Some evaluation found something to check (a node in scope, a multicast due...).
    checked: bool,
}

impl Tracker {
    pub(crate) fn new(expect: &Expect, end: Instant) -> Tracker {
        let after = Instant::ZERO + expect.after;
        let until = expect.until.map_or(end, |u| Instant::ZERO + u);
        let throughout = expect.kind.holds_throughout();
        let state = if throughout {
            State::Holding(after)
        } else {
            State::Pending("not checked yet".into())
        };
        // A per-event kind's `within` is each event's own deadline, not a window here.
        let window = match throughout {
            true => Duration::ZERO,
            false => expect.within.unwrap_or(Duration::ZERO),
        };
        Tracker {
            after,
            window_end: after + window,
            until,
            expect: expect.clone(),
            state,
            checked: false,
        }
    }

    /// An evaluation at an active instant found something to check.
    pub(crate) fn saw_subject(&mut self) {
        self.checked = true;
    }

    /// Some evaluation found something to check.
    pub(crate) fn checked_anything(&self) -> bool {
        self.checked
    }

    /// Still being decided (neither passed nor failed).
    pub(crate) fn open(&self) -> bool {
        matches!(self.state, State::Pending(_) | State::Holding(_))
    }

    pub(crate) fn kind(&self) -> ExpectKind {
        self.expect.kind
    }

    /// Is `now` inside the span this expectation is checked over?
    pub(crate) fn active(&self, now: Instant) -> bool {
        now >= self.after
            && now < self.until
            && matches!(self.state, State::Pending(_) | State::Holding(_))
    }

    /// Record one evaluation at `now`.
    pub(crate) fn observe(&mut self, now: Instant, result: Result<(), String>) {
        self.state = match (
            std::mem::replace(&mut self.state, State::Pending(String::new())),
            result,
        ) {
            (State::Pending(_), Ok(())) if now > self.window_end => State::Failed(
                now,
                format!(
                    "first held at {:?}, after the window that ended at {:?} (checks run \
                     every 100 ms of virtual time)",
                    now - Instant::ZERO,
                    self.window_end - Instant::ZERO
                ),
            ),
            (State::Pending(_), Ok(())) => State::Holding(now),
            (State::Pending(_), Err(why)) if now >= self.window_end => State::Failed(
                now,
                format!(
                    "did not hold by {:?}: {why}",
                    self.window_end - Instant::ZERO
                ),
            ),
            (State::Pending(_), Err(why)) => State::Pending(why),
            (State::Holding(since), Ok(())) => State::Holding(since),
            // Inside the window a break only restarts the wait: what counts is holding
            // continuously from some instant of the window on.
            (State::Holding(_), Err(why))
                if now <= self.window_end && !self.expect.kind.holds_throughout() =>
            {
                State::Pending(why)
            }
            (State::Holding(since), Err(why)) => State::Failed(
                now,
                format!(
                    "held from {:?} but broke at {:?}: {why}",
                    since - Instant::ZERO,
                    now - Instant::ZERO
                ),
            ),
            (done, _) => done,
        };
    }

    /// Time passed `now` without an evaluation: settle what can be settled.
    pub(crate) fn settle(&mut self, now: Instant) {
        match &self.state {
            State::Holding(_) if now >= self.until && !self.checked => {
                self.state = State::Failed(
                    self.until,
                    format!(
                        "had nothing to check from {} to {}: there was never {}",
                        self.after - Instant::ZERO,
                        self.until - Instant::ZERO,
                        self.expect.kind.subject()
                    ),
                )
            }
            State::Holding(since) if now >= self.until => self.state = State::Passed(*since),
            State::Pending(why) if now > self.window_end => {
                let why = why.clone();
                self.observe(now, Err(why));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::ExpectKind;

    fn expect(kind: ExpectKind, after: u64, within: u64) -> Expect {
        Expect {
            kind,
            nodes: None,
            after: Duration::from_secs(after),
            within: Some(Duration::from_secs(within)),
            until: None,
            key: None,
            value: None,
            fraction: None,
            line: 1,
        }
    }
    fn t(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn must_hold_within_the_window_and_keep_holding() {
        let mut tr = Tracker::new(&expect(ExpectKind::OverlayConnected, 10, 5), t(30));
        tr.saw_subject();
        assert!(!tr.active(t(9)));
        tr.observe(t(11), Err("split".into()));
        tr.observe(t(13), Ok(()));
        tr.observe(t(20), Ok(()));
        tr.settle(t(30));
        assert_eq!(tr.state, State::Passed(t(13)));

        // First seen holding only after the window (no check fell at its end): late.
        let mut after = Tracker::new(&expect(ExpectKind::OverlayConnected, 10, 5), t(30));
        after.observe(t(14), Err("split".into()));
        after.observe(t(16), Ok(()));
        assert!(
            matches!(after.state, State::Failed(_, ref why) if why.contains("after the window"))
        );

        let mut late = Tracker::new(&expect(ExpectKind::OverlayConnected, 10, 5), t(30));
        late.observe(t(16), Err("split".into()));
        assert!(
            matches!(late.state, State::Failed(_, ref why) if why.contains("did not hold by 15s"))
        );

        let mut flapped = Tracker::new(&expect(ExpectKind::OverlayConnected, 10, 5), t(30));
        flapped.saw_subject();
        flapped.observe(t(11), Ok(()));
        flapped.observe(t(12), Err("split".into()));
        flapped.observe(t(14), Ok(()));
        flapped.settle(t(30));
        assert_eq!(
            flapped.state,
            State::Passed(t(14)),
            "a break inside the window restarts the wait"
        );

        let mut broke = Tracker::new(&expect(ExpectKind::OverlayConnected, 10, 5), t(30));
        broke.observe(t(12), Ok(()));
        broke.observe(t(25), Err("split".into()));
        assert!(matches!(broke.state, State::Failed(_, ref why) if why.contains("broke at 25s")));
    }

    #[test]
    fn holding_with_nothing_to_check_fails() {
        let mut idle = Tracker::new(&expect(ExpectKind::KvConverged, 10, 5), t(30));
        idle.observe(t(11), Ok(()));
        idle.settle(t(30));
        assert!(
            matches!(idle.state, State::Failed(_, ref why)
                if why.contains("had nothing to check from 10s to 30s: there was never a live node in scope")),
            "{:?}",
            idle.state
        );

        let mut quiet = Tracker::new(&expect(ExpectKind::NoFalsePositives, 0, 0), t(30));
        quiet.settle(t(30));
        assert!(
            matches!(quiet.state, State::Failed(..)),
            "an invariant over no node"
        );
        let mut watched = Tracker::new(&expect(ExpectKind::NoFalsePositives, 0, 0), t(30));
        watched.saw_subject();
        watched.settle(t(30));
        assert_eq!(watched.state, State::Passed(t(0)));
    }

    #[test]
    fn a_per_event_kind_fails_at_its_first_miss_with_no_window() {
        let mut mc = Tracker::new(&expect(ExpectKind::MulticastDelivered, 10, 5), t(30));
        assert_eq!(
            mc.state,
            State::Holding(t(10)),
            "holds until an event misses"
        );
        mc.saw_subject();
        mc.observe(t(11), Err("n0's #1 missed".into()));
        assert!(matches!(mc.state, State::Failed(_, ref why) if why.contains("broke at 11s")));
    }
}
