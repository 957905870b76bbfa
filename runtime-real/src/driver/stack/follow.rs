//! Followers: what derives state from hawser's stack and must follow it closely.
//!
//! The dataplane follows the node from inside the driver task: a [`Follower`] is told,
//! after every drain that changed them, which KV keys changed and whether membership
//! did, and reads what it needs from the node right then. So whatever it derives (DNS
//! answers, VIP backends, overlay peers) is never older than the last input the node
//! took.

use std::collections::BTreeSet;

use crate::driver::View;

/// What changed in one drain of the node, as a [`Follower`] hears it.
#[derive(Debug, Default)]
pub struct Changes {
    /// The first call, at start: treat everything as changed.
    pub initial: bool,
    /// KV keys whose value changed (local ops and merges), in key order.
    pub keys: BTreeSet<String>,
    /// Global membership changed: a member added, changed, forgotten, or one that became
    /// reachable or unreachable.
    pub membership: bool,
}

impl Changes {
    /// Whether there is anything to tell.
    pub(super) fn any(&self) -> bool {
        self.initial || self.membership || !self.keys.is_empty()
    }
}

/// Something that derives state from the node and must follow it closely (the DNS zone,
/// the load balancer's desired state). Runs inside the driver task, so it must be quick:
/// read what changed and hand any slow work (kernel calls) to a task of its own.
pub trait Follower: Send {
    fn update(&mut self, view: &View<'_>, changes: &Changes);
}
