//! hawser-scenarios: the scenario file format, the scenario catalogue and the runner
//! behind `hawser sim`.

pub mod file;
