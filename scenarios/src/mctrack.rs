//! Following every multicast of a run: who must get it (the nodes that stay reachable
//! from its origin through the network from its sending on), who got it, how fast, and
//! whether anyone got it twice.

use std::collections::BTreeMap;

use hawser_core::{Duration, Instant};

use crate::network::Components;
use crate::owed::{Owed, check_all};

struct Sent {
    /// Who owes its delivery, judged on its own deadline.
    owed: Owed,
    /// Nodes that delivered it.
    got: Vec<bool>,
}

#[derive(Default)]
pub(crate) struct McTrack {
    /// By `(origin node, seq)`.
    sent: BTreeMap<(usize, u64), Sent>,
    /// Send-to-delivery delays of every delivery.
    pub(crate) delays: Vec<Duration>,
    /// The first few duplicate deliveries, as messages.
    pub(crate) duplicates: Vec<String>,
    /// Deliveries of multicasts the run did not send (must stay 0).
    pub(crate) unknown: u64,
    /// Copies sent by every node, as last read from each running node...
    copies_now: Vec<u64>,
    /// ...plus those of node lives that ended.
    copies_before: u64,
}

impl McTrack {
    /// `origin` sent `seq` at `at`; every node in its component that the origin `knows`
    /// (considers reachable) must deliver it. Multicast goes down the origin's tree of
    /// the members it knows: one that joined (or was rejoined by a heal) after the
    /// sending is not in it, and no repair re-sends old multicasts.
    pub(crate) fn sent(
        &mut self,
        at: Instant,
        origin: usize,
        seq: u64,
        net: &Components,
        knows: impl Fn(usize) -> bool,
    ) {
        let sent = Sent {
            owed: Owed::new(at, origin, net, knows),
            got: vec![false; net.len()],
        };
        self.sent.insert((origin, seq), sent);
    }

    /// `node` delivered `(origin, seq)` at `at`.
    pub(crate) fn delivered(&mut self, at: Instant, node: usize, origin: usize, seq: u64) {
        let Some(s) = self.sent.get_mut(&(origin, seq)) else {
            self.unknown += 1;
            return;
        };
        if std::mem::replace(&mut s.got[node], true) {
            if self.duplicates.len() < 5 {
                self.duplicates
                    .push(format!("n{node} delivered n{origin}'s #{seq} twice"));
            }
            return;
        }
        s.owed.delivered(at, node);
        self.delays.push(at - s.owed.at);
    }

    /// The network changed: a node that no longer reaches a message's origin is not
    /// owed it any more ("stayed reachable" is from the sending on, without a break).
    pub(crate) fn network_changed(&mut self, now: Instant, net: &Components) {
        for s in self.sent.values_mut() {
            s.owed.network_changed(now, net);
        }
    }

    /// Checks, at `now` (at most `until`), every multicast sent in `[since, until)` whose
    /// deadline has come: it must have reached every node that stayed reachable from its
    /// origin by `sent + within` (by `until` without `within`). Duplicates and deliveries of
    /// multicasts never sent fail whenever they happened. `Ok` says how many multicasts
    /// were checked (0: nothing was due yet).
    pub(crate) fn check(
        &self,
        since: Instant,
        until: Instant,
        within: Option<Duration>,
        now: Instant,
    ) -> Result<usize, String> {
        if let Some(d) = self.duplicates.first() {
            return Err(d.clone());
        }
        if self.unknown > 0 {
            return Err(format!(
                "{} deliveries of multicasts never sent",
                self.unknown
            ));
        }
        let events = self.sent.iter().map(|(&(origin, seq), s)| {
            let label =
                move || format!("n{origin}'s #{seq}, sent at {}", s.owed.at - Instant::ZERO);
            (&s.owed, label)
        });
        check_all(events, since, until, within, now)
    }

    /// Multicasts some node that stayed reachable still lacks.
    pub(crate) fn undelivered(&self) -> usize {
        self.sent.values().filter(|s| s.owed.pending()).count()
    }

    pub(crate) fn any_sent(&self) -> bool {
        !self.sent.is_empty()
    }

    /// Node `i` has sent `copies` copies in its current life.
    pub(crate) fn copies(&mut self, i: usize, copies: u64) {
        if self.copies_now.len() <= i {
            self.copies_now.resize(i + 1, 0);
        }
        self.copies_now[i] = copies;
    }

    /// Node `i`'s life ended (killed, restarted, wiped): its counter starts over.
    pub(crate) fn life_ended(&mut self, i: usize) {
        if let Some(c) = self.copies_now.get_mut(i) {
            self.copies_before += std::mem::take(c);
        }
    }

    /// Copies sent by every node over the whole run.
    pub(crate) fn total_copies(&self) -> u64 {
        self.copies_before + self.copies_now.iter().sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn owed_to_the_origins_component_once_and_only_while_it_stays_there() {
        // n0..n2 together, n3 cut off.
        let net: Components = vec![Some(0), Some(0), Some(0), Some(1)];
        let mut mc = McTrack::default();
        let check =
            |mc: &McTrack, now| mc.check(t(0), t(1000), Some(Duration::from_millis(5)), t(now));
        mc.sent(t(0), 0, 1, &net, |_| true);
        assert_eq!(check(&mc, 4), Ok(0), "not due before its deadline");
        assert!(check(&mc, 5).unwrap_err().contains("2 node(s)"));
        mc.delivered(t(3), 1, 0, 1);
        assert!(check(&mc, 5).unwrap_err().contains("n2 first"));
        // n2 leaves the origin's component before its deadline: it is owed nothing now.
        mc.network_changed(t(4), &vec![Some(0), Some(0), None, Some(1)]);
        assert_eq!(check(&mc, 5), Ok(1));
        assert_eq!(mc.delays, vec![Duration::from_millis(3)]);

        mc.delivered(t(4), 1, 0, 1);
        assert_eq!(
            check(&mc, 100),
            Err("n1 delivered n0's #1 twice".into()),
            "a duplicate fails the check whenever it happened"
        );
    }

    #[test]
    fn a_node_the_origin_did_not_know_when_it_sent_is_owed_nothing() {
        // n2 is reachable through the network but not yet a member the origin knows
        // (two halves just healed and have not merged).
        let net: Components = vec![Some(0), Some(0), Some(0)];
        let mut mc = McTrack::default();
        mc.sent(t(0), 0, 1, &net, |j| j != 2);
        mc.delivered(t(3), 1, 0, 1);
        assert_eq!(
            mc.check(t(0), t(1000), Some(Duration::from_millis(5)), t(10)),
            Ok(1)
        );
        assert_eq!(mc.undelivered(), 0);
    }

    #[test]
    fn each_multicast_has_its_own_deadline() {
        let net: Components = vec![Some(0), Some(0), Some(0)];
        let within = Some(Duration::from_millis(10));
        let mut mc = McTrack::default();
        mc.sent(t(0), 0, 1, &net, |_| true);
        mc.delivered(t(2), 1, 0, 1);
        mc.delivered(t(3), 2, 0, 1);
        mc.sent(t(100), 0, 2, &net, |_| true);
        // The second one is on its way: it fails nothing before its own deadline.
        assert_eq!(mc.check(t(0), t(1000), within, t(105)), Ok(1));
        mc.delivered(t(104), 1, 0, 2);
        mc.delivered(t(115), 2, 0, 2);
        let late = mc.check(t(0), t(1000), within, t(200)).unwrap_err();
        assert!(late.contains("reached n2 after 15.000ms"), "{late}");
        // Without `within`, every one is due by `until`.
        assert_eq!(mc.check(t(0), t(1000), None, t(999)), Ok(0));
        assert_eq!(mc.check(t(0), t(1000), None, t(1000)), Ok(2));
        // A deadline after `until` never comes: the second one is not judged.
        assert_eq!(mc.check(t(0), t(105), within, t(105)), Ok(1));
    }

    #[test]
    fn cut_off_after_its_deadline_is_still_a_miss() {
        let net: Components = vec![Some(0), Some(0)];
        let within = Some(Duration::from_millis(10));
        let mut mc = McTrack::default();
        mc.sent(t(0), 0, 1, &net, |_| true);
        mc.network_changed(t(50), &vec![Some(0), None]);
        let miss = mc.check(t(0), t(1000), within, t(100)).unwrap_err();
        assert!(
            miss.contains("stopped reaching the origin only at 50ms"),
            "{miss}"
        );
    }

    #[test]
    fn only_multicasts_sent_since_the_window_count() {
        let net: Components = vec![Some(0), Some(0)];
        let mut mc = McTrack::default();
        mc.sent(t(0), 0, 1, &net, |_| true);
        mc.sent(t(50), 0, 2, &net, |_| true);
        mc.delivered(t(52), 1, 0, 2);
        let within = Some(Duration::from_millis(5));
        assert_eq!(mc.check(t(10), t(1000), within, t(100)), Ok(1));
        assert!(mc.check(t(0), t(1000), within, t(100)).is_err());
        assert_eq!(mc.undelivered(), 1);
        mc.delivered(t(60), 1, 7, 1);
        assert!(
            mc.check(t(10), t(1000), within, t(100))
                .unwrap_err()
                .contains("never sent")
        );
    }

    #[test]
    fn copies_survive_the_end_of_a_life() {
        let mut mc = McTrack::default();
        mc.copies(2, 5);
        mc.copies(2, 7);
        mc.life_ended(2);
        mc.copies(2, 1);
        mc.copies(0, 3);
        assert_eq!(mc.total_copies(), 11);
    }
}
