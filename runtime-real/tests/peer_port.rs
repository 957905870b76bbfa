//! What anyone who can reach an agent's peer port can do to it, before and after the
//! handshake: nothing before it may cost more than the handshake needs, no source may
//! hold every pending handshake, refusals are logged with who caused them and at a
//! bounded rate. Loopback only; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Agent, RoguePeer, hawser, wait_for};
use hawser_core::crdt::Map;
use hawser_core::kv::KvMessage;
use hawser_core::wire;

/// Whether the agent closes a connection on which `bytes` were sent within `secs`.
fn closed_within(agent: &Agent, bytes: &[u8], secs: u64) -> bool {
    let mut s = TcpStream::connect(&agent.listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

/// A hello header announcing 4 MiB (the data frame limit) used to be read to its end,
/// held until the handshake timeout: 150 of them took an agent from 19 MB to 695 MB.
/// Now the header alone is refused: a handshake frame is a few hundred bytes.
#[test]
fn an_oversize_hello_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let mut frame = b"HW\x01\x01\x00\x40\x00\x00".to_vec();
    frame.extend_from_slice(&[0u8; 1000]);
    assert!(
        closed_within(&a, &frame, 2),
        "a 4 MiB hello was not refused at once"
    );
    wait_for("the oversize hello to be counted", 5, || {
        (a.metric("hawser_decode_errors_total") >= 1.0).then_some(())
    });
}

/// One source may hold only `max_pending_per_source` connections that have not sent
/// their handshake; the rest are closed on arrival and counted.
#[test]
fn one_source_cannot_hold_more_than_its_pending_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.with_config(dir.path(), "[transport]\nmax_pending_per_source = 4\n");
    a.start();
    let silent = a.hold_silent(4);
    assert!(
        closed_within(&a, b"", 2),
        "a fifth pending handshake was kept"
    );
    assert!(a.metric("hawser_pending_refused_total") >= 1.0);
    drop(silent);
}

/// 300 connections beyond the connection cap, and 50 bad frames: each kind of refusal
/// writes at most its burst of lines, each naming the remote address, and counts the
/// rest.
#[test]
fn refusals_name_the_remote_and_do_not_flood_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.with_config(dir.path(), "[transport]\nmax_connections = 4\n");
    a.start();
    let held = a.hold_silent(4);
    for _ in 0..300 {
        let _ = TcpStream::connect(&a.listen);
    }
    wait_for("the 300 to be refused", 10, || {
        (a.metric("hawser_connections_refused_total") >= 300.0).then_some(())
    });
    drop(held);
    wait_for("the held connections to close", 10, || {
        (a.metric("hawser_connections") == 0.0).then_some(())
    });
    for _ in 0..50 {
        closed_within(&a, b"GET / HTTP/1.1\r\n\r\n", 5);
    }
    wait_for("the bad frames to be counted", 5, || {
        (a.metric("hawser_decode_errors_total") >= 50.0).then_some(())
    });
    let log = std::fs::read_to_string(&a.log).unwrap();
    let lines = |what: &str| -> Vec<&str> { log.lines().filter(|l| l.contains(what)).collect() };
    let refused = lines("too many connections");
    let undecodable = lines("undecodable frame");
    for (what, found) in [("refused", &refused), ("undecodable", &undecodable)] {
        assert!(
            !found.is_empty() && found.len() <= 10,
            "{} {what} lines",
            found.len()
        );
        assert!(found.iter().all(|l| l.contains("127.0.0.1:")), "{found:?}");
    }
    assert!(a.metric("hawser_log_lines_suppressed_total") >= 290.0 + 40.0);
}

#[test]
fn keygen_prints_a_fresh_256_bit_key() {
    let run = || {
        let out = hawser().arg("keygen").output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (k1, k2) = (run(), run());
    assert!(
        k1.len() == 64 && k1.chars().all(|c| c.is_ascii_hexdigit()),
        "{k1:?}"
    );
    assert_ne!(k1, k2);
}

/// An authenticated peer sends a KV value whose maps nest 400,000 deep (3.2 MB, under
/// the frame limit). The derived decoder recursed once per level and the stack overflow
/// aborted the agent; now the depth is bounded while decoding: the message is a counted
/// decode error, the link is dropped, the agent goes on.
#[test]
fn a_deeply_nested_value_from_a_peer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let mut rogue = RoguePeer::link(&a, "rogue");
    let empty = wire::encode(&Map::new());
    let mut body = vec![1u8]; // the stack's KV channel
    let entries = KvMessage::Entries {
        entries: vec![("k".into(), Map::new())],
    }
    .encode();
    body.extend_from_slice(&entries[..entries.len() - empty.len()]);
    for _ in 0..400_000 {
        body.extend_from_slice(&[0, 0, 0, 0, 1, 1, b'm', 0]);
    }
    body.extend_from_slice(&empty);
    rogue.send(&body);
    assert!(rogue.closed_by_agent(), "the agent kept the link");
    assert!(a.exited().is_none(), "the agent died");
    assert!(a.metric("hawser_decode_errors_total") >= 1.0);
    assert_eq!(a.json("/v1/kv/k"), serde_json::json!({}));
}

/// A second agent started with a live agent's name (so its id) joins through the same
/// contact. The contact keeps its link to the first and refuses the second, which logs
/// why; the first's link never goes down (before: 95 link-downs in 2.5 minutes, and no
/// warning anywhere).
#[test]
fn a_second_agent_with_a_live_name_is_refused_and_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = common::pair(dir.path());
    let b_id = b.id();
    wait_for("a and b to link", 10, || {
        a.active().contains(&b_id).then_some(())
    });
    let mut twin = Agent::new(dir.path(), "b");
    twin.data_dir = dir.path().join("twin");
    twin.log = dir.path().join("twin.log");
    twin.join = vec![a.listen.clone()];
    twin.start();
    wait_for("the twin to be refused", 10, || {
        (a.metric("hawser_duplicate_ids_total") >= 1.0
            && twin.metric("hawser_refused_by_peer_total") >= 1.0)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(a.active().contains(&b_id), "a lost its link to b");
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(!log.contains("link down"), "a's links flapped:\n{log}");
    assert!(log.contains("names must be unique"));
    let twin_log = std::fs::read_to_string(&twin.log).unwrap();
    assert!(twin_log.contains("names must be unique"), "{twin_log}");
}

/// A value larger than a frame (here 300 KB over 64 KiB frames; in the field, a set five
/// nodes grew at once past the 4 MiB frame) reaches a node that lacked it: anti-entropy
/// sends it in pieces. It used to be left behind, silently.
#[test]
fn a_value_larger_than_a_frame_reaches_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let small_frames = "[transport]\nmax_frame = 65536\n";
    let mut a = Agent::new(dir.path(), "a");
    a.with_config(dir.path(), small_frames);
    a.start();
    let value = "p".repeat(300_000);
    let op =
        format!(r#"{{"update":[{{"field":"r","type":"register","op":{{"assign":"{value}"}}}}]}}"#);
    let (status, body) = common::post(&a.admin, "/v1/kv/big", &op).unwrap();
    assert_eq!(status, 200, "{body}");
    let mut b = Agent::new(dir.path(), "b");
    b.with_config(dir.path(), small_frames);
    b.join = vec![a.listen.clone()];
    b.start();
    wait_for("b to hold the large value", 20, || {
        let (_, body) = common::get(&b.admin, "/v1/kv/big")?;
        body.contains(&value).then_some(())
    });
    assert!(b.metric("hawser_kv_pieced_received_total") >= 1.0);
}
