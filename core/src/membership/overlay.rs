//! HyParView: join, forward-join, neighbour requests, disconnect, shuffle, repair.

use super::message::{Message, PeerAddr, Sample};
use super::views::{pick, sample};
use super::{Cx, DownCause, Membership, MembershipEvent, Neighbor, TimerKind};
use crate::id::NodeId;
use crate::time::Duration;

impl Membership {
    fn me(ctx: &Cx) -> PeerAddr {
        PeerAddr {
            id: ctx.id(),
            addr: ctx.addr().clone(),
        }
    }

    /// A random active neighbour other than those in `except`.
    pub(super) fn random_neighbor(&self, ctx: &mut Cx, except: &[NodeId]) -> Option<NodeId> {
        let ids: Vec<NodeId> = self
            .active
            .keys()
            .copied()
            .filter(|id| !except.contains(id))
            .collect();
        pick(ctx.rng(), &ids)
    }

    // ---- active view ------------------------------------------------------------------

    /// Make `peer` a neighbour. Only called when the peer has agreed (it asked, or it
    /// accepted our request), over the link the agreement came on. A full view drops a
    /// random neighbour to make room.
    pub(super) fn add_active(&mut self, ctx: &mut Cx, peer: &PeerAddr) {
        if peer.id == ctx.id() || self.active.contains_key(&peer.id) {
            return;
        }
        if self.active.len() >= self.cfg.active_view
            && let Some(victim) = self.random_neighbor(ctx, &[peer.id])
        {
            self.drop_neighbor(ctx, victim, DownCause::Replaced);
        }
        self.end_request(ctx, peer.id);
        self.passive.remove(peer.id);
        let health = self.start_probing(ctx, peer.id);
        self.active.insert(
            peer.id,
            Neighbor {
                addr: peer.addr.clone(),
                health,
            },
        );
        self.repair.backoff = Duration::from_millis(self.cfg.repair_period_ms);
        ctx.emit(MembershipEvent::NeighborUp(peer.id));
    }

    /// Take `peer` out of the active view into the passive view and report it. The
    /// caller deals with the link. Returns whether it was a neighbour.
    pub(super) fn remove_active(&mut self, ctx: &mut Cx, peer: NodeId, reason: DownCause) -> bool {
        let Some(n) = self.active.remove(&peer) else {
            return false;
        };
        if let Some(timer) = n.health.probe.timer() {
            ctx.cancel_timer(timer);
        }
        self.passive.insert(ctx.rng(), peer, n.addr, &[]);
        ctx.emit(MembershipEvent::NeighborDown { peer, reason });
        if reason != DownCause::Replaced {
            // Lost, not traded for another: refill the slot promptly.
            self.repair.credit = self.cfg.active_view as u32;
            self.repair.backoff = Duration::from_millis(self.cfg.repair_period_ms);
            self.repair.top_up_at = ctx.now();
            self.want_peers_if_short(ctx);
        }
        if reason.is_eviction() {
            self.counters.evictions += 1;
        }
        if self.active.is_empty() {
            self.isolated(ctx);
        }
        true
    }

    /// Remove a neighbour ourselves: tell it, so it drops us too, and close the link.
    pub(super) fn drop_neighbor(&mut self, ctx: &mut Cx, peer: NodeId, reason: DownCause) {
        if self.remove_active(ctx, peer, reason) {
            self.send(ctx, peer, &Message::Disconnect);
            self.release(ctx, peer);
        }
    }

    pub(super) fn on_forward_join(
        &mut self,
        from: NodeId,
        joiner: PeerAddr,
        ttl: u8,
        ctx: &mut Cx,
    ) {
        if joiner.id == ctx.id() {
            return;
        }
        let ttl = ttl.min(self.cfg.arwl);
        let next = if ttl == 0 || self.active.len() <= 1 {
            None
        } else {
            self.random_neighbor(ctx, &[from, joiner.id])
        };
        let Some(next) = next else {
            // The walk ends here: become the joiner's neighbour, by handshake, so the
            // link is symmetric (Lashup adds the joiner one-sidedly here).
            if !self.active.contains_key(&joiner.id) {
                self.request_neighbor(ctx, &joiner, true);
            }
            return;
        };
        if ttl == self.cfg.prwl && !self.active.contains_key(&joiner.id) {
            self.passive
                .insert(ctx.rng(), joiner.id, joiner.addr.clone(), &[]);
        }
        self.send(
            ctx,
            next,
            &Message::ForwardJoin {
                joiner,
                ttl: ttl - 1,
            },
        );
    }

    // ---- neighbour requests -----------------------------------------------------------

    pub(super) fn request_neighbor(&mut self, ctx: &mut Cx, peer: &PeerAddr, high: bool) {
        if peer.id == ctx.id()
            || self.active.contains_key(&peer.id)
            || self
                .pending
                .get(&peer.id)
                .is_some_and(|p| p.request.is_some())
        {
            return;
        }
        self.start_request(ctx, peer, Message::Neighbor { high });
    }

    /// Accept a high-priority request always (the asker is isolated, or a join walk
    /// ended here), a low-priority one only with room to spare.
    pub(super) fn on_neighbor(&mut self, from: PeerAddr, high: bool, ctx: &mut Cx) {
        let accepted =
            self.active.contains_key(&from.id) || high || self.active.len() < self.cfg.active_view;
        if accepted {
            self.add_active(ctx, &from);
        } else if !self.passive.contains(from.id) {
            self.passive
                .insert(ctx.rng(), from.id, from.addr.clone(), &[]);
        }
        self.send(ctx, from.id, &Message::NeighborReply { accepted });
    }

    /// The peer's answer. An acceptance means it has already added us, so we add it
    /// even if we had given up waiting: that is what keeps the two views in step.
    pub(super) fn on_neighbor_reply(&mut self, from: PeerAddr, accepted: bool, ctx: &mut Cx) {
        self.end_request(ctx, from.id);
        self.join_answered(from.id);
        if accepted {
            self.add_active(ctx, &from);
        } else {
            if !self.active.contains_key(&from.id) {
                self.passive.insert(ctx.rng(), from.id, from.addr, &[]);
                self.passive_failed(ctx.now(), from.id);
            }
            self.release(ctx, from.id);
            self.repair_failed(ctx);
        }
    }

    pub(super) fn on_disconnect(&mut self, from: NodeId, ctx: &mut Cx) {
        self.remove_active(ctx, from, DownCause::Disconnected);
        self.release(ctx, from);
        self.repair(ctx);
    }

    /// `from` is leaving the cluster: forget it entirely, and refill its slot.
    pub(super) fn on_leave(&mut self, from: NodeId, ctx: &mut Cx) {
        self.remove_active(ctx, from, DownCause::Left);
        self.passive.remove(from);
        self.release(ctx, from);
        self.repair(ctx);
    }

    /// Fill a short active view from the passive view, a few requests at a time, for as
    /// long as the repair credit of a recent loss lasts (or for ever while isolated).
    /// Without credit, the repair tick tops the view up one request at a time, backing
    /// off while nobody accepts: a node one short of a full view in a cluster of full
    /// views must not keep asking everyone it knows several times a second.
    pub(super) fn repair(&mut self, ctx: &mut Cx) {
        let missing = self.cfg.active_view.saturating_sub(self.active.len());
        let mut in_flight = self.requests_in_flight();
        while in_flight < missing.min(self.cfg.repair_parallelism)
            && (self.active.is_empty() || self.repair.credit > 0)
            && self.request_from_passive(ctx)
        {
            self.repair.credit = self.repair.credit.saturating_sub(1);
            in_flight += 1;
        }
    }

    fn requests_in_flight(&self) -> usize {
        self.pending
            .values()
            .filter(|p| p.request.is_some())
            .count()
    }

    /// Ask a random passive peer that is not backing off to be a neighbour.
    fn request_from_passive(&mut self, ctx: &mut Cx) -> bool {
        let now = ctx.now();
        let candidate = self.passive.candidate(ctx.rng(), now, |id| {
            !self.active.contains_key(&id) && !self.pending.contains_key(&id)
        });
        let Some((id, addr)) = candidate else {
            return false;
        };
        let high = self.active.is_empty();
        self.request_neighbor(ctx, &PeerAddr { id, addr }, high);
        true
    }

    /// A neighbour request was refused or failed: the next top-up waits longer.
    pub(super) fn repair_failed(&mut self, ctx: &mut Cx) {
        let max = Duration::from_millis(self.cfg.passive_retry_max_ms);
        self.repair.backoff = self.repair.backoff.saturating_mul(2).min(max);
        self.repair.top_up_at = ctx.now() + self.repair.backoff;
        self.repair(ctx);
    }

    fn top_up(&mut self, ctx: &mut Cx) {
        if self.active.len() < self.cfg.active_view
            && self.requests_in_flight() == 0
            && ctx.now() >= self.repair.top_up_at
        {
            self.request_from_passive(ctx);
        }
    }

    pub(super) fn on_repair_tick(&mut self, ctx: &mut Cx) {
        self.want_peers_if_short(ctx);
        self.repair(ctx);
        self.top_up(ctx);
        self.sweep_links(ctx);
        if let Some(bytes) = self.passive.take_dirty() {
            ctx.persist(super::PASSIVE_KEY.to_vec(), Some(bytes));
        }
        let after = self.cfg.jittered(ctx.rng(), self.cfg.repair_period_ms);
        self.arm(ctx, after, TimerKind::Repair);
    }

    // ---- shuffle ----------------------------------------------------------------------

    pub(super) fn on_shuffle_tick(&mut self, ctx: &mut Cx) {
        if let Some(target) = self.random_neighbor(ctx, &[]) {
            let peers = self.view_sample(ctx, target);
            self.last_shuffle = peers.iter().map(|p| p.id).collect();
            let msg = Message::Shuffle {
                origin: Self::me(ctx),
                ttl: self.cfg.arwl,
                sample: Sample(peers),
            };
            self.send(ctx, target, &msg);
        }
        let after = self.cfg.jittered(ctx.rng(), self.cfg.shuffle_period_ms);
        self.arm(ctx, after, TimerKind::Shuffle);
    }

    /// Ourselves, `shuffle_active` neighbours and `shuffle_passive` passive peers, none
    /// of them `to` (who gets the sample).
    fn view_sample(&mut self, ctx: &mut Cx, to: NodeId) -> Vec<PeerAddr> {
        let actives: Vec<PeerAddr> = self
            .active
            .iter()
            .filter(|(id, _)| **id != to)
            .map(|(id, n)| PeerAddr {
                id: *id,
                addr: n.addr.clone(),
            })
            .collect();
        let mut peers = vec![Self::me(ctx)];
        peers.extend(sample(ctx.rng(), actives, self.cfg.shuffle_active));
        let mut passive = self.passive.sample(ctx.rng(), self.cfg.shuffle_passive + 1);
        passive.retain(|p| p.id != to);
        passive.truncate(self.cfg.shuffle_passive);
        peers.extend(passive);
        peers
    }

    /// Walk on, or end here: reply to the origin with a sample of our own views, as large
    /// as theirs, and keep theirs, making room first with the ones we just sent. (The
    /// paper replies with passive peers only; in a small cluster, where nearly everyone
    /// is in the active view, that leaves passive views nearly empty, and a node cut off
    /// from its neighbours would know nobody else to turn to.)
    pub(super) fn on_shuffle(
        &mut self,
        from: NodeId,
        origin: PeerAddr,
        ttl: u8,
        sample: Sample,
        ctx: &mut Cx,
    ) {
        if origin.id == ctx.id() {
            return;
        }
        let ttl = ttl.min(self.cfg.arwl).saturating_sub(1);
        if ttl > 0
            && let Some(next) = self.random_neighbor(ctx, &[from, origin.id])
        {
            let msg = Message::Shuffle {
                origin,
                ttl,
                sample,
            };
            self.send(ctx, next, &msg);
            return;
        }
        let mut reply = self.view_sample(ctx, origin.id);
        reply.truncate(sample.0.len());
        let sent: Vec<NodeId> = reply.iter().map(|p| p.id).collect();
        self.deliver(
            ctx,
            &origin,
            Message::ShuffleReply {
                sample: Sample(reply),
            },
        );
        self.integrate(ctx, sample.0, &sent);
    }

    pub(super) fn on_shuffle_reply(&mut self, sample: Sample, ctx: &mut Cx) {
        let sent = std::mem::take(&mut self.last_shuffle);
        self.integrate(ctx, sample.0, &sent);
    }

    fn integrate(&mut self, ctx: &mut Cx, peers: Vec<PeerAddr>, evict_first: &[NodeId]) {
        let me = ctx.id();
        for p in peers {
            if p.id != me && !self.active.contains_key(&p.id) {
                self.passive.insert(ctx.rng(), p.id, p.addr, evict_first);
            }
        }
    }
}
