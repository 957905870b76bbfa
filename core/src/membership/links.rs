//! Which links membership holds, and why.
//!
//! There is one link per peer, shared by both ends, and a link is what an active-view
//! membership *is*. So every link this node holds has a reason on this side — the peer
//! is a neighbour, or we await its answer to a request, or we relay a probe to it, or we
//! are still dialling it to deliver something — and a link that loses its last reason is
//! closed at once. A link the peer opened and gave us no reason to keep is closed after
//! `idle_link_ms`. That is what keeps the overlay symmetric: a peer that holds us as a
//! neighbour over a link we do not want sees the link go down, and drops us too.

use super::message::{Message, PeerAddr};
use super::{Cx, Membership, TimerKind};
use crate::id::{Addr, NodeId};
use crate::protocol::TimerId;
use crate::time::{Duration, Instant};

/// An established link.
#[derive(Debug)]
pub struct LinkInfo {
    /// The address the peer advertised in the handshake.
    pub addr: Addr,
    pub up_since: Instant,
}

/// Something we are waiting on from a peer.
#[derive(Debug)]
pub struct Pending {
    /// We are dialling the peer; `outbox` goes out when the link comes up.
    pub dialing: bool,
    pub outbox: Vec<Message>,
    /// An unanswered `Neighbor` (or `Join`) request, and the timer that gives up on it.
    pub request: Option<TimerId>,
}

/// An indirect probe we run for `requester`.
#[derive(Debug)]
pub struct Relay {
    pub requester: NodeId,
    /// The requester's seq, echoed in our reply.
    pub their_seq: u64,
    pub target: NodeId,
    pub timer: TimerId,
}

impl Membership {
    /// Send on an existing link, counting it. Sending to a peer whose link just went
    /// away is not an error for membership: the link-down path handles the loss.
    pub(super) fn send(&mut self, ctx: &mut Cx, peer: NodeId, msg: &Message) {
        if ctx.send(peer, &msg.encode()).is_ok() {
            self.counters.count_sent(msg.kind());
        }
    }

    /// Send to `to`, dialling it first if there is no link. A message that needs no
    /// answer leaves the link to [`Membership::release`] once it is written.
    pub(super) fn deliver(&mut self, ctx: &mut Cx, to: &PeerAddr, msg: Message) {
        if to.id == ctx.id() {
            return;
        }
        if self.links.contains_key(&to.id) {
            self.send(ctx, to.id, &msg);
            return;
        }
        let p = self.pending.entry(to.id).or_insert_with(|| Pending {
            dialing: false,
            outbox: Vec::new(),
            request: None,
        });
        p.outbox.push(msg);
        if !p.dialing {
            p.dialing = true;
            ctx.connect(to.addr.clone(), Some(to.id));
        }
    }

    /// Whether this side still has a use for the link to `peer`.
    pub(super) fn needs_link(&self, peer: NodeId) -> bool {
        self.active.contains_key(&peer)
            || self
                .pending
                .get(&peer)
                .is_some_and(|p| p.dialing || p.request.is_some())
            || self.relays.values().any(|r| r.target == peer)
    }

    /// Close the link to `peer` if nothing on this side needs it any more.
    pub(super) fn release(&mut self, ctx: &mut Cx, peer: NodeId) {
        if self.links.contains_key(&peer) && !self.needs_link(peer) {
            self.links.remove(&peer);
            ctx.disconnect(peer);
        }
    }

    pub(super) fn on_link_up(&mut self, peer: NodeId, addr: &Addr, ctx: &mut Cx) {
        self.links.insert(
            peer,
            LinkInfo {
                addr: addr.clone(),
                up_since: ctx.now(),
            },
        );
        if let Some(p) = self.pending.get_mut(&peer) {
            p.dialing = false;
            let outbox = std::mem::take(&mut p.outbox);
            if p.request.is_none() {
                self.pending.remove(&peer);
            }
            for msg in &outbox {
                self.send(ctx, peer, msg);
            }
            self.release(ctx, peer);
        }
        if self.join.dialing.remove(addr).is_some() {
            self.send_join(ctx, peer, addr.clone());
        }
        // When both ends dial at once, the link layer keeps one connection and closes the
        // other; the end that sees the close first reports the link down and then up
        // again, while the other end saw nothing. Ask again at once, so the neighbour we
        // dropped over a flap — which may still count us as its neighbour — is regained
        // (or, refusing, knows we are not neighbours) instead of staying one-sided.
        if self
            .recently_lost
            .remove(&peer)
            .is_some_and(|until| until > ctx.now())
        {
            let to = PeerAddr {
                id: peer,
                addr: addr.clone(),
            };
            self.request_neighbor(ctx, &to, self.active.is_empty());
        }
    }

    /// The transport dropped the link: a neighbour is lost at once, and whatever we
    /// awaited over it has failed.
    pub(super) fn on_link_down(&mut self, peer: NodeId, ctx: &mut Cx) {
        self.links.remove(&peer);
        if self.remove_active(ctx, peer, super::DownCause::LinkLost) {
            self.passive_failed(ctx.now(), peer);
            let grace = Duration::from_millis(self.cfg.neighbor_timeout_ms);
            self.recently_lost.insert(peer, ctx.now() + grace);
        }
        self.unreachable(ctx, peer);
        self.repair(ctx);
    }

    pub(super) fn on_connect_failed(
        &mut self,
        addr: &Addr,
        expected: Option<NodeId>,
        ctx: &mut Cx,
    ) {
        match expected {
            // A failed redial while a link exists (the peer dialled us meanwhile) loses
            // nothing.
            Some(peer) if self.links.contains_key(&peer) => {}
            Some(peer) => self.unreachable(ctx, peer),
            None => {
                self.join.dialing.remove(addr);
            }
        }
    }

    /// `peer` cannot be reached: fail what we awaited from it and the probes we relay to
    /// it, and back off from it in the passive view.
    fn unreachable(&mut self, ctx: &mut Cx, peer: NodeId) {
        self.join.requests.remove(&peer);
        if let Some(t) = self.pending.remove(&peer).and_then(|p| p.request) {
            ctx.cancel_timer(t);
            self.passive_failed(ctx.now(), peer);
            self.repair_failed(ctx);
        }
        let dead: Vec<u64> = self
            .relays
            .iter()
            .filter(|(_, r)| r.target == peer)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in dead {
            self.finish_relay(ctx, seq, false);
        }
    }

    pub(super) fn passive_failed(&mut self, now: Instant, peer: NodeId) {
        self.passive.failed(
            peer,
            now,
            Duration::from_millis(self.cfg.passive_retry_base_ms),
            Duration::from_millis(self.cfg.passive_retry_max_ms),
        );
    }

    /// Close links nobody on this side has needed for `idle_link_ms`, and forget contact
    /// dials that never produced a link (a dial to a peer we were already linked to is
    /// absorbed by the link table without a word).
    pub(super) fn sweep_links(&mut self, ctx: &mut Cx) {
        let now = ctx.now();
        let idle = Duration::from_millis(self.cfg.idle_link_ms);
        let stale: Vec<NodeId> = self
            .links
            .iter()
            .filter(|(peer, l)| {
                now.saturating_since(l.up_since) >= idle && !self.needs_link(**peer)
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in stale {
            self.release(ctx, peer);
        }
        self.join.dialing.retain(|_, deadline| *deadline > now);
        self.recently_lost.retain(|_, until| *until > now);
    }

    /// The answer to an indirect probe we relayed: report it, and drop the link we may
    /// have opened for it.
    pub(super) fn finish_relay(&mut self, ctx: &mut Cx, seq: u64, alive: bool) {
        let Some(r) = self.relays.remove(&seq) else {
            return;
        };
        ctx.cancel_timer(r.timer);
        self.send(
            ctx,
            r.requester,
            &Message::ProbeReply {
                target: r.target,
                seq: r.their_seq,
                alive,
            },
        );
        self.release(ctx, r.target);
    }

    /// A request of ours to `peer` (neighbour or join): the timer gives up on it.
    pub(super) fn start_request(&mut self, ctx: &mut Cx, to: &PeerAddr, msg: Message) {
        let timer = self.arm(
            ctx,
            Duration::from_millis(self.cfg.neighbor_timeout_ms),
            TimerKind::RequestTimeout(to.id),
        );
        let p = self.pending.entry(to.id).or_insert_with(|| Pending {
            dialing: false,
            outbox: Vec::new(),
            request: None,
        });
        if let Some(old) = p.request.replace(timer) {
            ctx.cancel_timer(old);
        }
        self.deliver(ctx, to, msg);
    }

    /// The request to `peer` was answered (or overtaken): cancel its timer. Lashup never
    /// does, and its stale timers later strike peers out of the passive view.
    pub(super) fn end_request(&mut self, ctx: &mut Cx, peer: NodeId) -> bool {
        let Some(p) = self.pending.get_mut(&peer) else {
            return false;
        };
        let Some(t) = p.request.take() else {
            return false;
        };
        ctx.cancel_timer(t);
        if !p.dialing {
            self.pending.remove(&peer);
        }
        true
    }

    pub(super) fn on_request_timeout(&mut self, peer: NodeId, ctx: &mut Cx) {
        let Some(p) = self.pending.get_mut(&peer) else {
            return;
        };
        p.request = None;
        if !p.dialing {
            self.pending.remove(&peer);
        }
        self.join.requests.remove(&peer);
        self.passive_failed(ctx.now(), peer);
        self.release(ctx, peer);
        self.repair_failed(ctx);
    }
}
