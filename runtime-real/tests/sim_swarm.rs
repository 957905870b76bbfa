//! `hawser sim swarm` as a user meets it: a summary line, every failure written as a
//! file that replays, exit codes, and clear refusals of impossible swarms.

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
