//! The replicated KV through the admin API of real agent processes: a write on one is
//! read on the others, bad requests are refused clearly, every acknowledged op survives
//! a kill -9 in the middle of a write burst, and `hawser demo` passes.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Agent, hawser, incr, one_overlay, post, wait_for, wait_for_value};
use serde_json::{Value, json};

#[test]
fn a_write_on_one_agent_is_read_on_the_others_and_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> = (0..3)
        .map(|i| Agent::new(dir.path(), &format!("n{i}")))
        .collect();
    let contacts = vec![agents[0].listen.clone()];
    for a in &mut agents {
        a.join = contacts.clone();
        a.start();
    }
    let all: Vec<&Agent> = agents.iter().collect();
    wait_for("three agents to form one overlay", 20, || {
        one_overlay(&all).then_some(())
    });

    // A key never written reads as the empty map.
    assert_eq!(agents[2].json("/v1/kv/never-written"), json!({}));

    let (status, body) = post(&agents[1].admin, "/v1/kv/erlang_users", &incr(5)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"number:counter": 5})
    );
    wait_for_value(&all, "erlang_users", &json!({"number:counter": 5}), 10);

    // Keys may hold slashes; listing by prefix finds them.
    let (status, body) = post(
        &agents[0].admin,
        "/v1/kv/svc/web/1",
        r#"{"update":[{"field":"addr","type":"register","op":{"assign":"10.0.0.1:80"}}]}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let expected = json!({"addr:register": "10.0.0.1:80"});
    wait_for_value(&all, "svc/web/1", &expected, 10);
    let list = agents[2].json("/v1/kv?prefix=svc/");
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["keys"]["svc/web/1"], expected, "{list}");

    // Invalid op JSON: 400 with the parser's error, and nothing applied.
    let (status, body) = post(&agents[0].admin, "/v1/kv/erlang_users", "{not json").unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid op at /: not JSON"), "{body}");
    let (status, body) = post(
        &agents[0].admin,
        "/v1/kv/erlang_users",
        r#"{"update":[{"field":"number","type":"counter","op":{"add":"x"}}]}"#,
    )
    .unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not an op on a counter"), "{body}");
    // An invalid key: 400 with core's reason.
    let long = "k".repeat(300);
    let (status, body) = post(&agents[0].admin, &format!("/v1/kv/{long}"), &incr(1)).unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid key"), "{body}");
    // Wrong method on a key: 405 naming what is allowed.
    let (status, body) = common::raw_http(
        &agents[0].admin,
        &format!(
            "PUT /v1/kv/erlang_users HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            agents[0].admin
        ),
    )
    .unwrap();
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("use GET, POST, DELETE"), "{body}");
    for a in &all {
        assert_eq!(a.json("/v1/kv/erlang_users"), json!({"number:counter": 5}));
    }

    // The CLI reads what the API wrote.
    let out = hawser()
        .args([
            "kv",
            "get",
            "erlang_users",
            "--json",
            "--admin",
            &agents[2].admin,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({"number:counter": 5})
    );
    let out = hawser()
        .args([
            "kv",
            "op",
            "erlang_users",
            &incr(2),
            "--admin",
            &agents[2].admin,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(r#"erlang_users = {"number:counter":7} (durable"#),
        "{text}"
    );
    wait_for_value(&all, "erlang_users", &json!({"number:counter": 7}), 10);

    assert!(agents[0].metric("hawser_kv_ops_total") >= 1.0);
    assert!(agents[0].metric("hawser_kv_keys") >= 2.0);
}

#[test]
fn every_acknowledged_op_survives_a_kill9_in_a_write_burst() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::new(dir.path(), "n1");
    agent.start();
    let writers = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let admin = agent.admin.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Ops of one writer are sequential: each waits for its answer. The
                // writers' keys differ, so their ops commit in shared batches (and their
                // tickets, dots of each key's own context, coincide).
                let (mut acked, mut sent) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    sent += 1;
                    match post(&admin, &format!("/v1/kv/burst/{w}"), &incr(1)) {
                        Some((200, _)) => acked += 1,
                        // The agent is gone: the connection broke.
                        None => break,
                        Some(other) => panic!("writer {w}: refused before the kill: {other:?}"),
                    }
                }
                (acked, sent)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    agent.kill9();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(u64, u64)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let total: u64 = results.iter().map(|r| r.0).sum();
    assert!(
        results.iter().all(|r| r.0 >= 5),
        "every writer should have had ops acknowledged: {results:?}"
    );

    agent.start();
    for (w, (acked, sent)) in results.iter().enumerate() {
        let v = agent.json(&format!("/v1/kv/burst/{w}"));
        let n = v["number:counter"].as_u64().unwrap_or(0);
        assert!(
            n >= *acked && n <= *sent,
            "writer {w}: {acked} ops acknowledged, {sent} sent, {n} after the restart"
        );
    }
    eprintln!("{total} acknowledged ops, all present after kill -9 and restart: {results:?}");
}

#[test]
fn the_demo_passes() {
    let mut child = hawser()
        .args(["demo", "--timeout", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("hawser demo did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "exit {status}\n{stdout}\n{stderr}");
    for line in [
        "n1: +5 acknowledged",
        "n2 reads erlang_users.number = 5",
        "every node is alone",
        "n0 reads erlang_users.number = 8",
        "n1 reads erlang_users.number = 12",
        "n2 reads erlang_users.number = 16",
        "n0 reads erlang_users.number = 26",
        "n1 reads erlang_users.number = 26",
        "n2 reads erlang_users.number = 26",
        "Every read matched",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
}

#[test]
fn kv_watch_streams_the_snapshot_then_changes() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::new(dir.path(), "n1");
    agent.start();
    let (status, _) = post(&agent.admin, "/v1/kv/svc/a", &incr(1)).unwrap();
    assert_eq!(status, 200);
    let (status, _) = post(&agent.admin, "/v1/kv/other", &incr(1)).unwrap();
    assert_eq!(status, 200);
    let mut child = hawser()
        .args(["kv", "watch", "svc/", "--json", "--admin", &agent.admin])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx
                .send(serde_json::from_str::<Value>(&line).unwrap())
                .is_err()
            {
                break;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the next watch event within 10 s")
    };
    assert_eq!(
        next(),
        json!({"event": "snapshot", "key": "svc/a", "value": {"number:counter": 1}})
    );
    assert_eq!(
        next(),
        json!({"event": "ready", "keys": 1, "prefix": "svc/"})
    );
    // A change outside the prefix is not streamed; inside, it is.
    post(&agent.admin, "/v1/kv/other", &incr(1)).unwrap();
    post(&agent.admin, "/v1/kv/svc/b", &incr(2)).unwrap();
    assert_eq!(
        next(),
        json!({"event": "change", "key": "svc/b", "value": {"number:counter": 2}})
    );
    // The agent leaves: the stream ends with the reason, and the client exits 1.
    assert!(agent.terminate().success());
    assert_eq!(next()["event"], "end");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}
