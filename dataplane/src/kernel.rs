//! What every kernel backend shares (the load balancer's and the overlay's): each reads
//! the kernel and applies changes, reports a pass the same way, and fails in the same
//! three ways.

use std::fmt;

/// Why a kernel backend failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// The system lacks what this backend needs (no `nft` program, no IPVS in the
    /// kernel, no permission): the agent refuses to start with this message.
    Unsupported(String),
    /// A request the kernel refused or a call that failed: what was asked, and why.
    Failed { op: String, error: String },
    /// The kernel answered something this backend cannot read.
    Unreadable(String),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Unsupported(why) => f.write_str(why),
            KernelError::Failed { op, error } => write!(f, "{op}: {error}"),
            KernelError::Unreadable(what) => write!(f, "unreadable kernel answer: {what}"),
        }
    }
}

impl std::error::Error for KernelError {}

pub(crate) fn failed(op: impl Into<String>, error: impl fmt::Display) -> KernelError {
    KernelError::Failed {
        op: op.into(),
        error: error.to_string(),
    }
}

/// What one reconcile pass did, over a backend's kind of change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass<C> {
    /// The changes applied (empty when the kernel already held the desired state).
    pub changes: Vec<C>,
    /// Kernel messages the changes took (nft commands, netlink requests).
    pub messages: usize,
}

/// Nothing done: what a pass over a converged kernel returns. (By hand: a derived
/// `Default` would ask the change type to have one.)
impl<C> Default for Pass<C> {
    fn default() -> Pass<C> {
        Pass {
            changes: Vec::new(),
            messages: 0,
        }
    }
}
