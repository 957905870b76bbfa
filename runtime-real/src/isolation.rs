//! Whether this agent runs cut off from the cluster it was told to join, and why: so that
//! a wrong cookie or a `--join` address nobody listens on is said plainly, once, rather
//! than left to a stream of per-connection warnings (or to silence).
//!
//! The agent is *isolated* when it holds no link and its last [`AFTER`] dials in a row
//! failed. The cause is [`Cause::CookieRefused`] when each of them reached the peer and
//! failed the cookie proof, [`Cause::NoAnswer`] otherwise. A node that dials nobody (the
//! first node of a cluster) is never isolated: it is alone, as asked. Any link clears it.
//! Plain data: the driver reports dials and links, and logs the transitions.

/// Dials that must fail in a row, with no link up, before the agent says it is isolated.
pub const AFTER: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Every peer dialled refused this node's cookie proof.
    CookieRefused,
    /// No contact could be reached (nobody listens, or a timeout).
    NoAnswer,
}

impl Cause {
    /// What `/v1/self` says in `isolated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::CookieRefused => "cookie refused by every contact",
            Cause::NoAnswer => "no contact answers",
        }
    }
}

/// A dial's outcome, as far as isolation is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dial {
    /// The peer took the connection, and one of us failed the other's cookie proof.
    CookieRefused,
    /// The connection could not be made.
    NoAnswer,
}

#[derive(Debug, Default)]
pub struct Isolation {
    /// Failed dials since the last link up, and how many of them were cookie refusals.
    failed: u32,
    refused: u32,
    state: Option<Cause>,
}

impl Isolation {
    pub fn state(&self) -> Option<Cause> {
        self.state
    }

    /// A dial failed while this node held `links` links; the new state if it changed.
    pub fn dial_failed(&mut self, dial: Dial, links: usize) -> Option<Option<Cause>> {
        self.failed = self.failed.saturating_add(1);
        if dial == Dial::CookieRefused {
            self.refused = self.refused.saturating_add(1);
        }
        let cause = if self.refused == self.failed {
            Cause::CookieRefused
        } else {
            Cause::NoAnswer
        };
        let state = (links == 0 && self.failed >= AFTER).then_some(cause);
        self.set(state.or(self.state))
    }

    /// A link came up: not isolated; the new state if it changed.
    pub fn linked(&mut self) -> Option<Option<Cause>> {
        self.failed = 0;
        self.refused = 0;
        self.set(None)
    }

    fn set(&mut self, state: Option<Cause>) -> Option<Option<Cause>> {
        (state != self.state).then(|| {
            self.state = state;
            state
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_after_failed_dials_in_a_row_until_a_link() {
        let mut i = Isolation::default();
        assert_eq!(i.dial_failed(Dial::CookieRefused, 0), None);
        assert_eq!(i.dial_failed(Dial::CookieRefused, 0), None);
        assert_eq!(
            i.dial_failed(Dial::CookieRefused, 0),
            Some(Some(Cause::CookieRefused))
        );
        assert_eq!(i.dial_failed(Dial::CookieRefused, 0), None, "said once");
        assert_eq!(i.linked(), Some(None));
        assert_eq!(i.linked(), None);

        // Mixed failures: nobody answers, as far as this node can tell.
        i.dial_failed(Dial::NoAnswer, 0);
        i.dial_failed(Dial::CookieRefused, 0);
        assert_eq!(
            i.dial_failed(Dial::NoAnswer, 0),
            Some(Some(Cause::NoAnswer))
        );
    }

    #[test]
    fn a_node_with_links_is_not_isolated_by_failed_dials() {
        let mut i = Isolation::default();
        for _ in 0..10 {
            assert_eq!(i.dial_failed(Dial::NoAnswer, 2), None);
        }
        assert_eq!(i.state(), None);
        assert_eq!(
            i.dial_failed(Dial::NoAnswer, 0),
            Some(Some(Cause::NoAnswer)),
            "isolated as soon as the last link is gone and dials still fail"
        );
    }
}
