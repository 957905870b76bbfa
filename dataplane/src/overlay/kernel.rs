//! The trait the overlay's kernel backend implements: the load balancer's shape
//! ([`crate::lb::Kernel`]) over the overlay's state model, so the reconciler can be
//! tested over a kernel in memory.

pub use crate::kernel::KernelError;

use super::state::{Change, Programmed};

/// Reads what a kernel holds for the overlay and applies changes to it. Blocking
/// (netlink sockets): run on a thread of its own, never on the async runtime.
pub trait Kernel: Send {
    /// hawser's VXLAN devices and what it keeps on them, read afresh each time: an
    /// entry deleted by hand must read as missing so the next pass puts it back.
    fn read(&mut self) -> Result<Programmed, KernelError>;

    /// Apply `changes`, computed from `current` (what [`Kernel::read`] just returned),
    /// in order. Returns how many kernel messages they took.
    fn apply(&mut self, current: &Programmed, changes: &[Change]) -> Result<usize, KernelError>;
}
