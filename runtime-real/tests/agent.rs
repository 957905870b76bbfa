//! `hawser agent` as a process: configuration refusals, bad input on its ports, the
//! data directory, signals, and recovery after kill -9. Loopback only; every wait is
//! bounded.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::{Agent, get, hawser, raw_http, wait_for};

/// Run `hawser` to completion: exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = hawser().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A config file in `dir` with the minimal settings and then `more`; its path.
fn config_file(dir: &std::path::Path, more: &str) -> String {
    let file = dir.join("agent.toml");
    let minimal = "name = \"n1\"\nlisten = \"127.0.0.1:7600\"\ndata_dir = \"/tmp/x\"\n\
                   cookie = \"a-cookie-of-16-bytes\"\n";
    std::fs::write(&file, format!("{minimal}{more}")).unwrap();
    file.to_str().unwrap().to_owned()
}

/// Send `bytes` to the agent's peer port and wait (at most `secs`) for the agent to
/// close the connection. Returns how long it took.
fn closed_after(agent: &Agent, bytes: &[u8], secs: u64) -> Duration {
    let mut s = TcpStream::connect(&agent.listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let started = Instant::now();
    s.write_all(bytes).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return started.elapsed();
            }
            Err(e) => panic!("the agent did not close the connection within {secs} s: {e}"),
        }
    }
}

#[test]
fn no_arguments_prints_the_minimal_command() {
    let (code, err) = run(&["agent"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("hawser agent --name n1 --listen 127.0.0.1:7600"),
        "{err}"
    );
}

#[test]
fn invalid_settings_are_named() {
    let (code, err) = run(&[
        "agent",
        "--name",
        "n1",
        "--listen",
        "nowhere",
        "--data-dir",
        "/tmp/x",
        "--cookie",
        "c",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("`listen`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), "[membership]\nping_interval_ms = 0\n");
    let (code, err) = run(&["agent", "--config", &file]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ping_interval_ms"), "{err}");
}

#[test]
fn garbage_truncated_and_oversize_frames_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    // Not hawser at all.
    closed_after(&a, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5);
    // A length prefix of 4 GiB: refused from the header, nothing allocated.
    closed_after(&a, b"HW\x01\x01\xff\xff\xff\xff", 5);
    // A hello header announcing 100 bytes, 10 bytes, then end of stream.
    let mut s = TcpStream::connect(&a.listen).unwrap();
    s.write_all(b"HW\x01\x01\x00\x00\x00\x64").unwrap();
    s.write_all(&[0u8; 10]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = Vec::new();
    s.read_to_end(&mut sink)
        .expect("the agent closes a truncated frame's connection");
    // A well-formed hello frame whose payload is garbage.
    closed_after(&a, b"HW\x01\x01\x00\x00\x00\x04abcd", 5);
    wait_for("decode errors to be counted", 5, || {
        (a.metric("hawser_decode_errors_total") >= 3.0).then_some(())
    });
    assert_eq!(
        a.json("/v1/self")["name"],
        "a",
        "the agent is still serving"
    );
    assert!(a.exited().is_none(), "the agent is still running");
}

#[test]
fn a_silent_connection_is_closed_by_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    // Nothing at all, and half a header: both wait for the 5 s handshake timeout.
    let silent = std::thread::spawn({
        let a_listen = a.listen.clone();
        move || {
            let mut s = TcpStream::connect(a_listen).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let started = Instant::now();
            let mut sink = Vec::new();
            s.read_to_end(&mut sink).unwrap();
            started.elapsed()
        }
    });
    let took = closed_after(&a, b"HW\x01", 10);
    assert!(took >= Duration::from_secs(4), "closed after {took:?}");
    let took = silent.join().unwrap();
    assert!(took >= Duration::from_secs(4), "closed after {took:?}");
    assert!(a.metric("hawser_handshake_timeouts_total") >= 2.0);
}

#[test]
fn a_peer_with_the_wrong_cookie_gets_no_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let mut b = Agent::new(dir.path(), "b");
    b.join = vec![a.listen.clone()];
    b.cookie = "another-cookie-24-bytes".into();
    b.start();
    wait_for("the cookie refusal to be counted", 10, || {
        let failures =
            a.metric("hawser_auth_failures_total") + b.metric("hawser_auth_failures_total");
        (failures >= 1.0).then_some(())
    });
    assert!(a.active().is_empty() && b.active().is_empty());
}

#[test]
fn a_flood_of_connections_does_not_stop_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    let file = dir.path().join("a.toml");
    std::fs::write(&file, "[transport]\nmax_connections = 32\n").unwrap();
    a.extra = vec!["--config".into(), file.to_str().unwrap().into()];
    a.start();
    // 200 connections at once, each sending half a frame and then nothing.
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| {
            let mut s = TcpStream::connect(&a.listen).ok()?;
            let _ = s.write_all(b"HW\x01\x01\x00\x00");
            Some(s)
        })
        .collect();
    let started = Instant::now();
    assert_eq!(a.json("/v1/self")["name"], "a");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "admin answered in {:?} under the flood",
        started.elapsed()
    );
    wait_for("connections over the limit to be refused", 5, || {
        (a.metric("hawser_connections_refused_total") > 0.0).then_some(())
    });
    assert!(a.metric("hawser_connections") <= 32.0);
    // A real peer still gets in once the flood's handshakes time out.
    let mut b = Agent::new(dir.path(), "b");
    b.join = vec![a.listen.clone()];
    b.start();
    wait_for("b to become a's neighbour after the flood", 20, || {
        (a.active().len() == 1).then_some(())
    });
    drop(flood);
}

#[test]
fn admin_refuses_invalid_requests_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let (status, body) = get(&a.admin, "/v1/nope").unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("no such endpoint: GET /v1/nope"), "{body}");
    let (status, body) = raw_http(
        &a.admin,
        &format!(
            "POST /v1/members HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: 9\r\nConnection: close\r\n\r\n{{not json",
            a.admin
        ),
    )
    .unwrap();
    assert_eq!(status, 405);
    assert!(body.contains("use GET"), "{body}");
    let (status, _) = raw_http(&a.admin, "\x16\x03\x01 garbage\r\n\r\n").unwrap();
    assert_eq!(status, 400);
    assert_eq!(a.json("/v1/self")["name"], "a");
}

#[test]
fn an_unusable_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.data_dir = file;
    a.spawn();
    let status = wait_for("a to exit", 10, || a.exited());
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("data_dir must be a directory"), "{log}");
    assert_eq!(
        log.matches("data_dir must be a directory").count(),
        1,
        "a start-up error is said once, not as a log line and again on stderr: {log}"
    );

    // A read-only directory stops only a user the permissions apply to (not root).
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        let mut b = Agent::new(dir.path(), "b");
        b.data_dir = ro.join("b");
        b.spawn();
        let status = wait_for("b to exit", 10, || b.exited());
        assert_eq!(status.code(), Some(1));
        let log = std::fs::read_to_string(&b.log).unwrap();
        assert!(log.contains("data_dir must be a directory"), "{log}");
    }
}

#[test]
fn a_second_agent_on_the_same_data_dir_is_refused_and_the_first_is_unharmed() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let mut twin = Agent::new(dir.path(), "a");
    twin.log = dir.path().join("twin.log");
    twin.spawn();
    let status = wait_for("the second agent to exit", 10, || twin.exited());
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(&twin.log).unwrap();
    assert!(log.contains("in use by another hawser agent"), "{log}");
    assert_eq!(a.json("/v1/self")["name"], "a");
    assert_eq!(
        a.terminate().code(),
        Some(0),
        "the first still leaves cleanly"
    );
}

#[test]
fn sigterm_leaves_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.join = vec![a.listen.clone()];
    a.start();
    let mut b = Agent::new(dir.path(), "b");
    b.join = a.join.clone();
    b.start();
    wait_for("a and b to link", 10, || {
        (a.active().len() == 1).then_some(())
    });
    let b_id = b.id();
    let left = Instant::now();
    assert_eq!(b.terminate().code(), Some(0));
    wait_for("a to drop b at once", 2, || {
        a.active().is_empty().then_some(())
    });
    assert!(left.elapsed() < Duration::from_secs(3));
    // b said it was leaving, so a does not keep it to dial back (a crashed peer would
    // stay in the passive view).
    assert!(!a.passive().contains(&b_id), "{:?}", a.passive());
    assert!(
        std::fs::read_to_string(&b.log)
            .unwrap()
            .contains("store flushed")
    );
}

#[test]
fn kill9_then_restart_recovers_the_persisted_passive_view() {
    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> = ["a", "b", "c"]
        .iter()
        .map(|n| Agent::new(dir.path(), n))
        .collect();
    let contacts = vec![agents[0].listen.clone()];
    for a in &mut agents {
        a.join = contacts.clone();
        a.start();
    }
    wait_for("a to link with b and c", 15, || {
        (agents[0].active().len() == 2).then_some(())
    });
    let c_id = agents[2].id();
    agents[2].kill9();
    // a moves c to its passive view and persists it on its next repair tick.
    wait_for("c to move to a's passive view", 5, || {
        agents[0].passive().contains(&c_id).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    agents[0].kill9();
    // No contacts this time: all a knows of c is what its store kept.
    agents[0].join.clear();
    agents[0].start();
    let passive = agents[0].passive();
    assert!(
        passive.contains(&c_id),
        "a restarted with passive view {passive:?}, not c = {c_id}"
    );
    // With c back, a repairs its active view from that recovered passive view.
    agents[2].start();
    wait_for("a to rejoin the overlay", 20, || {
        (!agents[0].active().is_empty()).then_some(())
    });
}

/// The demo's partition (the driver's deny list) is crate-private, and nothing a user of
/// the agent can set reaches it: no flag, no config setting, no endpoint.
#[test]
fn the_demo_partition_is_unreachable_from_flags_config_and_api() {
    let help = hawser().args(["agent", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_lowercase();
    assert!(
        !help.contains("deny") && !help.contains("partition"),
        "{help}"
    );

    let dir = tempfile::tempdir().unwrap();
    for setting in [
        "deny = [\"127.0.0.1:1\"]\n",
        "[transport]\ndeny = [\"127.0.0.1:1\"]\n",
    ] {
        let file = config_file(dir.path(), setting);
        let (code, err) = run(&["agent", "--config", &file]);
        assert_eq!(code, Some(2), "{setting}: {err}");
        assert!(err.contains("deny"), "{err}");
    }

    let mut a = Agent::new(dir.path(), "a");
    a.start();
    for path in ["/v1/deny", "/v1/partition", "/v1/admin/deny"] {
        let (status, _) = common::post(&a.admin, path, "[\"127.0.0.1:1\"]").unwrap();
        assert_eq!(status, 404, "{path}");
    }
}

#[test]
fn a_kernel_without_what_lb_asks_for_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), "[lb]\nnft = \"/nonexistent/nft\"\n");
    let (code, err) = run(&["agent", "--config", &file, "--lb", "nftables"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--lb nftables needs the `/nonexistent/nft` program"),
        "{err}"
    );
    let (code, err) = run(&["agent", "--name", "n1", "--lb", "iptables"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("nftables") && err.contains("ipvs"), "{err}");
}

/// `hawser vip add | list | rm` through an agent with the load balancer off: the KV
/// side works without a kernel backend; bad input gets a 400 with the reason, counted.
#[test]
fn vips_are_published_listed_and_withdrawn_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let vip = |args: &[&str]| {
        let out = hawser()
            .arg("vip")
            .args(args)
            .args(["--admin", &a.admin])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = vip(&[
        "add",
        "tcp://11.1.2.3:80",
        "--backend",
        "198.18.1.2:8080",
        "--weight",
        "3",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let list = a.json("/v1/vips");
    assert_eq!(list["lb"], "off", "{list}");
    let v = &list["vips"][0];
    assert_eq!(v["vip"], "tcp://11.1.2.3:80", "{list}");
    assert_eq!(v["address"], "11.1.2.3:80", "{list}");
    assert_eq!(v["programmed"], false, "no kernel backend: {list}");
    assert_eq!(v["kernel"], serde_json::json!([]), "{list}");
    let b = &v["backends"][0];
    assert_eq!(b["node"], "a", "{list}");
    assert_eq!(b["addr"], "198.18.1.2:8080", "{list}");
    assert_eq!(b["weight"], 3, "{list}");
    assert_eq!(b["reachable"], true, "{list}");
    assert!(b["kernel_weight"].is_null(), "{list}");
    let (code, out) = vip(&["list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("198.18.1.2:8080  3"), "{out}");

    for (args, why) in [
        (
            &["add", "11.1.2.3:80", "--backend", "198.18.1.2:8080"][..],
            "is not a VIP",
        ),
        (
            &["add", "tcp://11.1.2.3:80", "--backend", "198.18.1.2"],
            "backend:",
        ),
        (
            &[
                "add",
                "tcp://11.1.2.3:80",
                "--backend",
                "198.18.1.2:80",
                "--weight",
                "10001",
            ],
            "weight",
        ),
    ] {
        let (code, out) = vip(args);
        assert_ne!(code, Some(0), "{args:?}: {out}");
        assert!(out.contains(why), "{args:?}: {out}");
    }
    assert_eq!(a.metric("hawser_lb_api_refused_total"), 3.0);

    let rm = ["rm", "tcp://11.1.2.3:80", "--backend", "198.18.1.2:8080"];
    let (code, out) = vip(&rm);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(a.json("/v1/vips")["vips"], serde_json::json!([]));
    let (code, out) = vip(&rm);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("has not published backend"), "{out}");
}
