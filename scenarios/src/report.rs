//! What a run reports: the JSON summary (a public contract, like the file format) and its
//! human rendering.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// One expectation's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// The expectation kind, or a custom invariant's name.
    pub kind: String,
    /// The line of its `[[expect]]`; 0 for a custom invariant (see [`crate::Invariant`]).
    pub line: usize,
    pub passed: bool,
    /// When it first held (or, on failure, when it was judged failed), in virtual ms.
    pub at_ms: Option<u64>,
    pub detail: String,
    /// It failed because it never had anything to check (no node in its scope, no
    /// event due): a different failure from one that checked and found a fault.
    /// Absent from reports written before it existed.
    #[serde(default)]
    pub vacuous: bool,
}

/// The result of one scenario run (read back by `hawser sim sweep --out`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub nodes: usize,
    pub virtual_ms: u64,
    pub wall_ms: u64,
    pub events: u64,
    pub trace_hash: String,
    pub passed: bool,
    pub expectations: Vec<Outcome>,
    pub metrics: BTreeMap<String, f64>,
    /// What went wrong with steps (a refused kv-op, a multicast from a node that was
    /// down), with their virtual time: often the cause of a failed expectation, so a
    /// sweep prints them beside it. Absent from reports written before it existed.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The steps as they were applied (human output only).
    #[serde(skip, default)]
    pub timeline: Vec<String>,
}

impl Report {
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} — seed {}, {} nodes, {:.1} s virtual in {:.2} s wall ({} events)",
            self.scenario,
            self.seed,
            self.nodes,
            self.virtual_ms as f64 / 1000.0,
            self.wall_ms as f64 / 1000.0,
            self.events
        );
        let _ = writeln!(out, "\ntimeline:");
        for line in &self.timeline {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "\nexpectations:");
        for e in &self.expectations {
            let when = e
                .at_ms
                .map_or("-".to_string(), |ms| format!("{:.3}s", ms as f64 / 1000.0));
            let verdict = if e.passed { "passed" } else { "FAILED" };
            let line = match e.line {
                0 => "invariant".to_string(),
                n => format!("line {n:<4}"),
            };
            let _ = writeln!(
                out,
                "  {verdict:<7} {:<20} {line:<9} at {when:<9} {}",
                e.kind, e.detail
            );
        }
        let _ = writeln!(out, "\nmetrics:");
        for (k, v) in &self.metrics {
            let _ = writeln!(out, "  {k:<28} {v}");
        }
        let _ = writeln!(out, "\ntrace hash {}", self.trace_hash);
        let _ = writeln!(out, "{}", if self.passed { "PASSED" } else { "FAILED" });
        out
    }
}
