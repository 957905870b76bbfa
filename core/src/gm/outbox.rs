//! Per-neighbour batching of the entries global membership sends.
//!
//! Flooding every adjacency change at once costs one message per change per link: a
//! thousand nodes joining make millions. So each link has a lane: when it has been
//! quiet for `batch` the entries go at once (a lone change — a crash — is not delayed);
//! otherwise they wait until `batch` after the last send, and a newer version of the
//! same member replaces the older one meanwhile. A storm then costs at most one message
//! per link per `batch`, carrying only each member's latest entry.
//!
//! An entry the peer shows it already holds (it sent us that version or a newer one)
//! leaves the lane before it is sent: in a storm most of what a flood would send a
//! neighbour reaches it first by another path, and a waiting lane is where that is
//! cheap to notice. Entries are shared (`Arc`), not copied, per lane.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::message::{Entry, Version};
use crate::id::NodeId;
use crate::time::{Duration, Instant};

#[derive(Default)]
struct Lane {
    last_sent: Option<Instant>,
    pending: BTreeMap<NodeId, Arc<Entry>>,
    /// A flush timer is set for this lane.
    armed: bool,
}

#[derive(Default)]
pub struct Outbox {
    lanes: BTreeMap<NodeId, Lane>,
}

/// What to do for a lane after a push or a flush timer.
pub enum Flush {
    /// Send these now.
    Send(Vec<Arc<Entry>>),
    /// Set a flush timer for this instant.
    Arm(Instant),
    /// Nothing (empty, or a timer is already set).
    Wait,
}

impl Outbox {
    /// Queue `entries` for `peer`, keeping only the newest version of each member.
    pub fn push(&mut self, peer: NodeId, entries: &[Arc<Entry>]) {
        let lane = self.lanes.entry(peer).or_default();
        for e in entries {
            match lane.pending.get(&e.id) {
                Some(old) if old.version >= e.version => {}
                _ => {
                    lane.pending.insert(e.id, Arc::clone(e));
                }
            }
        }
    }

    /// `peer` holds `member` at `version` (it sent it to us): what waits for it of that
    /// member, no newer, need not go.
    pub fn peer_has(&mut self, peer: NodeId, member: NodeId, version: Version) {
        if let Some(lane) = self.lanes.get_mut(&peer) {
            if lane.pending.get(&member).is_some_and(|e| e.version <= version) {
                lane.pending.remove(&member);
            }
        }
    }

    /// Decide for `peer` at `now`. `timer_fired` when called from the lane's timer.
    pub fn flush(
        &mut self,
        peer: NodeId,
        now: Instant,
        batch: Duration,
        timer_fired: bool,
    ) -> Flush {
        let Some(lane) = self.lanes.get_mut(&peer) else {
            return Flush::Wait;
        };
        if timer_fired {
            lane.armed = false;
        }
        if lane.pending.is_empty() {
            return Flush::Wait;
        }
        let ready = lane.last_sent.is_none_or(|t| now >= t + batch);
        if ready {
            lane.last_sent = Some(now);
            return Flush::Send(std::mem::take(&mut lane.pending).into_values().collect());
        }
        if lane.armed {
            return Flush::Wait;
        }
        lane.armed = true;
        Flush::Arm(lane.last_sent.expect("not ready, so sent before") + batch)
    }

    /// `peer` is no longer a neighbour: what was queued for it is moot (a new link
    /// starts with a digest exchange).
    pub fn remove(&mut self, peer: NodeId) {
        self.lanes.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{Addr, Name};
    use crate::wire::Bounded;

    fn entry(id: u64, counter: u64) -> Arc<Entry> {
        Arc::new(Entry {
            id: NodeId(id),
            name: Name::new(format!("n{id}")).unwrap(),
            addr: Addr::new(format!("n{id}")).unwrap(),
            version: Version {
                incarnation: 1,
                counter,
            },
            adjacency: Bounded(vec![]),
        })
    }

    fn ms(n: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(n)
    }

    fn sent(f: Flush) -> Vec<(u64, u64)> {
        match f {
            Flush::Send(v) => v.iter().map(|e| (e.id.0, e.version.counter)).collect(),
            _ => panic!("expected a send"),
        }
    }

    #[test]
    fn a_quiet_lane_sends_at_once_a_busy_one_batches_the_newest_versions() {
        let (mut o, p, batch) = (Outbox::default(), NodeId(9), Duration::from_millis(100));
        o.push(p, &[entry(1, 1)]);
        assert_eq!(sent(o.flush(p, ms(0), batch, false)), vec![(1, 1)]);
        o.push(p, &[entry(1, 2), entry(2, 1)]);
        assert!(matches!(o.flush(p, ms(10), batch, false), Flush::Arm(t) if t == ms(100)));
        o.push(p, &[entry(1, 3)]);
        assert!(matches!(o.flush(p, ms(20), batch, false), Flush::Wait));
        assert_eq!(sent(o.flush(p, ms(100), batch, true)), vec![(1, 3), (2, 1)]);
    }

    #[test]
    fn what_the_peer_already_holds_is_not_sent() {
        let (mut o, p, batch) = (Outbox::default(), NodeId(9), Duration::from_millis(100));
        o.push(p, &[entry(1, 1)]);
        let _ = o.flush(p, ms(0), batch, false);
        o.push(p, &[entry(1, 2), entry(2, 5), entry(3, 1)]);
        o.peer_has(p, NodeId(1), Version { incarnation: 1, counter: 2 });
        o.peer_has(p, NodeId(2), Version { incarnation: 1, counter: 4 });
        o.peer_has(NodeId(8), NodeId(3), Version { incarnation: 1, counter: 9 });
        assert_eq!(
            sent(o.flush(p, ms(100), batch, true)),
            vec![(2, 5), (3, 1)],
            "only n1's version is known to the peer; n2's is newer than what it holds, \
             and another peer holding n3 says nothing of this one"
        );
    }
}
