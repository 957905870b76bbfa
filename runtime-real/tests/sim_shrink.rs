//! `hawser sim shrink` as a user meets it: a failing file in, a smaller failing file out
//! that `hawser sim run` replays; a passing run is refused with exit 2.

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
