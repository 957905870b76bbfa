//! The README's "Run agents by hand" block, run as a bash script exactly as written, as a
//! new user pasting it would: it must exit 0 and print what its comments promise.
//!
//! The script runs in a temporary directory where `target/release/hawser` is the binary
//! under test, and `cargo build --release` (its first line) is a no-op: that build is
//! the one that made this binary.

use std::path::Path;
use std::process::Command;

/// The first ```sh block after the heading `## Run agents by hand`.
fn the_block(readme: &str) -> String {
    let section = readme
        .split_once("\n## Run agents by hand\n")
        .expect("README.md has the section \"Run agents by hand\"")
        .1;
    let body = section
        .split_once("```sh\n")
        .expect("the section has a ```sh block")
        .1;
    body.split_once("\n```")
        .expect("the block is closed")
        .0
        .to_owned()
}

#[test]
fn the_run_agents_by_hand_block_runs_as_a_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let block = the_block(&readme);
    // What the block's comments promise, so the test breaks if they change.
    let promised = "erlang_users = {\"number:counter\":5}";
    assert!(block.contains(&format!("--admin 127.0.0.1:7611\n# {promised}\n")));
    assert!(block.contains("# n0, n1 and n2: alive, since, distance"));

    let dir = tempfile::tempdir().expect("a temporary directory");
    let bin = dir.path().join("target/release");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hawser"), bin.join("hawser")).unwrap();
    // No `set -e`: a user's interactive shell has none (and `timeout` ends the watch
    // with 124); a failing command shows as an `error:` on stderr instead.
    let script = format!("cargo() {{ [ \"$*\" = \"build --release\" ]; }}\n{block}\n");
    // Bounded, so agents that ignored SIGTERM fail the test instead of hanging it.
    let out = Command::new("timeout")
        .args(["120", "bash", "-c"])
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .expect("bash runs (the README block is bash)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("error"),
        "the block failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.contains(&promised),
        "kv get prints the value the comment shows:\n{stdout}"
    );
    assert!(
        stdout.matches("\"number:counter\":5").count() >= 3,
        "kv op, kv get and n0's watch (and kv list) show the 5:\n{stdout}"
    );
    for name in ["n0", "n1", "n2"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(name) && l.contains("alive")),
            "members lists {name}, alive:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("hawser_active_view"),
        "the metrics line:\n{stdout}"
    );
    assert!(
        !stdout.contains("INFO") && !stderr.contains("INFO"),
        "agent logs go to their files, not the terminal:\n{stdout}\n{stderr}"
    );
}

/// `hawser wait` gives up, saying why, when nothing serves the API (the success path is
/// the block above, which waits for three agents).
#[test]
fn wait_gives_up_after_its_timeout() {
    // Port 9 (discard) on loopback: nothing listens there on a test machine.
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(["wait", "--admin", "127.0.0.1:9", "--timeout", "1"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not ready after 1s"), "{stderr}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
}
