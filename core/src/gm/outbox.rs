//! Per-neighbour batching of the entries global membership sends.
//!
//! Flooding every adjacency change at once costs one message per change per link: a
//! thousand nodes joining make millions. So each link has a lane: when it has been
//! quiet for `batch` the entries go at once (a lone change — a crash — is not delayed);
//! otherwise they wait until `batch` after the last send, and a newer version of the
//! same member replaces the older one meanwhile. A storm then costs at most one message
//! per link per `batch`, carrying only each member's latest entry.

use std::collections::BTreeMap;

use super::message::Entry;
use crate::id::NodeId;
use crate::time::{Duration, Instant};

#[derive(Default)]
struct Lane {
    last_sent: Option<Instant>,
    pending: BTreeMap<NodeId, Entry>,
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
    Send(Vec<Entry>),
    /// Set a flush timer for this instant.
    Arm(Instant),
    /// Nothing (empty, or a timer is already set).
    Wait,
}

impl Outbox {
    /// Queue `entries` for `peer`, keeping only the newest version of each member.
    pub fn push(&mut self, peer: NodeId, entries: &[Entry]) {
        let lane = self.lanes.entry(peer).or_default();
        for e in entries {
            match lane.pending.get(&e.id) {
                Some(old) if old.version >= e.version => {}
                _ => {
                    lane.pending.insert(e.id, e.clone());
                }
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
