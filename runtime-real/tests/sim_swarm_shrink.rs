//! `hawser sim swarm` and `hawser sim shrink` as a user meets them: a summary line,
//! every failure written as a file that replays, a failing file cut down to a smaller
//! one that fails the same way, exit codes, and clear refusals.

use std::path::Path;
use std::process::{Command, Output};

fn hawser(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_short_swarm_reports_every_run_and_writes_each_failure_as_a_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let out = hawser(&[
        "sim",
        "swarm",
        "--runs",
        "4",
        "--nodes",
        "5..7",
        "--duration",
        "40s",
        "--seed",
        "11",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    let summary = stdout.lines().next().unwrap_or_default();
    assert!(
        summary.starts_with("swarm: 4 runs (seeds from 11), "),
        "{stdout}{}",
        text(&out.stderr)
    );
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("seed ")).collect();
    assert!(
        summary.contains(&format!("{} failed", failures.len())),
        "{stdout}"
    );
    assert_eq!(out.status.success(), failures.is_empty(), "{stdout}");
    for line in failures {
        let seed: u64 = line["seed ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let file = dir.path().join(format!("swarm-{seed}.toml"));
        let replay = hawser(&["sim", "run", file.to_str().unwrap()]);
        assert_eq!(replay.status.code(), Some(1), "seed {seed} must fail again");
    }
    // Every run drew its file from its seed: a passing run writes nothing.
    let written = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(written <= 2 * 4, "{written} files");
}

#[test]
fn impossible_swarms_are_refused_with_the_reason() {
    let few = hawser(&["sim", "swarm", "--nodes", "3", "--runs", "1"]);
    assert_eq!(few.status.code(), Some(2));
    assert!(
        text(&few.stderr).contains("3 nodes is too few"),
        "{}",
        text(&few.stderr)
    );
    let short = hawser(&["sim", "swarm", "--duration", "5s", "--runs", "1"]);
    assert_eq!(short.status.code(), Some(2));
    assert!(
        text(&short.stderr).contains("at least 30s"),
        "{}",
        text(&short.stderr)
    );
    let both = hawser(&["sim", "swarm", "--runs", "1", "--time", "1m"]);
    assert_eq!(
        both.status.code(),
        Some(2),
        "--runs and --time exclude each other"
    );
}

#[test]
fn a_failing_run_shrinks_to_a_file_that_replays_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let min = dir.path().join("min.toml");
    let out = hawser(&[
        "sim",
        "shrink",
        "scenarios/tests/fixtures/noisy-detect.toml",
        "--seed",
        "3",
        "--out",
        min.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("before: 10 nodes, 5 steps, 2 expectations, 21 ops, 30s"),
        "{stdout}"
    );
    let after = stdout
        .lines()
        .find_map(|l| l.strip_prefix("after:  "))
        .expect("an after line");
    assert!(after.contains("1 expectation, 0 ops"), "{after}");
    assert!(stdout.contains("fails:  detected failed"), "{stdout}");

    let written = std::fs::read_to_string(&min).expect("the minimal file is written");
    assert!(
        written.starts_with("# Shrunk by `hawser sim shrink"),
        "{written}"
    );
    assert!(written.contains("seed = 3"), "{written}");
    let replay = hawser(&["sim", "run", min.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(1), "{}", text(&replay.stdout));
    assert!(
        text(&replay.stdout).contains("FAILED  detected"),
        "{}",
        text(&replay.stdout)
    );
}

#[test]
fn a_passing_run_has_nothing_to_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let out = hawser(&[
        "sim",
        "shrink",
        "scenarios/lashup-bootstrap.toml",
        "--seed",
        "5",
        "--out",
        dir.path().join("x.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the run passes: there is no failure to shrink"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("x.toml").exists());
}
