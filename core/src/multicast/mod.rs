//! Multicast (Lashup's `lashup_gm_mc`): a message from one node to every node reachable
//! from it, along `k` redundant sender-rooted trees over the overlay, delivered exactly
//! once by every receiver.
//!
//! - **Trees are derived, not shipped.** Every node holds the same graph (global
//!   membership) and builds the origin's shortest-hop trees itself — tree `i` breaks
//!   ties between equally short parents by a per-tree rank (see `routing::rank`) — so a
//!   copy carries only a bitmask of the trees it travels. One copy crosses an edge the
//!   trees share, with the union of their bits.
//! - **Disagreement falls back to flooding.** A copy carries its sender's table
//!   fingerprint; a receiver whose fingerprint differs (an update is still spreading)
//!   cannot trust that its tree is the sender's, so it forwards to every neighbour
//!   instead, once per message, and so does every node that receives a flooded copy.
//!   The same happens when the origin is unreachable in the receiver's graph, or a
//!   child's link is gone. Flooding costs more messages but misses nobody reachable.
//! - **Exactly once.** Each receiver delivers a `(origin, seq)` the first time it sees it
//!   (see `dedup`); the origin does not deliver its own messages. Sequence numbers carry
//!   the origin's incarnation, so a restarted origin's messages are new.
//! - **Repair.** A copy on a link that goes down is lost with its whole subtree: the
//!   node that sent it floods the message again. A node that sent while cut off reached
//!   nobody: each end of a new link offers the other what it has that the link never
//!   carried. Both within a window of the message's age (see `repair`).
//!
//! Files: `config`, `message` (the packet), `dedup` (bounded exactly-once state),
//! `repair` (recent sends, by link), `over` (multicast bound to the graph it routes
//! over: the [`Protocol`](crate::Protocol) the stack drives).

mod config;
mod dedup;
mod message;
mod over;
mod repair;

use std::collections::BTreeMap;
use std::fmt;

pub use config::{MulticastConfig, MulticastConfigError};
pub use message::{MAX_PAYLOAD, MAX_TOPIC, MAX_TREES, Packet};
pub use over::{GraphView, MulticastOver};

use dedup::Seen;
use repair::Recent;

use crate::gm::Bounded;
use crate::id::NodeId;
use crate::protocol::Ctx;
use crate::routing::{Bfs, Packed};
use crate::time::{Duration, Instant};
use crate::wire::WireError;

/// A message delivered to this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub origin: NodeId,
    pub seq: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// Why [`MulticastOver::send`] refused a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MulticastError {
    PayloadTooLarge {
        size: usize,
        max: usize,
    },
    TopicTooLong {
        len: usize,
        max: usize,
    },
    /// The node has not started (its incarnation, hence its sequence space, is unknown).
    NotStarted,
    /// 2^32 messages in one incarnation; a restart opens a new sequence space.
    SequenceExhausted,
    /// A topic the node uses itself (the stack's `KV_TOPIC`).
    ReservedTopic,
}

impl fmt::Display for MulticastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MulticastError::PayloadTooLarge { size, max } => {
                write!(f, "payload of {size} bytes exceeds the {max}-byte limit")
            }
            MulticastError::TopicTooLong { len, max } => {
                write!(f, "topic of {len} bytes exceeds the {max}-byte limit")
            }
            MulticastError::NotStarted => write!(f, "the node has not started"),
            MulticastError::SequenceExhausted => {
                write!(f, "sequence numbers of this incarnation are used up")
            }
            MulticastError::ReservedTopic => {
                write!(f, "the topic is reserved for the node's own use")
            }
        }
    }
}

impl std::error::Error for MulticastError {}

/// Running totals, for metrics (messages per delivery) and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MulticastCounters {
    pub sent: u64,
    pub delivered: u64,
    /// Copies of messages already delivered here.
    pub duplicates: u64,
    /// Copies this node sent (as origin or forwarder).
    pub copies_sent: u64,
    /// Messages this node flooded instead of forwarding along trees.
    pub floods: u64,
    /// Copies dropped because their message was below the dedup floor.
    pub expired: u64,
    /// Messages flooded again because a link that carried them went down.
    pub repairs: u64,
    /// Messages offered to a new neighbour.
    pub offers: u64,
    /// Messages not delivered because they are older than this node's life: repair
    /// copies reaching a node that restarted since the message was sent (its previous
    /// life may have delivered it).
    pub before_start: u64,
}

/// Multicast has no timers of its own.
pub type NoTimer = std::convert::Infallible;

type Cx<'a, 'b> = Ctx<'a, NoTimer, Delivery>;

/// Children lists cached per origin (one list per tree, trees `0..n` built by one
/// search), valid for one graph generation, and that generation's graph packed for the
/// searches (none before the first). `None`: the origin does not reach us.
#[derive(Default)]
struct TreeCache {
    packed: Option<Packed>,
    children: BTreeMap<NodeId, Option<Vec<Vec<NodeId>>>>,
    bfs: Bfs,
}

/// Cached origins before the cache is cleared: enough for every origin of a 2,000-node
/// cluster (the KV's deltas come from every node), so a steady graph costs one search
/// per origin, not one per packet. At most a few hundred KB.
const TREE_CACHE: usize = 2_048;

pub struct Multicast {
    cfg: MulticastConfig,
    seen: Seen,
    next: u32,
    cache: TreeCache,
    counters: MulticastCounters,
    recent: Recent,
    /// When the node started: a message older than its life is not delivered.
    started: Instant,
    /// Topics whose user repairs what a lost copy missed itself (not kept for repair).
    self_repairing: Vec<String>,
}

impl Multicast {
    pub fn new(config: MulticastConfig) -> Result<Multicast, MulticastConfigError> {
        config.validate()?;
        Ok(Multicast {
            seen: Seen::new(config.dedup_window),
            recent: Recent::new(
                Duration::from_millis(config.repair_window_ms),
                config.repair_buffer,
            ),
            cfg: config,
            next: 0,
            cache: TreeCache::default(),
            counters: MulticastCounters::default(),
            started: Instant::ZERO,
            self_repairing: Vec::new(),
        })
    }

    /// Messages under `topic` are not kept for repair: their user has its own (the KV's
    /// anti-entropy), and keeping them would only cost memory and floods.
    pub fn self_repairing(mut self, topic: &str) -> Multicast {
        self.self_repairing.push(topic.to_owned());
        self
    }

    pub fn config(&self) -> &MulticastConfig {
        &self.cfg
    }
    pub fn counters(&self) -> &MulticastCounters {
        &self.counters
    }

    /// See [`MulticastOver::send`].
    fn send(
        &mut self,
        gm: &impl GraphView,
        topic: &str,
        payload: Vec<u8>,
        ctx: &mut Cx,
    ) -> Result<(NodeId, u64), MulticastError> {
        if topic.len() > MAX_TOPIC {
            return Err(MulticastError::TopicTooLong {
                len: topic.len(),
                max: MAX_TOPIC,
            });
        }
        // The frame must fit too, with room for the packet's other fields.
        let max = self
            .cfg
            .max_payload
            .min(ctx.max_message().saturating_sub(64 + topic.len()));
        if payload.len() > max {
            return Err(MulticastError::PayloadTooLarge {
                size: payload.len(),
                max,
            });
        }
        if gm.routing().is_none() {
            return Err(MulticastError::NotStarted);
        }
        let n = self
            .next
            .checked_add(1)
            .ok_or(MulticastError::SequenceExhausted)?;
        self.next = n;
        let seq = (gm.incarnation() << 32) | u64::from(n);
        let origin = ctx.id();
        let packet = Packet {
            origin,
            seq,
            trees: all_trees(self.cfg.trees),
            flood: false,
            view: gm.view(),
            age: Duration::ZERO,
            topic: topic.to_owned(),
            payload: Bounded(payload),
        };
        self.counters.sent += 1;
        self.keep_for_repair(&packet, None, ctx);
        self.along_trees(gm, &packet, packet.trees, None, ctx);
        Ok((origin, seq))
    }

    /// A copy from `from`: deliver it if new, and pass it on.
    fn message(
        &mut self,
        gm: &impl GraphView,
        from: NodeId,
        body: &[u8],
        ctx: &mut Cx,
    ) -> Result<(), WireError> {
        let mut p = Packet::decode(body)?;
        if p.origin == ctx.id() {
            return Ok(());
        }
        let Some(state) = self.seen.get(p.origin, p.seq) else {
            self.counters.expired += 1;
            return Ok(());
        };
        let first = !state.delivered;
        state.delivered = true;
        let before_start = p.age > ctx.now() - self.started;
        let offer = !p.flood && p.trees == 0;
        let flood = if offer {
            first && !std::mem::replace(&mut state.flooded, true)
        } else if p.flood {
            !std::mem::replace(&mut state.flooded, true)
        } else {
            let new = p.trees & !state.forwarded & all_trees(MAX_TREES);
            state.forwarded |= p.trees;
            let disagree = p.view != gm.view();
            if new != 0 && !state.flooded && disagree {
                state.flooded = true;
                true
            } else {
                if new != 0 && !state.flooded {
                    p.view = gm.view();
                    self.along_trees(gm, &p, new, Some(from), ctx);
                }
                false
            }
        };
        if flood {
            self.flood(gm, &mut p, Some(from), ctx);
        }
        if first {
            self.keep_for_repair(&p, None, ctx);
        }
        if first && before_start {
            self.counters.before_start += 1;
        } else if first {
            self.counters.delivered += 1;
            ctx.emit(Delivery {
                origin: p.origin,
                seq: p.seq,
                topic: p.topic,
                payload: p.payload.0,
            });
        } else {
            self.counters.duplicates += 1;
        }
        Ok(())
    }

    /// A link to `peer` came up: offer it what this node holds for repair and never
    /// sent it (see `repair`).
    fn offer(&mut self, gm: &impl GraphView, peer: NodeId, ctx: &mut Cx) {
        for p in self.recent.offer_to(peer, ctx.now()) {
            let offer = Packet {
                trees: 0,
                flood: false,
                view: gm.view(),
                ..p
            };
            if ctx.send(peer, &offer.encode()).is_ok() {
                self.counters.offers += 1;
                self.counters.copies_sent += 1;
            }
        }
    }

    /// The link to `peer` went down: flood again what went on it within the repair
    /// window, since those copies, and the subtrees they were for, may be lost.
    /// Call it after global membership has dropped `peer` from its neighbours.
    fn repair(&mut self, gm: &impl GraphView, peer: NodeId, ctx: &mut Cx) {
        for mut p in self.recent.lost_with(peer, ctx.now()) {
            self.counters.repairs += 1;
            if p.origin != ctx.id()
                && let Some(s) = self.seen.get(p.origin, p.seq)
            {
                s.flooded = true;
            }
            self.flood(gm, &mut p, None, ctx);
        }
    }

    /// Global membership forgot `origin`: its dedup state can go.
    pub fn forget(&mut self, origin: NodeId) {
        self.seen.forget(origin);
    }

    /// Forward `p` along the trees in `trees` (one copy per child, with the bits of
    /// every tree in which it is our child); flood instead if our graph cannot.
    fn along_trees(
        &mut self,
        gm: &impl GraphView,
        p: &Packet,
        trees: u8,
        from: Option<NodeId>,
        ctx: &mut Cx,
    ) {
        let me = ctx.id();
        let mut copies: BTreeMap<NodeId, u8> = BTreeMap::new();
        for k in 0..MAX_TREES {
            if trees & (1 << k) == 0 {
                continue;
            }
            let Some(children) = self.children(gm, p.origin, k, me) else {
                return self.flood_once(gm, p, from, ctx);
            };
            for c in children {
                *copies.entry(c).or_default() |= 1 << k;
            }
        }
        if copies.keys().any(|c| !ctx.is_linked(*c)) {
            return self.flood_once(gm, p, from, ctx);
        }
        for (child, bits) in copies {
            if Some(child) == from {
                continue;
            }
            let copy = Packet {
                trees: bits,
                ..p.clone()
            };
            if ctx.send(child, &copy.encode()).is_ok() {
                self.counters.copies_sent += 1;
                self.keep_for_repair(&copy, Some(child), ctx);
            }
        }
    }

    /// The flood fallback, marking the message flooded so this node floods it once.
    fn flood_once(&mut self, gm: &impl GraphView, p: &Packet, from: Option<NodeId>, ctx: &mut Cx) {
        if p.origin != ctx.id() {
            match self.seen.get(p.origin, p.seq) {
                Some(s) if !s.flooded => s.flooded = true,
                _ => return,
            }
        }
        let mut p = p.clone();
        self.flood(gm, &mut p, from, ctx);
    }

    fn flood(&mut self, gm: &impl GraphView, p: &mut Packet, from: Option<NodeId>, ctx: &mut Cx) {
        self.counters.floods += 1;
        p.flood = true;
        p.view = gm.view();
        let bytes = p.encode();
        for &n in gm.neighbors() {
            if Some(n) != from && n != p.origin && ctx.send(n, &bytes).is_ok() {
                self.counters.copies_sent += 1;
                self.keep_for_repair(p, Some(n), ctx);
            }
        }
    }

    /// Hold `p` for repair (unless its topic repairs itself), noting the neighbour a
    /// copy went to.
    fn keep_for_repair(&mut self, p: &Packet, to: Option<NodeId>, ctx: &Cx) {
        if !self.self_repairing.contains(&p.topic) {
            self.recent.record(p, to, ctx.now());
        }
    }

    /// `me`'s children in tree `k` of `origin` (cached per graph generation; one search
    /// builds every configured tree, and any higher one a packet asks for).
    fn children(
        &mut self,
        gm: &impl GraphView,
        origin: NodeId,
        k: u8,
        me: NodeId,
    ) -> Option<Vec<NodeId>> {
        let routing = gm.routing()?;
        let cache = &mut self.cache;
        let generation = routing.graph().generation();
        let packed = match &mut cache.packed {
            Some(p) if p.generation() == generation => {
                if cache.children.len() >= TREE_CACHE {
                    cache.children.clear();
                }
                p
            }
            slot => {
                cache.children.clear();
                slot.insert(routing.packed())
            }
        };
        let built = |c: &Option<Vec<Vec<NodeId>>>| c.as_ref().is_none_or(|t| t.len() > k.into());
        if !cache.children.get(&origin).is_some_and(built) {
            let trees: Vec<u8> = (0..=k.max(self.cfg.trees.saturating_sub(1))).collect();
            let children = routing.children(packed, &mut cache.bfs, origin, &trees, me);
            cache.children.insert(origin, children);
        }
        let trees = cache.children.get(&origin)?.as_ref()?;
        Some(trees[usize::from(k)].clone())
    }
}

/// The bitmask of trees `0..k`.
fn all_trees(k: u8) -> u8 {
    if k >= 8 { u8::MAX } else { (1u8 << k) - 1 }
}
