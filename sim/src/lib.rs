//! hawser-sim: a seeded discrete-event simulator for hawser nodes.
//!
//! One RNG (seeded from the run's seed) draws every latency; every node's RNG is derived
//! from the same seed; a `(time, sequence)` queue orders events; no wall clock is read.
//! So a run is a pure function of `(scenario, seed)`, and its **trace hash** — a BLAKE3
//! hash over every delivered frame, connection event, timer wake, fsync, start, kill,
//! freeze and pause — proves it. [`Sim::set_trace_log`] writes the same events (and the
//! faults and commands behind them) as JSON lines for a human; [`tracefile`] reads
//! such a log back.
//!
//! The network models what protocols meet in production: connections behave like TCP
//! (ordered, reliable while the path is up, latency drawn per frame); a partition
//! blackholes frames until the connection breaks at the sender after `link_timeout`; a
//! killed process's peers see resets; a frozen host is silent; a paused node processes
//! its backlog late; a simulated disk loses what was not synced, and can be slow, fail a
//! sync, or be torn by a crash in the middle of one (caught by a checksum at restart).

mod clock;
mod disk;
mod latency;
mod queue;
mod slab;
mod topology;
mod trace;
pub mod tracefile;
mod world;

pub use clock::MAX_DRIFT_PPM;
pub use disk::DiskFault;
pub use latency::LatencyTail;
pub use trace::TraceField;
pub use world::{DescribeEvent, Sim, SimConfig, SimStats, Status, Step, TraceNote};
