//! What global membership tells the application, and what it counts.

use serde::{Deserialize, Serialize};

use crate::id::{Addr, NodeId};

/// A change in the cluster as this node sees it. Each is reported only when something
/// changed: a new version that lists the same neighbours at the same address is silent,
/// and a node is reported reachable (or unreachable) only on a transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GmEvent {
    /// A member's first entry arrived.
    Added { member: NodeId, addr: Addr },
    /// A member published different neighbours, or a new address.
    Changed { member: NodeId },
    /// A node became reachable from this one over the graph.
    Reachable(NodeId),
    /// A node stopped being reachable from this one.
    Unreachable(NodeId),
    /// A member unreachable for `forget_after_ms` was dropped from the table.
    Forgotten(NodeId),
    /// `by` published that its failure detector suspects `member`, one of our own
    /// neighbours or this node itself (reported for each new version of `by`'s entry
    /// that says so; about itself, a node refutes it).
    Suspected { member: NodeId, by: NodeId },
}

/// Running totals, for metrics (messages per membership change) and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GmCounters {
    /// Messages sent, by kind.
    pub entries_msgs_sent: u64,
    pub digest_msgs_sent: u64,
    pub have_msgs_sent: u64,
    pub want_msgs_sent: u64,
    /// Entries sent (our own, pushed; or in answer to a want or a digest).
    pub entries_sent: u64,
    /// Versions announced, and entries asked for.
    pub haves_sent: u64,
    pub wants_sent: u64,
    /// Entries received that were news, and those that were not.
    pub entries_applied: u64,
    pub entries_stale: u64,
    /// Entries refused because the table was full (`max_members`).
    pub members_refused: u64,
    /// Times this node learned that the cluster held a version of its own entry at
    /// least as new as its current one (a lost incarnation record), and moved past it.
    pub self_bumps: u64,
    /// Full reachability searches run (removals, coalesced).
    pub recomputes: u64,
    /// De-partitioning probes asked of membership.
    pub probes: u64,
    /// The persisted incarnation did not decode and was ignored (0 or 1).
    pub incarnation_restore_failed: u64,
}

impl GmCounters {
    pub fn messages_sent(&self) -> u64 {
        self.entries_msgs_sent + self.digest_msgs_sent + self.have_msgs_sent + self.want_msgs_sent
    }
}
