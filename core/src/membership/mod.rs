//! Membership: the HyParView overlay every other protocol rides on, with an adaptive,
//! indirect-probing failure detector on each of its links.
//!
//! Each node keeps a small **active view** of neighbours — each one a live authenticated
//! link that *both* ends agreed to keep — and a larger **passive view** of peers it knows
//! of, for repair. A node joins through a contact, whose forward-join random walks make
//! it a neighbour of nodes across the overlay; a node whose active view runs short asks
//! passive peers to become neighbours; periodic shuffles keep passive views fresh and
//! mixed. See Leitão, Pereira, Rodrigues, "HyParView" (DSN 2007).
//!
//! Where Lashup (the Erlang reference) goes wrong, this does not:
//! - **Symmetric links.** Nothing enters an active view without a request/accept
//!   exchange on the link itself, and anything leaving one sends `Disconnect` or closes
//!   the link, so if A has B as a neighbour, B has A (once in-flight messages land; a
//!   one-sided link left by a connection flap is re-requested at once, and a
//!   non-neighbour that pings us is told `Disconnect`).
//! - Neighbour-request timers are **cancelled** when the answer comes.
//! - The passive view is **persisted** (`hv/passive`) and reloaded on restart.
//! - Timers are uniformly jittered, not "T or 2T"; every neighbour is pinged from the
//!   moment it joins; the ping timeout follows each link's RTT history; a silent
//!   neighbour is probed through others before it is evicted; and a node that sees its
//!   own timers fire late does not blame its neighbours (Lifeguard's local health).
//! - A neighbour that misses a ping is only *suspected* for a while (Lifeguard's
//!   suspicion, `suspicion_timeout_ms`), which it refutes by answering or by pinging its
//!   accuser; and any message heard from a neighbour spares it a ping, so an idle link
//!   carries one exchange per ping interval, not one per end (`traffic_is_liveness`);
//!   and a node pings one neighbour per interval, the stalest, rather than each of them
//!   (`rotate_pings`). These are the `lan` profile's; `fast` is the detector without
//!   them (see `profile`).
//!
//! Files: `config` (knobs), `profile` (named sets of them), `message` (wire), `views`
//! (passive view, sampling), `refill` (the passive view topped up from the member
//! list), `rtt`
//! and `health` (detector state), `links` (which links we hold and why), `join`
//! (contacts), `overlay` (the rest of HyParView), `detector` (probing), `event` (what
//! is reported).

mod config;
mod detector;
mod event;
mod health;
mod join;
mod links;
mod message;
mod overlay;
mod profile;
mod refill;
mod rtt;
mod views;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use config::{ConfigError, MAX_ACTIVE_VIEW, MAX_PASSIVE_VIEW, MembershipConfig};
pub use event::{Counters, DownCause, MembershipEvent};
pub use message::{Kind, MAX_SAMPLE, Message, PeerAddr, Sample};
pub use profile::{Profile, UnknownProfile};
pub use views::PASSIVE_KEY;

use health::{LocalHealth, NeighborHealth, Probe};
use join::JoinState;
use links::{LinkInfo, Pending, Relay};
use refill::RefillState;
use views::PassiveView;

use crate::id::{Addr, NodeId};
use crate::link::{ConnectError, DownReason};
use crate::persist::Snapshot;
use crate::protocol::{Ctx, Protocol, TimerId};
use crate::time::{Duration, Instant};
use crate::wire::WireError;

/// A timer membership set: what it is for, and when it was due (so a late firing — this
/// node stalled — can be told apart from a silent peer).
#[derive(Debug)]
pub struct Timer {
    due: Instant,
    kind: TimerKind,
}

#[derive(Debug)]
enum TimerKind {
    /// Repair the active view, close idle links, persist the passive view.
    Repair,
    /// Join through a contact if still isolated.
    Join,
    Shuffle,
    /// Send the next ping to a neighbour.
    Ping(NodeId),
    /// With `rotate_pings`: ping the neighbour heard from longest ago.
    Rotate,
    /// The direct wait for ping `seq` is over.
    PingTimeout(NodeId, u64),
    /// The indirect window for ping `seq` is over.
    IndirectTimeout(NodeId, u64),
    /// A neighbour or join request to this peer went unanswered.
    RequestTimeout(NodeId),
    /// An indirect probe we relay (our ping `seq`) went unanswered.
    RelayTimeout(u64),
}

type Cx<'a, 'b> = Ctx<'a, Timer, MembershipEvent>;

/// How eagerly the active view is refilled (see `Membership::repair`).
#[derive(Debug)]
struct RepairState {
    /// Requests that may still follow one another at once, granted by a loss.
    credit: u32,
    /// Wait before the next top-up after a refused or failed request; doubles up to
    /// `passive_retry_max_ms`, reset by a new neighbour.
    backoff: Duration,
    top_up_at: Instant,
}

/// One active-view member.
#[derive(Debug)]
struct Neighbor {
    addr: Addr,
    health: NeighborHealth,
}

/// The HyParView membership protocol; see the module docs.
pub struct Membership {
    cfg: MembershipConfig,
    active: BTreeMap<NodeId, Neighbor>,
    passive: PassiveView,
    /// Every established link, whatever it is for.
    links: BTreeMap<NodeId, LinkInfo>,
    /// Dials in progress and requests awaiting an answer, by peer.
    pending: BTreeMap<NodeId, Pending>,
    /// Indirect probes we relay, by the seq of our own ping to the target.
    relays: BTreeMap<u64, Relay>,
    join: JoinState,
    repair: RepairState,
    refill: RefillState,
    /// Neighbours whose link the transport dropped, until when a link coming back up is
    /// taken for a flap (see `links.rs`).
    recently_lost: BTreeMap<NodeId, Instant>,
    /// Ids we sent in our last shuffle, evicted first when the reply makes room.
    last_shuffle: Vec<NodeId>,
    next_seq: u64,
    local: LocalHealth,
    counters: Counters,
}

impl Membership {
    /// A node's membership, with the passive view it persisted before a restart (if
    /// any). `contacts` are the addresses to join through, as the contacts advertise
    /// them in their link handshake (that is how a dialled contact is recognised when it
    /// answers). Pass the same full list to every node, a contact's own address
    /// included: that is how a contact knows to introduce itself to all the others.
    pub fn new(
        config: MembershipConfig,
        contacts: Vec<Addr>,
        recovered: &Snapshot,
    ) -> Result<Membership, ConfigError> {
        config.validate().map_err(ConfigError)?;
        let mut counters = Counters::default();
        let passive = match recovered.get(PASSIVE_KEY) {
            None => PassiveView::new(config.passive_view),
            Some(bytes) => PassiveView::restore(config.passive_view, bytes).unwrap_or_else(|_| {
                // A torn or foreign record must not keep the node from starting: the
                // contacts still get it into the overlay.
                counters.passive_restore_failed = 1;
                PassiveView::new(config.passive_view)
            }),
        };
        Ok(Membership {
            join: JoinState::new(&config, contacts),
            repair: RepairState {
                credit: 0,
                backoff: Duration::from_millis(config.repair_period_ms),
                top_up_at: Instant::ZERO,
            },
            refill: RefillState::default(),
            recently_lost: BTreeMap::new(),
            cfg: config,
            active: BTreeMap::new(),
            passive,
            links: BTreeMap::new(),
            pending: BTreeMap::new(),
            relays: BTreeMap::new(),
            last_shuffle: Vec::new(),
            next_seq: 0,
            local: LocalHealth::default(),
            counters,
        })
    }

    pub fn config(&self) -> &MembershipConfig {
        &self.cfg
    }
    /// The active view, in id order.
    pub fn active_view(&self) -> Vec<NodeId> {
        self.active.keys().copied().collect()
    }
    /// The passive view, in id order.
    pub fn passive_view(&self) -> Vec<NodeId> {
        self.passive.ids().collect()
    }
    pub fn is_neighbor(&self, peer: NodeId) -> bool {
        self.active.contains_key(&peer)
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    /// The view invariants — no self, active and passive disjoint, both within bounds —
    /// checked without allocating, so a simulator can afford it after every event.
    pub fn check_views(&self, me: NodeId) -> Result<(), String> {
        if self.active.len() > self.cfg.active_view {
            return Err(format!(
                "active view of {} exceeds {}",
                self.active.len(),
                self.cfg.active_view
            ));
        }
        if self.passive.len() > self.cfg.passive_view {
            return Err(format!(
                "passive view of {} exceeds {}",
                self.passive.len(),
                self.cfg.passive_view
            ));
        }
        if self.active.contains_key(&me) || self.passive.contains(me) {
            return Err("a node is in its own view".into());
        }
        match self.active.keys().find(|p| self.passive.contains(**p)) {
            Some(both) => Err(format!("{both} is in both the active and the passive view")),
            None => Ok(()),
        }
    }
    /// Lifeguard's local health score (0 = healthy); timeouts are scaled by `1 + score`.
    pub fn local_health(&self) -> u32 {
        self.local.score()
    }
    /// The smoothed round-trip time to a neighbour, once measured.
    pub fn rtt(&self, peer: NodeId) -> Option<Duration> {
        self.active.get(&peer)?.health.rtt.smoothed()
    }

    /// De-partitioning, on global membership's behalf: `peer` is a member the global
    /// graph says is unreachable. Ask it, with priority, to become a neighbour — two
    /// healed halves of a partition need only one link between them to find each other
    /// (global membership exchanges table digests over it). A peer that cannot be
    /// reached fails the request like any other.
    pub fn probe(&mut self, peer: NodeId, addr: Addr, ctx: &mut Cx) {
        self.request_neighbor(ctx, &PeerAddr { id: peer, addr }, true);
    }

    /// Another node suspects `peer` (global membership carries suspicions): if it is
    /// our neighbour and between rounds, ping it now rather than at its next turn. Our
    /// own detector still decides, so a wrong or hostile accusation costs one ping.
    /// This is what makes a silent failure known to all of the dead node's neighbours
    /// about as soon as to the first of them, instead of each in its own round.
    pub fn check_now(&mut self, peer: NodeId, ctx: &mut Cx) {
        let Some(n) = self.active.get(&peer) else {
            return;
        };
        if let Probe::Idle { timer, .. } = n.health.probe {
            if let Some(timer) = timer {
                ctx.cancel_timer(timer);
            }
            self.counters.early_pings += 1;
            self.ping(peer, ctx);
        }
    }

    /// A message from `peer` arrived (membership's own, or any other protocol's: the
    /// stack reports those): with
    /// `traffic_is_liveness`, it counts as an answer, and the neighbour's next ping
    /// waits a ping interval from now (see `on_ping_tick`).
    pub fn heard(&mut self, peer: NodeId, now: Instant) {
        if let Some(n) = self.active.get_mut(&peer) {
            n.health.heard = now;
        }
    }

    /// Neighbour `accuser` publishes that it suspects us (global membership carries
    /// suspicions): refute it at once with a ping, which (with `traffic_is_liveness`)
    /// clears the suspicion on its side — it need not wait for its own probe to come
    /// back, nor for a helper's. Lifeguard's refutation, without a message of its own.
    pub fn refute(&mut self, accuser: NodeId, ctx: &mut Cx) {
        if self.cfg.traffic_is_liveness && self.active.contains_key(&accuser) {
            self.counters.refutations += 1;
            let seq = self.next_seq();
            self.send(ctx, accuser, &Message::Ping { seq });
        }
    }

    /// Leave the cluster, just before the node stops: tell every neighbour, so each drops
    /// this node from both its views and repairs at once rather than detecting a
    /// failure and dialling a node that is gone. The driver closes the links after the
    /// messages are flushed; a node that keeps running after this rejoins through its
    /// repair like any other.
    pub fn leave(&mut self, ctx: &mut Cx) {
        let neighbors: Vec<NodeId> = self.active.keys().copied().collect();
        for peer in neighbors {
            self.send(ctx, peer, &Message::Leave);
        }
    }

    /// Arm a timer of `kind` after `after`.
    fn arm(&self, ctx: &mut Cx, after: Duration, kind: TimerKind) -> TimerId {
        let due = ctx.now() + after;
        ctx.set_timer(after, Timer { due, kind })
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

impl Protocol for Membership {
    type Timer = Timer;
    type Event = MembershipEvent;

    fn start(&mut self, ctx: &mut Cx) {
        let (me, my_addr) = (ctx.id(), ctx.addr().clone());
        self.passive.remove(me);
        self.join.start(&my_addr);
        let repair = Duration::from_nanos(ctx.rng().below(
            0,
            Duration::from_millis(self.cfg.repair_period_ms).as_nanos(),
        ));
        self.arm(ctx, repair, TimerKind::Repair);
        // The first shuffle comes sooner than the period, so a new node learns of peers
        // beyond its first neighbours early.
        let period = Duration::from_millis(self.cfg.shuffle_period_ms);
        let shuffle = Duration::from_nanos(ctx.rng().below(0, period.as_nanos()));
        self.arm(ctx, shuffle, TimerKind::Shuffle);
        // A restarted node first tries the neighbours it remembers, then introduces
        // itself through a contact all the same; a new one goes straight to a contact.
        let join = if self.passive.len() == 0 {
            repair
        } else {
            self.cfg.jittered(ctx.rng(), self.cfg.join_retry_ms)
        };
        self.join.timer = Some(self.arm(ctx, join, TimerKind::Join));
        if self.cfg.rotate_pings {
            let tick = self.cfg.jittered(ctx.rng(), self.cfg.ping_interval_ms);
            self.arm(ctx, tick, TimerKind::Rotate);
        }
        self.repair(ctx);
    }

    fn link_up(&mut self, peer: NodeId, addr: &Addr, ctx: &mut Cx) {
        self.on_link_up(peer, addr, ctx);
    }

    fn link_down(&mut self, peer: NodeId, _reason: DownReason, ctx: &mut Cx) {
        self.on_link_down(peer, ctx);
    }

    fn connect_failed(
        &mut self,
        addr: &Addr,
        expected: Option<NodeId>,
        _error: ConnectError,
        ctx: &mut Cx,
    ) {
        self.on_connect_failed(addr, expected, ctx);
    }

    fn message_kind(body: &[u8]) -> Option<&'static str> {
        Message::decode(body).ok().map(|m| m.kind_name())
    }

    fn message(&mut self, from: NodeId, body: &[u8], ctx: &mut Cx) -> Result<(), WireError> {
        let msg = Message::decode(body)?;
        self.counters.count_received(msg.kind());
        self.heard(from, ctx.now());
        let Some(from_addr) = self.links.get(&from).map(|l| l.addr.clone()) else {
            // Messages only arrive on links we were told about; nothing to answer on.
            return Ok(());
        };
        let from = PeerAddr {
            id: from,
            addr: from_addr,
        };
        match msg {
            Message::Join => self.on_join(from, ctx),
            Message::ForwardJoin { joiner, ttl } => self.on_forward_join(from.id, joiner, ttl, ctx),
            Message::Neighbor { high } => self.on_neighbor(from, high, ctx),
            Message::NeighborReply { accepted } => self.on_neighbor_reply(from, accepted, ctx),
            Message::Disconnect => self.on_disconnect(from.id, ctx),
            Message::Shuffle {
                origin,
                ttl,
                sample,
            } => self.on_shuffle(from.id, origin, ttl, sample, ctx),
            Message::ShuffleReply { sample } => self.on_shuffle_reply(sample, ctx),
            Message::Ping { seq } => self.on_ping(from.id, seq, ctx),
            Message::Pong { seq } => self.on_pong(from.id, seq, ctx),
            Message::ProbeRequest {
                target,
                seq,
                within_ms,
            } => self.on_probe_request(from.id, target, seq, within_ms, ctx),
            Message::ProbeReply { target, seq, alive } => {
                self.on_probe_reply(target, seq, alive, ctx)
            }
            Message::Leave => self.on_leave(from.id, ctx),
        }
        Ok(())
    }

    fn timer(&mut self, timer: Timer, ctx: &mut Cx) {
        let late =
            ctx.now().saturating_since(timer.due) > Duration::from_millis(self.cfg.late_timer_ms);
        if late {
            self.counters.late_timers += 1;
            self.local.worse(self.cfg.local_health_max);
        }
        match timer.kind {
            TimerKind::Repair => self.on_repair_tick(ctx),
            TimerKind::Join => self.on_join_tick(ctx),
            TimerKind::Shuffle => self.on_shuffle_tick(ctx),
            TimerKind::Ping(peer) => self.on_ping_tick(peer, ctx),
            TimerKind::Rotate => self.on_rotate_tick(ctx),
            TimerKind::PingTimeout(peer, seq) => self.on_ping_timeout(peer, seq, late, ctx),
            TimerKind::IndirectTimeout(peer, seq) => self.on_indirect_timeout(peer, seq, late, ctx),
            TimerKind::RequestTimeout(peer) => self.on_request_timeout(peer, ctx),
            TimerKind::RelayTimeout(seq) => self.on_relay_timeout(seq, ctx),
        }
    }
}
