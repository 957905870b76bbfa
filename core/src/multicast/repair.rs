//! The messages this node sent, passed on or received lately, and which neighbours it
//! sent each to, so that what a link lost, or a new link never carried, can be sent
//! again.
//!
//! - **A link goes down.** A copy handed to a link is not yet delivered: it waits in
//!   the send queue or in flight, and if the link goes down (a partition the detector
//!   gives up on, a crash of the receiver) it is gone, and with it the whole subtree the
//!   receiver was to pass it to. Nobody else knows: the other nodes' trees did not
//!   include those nodes, and they have marked the message forwarded. The sender is the
//!   one node that knows which link took which copy, so it floods again every message
//!   it put on that link within the window. A flood reaches every node still connected
//!   to it; a node that already has the message drops the copy (exactly once still
//!   holds) and passes it on once.
//! - **A link comes up.** A node that sent while cut off from the others (a partition
//!   that just healed, a node alone for a moment) reached nobody, so each end of a new
//!   link offers the other the messages it holds that it never sent it. A node that
//!   finds an offer new floods it on; one that has it drops it.
//!
//! The window bounds a message's age (see `Packet::age`), not the time since one node
//! sent it, so a message passed from one repairer to the next is repaired for one window
//! in all. It must outlast the time a dead link takes to be noticed (the detector's
//! suspicion, a few seconds by default). The buffer is bounded, oldest first out.
//! Topics that repair themselves (the KV's deltas, which anti-entropy repairs) are not
//! kept.

use std::collections::{BTreeMap, BTreeSet};

use super::message::Packet;
use crate::id::NodeId;
use crate::time::{Duration, Instant};

struct Held {
    /// When this node got (or sent) the message; `packet.age` is its age then.
    since: Instant,
    packet: Packet,
    /// Neighbours this node put a copy on the link to.
    to: BTreeSet<NodeId>,
}

impl Held {
    fn aged(&self, now: Instant) -> Packet {
        Packet {
            age: self.packet.age + (now - self.since),
            ..self.packet.clone()
        }
    }
}

pub struct Recent {
    window: Duration,
    capacity: usize,
    held: BTreeMap<(NodeId, u64), Held>,
}

impl Recent {
    pub fn new(window: Duration, capacity: usize) -> Recent {
        Recent {
            window,
            capacity,
            held: BTreeMap::new(),
        }
    }

    /// Hold `p` (if not held yet) and, with `to`, note that a copy went on the link to
    /// that neighbour.
    pub fn record(&mut self, p: &Packet, to: Option<NodeId>, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        let key = (p.origin, p.seq);
        if !self.held.contains_key(&key) {
            self.expire(now);
            if self.held.len() >= self.capacity {
                let oldest = self
                    .held
                    .iter()
                    .min_by_key(|(_, h)| h.since)
                    .map(|(k, _)| *k);
                oldest.map(|k| self.held.remove(&k));
            }
        }
        let held = self.held.entry(key).or_insert_with(|| Held {
            since: now,
            packet: p.clone(),
            to: BTreeSet::new(),
        });
        held.to.extend(to);
    }

    /// The link to `peer` went down at `now`: the messages put on it that are still
    /// within the window, by key, aged to `now`; they no longer count as sent to it.
    pub fn lost_with(&mut self, peer: NodeId, now: Instant) -> Vec<Packet> {
        self.expire(now);
        self.held
            .values_mut()
            .filter_map(|h| h.to.remove(&peer).then(|| h.aged(now)))
            .collect()
    }

    /// A link to `peer` came up at `now`: the messages within the window never put on a
    /// link to it, by key, aged to `now`; from now on they count as sent to it.
    pub fn offer_to(&mut self, peer: NodeId, now: Instant) -> Vec<Packet> {
        self.expire(now);
        self.held
            .values_mut()
            .filter_map(|h| h.to.insert(peer).then(|| h.aged(now)))
            .collect()
    }

    fn expire(&mut self, now: Instant) {
        let window = self.window;
        self.held.retain(|_, h| h.aged(now).age <= window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gm::Bounded;

    fn packet(seq: u64) -> Packet {
        Packet {
            origin: NodeId(1),
            seq,
            trees: 1,
            flood: false,
            view: 0,
            age: Duration::ZERO,
            topic: "t".into(),
            payload: Bounded(vec![]),
        }
    }

    fn seqs(v: Vec<Packet>) -> Vec<u64> {
        v.into_iter().map(|p| p.seq).collect()
    }

    #[test]
    fn a_lost_link_gives_back_what_it_carried_within_the_window() {
        let t = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        let mut r = Recent::new(Duration::from_millis(100), 8);
        r.record(&packet(1), Some(NodeId(2)), t(0));
        r.record(&packet(2), Some(NodeId(3)), t(10));
        r.record(&packet(3), Some(NodeId(2)), t(50));
        assert_eq!(
            seqs(r.lost_with(NodeId(2), t(105))),
            vec![3],
            "1 is too old"
        );
        assert!(r.lost_with(NodeId(2), t(106)).is_empty(), "given back once");
        let again = r.lost_with(NodeId(3), t(110));
        assert_eq!(
            again[0].age,
            Duration::from_millis(100),
            "aged by its wait here"
        );
        let mut aged = packet(4);
        aged.age = Duration::from_millis(90);
        r.record(&aged, Some(NodeId(2)), t(110));
        assert!(
            r.lost_with(NodeId(2), t(121)).is_empty(),
            "90 ms old when it came: its window is up 10 ms later"
        );
    }

    #[test]
    fn a_new_link_is_offered_what_it_never_carried_once() {
        let t = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        let mut r = Recent::new(Duration::from_millis(100), 8);
        r.record(&packet(1), None, t(0));
        r.record(&packet(2), Some(NodeId(2)), t(10));
        let offered = r.offer_to(NodeId(2), t(30));
        assert_eq!(seqs(offered.clone()), vec![1], "2 went to n2 already");
        assert_eq!(offered[0].age, Duration::from_millis(30));
        assert!(r.offer_to(NodeId(2), t(31)).is_empty(), "offered once");
        assert_eq!(seqs(r.lost_with(NodeId(2), t(40))), vec![1, 2]);
    }

    #[test]
    fn bounded_oldest_out_and_off_at_zero() {
        let t = Instant::from_nanos;
        let mut r = Recent::new(Duration::from_secs(10), 2);
        for seq in 1..=3 {
            r.record(&packet(seq), Some(NodeId(2)), t(seq));
        }
        assert_eq!(seqs(r.lost_with(NodeId(2), t(4))), vec![2, 3]);
        let mut off = Recent::new(Duration::from_secs(10), 0);
        off.record(&packet(1), Some(NodeId(2)), t(1));
        assert!(off.lost_with(NodeId(2), t(2)).is_empty());
    }
}
