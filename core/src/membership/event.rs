//! What membership tells the application, and the counters it keeps about itself.

use serde::{Deserialize, Serialize};

use super::message::Kind;
use crate::id::NodeId;

/// A change of this node's active view, or of what its failure detector thinks of a
/// neighbour. Every addition and removal is reported exactly once, so a consumer (the
/// adjacency flood of global membership) can mirror the view; a suspicion is reported
/// when it starts and when it clears (a neighbour evicted instead just goes down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipEvent {
    NeighborUp(NodeId),
    NeighborDown {
        peer: NodeId,
        reason: DownCause,
    },
    /// A neighbour missed its pong: the indirect phase started.
    Suspected(NodeId),
    /// A suspected neighbour answered after all (or a helper reached it).
    Cleared(NodeId),
}

/// Why a neighbour left the active view. It always moves to the passive view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownCause {
    /// The transport dropped the link (peer died, connection reset): acted on at once.
    LinkLost,
    /// The peer removed us from its active view.
    Disconnected,
    /// The peer left the cluster (it told us, stopping).
    Left,
    /// We dropped it to make room for another neighbour.
    Replaced,
    /// The failure detector evicted it: no pong, and no helper could reach it either.
    Evicted,
    /// The failure detector evicted it because only helpers could reach it, round after
    /// round: the peer is alive but the link to it is not, so it is replaced.
    LinkUnhealthy,
}

impl DownCause {
    /// Whether the failure detector made this call (what `no-false-positives` audits).
    pub fn is_eviction(self) -> bool {
        matches!(self, DownCause::Evicted | DownCause::LinkUnhealthy)
    }
}

/// Running totals, for the simulator's metrics and checks and for operators.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Neighbours the failure detector removed (`Evicted` or `LinkUnhealthy`).
    pub evictions: u64,
    /// Rounds where a neighbour missed its pong but a helper (or a second ping) reached
    /// it: each one a false positive that the indirect probe prevented.
    pub rescued: u64,
    /// Timers that fired late enough to say this node itself stalled.
    pub late_timers: u64,
    /// Joins this node (as a contact) forwarded without adding the joiner itself.
    pub joins_throttled: u64,
    /// Indirect probes refused because `max_relays` were already running.
    pub relays_refused: u64,
    /// Neighbours pinged ahead of schedule because another node suspected them.
    pub early_pings: u64,
    /// Pings skipped because the neighbour had been heard from within a ping interval
    /// (`traffic_is_liveness`).
    pub pings_spared: u64,
    /// Pings sent to a neighbour that published it suspects this node (refutations).
    pub refutations: u64,
    /// Suspicions cleared by a ping from the suspect (its refutation, or its own probe).
    pub refuted: u64,
    /// The persisted passive view did not decode and was ignored (0 or 1).
    pub passive_restore_failed: u64,
    /// Peers taken into the passive view from the cluster's member list (see `refill`).
    #[serde(default)]
    pub peers_learned: u64,
    sent: [u64; Kind::ALL.len()],
    received: [u64; Kind::ALL.len()],
}

impl Counters {
    pub fn sent(&self, kind: Kind) -> u64 {
        self.sent[kind as usize]
    }
    pub fn received(&self, kind: Kind) -> u64 {
        self.received[kind as usize]
    }
    pub fn messages_sent(&self) -> u64 {
        self.sent.iter().sum()
    }
    pub(super) fn count_sent(&mut self, kind: Kind) {
        self.sent[kind as usize] += 1;
    }
    pub(super) fn count_received(&mut self, kind: Kind) {
        self.received[kind as usize] += 1;
    }
}
