//! The cluster as an operator sees it, through the `hawser` CLI against real agents:
//! member status (alive, failed, left) and reaping, `leave`, `force-leave`, `info`,
//! `event`, `version` and `completion`.

mod common;

use std::process::Output;

use common::{Agent, hawser, wait_for};
use serde_json::Value;

/// Run `hawser ARGS` and return its output.
fn cli(args: &[&str]) -> Output {
    hawser().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `hawser members --json` on `admin`: each member's name and status, in the order
/// given.
fn statuses(admin: &str, filter: Option<&str>) -> Vec<(String, String)> {
    let mut args = vec!["members", "--json", "--admin", admin];
    if let Some(f) = filter {
        args.extend(["--status", f]);
    }
    let out = cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m["since_secs"].is_u64(), "{m}");
            (
                m["name"].as_str().unwrap().to_owned(),
                m["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn status_of(admin: &str, name: &str) -> Option<String> {
    statuses(admin, None)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// n0, and n1 joined to it and seen alive by n0.
fn two_agents(dir: &std::path::Path) -> (Agent, Agent) {
    let mut a = Agent::new(dir, "n0");
    a.start();
    let mut b = Agent::new(dir, "n1");
    b.join = vec![a.listen.clone()];
    b.start();
    wait_for("n1 to be alive on n0", 30, || {
        (status_of(&a.admin, "n1").as_deref() == Some("alive")).then_some(())
    });
    (a, b)
}

#[test]
fn members_show_alive_failed_and_left_and_are_reaped() {
    let dir = tempfile::tempdir().unwrap();
    // Started in an order that is not the names' order: the table sorts them.
    let mut agents: Vec<Agent> = ["nb", "nd", "na", "nc"]
        .iter()
        .map(|n| Agent::new(dir.path(), n))
        .collect();
    let contact = vec![agents[0].listen.clone()];
    for a in &mut agents {
        a.join = contact.clone();
        a.extra.extend(["--reap-after".into(), "20s".into()]);
        a.start();
    }
    let (nb, nd, na, nc) = (0, 1, 2, 3);
    let admin = agents[nb].admin.clone();
    wait_for("all four alive on nb", 30, || {
        (statuses(&admin, None)
            == pairs(&[
                ("na", "alive"),
                ("nb", "alive"),
                ("nc", "alive"),
                ("nd", "alive"),
            ]))
        .then_some(())
    });
    let table = stdout(&cli(&["members", "--admin", &admin]));
    assert!(
        table.contains("failed and left reaped after 20s") && table.contains("STATUS  SINCE"),
        "{table}"
    );

    // A member that is alive cannot be forced out.
    let refused = cli(&["force-leave", "na", "--admin", &admin]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("409") && stderr(&refused).contains("reachable"),
        "{}",
        stderr(&refused)
    );

    // kill -9: failed. `hawser leave`: left, and the agent exits 0. SIGTERM: left.
    agents[nc].kill9();
    wait_for("nc to be failed on nb", 30, || {
        (status_of(&admin, "nc").as_deref() == Some("failed")).then_some(())
    });
    let left = cli(&["leave", "--admin", &agents[nd].admin]);
    assert!(left.status.success(), "{}", stderr(&left));
    assert!(
        stdout(&left).contains("nd left the cluster"),
        "{}",
        stdout(&left)
    );
    wait_for("nd's agent to exit after `hawser leave`", 10, || {
        agents[nd].exited()
    })
    .success()
    .then_some(())
    .expect("nd exits 0 after leaving");
    assert!(agents[na].terminate().success());
    wait_for("na and nd to be left on nb", 15, || {
        (statuses(&admin, None)
            == pairs(&[
                ("na", "left"),
                ("nb", "alive"),
                ("nc", "failed"),
                ("nd", "left"),
            ]))
        .then_some(())
    });
    assert_eq!(statuses(&admin, Some("failed")), pairs(&[("nc", "failed")]));
    assert_eq!(
        statuses(&admin, Some("left,alive")),
        pairs(&[("na", "left"), ("nb", "alive"), ("nd", "left")])
    );
    let bad = cli(&["members", "--status", "gone", "--admin", &admin]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown status"), "{}", stderr(&bad));

    // force-leave turns the failed member into a left one.
    let forced = cli(&["force-leave", "nc", "--admin", &admin]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(status_of(&admin, "nc").as_deref(), Some("left"));

    // Reaped once unreachable for --reap-after.
    wait_for("the left members to be reaped", 40, || {
        (statuses(&admin, None) == pairs(&[("nb", "alive")])).then_some(())
    });
}

#[test]
fn info_event_version_and_completion() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_agents(dir.path());

    let info = cli(&["info", "--admin", &a.admin]);
    assert!(info.status.success(), "{}", stderr(&info));
    let text = stdout(&info);
    for line in [
        "name: n0\n",
        &format!("id: {}\n", a.id()),
        &format!("version: {}\n", env!("CARGO_PKG_VERSION")),
        "members_by_status.alive: 2\n",
        "reap_after_secs: 86400\n",
        "status: alive\n",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }

    let sent = cli(&["event", "deploy", "v42", "--admin", &a.admin]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    assert!(
        stdout(&sent).contains("sent 3 bytes on topic \"deploy\""),
        "{}",
        stdout(&sent)
    );
    let sent = cli(&["multicast", "deploy", "v43", "--admin", &a.admin]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    wait_for("n1 to log both deliveries", 10, || {
        let log = std::fs::read_to_string(&b.log).unwrap();
        (log.matches("multicast delivered").count() >= 2 && log.contains("\"deploy\""))
            .then_some(())
    });
    let reserved = cli(&["event", "hawser/kv", "x", "--admin", &a.admin]);
    assert!(!reserved.status.success());

    let version = cli(&["version"]);
    assert_eq!(
        stdout(&version),
        format!("hawser {}\n", env!("CARGO_PKG_VERSION"))
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = cli(&["completion", shell]);
        assert!(script.status.success(), "{}", stderr(&script));
        let text = stdout(&script);
        assert!(
            text.contains("force-leave") && text.contains("members"),
            "{shell}: {text}"
        );
    }
    assert!(!cli(&["completion", "tcsh"]).status.success());
}

#[test]
fn kv_delete_removes_the_key_everywhere_without_a_phantom() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_agents(dir.path());
    let op = r#"{"update":[{"field":"number","type":"counter","op":{"increment":5}}]}"#;
    let written = cli(&["kv", "op", "users", op, "--admin", &a.admin]);
    assert!(written.status.success(), "{}", stderr(&written));
    let list = |admin: &str| stdout(&cli(&["kv", "list", "--admin", admin]));
    wait_for("n1 to read the key", 20, || {
        list(&b.admin)
            .starts_with("1 key under prefix \"\":")
            .then_some(())
    });

    let deleted = cli(&["kv", "delete", "users", "--admin", &b.admin]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(
        stdout(&deleted).starts_with("users deleted (durable on"),
        "{}",
        stdout(&deleted)
    );
    wait_for("the delete to reach n0", 20, || {
        (list(&a.admin) == "0 keys under prefix \"\":\nKEY  VALUE\n").then_some(())
    });
    assert_eq!(list(&b.admin), "0 keys under prefix \"\":\nKEY  VALUE\n");
    assert_eq!(
        stdout(&cli(&["kv", "get", "users", "--admin", &a.admin])),
        "users = {}\n"
    );
    assert_eq!(a.json("/v1/self")["kv_keys"], 0);
    // Deleting again (or a key never written) is not an error: there is nothing to do.
    let again = cli(&["kv", "delete", "users", "--admin", &a.admin]);
    assert!(again.status.success(), "{}", stderr(&again));
    // The key can be written again, and holds only the new write.
    let rewritten = cli(&["kv", "op", "users", op, "--admin", &a.admin]);
    assert!(
        stdout(&rewritten).starts_with(r#"users = {"number:counter":5}"#),
        "{}",
        stdout(&rewritten)
    );
}

#[test]
fn kv_op_help_carries_the_grammar_and_arguments_are_described() {
    let help = stdout(&cli(&["kv", "op", "--help"]));
    for needle in [
        "{\"update\": [FIELD_OP, ...]}",
        "counter",
        "\"increment\"",
        "add_all",
        "\"assign\"",
        "\"enable\"",
        "kv delete",
    ] {
        assert!(help.contains(needle), "no {needle:?} in:\n{help}");
    }
    let help = stdout(&cli(&["kv", "get", "--help"]));
    assert!(help.contains("<KEY>  The key"), "{help}");
    let help = stdout(&cli(&["route", "--help"]));
    assert!(help.contains("<NODE>  The member to route to"), "{help}");
}

/// Run `hawser monitor` against `admin` until a line containing every one of `needles`
/// arrives (or 30 s pass); return that line.
fn monitor_until(admin: &str, level: &str, needles: &[&str], act: impl FnOnce()) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = hawser()
        .args(["monitor", "--level", level, "--admin", admin])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Give the stream a moment to be set up before acting.
    std::thread::sleep(std::time::Duration::from_millis(500));
    act();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if needles.iter().all(|n| line.contains(n)) => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    found.unwrap_or_else(|| panic!("no line with {needles:?}; saw:\n{}", seen.join("\n")))
}

#[test]
fn monitor_streams_log_lines_that_name_peers_by_name_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_agents(dir.path());
    let b_id = b.id();
    // The multicast's delivery on n0 names its origin, n1, by name and 16-digit id.
    let line = monitor_until(&a.admin, "info", &["multicast delivered"], || {
        let sent = cli(&["event", "hello", "x", "--admin", &b.admin]);
        assert!(sent.status.success(), "{}", stderr(&sent));
    });
    assert!(
        line.starts_with(" INFO hawser_runtime::driver::stack: multicast delivered")
            && line.contains(&format!("origin=n1 ({b_id})")),
        "{line}"
    );
    // Debug lines only for a monitor that asks for them.
    let line = monitor_until(&a.admin, "debug", &["DEBUG", "kv op durable"], || {
        let op = r#"{"update":[{"field":"n","type":"counter","op":{"increment":1}}]}"#;
        assert!(
            cli(&["kv", "op", "k", op, "--admin", &a.admin])
                .status
                .success()
        );
    });
    assert!(line.contains("key="), "{line}");
    let bad = cli(&["monitor", "--level", "loud", "--admin", &a.admin]);
    assert!(stderr(&bad).contains("unknown level"), "{}", stderr(&bad));
    // The agent's own stderr never spells an id without its leading zeros.
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains(&format!("n1 ({b_id})")), "{log}");
    assert!(
        !log.contains(&format!("#{}", b_id.trim_start_matches('0'))),
        "{log}"
    );
}

#[test]
fn a_wrong_cookie_and_a_dead_contact_are_said_plainly_and_shown_in_self() {
    let dir = tempfile::tempdir().unwrap();
    let mut good = Agent::new(dir.path(), "n0");
    good.start();
    let mut wrong = Agent::new(dir.path(), "n1");
    wrong.cookie = "another-cookie-of-24-bytes".into();
    wrong.join = vec![good.listen.clone()];
    wrong.start();
    wait_for("n1 to say it is isolated by its cookie", 40, || {
        (wrong.json("/v1/self")["isolated"] == "cookie refused by every contact").then_some(())
    });
    let log = std::fs::read_to_string(&wrong.log).unwrap();
    assert_eq!(
        log.matches("this node's cookie differs from the cluster's")
            .count(),
        1,
        "said once, loudly: {log}"
    );
    assert!(log.contains("ERROR"), "{log}");
    let info = stdout(&cli(&["info", "--admin", &wrong.admin]));
    assert!(
        info.contains("isolated: cookie refused by every contact\n"),
        "{info}"
    );
    let good_log = std::fs::read_to_string(&good.log).unwrap();
    assert!(
        good_log.contains("its cookie differs from this node's"),
        "{good_log}"
    );
    assert!(
        good.json("/v1/self")["isolated"].is_null(),
        "the first node is alone, as asked"
    );

    // A contact nobody listens on.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = nobody.local_addr().unwrap().to_string();
    drop(nobody);
    let mut lost = Agent::new(dir.path(), "n2");
    lost.join = vec![dead];
    lost.start();
    wait_for("n2 to say no contact answers", 40, || {
        (lost.json("/v1/self")["isolated"] == "no contact answers").then_some(())
    });
    let log = std::fs::read_to_string(&lost.log).unwrap();
    assert_eq!(log.matches("this agent runs isolated").count(), 1, "{log}");
}
