//! The one trait every kernel backend implements, and its errors.

use std::fmt;

use super::state::{Change, Programmed};

/// A kernel backend: reads what the kernel holds for the load balancer and applies
/// changes to it. Blocking (netlink sockets, the `nft` program): the reconciler runs it
/// on a thread of its own, never on the async runtime.
pub trait Kernel: Send {
    /// What the kernel holds now, read afresh (never a cached copy: a rule deleted by
    /// hand must show up as missing).
    fn read(&mut self) -> Result<Programmed, KernelError>;

    /// Apply `changes`, which turn `current` (what [`Kernel::read`] just returned) into
    /// the desired state. Returns how many kernel messages it took.
    fn apply(&mut self, current: &Programmed, changes: &[Change]) -> Result<usize, KernelError>;
}

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

/// A backend chosen at run time (`--lb nftables|ipvs`).
impl<K: Kernel + ?Sized> Kernel for Box<K> {
    fn read(&mut self) -> Result<Programmed, KernelError> {
        (**self).read()
    }

    fn apply(&mut self, current: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
        (**self).apply(current, changes)
    }
}
