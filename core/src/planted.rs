//! Deliberately broken variants of the stack, to prove that the swarm finds real bugs
//! and the shrinker cuts them down (`scenarios/tests/planted.rs`).
//!
//! Each [`Bug`] is a one- or two-line divergence at the spot where the real mistake
//! would be made, guarded by `planted::on(Bug::...)`. Without the `planted-bugs` cargo
//! feature (every normal build, and the agent) [`on`] is a constant `false` that the
//! compiler folds away: no cost, no behaviour change. With it (only `hawser-scenarios`'
//! tests enable it) a bug is on only on a thread that called [`set`], so tests running
//! side by side each break the stack their own way, and nothing else ever does.

/// A planted bug: what it breaks (the test says which property the swarm sees fail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// The KV reads nothing back from its disk at start: an acknowledged write lives on
    /// only in memory, and a whole-cluster power loss loses it.
    KvForgetsDisk,
    /// KV anti-entropy fills in keys a node lacks but never merges one it holds, so a
    /// key that took writes on both sides of a cut stays different after the heal.
    AeFillsOnlyMissing,
    /// A hasty failure detector: the ping timeout is the link's mean round trip (no
    /// margin for its deviation, no floor), and a ping that outlasts it evicts the
    /// neighbour at once (no second ping, no helpers asked to probe it).
    HastyDetector,
}

#[cfg(feature = "planted-bugs")]
mod switch {
    use super::Bug;
    use std::cell::Cell;

    thread_local! {
        static ACTIVE: Cell<Option<Bug>> = const { Cell::new(None) };
    }

    /// Turn `bug` on (or every bug off) for the runs this thread makes from now on.
    pub fn set(bug: Option<Bug>) {
        ACTIVE.with(|a| a.set(bug));
    }

    /// Is `bug` on for this thread?
    pub fn on(bug: Bug) -> bool {
        ACTIVE.with(|a| a.get() == Some(bug))
    }
}

#[cfg(feature = "planted-bugs")]
pub use switch::{on, set};

/// Is `bug` on? Never, without the `planted-bugs` feature.
#[cfg(not(feature = "planted-bugs"))]
#[inline(always)]
pub const fn on(_bug: Bug) -> bool {
    false
}
