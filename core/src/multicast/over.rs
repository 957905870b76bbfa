//! Multicast as a protocol: [`Multicast`] bound, for one call, to the graph it routes
//! over.
//!
//! Multicast derives its trees from a graph it does not own: global membership keeps
//! it, and multicast must read the graph as it is at the moment a copy arrives or a
//! neighbour goes (a copy of the graph would be stale, or cost a table per node).
//! [`Protocol`]'s methods take only the protocol and its context, so the parent binds
//! the two with [`Multicast::over`] and drives the pair: `mc.over(&gm).message(from,
//! body, ctx)`, the same calls, in the same order, as for every other protocol. The
//! graph is read through [`GraphView`], so multicast runs over any membership that can
//! answer it, not only hawser's.

use std::collections::BTreeSet;

use super::{Delivery, Multicast, MulticastError, NoTimer, Packet};
use crate::gm::GlobalMembership;
use crate::id::NodeId;
use crate::protocol::{Ctx, Layered, Protocol};
use crate::routing::Routing;
use crate::wire::WireError;

type Cx<'a> = Ctx<'a, NoTimer, Delivery>;

/// What multicast reads of the membership whose graph it routes over.
pub trait GraphView {
    /// Routing over the graph (the origins' trees); `None` before the membership
    /// started.
    fn routing(&self) -> Option<&Routing>;
    /// A fingerprint of the graph: equal on two nodes when they route alike.
    fn view(&self) -> u64;
    /// This node's neighbours in the graph: where a flood goes.
    fn neighbors(&self) -> &BTreeSet<NodeId>;
    /// This node's incarnation, so a restarted node's sequence numbers are new.
    fn incarnation(&self) -> u64;
}

impl GraphView for GlobalMembership {
    fn routing(&self) -> Option<&Routing> {
        GlobalMembership::routing(self)
    }
    fn view(&self) -> u64 {
        GlobalMembership::view(self)
    }
    fn neighbors(&self) -> &BTreeSet<NodeId> {
        GlobalMembership::neighbors(self)
    }
    fn incarnation(&self) -> u64 {
        self.version().incarnation
    }
}

/// [`Multicast`] with the graph it routes over: the protocol the parent drives.
pub struct MulticastOver<'a, G> {
    multicast: &'a mut Multicast,
    graph: &'a G,
}

impl Multicast {
    /// Bind this multicast to `graph` for the calls that follow (see the module docs).
    pub fn over<'a, G: GraphView>(&'a mut self, graph: &'a G) -> MulticastOver<'a, G> {
        MulticastOver {
            multicast: self,
            graph,
        }
    }
}

impl<G: GraphView> MulticastOver<'_, G> {
    /// Send `payload` under `topic` to every node reachable from this one. Returns the
    /// message's `(origin, seq)`, as receivers will report it.
    pub fn send(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        ctx: &mut Cx,
    ) -> Result<(NodeId, u64), MulticastError> {
        self.multicast.send(self.graph, topic, payload, ctx)
    }
}

impl<G: GraphView> Protocol for MulticastOver<'_, G> {
    type Timer = NoTimer;
    type Event = Delivery;

    /// A message older than the node's life is not delivered: the life starts now.
    fn start(&mut self, ctx: &mut Cx) {
        self.multicast.started = ctx.now();
    }

    /// A copy from `from`: deliver it if new, and pass it on.
    fn message(&mut self, from: NodeId, body: &[u8], ctx: &mut Cx) -> Result<(), WireError> {
        self.multicast.message(self.graph, from, body, ctx)
    }

    fn timer(&mut self, timer: NoTimer, _ctx: &mut Cx) {
        match timer {}
    }

    fn message_kind(body: &[u8]) -> Option<&'static str> {
        Packet::decode(body).ok().map(|_| "multicast.data")
    }
}

/// Multicast runs over membership's neighbours, which its repair follows.
impl<G: GraphView> Layered for MulticastOver<'_, G> {
    /// Offer the new neighbour what this node holds for repair and never sent it.
    fn neighbor_up(&mut self, peer: NodeId, ctx: &mut Cx) {
        self.multicast.offer(self.graph, peer, ctx)
    }

    /// Flood again what went to `peer` within the repair window. The graph must no
    /// longer count `peer` as a neighbour (the parent tells global membership first).
    fn neighbor_down(&mut self, peer: NodeId, ctx: &mut Cx) {
        self.multicast.repair(self.graph, peer, ctx)
    }
}
