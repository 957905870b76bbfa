//! The replicated key-value store (Lashup's `lashup_kv`, fixed): every key on every
//! node, each key a CRDT [`Map`].
//!
//! - A local [`Kv::op`] applies at once (the whole op or nothing), persists the new value
//!   and returns a [`Ticket`]; the op is answered — [`KvEvent::Committed`] — only once
//!   that record is durable, and only then disseminated, as a **delta**
//!   ([`KvEvent::Disseminate`], which the stack spreads), not the whole value.
//! - Actors are `(node, incarnation)`. The incarnation is persisted and bumped on every
//!   start; a node that finds no incarnation on its disk (new, or wiped) draws a random
//!   one, so a wiped node never reuses the dots of its past life (Lashup's bug: its new
//!   writes were discarded as already seen).
//! - Anti-entropy with active-view neighbours costs in proportion to what differs: a
//!   256-bucket digest, then keys and hashes of the differing buckets, then only the
//!   values that differ. The first round runs soon after a neighbour comes up, then
//!   periodically with jitter, so whatever dissemination missed is repaired. A node that
//!   a round repaired starts one soon with each of its other neighbours: after a
//!   partition heals, the writes of one side cross at the few new links and then spread
//!   hop by hop in a fraction of a second each, not one periodic round (seconds) each.
//! - [`KvEvent::Changed`] fires only when a value actually changed.
//! - Bad input is refused whole with a typed error: invalid key, value too large,
//!   CRDT precondition or malformed op, and `Busy` when too many ops await durability.
//!
//! `Kv` has the shape of every protocol in the stack: a [`Protocol`] (`start`,
//! `message`, `timer`, `persisted`, with its own [`KvTimer`] and [`KvEvent`]) that is
//! [`Layered`] on membership's neighbours (`neighbor_up`, `neighbor_down`). Two things
//! are its own, both with the context last like the rest:
//! - [`Kv::op`], a local write. It answers at once with a [`Ticket`] (or a [`KvError`]:
//!   nothing applied), and later with [`KvEvent::Committed`] naming that ticket, once
//!   durable: the caller needs the synchronous refusal, and cannot have the answer
//!   before the disk does.
//! - Reaching every node. The KV does not multicast itself: it asks its parent to, with
//!   [`KvEvent::Disseminate`], and is handed what arrived with [`Kv::deliver`]. So it
//!   needs nothing from global membership, and works over any way of reaching every
//!   node (the stack's multicast; a test's send to every peer).

mod message;
mod store;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

pub use message::{KvMessage, MAX_BATCH};
pub use store::{BUCKETS, Entry, StoreError, bucket_of};

use crate::crdt::{Actor, Dot, Error as CrdtError, Map, MapOp};
use crate::id::NodeId;
use crate::persist::{PersistSeq, Snapshot};
use crate::planted::{self, Bug};
use crate::protocol::{Ctx, Layered, Protocol, TimerId};
use crate::time::Duration;
use crate::wire::{self, WireError};
use store::Store;

const INCARNATION_KEY: &[u8] = b"kv/incarnation";
const VALUE_PREFIX: &[u8] = b"kv/v/";

/// Limits and timings of the KV.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvConfig {
    /// Longest key, in bytes of UTF-8.
    pub max_key: usize,
    /// Largest value (encoded CRDT map), in bytes. Lashup's hard limit was 100 MB; a
    /// value travels whole in anti-entropy, so keep it far below the frame size.
    pub max_value: usize,
    /// Local ops awaiting durability before new ones get `Busy`.
    pub max_pending: usize,
    /// Delay of the first anti-entropy round with a new neighbour.
    pub ae_first_ms: u64,
    /// Period of anti-entropy rounds (jittered by up to a fifth).
    pub ae_period_ms: u64,
    /// Largest value anti-entropy carries, in pieces if it exceeds a frame. Local ops
    /// stop at `max_value`, but a merge of concurrent ops can grow a value past it (five
    /// nodes adding to one set); such a value still reaches every node, up to this size.
    /// A larger one cannot be replicated: it is counted (`unreplicable`) and reported
    /// ([`KvEvent::Unreplicable`]) each time a round would send it. A receiver holds at
    /// most one value in assembly per neighbour.
    pub max_repair_value: usize,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            max_key: 256,
            max_value: 1 << 20,
            max_pending: 10_000,
            ae_first_ms: 200,
            ae_period_ms: 5_000,
            max_repair_value: 8 << 20,
        }
    }
}

impl KvConfig {
    pub fn validate(&self) -> Result<(), KvConfigError> {
        if self.max_key == 0 || self.max_key > 4096 {
            return Err(KvConfigError::MaxKey(self.max_key));
        }
        if !(1024..=(2 << 20)).contains(&self.max_value) {
            return Err(KvConfigError::MaxValue(self.max_value));
        }
        if self.max_pending == 0 {
            return Err(KvConfigError::NoPending);
        }
        if self.max_repair_value < self.max_value {
            return Err(KvConfigError::RepairBelowValue {
                max_repair_value: self.max_repair_value,
                max_value: self.max_value,
            });
        }
        if self.ae_period_ms < 100 {
            return Err(KvConfigError::AePeriod(self.ae_period_ms));
        }
        Ok(())
    }
}

/// The first field of a [`KvConfig`] out of its bounds, with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvConfigError {
    /// `max_key`: must be 1..=4096.
    MaxKey(usize),
    /// `max_value`: must be 1 KiB..=2 MiB.
    MaxValue(usize),
    /// `max_pending` is 0: no op could ever be accepted.
    NoPending,
    /// `max_repair_value` below `max_value`: a value a local op wrote could not be
    /// repaired.
    RepairBelowValue {
        max_repair_value: usize,
        max_value: usize,
    },
    /// `ae_period_ms`: must be at least 100.
    AePeriod(u64),
}

impl std::fmt::Display for KvConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvConfigError::MaxKey(v) => write!(f, "kv max_key = {v}: must be 1..=4096"),
            KvConfigError::MaxValue(v) => write!(
                f,
                "kv max_value = {v}: must be 1 KiB..=2 MiB (a value must fit a frame)"
            ),
            KvConfigError::NoPending => f.write_str("kv max_pending must be at least 1"),
            KvConfigError::RepairBelowValue {
                max_repair_value,
                max_value,
            } => write!(
                f,
                "kv max_repair_value = {max_repair_value}: must be at least max_value \
                 ({max_value})"
            ),
            KvConfigError::AePeriod(v) => write!(f, "kv ae_period_ms = {v}: must be at least 100"),
        }
    }
}

impl std::error::Error for KvConfigError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvEvent {
    /// A local op is durable; `value` is the key's value right after it.
    Committed {
        ticket: Ticket,
        key: String,
        value: Map,
    },
    /// A key's value changed (by a local op or a merge).
    Changed { key: String, value: Map },
    /// Deliver this to every node (a `KvMessage::Delta`, encoded): the stack spreads it.
    Disseminate(Vec<u8>),
    /// A value anti-entropy should send is larger than `max_repair_value`: it cannot
    /// reach the neighbour, which keeps an older value or none.
    Unreplicable {
        key: String,
        size: usize,
        max: usize,
    },
}

/// Why an op was refused. Nothing was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    InvalidKey(String),
    TooLarge {
        size: usize,
        max: usize,
    },
    Busy {
        pending: usize,
    },
    Op(CrdtError),
    /// The node has not started yet.
    NotStarted,
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::InvalidKey(why) => write!(f, "invalid key: {why}"),
            KvError::TooLarge { size, max } => {
                write!(f, "value of {size} bytes exceeds the limit of {max}")
            }
            KvError::Busy { pending } => {
                write!(f, "busy: {pending} ops are waiting for the disk; retry")
            }
            KvError::Op(e) => write!(f, "op refused: {e:?}"),
            KvError::NotStarted => write!(f, "the node has not started"),
        }
    }
}

impl std::error::Error for KvError {}

/// Running totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvCounters {
    pub ops: u64,
    pub ops_refused: u64,
    pub busy: u64,
    pub deltas_merged: u64,
    pub ae_rounds: u64,
    /// Keys that anti-entropy changed here (what dissemination had missed).
    pub repaired_keys: u64,
    /// Rounds started because a round had repaired keys here (see [`KvTimer::Push`]).
    pub push_rounds: u64,
    /// Persisted values that did not decode at start (ignored, then repaired by peers).
    pub restore_failures: u64,
    /// Local deltas the stack could not disseminate (larger than a multicast packet
    /// takes): anti-entropy carries them instead.
    pub undisseminated: u64,
    /// Disseminated deltas that did not decode (ignored, and counted).
    pub bad_deltas: u64,
    /// Values sent in pieces (larger than a frame), and received whole that way.
    pub pieced_sent: u64,
    pub pieced_received: u64,
    /// Times a round could not send a value: larger than `max_repair_value`.
    pub unreplicable: u64,
}

type Cx<'a, 'b> = Ctx<'a, KvTimer, KvEvent>;

pub struct Kv {
    cfg: KvConfig,
    store: Store,
    incarnation: u64,
    actor: Option<Actor>,
    neighbors: BTreeSet<NodeId>,
    /// Neighbours with a [`KvTimer::Push`] armed: one pending push per neighbour, however
    /// many repairs arrive meanwhile.
    pushing: BTreeSet<NodeId>,
    /// Local ops waiting for their record to be durable, by its sequence.
    pending: BTreeMap<PersistSeq, (Ticket, String, Map)>,
    ae_timer: Option<TimerId>,
    counters: KvCounters,
    /// A value arriving in pieces, per neighbour: its key, total size, bytes so far.
    assembling: BTreeMap<NodeId, (String, u64, Vec<u8>)>,
}

impl Kv {
    /// The store as the node's disk held it.
    pub fn new(cfg: KvConfig, recovered: &Snapshot) -> Result<Kv, KvConfigError> {
        cfg.validate()?;
        let mut store = Store::default();
        let mut counters = KvCounters::default();
        let incarnation = recovered
            .get(INCARNATION_KEY)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        for (k, v) in recovered
            .0
            .range(VALUE_PREFIX.to_vec()..)
            .take_while(|(k, _)| k.starts_with(VALUE_PREFIX))
            .filter(|_| !planted::on(Bug::KvForgetsDisk))
        {
            match (
                std::str::from_utf8(&k[VALUE_PREFIX.len()..]),
                wire::decode::<Map>(v),
            ) {
                (Ok(key), Ok(map)) => store.restore(key.to_string(), map),
                _ => counters.restore_failures += 1,
            }
        }
        Ok(Kv {
            cfg,
            store,
            incarnation,
            actor: None,
            neighbors: BTreeSet::new(),
            pushing: BTreeSet::new(),
            pending: BTreeMap::new(),
            ae_timer: None,
            counters,
            assembling: BTreeMap::new(),
        })
    }

    /// Has this replica seen the op `ticket` names (applied it, or a merge holding it)?
    pub fn seen(&self, key: &str, ticket: Ticket) -> bool {
        self.get(key)
            .is_some_and(|m| m.context().contains(&ticket.0))
    }

    pub fn get(&self, key: &str) -> Option<&Map> {
        self.store.get(key).map(|e| &e.map)
    }
    /// Keys with `prefix`, in order, with their values.
    pub fn scan<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Map)> + 'a {
        self.store.scan(prefix).map(|(k, e)| (k, &e.map))
    }
    pub fn len(&self) -> usize {
        self.store.len()
    }
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
    /// The per-bucket digest (equal digests ⇒ equal stores, up to hash collisions).
    pub fn digest(&self) -> &[u64] {
        self.store.buckets()
    }
    pub fn counters(&self) -> &KvCounters {
        &self.counters
    }
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn arm_round(&mut self, ctx: &mut Cx<'_, '_>) {
        let period = Duration::from_millis(self.cfg.ae_period_ms);
        let delay = ctx.rng().jitter(period, period / 5);
        self.ae_timer = Some(ctx.set_timer(delay, KvTimer::AntiEntropy));
    }

    fn check_key(&self, key: &str) -> Result<(), KvError> {
        if key.is_empty() {
            return Err(KvError::InvalidKey("empty".into()));
        }
        if key.len() > self.cfg.max_key {
            return Err(KvError::InvalidKey(format!(
                "{} bytes, the limit is {}",
                key.len(),
                self.cfg.max_key
            )));
        }
        Ok(())
    }

    /// Apply `op` to `key` locally. The answer comes as `Committed` once durable.
    pub fn op(&mut self, key: &str, op: &MapOp, ctx: &mut Cx<'_, '_>) -> Result<Ticket, KvError> {
        let refused = |kv: &mut Kv, e: KvError| {
            kv.counters.ops_refused += 1;
            Err(e)
        };
        let Some(actor) = self.actor else {
            return refused(self, KvError::NotStarted);
        };
        if let Err(e) = self.check_key(key) {
            return refused(self, e);
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.counters.busy += 1;
            return refused(
                self,
                KvError::Busy {
                    pending: self.pending.len(),
                },
            );
        }
        let applied = match self.store.apply(key, actor, op, self.cfg.max_value) {
            Ok(a) => a,
            Err(StoreError::Crdt(e)) => return refused(self, KvError::Op(e)),
            Err(StoreError::TooLarge { size, max }) => {
                return refused(self, KvError::TooLarge { size, max });
            }
        };
        self.counters.ops += 1;
        let seq = self.persist_value(ctx, key, &applied.value);
        let counter = applied
            .value
            .context()
            .version_vector()
            .get(&actor)
            .copied()
            .unwrap_or(0);
        let ticket = Ticket(Dot { actor, counter });
        self.pending
            .insert(seq, (ticket, key.to_string(), applied.delta));
        ctx.emit(KvEvent::Changed {
            key: key.to_string(),
            value: applied.value,
        });
        Ok(ticket)
    }

    fn persist_value(&mut self, ctx: &mut Cx<'_, '_>, key: &str, value: &Map) -> PersistSeq {
        let mut k = VALUE_PREFIX.to_vec();
        k.extend_from_slice(key.as_bytes());
        ctx.persist(k, Some(wire::encode(value)))
    }

    fn merge(&mut self, ctx: &mut Cx<'_, '_>, key: &str, remote: &Map) -> bool {
        let Some(value) = self.store.merge(key, remote).cloned() else {
            return false;
        };
        self.persist_value(ctx, key, &value);
        ctx.emit(KvEvent::Changed {
            key: key.to_string(),
            value,
        });
        true
    }

    /// A disseminated delta arrived (the multicast that carried it may have come
    /// through any node, so one that does not decode is counted, not blamed on the
    /// link it came over).
    pub fn deliver(&mut self, payload: &[u8], ctx: &mut Cx<'_, '_>) {
        match KvMessage::decode(payload, self.cfg.max_key) {
            Ok(KvMessage::Delta { key, delta }) => {
                self.counters.deltas_merged += 1;
                self.merge(ctx, &key, &delta);
            }
            _ => self.counters.bad_deltas += 1,
        }
    }

    /// The stack could not disseminate a local delta; see `KvCounters::undisseminated`.
    pub fn undisseminated(&mut self) {
        self.counters.undisseminated += 1;
    }

    /// The delay of a round started by an event rather than the clock: `ae_first_ms`
    /// plus up to as much again, so that rounds triggered together spread out.
    fn soon(&self, ctx: &mut Cx<'_, '_>) -> Duration {
        let first = Duration::from_millis(self.cfg.ae_first_ms);
        ctx.rng().jitter(first, first)
    }

    /// A round repaired keys here (they came from `from`): the other neighbours may lack
    /// them too, so start a round with each soon rather than at their next periodic one.
    fn push_repairs(&mut self, from: NodeId, ctx: &mut Cx<'_, '_>) {
        let peers: Vec<NodeId> = self
            .neighbors
            .iter()
            .copied()
            .filter(|&p| p != from)
            .collect();
        for peer in peers {
            if self.pushing.insert(peer) {
                let delay = self.soon(ctx);
                ctx.set_timer(delay, KvTimer::Push(peer));
            }
        }
    }

    fn send(&self, ctx: &mut Cx<'_, '_>, peer: NodeId, msg: &KvMessage) {
        // A neighbour that just went away misses this round; the next one repairs it.
        let _ = ctx.send(peer, &msg.encode());
    }

    fn start_round(&mut self, ctx: &mut Cx<'_, '_>, peer: NodeId) {
        self.counters.ae_rounds += 1;
        let buckets = self.store.buckets().to_vec();
        self.send(ctx, peer, &KvMessage::Digest { buckets });
    }

    /// Send `entries` in batches no bigger than a frame allows; a value larger than that
    /// alone goes in pieces.
    fn send_entries(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        peer: NodeId,
        keys: impl Iterator<Item = String>,
    ) {
        let budget = ctx.max_message() / 2;
        let mut batch = Vec::new();
        let mut size = 0;
        for key in keys {
            let Some(entry) = self.store.get(&key) else {
                continue;
            };
            let encoded = wire::encode(&entry.map);
            let len = encoded.len() + key.len();
            if len > budget {
                self.send_pieces(ctx, peer, key, &encoded, budget);
                continue;
            }
            if !batch.is_empty() && (size + len > budget || batch.len() == MAX_BATCH) {
                self.send(
                    ctx,
                    peer,
                    &KvMessage::Entries {
                        entries: std::mem::take(&mut batch),
                    },
                );
                size = 0;
            }
            size += len;
            batch.push((key, entry.map.clone()));
        }
        if !batch.is_empty() {
            self.send(ctx, peer, &KvMessage::Entries { entries: batch });
        }
    }

    /// Send one value too large for a frame as consecutive pieces of at most `budget`
    /// bytes (less its key), or count and report it if it exceeds `max_repair_value`.
    fn send_pieces(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        peer: NodeId,
        key: String,
        encoded: &[u8],
        budget: usize,
    ) {
        let max = self.cfg.max_repair_value;
        if encoded.len() > max {
            self.counters.unreplicable += 1;
            ctx.emit(KvEvent::Unreplicable {
                key,
                size: encoded.len(),
                max,
            });
            return;
        }
        self.counters.pieced_sent += 1;
        let piece = budget.saturating_sub(key.len() + 64).max(1);
        let total = encoded.len() as u64;
        for (i, bytes) in encoded.chunks(piece).enumerate() {
            let msg = KvMessage::Piece {
                key: key.clone(),
                total,
                offset: (i * piece) as u64,
                bytes: bytes.to_vec(),
            };
            self.send(ctx, peer, &msg);
        }
    }

    /// A piece of a large value from `from`: kept if it continues the value in assembly
    /// (or starts one, dropping an unfinished one), merged once complete. Returns
    /// whether the merge changed the key.
    fn on_piece(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        from: NodeId,
        key: String,
        total: u64,
        offset: u64,
        bytes: Vec<u8>,
    ) -> Result<bool, WireError> {
        if total > self.cfg.max_repair_value as u64 {
            return Err(WireError::Payload(format!(
                "kv: a value of {total} bytes in pieces, more than {}",
                self.cfg.max_repair_value
            )));
        }
        if offset == 0 {
            self.assembling
                .insert(from, (key.clone(), total, Vec::new()));
        }
        let Some((k, t, buf)) = self.assembling.get_mut(&from) else {
            return Err(WireError::Payload("kv: a piece without its start".into()));
        };
        if *k != key || *t != total || buf.len() as u64 != offset {
            self.assembling.remove(&from);
            return Err(WireError::Payload("kv: a piece out of order".into()));
        }
        buf.extend_from_slice(&bytes);
        if (buf.len() as u64) < total {
            return Ok(false);
        }
        let (key, _, buf) = self.assembling.remove(&from).expect("just used");
        let map: Map = wire::decode(&buf)?;
        self.counters.pieced_received += 1;
        Ok(self.merge(ctx, &key, &map))
    }
}

/// The KV is a protocol of its own, on its own channel (anti-entropy). What the stack
/// adds is dissemination, which the KV asks for with [`KvEvent::Disseminate`] and whose
/// deliveries come back through [`Kv::deliver`].
impl Protocol for Kv {
    type Timer = KvTimer;
    type Event = KvEvent;

    /// Start: a new incarnation, persisted before any op can be answered (records are
    /// durable in order), and the anti-entropy clock.
    fn start(&mut self, ctx: &mut Cx<'_, '_>) {
        self.incarnation = match self.incarnation {
            // Fresh or wiped disk: a random base in the lower half of u64, so it can grow.
            0 => ctx.rng().u64() >> 1 | 1,
            i => i + 1,
        };
        ctx.persist(
            INCARNATION_KEY.to_vec(),
            Some(self.incarnation.to_be_bytes().to_vec()),
        );
        self.actor = Some(Actor::new(ctx.id(), self.incarnation));
        self.arm_round(ctx);
    }

    fn timer(&mut self, timer: KvTimer, ctx: &mut Cx<'_, '_>) {
        match timer {
            KvTimer::AntiEntropy => {
                let peers: Vec<NodeId> = self.neighbors.iter().copied().collect();
                if !peers.is_empty() {
                    let peer = peers[ctx.rng().index(peers.len())];
                    self.start_round(ctx, peer);
                }
                self.arm_round(ctx);
            }
            KvTimer::Greet(peer) if self.neighbors.contains(&peer) => self.start_round(ctx, peer),
            KvTimer::Greet(_) => {}
            KvTimer::Push(peer) => {
                self.pushing.remove(&peer);
                if self.neighbors.contains(&peer) {
                    self.counters.push_rounds += 1;
                    self.start_round(ctx, peer);
                }
            }
        }
    }

    /// Records up to `seq` are durable: answer the ops they carried, then disseminate.
    fn persisted(&mut self, seq: PersistSeq, ctx: &mut Cx<'_, '_>) {
        let later = self.pending.split_off(&PersistSeq(seq.0 + 1));
        for (_, (ticket, key, delta)) in std::mem::replace(&mut self.pending, later) {
            let value = self.get(&key).cloned().unwrap_or_default();
            ctx.emit(KvEvent::Committed {
                ticket,
                key: key.clone(),
                value,
            });
            ctx.emit(KvEvent::Disseminate(
                KvMessage::Delta { key, delta }.encode(),
            ));
        }
    }

    fn message_kind(body: &[u8]) -> Option<&'static str> {
        wire::decode::<KvMessage>(body).ok().map(|m| m.kind_name())
    }

    /// An anti-entropy message from a neighbour.
    fn message(
        &mut self,
        from: NodeId,
        body: &[u8],
        ctx: &mut Cx<'_, '_>,
    ) -> Result<(), WireError> {
        match KvMessage::decode(body, self.cfg.max_key)? {
            KvMessage::Delta { .. } => Err(WireError::Payload(
                "kv: deltas come on their own channel".into(),
            )),
            KvMessage::Digest { buckets } => {
                let differ: Vec<u16> = (0..BUCKETS)
                    .filter(|&b| buckets[b] != self.store.buckets()[b])
                    .map(|b| b as u16)
                    .collect();
                if !differ.is_empty() {
                    let mut mask = vec![false; BUCKETS];
                    differ.iter().for_each(|&b| mask[b as usize] = true);
                    let keys = self.store.summaries(&mask);
                    let mut chunks = keys.chunks(MAX_BATCH).peekable();
                    if chunks.peek().is_none() {
                        self.send(
                            ctx,
                            from,
                            &KvMessage::Summaries {
                                buckets: differ.clone(),
                                keys: Vec::new(),
                            },
                        );
                    }
                    for chunk in chunks {
                        self.send(
                            ctx,
                            from,
                            &KvMessage::Summaries {
                                buckets: differ.clone(),
                                keys: chunk.to_vec(),
                            },
                        );
                    }
                }
                Ok(())
            }
            KvMessage::Summaries { buckets, keys } => {
                let mut mask = vec![false; BUCKETS];
                buckets.iter().for_each(|&b| mask[b as usize] = true);
                let theirs: BTreeMap<String, u64> = keys.into_iter().collect();
                let ours = self.store.summaries(&mask);
                let mut give = Vec::new();
                for (k, h) in &ours {
                    if theirs.get(k) != Some(h) {
                        give.push(k.clone());
                    }
                }
                let want: Vec<String> = theirs
                    .iter()
                    .filter(|(k, h)| self.store.get(k).is_none_or(|e| e.hash != **h))
                    .map(|(k, _)| k.clone())
                    .collect();
                self.send_entries(ctx, from, give.into_iter());
                for chunk in want.chunks(MAX_BATCH) {
                    self.send(
                        ctx,
                        from,
                        &KvMessage::Want {
                            keys: chunk.to_vec(),
                        },
                    );
                }
                Ok(())
            }
            KvMessage::Entries { entries } => {
                let mut repaired = false;
                for (key, map) in entries {
                    if planted::on(Bug::AeFillsOnlyMissing) && self.store.get(&key).is_some() {
                        continue;
                    }
                    if self.merge(ctx, &key, &map) {
                        self.counters.repaired_keys += 1;
                        repaired = true;
                    }
                }
                if repaired {
                    self.push_repairs(from, ctx);
                }
                Ok(())
            }
            KvMessage::Want { keys } => {
                self.send_entries(ctx, from, keys.into_iter());
                Ok(())
            }
            KvMessage::Piece {
                key,
                total,
                offset,
                bytes,
            } => {
                if self.on_piece(ctx, from, key, total, offset, bytes)? {
                    self.counters.repaired_keys += 1;
                    self.push_repairs(from, ctx);
                }
                Ok(())
            }
        }
    }
}

/// Anti-entropy runs with membership's neighbours.
impl Layered for Kv {
    fn neighbor_up(&mut self, peer: NodeId, ctx: &mut Cx<'_, '_>) {
        if self.neighbors.insert(peer) {
            let delay = self.soon(ctx);
            ctx.set_timer(delay, KvTimer::Greet(peer));
        }
    }

    fn neighbor_down(&mut self, peer: NodeId, _ctx: &mut Cx<'_, '_>) {
        self.neighbors.remove(&peer);
        self.assembling.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_field_is_named_with_its_value() {
        assert_eq!(KvConfig::default().validate(), Ok(()));
        let small = KvConfig {
            max_repair_value: 1024,
            ..KvConfig::default()
        };
        let err = small.validate().unwrap_err();
        assert_eq!(
            err,
            KvConfigError::RepairBelowValue {
                max_repair_value: 1024,
                max_value: 1 << 20
            }
        );
        assert_eq!(
            err.to_string(),
            "kv max_repair_value = 1024: must be at least max_value (1048576)"
        );
        let none = KvConfig {
            max_pending: 0,
            ..KvConfig::default()
        };
        assert_eq!(none.validate(), Err(KvConfigError::NoPending));
    }
}

/// Names a local op *within its key*: the op's dot in that key's causal context. Every
/// key has its own context, so the first op on two keys can carry the same dot: name an
/// op by `(key, ticket)`. Also what [`Kv::seen`] takes, to ask whether a replica holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub Dot);

#[derive(Debug)]
pub enum KvTimer {
    /// The periodic round with a random neighbour.
    AntiEntropy,
    /// The first round with a neighbour that just came up.
    Greet(NodeId),
    /// A round with a neighbour that may lack what a round just repaired here.
    Push(NodeId),
}
