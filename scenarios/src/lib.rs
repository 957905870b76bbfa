//! hawser-scenarios: the scenario file format, the scenario catalogue and the runner
//! behind `hawser sim`.

pub mod file;

mod detect;
mod expectations;
mod graph;
mod kvtrack;
mod mctrack;
mod membership;
mod metrics;
mod network;
mod overlay;
pub mod pictures;
mod plan;
mod report;
mod runner;
mod stack;
mod target;
mod tracelog;

pub use plan::check;
pub use report::{Outcome, Report};
pub use runner::{Options, run, run_stack};
pub use target::Target;
