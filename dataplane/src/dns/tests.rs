//! The server end to end in virtual time: the zone's answers, and the forwarder's
//! timing against upstreams that answer, stay silent, fail or lie, with no sockets and
//! no sleeping.

use std::net::{IpAddr, SocketAddr};

use hawser_core::NodeId;
use hawser_core::crdt::{Actor, Map};
use hawser_core::time::{Duration, Instant};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record as Rr, RecordType};

use super::records::{self, Data, Kind, Record};
use super::*;
use crate::lb::ProgrammedNames;

const CLIENT: &str = "127.0.0.1:40000";
const FIRST: &str = "127.0.10.1:53";
const SECOND: &str = "127.0.10.2:53";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(t: Duration) -> Instant {
    Instant::ZERO + t
}

fn query_with(id: u16, qname: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(qname), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn query(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
    query_with(id, qname, qtype, false)
}

/// An upstream's answer to `q`: one A record, or `rcode` with nothing.
fn upstream_reply(q: &[u8], rcode: ResponseCode, ttl: u32) -> Vec<u8> {
    let q = Message::from_vec(q).unwrap();
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    m.add_queries(q.queries.clone());
    if rcode == ResponseCode::NoError {
        m.add_answer(Rr::from_rdata(
            q.queries[0].name().clone(),
            ttl,
            RData::A(A::new(192, 0, 2, 7)),
        ));
    }
    m.to_vec().unwrap()
}

fn decode(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).unwrap()
}

struct Harness {
    server: DnsServer,
    zone: Zone,
    /// What the load balancer has programmed (empty unless a test fills it).
    vips: ProgrammedNames,
    now: Instant,
}

impl Harness {
    fn new(config: DnsConfig) -> Harness {
        let zone = Zone::new(
            config.zone.clone(),
            vec!["198.18.0.53".parse().unwrap()],
            config.node_ttl,
            config.negative_ttl,
        );
        Harness {
            server: DnsServer::new(config, 7).unwrap(),
            zone,
            vips: ProgrammedNames::new(),
            now: Instant::ZERO,
        }
    }

    fn forwarding() -> Harness {
        Harness::new(DnsConfig {
            upstreams: vec![addr(FIRST), addr(SECOND)],
            ..DnsConfig::default()
        })
    }

    fn ask(&mut self, bytes: &[u8]) {
        self.ask_as(Client::Udp(addr(CLIENT)), bytes);
    }

    fn ask_as(&mut self, client: Client, bytes: &[u8]) {
        self.server
            .handle_query(self.now, &self.zone, &self.vips, client, bytes);
    }

    /// Advance virtual time to `t`, firing every deadline on the way.
    fn run_to(&mut self, t: Duration) {
        let end = at(t);
        while let Some(d) = self.server.poll_timeout() {
            if d > end {
                break;
            }
            self.now = self.now.max(d);
            self.server.handle_timeout(self.now);
        }
        self.now = self.now.max(end);
    }

    fn drain(&mut self) -> (Vec<Message>, Vec<(SocketAddr, Vec<u8>)>) {
        let (mut replies, mut sent) = (Vec::new(), Vec::new());
        while let Some(t) = self.server.poll_transmit() {
            match t {
                Transmit::Client { bytes, .. } => replies.push(decode(&bytes)),
                Transmit::Upstream { to, bytes, .. } => sent.push((to, bytes)),
            }
        }
        (replies, sent)
    }

    fn answer(&mut self, from: &str, q: &[u8], rcode: ResponseCode) {
        let r = upstream_reply(q, rcode, 60);
        self.server
            .handle_reply(self.now, addr(from), Transport::Udp, &r);
    }

    fn add_records(&mut self, owner: &str, values: &[(&str, &str)]) {
        let owner = records::parse_owner(owner, self.zone.apex()).unwrap();
        let mut map = Map::new();
        for (kind, value) in values {
            let r = Record {
                data: Data::parse(Kind::parse(kind).unwrap(), value, self.zone.apex()).unwrap(),
                ttl: 30,
            };
            let op = records::add_op(Some(&map), &r).unwrap();
            map.apply(Actor::new(NodeId(1), 1), &op).unwrap();
        }
        self.zone.set_records(owner, Some(&map));
    }

    fn local(&mut self, qname: &str, qtype: RecordType) -> Message {
        self.ask(&query(1, qname, qtype));
        let (mut replies, sent) = self.drain();
        assert!(sent.is_empty(), "a zone name went upstream");
        assert_eq!(replies.len(), 1);
        replies.remove(0)
    }
}

fn ips(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.data.to_string()).collect()
}

// ------------------------------------------------------------------ the zone

#[test]
fn named_vips_are_answered_once_programmed() {
    let mut h = Harness::new(DnsConfig::default());
    // Published in the KV but not yet programmed here: not answered.
    let m = h.local("web.vip.hawser.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    h.vips.set(
        [(
            "web".to_owned(),
            vec!["11.0.0.5".parse().unwrap(), "fd01:c::5".parse().unwrap()],
        )]
        .into(),
    );
    let m = h.local("WEB.vip.hawser.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(ips(&m), ["11.0.0.5"]);
    assert_eq!(
        ips(&h.local("web.vip.hawser.", RecordType::AAAA)),
        ["fd01:c::5"]
    );
    for missing in ["api.vip.hawser.", "a.web.vip.hawser."] {
        let m = h.local(missing, RecordType::A);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NXDomain,
            "{missing}"
        );
    }
    // Withdrawn from the kernel: the next query no longer finds it.
    h.vips.set(Default::default());
    let m = h.local("web.vip.hawser.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn members_are_answered_while_reachable() {
    let mut h = Harness::new(DnsConfig::default());
    let v6: IpAddr = "2001:db8::2".parse().unwrap();
    h.zone.set_members([
        ("n1", "198.18.0.1".parse().unwrap()),
        ("n2", v6),
        ("bad.", "198.18.0.9".parse().unwrap()),
    ]);
    let m = h.local("N1.node.hawser.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(ips(&m), ["198.18.0.1"]);
    assert_eq!(m.answers[0].ttl, 5);
    assert_eq!(
        ips(&h.local("n2.node.hawser.", RecordType::AAAA)),
        ["2001:db8::2"]
    );
    // n2 has no IPv4 address: it exists, with no A record.
    let m = h.local("n2.node.hawser.", RecordType::A);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
    // n1 becomes unreachable: the next query no longer finds it.
    h.zone.set_members([("n2", v6)]);
    let m = h.local("n1.node.hawser.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(h.zone.skipped, 1);
}

#[test]
fn unknown_names_get_nxdomain_with_the_soa_and_empty_ones_nodata() {
    let mut h = Harness::new(DnsConfig::default());
    h.add_records("a.b.svc", &[("A", "198.18.1.1")]);
    let m = h.local("missing.hawser.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let soa = &m.name_servers_or_authorities()[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.ttl, 2);
    // b.svc.hawser. has a name below it: it exists, with no records.
    let m = h.local("b.svc.hawser.", RecordType::A);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(m.name_servers_or_authorities().len(), 1);
    let m = h.local("a.b.svc.hawser.", RecordType::TXT);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
    // The apex: SOA and NS; ns.<zone>: this node's DNS address.
    assert_eq!(h.local("hawser.", RecordType::SOA).answers.len(), 1);
    let ns = h.local("hawser.", RecordType::NS);
    assert_eq!(ns.answers[0].data.to_string(), "ns.hawser.");
    assert_eq!(ips(&h.local("ns.hawser.", RecordType::A)), ["198.18.0.53"]);
    // Zone transfers are refused.
    assert_eq!(
        h.local("hawser.", RecordType::AXFR).metadata.response_code,
        ResponseCode::Refused
    );
}

trait Authorities {
    fn name_servers_or_authorities(&self) -> &[Rr];
}

impl Authorities for Message {
    fn name_servers_or_authorities(&self) -> &[Rr] {
        &self.authorities
    }
}

#[test]
fn cname_chains_are_followed_in_order() {
    let mut h = Harness::new(DnsConfig::default());
    h.add_records("www", &[("CNAME", "web")]);
    h.add_records("web", &[("CNAME", "backend.svc")]);
    h.add_records("backend.svc", &[("A", "198.18.2.1"), ("A", "198.18.2.2")]);
    h.add_records("out", &[("CNAME", "example.com.")]);
    h.add_records("loop1", &[("CNAME", "loop2")]);
    h.add_records("loop2", &[("CNAME", "loop1")]);
    let m = h.local("www.hawser.", RecordType::A);
    let kinds: Vec<RecordType> = m.answers.iter().map(Rr::record_type).collect();
    assert_eq!(
        kinds,
        [
            RecordType::CNAME,
            RecordType::CNAME,
            RecordType::A,
            RecordType::A
        ]
    );
    assert_eq!(m.answers[0].name.to_ascii(), "www.hawser.");
    assert_eq!(m.answers[1].name.to_ascii(), "web.hawser.");
    assert_eq!(m.answers[2].name.to_ascii(), "backend.svc.hawser.");
    // Asking for the CNAME itself does not follow it.
    assert_eq!(h.local("www.hawser.", RecordType::CNAME).answers.len(), 1);
    // Out of the zone: the CNAME, and the client goes on from there.
    let m = h.local("out.hawser.", RecordType::A);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 1)
    );
    // A loop stops after the chain limit, with an answer all the same.
    let m = h.local("loop1.hawser.", RecordType::A);
    assert_eq!(m.answers.len(), 8);
    // A chain that ends nowhere: NXDOMAIN for the last name, with the chain.
    h.add_records("dangling", &[("CNAME", "nothing")]);
    let m = h.local("dangling.hawser.", RecordType::A);
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NXDomain, 1)
    );
}

#[test]
fn answers_rotate_per_query() {
    let mut h = Harness::new(DnsConfig::default());
    h.add_records(
        "rr",
        &[
            ("A", "198.18.3.1"),
            ("A", "198.18.3.2"),
            ("A", "198.18.3.3"),
        ],
    );
    let firsts: Vec<String> = (0..6)
        .map(|_| ips(&h.local("rr.hawser.", RecordType::A))[0].clone())
        .collect();
    assert_eq!(
        firsts,
        [
            "198.18.3.1",
            "198.18.3.2",
            "198.18.3.3",
            "198.18.3.1",
            "198.18.3.2",
            "198.18.3.3"
        ]
    );
}

#[test]
fn many_records_are_truncated_over_udp_and_whole_over_tcp() {
    let mut h = Harness::new(DnsConfig::default());
    let values: Vec<String> = (0..128).map(|i| format!("198.18.4.{i}")).collect();
    let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("A", v.as_str())).collect();
    h.add_records("big", &pairs);
    let m = h.local("big.hawser.", RecordType::A);
    assert!(m.metadata.truncation && m.answers.is_empty());
    h.ask_as(Client::Tcp(1), &query(2, "big.hawser.", RecordType::A));
    let (replies, _) = h.drain();
    assert!(!replies[0].metadata.truncation);
    assert_eq!(replies[0].answers.len(), 128);
    // With EDNS the client takes more, still not 128 records.
    h.ask(&query_with(3, "big.hawser.", RecordType::A, true));
    let (replies, _) = h.drain();
    assert!(replies[0].metadata.truncation && replies[0].edns.is_some());
}

#[test]
fn partition_writes_to_one_name_are_both_served_after_the_merge() {
    let mut h = Harness::new(DnsConfig::default());
    let owner = records::parse_owner("api", h.zone.apex()).unwrap();
    let rec = |v: &str| Record {
        data: Data::parse(Kind::A, v, h.zone.apex()).unwrap(),
        ttl: 30,
    };
    let (mut left, mut right) = (Map::new(), Map::new());
    left.apply(
        Actor::new(NodeId(1), 1),
        &records::add_op(None, &rec("198.18.5.1")).unwrap(),
    )
    .unwrap();
    right
        .apply(
            Actor::new(NodeId(2), 1),
            &records::add_op(None, &rec("198.18.5.2")).unwrap(),
        )
        .unwrap();
    left.merge(&right);
    h.zone.set_records(owner, Some(&left));
    let mut got = ips(&h.local("api.hawser.", RecordType::A));
    got.sort();
    assert_eq!(got, ["198.18.5.1", "198.18.5.2"]);
}

#[test]
fn the_serial_is_a_function_of_the_content() {
    let mut a = Harness::new(DnsConfig::default());
    let mut b = Harness::new(DnsConfig::default());
    a.add_records("x", &[("A", "198.18.6.1")]);
    a.add_records("y", &[("TXT", "hello")]);
    b.add_records("y", &[("TXT", "hello")]);
    b.add_records("x", &[("A", "198.18.6.1")]);
    assert_eq!(a.zone.serial(), b.zone.serial());
    b.add_records("x", &[("A", "198.18.6.2")]);
    assert_ne!(a.zone.serial(), b.zone.serial());
}

// ------------------------------------------------------------------ the forwarder

#[test]
fn a_healthy_first_upstream_answers_alone() {
    let mut h = Harness::forwarding();
    h.ask(&query(0x4242, "www.example.", RecordType::A));
    let (_, sent) = h.drain();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(FIRST));
    // Our own ID upstream, not the client's.
    let q = sent[0].1.clone();
    h.run_to(ms(1));
    h.answer(FIRST, &q, ResponseCode::NoError);
    let (replies, sent) = h.drain();
    assert!(sent.is_empty());
    assert_eq!(replies[0].metadata.id, 0x4242);
    assert_eq!(ips(&replies[0]), ["192.0.2.7"]);
    assert_eq!(h.server.counters().answered_from(Source::Forwarded), 1);
    assert_eq!(h.server.in_flight(), 0);
    assert_eq!(h.server.attempts(), 0);
}

#[test]
fn a_silent_first_upstream_costs_one_hedge_then_nothing() {
    let mut h = Harness::forwarding();
    // First queries: the first upstream never answers; the second does at once.
    let mut second_answers = Vec::new();
    for i in 0..5u16 {
        let start = h.now;
        h.ask(&query(i, &format!("q{i}.example."), RecordType::A));
        let (_, sent) = h.drain();
        assert_eq!(sent[0].0, addr(FIRST));
        h.run_to(start.saturating_since(Instant::ZERO) + ms(5));
        let (_, hedged) = h.drain();
        assert_eq!(hedged.len(), 1, "query {i}: the hedge went out at 5 ms");
        assert_eq!(hedged[0].0, addr(SECOND));
        h.answer(SECOND, &hedged[0].1, ResponseCode::NoError);
        let (replies, _) = h.drain();
        assert_eq!(replies.len(), 1);
        second_answers.push(h.now.saturating_since(start));
        h.run_to(h.now.saturating_since(Instant::ZERO) + ms(1));
    }
    assert!(second_answers.iter().all(|d| *d == ms(5)));
    // Its RTT unknown, its attempts time out after attempt_timeout_min (200 ms): three
    // timeouts take it out of rotation.
    h.run_to(ms(260));
    assert!(!h.server.upstreams()[0].is_up());
    let mut events = Vec::new();
    while let Some(e) = h.server.poll_event() {
        events.push(e);
    }
    assert!(events.contains(&DnsEvent::UpstreamDown {
        upstream: addr(FIRST),
        failures: 3
    }));
    // Now a query goes straight to the second (and a probe copy to the first, at most
    // once per probe interval).
    let mut probes = 0;
    for i in 0..20u16 {
        h.ask(&query(100 + i, &format!("r{i}.example."), RecordType::A));
        let (_, sent) = h.drain();
        let to_second: Vec<_> = sent.iter().filter(|(a, _)| *a == addr(SECOND)).collect();
        assert_eq!(to_second.len(), 1, "query {i} went to the second at once");
        probes += sent.iter().filter(|(a, _)| *a == addr(FIRST)).count();
        h.answer(SECOND, &to_second[0].1, ResponseCode::NoError);
        let (replies, _) = h.drain();
        assert_eq!(replies.len(), 1, "answered without waiting");
        h.run_to(h.now.saturating_since(Instant::ZERO) + ms(5));
    }
    // 20 queries over 100 ms, a probe per 20 ms at most.
    assert!((4..=6).contains(&probes), "{probes} probes");
    assert_eq!(h.server.counters().hedges, 5);
}

#[test]
fn a_returning_upstream_is_used_again_within_a_probe_interval() {
    let mut h = Harness::forwarding();
    // Take the first out: three queries it never answers.
    for i in 0..3u16 {
        h.ask(&query(i, &format!("q{i}.example."), RecordType::A));
    }
    h.drain();
    h.run_to(ms(300));
    h.drain();
    assert!(!h.server.upstreams()[0].is_up());
    // It is back from now: every query it is sent, it answers in 1 ms.
    let back = h.now;
    let mut used_again = None;
    for i in 0..50u16 {
        h.ask(&query(10 + i, &format!("b{i}.example."), RecordType::A));
        let (_, sent) = h.drain();
        h.run_to(h.now.saturating_since(Instant::ZERO) + ms(1));
        for (to, q) in &sent {
            let from = if *to == addr(FIRST) { FIRST } else { SECOND };
            h.answer(from, q, ResponseCode::NoError);
        }
        h.drain();
        if sent.len() == 1 && sent[0].0 == addr(FIRST) && used_again.is_none() {
            used_again = Some(h.now.saturating_since(back));
        }
        h.run_to(h.now.saturating_since(Instant::ZERO) + ms(2));
    }
    let after = used_again.expect("the first upstream was used again");
    assert!(after <= ms(25), "used again after {after:?}");
    assert!(h.server.upstreams()[0].is_up());
}

#[test]
fn upstreams_are_checked_at_start() {
    let mut h = Harness::forwarding();
    h.server.handle_start(h.now);
    let (_, sent) = h.drain();
    assert_eq!(sent.len(), 6, "three checks to each upstream");
    // The second answers its checks; the first is silent.
    for (to, q) in &sent {
        if *to == addr(SECOND) {
            h.answer(SECOND, q, ResponseCode::NoError);
        }
    }
    h.run_to(ms(201));
    assert!(!h.server.upstreams()[0].is_up());
    assert!(h.server.upstreams()[1].is_up() && h.server.upstreams()[1].srtt().is_some());
    // A client's first query goes to the second at once: nothing to hedge around (and,
    // a probe interval after the first went out, a copy probes it).
    h.run_to(ms(221));
    h.ask(&query(1, "first.example.", RecordType::A));
    let (_, sent) = h.drain();
    let mut to: Vec<SocketAddr> = sent.iter().map(|(a, _)| *a).collect();
    to.sort();
    assert_eq!(
        to,
        [addr(FIRST), addr(SECOND)],
        "the query, and a probe of the first"
    );
    assert_eq!(h.server.counters().checks, 6);
}

#[test]
fn forged_replies_are_ignored_and_the_real_one_taken() {
    let mut h = Harness::forwarding();
    h.ask(&query(9, "bank.example.", RecordType::A));
    let (_, sent) = h.drain();
    let q = sent[0].1.clone();
    let real = upstream_reply(&q, ResponseCode::NoError, 60);
    // Right ID, from another port.
    h.server
        .handle_reply(h.now, addr("127.0.10.1:5353"), Transport::Udp, &real);
    // Right source, wrong ID.
    let mut wrong_id = real.clone();
    wrong_id[0] ^= 0xff;
    h.server
        .handle_reply(h.now, addr(FIRST), Transport::Udp, &wrong_id);
    // Right source and ID, another question.
    let other = query(
        u16::from_be_bytes([q[0], q[1]]),
        "evil.example.",
        RecordType::A,
    );
    let forged = upstream_reply(&other, ResponseCode::NoError, 60);
    h.server
        .handle_reply(h.now, addr(FIRST), Transport::Udp, &forged);
    // Right everything, over TCP where nothing was asked.
    h.server
        .handle_reply(h.now, addr(FIRST), Transport::Tcp, &real);
    // Garbage.
    h.server
        .handle_reply(h.now, addr(FIRST), Transport::Udp, &[q[0], q[1], 0xff]);
    let (replies, _) = h.drain();
    assert!(replies.is_empty(), "a forged reply reached the client");
    let c = h.server.counters();
    assert_eq!(c.ignored.get(&Ignored::UnknownSource), Some(&1));
    assert_eq!(c.ignored.get(&Ignored::UnknownId), Some(&2));
    assert_eq!(c.ignored.get(&Ignored::Mismatch), Some(&1));
    assert_eq!(c.ignored.get(&Ignored::Undecodable), Some(&1));
    h.server
        .handle_reply(h.now, addr(FIRST), Transport::Udp, &real);
    let (replies, _) = h.drain();
    assert_eq!(ips(&replies[0]), ["192.0.2.7"]);
}

#[test]
fn a_slow_only_upstream_is_waited_for_while_its_rtt_is_unknown() {
    let mut h = Harness::new(DnsConfig {
        upstreams: vec![addr(FIRST)],
        ..DnsConfig::default()
    });
    h.ask(&query(1, "far.example.", RecordType::A));
    let (_, sent) = h.drain();
    h.run_to(ms(500));
    assert!(h.drain().0.is_empty(), "no SERVFAIL at the 200 ms timeout");
    h.answer(FIRST, &sent[0].1, ResponseCode::NoError);
    let (replies, _) = h.drain();
    assert_eq!(ips(&replies[0]), ["192.0.2.7"]);
    // Now its RTT is known (500 ms): the next attempt waits 8 of them, capped at 1.5 s.
    assert!(h.server.upstreams()[0].srtt().is_some());
}

#[test]
fn an_error_rcode_sends_the_query_on_at_once() {
    let mut h = Harness::forwarding();
    h.ask(&query(1, "x.example.", RecordType::A));
    let (_, sent) = h.drain();
    h.answer(FIRST, &sent[0].1, ResponseCode::ServFail);
    let (replies, sent) = h.drain();
    assert!(replies.is_empty());
    assert_eq!(sent[0].0, addr(SECOND));
    h.answer(SECOND, &sent[0].1, ResponseCode::NoError);
    let (replies, _) = h.drain();
    assert_eq!(replies[0].metadata.response_code, ResponseCode::NoError);
    assert_eq!(h.server.counters().upstream_errors, 1);
}

#[test]
fn every_upstream_dead_means_servfail_not_silence() {
    let mut h = Harness::forwarding();
    h.ask(&query(5, "x.example.", RecordType::A));
    h.drain();
    // Both attempts time out at 200 ms, but while the upstreams' RTTs are unknown their
    // answers are taken until 1.5 s after they were sent (the second was sent at 5 ms).
    h.run_to(ms(1_504));
    assert!(h.drain().0.is_empty());
    h.run_to(ms(1_506));
    let (replies, _) = h.drain();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].metadata.id, 5);
    assert_eq!(replies[0].metadata.response_code, ResponseCode::ServFail);
    // A server with no upstream at all refuses what it cannot answer.
    let mut lone = Harness::new(DnsConfig::default());
    lone.ask(&query(6, "x.example.", RecordType::A));
    let (replies, _) = lone.drain();
    assert_eq!(replies[0].metadata.response_code, ResponseCode::Refused);
}

#[test]
fn a_broken_tcp_connection_fails_over_at_once() {
    let mut h = Harness::forwarding();
    h.ask_as(Client::Tcp(3), &query(5, "x.example.", RecordType::A));
    let (_, sent) = h.drain();
    assert_eq!(sent[0].0, addr(FIRST));
    h.server.handle_connection_failed(h.now, addr(FIRST));
    let (_, sent) = h.drain();
    assert_eq!(sent[0].0, addr(SECOND));
    let r = upstream_reply(&sent[0].1, ResponseCode::NoError, 60);
    h.server
        .handle_reply(h.now, addr(SECOND), Transport::Tcp, &r);
    assert_eq!(h.drain().0.len(), 1);
}

#[test]
fn answers_are_cached_with_their_ttl_counted_down() {
    let mut h = Harness::forwarding();
    h.ask(&query(1, "c.example.", RecordType::A));
    let (_, sent) = h.drain();
    h.answer(FIRST, &sent[0].1, ResponseCode::NoError);
    h.drain();
    h.run_to(ms(3_000));
    h.ask(&query(2, "C.example.", RecordType::A));
    let (replies, sent) = h.drain();
    assert!(sent.is_empty(), "a cached answer went upstream");
    assert_eq!(replies[0].metadata.id, 2);
    assert_eq!(replies[0].queries[0].name().to_ascii(), "C.example.");
    assert_eq!(replies[0].answers[0].ttl, 57);
    assert_eq!(h.server.counters().answered_from(Source::Cached), 1);
    // Expired: upstream again.
    h.run_to(ms(61_000));
    h.ask(&query(3, "c.example.", RecordType::A));
    assert_eq!(h.drain().1.len(), 1);
}

#[test]
fn overload_is_refused_and_counted() {
    let mut h = Harness::new(DnsConfig {
        upstreams: vec![addr(FIRST)],
        max_in_flight: 2,
        ..DnsConfig::default()
    });
    for i in 0..3u16 {
        h.ask(&query(i, &format!("o{i}.example."), RecordType::A));
    }
    let (replies, sent) = h.drain();
    assert_eq!(sent.len(), 2);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].metadata.response_code, ResponseCode::Refused);
    assert_eq!(h.server.counters().overloaded, 1);
}

#[test]
fn memory_stays_bounded_against_a_dead_upstream_under_load() {
    let mut h = Harness::new(DnsConfig {
        upstreams: vec![addr(FIRST)],
        max_in_flight: 100,
        ..DnsConfig::default()
    });
    for i in 0..20_000u32 {
        h.ask(&query(i as u16, &format!("l{i}.example."), RecordType::A));
        h.drain();
        h.run_to(Duration::from_micros(u64::from(i) * 100));
        assert!(h.server.in_flight() <= 100);
        assert!(h.server.attempts() <= super::forward::MAX_ATTEMPTS);
    }
    h.run_to(ms(10_000));
    h.drain();
    assert_eq!((h.server.in_flight(), h.server.attempts()), (0, 0));
    assert!(h.server.poll_timeout().is_none());
}

#[test]
fn malformed_queries_are_refused_and_counted() {
    let mut h = Harness::forwarding();
    h.ask(&[1, 2, 3]);
    let mut many = query(7, "x.example.", RecordType::A);
    many[5] = 100;
    h.ask(&many);
    let (replies, sent) = h.drain();
    assert!(sent.is_empty());
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].metadata.response_code, ResponseCode::FormErr);
    let c = h.server.counters();
    assert_eq!(c.malformed.get(&Malformed::TooShort), Some(&1));
    assert_eq!(c.malformed.get(&Malformed::QuestionCount), Some(&1));
}

#[test]
fn forward_zones_pick_their_own_upstreams() {
    let mut h = Harness::new(DnsConfig {
        upstreams: vec![addr(FIRST)],
        forward_zones: vec![ForwardZone {
            domain: name("corp.example."),
            upstreams: vec![addr(SECOND)],
        }],
        ..DnsConfig::default()
    });
    h.ask(&query(1, "db.corp.example.", RecordType::A));
    h.ask(&query(2, "www.example.", RecordType::A));
    let (_, sent) = h.drain();
    let to: Vec<SocketAddr> = sent.iter().map(|(a, _)| *a).collect();
    assert_eq!(to, [addr(SECOND), addr(FIRST)]);
}

#[test]
fn the_same_seed_sends_the_same_bytes() {
    let run = || {
        let mut h = Harness::forwarding();
        let mut all = Vec::new();
        for i in 0..50u16 {
            h.ask(&query(i, &format!("d{i}.example."), RecordType::A));
            h.run_to(ms(u64::from(i) * 7));
            all.extend(h.drain().1);
        }
        all
    };
    assert_eq!(run(), run());
}

#[test]
fn negative_answers_from_upstream_are_cached_per_rfc_2308() {
    let mut h = Harness::forwarding();
    h.ask(&query(1, "none.example.", RecordType::A));
    let (_, sent) = h.drain();
    let q = Message::from_vec(&sent[0].1).unwrap();
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.response_code = ResponseCode::NXDomain;
    r.add_queries(q.queries.clone());
    let apex = name("example.");
    r.add_authority(Rr::from_rdata(
        apex.clone(),
        3600,
        RData::SOA(SOA::new(apex.clone(), apex, 1, 1, 1, 1, 10)),
    ));
    h.server
        .handle_reply(h.now, addr(FIRST), Transport::Udp, &r.to_vec().unwrap());
    assert_eq!(
        h.drain().0[0].metadata.response_code,
        ResponseCode::NXDomain
    );
    h.run_to(ms(9_000));
    h.ask(&query(2, "none.example.", RecordType::A));
    let (replies, sent) = h.drain();
    assert!(sent.is_empty());
    assert_eq!(replies[0].metadata.response_code, ResponseCode::NXDomain);
    h.run_to(ms(10_000));
    h.ask(&query(3, "none.example.", RecordType::A));
    assert_eq!(h.drain().1.len(), 1);
}
