//! Entry points for fuzzing, shared by the cargo-fuzz targets in `fuzz/` and by the
//! stable test that replays their corpus (`tests/tests/fuzz_corpus.rs` at the top of the tree), so both run exactly
//! the same code. Each takes arbitrary bytes, must never panic, and checks what the
//! server promises about its output.

use std::net::SocketAddr;

use hawser_core::NodeId;
use hawser_core::crdt::{Actor, Map};
use hawser_core::time::{Duration, Instant};
use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::Name;
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::A;

use crate::dns::message::CLASSIC_UDP;
use crate::dns::records::{self, Data, Kind, Record};
use crate::dns::{Client, DnsConfig, DnsServer, NoVips, Transmit, Transport, Zone};

const UPSTREAM: &str = "127.0.10.1:53";

fn zone() -> Zone {
    let apex = Name::from_ascii("hawser.").expect("valid");
    let mut zone = Zone::new(apex.clone(), Vec::new(), 5, 2);
    zone.set_members([("n1", "198.18.0.1".parse().expect("valid"))]);
    let mut map = Map::new();
    for (kind, value) in [(Kind::A, "198.18.1.1"), (Kind::Txt, "hello")] {
        let r = Record {
            data: Data::parse(kind, value, &apex).expect("valid"),
            ttl: 30,
        };
        let op = records::add_op(Some(&map), &r).expect("valid");
        map.apply(Actor::new(NodeId(1), 1), &op).expect("valid");
    }
    zone.set_records(
        records::parse_owner("web", &apex).expect("valid"),
        Some(&map),
    );
    zone
}

/// Untrusted bytes as a query from a UDP client and from a TCP client, and as a reply
/// from an upstream: the server answers each query at most once, with a message that
/// decodes, carries the query's ID and fits what a UDP client takes.
pub fn dns_query(data: &[u8]) {
    let upstream: SocketAddr = UPSTREAM.parse().expect("valid");
    let config = DnsConfig {
        upstreams: vec![upstream],
        ..DnsConfig::default()
    };
    let mut server = DnsServer::new(config, 1).expect("valid config");
    let zone = zone();
    let now = Instant::ZERO;
    let udp = Client::Udp("127.0.0.1:4000".parse().expect("valid"));
    for client in [udp, Client::Tcp(1)] {
        server.handle_query(now, &zone, &NoVips, client, data);
    }
    // The input also comes back as an upstream's reply (ignored unless it matches), then
    // whatever went upstream is answered properly.
    let (mut replies, sent) = drain(&mut server);
    server.handle_reply(now, upstream, Transport::Udp, data);
    for (transport, query) in sent {
        let query = Message::from_vec(&query).expect("what goes upstream decodes");
        let mut answer = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        answer.add_queries(query.queries.clone());
        answer.edns = query.edns.clone();
        if let Some(q) = query.queries.first() {
            answer.add_answer(hickory_proto::rr::Record::from_rdata(
                q.name().clone(),
                60,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        let bytes = answer.to_vec().expect("encodes");
        server.handle_reply(now, upstream, transport, &bytes);
    }
    replies.extend(drain(&mut server).0);
    server.handle_timeout(now + Duration::from_secs(10));
    replies.extend(drain(&mut server).0);
    assert!(replies.len() <= 2, "more than one reply per query");
    for (to, bytes) in &replies {
        let reply = Message::from_vec(bytes).expect("replies decode");
        assert_eq!(&bytes[..2], &data[..2], "a reply carries the query's ID");
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        if matches!(to, Client::Udp(_)) {
            let edns = Message::from_vec(data)
                .ok()
                .and_then(|q| q.edns.map(|e| e.max_payload()));
            let limit = edns.map_or(CLASSIC_UDP, |e| (e as usize).clamp(CLASSIC_UDP, 1232));
            assert!(
                bytes.len() <= limit,
                "a UDP reply larger than the client takes"
            );
        }
    }
    assert_eq!(
        server.in_flight(),
        0,
        "a query left in flight after its deadline"
    );
}

type Sent = Vec<(Transport, Vec<u8>)>;

/// Everything the server has to send: to clients, and upstream.
fn drain(server: &mut DnsServer) -> (Vec<(Client, Vec<u8>)>, Sent) {
    let (mut replies, mut sent) = (Vec::new(), Vec::new());
    while let Some(t) = server.poll_transmit() {
        match t {
            Transmit::Client { to, bytes } => replies.push((to, bytes)),
            Transmit::Upstream {
                transport, bytes, ..
            } => sent.push((transport, bytes)),
        }
    }
    (replies, sent)
}
