//! The runner end to end, with the heartbeat example protocol as the target: scenario
//! text in, report out — determinism, expectations passing and failing, cookie breaks,
//! and refusals of what this build cannot run.

#[path = "../../sim/examples/heartbeat/protocol.rs"]
#[allow(dead_code)] // the example's accessors are for its own main and tests
mod protocol;
#[path = "heartbeat/target.rs"]
mod target;

use hawser_scenarios::Report;
use hawser_scenarios::file;
use protocol::Heartbeat;

const PARTITION: &str = r#"
name = "star-partition"
nodes = 12
duration = "40s"
seed = 3
contacts = "n0..n1"

[[step]]
at = "0s"
action = "start"
stagger = "10ms"

[[step]]
at = "10s"
action = "partition"
groups = [["n0", "n2", "n3"], ["n1", "n4", "n5"]]

[[step]]
at = "20s"
action = "heal"

[[expect]]
kind = "overlay-connected"
within = "5s"
until = "10s"

[[expect]]
kind = "overlay-connected"
after = "20s"
within = "10s"
"#;

fn run(text: &str, seed: Option<u64>) -> Report {
    let scenario = file::parse(text, "inline.toml")
        .unwrap()
        .with_overrides(seed, None)
        .unwrap();
    hawser_scenarios::run::<Heartbeat>(&scenario, Default::default()).unwrap()
}

#[test]
fn a_scenario_runs_and_its_expectations_pass() {
    let r = run(PARTITION, None);
    assert!(r.passed, "{}", r.human());
    assert_eq!((r.nodes, r.seed, r.virtual_ms), (12, 3, 40_000));
    assert!(
        r.metrics["evictions"] > 0.0,
        "the partition cut links: {:?}",
        r.metrics
    );
    assert!(r.metrics.contains_key("overlay_connected_ms"));
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "scenario",
        "seed",
        "nodes",
        "virtual_ms",
        "wall_ms",
        "events",
        "trace_hash",
        "passed",
        "expectations",
        "metrics",
    ] {
        assert!(json.get(key).is_some(), "JSON report has {key}");
    }
}

#[test]
fn same_seed_same_trace_hash_another_seed_another() {
    let (a, b, c) = (
        run(PARTITION, Some(11)),
        run(PARTITION, Some(11)),
        run(PARTITION, Some(12)),
    );
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn break_cookie_isolates_and_mend_cookie_lets_back() {
    let text = r#"
name = "cookie"
nodes = 6
duration = "40s"
contacts = "n0"

[[step]]
at = "0s"
action = "start"

[[step]]
at = "5s"
action = "break-cookie"
nodes = "n3"

[[step]]
at = "20s"
action = "mend-cookie"
nodes = "n3"

[[expect]]
kind = "overlay-connected"
after = "12s"
within = "5s"
until = "19s"

[[expect]]
kind = "overlay-connected"
after = "20s"
within = "10s"
"#;
    let r = run(text, None);
    assert!(
        !r.expectations[0].passed,
        "n3 with a broken cookie is cut off: {}",
        r.human()
    );
    assert!(
        r.expectations[1].passed,
        "after the mend it is back: {}",
        r.human()
    );
    assert!(
        r.metrics["auth_failures"] > 0.0,
        "the refusals were counted"
    );
}

#[test]
fn what_this_build_cannot_run_is_refused_up_front() {
    let text = r#"
name = "kv"
nodes = 3
duration = "5s"

[[step]]
at = "1s"
action = "kv-op"
node = "n0"
key = "k"
op = '{"update":[{"field":"f","type":"flag","op":"enable"}]}'

[[expect]]
kind = "kv-converged"
"#;
    let scenario = file::parse(text, "kv.toml").unwrap();
    let err = hawser_scenarios::run::<Heartbeat>(&scenario, Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"kv-op\" is not supported yet"), "{err}");
    assert!(
        err.contains("\"kv-converged\" is not supported yet"),
        "{err}"
    );
}
