//! Errors shared by every kernel backend (the load balancer's and the overlay's): each
//! backend reads the kernel and applies changes, and fails in the same three ways.

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
