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
    ("lashup-bootstrap.toml", 1, None, "88837bb6c3882ef1", 4848),
    ("lashup-bootstrap.toml", 2, None, "218639e9a56160d3", 5054),
    ("lashup-partition.toml", 1, None, "388cf3a892c625b6", 11827),
    ("lashup-kv.toml", 1, None, "06f7aa56b6406652", 6762),
    ("asymmetric.toml", 3, None, "f0fc4007634ec94a", 4466),
    ("cookie-break.toml", 2, None, "481820a643e13e37", 10642),
    ("restart-durable.toml", 1, None, "41577af267f39423", 2922),
    ("seed-demo.toml", 1, None, "255efc063e8fc0cb", 975),
    // The membership-only stack, scaled down so a debug build runs it in a second.
    ("join-1000.toml", 1, Some(20), "df90d9d4b94299a8", 9156),
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
