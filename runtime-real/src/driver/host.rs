//! The layer a protocol puts on top of the generic driver.
//!
//! The driver moves bytes, records and time for any [`Protocol`]; what the protocol's
//! events *mean* to the process around it is not its business. A [`Host`] says it: what
//! to do with each event the protocol emits, what requests other tasks may send besides
//! inspect and command (hawser's stack: a KV op answered once durable, a watch), what to
//! derive after each drain (followers, gauges), how the node leaves, and how log lines
//! name a peer. The driver calls it inside the node task, between two inputs, so a host
//! sees the node exactly as the last input left it — and must be quick.

use std::collections::BTreeMap;
use std::time::Duration;

use hawser_core::stack::Stack;
use hawser_core::{Addr, Instant, Node, NodeId, Protocol};

use crate::lograte::{LineKind, LogLimiter};
use crate::metrics::Metrics;

/// What the driver can show of the node: read-only, inside the driver task.
pub struct View<'a, P: Protocol = Stack> {
    pub node: &'a Node<P>,
    /// Where each peer we linked with said it listens (from its handshake).
    pub peers: &'a BTreeMap<NodeId, Addr>,
    /// The node's clock now (what its timers and "since" instants are measured on).
    pub now: Instant,
    /// Why this node runs cut off from the cluster, if it does (see `isolation`).
    pub isolated: Option<&'static str>,
}

/// What a [`Host`] works with when the driver calls it: the node, mutable (a request may
/// act on it; the driver drains what that caused right after), and what the driver
/// knows around it.
pub struct HostCx<'a, P: Protocol> {
    pub node: &'a mut Node<P>,
    pub now: Instant,
    pub peers: &'a BTreeMap<NodeId, Addr>,
    pub isolated: Option<&'static str>,
    pub metrics: &'a Metrics,
    pub(super) log: &'a mut LogLimiter,
    /// Time since the driver was made: the rate limiter's clock.
    pub(super) elapsed: Duration,
    pub(super) peer_name: fn(&Node<P>, NodeId) -> Option<String>,
}

impl<P: Protocol> HostCx<'_, P> {
    /// The node, read-only, as inspectors and followers see it.
    pub fn view(&self) -> View<'_, P> {
        View {
            node: self.node,
            peers: self.peers,
            now: self.now,
            isolated: self.isolated,
        }
    }

    /// Whether a line of `kind` that a remote party can cause may be written now;
    /// `Some(lines left out since the last one)` if so. Lines left out are counted in
    /// `log_lines_suppressed` (see `lograte`).
    pub fn admit(&mut self, kind: LineKind) -> Option<u64> {
        admit(self.log, self.elapsed, self.metrics, kind)
    }

    /// A peer as log lines name it: `name (id)` if the host knows its name, else the id.
    pub fn who(&self, id: NodeId) -> String {
        who(self.peer_name, self.node, id)
    }
}

/// [`HostCx::admit`], shared with the driver's own refusal lines.
pub(super) fn admit(
    log: &mut LogLimiter,
    elapsed: Duration,
    metrics: &Metrics,
    kind: LineKind,
) -> Option<u64> {
    let admitted = log.admit(kind, elapsed);
    if admitted.is_none() {
        metrics.log_lines_suppressed.inc();
    }
    admitted
}

/// [`HostCx::who`], shared with the driver's own log lines.
pub(super) fn who<P: Protocol>(
    peer_name: fn(&Node<P>, NodeId) -> Option<String>,
    node: &Node<P>,
    id: NodeId,
) -> String {
    match peer_name(node, id) {
        Some(name) => format!("{name} ({id})"),
        None => id.to_string(),
    }
}

/// A protocol the driver can run: the node lives in the driver's task, so the protocol,
/// its timers and its events must be `Send`. Every such [`Protocol`] is one.
pub trait RunnableProtocol: Protocol<Timer: Send, Event: Send> + Send + 'static {}

impl<P: Protocol<Timer: Send, Event: Send> + Send + 'static> RunnableProtocol for P {}

/// The protocol-specific layer of a driver; see the module docs. Only [`Host::event`]
/// and [`Host::request`] are required.
pub trait Host: Send + 'static {
    /// The protocol the node runs.
    type Protocol: RunnableProtocol;
    /// What [`DriverHandle::request`](super::DriverHandle::request) carries to this
    /// host (use [`std::convert::Infallible`] for none).
    type Request: Send + 'static;

    /// The protocol emitted `event`.
    fn event(
        &mut self,
        cx: &mut HostCx<'_, Self::Protocol>,
        event: <Self::Protocol as Protocol>::Event,
    );

    /// Another task sent `request` through a [`DriverHandle`](super::DriverHandle).
    fn request(&mut self, cx: &mut HostCx<'_, Self::Protocol>, request: Self::Request);

    /// The driver drained every output of the node (after each input): derive what
    /// must follow the node closely (followers, gauges).
    fn drained(&mut self, _cx: &mut HostCx<'_, Self::Protocol>) {}

    /// The driver is shutting down: act on the node so peers hear of it (hawser's stack
    /// tells its neighbours it leaves). The driver then flushes what that sent, closes
    /// every connection and makes everything persisted durable.
    fn leave(&mut self, _node: &mut Node<Self::Protocol>, _now: Instant) {}

    /// An event emitted during shutdown, after the last batch is durable. Nothing else
    /// will be done with the node: answer what waits on it (hawser's stack answers KV
    /// ops that the last batch made durable) and drop the rest.
    fn last_event(&mut self, _event: <Self::Protocol as Protocol>::Event) {}

    /// The name log lines give `id`, if the protocol knows it.
    fn peer_name(_node: &Node<Self::Protocol>, _id: NodeId) -> Option<String> {
        None
    }

    /// Bound the address book of [`View::peers`] (a long churn must not grow it
    /// without end); called after every event. By default it keeps linked peers only,
    /// once it holds others.
    fn prune_peers(node: &Node<Self::Protocol>, peers: &mut BTreeMap<NodeId, Addr>) {
        let links = node.links();
        if peers.len() > links.peers().count() {
            peers.retain(|id, _| links.is_linked(*id));
        }
    }
}
