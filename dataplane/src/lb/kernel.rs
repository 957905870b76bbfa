//! The one trait every load-balancer kernel backend implements (its errors are shared
//! with the overlay's backends: [`crate::kernel`]).

pub use crate::kernel::KernelError;

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

/// A backend chosen at run time (`--lb nftables|ipvs`).
impl<K: Kernel + ?Sized> Kernel for Box<K> {
    fn read(&mut self) -> Result<Programmed, KernelError> {
        (**self).read()
    }

    fn apply(&mut self, current: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
        (**self).apply(current, changes)
    }
}
