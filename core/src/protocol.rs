//! The contract every protocol in hawser (and every protocol an SDK user writes) follows.
//!
//! A protocol is a plain state machine. The [`Node`](crate::Node) calls it when something
//! happens — it started, a link came up or went down, a message arrived, a timer fired, a
//! record became durable — and hands it a [`Ctx`] through which it acts: send, dial,
//! hang up, set and cancel timers, persist, emit events, draw random numbers. Nothing a
//! protocol does touches the outside world directly; the node queues it all for the
//! driver, which is how the same protocol runs under the simulator and under tokio.
//!
//! Why a context instead of a `poll_*` API on every protocol: protocols compose (hawser's
//! stack is several of them in one node), and writing into one shared context keeps
//! their outputs in a single, deterministic order. The [`Node`](crate::Node) still offers
//! drivers the `handle_*` / `poll_*` shape of DESIGN.md.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::id::{Addr, Name, NodeId};
use crate::link::{ConnectError, DownReason, Links, SendError};
use crate::node::Event;
use crate::persist::{PersistSeq, Record};
use crate::rng::NodeRng;
use crate::stats::Stats;
use crate::time::{Duration, Instant};
use crate::wire::WireError;

/// A protocol hosted by a [`Node`](crate::Node). Every method has a default that does
/// nothing, except the ones a protocol cannot do without.
pub trait Protocol {
    /// What the protocol's timers carry, so it knows which one fired.
    type Timer: fmt::Debug;
    /// What the protocol tells the application (membership changes, deliveries, ...).
    type Event: fmt::Debug;

    /// The node started (fresh, or rebuilt from a snapshot).
    fn start(&mut self, ctx: &mut Ctx<'_, Self::Timer, Self::Event>);

    /// An authenticated link to `peer` is up (we dialled it, or it dialled us).
    fn link_up(
        &mut self,
        _peer: NodeId,
        _addr: &Addr,
        _ctx: &mut Ctx<'_, Self::Timer, Self::Event>,
    ) {
    }

    /// The link to `peer` went down (not called for links the protocol closed itself).
    fn link_down(
        &mut self,
        _peer: NodeId,
        _reason: DownReason,
        _ctx: &mut Ctx<'_, Self::Timer, Self::Event>,
    ) {
    }

    /// A [`Ctx::connect`] did not produce a link.
    fn connect_failed(
        &mut self,
        _addr: &Addr,
        _expected: Option<NodeId>,
        _error: ConnectError,
        _ctx: &mut Ctx<'_, Self::Timer, Self::Event>,
    ) {
    }

    /// A message from a linked peer. An error means the bytes are not a valid message:
    /// the node counts it and drops the link.
    fn message(
        &mut self,
        from: NodeId,
        body: &[u8],
        ctx: &mut Ctx<'_, Self::Timer, Self::Event>,
    ) -> Result<(), WireError>;

    /// A timer set with [`Ctx::set_timer`] fired.
    fn timer(&mut self, timer: Self::Timer, ctx: &mut Ctx<'_, Self::Timer, Self::Event>);

    /// Every record up to `seq` is durable.
    fn persisted(&mut self, _seq: PersistSeq, _ctx: &mut Ctx<'_, Self::Timer, Self::Event>) {}

    /// The kind of the message `body` (as [`Protocol::message`] would get it), named for
    /// a debugging log: `"membership.ping"`, `"kv.delta"`... `None` when the protocol
    /// names none or the bytes do not decode. Only a node that observes (see
    /// [`Node::observe`](crate::Node::observe)) calls it, so decoding a message twice
    /// costs only a driver that writes such a log.
    fn message_kind(_body: &[u8]) -> Option<&'static str> {
        None
    }
}

/// A protocol that runs over links another protocol keeps: in hawser's stack, global
/// membership, the KV and multicast run over the overlay membership maintains. Such a
/// protocol does not care about every link (membership dials peers it never keeps, to
/// probe or shuffle), only about the peers the owner calls neighbours, so its parent
/// hands it the owner's decisions, through these two methods, instead of
/// [`Protocol::link_up`] / [`Protocol::link_down`].
pub trait Layered: Protocol {
    /// `peer` became a neighbour (there is a link to it).
    fn neighbor_up(&mut self, peer: NodeId, ctx: &mut Ctx<'_, Self::Timer, Self::Event>);

    /// `peer` is no longer a neighbour (its link may be gone already).
    fn neighbor_down(&mut self, peer: NodeId, ctx: &mut Ctx<'_, Self::Timer, Self::Event>);
}

/// A scheduled timer; also the handle to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    at: Instant,
    seq: u64,
}

impl TimerId {
    pub fn at(&self) -> Instant {
        self.at
    }
}

/// A protocol's pending timers, earliest first (ties in the order they were set).
pub(crate) struct Timers<T> {
    queue: BTreeMap<TimerId, T>,
    next: u64,
}

impl<T> Timers<T> {
    pub(crate) fn new() -> Self {
        Timers {
            queue: BTreeMap::new(),
            next: 0,
        }
    }
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(id, _)| id.at)
    }
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        let entry = self.queue.first_entry()?;
        (entry.key().at <= now).then(|| entry.remove())
    }
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Where a context's timers go: the node's own timer queue, or a parent protocol's
/// (through [`Ctx::scope`]).
pub(crate) trait TimerSink<T> {
    fn set(&mut self, at: Instant, timer: T) -> TimerId;
    fn cancel(&mut self, id: TimerId) -> Option<T>;
}

impl<T> TimerSink<T> for Timers<T> {
    fn set(&mut self, at: Instant, timer: T) -> TimerId {
        let id = TimerId { at, seq: self.next };
        self.next += 1;
        self.queue.insert(id, timer);
        id
    }
    fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.queue.remove(&id)
    }
}

/// A sub-protocol's timers, stored in its parent's queue wrapped in the parent's type.
struct MapTimers<'b, T, U> {
    inner: &'b mut dyn TimerSink<T>,
    wrap: fn(U) -> T,
    unwrap: fn(T) -> Option<U>,
}

impl<T, U> TimerSink<U> for MapTimers<'_, T, U> {
    fn set(&mut self, at: Instant, timer: U) -> TimerId {
        self.inner.set(at, (self.wrap)(timer))
    }
    fn cancel(&mut self, id: TimerId) -> Option<U> {
        // Ids are only ever handed to the protocol that set them, so the type matches.
        self.inner.cancel(id).and_then(self.unwrap)
    }
}

/// Where a context's events go: the node's event queue, or a buffer the parent protocol
/// reads back (through [`Ctx::scope`]).
pub(crate) trait EventSink<E> {
    fn emit(&mut self, event: E);
}

impl<E> EventSink<E> for VecDeque<Event<E>> {
    fn emit(&mut self, event: E) {
        self.push_back(Event::App(event))
    }
}

impl<E> EventSink<E> for Vec<E> {
    fn emit(&mut self, event: E) {
        self.push(event)
    }
}

/// What a protocol acts through; see the module docs.
pub struct Ctx<'a, T, E> {
    pub(crate) now: Instant,
    pub(crate) name: &'a Name,
    pub(crate) links: &'a mut Links,
    pub(crate) timers: &'a mut dyn TimerSink<T>,
    pub(crate) events: &'a mut dyn EventSink<E>,
    pub(crate) persist: &'a mut VecDeque<Record>,
    pub(crate) next_persist: &'a mut u64,
    pub(crate) rng: &'a mut NodeRng,
    pub(crate) stats: &'a mut Stats,
    /// Prefixed to every message sent through this context (set by [`Ctx::scope`]), so
    /// the parent can route what arrives to the right sub-protocol.
    pub(crate) channel: Option<u8>,
}

impl<T, E> Ctx<'_, T, E> {
    pub fn now(&self) -> Instant {
        self.now
    }
    pub fn id(&self) -> NodeId {
        self.links.id()
    }
    pub fn name(&self) -> &Name {
        self.name
    }
    pub fn addr(&self) -> &Addr {
        self.links.addr()
    }
    pub fn rng(&mut self) -> &mut NodeRng {
        self.rng
    }

    /// Send a message on the link to `peer`. Fails (and is counted) when there is no link;
    /// the caller decides whether that matters.
    pub fn send(&mut self, peer: NodeId, body: &[u8]) -> Result<(), SendError> {
        match self.channel {
            Some(c) => self.links.send(self.stats, peer, &[&[c], body]),
            None => self.links.send(self.stats, peer, &[body]),
        }
    }
    /// Largest message body [`Ctx::send`] accepts.
    pub fn max_message(&self) -> usize {
        self.links.max_frame() - crate::link::TAG_LEN - usize::from(self.channel.is_some())
    }
    pub fn is_linked(&self, peer: NodeId) -> bool {
        self.links.is_linked(peer)
    }
    pub fn linked_peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.links.peers()
    }
    /// Dial `addr`; the outcome comes back as `link_up` or `connect_failed`.
    pub fn connect(&mut self, addr: Addr, expected: Option<NodeId>) {
        self.links.connect(self.now, addr, expected)
    }
    pub fn disconnect(&mut self, peer: NodeId) {
        self.links.disconnect(peer)
    }

    /// Fire `timer` at `now + after`.
    pub fn set_timer(&mut self, after: Duration, timer: T) -> TimerId {
        self.timers.set(self.now + after, timer)
    }
    /// Cancel a timer; returns what it carried if it had not fired yet.
    pub fn cancel_timer(&mut self, id: TimerId) -> Option<T> {
        self.timers.cancel(id)
    }

    /// Ask for `key = value` (or deletion) to be made durable; `persisted` reports it.
    pub fn persist(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> PersistSeq {
        *self.next_persist += 1;
        let seq = PersistSeq(*self.next_persist);
        self.persist.push_back(Record { seq, key, value });
        seq
    }

    pub fn emit(&mut self, event: E) {
        self.events.emit(event)
    }

    /// Run a sub-protocol with a context of its own types: its timers are stored in
    /// this context's queue wrapped by `wrap` (and come back through the parent's
    /// `timer`, to be unwrapped and passed down), its events are returned to the
    /// caller — which decides what to forward, and to whom — and every message it sends
    /// starts with the byte `channel`, by which the parent routes what arrives. This is
    /// how protocols compose into one node without sharing their types.
    pub fn scope<U, F, R>(
        &mut self,
        channel: u8,
        wrap: fn(U) -> T,
        unwrap: fn(T) -> Option<U>,
        f: impl FnOnce(&mut Ctx<'_, U, F>) -> R,
    ) -> (R, Vec<F>) {
        let mut timers = MapTimers {
            inner: &mut *self.timers,
            wrap,
            unwrap,
        };
        let mut events: Vec<F> = Vec::new();
        let r = f(&mut Ctx {
            now: self.now,
            name: self.name,
            links: &mut *self.links,
            timers: &mut timers,
            events: &mut events,
            persist: &mut *self.persist,
            next_persist: &mut *self.next_persist,
            rng: &mut *self.rng,
            stats: &mut *self.stats,
            channel: Some(channel),
        });
        (r, events)
    }
}
