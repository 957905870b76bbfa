//! The admin API against what a web page, a careless operator or a greedy client can do:
//! cross-site writes, DNS rebinding, a missing token, idle connections, stalled watchers,
//! huge listings, HTTP-layer errors, and control characters bound for a terminal or a log.
//! Real agents on loopback; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Agent, get, hawser, incr, post, raw_http, wait_for};

/// A POST as a browser sends it for a page: `(status, body)`.
fn post_as(admin: &str, host: &str, headers: &str, path: &str, body: &str) -> (u16, String) {
    raw_http(
        admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap()
}

/// The request that wrote into the cluster from any web page, and its variants: each is
/// refused with a JSON reason, and the key stays unwritten; a same-origin JSON write
/// still works.
#[test]
fn cross_site_and_rebound_requests_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let op = incr(5);
    let evil = "Origin: http://evil.example.com\r\n";
    for (host, headers, want) in [
        (
            "evil.example.com",
            "Content-Type: text/plain\r\nOrigin: http://evil.example.com\r\n",
            403,
        ),
        (
            "evil.example.com:80",
            "Content-Type: application/json\r\n",
            403,
        ),
        (a.admin.as_str(), "Content-Type: text/plain\r\n", 415),
        (
            a.admin.as_str(),
            &format!("Content-Type: application/json\r\n{evil}"),
            403,
        ),
        (
            a.admin.as_str(),
            "Content-Type: application/json\r\nSec-Fetch-Site: cross-site\r\n",
            403,
        ),
    ] {
        let (status, body) = post_as(&a.admin, host, headers, "/v1/kv/k", &op);
        assert_eq!(status, want, "{host} {headers:?}: {body}");
        let reason: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(reason["error"].is_string(), "{body}");
    }
    assert_eq!(a.json("/v1/kv/k"), serde_json::json!({}));
    let same = format!(
        "Content-Type: application/json\r\nOrigin: http://{}\r\n",
        a.admin
    );
    let (status, body) = post_as(&a.admin, &a.admin, &same, "/v1/kv/k", &op);
    assert_eq!(status, 200, "{body}");
    // A GET with a rebound Host is refused too: a page cannot read the cluster either.
    let (status, _) = raw_http(
        &a.admin,
        "GET /v1/members HTTP/1.1\r\nHost: evil.example.com:80\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(status, 403);
}

#[test]
fn a_token_is_enforced_and_required_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "0123456789abcdef0123456789abcdef\n").unwrap();
    let out = hawser()
        .args([
            "agent",
            "--name",
            "x",
            "--listen",
            "127.0.0.1:1",
            "--data-dir",
        ])
        .arg(dir.path().join("x"))
        .args(["--cookie", common::COOKIE, "--admin", "0.0.0.0:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--admin-token-file"), "{err}");

    let mut a = Agent::new(dir.path(), "a");
    a.extra = vec!["--admin-token-file".into(), token.to_str().unwrap().into()];
    a.spawn();
    wait_for("a to answer 401 without the token", 10, || {
        get(&a.admin, "/v1/self").filter(|(s, _)| *s == 401)
    });
    let (status, body) = raw_http(
        &a.admin,
        &format!(
            "GET /v1/self HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer \
             0123456789abcdef0123456789abcdef\r\nConnection: close\r\n\r\n",
            a.admin
        ),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let cli = |extra: &[&str]| {
        hawser()
            .args(["members", "--admin", &a.admin])
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(!cli(&[]).status.success());
    let out = cli(&["--token-file", token.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 2,000 idle connections stayed open forever. Now the fifth of four is closed at once,
/// and idle ones are closed after the idle timeout.
#[test]
fn admin_connections_are_capped_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.with_config(
        dir.path(),
        "[admin_api]\nmax_connections = 4\nidle_timeout_ms = 700\n",
    );
    a.start();
    std::thread::sleep(Duration::from_millis(800));
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&a.admin).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = TcpStream::connect(&a.admin).unwrap();
    fifth
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(
        fifth.read(&mut [0u8; 16]).unwrap_or(0),
        0,
        "the fifth was kept"
    );
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(
            s.read(&mut [0u8; 16]).unwrap_or(1),
            0,
            "an idle one was kept"
        );
    }
    assert!(a.metric("hawser_admin_connections_refused_total") >= 1.0);
}

/// With `ulimit -n 256`, 300 idle admin connections made both ports refuse new ones.
/// Now the admin API keeps to its share and a peer still links.
#[test]
fn idle_admin_clients_cannot_starve_the_peer_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.nofile = Some(256);
    a.start();
    let held: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&a.admin).ok())
        .collect();
    let mut b = Agent::new(dir.path(), "b");
    b.join = vec![a.listen.clone()];
    b.start();
    let b_id = b.id();
    wait_for("b to link with a", 15, || {
        let out = hawser()
            .args(["overlay", "--json", "--admin", &b.admin])
            .output()
            .ok()?;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (doc["active"].as_array()?.len() == 1).then_some(())
    });
    drop(held);
    wait_for("a to serve its API again", 10, || {
        get(&a.admin, "/v1/overlay").filter(|(s, body)| *s == 200 && body.contains(&b_id))
    });
}

/// 20 stalled watchers and 100 writes of 300 KB took an agent to 664 MB: the cut-off
/// counted changes, not bytes. Now watchers are capped in number, and one that lets more
/// than its byte budget pile up is cut off with `lagged`.
#[test]
fn watchers_are_bounded_in_number_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.with_config(
        dir.path(),
        "[admin_api]\nmax_watchers = 2\nwatch_queue_bytes = 300000\n",
    );
    a.start();
    let watch = |a: &Agent| {
        let mut s = TcpStream::connect(&a.admin).unwrap();
        write!(
            s,
            "GET /v1/kv/watch?prefix=big HTTP/1.1\r\nHost: {}\r\n\r\n",
            a.admin
        )
        .unwrap();
        s
    };
    let stalled = [watch(&a), watch(&a)];
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = get(&a.admin, "/v1/kv/watch?prefix=big").unwrap();
    assert_eq!(status, 503, "{body}");
    // Far more than the socket buffers of the two stalled connections can absorb.
    let value = "v".repeat(300_000);
    for i in 0..60 {
        let op = format!(
            r#"{{"update":[{{"field":"r","type":"register","op":{{"assign":"{value}{i}"}}}}]}}"#
        );
        let (status, body) = post(&a.admin, "/v1/kv/big", &op).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    wait_for("the stalled watchers to be cut off", 10, || {
        let log = std::fs::read_to_string(&a.log).ok()?;
        (log.matches("fell behind").count() >= 2).then_some(())
    });
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = Vec::new();
        let _ = s.read_to_end(&mut seen);
        let seen = String::from_utf8_lossy(&seen);
        assert!(
            seen.contains("event: end") && seen.contains("lagged"),
            "{}",
            &seen[seen.len().saturating_sub(300)..]
        );
    }
}

/// `GET /v1/kv` answered with every value at once (27 MB ×10 peaked at 551 MB); now it
/// answers in pages the CLI follows. A value over 65,535 characters used to panic
/// `hawser kv list`.
#[test]
fn listings_come_in_pages_and_the_cli_prints_long_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let value = "w".repeat(400_000);
    for i in 0..4 {
        let op = format!(
            r#"{{"update":[{{"field":"r","type":"register","op":{{"assign":"{value}"}}}}]}}"#
        );
        let (status, body) = post(&a.admin, &format!("/v1/kv/key{i}"), &op).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let first = a.json("/v1/kv?prefix=key");
    let next = first["next"].as_str().expect("a second page");
    assert!(first["count"].as_u64().unwrap() < 4, "{}", first["count"]);
    let rest = a.json(&format!("/v1/kv?prefix=key&after={next}"));
    assert_eq!(
        first["count"].as_u64().unwrap() + rest["count"].as_u64().unwrap(),
        4
    );
    assert!(rest["next"].is_null());
    let out = hawser()
        .args(["kv", "list", "key", "--admin", &a.admin])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("4 keys"), "{}", &text[..100]);
}

/// The HTTP layer's own refusals (an oversize body, a bad request) answer JSON too,
/// including those hyper writes before there is a request at all (a header section over
/// its buffer, bytes that are not HTTP), which came with an empty body.
#[test]
fn http_layer_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let big = "x".repeat(3 << 20);
    let (status, body) = post(&a.admin, "/v1/kv/k", &big).unwrap();
    assert_eq!(status, 413);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
    assert!(doc["error"].is_string(), "{body}");
    let (status, body) = get(&a.admin, "/v1/kv?prefix=a&prefix=b").unwrap();
    assert_eq!(status, 400);
    serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|_| panic!("{body}"));

    let huge_header = format!(
        "GET /v1/self HTTP/1.1\r\nHost: {}\r\nX-Filler: {}\r\n\r\n",
        a.admin,
        "a".repeat(2 << 20)
    );
    for (request, want) in [
        (huge_header.as_str(), 431),
        ("\x16\x03\x01 not http at all\r\n\r\n", 400),
        ("GET /v1/self HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    ] {
        let (status, body) = raw_http(&a.admin, request).unwrap();
        assert_eq!(status, want, "{body}");
        let doc: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{want}: {body:?}"));
        assert!(doc["error"].is_string(), "{body}");
    }
    // The connection it came on is closed; the agent serves the next one.
    assert_eq!(get(&a.admin, "/v1/self").unwrap().0, 200);
}

/// A key with terminal escapes is printed escaped; a multicast topic with a newline
/// cannot forge a line in another node's log.
#[test]
fn untrusted_strings_are_escaped_in_terminals_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = common::pair(dir.path());
    let (status, body) = post(&a.admin, "/v1/kv/evil%1B%5D0%3Bpwned%07%1B%5B2J", &incr(1)).unwrap();
    assert_eq!(status, 200, "{body}");
    let out = hawser()
        .args(["kv", "list", "--admin", &a.admin])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07));
    assert!(String::from_utf8_lossy(&out.stdout).contains("evil\\u{1b}]0;pwned"));

    wait_for("a and b to link", 10, || {
        (a.active().len() == 1).then_some(())
    });
    let (status, body) = raw_http(
        &a.admin,
        &format!(
            "POST /v1/multicast/t%0AFORGED%20line HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\nhi",
            a.admin
        ),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for("b to deliver it", 10, || {
        let log = std::fs::read_to_string(&b.log).ok()?;
        log.contains("multicast delivered").then_some(())
    });
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "{log}");
}
