//! hawser-scenarios: the scenario file format, the scenario catalogue and the runner
//! behind `hawser sim`.

pub mod file;

mod detect;
mod expectations;
mod graph;
pub mod invariant;
mod kvtrack;
mod mctrack;
mod membership;
mod metrics;
mod network;
mod overlay;
mod owed;
pub mod pictures;
mod plan;
mod report;
mod runner;
pub mod shrink;
mod stack;
pub mod swarm;
mod target;
mod tracelog;
mod viewcache;

pub use invariant::{Invariant, Invariants, Verdict, Violation};
pub use plan::check;
pub use report::{Outcome, Report};
pub use runner::{Options, RunError, run, run_stack, run_with};
pub use target::{Target, TargetError};
