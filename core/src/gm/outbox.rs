//! Per-neighbour batching of the versions global membership announces (`Have`).
//!
//! Announcing every adjacency change at once costs one message per change per link: a
//! thousand nodes joining make millions. So each link has a lane, paced by a token
//! bucket: `burst` messages may go at once, and one more is earned every `batch`. A
//! burst of a few changes (a crash: each of the dead node's neighbours publishes within
//! milliseconds) crosses every hop without delay; a storm drains the bucket and then
//! costs about one message per link per `batch`, carrying only each member's latest
//! version (a newer one replaces the older while it waits).
//!
//! A version the peer shows it already holds (it announced or sent us that version or a
//! newer one) leaves the lane before it is sent: in a storm most of what a flood would
//! announce to a neighbour reaches it first by another path, and a waiting lane is
//! where that is cheap to notice.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::message::Version;
use crate::id::NodeId;
use crate::time::{Duration, Instant};

struct Lane {
    /// Hashed (a storm touches it for every announcement); sorted by id when sent.
    pending: FxHashMap<NodeId, Version>,
    /// Messages the lane may send now...
    credit: u32,
    /// ...as of this instant (credit earned since is added when next asked).
    counted: Instant,
    /// A flush timer is set for this lane.
    armed: bool,
}

impl Lane {
    /// Add the credit earned since `counted`, up to `burst`.
    fn earn(&mut self, now: Instant, batch: Duration, burst: u32) {
        if batch == Duration::ZERO {
            self.credit = burst;
            return;
        }
        let earned = (now - self.counted).as_nanos() / batch.as_nanos();
        if self.credit + earned.min(u64::from(burst)) as u32 >= burst {
            self.credit = burst;
            self.counted = now;
        } else if earned > 0 {
            self.credit += earned as u32;
            self.counted += batch.saturating_mul(earned);
        }
    }
}

#[derive(Default)]
pub struct Outbox {
    lanes: BTreeMap<NodeId, Lane>,
}

/// What to do for a lane after a push or a flush timer.
pub enum Flush {
    /// Send these now.
    Send(Vec<(NodeId, Version)>),
    /// Set a flush timer for this instant.
    Arm(Instant),
    /// Nothing (empty, or a timer is already set).
    Wait,
}

impl Outbox {
    /// Queue `versions` for `peer`, keeping only the newest version of each member. A
    /// new lane starts with a full bucket of `burst`.
    pub fn push(&mut self, peer: NodeId, versions: &[(NodeId, Version)], now: Instant, burst: u32) {
        let lane = self.lanes.entry(peer).or_insert_with(|| Lane {
            pending: FxHashMap::default(),
            credit: burst,
            counted: now,
            armed: false,
        });
        for &(member, version) in versions {
            let v = lane.pending.entry(member).or_insert(version);
            *v = (*v).max(version);
        }
    }

    /// `peer` holds `member` at `version` (it told us so): what waits for it of that
    /// member, no newer, need not go.
    pub fn peer_has(&mut self, peer: NodeId, member: NodeId, version: Version) {
        if let Some(lane) = self.lanes.get_mut(&peer)
            && lane.pending.get(&member).is_some_and(|v| *v <= version)
        {
            lane.pending.remove(&member);
        }
    }

    /// Decide for `peer` at `now`. `timer_fired` when called from the lane's timer.
    pub fn flush(
        &mut self,
        peer: NodeId,
        now: Instant,
        (batch, burst): (Duration, u32),
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
        lane.earn(now, batch, burst);
        if lane.credit > 0 {
            lane.credit -= 1;
            let mut versions: Vec<(NodeId, Version)> = lane.pending.drain().collect();
            versions.sort_unstable_by_key(|(member, _)| *member);
            return Flush::Send(versions);
        }
        if lane.armed {
            return Flush::Wait;
        }
        lane.armed = true;
        Flush::Arm(lane.counted + batch)
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

    fn entry(id: u64, counter: u64) -> (NodeId, Version) {
        let incarnation = 1;
        (
            NodeId(id),
            Version {
                incarnation,
                counter,
            },
        )
    }

    fn ms(n: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(n)
    }

    fn sent(f: Flush) -> Vec<(u64, u64)> {
        match f {
            Flush::Send(v) => v.iter().map(|(id, v)| (id.0, v.counter)).collect(),
            _ => panic!("expected a send"),
        }
    }

    const PACE: (Duration, u32) = (Duration::from_millis(100), 2);

    #[test]
    fn a_burst_goes_at_once_then_the_lane_batches_the_newest_versions() {
        let (mut o, p) = (Outbox::default(), NodeId(9));
        o.push(p, &[entry(1, 1)], ms(0), PACE.1);
        assert_eq!(sent(o.flush(p, ms(0), PACE, false)), vec![(1, 1)]);
        o.push(p, &[entry(2, 1)], ms(5), PACE.1);
        assert_eq!(
            sent(o.flush(p, ms(5), PACE, false)),
            vec![(2, 1)],
            "within the burst"
        );
        o.push(p, &[entry(1, 2), entry(3, 1)], ms(10), PACE.1);
        assert!(matches!(o.flush(p, ms(10), PACE, false), Flush::Arm(t) if t == ms(100)));
        o.push(p, &[entry(1, 3)], ms(20), PACE.1);
        assert!(matches!(o.flush(p, ms(20), PACE, false), Flush::Wait));
        assert_eq!(sent(o.flush(p, ms(100), PACE, true)), vec![(1, 3), (3, 1)]);
        // Quiet for a while: the bucket is full again, and no fuller than `burst`.
        for (i, at) in [1000, 1001].into_iter().enumerate() {
            o.push(p, &[entry(4, i as u64)], ms(at), PACE.1);
            assert!(matches!(o.flush(p, ms(at), PACE, false), Flush::Send(_)));
        }
        o.push(p, &[entry(4, 9)], ms(1002), PACE.1);
        assert!(matches!(o.flush(p, ms(1002), PACE, false), Flush::Arm(_)));
    }

    #[test]
    fn what_the_peer_already_holds_is_not_sent() {
        let (mut o, p) = (Outbox::default(), NodeId(9));
        o.push(p, &[entry(1, 2), entry(2, 5), entry(3, 1)], ms(0), PACE.1);
        o.peer_has(
            p,
            NodeId(1),
            Version {
                incarnation: 1,
                counter: 2,
            },
        );
        o.peer_has(
            p,
            NodeId(2),
            Version {
                incarnation: 1,
                counter: 4,
            },
        );
        o.peer_has(
            NodeId(8),
            NodeId(3),
            Version {
                incarnation: 1,
                counter: 9,
            },
        );
        assert_eq!(
            sent(o.flush(p, ms(0), PACE, false)),
            vec![(2, 5), (3, 1)],
            "only n1's version is known to the peer; n2's is newer than what it holds, \
             and another peer holding n3 says nothing of this one"
        );
    }
}
