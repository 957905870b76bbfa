//! hawser's stack as a [`Host`]: the thin layer between the generic driver and
//! [`Stack`]. It answers KV ops once they are durable (`kv`), serves watches (`watch`),
//! tells followers what changed (`follow`), logs the stack's events, keeps the stack's
//! gauges, and leaves by telling the neighbours. [`NodeSpec`](spec::NodeSpec) builds the
//! node an agent runs.

pub mod follow;
pub mod kv;
pub mod spec;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::crdt::MapOp;
use hawser_core::gm::GmEvent;
use hawser_core::kv::KvEvent;
use hawser_core::membership::MembershipEvent;
use hawser_core::stack::{Stack, StackEvent};
use hawser_core::{Addr, Instant, Node, NodeId};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use self::follow::{Changes, Follower};
use self::kv::{KvReply, Waiting};
use self::watch::{Watch, WatchError, Watchers};
use super::{DriverConfig, DriverHandle, Host, HostCx};
use crate::lograte::LineKind;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::transport::Transport;

/// What other tasks ask of hawser's stack through a [`DriverHandle`] (see
/// [`DriverHandle::kv_op`], [`DriverHandle::watch`]).
pub enum StackRequest {
    KvOp {
        key: String,
        /// `None`: delete the key (see [`DriverHandle::kv_delete`]).
        op: Option<MapOp>,
        reply: KvReply,
    },
    Watch {
        prefix: String,
        reply: oneshot::Sender<Result<Watch, WatchError>>,
    },
}

/// hawser's stack as a driver's host; see the module docs.
pub struct StackHost {
    waiting: Waiting,
    watchers: Watchers,
    followers: Vec<Box<dyn Follower>>,
    /// What changed since the followers were last told.
    changes: Changes,
}

impl StackHost {
    /// A host with the watch bounds of `config`, and no follower yet.
    pub fn new(config: &DriverConfig) -> StackHost {
        StackHost {
            waiting: Waiting::default(),
            watchers: Watchers::new(config.max_watchers, config.watch_queue_bytes),
            followers: Vec::new(),
            changes: Changes {
                initial: true,
                ..Changes::default()
            },
        }
    }

    /// Have `follower` told of every change from the start (its first call has
    /// `initial` set, with the node as recovered from the store).
    pub fn follow(&mut self, follower: Box<dyn Follower>) {
        self.followers.push(follower);
    }

    /// Tell every follower what changed since the last time, if anything did.
    fn tell_followers(&mut self, cx: &HostCx<'_, Stack>) {
        if !self.changes.any() {
            return;
        }
        let changes = std::mem::take(&mut self.changes);
        let view = cx.view();
        for f in &mut self.followers {
            f.update(&view, &changes);
        }
    }

    fn update_gauges(&self, cx: &HostCx<'_, Stack>) {
        let (node, metrics) = (&*cx.node, cx.metrics);
        let m = node.protocol().membership();
        metrics.active_view.set(m.active_view().len() as i64);
        metrics.passive_view.set(m.passive_view().len() as i64);
        let gm = node.protocol().gm();
        metrics.members.set(gm.members().count() as i64);
        metrics.reachable.set(gm.reachable().len() as i64);
        metrics.sync_core(node.stats(), m.counters());
        let kv = node.protocol().kv();
        metrics.sync_kv(kv.counters(), kv.len(), self.waiting.len());
    }
}

impl Host for StackHost {
    type Protocol = Stack;
    type Request = StackRequest;

    /// Log what the stack reports, answer KV ops made durable, and note what changed for
    /// watchers and followers.
    fn event(&mut self, cx: &mut HostCx<'_, Stack>, event: StackEvent) {
        match event {
            StackEvent::Membership(event) => match event {
                MembershipEvent::NeighborUp(peer) => {
                    info!(peer = %cx.who(peer), "membership: neighbour up")
                }
                MembershipEvent::NeighborDown { peer, reason } => {
                    info!(peer = %cx.who(peer), ?reason, "membership: neighbour down")
                }
                MembershipEvent::Suspected(peer) => {
                    info!(peer = %cx.who(peer), "membership: neighbour suspected")
                }
                MembershipEvent::Cleared(peer) => {
                    info!(peer = %cx.who(peer), "membership: neighbour cleared")
                }
            },
            StackEvent::Kv(KvEvent::Committed { ticket, key, value }) => {
                // The value changed when the op applied; watchers heard of it then.
                debug!(?key, "kv op durable");
                self.waiting.answer(key, ticket, &value);
            }
            StackEvent::Kv(KvEvent::Unreplicable { key, size, max }) => {
                if let Some(suppressed) = cx.admit(LineKind::Unreplicable) {
                    warn!(
                        ?key,
                        size,
                        max,
                        suppressed,
                        "a KV value is larger than anti-entropy carries: it cannot reach \
                     every node (remove what made it so large)"
                    )
                }
            }
            StackEvent::Kv(KvEvent::Changed { key, value }) => {
                self.watchers.notify(&key, &value);
                if !self.followers.is_empty() {
                    self.changes.keys.insert(key);
                }
            }
            StackEvent::Gm(event) => {
                let member = match &event {
                    GmEvent::Added { member, .. }
                    | GmEvent::Changed { member }
                    | GmEvent::Suspected { member, .. } => *member,
                    GmEvent::Reachable(m) | GmEvent::Unreachable(m) | GmEvent::Forgotten(m) => *m,
                };
                debug!(member = %cx.who(member), ?event, "global membership");
                self.changes.membership |= !matches!(event, GmEvent::Suspected { .. });
            }
            StackEvent::Multicast(d) => info!(
                origin = %cx.who(d.origin),
                seq = d.seq,
                topic = ?d.topic,
                bytes = d.payload.len(),
                "multicast delivered"
            ),
            event => debug!(?event, "stack event"),
        }
    }

    fn request(&mut self, cx: &mut HostCx<'_, Stack>, request: StackRequest) {
        match request {
            StackRequest::KvOp { key, op, reply } => {
                self.waiting.apply(cx.node, cx.now, key, op, reply)
            }
            StackRequest::Watch { prefix, reply } => {
                let watch = self.watchers.start(cx.node.protocol().kv(), prefix);
                let _ = reply.send(watch);
            }
        }
    }

    fn drained(&mut self, cx: &mut HostCx<'_, Stack>) {
        self.tell_followers(cx);
        self.update_gauges(cx);
    }

    fn leave(&mut self, node: &mut Node<Stack>, now: Instant) {
        node.command(now, |s, c| s.leave(c));
    }

    fn last_event(&mut self, event: StackEvent) {
        if let StackEvent::Kv(KvEvent::Committed { ticket, key, value }) = event {
            self.waiting.answer(key, ticket, &value);
        }
    }

    /// Global membership's name for `id`, once it holds its entry.
    fn peer_name(node: &Node<Stack>, id: NodeId) -> Option<String> {
        node.protocol().gm().member(id).map(|m| m.name.to_string())
    }

    /// Keep the address book to the peers the views still name, once it grows past twice
    /// their size.
    fn prune_peers(node: &Node<Stack>, peers: &mut BTreeMap<NodeId, Addr>) {
        let m = node.protocol().membership();
        let bound = 2 * (m.config().active_view + m.config().passive_view);
        if peers.len() > bound {
            let keep: BTreeSet<NodeId> = m
                .active_view()
                .into_iter()
                .chain(m.passive_view())
                .collect();
            peers.retain(|id, _| keep.contains(id));
        }
    }
}

impl<T: Transport> super::Driver<T, StackHost> {
    /// A driver for hawser's stack (see [`super::Driver::with_host`]).
    pub fn new(
        node: Node<Stack>,
        store: std::sync::Arc<Store>,
        listener: T::Listener,
        config: DriverConfig,
        metrics: std::sync::Arc<Metrics>,
    ) -> (Self, DriverHandle) {
        let host = StackHost::new(&config);
        Self::with_host(node, host, store, listener, config, metrics)
    }

    /// See [`StackHost::follow`].
    pub fn follow(&mut self, follower: Box<dyn Follower>) {
        self.host_mut().follow(follower);
    }
}

impl DriverHandle<StackHost> {
    /// Follow the keys under `prefix`: their values now, then every change.
    pub async fn watch(&self, prefix: String) -> Result<Watch, WatchError> {
        let (reply, rx) = oneshot::channel();
        self.request(StackRequest::Watch { prefix, reply })
            .await
            .map_err(|_| WatchError::Stopped)?;
        rx.await.map_err(|_| WatchError::Stopped)?
    }
}
