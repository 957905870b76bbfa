//! A user's own protocol under scenario files, the swarm and the shrinker: the heartbeat
//! example (`sim/examples/heartbeat/protocol.rs`) with its target (`target.rs`), its own
//! invariant (`restarts.rs`) and a scenario file (`heartbeat.toml`). A planted bug — a
//! restart that does not bump the incarnation — is found by the swarm within a few
//! runs and shrunk to a handful of steps.

#[path = "../../../sim/examples/heartbeat/protocol.rs"]
#[allow(dead_code)] // the example's accessors are for its own main and tests
mod protocol;

mod restarts;
mod target;

use std::path::Path;

use hawser_core::Duration;
use hawser_scenarios::shrink::Failure;
use hawser_scenarios::swarm::Swarm;
use hawser_scenarios::{Invariants, Options, Report, Violation, file, invariant, run_with};
use protocol::{Heartbeat, HeartbeatEvent};
use restarts::RestartsAnnounced;

/// The heartbeat's invariants: its own, and a closure for a second.
fn invariants() -> Invariants<Heartbeat> {
    Invariants::new()
        .with(RestartsAnnounced::default())
        .with(invariant::on_event(
            "never-hears-itself",
            |_, node, event: &HeartbeatEvent| match event {
                HeartbeatEvent::Alive { peer, .. } if peer.0 as usize == node => {
                    Err(Violation::new(format!("n{node} reported itself alive")))
                }
                _ => Ok(()),
            },
        ))
}

fn scenario(config: &str) -> file::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/heartbeat/heartbeat.toml");
    let text = std::fs::read_to_string(&path).expect("the scenario file is there");
    let text = text.replace("[config]\n", &format!("[config]\n{config}"));
    file::parse(&text, "heartbeat.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn outcome<'a>(report: &'a Report, kind: &str) -> &'a hawser_scenarios::Outcome {
    let found = report.expectations.iter().find(|e| e.kind == kind);
    found.unwrap_or_else(|| panic!("no {kind} in\n{}", report.human()))
}

/// Scenario runs of 3 to 8 nodes, a minute each (a heartbeat settles in seconds).
fn swarm(config: &str) -> Swarm {
    Swarm::default()
        .nodes(3, 8)
        .duration(Duration::from_secs(60))
        .config(config.parse().expect("a TOML table"))
}

#[test]
fn the_scenario_file_passes_with_the_protocols_own_invariants() {
    let report = run_with(&scenario(""), Options::default(), &invariants()).unwrap();
    assert!(report.passed, "{}", report.human());
    assert_eq!(report.expectations.len(), 6 + 2, "{}", report.human());
    let own = outcome(&report, "restarts-announced");
    assert_eq!((own.passed, own.line), (true, 0));
    assert!(report.human().contains("restarts-announced   invariant at"));
    assert!(
        report.metrics["evictions"] > 0.0,
        "the partition silenced peers"
    );
}

#[test]
fn the_invariant_catches_the_planted_bug_in_the_scenario_file() {
    let buggy = scenario("planted_bug = \"incarnation-not-bumped\"\n");
    let report = run_with(&buggy, Options::default(), &invariants()).unwrap();
    let own = outcome(&report, "restarts-announced");
    assert!(!own.passed, "{}", report.human());
    assert_eq!(own.at_ms, Some(32_000), "at n2's restart: {}", own.detail);
    assert!(
        own.detail.contains("n2 restarted as incarnation 1"),
        "{}",
        own.detail
    );
    assert!(!report.passed);
    // The file's generic expectations cannot see it: only the invariant does.
    let generic = report.expectations.iter().filter(|e| e.line > 0);
    assert!(generic.clone().all(|e| e.passed), "{}", report.human());
}

#[test]
fn badly_named_invariants_and_bad_settings_are_refused() {
    let clash = Invariants::<Heartbeat>::new().with(invariant::at_end("detected", |_| Ok(())));
    let err = run_with(&scenario(""), Options::default(), &clash).unwrap_err();
    assert!(
        err.to_string().contains("is an expectation kind's"),
        "{err}"
    );
    let twice = invariants().with(RestartsAnnounced::default());
    let err = run_with(&scenario(""), Options::default(), &twice).unwrap_err();
    assert!(
        err.to_string()
            .contains("two invariants are named \"restarts-announced\"")
    );
    let bad = scenario("planted_bug = \"typo\"\n");
    let err = run_with(&bad, Options::default(), &invariants()).unwrap_err();
    assert!(
        err.to_string().contains("no bug is called \"typo\""),
        "{err}"
    );
}

#[test]
fn the_swarm_draws_only_what_the_heartbeat_supports_and_finds_nothing() {
    let swarm = swarm("");
    for seed in 0..50 {
        let text = swarm.draw_for::<Heartbeat>(seed).unwrap().text;
        assert!(
            !text.contains("kv-op") && !text.contains("multicast"),
            "{text}"
        );
        assert!(!text.contains("kv-converged") && !text.contains("membership-agrees"));
        assert!(text.contains("overlay-connected"), "{text}");
    }
    let done = swarm.run::<Heartbeat>(1..101, &invariants()).unwrap();
    assert_eq!(done.runs, 100);
    let failures: Vec<String> = done
        .failures
        .iter()
        .map(|f| format!("{}: {}\n{}", f.drawn.seed, f.failure, f.drawn.text))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_swarm_finds_the_planted_bug_and_shrinks_it_to_a_handful_of_steps() {
    let invariants = invariants();
    let swarm = swarm("planted_bug = \"incarnation-not-bumped\"");
    let done = swarm.find::<Heartbeat>(1..21, &invariants).unwrap();
    let found = done.failures.first().expect("found within 20 runs");
    assert!(done.runs <= 5, "found only after {} runs", done.runs);
    let Failure::Expectation { kind, .. } = &found.failure else {
        panic!("{}", found.failure)
    };
    assert_eq!(kind, "restarts-announced");

    let shrunk = found.shrink::<Heartbeat>(300, &invariants).unwrap();
    assert!(!shrunk.budget_spent, "{} runs", shrunk.runs);
    assert!(shrunk.after.steps <= 3, "{}\n{}", shrunk.after, shrunk.text);
    assert!(shrunk.after.nodes <= 3, "{}\n{}", shrunk.after, shrunk.text);
    assert!(
        shrunk.text.contains("incarnation-not-bumped"),
        "the switch is kept"
    );
    // The shrunk file replays the same failure.
    let replay = file::parse(&shrunk.text, "min.toml").unwrap();
    let report = run_with(&replay, Options::default(), &invariants).unwrap();
    assert!(
        !outcome(&report, "restarts-announced").passed,
        "{}",
        report.human()
    );
    eprintln!(
        "planted bug: found in {} runs (seed {}), shrunk from {} to {} in {} runs:\n{}",
        done.runs, found.drawn.seed, shrunk.before, shrunk.after, shrunk.runs, shrunk.text
    );
}
