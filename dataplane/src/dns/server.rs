//! The DNS server as one sans-IO state machine: queries and upstream replies in, with
//! the time; replies, upstream queries and events out; the next deadline. The driver owns
//! the sockets (see `output` for the drain rule) and the zone, which it passes in with
//! each query so that the answer comes from the replica as it is now.
//!
//! A query for the cluster zone is answered from the zone; anything else from the cache
//! if it holds a live answer, else it is forwarded (see `forward`). Each driver shard
//! runs its own server (own cache, own view of the upstreams' health), so the shards
//! share nothing but the zone.

use std::net::SocketAddr;

use hawser_core::NodeRng;
use hawser_core::time::Instant;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::RecordType;

use super::cache::{Cache, Key};
use super::config::{DnsConfig, DnsConfigError};
use super::counters::{DnsCounters, Source};
use super::forward::{Cx, Forwarder, Outcome, Pending};
use super::message::{self, CLASSIC_UDP, Malformed, Request, Transport, parse_request, set_id};
use super::output::{Client, DnsEvent, Output, Transmit};
use super::upstream::Upstream;
use super::zone::{VipNames, Zone};

pub struct DnsServer {
    config: DnsConfig,
    forwarder: Forwarder,
    cache: Cache,
    rng: NodeRng,
    /// Advances with every local answer: where its record set starts (round robin).
    rotation: usize,
    out: Output,
}

impl DnsServer {
    /// A server with `config`; `seed` drives the upstream query IDs (the agent draws it
    /// from the OS, a test fixes it).
    pub fn new(config: DnsConfig, seed: u64) -> Result<DnsServer, DnsConfigError> {
        config.validate()?;
        Ok(DnsServer {
            forwarder: Forwarder::new(&config),
            cache: Cache::new(config.cache_entries, config.cache_max_ttl),
            rng: NodeRng::from_seed(seed),
            rotation: 0,
            out: Output::default(),
            config,
        })
    }

    pub fn config(&self) -> &DnsConfig {
        &self.config
    }

    pub fn counters(&self) -> &DnsCounters {
        &self.out.counters
    }

    pub fn upstreams(&self) -> &[Upstream] {
        self.forwarder.upstreams()
    }

    /// Client queries being forwarded now.
    pub fn in_flight(&self) -> usize {
        self.forwarder.in_flight()
    }

    /// Upstream attempts still matched (in flight, or failed and kept for a late answer).
    pub fn attempts(&self) -> usize {
        self.forwarder.attempts()
    }

    /// Forwarded answers cached now.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The server starts: it checks its upstreams before any client asks.
    pub fn handle_start(&mut self, now: Instant) {
        let (forwarder, mut cx) = self.parts(now);
        forwarder.check_all(&mut cx);
    }

    /// A query from `client` (a UDP datagram, or one TCP message without its length).
    pub fn handle_query(
        &mut self,
        now: Instant,
        zone: &Zone,
        vips: &dyn VipNames,
        client: Client,
        bytes: &[u8],
    ) {
        let transport = client.transport();
        let offered = self.config.udp_payload;
        let request = match parse_request(bytes, offered) {
            Ok(r) => r,
            Err(refusal) => {
                self.out.counters.malformed(refusal.why);
                if let Some(reply) = refusal.reply {
                    let rcode = u16::from(reply[3] & 0x0f);
                    self.send(client, Source::Error, rcode, reply);
                }
                return;
            }
        };
        let limit = request.limit(transport, offered);
        let q = &request.question;
        if matches!(q.qtype, RecordType::AXFR | RecordType::IXFR) {
            return self.refuse(client, &request, ResponseCode::Refused);
        }
        if zone.contains(&q.name) {
            let found = zone.lookup(q, self.rotation, vips);
            self.rotation = self.rotation.wrapping_add(1);
            let reply = message::answer(
                &request,
                found.rcode,
                found.answers,
                found.authorities,
                offered,
            );
            let rcode = u16::from(found.rcode);
            return self.send(client, Source::Local, rcode, message::encode(&reply, limit));
        }
        let key = cache_key(&request);
        if let Some(cached) = self.cache.get(now, &key) {
            let reply = adapt(cached, &request, offered);
            let rcode = u16::from(reply.metadata.response_code);
            return self.send(
                client,
                Source::Cached,
                rcode,
                message::encode(&reply, limit),
            );
        }
        if self.forwarder.in_flight() >= self.config.max_in_flight {
            self.out.counters.overloaded += 1;
            return self.refuse(client, &request, ResponseCode::Refused);
        }
        let upstreams = self.config.upstreams_for(&q.name).to_vec();
        if upstreams.is_empty() {
            // Not a recursive server: with no upstream for a name, it does not answer it.
            return self.refuse(client, &request, ResponseCode::Refused);
        }
        // Upstreams get the query as decoded and encoded again, never the client's bytes:
        // those may hold compression pointers into the header, which mean something else
        // once the ID changes (found by the fuzzer), and an upstream need not see the
        // oddities a client put in.
        let Ok(bytes) = request.message.to_vec() else {
            self.out.counters.malformed(Malformed::Undecodable);
            return self.refuse(client, &request, ResponseCode::FormErr);
        };
        let (forwarder, mut cx) = self.parts(now);
        let ended = forwarder.start(&mut cx, client, request, bytes, &upstreams);
        self.conclude_all(now, ended);
    }

    /// A datagram (or TCP message) from an upstream.
    pub fn handle_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) {
        let (forwarder, mut cx) = self.parts(now);
        let ended = forwarder.reply(&mut cx, from, transport, bytes);
        self.conclude_all(now, ended);
    }

    /// The driver's TCP connection to `upstream` failed or closed with queries on it.
    pub fn handle_connection_failed(&mut self, now: Instant, upstream: SocketAddr) {
        let (forwarder, mut cx) = self.parts(now);
        let ended = forwarder.connection_failed(&mut cx, upstream);
        self.conclude_all(now, ended);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let (forwarder, mut cx) = self.parts(now);
        let ended = forwarder.timeout(&mut cx);
        self.conclude_all(now, ended);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DnsEvent> {
        self.out.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.forwarder.next_deadline()
    }

    /// The forwarder, and what its calls work with.
    fn parts(&mut self, now: Instant) -> (&mut Forwarder, Cx<'_>) {
        let cx = Cx {
            now,
            config: &self.config,
            rng: &mut self.rng,
            out: &mut self.out,
        };
        (&mut self.forwarder, cx)
    }

    fn send(&mut self, to: Client, source: Source, rcode: u16, bytes: Vec<u8>) {
        self.out.counters.answer(to.transport(), source, rcode);
        self.out.transmits.push_back(Transmit::Client { to, bytes });
    }

    fn refuse(&mut self, client: Client, request: &Request, rcode: ResponseCode) {
        let reply = message::reply_to(request, rcode, self.config.udp_payload);
        let bytes = message::encode(&reply, CLASSIC_UDP);
        self.send(client, Source::Error, u16::from(rcode), bytes);
    }

    fn conclude_all(&mut self, now: Instant, ended: impl IntoIterator<Item = Outcome>) {
        for outcome in ended {
            self.conclude(now, outcome);
        }
    }

    /// A forwarded query ended: answer the client, and cache a good answer.
    fn conclude(&mut self, now: Instant, outcome: Outcome) {
        match outcome {
            Outcome::Answered {
                pending,
                reply,
                mut bytes,
            } => {
                let Pending {
                    client, request, ..
                } = pending;
                let rcode = u16::from(reply.metadata.response_code);
                let limit = request.limit(client.transport(), self.config.udp_payload);
                if bytes.len() <= limit {
                    set_id(&mut bytes, request.id());
                } else {
                    // Larger than the client takes (an upstream that ignored the EDNS
                    // size): re-encode, truncated.
                    let mut m = reply.clone();
                    m.metadata.id = request.id();
                    bytes = message::encode(&m, limit);
                }
                self.cache.insert(now, cache_key(&request), &reply);
                self.send(client, Source::Forwarded, rcode, bytes);
            }
            Outcome::Failed { pending } => {
                self.refuse(pending.client, &pending.request, ResponseCode::ServFail);
            }
        }
    }
}

fn cache_key(request: &Request) -> Key {
    Key {
        question: request.question.clone(),
        dnssec_ok: request.dnssec_ok(),
        checking_disabled: request.message.metadata.checking_disabled,
    }
}

/// A cached answer made into the answer to `request`: its ID, flags, the question as
/// the client spelled it, and EDNS only if the client used it.
fn adapt(mut reply: Message, request: &Request, offered: u16) -> Message {
    let q = &request.message.metadata;
    reply.metadata.id = q.id;
    reply.metadata.recursion_desired = q.recursion_desired;
    reply.metadata.checking_disabled = q.checking_disabled;
    reply.metadata.authoritative = false;
    reply.queries = vec![Query::query(
        request.question.name.clone(),
        request.question.qtype,
    )];
    reply.edns = request.message.edns.as_ref().map(|e| {
        let mut edns = Edns::new();
        edns.set_max_payload(offered.max(CLASSIC_UDP as u16));
        edns.set_dnssec_ok(e.flags().dnssec_ok);
        edns
    });
    reply
}
