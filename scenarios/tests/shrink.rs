//! The shrinker on hawser's real stack: a failing run cut down to the steps, nodes and
//! time its failure needs, and the result replays to the same failure.

use hawser_scenarios::shrink::{Failure, outcome, shrink};
use hawser_scenarios::{Options, file, run_stack};

/// `detected within 1ms` cannot hold (a kill takes a connection reset to notice), so
/// this fails on every seed; everything but the start, the kill and that expectation
/// is noise.
const NOISY: &str = r#"
name = "noisy"
nodes = 10
duration = "30s"
contacts = "n0..n2"

[[step]]
at = "0s"
action = "start"

[[step]]
at = "3s"
action = "multicast"
node = "random:1"
topic = "t"
size = 10
count = 20
every = "100ms"

[[step]]
at = "5s"
action = "kv-op"
node = "n1"
key = "k"
op = '{"update":[{"field":"n","type":"counter","op":{"increment":1}}]}'

[[step]]
at = "8s"
action = "kill"
nodes = "n4..n6"

[[step]]
at = "9s"
action = "pause"
nodes = "n1"
duration = "500ms"

[[expect]]
kind = "overlay-connected"
within = "5s"

[[expect]]
kind = "detected"
nodes = "n4..n6"
after = "8s"
within = "1ms"
"#;

fn run(s: &file::Scenario) -> Result<Option<Failure>, String> {
    outcome(|| run_stack(s, Options::default()))
}

#[test]
fn a_real_failing_run_shrinks_to_what_it_needs_and_replays() {
    let shrunk = shrink(NOISY, "noisy.toml", 3, 300, run).expect("it fails");
    let after = file::parse(&shrunk.text, "noisy.toml").expect("the result is a valid file");
    assert_eq!(shrunk.before.steps, 5);
    assert_eq!(after.expects.len(), 1, "{}", shrunk.text);
    assert_eq!(after.expects[0].kind.name(), "detected");
    assert!(after.steps.len() <= 2, "{}", shrunk.text);
    assert!(after.nodes < 10, "{}", shrunk.text);
    assert_eq!(
        shrunk.after.ops, 0,
        "the multicasts and the kv op were noise"
    );
    assert!(!shrunk.budget_spent, "{} runs", shrunk.runs);
    match run(&after) {
        Ok(Some(Failure::Expectation { kind, .. })) => assert_eq!(kind, "detected"),
        other => panic!("the shrunk file does not fail the same way: {other:?}"),
    }
}
