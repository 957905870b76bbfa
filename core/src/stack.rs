//! hawser's node protocol: the protocols every hawser node runs, composed with
//! [`Ctx::scope`] into one [`Protocol`].
//!
//! Each sub-protocol has a channel byte that prefixes its messages. Membership owns the
//! links (it dials and hangs up); the protocols above it only send over the links it
//! keeps, and learn of neighbours from its events, which the stack hands on.
//!
//! KV deltas travel by multicast, under the reserved topic [`KV_TOPIC`]: along the
//! origin's trees, each node receiving about `trees` copies instead of one per
//! neighbour, and anti-entropy repairs whatever a multicast missed (a partition, a
//! delta larger than a packet takes).
//!
//! Global membership hears of every neighbour change (it publishes the node's
//! adjacency), and may ask membership to probe an unreachable member (de-partitioning).
//! Multicast derives its trees from global membership's graph.
//!
//! Every sub-protocol has one shape, the one a user's protocol has: a [`Protocol`]
//! with its own timer and event types, driven in its own scope (`*_scope` below), and
//! those above membership also [`Layered`] on its neighbours. What one needs of another
//! goes through the stack, never through a reference one holds to the other: the KV
//! asks for dissemination with an event, and multicast reads global membership's graph
//! through [`Multicast::over`], which binds the two for one call.

use std::convert::Infallible;

use crate::crdt::MapOp;
use crate::gm::{ForceLeaveError, GlobalMembership, GmConfig, GmEvent, GmTimer, Status};
use crate::id::{Addr, NodeId};
use crate::kv::{Kv, KvConfig, KvError, KvEvent, KvTimer, Ticket};
use crate::link::{ConnectError, DownReason};
use crate::membership::{
    ConfigError, Membership, MembershipConfig, MembershipEvent, PeerAddr, Timer as MembershipTimer,
};
use crate::multicast::{
    Delivery, Multicast, MulticastConfig, MulticastError, MulticastOver, NoTimer,
};
use crate::persist::{PersistSeq, Snapshot};
use crate::protocol::{Ctx, Layered, Protocol};
use crate::wire::{self, WireError};

/// Channel of membership messages.
const MEMBERSHIP: u8 = 0;
/// Channel of KV anti-entropy.
const KV: u8 = 1;
/// The multicast topic of KV deltas (refused to [`Stack::multicast`]).
pub const KV_TOPIC: &str = "hawser/kv";
/// Channel of global membership.
const GM: u8 = 3;
/// Channel of multicast.
const MULTICAST: u8 = 4;

#[derive(Debug)]
pub enum StackTimer {
    Membership(MembershipTimer),
    Kv(KvTimer),
    Gm(GmTimer),
}

/// Everything the node tells its user, by protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackEvent {
    Membership(MembershipEvent),
    /// `Committed` (a local op's answer, once durable) and `Changed`.
    Kv(KvEvent),
    Gm(GmEvent),
    Multicast(Delivery),
}

/// Settings of every protocol in the stack; each part documents its defaults.
#[derive(Clone, Debug, Default)]
pub struct StackConfig {
    pub membership: MembershipConfig,
    pub kv: KvConfig,
    pub gm: GmConfig,
    pub multicast: MulticastConfig,
}

impl StackConfig {
    /// `Err` names the first bad field of global membership or multicast (prefixed
    /// `gm.` / `multicast.`); membership and the KV check their own on construction.
    pub fn validate(&self) -> Result<(), String> {
        self.gm.validate()?;
        self.multicast.validate().map_err(|e| e.to_string())
    }
}

pub struct Stack {
    membership: Membership,
    /// How many times membership has run (see [`Stack::membership_runs`]).
    membership_runs: u64,
    kv: Kv,
    gm: GlobalMembership,
    multicast: Multicast,
}

type Cx<'a, 'b> = Ctx<'a, StackTimer, StackEvent>;

impl Stack {
    /// A node's protocols, rebuilt from what its disk held (`recovered`). `contacts` are
    /// the addresses it joins through.
    pub fn new(
        config: StackConfig,
        contacts: Vec<Addr>,
        recovered: &Snapshot,
    ) -> Result<Stack, ConfigError> {
        let contacts_for_gm = contacts.clone();
        Ok(Stack {
            membership: Membership::new(config.membership, contacts, recovered)?,
            membership_runs: 0,
            kv: Kv::new(config.kv, recovered).map_err(|e| ConfigError(e.to_string()))?,
            gm: GlobalMembership::new(config.gm, contacts_for_gm, recovered)
                .map_err(ConfigError)?,
            multicast: Multicast::new(config.multicast)
                .map_err(|e| ConfigError(e.to_string()))?
                .self_repairing(KV_TOPIC),
        })
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// How many times membership has run since this stack was built. Its state changes
    /// only then, so an observer that re-reads membership after every event (the
    /// scenario runner's `views-bounded` check) re-reads it only when this moved.
    pub fn membership_runs(&self) -> u64 {
        self.membership_runs
    }

    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// Global membership: the table, reachability, and (through `routing()`) distances,
    /// paths and trees.
    pub fn gm(&self) -> &GlobalMembership {
        &self.gm
    }

    pub fn multicast_state(&self) -> &Multicast {
        &self.multicast
    }

    /// Send `payload` under `topic` to every node reachable from this one; each delivers
    /// it once, as `StackEvent::Multicast`. Returns `(origin, seq)`. [`KV_TOPIC`] is the
    /// KV's own.
    pub fn multicast(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<(NodeId, u64), MulticastError> {
        if topic == KV_TOPIC {
            return Err(MulticastError::ReservedTopic);
        }
        self.multicast_send(ctx, topic, payload)
    }

    fn multicast_send(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<(NodeId, u64), MulticastError> {
        self.multicast_scope(ctx, |mc, c| mc.send(topic, payload, c))
    }

    /// Run `f` on multicast, over global membership's graph, in its own scope; then
    /// hand on what it delivered.
    fn multicast_scope<R>(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        f: impl FnOnce(&mut MulticastOver<'_, GlobalMembership>, &mut Ctx<'_, NoTimer, Delivery>) -> R,
    ) -> R {
        let mut mc = self.multicast.over(&self.gm);
        let (r, events) = ctx.scope(MULTICAST, never, no_timer, |c| f(&mut mc, c));
        self.after_multicast(ctx, events);
        r
    }

    /// Hand KV deltas to the KV, and the application's deliveries to the user.
    fn after_multicast(&mut self, ctx: &mut Cx<'_, '_>, deliveries: Vec<Delivery>) {
        for d in deliveries {
            if d.topic == KV_TOPIC {
                self.kv_scope(ctx, |kv, c| kv.deliver(&d.payload, c));
            } else {
                ctx.emit(StackEvent::Multicast(d));
            }
        }
    }

    /// Apply a KV op here. The answer is `StackEvent::Kv(KvEvent::Committed)` with this
    /// ticket, once the new value is durable.
    pub fn kv_op(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        key: &str,
        op: &MapOp,
    ) -> Result<Ticket, KvError> {
        self.kv_scope(ctx, |kv, c| kv.op(key, op, c))
    }

    /// Leave the cluster, just before the node stops: every node learns this one left
    /// (see [`GlobalMembership::leave`]), and neighbours are told (see
    /// [`Membership::leave`]) and repair around this node at once.
    pub fn leave(&mut self, ctx: &mut Cx<'_, '_>) {
        self.gm_scope(ctx, |g, c| g.leave(c));
        self.membership_scope(ctx, |m, c| m.leave(c));
    }

    /// Mark a member this node cannot reach as left (see
    /// [`GlobalMembership::force_leave`]).
    pub fn force_leave(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        member: NodeId,
    ) -> Result<(), ForceLeaveError> {
        self.gm_scope(ctx, |g, c| g.force_leave(member, c))
    }

    /// Run `f` on membership in its own scope; hand its view changes to the KV and on
    /// to the user.
    fn membership_scope<R>(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        f: impl FnOnce(&mut Membership, &mut Ctx<'_, MembershipTimer, MembershipEvent>) -> R,
    ) -> R {
        let unwrap = |t| match t {
            StackTimer::Membership(t) => Some(t),
            _ => None,
        };
        self.membership_runs += 1;
        let (r, events) = ctx.scope(MEMBERSHIP, StackTimer::Membership, unwrap, |c| {
            f(&mut self.membership, c)
        });
        self.after_membership(ctx, events);
        r
    }

    /// Hand membership's view changes to the KV and global membership, and on to the
    /// user. (Not generic, so the scopes may call each other without instantiating
    /// without end.)
    fn after_membership(&mut self, ctx: &mut Cx<'_, '_>, events: Vec<MembershipEvent>) {
        for e in events {
            match e {
                MembershipEvent::NeighborUp(peer) => {
                    self.kv_scope(ctx, |kv, c| kv.neighbor_up(peer, c));
                    self.gm_scope(ctx, |g, c| g.neighbor_up(peer, c));
                    self.multicast_scope(ctx, |mc, c| mc.neighbor_up(peer, c));
                }
                // Global membership first: multicast's repair floods to its neighbours.
                MembershipEvent::NeighborDown { peer, .. } => {
                    self.kv_scope(ctx, |kv, c| kv.neighbor_down(peer, c));
                    self.gm_scope(ctx, |g, c| g.neighbor_down(peer, c));
                    self.multicast_scope(ctx, |mc, c| mc.neighbor_down(peer, c));
                }
                MembershipEvent::Suspected(peer) => {
                    self.gm_scope(ctx, |g, c| g.suspect(peer, true, c));
                }
                MembershipEvent::Cleared(peer) => {
                    self.gm_scope(ctx, |g, c| g.suspect(peer, false, c));
                }
            }
            ctx.emit(StackEvent::Membership(e));
        }
        if self.membership.wants_peers() {
            let (reachable, others) = self.known_peers();
            self.membership_scope(ctx, |m, c| m.learn_peers(reachable, others, c));
        }
    }

    /// Every member global membership knows that did not leave, for membership's
    /// passive view (see [`Membership::wants_peers`]): those reachable from this node,
    /// and the others.
    fn known_peers(&self) -> (Vec<PeerAddr>, Vec<PeerAddr>) {
        let mut reachable = Vec::new();
        let mut others = Vec::new();
        for (id, m) in self.gm.members() {
            if m.status == Status::Left {
                continue;
            }
            let peer = PeerAddr {
                id,
                addr: m.addr.clone(),
            };
            if self.gm.is_reachable(id) {
                reachable.push(peer);
            } else {
                others.push(peer);
            }
        }
        (reachable, others)
    }

    /// Run `f` on global membership in its own scope, then see to what it reported.
    fn gm_scope<R>(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        f: impl FnOnce(&mut GlobalMembership, &mut Ctx<'_, GmTimer, GmEvent>) -> R,
    ) -> R {
        let unwrap = |t| match t {
            StackTimer::Gm(t) => Some(t),
            _ => None,
        };
        let (r, events) = ctx.scope(GM, StackTimer::Gm, unwrap, |c| f(&mut self.gm, c));
        self.after_gm(ctx, events);
        r
    }

    /// Pass global membership's events on, let multicast drop the state of forgotten
    /// origins, have membership check a neighbour another node suspects, and hand a
    /// probe global membership chose to membership.
    fn after_gm(&mut self, ctx: &mut Cx<'_, '_>, events: Vec<GmEvent>) {
        for e in events {
            match e {
                GmEvent::Forgotten(id) => self.multicast.forget(id),
                GmEvent::Suspected { member, by } if member == ctx.id() => {
                    self.membership_scope(ctx, |m, c| m.refute(by, c));
                }
                GmEvent::Suspected { member, .. } => {
                    self.membership_scope(ctx, |m, c| m.check_now(member, c));
                }
                _ => {}
            }
            ctx.emit(StackEvent::Gm(e));
        }
        if let Some((peer, addr)) = self.gm.take_probe() {
            self.membership_scope(ctx, |m, c| m.probe(peer, addr, c));
        }
    }

    /// Run `f` on the KV in its own scope; multicast what it disseminates, and pass its
    /// answers and changes on to the user.
    fn kv_scope<R>(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        f: impl FnOnce(&mut Kv, &mut Ctx<'_, KvTimer, KvEvent>) -> R,
    ) -> R {
        let unwrap = |t| match t {
            StackTimer::Kv(t) => Some(t),
            _ => None,
        };
        let (r, events) = ctx.scope(KV, StackTimer::Kv, unwrap, |c| f(&mut self.kv, c));
        for e in events {
            match e {
                KvEvent::Disseminate(delta) => {
                    if self.multicast_send(ctx, KV_TOPIC, delta).is_err() {
                        // Too large for a packet: anti-entropy carries it instead.
                        self.kv.undisseminated();
                    }
                }
                other => ctx.emit(StackEvent::Kv(other)),
            }
        }
        r
    }
}

/// Multicast sets no timers: these satisfy [`Ctx::scope`]'s signature.
fn never(t: NoTimer) -> StackTimer {
    match t {}
}
fn no_timer(_: StackTimer) -> Option<Infallible> {
    None
}

impl Protocol for Stack {
    type Timer = StackTimer;
    type Event = StackEvent;

    fn start(&mut self, ctx: &mut Cx<'_, '_>) {
        self.multicast_scope(ctx, |mc, c| mc.start(c));
        self.kv_scope(ctx, |kv, c| kv.start(c));
        // Before membership, whose first neighbours global membership must hear of.
        self.gm_scope(ctx, |g, c| g.start(c));
        self.membership_scope(ctx, |m, c| m.start(c));
    }

    fn link_up(&mut self, peer: NodeId, addr: &Addr, ctx: &mut Cx<'_, '_>) {
        self.membership_scope(ctx, |m, c| m.link_up(peer, addr, c));
    }

    fn link_down(&mut self, peer: NodeId, reason: DownReason, ctx: &mut Cx<'_, '_>) {
        self.membership_scope(ctx, |m, c| m.link_down(peer, reason, c));
    }

    fn connect_failed(
        &mut self,
        addr: &Addr,
        expected: Option<NodeId>,
        error: ConnectError,
        ctx: &mut Cx<'_, '_>,
    ) {
        self.membership_scope(ctx, |m, c| m.connect_failed(addr, expected, error, c));
    }

    fn message(
        &mut self,
        from: NodeId,
        body: &[u8],
        ctx: &mut Cx<'_, '_>,
    ) -> Result<(), WireError> {
        // Whatever it carries, a message is news that its sender is alive (membership
        // notes its own).
        if body.first() != Some(&MEMBERSHIP) {
            self.membership.heard(from, ctx.now());
        }
        match body.split_first() {
            Some((&MEMBERSHIP, rest)) => {
                self.membership_scope(ctx, |m, c| m.message(from, rest, c))
            }
            Some((&KV, rest)) => self.kv_scope(ctx, |kv, c| kv.message(from, rest, c)),
            Some((&GM, rest)) => self.gm_scope(ctx, |g, c| g.message(from, rest, c)),
            Some((&MULTICAST, rest)) => {
                self.multicast_scope(ctx, |mc, c| mc.message(from, rest, c))
            }
            Some((other, _)) => Err(WireError::Payload(format!(
                "unknown protocol channel {other}"
            ))),
            None => Err(WireError::Payload("empty message".into())),
        }
    }

    /// A message is named by its channel's protocol. A multicast packet carrying a KV
    /// delta (topic [`KV_TOPIC`]) is named by what it carries, `kv.delta`.
    fn message_kind(body: &[u8]) -> Option<&'static str> {
        use crate::{kv::KvMessage, multicast::Packet};
        let (&channel, rest) = body.split_first()?;
        match channel {
            MEMBERSHIP => Membership::message_kind(rest),
            KV => Kv::message_kind(rest),
            GM => GlobalMembership::message_kind(rest),
            MULTICAST => {
                let packet = Packet::decode(rest).ok()?;
                Some(if packet.topic == KV_TOPIC {
                    wire::decode::<KvMessage>(&packet.payload.0)
                        .map_or("multicast.data", |m| m.kind_name())
                } else {
                    "multicast.data"
                })
            }
            _ => None,
        }
    }

    fn timer(&mut self, timer: StackTimer, ctx: &mut Cx<'_, '_>) {
        match timer {
            StackTimer::Membership(t) => self.membership_scope(ctx, |m, c| m.timer(t, c)),
            StackTimer::Kv(t) => self.kv_scope(ctx, |kv, c| kv.timer(t, c)),
            StackTimer::Gm(t) => self.gm_scope(ctx, |g, c| g.timer(t, c)),
        }
    }

    fn persisted(&mut self, seq: PersistSeq, ctx: &mut Cx<'_, '_>) {
        self.membership_scope(ctx, |m, c| m.persisted(seq, c));
        self.kv_scope(ctx, |kv, c| kv.persisted(seq, c));
    }
}
