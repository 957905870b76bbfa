//! The `Node`: one protocol hosted over authenticated links, behind the driver-facing
//! `handle_*` / `poll_*` interface of DESIGN.md.

use std::collections::VecDeque;

use crate::id::{Addr, Name, NodeId};
use crate::link::{ConnId, Cookie, DownReason, LinkConfig, LinkEvent, Links, Transmit};
use crate::persist::{PersistSeq, Record};
use crate::protocol::{Ctx, Protocol, Timers};
use crate::rng::{NodeRng, RngSeed};
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire::WireError;

/// Who a node is: its id, its human name, where it accepts links, and the cluster secret
/// it proves.
#[derive(Clone, Debug)]
pub struct Identity {
    pub id: NodeId,
    pub name: Name,
    pub addr: Addr,
    pub cookie: Cookie,
}

/// What a node reports to its driver.
#[derive(Debug)]
pub enum Event<E> {
    /// Something at the link layer: up, down, failed dial, refused peer, bad frame.
    Link(LinkEvent),
    /// A linked peer sent a message its protocol could not decode; the link was dropped.
    BadMessage { from: NodeId, error: WireError },
    /// Something the protocol emitted.
    App(E),
}

/// What a node handled, named for a driver's debugging log (the simulator's
/// `--trace`). Recorded only once [`Node::observe`] was called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A message from a linked peer; `kind` as [`Protocol::message_kind`] names it.
    Message {
        from: NodeId,
        kind: Option<&'static str>,
    },
    /// A timer the protocol set fired: its `Debug` form.
    Timer(String),
}

/// A protocol `P` running over authenticated links.
pub struct Node<P: Protocol> {
    protocol: P,
    name: Name,
    links: Links,
    timers: Timers<P::Timer>,
    events: VecDeque<Event<P::Event>>,
    persist: VecDeque<Record>,
    next_persist: u64,
    rng: NodeRng,
    stats: Stats,
    /// `Some` while observed: what [`Node::poll_observed`] has not handed out yet.
    observed: Option<VecDeque<Observed>>,
}

/// Build a [`Ctx`] over the node's parts, leaving `protocol` free to borrow mutably.
macro_rules! ctx {
    ($node:ident, $now:expr) => {
        &mut Ctx {
            now: $now,
            name: &$node.name,
            links: &mut $node.links,
            timers: &mut $node.timers,
            events: &mut $node.events,
            persist: &mut $node.persist,
            next_persist: &mut $node.next_persist,
            rng: &mut $node.rng,
            stats: &mut $node.stats,
            channel: None,
        }
    };
}

impl<P: Protocol> Node<P> {
    /// A node that has not started yet. `seed` feeds the only RNG the node uses;
    /// `protocol` was built by the caller, from a recovered snapshot if there is one.
    pub fn new(
        config: LinkConfig,
        identity: Identity,
        seed: impl Into<RngSeed>,
        protocol: P,
    ) -> Result<Node<P>, String> {
        config.validate()?;
        let Identity {
            id,
            name,
            addr,
            cookie,
        } = identity;
        Ok(Node {
            protocol,
            name,
            links: Links::new(config, id, addr, cookie),
            timers: Timers::new(),
            events: VecDeque::new(),
            persist: VecDeque::new(),
            next_persist: 0,
            rng: NodeRng::from_seed(seed),
            stats: Stats::default(),
            observed: None,
        })
    }

    pub fn id(&self) -> NodeId {
        self.links.id()
    }
    pub fn name(&self) -> &Name {
        &self.name
    }
    pub fn protocol(&self) -> &P {
        &self.protocol
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn links(&self) -> &Links {
        &self.links
    }
    /// Timers the protocol has pending (a bound the simulator checks).
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Record, from now on, the messages and timers this node handles, named, for
    /// [`Node::poll_observed`]. Naming a message decodes it a second time; a node that is
    /// not observed pays nothing for it. Observing changes nothing the node does.
    pub fn observe(&mut self) {
        self.observed.get_or_insert_with(VecDeque::new);
    }

    /// Start the protocol. Call once, before any other input.
    pub fn handle_start(&mut self, now: Instant) {
        self.protocol.start(ctx!(self, now));
        self.dispatch(now);
    }

    /// A user command: run `f` against the protocol with a context to act through.
    pub fn command<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut P, &mut Ctx<'_, P::Timer, P::Event>) -> R,
    ) -> R {
        let r = f(&mut self.protocol, ctx!(self, now));
        self.dispatch(now);
        r
    }

    /// The transport accepted a connection; returns the id to report its frames under.
    pub fn handle_accept(&mut self, now: Instant) -> ConnId {
        self.links.accepted(now, &mut self.rng)
    }

    /// An outbound connection (from [`Transmit::Connect`]) is established.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        self.links.connected(conn, &mut self.rng);
        self.dispatch(now);
    }

    /// The transport authenticated the peer on `conn` as `peer` (mutual TLS), before any
    /// of its frames: its hello must then claim that id.
    pub fn handle_transport_identity(&mut self, conn: ConnId, peer: NodeId) {
        self.links.transport_verified(conn, peer);
    }

    /// The transport refused the peer's credentials on `conn` (mutual TLS): counted,
    /// reported and closed as a failed cookie proof is.
    pub fn handle_transport_refused(&mut self, now: Instant, conn: ConnId) {
        self.links.transport_refused(&mut self.stats, conn);
        self.dispatch(now);
    }

    /// A connection closed, reset, or failed to connect.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.links.closed(conn);
        self.dispatch(now);
    }

    /// One complete frame (header included) arrived on `conn`.
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: &[u8]) {
        self.links.frame(&mut self.stats, conn, frame);
        self.dispatch(now);
    }

    /// The driver's clock reached a deadline from [`Node::poll_timeout`] (or later).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.links.expire(now, &mut self.stats);
        self.dispatch(now);
        while let Some(timer) = self.timers.pop_due(now) {
            if let Some(observed) = &mut self.observed {
                observed.push_back(Observed::Timer(format!("{timer:?}")));
            }
            self.protocol.timer(timer, ctx!(self, now));
            self.dispatch(now);
        }
    }

    /// Every record up to `seq` from [`Node::poll_persist`] is durable.
    pub fn handle_persisted(&mut self, now: Instant, seq: PersistSeq) {
        self.protocol.persisted(seq, ctx!(self, now));
        self.dispatch(now);
    }

    /// Replace the cluster cookie. Every link is dropped and must authenticate again under
    /// the new secret; with a wrong cookie, no link can.
    pub fn handle_cookie(&mut self, now: Instant, cookie: Cookie) {
        self.links.rekey(cookie);
        self.dispatch(now);
    }

    /// Hand link-layer happenings to the protocol (and, except messages, to the driver).
    fn dispatch(&mut self, now: Instant) {
        while let Some(event) = self.links.poll_event() {
            match event {
                LinkEvent::Message { from, body } => {
                    if let Some(observed) = &mut self.observed {
                        let kind = P::message_kind(&body);
                        observed.push_back(Observed::Message { from, kind });
                    }
                    if let Err(error) = self.protocol.message(from, &body, ctx!(self, now)) {
                        self.stats.decode_errors += 1;
                        self.links.disconnect(from);
                        self.events.push_back(Event::BadMessage { from, error });
                        self.protocol
                            .link_down(from, DownReason::Protocol, ctx!(self, now));
                    }
                }
                LinkEvent::Up { peer, ref addr } => {
                    self.protocol.link_up(peer, addr, ctx!(self, now));
                    self.events.push_back(Event::Link(event));
                }
                LinkEvent::Down { peer, reason } => {
                    self.protocol.link_down(peer, reason, ctx!(self, now));
                    self.events.push_back(Event::Link(event));
                }
                LinkEvent::ConnectFailed {
                    ref addr,
                    expected,
                    error,
                } => {
                    self.protocol
                        .connect_failed(addr, expected, error, ctx!(self, now));
                    self.events.push_back(Event::Link(event));
                }
                LinkEvent::AuthFailure { .. }
                | LinkEvent::DecodeError { .. }
                | LinkEvent::DuplicateRefused { .. }
                | LinkEvent::RefusedByPeer { .. } => self.events.push_back(Event::Link(event)),
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.links.poll_transmit()
    }
    /// The earliest instant the node wants [`Node::handle_timeout`] called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.next_deadline(), self.links.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    pub fn poll_event(&mut self) -> Option<Event<P::Event>> {
        self.events.pop_front()
    }
    pub fn poll_persist(&mut self) -> Option<Record> {
        self.persist.pop_front()
    }
    /// What the node handled since the last call, if it is observed (see
    /// [`Node::observe`]).
    pub fn poll_observed(&mut self) -> Option<Observed> {
        self.observed.as_mut()?.pop_front()
    }
}
