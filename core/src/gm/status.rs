//! A member's status as this node sees it, for operators (`hawser members`).
//!
//! - `Alive`: reachable over the graph, and no member's entry lists it as suspected.
//! - `Suspect`: still reachable, but a neighbour's failure detector suspects it (its
//!   other neighbours are checking it now): it is about to be `Failed`, or cleared.
//! - `Failed`: not reachable from this node, and it did not say it left: it crashed, or
//!   a partition separates it from us. Forgotten after `forget_after_ms`.
//! - `Left`: it published that it left the cluster (an agent stopped with SIGTERM or
//!   `hawser leave`), or an operator marked it so (`force-leave`). Forgotten after
//!   `forget_after_ms` like a failed member. A node that comes back takes a new version
//!   past the one that said it left, and is alive again.
//!
//! A leave is told with the version, not a new field, so the wire format (and with it
//! every simulator trace) stays as it was: the version whose counter is
//! [`LEFT_COUNTER`] is the last of its incarnation and says "left". No node reaches it
//! by counting (a counter grows by one per change of a node's view).

use super::message::Version;

/// The counter of the version that says its member left (see the module docs).
pub const LEFT_COUNTER: u64 = u64::MAX;

impl Version {
    /// Whether this version says its member left the cluster.
    pub fn is_left(self) -> bool {
        self.counter == LEFT_COUNTER
    }

    /// The version that says its member left, in the same incarnation.
    pub fn left(self) -> Version {
        Version {
            incarnation: self.incarnation,
            counter: LEFT_COUNTER,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Alive,
    Suspect,
    Failed,
    Left,
}

impl Status {
    /// The lower-case name operators see and filter by.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Alive => "alive",
            Status::Suspect => "suspect",
            Status::Failed => "failed",
            Status::Left => "left",
        }
    }

    /// Every status, in the order of its life.
    pub const ALL: [Status; 4] = [Status::Alive, Status::Suspect, Status::Failed, Status::Left];
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A status name that is none of `alive`, `suspect`, `failed`, `left`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownStatus(pub String);

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown status {:?}: use alive, suspect, failed or left",
            self.0
        )
    }
}

impl std::error::Error for UnknownStatus {}
