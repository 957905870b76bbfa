//! The shrinker on hawser's real stack: a failing run cut down to the steps, nodes and
//! time its failure needs, and the result replays to the same failure.

use hawser_scenarios::shrink::{Failure, outcome, shrink};
use hawser_scenarios::{Options, file, run_stack};

const NOISY: &str = include_str!("fixtures/noisy-detect.toml");

fn run(s: &file::Scenario) -> Result<Option<Failure>, String> {
    outcome(|| run_stack(s, Options::default())).map_err(String::from)
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
