//! The forwarder: every query outside the cluster zone goes to the best upstream for
//! it, and to the next one too when the first has not answered within a hedge delay
//! derived from its own latency; the first good answer wins.
//!
//! - **Order.** The upstreams for a name (its longest forward zone, or the defaults) in
//!   configured order, those much slower than the fastest or failing often moved last,
//!   those out of rotation left out (see `upstream`). If all are out, all are tried.
//! - **Hedging.** A query goes to the first; after that upstream's hedge delay (a few
//!   RTTs: a few milliseconds on a LAN, not seconds) to the next, and so on. An error
//!   rcode (SERVFAIL, REFUSED, ...) or a failed attempt sends it on at once. When every
//!   upstream has failed, the client gets SERVFAIL; when `query_timeout` passes first,
//!   too. A client is never left without an answer.
//! - **Probes.** An upstream out of rotation gets a copy of a live query at most once per
//!   probe interval; its answer, if it comes first, is as good as any.
//! - **Matching.** A reply counts only if it comes from the address we sent to, over the
//!   same transport, with the ID we chose for that attempt (random, per attempt), and is
//!   a response to the same question. Anything else is ignored and counted (dcos-net
//!   took the first datagram from anyone). A forged reply cannot cancel the real one.
//! - **Failures.** An attempt unanswered for its adaptive timeout (eight RTTs, at least
//!   `attempt_timeout_min`) counts as a failure of its upstream, and the query moves
//!   on; the attempt stays matched until `attempt_timeout_max`, so a slow answer (a far
//!   upstream's first ones, an overloaded one's) still counts, and a query with nobody
//!   else to ask still gets it.
//! - **Bounds.** At most `max_in_flight` queries (the server refuses beyond), and at
//!   most [`MAX_ATTEMPTS`] attempts per upstream and transport, so the 16-bit ID space
//!   never fills; every record leaves the tables when its last timer fires.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use hawser_core::NodeRng;
use hawser_core::time::Instant;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use super::config::DnsConfig;
use super::counters::Ignored;
use super::message::{Question, Request, Transport, set_id};
use super::output::{Client, DnsEvent, Output, Transmit};
use super::upstream::{Health, Upstream};

/// A client query being forwarded.
#[derive(Debug)]
pub struct Pending {
    pub client: Client,
    pub request: Request,
    /// The query as it goes upstream; each attempt sends it with its own ID.
    pub bytes: Vec<u8>,
    /// Upstream indices, in the order they are asked.
    candidates: Vec<usize>,
    /// The next candidate to ask.
    next: usize,
    /// Attempts sent and neither answered nor failed.
    outstanding: usize,
    deadline: Instant,
    hedge_at: Option<Instant>,
}

/// How a forwarded query ended.
#[derive(Debug)]
pub enum Outcome {
    /// A good answer (NOERROR or NXDOMAIN, possibly truncated) from an upstream.
    Answered {
        pending: Pending,
        reply: Message,
        bytes: Vec<u8>,
    },
    /// Every upstream failed, or `query_timeout` passed.
    Failed { pending: Pending },
}

/// What every forwarder call works with: the time, the settings, the RNG for query IDs,
/// and the queues its outputs go to.
pub struct Cx<'a> {
    pub now: Instant,
    pub config: &'a DnsConfig,
    pub rng: &'a mut NodeRng,
    pub out: &'a mut Output,
}

type AttemptKey = (usize, Transport, u16);

/// The query id of health checks: no client query has it, so their answers only
/// judge the upstream.
const CHECK: u64 = u64::MAX;

#[derive(Debug)]
struct Attempt {
    query: u64,
    question: Question,
    sent: Instant,
    /// Its timeout passed (counted as a failure, the query moved on); it is still
    /// taken until its expiry.
    failed: bool,
    expiry: Instant,
    /// When its timer fires: the timeout, then the expiry.
    timer: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Hedge(u64),
    Deadline(u64),
    Attempt(AttemptKey),
}

#[derive(Debug)]
pub struct Forwarder {
    upstreams: Vec<Upstream>,
    queries: BTreeMap<u64, Pending>,
    attempts: BTreeMap<AttemptKey, Attempt>,
    /// Attempts held per upstream and transport (index: upstream * 2 + transport).
    held: Vec<usize>,
    timers: BTreeSet<(Instant, Timer)>,
    next_query: u64,
}

/// Attempts held per upstream and transport at most (queries are bounded by
/// `max_in_flight`; attempts outlive their query until they expire): a quarter of the
/// ID space, so a random ID is free at the first or second try.
pub(crate) const MAX_ATTEMPTS: usize = 16_384;

fn slot(upstream: usize, transport: Transport) -> usize {
    upstream * 2
        + match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        }
}

impl Forwarder {
    /// A forwarder for every upstream the configuration names, each once.
    pub fn new(config: &DnsConfig) -> Forwarder {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for a in config
            .upstreams
            .iter()
            .chain(config.forward_zones.iter().flat_map(|f| &f.upstreams))
        {
            if !addrs.contains(a) {
                addrs.push(*a);
            }
        }
        Forwarder {
            held: vec![0; addrs.len() * 2],
            upstreams: addrs.into_iter().map(Upstream::new).collect(),
            queries: BTreeMap::new(),
            attempts: BTreeMap::new(),
            timers: BTreeSet::new(),
            next_query: 0,
        }
    }

    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }

    /// Client queries being forwarded.
    pub fn in_flight(&self) -> usize {
        self.queries.len()
    }

    /// Attempts still matched (answered ones leave at once; failed ones at their expiry).
    pub fn attempts(&self) -> usize {
        self.attempts.len()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    fn index(&self, addr: SocketAddr) -> Option<usize> {
        self.upstreams.iter().position(|u| u.addr == addr)
    }

    /// Start forwarding a client's query to `upstreams` (as configured for its name).
    /// `Some` when it ended at once (nobody to ask).
    pub fn start(
        &mut self,
        cx: &mut Cx<'_>,
        client: Client,
        request: Request,
        bytes: Vec<u8>,
        upstreams: &[SocketAddr],
    ) -> Option<Outcome> {
        let indices: Vec<usize> = upstreams.iter().filter_map(|a| self.index(*a)).collect();
        let candidates = self.order(&indices);
        let id = self.next_query;
        self.next_query += 1;
        let deadline = cx.now + cx.config.query_timeout;
        let mut pending = Pending {
            client,
            request,
            bytes,
            candidates,
            next: 0,
            outstanding: 0,
            deadline,
            hedge_at: None,
        };
        if pending.candidates.is_empty() {
            return Some(Outcome::Failed { pending });
        }
        // Copies for upstreams out of rotation whose probe is due.
        let probes: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&u| !pending.candidates.contains(&u))
            .filter(|&u| self.upstreams[u].take_probe(cx.now, cx.config))
            .collect();
        for u in probes {
            if self.send(cx, id, &mut pending, u) {
                cx.out.counters.probes += 1;
            }
        }
        self.timers.insert((deadline, Timer::Deadline(id)));
        let sent = self.advance(cx, id, &mut pending);
        if sent {
            cx.out.counters.first_tries += 1;
        }
        if !sent && pending.outstanding == 0 {
            self.timers.remove(&(deadline, Timer::Deadline(id)));
            return Some(Outcome::Failed { pending });
        }
        self.queries.insert(id, pending);
        None
    }

    /// The indices in the order to ask them (see the module docs).
    fn order(&self, indices: &[usize]) -> Vec<usize> {
        let up: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&u| self.upstreams[u].is_up())
            .collect();
        if up.is_empty() {
            return indices.to_vec();
        }
        let best = up.iter().filter_map(|&u| self.upstreams[u].srtt()).min();
        let mut ordered = up;
        ordered.sort_by_key(|&u| self.upstreams[u].is_poor(best));
        ordered
    }

    /// Ask the next candidate that has room; arm the hedge timer if more remain.
    /// False if there was nobody left to ask.
    fn advance(&mut self, cx: &mut Cx<'_>, id: u64, pending: &mut Pending) -> bool {
        if let Some(t) = pending.hedge_at.take() {
            self.timers.remove(&(t, Timer::Hedge(id)));
        }
        while pending.next < pending.candidates.len() {
            let u = pending.candidates[pending.next];
            pending.next += 1;
            if !self.send(cx, id, pending, u) {
                continue;
            }
            if pending.next < pending.candidates.len() {
                let at = cx.now + self.upstreams[u].hedge_delay(cx.config);
                pending.hedge_at = Some(at);
                self.timers.insert((at, Timer::Hedge(id)));
            }
            return true;
        }
        false
    }

    /// Send the query to upstream `u` with a fresh ID. False if `u` has no room.
    fn send(&mut self, cx: &mut Cx<'_>, id: u64, pending: &mut Pending, u: usize) -> bool {
        let sent = self.attempt(
            cx,
            u,
            pending.client.transport(),
            id,
            &pending.request.question,
            &pending.bytes,
        );
        if sent {
            pending.outstanding += 1;
        }
        sent
    }

    /// Send `bytes` (a query for `question`) to upstream `u` with a fresh ID, as an
    /// attempt of query `id`. False if `u` has no room.
    fn attempt(
        &mut self,
        cx: &mut Cx<'_>,
        u: usize,
        transport: Transport,
        id: u64,
        question: &Question,
        bytes: &[u8],
    ) -> bool {
        if self.held[slot(u, transport)] >= MAX_ATTEMPTS {
            return false;
        }
        let Some(qid) = (0..8)
            .map(|_| cx.rng.u64() as u16)
            .find(|q| !self.attempts.contains_key(&(u, transport, *q)))
        else {
            return false;
        };
        let key = (u, transport, qid);
        let timer = cx.now + self.upstreams[u].attempt_timeout(cx.config);
        self.attempts.insert(
            key,
            Attempt {
                query: id,
                question: question.clone(),
                sent: cx.now,
                failed: false,
                expiry: cx.now + cx.config.attempt_timeout_max,
                timer,
            },
        );
        self.held[slot(u, transport)] += 1;
        self.timers.insert((timer, Timer::Attempt(key)));
        let mut bytes = bytes.to_vec();
        set_id(&mut bytes, qid);
        cx.out.transmits.push_back(Transmit::Upstream {
            to: self.upstreams[u].addr,
            transport,
            bytes,
        });
        true
    }

    /// Ask every upstream for the root's NS records, `fail_threshold` times: before any
    /// client asks, an upstream that is dead at start is out of rotation within one
    /// `attempt_timeout_min`, and a live one has an RTT. (A refusal is an answer too.)
    pub fn check_all(&mut self, cx: &mut Cx<'_>) {
        let question = Question {
            name: Name::root(),
            qtype: RecordType::NS,
            qclass: DNSClass::IN,
        };
        let mut m = Message::new(0, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::root(), RecordType::NS));
        let bytes = m.to_vec().expect("a root NS query encodes");
        for u in 0..self.upstreams.len() {
            for _ in 0..cx.config.fail_threshold {
                if self.attempt(cx, u, Transport::Udp, CHECK, &question, &bytes) {
                    cx.out.counters.checks += 1;
                }
            }
        }
    }

    fn remove_attempt(&mut self, key: AttemptKey) -> Option<Attempt> {
        let a = self.attempts.remove(&key)?;
        self.timers.remove(&(a.timer, Timer::Attempt(key)));
        self.held[slot(key.0, key.1)] -= 1;
        Some(a)
    }

    fn finish(&mut self, id: u64) -> Option<Pending> {
        let p = self.queries.remove(&id)?;
        self.timers.remove(&(p.deadline, Timer::Deadline(id)));
        if let Some(t) = p.hedge_at {
            self.timers.remove(&(t, Timer::Hedge(id)));
        }
        Some(p)
    }

    /// One of query `id`'s attempts is over without a good answer (an error rcode, a
    /// broken connection, its expiry): ask the next upstream at once; when nobody is left
    /// and nothing is outstanding, the query failed.
    fn attempt_lost(&mut self, cx: &mut Cx<'_>, id: u64) -> Option<Outcome> {
        let mut pending = self.queries.remove(&id)?;
        pending.outstanding -= 1;
        if self.advance(cx, id, &mut pending) {
            cx.out.counters.retries += 1;
        }
        let done = pending.outstanding == 0 && pending.next >= pending.candidates.len();
        self.queries.insert(id, pending);
        if done {
            return self.finish(id).map(|pending| Outcome::Failed { pending });
        }
        None
    }

    fn health(&self, u: usize, change: Option<Health>, out: &mut Output) {
        let upstream = self.upstreams[u].addr;
        match change {
            Some(Health::Down { failures }) => out
                .events
                .push_back(DnsEvent::UpstreamDown { upstream, failures }),
            Some(Health::Up { after }) => out
                .events
                .push_back(DnsEvent::UpstreamUp { upstream, after }),
            None => {}
        }
    }

    /// A datagram or TCP message from `from`. `Some` if it ended a client's query.
    pub fn reply(
        &mut self,
        cx: &mut Cx<'_>,
        from: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) -> Option<Outcome> {
        let Some(u) = self.index(from) else {
            cx.out.counters.ignore(Ignored::UnknownSource);
            return None;
        };
        if bytes.len() < 2 {
            cx.out.counters.ignore(Ignored::Undecodable);
            return None;
        }
        let key = (u, transport, u16::from_be_bytes([bytes[0], bytes[1]]));
        let Some(attempt) = self.attempts.get(&key) else {
            cx.out.counters.ignore(Ignored::UnknownId);
            return None;
        };
        let Ok(reply) = Message::from_vec(bytes) else {
            cx.out.counters.ignore(Ignored::Undecodable);
            return None;
        };
        let matches = reply.metadata.message_type == MessageType::Response
            && reply.queries.len() == 1
            && attempt.question.same(&Question {
                name: reply.queries[0].name().clone(),
                qtype: reply.queries[0].query_type(),
                qclass: reply.queries[0].query_class(),
            });
        if !matches {
            cx.out.counters.ignore(Ignored::Mismatch);
            return None;
        }
        let attempt = self.remove_attempt(key).expect("looked up above");
        let rtt = cx.now.saturating_since(attempt.sent);
        cx.out.events.push_back(DnsEvent::Rtt {
            upstream: from,
            transport,
            rtt,
        });
        let change = self.upstreams[u].answered(cx.now, rtt);
        self.health(u, change, cx.out);
        let good = matches!(
            reply.metadata.response_code,
            ResponseCode::NoError | ResponseCode::NXDomain
        );
        if !good {
            cx.out.counters.upstream_errors += 1;
            return self.attempt_lost(cx, attempt.query);
        }
        let pending = self.finish(attempt.query)?;
        Some(Outcome::Answered {
            pending,
            reply,
            bytes: bytes.to_vec(),
        })
    }

    /// The driver's TCP connection to `upstream` failed: every attempt on it failed.
    pub fn connection_failed(&mut self, cx: &mut Cx<'_>, upstream: SocketAddr) -> Vec<Outcome> {
        let Some(u) = self.index(upstream) else {
            return Vec::new();
        };
        let keys: Vec<AttemptKey> = self
            .attempts
            .range((u, Transport::Tcp, 0)..=(u, Transport::Tcp, u16::MAX))
            .map(|(k, _)| *k)
            .collect();
        if keys.is_empty() {
            return Vec::new();
        }
        let change = self.upstreams[u].failed(cx.now, cx.config);
        self.health(u, change, cx.out);
        let mut outcomes = Vec::new();
        for key in keys {
            let a = self.remove_attempt(key).expect("listed above");
            outcomes.extend(self.attempt_lost(cx, a.query));
        }
        outcomes
    }

    /// Fire every timer due at `cx.now`.
    pub fn timeout(&mut self, cx: &mut Cx<'_>) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        while let Some(&(at, timer)) = self.timers.first() {
            if at > cx.now {
                break;
            }
            self.timers.remove(&(at, timer));
            match timer {
                Timer::Hedge(id) => {
                    if let Some(mut p) = self.queries.remove(&id) {
                        p.hedge_at = None;
                        if self.advance(cx, id, &mut p) {
                            cx.out.counters.hedges += 1;
                        }
                        self.queries.insert(id, p);
                    }
                }
                Timer::Deadline(id) => {
                    if let Some(p) = self.queries.remove(&id) {
                        if let Some(t) = p.hedge_at {
                            self.timers.remove(&(t, Timer::Hedge(id)));
                        }
                        outcomes.push(Outcome::Failed { pending: p });
                    }
                }
                Timer::Attempt(key) => outcomes.extend(self.attempt_timer(cx, key)),
            }
        }
        outcomes
    }

    /// An attempt's timer. At its timeout it counts as a failure and the query moves on
    /// to the next upstream; at its expiry it is given up, and the query fails if
    /// nothing else is left.
    fn attempt_timer(&mut self, cx: &mut Cx<'_>, key: AttemptKey) -> Option<Outcome> {
        let a = self.attempts.get_mut(&key)?;
        let query = a.query;
        if !a.failed {
            a.failed = true;
            let expiry = a.expiry;
            let change = self.upstreams[key.0].failed(cx.now, cx.config);
            self.health(key.0, change, cx.out);
            if expiry > cx.now {
                let a = self.attempts.get_mut(&key).expect("looked up above");
                a.timer = expiry;
                self.timers.insert((expiry, Timer::Attempt(key)));
                self.move_on(cx, query);
                return None;
            }
        }
        self.attempts.remove(&key);
        self.held[slot(key.0, key.1)] -= 1;
        self.attempt_lost(cx, query)
    }

    /// Query `id` asks its next upstream now, its attempts so far still standing.
    fn move_on(&mut self, cx: &mut Cx<'_>, id: u64) {
        if let Some(mut p) = self.queries.remove(&id) {
            if self.advance(cx, id, &mut p) {
                cx.out.counters.retries += 1;
            }
            self.queries.insert(id, p);
        }
    }
}
