//! `hawser sim` as a user meets it: exit codes, the JSON summary, the replay line.

use std::path::Path;
use std::process::Command;

fn hawser(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("the binary runs")
}

#[test]
fn run_json_is_one_object_with_the_documented_fields() {
    let out = hawser(&[
        "sim",
        "run",
        "scenarios/lashup-bootstrap.toml",
        "--json",
        "--seed",
        "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
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
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["seed"], 5);
    assert_eq!(v["passed"], true);
    let again = hawser(&[
        "sim",
        "run",
        "scenarios/lashup-bootstrap.toml",
        "--json",
        "--seed",
        "5",
    ]);
    let w: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["trace_hash"], w["trace_hash"], "same seed, same trace");
}

#[test]
fn a_failing_run_exits_1_and_prints_the_replay_command() {
    let dir = std::env::temp_dir().join(format!("hawser-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/too-soon.toml");
    let trace = dir.join("trace.jsonl");
    let out = hawser(&[
        "sim",
        "run",
        file.to_str().unwrap(),
        "--seed",
        "9",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "replay: hawser sim run {} --seed 9",
            file.display()
        )),
        "{stderr}"
    );
    let lines = std::fs::read_to_string(&trace).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("a trace")).unwrap();
    assert!(first.get("t_ns").is_some() && first.get("node").is_some());
}

#[test]
fn a_broken_file_exits_2_naming_the_line() {
    let dir = std::env::temp_dir().join(format!("hawser-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "name = \"bad\"\nnodes = 3\nduration = \"1s\"\n[[step]]\nat = \"0s\"\naction = \"restrat\"\n").unwrap();
    let out = hawser(&["sim", "run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:6") && stderr.contains("restart"),
        "{stderr}"
    );
}

#[test]
fn sweep_reports_every_seed_and_the_figures() {
    let out = hawser(&[
        "sim",
        "sweep",
        "scenarios/lashup-bootstrap.toml",
        "--seeds",
        "1..4",
        "--jobs",
        "2",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("lashup-bootstrap: 4 of 4 seeds passed\n"),
        "the summary starts a line of its own: {stdout}"
    );
    assert!(stdout.contains("overlay_connected_ms"), "{stdout}");
    // Piped, the progress is one line per seed here (4 seeds), each whole.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<&str> = stderr.lines().collect();
    assert_eq!(progress.len(), 4, "{stderr}");
    assert!(
        progress[3].starts_with("lashup-bootstrap: 4/4 seeds, 0 failed ["),
        "{stderr}"
    );
}

#[test]
fn sweep_takes_a_seed_count_and_a_dashed_range() {
    for seeds in ["2", "1-2"] {
        let out = hawser(&[
            "sim",
            "sweep",
            "scenarios/lashup-bootstrap.toml",
            "--seeds",
            seeds,
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("2 of 2 seeds passed"),
            "--seeds {seeds}: {stdout}"
        );
    }
}

#[test]
fn a_failed_seed_in_a_sweep_keeps_its_cause() {
    let dir = std::env::temp_dir().join(format!("hawser-sweep-cause-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("refused.toml");
    // An op on a node that never started: the failed expectation says what, the note why.
    std::fs::write(
        &file,
        "name = \"refused\"\nnodes = 3\nduration = \"5s\"\n\
         [[step]]\nat = \"0s\"\naction = \"start\"\nnodes = \"n0..n1\"\n\
         [[step]]\nat = \"1s\"\naction = \"kv-op\"\nnode = \"n2\"\nkey = \"k\"\n\
         op = '{\"update\":[{\"field\":\"f\",\"type\":\"flag\",\"op\":\"enable\"}]}'\n\
         [[expect]]\nkind = \"kv-converged\"\nkey = \"k\"\n\
         value = '{\"f\":true}'\nafter = \"2s\"\nwithin = \"2s\"\n",
    )
    .unwrap();
    let out = hawser(&["sim", "sweep", file.to_str().unwrap(), "--seeds", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("seed 1: kv-converged (line 14)")
            && stdout.contains("note at 1.000s  kv-op on n2 not applied: the node is not up"),
        "{stdout}"
    );
}

#[test]
fn a_sweep_with_out_keeps_each_report_and_reads_kept_ones_back() {
    let dir = std::env::temp_dir().join(format!("hawser-sweep-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out_dir = dir.to_str().expect("utf-8 temp dir");
    let sweep = || {
        hawser(&[
            "sim",
            "sweep",
            "scenarios/lashup-bootstrap.toml",
            "--seeds",
            "1..2",
            "--jobs",
            "1",
            "--out",
            out_dir,
        ])
    };
    let first = sweep();
    assert!(first.status.success());
    let kept = dir.join("lashup-bootstrap.2.json");
    let text = std::fs::read_to_string(&kept).expect("seed 2's report was kept");
    // Mark the kept report failed: a second sweep must read it back, not run seed 2 again.
    let mut report: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    report["passed"] = false.into();
    std::fs::write(&kept, report.to_string()).expect("writable");
    let second = sweep();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("1 of 2 seeds passed"), "{stdout}");
    assert_eq!(second.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lines of `text`, parsed.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn sim_trace_filters_a_trace_file_by_node_kind_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let run = hawser(&[
        "sim",
        "run",
        "scenarios/lashup-partition.toml",
        "--seed",
        "42",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let all = json_lines(&std::fs::read_to_string(&trace).unwrap());
    // n3's ping traffic between 25 s and 30 s (both included), as the filter should pick it.
    let (from, to) = (25_000_000_000u64, 30_000_000_000u64);
    let expected: Vec<&serde_json::Value> = all
        .iter()
        .filter(|l| {
            let t = l["t_ns"].as_u64().unwrap();
            let about_n3 = ["node", "peer", "from", "to"].iter().any(|k| l[*k] == "n3");
            let kind = l["kind"].as_str().or(l["event"].as_str()).unwrap();
            (from..=to).contains(&t) && about_n3 && kind.starts_with("membership.p")
        })
        .collect();
    assert!(expected.len() > 10, "{} lines", expected.len());
    let out = hawser(&[
        "sim",
        "trace",
        trace.to_str().unwrap(),
        "--node",
        "n3",
        "--kind",
        "membership.p*",
        "--from",
        "25s",
        "--to",
        "30s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(kept.iter().collect::<Vec<_>>(), expected);
    // Pings and pongs both ways, and probes if any: every kind kept matches the pattern.
    assert!(
        kept.iter()
            .any(|l| l["kind"] == "membership.ping" && l["from"] == "n3")
    );
    assert!(
        kept.iter()
            .any(|l| l["kind"] == "membership.pong" && l["to"] == "n3")
    );

    // The partition at 20 s is about the whole network: kept under --node.
    let out = hawser(&[
        "sim",
        "trace",
        trace.to_str().unwrap(),
        "--node",
        "0000000000000007",
        "--event",
        "partition",
    ]);
    let kept = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["t_ns"], 20_000_000_000u64);
}

#[test]
fn sim_trace_names_the_bad_line_of_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.jsonl");
    std::fs::write(
        &file,
        "{\"t_ns\":1,\"event\":\"start\",\"node\":\"n0\"}\n{\"t_ns\":2,\"ev\n",
    )
    .unwrap();
    let out = hawser(&["sim", "trace", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.jsonl: line 2: not a trace line"),
        "{stderr}"
    );
    let missing = dir.path().join("missing.jsonl");
    let out = hawser(&["sim", "trace", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
