//! Pinned trace hashes: a few catalogue scenarios, at fixed seeds, must do exactly what
//! they did when their pin was written, event for event.
//!
//! The trace hash covers every event the simulator delivered, so a change that alters
//! what a run does — in the protocols, the simulator or the runner — changes it, and so
//! does one that makes a run depend on the machine, the toolchain or a hash seed (the
//! hashes are the same on every machine and every build). Such a change fails here.
//!
//! Changing a pin is a deliberate commit that says why the behaviour changed (e.g.
//! "gm: pings every 300 ms: new pins"); a pure refactoring or speed-up must leave every
//! pin as it is.

use std::path::Path;

/// (file under `scenarios/`, seed, `--nodes` override, trace hash, events).
const PINS: &[(&str, u64, Option<usize>, &str, u64)] = &[
    ("lashup-bootstrap.toml", 1, None, "2972482adf4db6bf", 6588),
    ("lashup-bootstrap.toml", 2, None, "76e8e53e5c31c233", 6781),
    ("lashup-partition.toml", 1, None, "f1b1ee57bf3c3599", 16143),
    ("lashup-kv.toml", 1, None, "d222c25c6a5b5d58", 7787),
    ("asymmetric.toml", 3, None, "561b812b9a88cd01", 6565),
    ("cookie-break.toml", 2, None, "34fec7452df185fe", 14634),
    ("restart-durable.toml", 1, None, "e74a490f7c48fd9d", 3508),
    ("seed-demo.toml", 1, None, "7c6b9eee530181b3", 942),
    // The membership-only stack, scaled down so a debug build runs it in a second.
    ("join-1000.toml", 1, Some(20), "be54f8a55418cbb0", 15871),
];

#[test]
fn catalogue_runs_keep_their_trace_hashes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut changed = Vec::new();
    for &(file, seed, nodes, hash, events) in PINS {
        let path = dir.join(file);
        let scenario = hawser_scenarios::file::load(&path)
            .and_then(|s| s.with_overrides(Some(seed), nodes))
            .unwrap_or_else(|e| panic!("{e}"));
        let report = hawser_scenarios::run_stack(&scenario, Default::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        if (report.trace_hash.as_str(), report.events) != (hash, events) {
            let nodes = nodes.map(|n| format!(" --nodes {n}")).unwrap_or_default();
            changed.push(format!(
                "  {file} seed {seed}{nodes}: trace hash {hash} with {events} events pinned, \
                 now {} with {} (replay: hawser sim run scenarios/{file} --seed {seed}{nodes} \
                 --trace FILE)",
                report.trace_hash, report.events
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "these runs no longer do what they did when pinned:\n{}\n\
         The change made the simulated behaviour differ (or depend on the machine, the \
         toolchain or a hash seed). If it was meant to change behaviour, update the pins \
         in scenarios/tests/pinned_hashes.rs in a commit that says why; if not, it is a bug.",
        changed.join("\n")
    );
}
