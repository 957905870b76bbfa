//! The DNS service of real agents, on real sockets on loopback: the cluster zone from
//! the KV and membership, and the forwarder against real upstream servers (the fixture
//! in `dns_fixture`) that answer, go silent, fail, forge and answer too large.

mod common;
mod dns_fixture;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Agent, hawser, post, wait_for};
use dns_fixture::{FORGED, Mode, Upstream};
use hawser_runtime::dns::query::{Answer, ask};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

const FIRST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const SECOND: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// An agent serving DNS on a free loopback port, with `dns_toml` in its `[dns]` table.
fn dns_agent(root: &Path, name: &str, dns_toml: &str) -> Agent {
    let mut a = Agent::new(root, name);
    let config = root.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("[dns]\nlisten = \"127.0.0.1:0\"\n{dns_toml}"),
    )
    .unwrap();
    a.extra = vec!["--config".into(), config.to_str().unwrap().into()];
    a
}

fn upstreams(list: &[&Upstream]) -> String {
    let addrs: Vec<String> = list.iter().map(|u| format!("\"{}\"", u.addr)).collect();
    format!("upstreams = [{}]\n", addrs.join(", "))
}

fn dns_addr(a: &Agent) -> SocketAddr {
    a.json("/v1/self")["dns"].as_str().unwrap().parse().unwrap()
}

fn a_records(answer: &Answer) -> Vec<String> {
    answer
        .message
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::A)
        .map(|r| r.data.to_string())
        .collect()
}

fn rcode(answer: &Answer) -> ResponseCode {
    answer.message.metadata.response_code
}

/// The sum of the metrics whose line starts with `prefix` (0 if there is none).
fn metric(a: &Agent, prefix: &str) -> f64 {
    metrics(a, prefix).iter().sum()
}

fn metrics(a: &Agent, prefix: &str) -> Vec<f64> {
    let (_, body) = common::get(&a.admin, "/metrics").unwrap();
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .collect()
}

fn add(a: &Agent, name: &str, kind: &str, value: &str) {
    let body = format!(r#"{{"name":"{name}","type":"{kind}","value":"{value}"}}"#);
    let (status, text) = post(&a.admin, "/v1/dns/records", &body).unwrap();
    assert_eq!(status, 200, "{text}");
}

#[test]
fn every_agent_answers_the_cluster_zone_from_its_own_replica() {
    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> = (0..3)
        .map(|i| dns_agent(dir.path(), &format!("n{i}"), ""))
        .collect();
    let join = vec![agents[0].listen.clone()];
    for a in &mut agents {
        a.join = join.clone();
        a.start();
    }
    let servers: Vec<SocketAddr> = agents.iter().map(dns_addr).collect();
    // Every agent answers every member's name once membership has it.
    for &server in &servers {
        for i in 0..3 {
            let name = format!("n{i}.node.hawser.");
            wait_for(&format!("{server} to answer {name}"), 15, || {
                let a = ask(server, &name, RecordType::A, false).ok()?;
                (a_records(&a) == ["127.0.0.1"]).then_some(())
            });
        }
    }
    // A record written on n0 is answered by n2's server within a second.
    add(&agents[0], "api", "A", "198.18.7.1");
    let written = Instant::now();
    loop {
        let a = ask(servers[2], "api.hawser.", RecordType::A, false).unwrap();
        if a_records(&a) == ["198.18.7.1"] {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(5),
            "n2 never answered api"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = written.elapsed();
    assert!(took < Duration::from_secs(1), "n2 answered after {took:?}");
    eprintln!("a record written on n0 was answered by n2 after {took:?}");
    // CNAME chains, round robin, NXDOMAIN with the SOA, over real sockets.
    add(&agents[1], "api", "A", "198.18.7.2");
    add(&agents[1], "www", "CNAME", "api");
    wait_for("n0 to answer www with both addresses", 5, || {
        let a = ask(servers[0], "www.hawser.", RecordType::A, false).ok()?;
        (a_records(&a).len() == 2).then_some(a)
    });
    // Each shard rotates its answers; whichever shards the queries land on, both
    // addresses come first in turn.
    let firsts: std::collections::BTreeSet<String> = (0..20)
        .map(|_| {
            let a = ask(servers[0], "www.hawser.", RecordType::A, false).unwrap();
            assert_eq!(a.message.answers[0].record_type(), RecordType::CNAME);
            a_records(&a)[0].clone()
        })
        .collect();
    assert_eq!(firsts.len(), 2, "answers rotate: {firsts:?}");
    let missing = ask(servers[2], "nope.hawser.", RecordType::A, false).unwrap();
    assert_eq!(rcode(&missing), ResponseCode::NXDomain);
    assert_eq!(
        missing.message.authorities[0].record_type(),
        RecordType::SOA
    );
    // `hawser dns query` and `hawser dns records`, as the README shows them.
    let out = hawser()
        .args([
            "dns",
            "query",
            "n1.node.hawser",
            "--admin",
            &agents[2].admin,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("NOERROR"), "{text}");
    assert!(
        text.contains("n1.node.hawser.\t5\tIN\tA\t127.0.0.1"),
        "{text}"
    );
    let out = hawser()
        .args(["dns", "records", "--admin", &agents[1].admin])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("www.hawser.") && text.contains("CNAME"),
        "{text}"
    );
    // A member that is gone stops being answered.
    agents[2].kill9();
    wait_for("n0 to stop answering n2.node.hawser.", 15, || {
        let a = ask(servers[0], "n2.node.hawser.", RecordType::A, false).ok()?;
        (rcode(&a) == ResponseCode::NXDomain).then_some(())
    });
}

#[test]
fn a_silent_first_upstream_costs_a_client_nothing_and_is_used_again_when_back() {
    let first = Upstream::start(FIRST);
    let second = Upstream::start(SECOND);
    first.set(Mode::Silent);
    let dir = tempfile::tempdir().unwrap();
    let mut a = dns_agent(dir.path(), "n0", &upstreams(&[&first, &second]));
    a.start();
    let server = dns_addr(&a);
    let ask_as = |i: usize| ask(server, &format!("q{i}.example."), RecordType::A, false).unwrap();
    // Before the first upstream's first attempts time out (its RTT unknown: 1.5 s), each
    // query is hedged to the second after 5 ms.
    let mut cold = Duration::ZERO;
    let started = Instant::now();
    let mut i = 0;
    let in_rotation = format!(
        "hawser_dns_upstream_in_rotation{{upstream=\"{}\"",
        first.addr
    );
    loop {
        // Every shard's gauge says 0 (each has it out of rotation).
        let shards = metrics(&a, &in_rotation);
        if !shards.is_empty() && shards.iter().all(|v| *v == 0.0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the first upstream stayed in rotation"
        );
        let answer = ask_as(i);
        assert_eq!(a_records(&answer), [SECOND.to_string()], "query {i}");
        cold = cold.max(answer.elapsed);
        i += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    // Then it is out of rotation, and queries go to the second at once.
    let mut times = Vec::new();
    for _ in 0..200 {
        let answer = ask_as(i);
        assert_eq!(a_records(&answer), [SECOND.to_string()], "query {i}");
        times.push(answer.elapsed);
        i += 1;
    }
    times.sort();
    let (p50, worst) = (times[100], times[199]);
    eprintln!(
        "dead first upstream: slowest answer before it left rotation {cold:?}; after, \
         p50 {p50:?}, slowest {worst:?}"
    );
    assert!(cold < Duration::from_millis(50), "a query waited {cold:?}");
    assert!(
        worst < Duration::from_millis(20),
        "a query waited {worst:?}"
    );
    // It comes back: the next queries find it within a few probe intervals.
    first.set(Mode::Answer);
    let back = Instant::now();
    let took = loop {
        let answer = ask_as(i);
        i += 1;
        if a_records(&answer) == [FIRST.to_string()] {
            break back.elapsed();
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "the first upstream was not used again"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    eprintln!("the first upstream answered again {took:?} after it returned");
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn forged_replies_are_ignored() {
    let first = Upstream::start(FIRST);
    first.set(Mode::Spoof);
    let dir = tempfile::tempdir().unwrap();
    let mut a = dns_agent(dir.path(), "n0", &upstreams(&[&first]));
    a.start();
    let server = dns_addr(&a);
    for i in 0..10 {
        let answer = ask(server, &format!("bank{i}.example."), RecordType::A, false).unwrap();
        assert_eq!(a_records(&answer), [FIRST.to_string()]);
        assert!(!a_records(&answer).contains(&FORGED.to_string()));
    }
    wait_for("the forged replies to be counted", 5, || {
        (metric(&a, "hawser_dns_upstream_ignored_total") >= 20.0).then_some(())
    });
}

#[test]
fn a_truncated_answer_is_fetched_whole_over_tcp() {
    let first = Upstream::start(FIRST);
    first.set(Mode::Large);
    let dir = tempfile::tempdir().unwrap();
    let mut a = dns_agent(dir.path(), "n0", &upstreams(&[&first]));
    a.start();
    let server = dns_addr(&a);
    let answer = ask(server, "big.example.", RecordType::A, false).unwrap();
    assert!(answer.tcp, "the UDP answer was not truncated");
    assert_eq!(a_records(&answer).len(), 128);
    // The cluster zone does the same with its own records.
    for i in 0..128 {
        add(&a, "many", "A", &format!("198.18.8.{i}"));
    }
    let answer = ask(server, "many.hawser.", RecordType::A, false).unwrap();
    assert!(answer.tcp);
    assert_eq!(a_records(&answer).len(), 128);
}

#[test]
fn error_rcodes_move_on_and_dead_upstreams_give_servfail() {
    let first = Upstream::start(FIRST);
    let second = Upstream::start(SECOND);
    first.set(Mode::ServFail);
    let dir = tempfile::tempdir().unwrap();
    let mut a = dns_agent(dir.path(), "n0", &upstreams(&[&first, &second]));
    a.start();
    let server = dns_addr(&a);
    let answer = ask(server, "x.example.", RecordType::A, false).unwrap();
    assert_eq!(a_records(&answer), [SECOND.to_string()]);
    first.set(Mode::Silent);
    second.set(Mode::Silent);
    let answer = ask(server, "y.example.", RecordType::A, false).unwrap();
    assert_eq!(rcode(&answer), ResponseCode::ServFail);
    assert!(
        answer.elapsed < Duration::from_secs(2),
        "{:?}",
        answer.elapsed
    );
    // Over TCP too.
    let answer = ask(server, "z.example.", RecordType::A, true).unwrap();
    assert_eq!(rcode(&answer), ResponseCode::ServFail);
}

#[test]
fn overload_is_refused_and_counted() {
    let first = Upstream::start(FIRST);
    first.set(Mode::Slow(500));
    let dir = tempfile::tempdir().unwrap();
    let mut a = dns_agent(
        dir.path(),
        "n0",
        &format!("{}max_in_flight = 4\nshards = 1\n", upstreams(&[&first])),
    );
    a.start();
    let server = dns_addr(&a);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    for i in 0..20u16 {
        client
            .send_to(&query(i, &format!("o{i}.example.")), server)
            .unwrap();
    }
    let mut rcodes = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        let (n, _) = client.recv_from(&mut buf).unwrap();
        rcodes.push(Message::from_vec(&buf[..n]).unwrap().metadata.response_code);
    }
    let refused = rcodes
        .iter()
        .filter(|r| **r == ResponseCode::Refused)
        .count();
    let answered = rcodes
        .iter()
        .filter(|r| **r == ResponseCode::NoError)
        .count();
    assert_eq!((answered, refused), (4, 16), "{rcodes:?}");
    wait_for("the overload to be counted", 5, || {
        (metric(&a, "hawser_dns_overloaded_total") == 16.0).then_some(())
    });
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

#[test]
fn bad_input_gets_formerr_or_a_closed_connection_and_a_counter() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut a = dns_agent(dir.path(), "n0", "tcp_idle_ms = 300\n");
    a.start();
    let server = dns_addr(&a);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut exchange = |bytes: &[u8]| -> Option<Message> {
        client.send_to(bytes, server).unwrap();
        let (n, _) = client.recv_from(&mut buf).ok()?;
        Some(Message::from_vec(&buf[..n]).unwrap())
    };
    // Garbage and a response: no reply.
    assert!(exchange(&[0xde, 0xad]).is_none());
    let mut response = query(1, "a.hawser.");
    response[2] |= 0x80;
    assert!(exchange(&response).is_none());
    // 100 questions, a truncated message, a compression-pointer loop: FORMERR.
    let mut many = query(2, "a.hawser.");
    many[5] = 100;
    let mut looped = query(3, "a.hawser.")[..12].to_vec();
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let good = query(4, "a.hawser.");
    for bad in [many, good[..good.len() - 2].to_vec(), looped] {
        let r = exchange(&bad).expect("an answer to a malformed query");
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    }
    // TCP: an announced length no query has, and a client that sends nothing: closed.
    let mut huge = std::net::TcpStream::connect(server).unwrap();
    huge.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap();
    let mut silent = std::net::TcpStream::connect(server).unwrap();
    for s in [&mut huge, &mut silent] {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut b = [0u8; 1];
        let closed_at = Instant::now();
        assert_eq!(s.read(&mut b).unwrap_or(0), 0, "the connection stayed open");
        assert!(closed_at.elapsed() < Duration::from_secs(2));
    }
    // The server still answers, and counted all of it.
    let ok = ask(server, "n0.node.hawser.", RecordType::A, false).unwrap();
    assert_eq!(rcode(&ok), ResponseCode::NoError);
    wait_for("the refusals to be counted", 5, || {
        let malformed = metric(&a, "hawser_dns_malformed_total");
        let closed = metric(&a, "hawser_dns_tcp_closed_total");
        (malformed == 5.0 && closed == 2.0).then_some(())
    });
}

#[test]
fn a_burst_of_datagrams_is_answered_whole() {
    // More datagrams waiting at once than a shard takes per wake-up: none may be read
    // and then dropped between two batches.
    let dir = tempfile::tempdir().unwrap();
    let mut a = dns_agent(dir.path(), "n0", "shards = 1\n");
    a.start();
    let server = dns_addr(&a);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Room for every answer on this side too.
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let n = 500u16;
    for i in 0..n {
        client
            .send_to(&query(i, "n0.node.hawser."), server)
            .unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut buf = [0u8; 4096];
    while let Ok((len, _)) = client.recv_from(&mut buf) {
        seen.insert(Message::from_vec(&buf[..len]).unwrap().metadata.id);
        if seen.len() == n as usize {
            break;
        }
    }
    assert_eq!(seen.len(), n as usize, "answers lost in a burst");
}
