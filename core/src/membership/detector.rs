//! The failure detector: adaptive pings, indirect probes, local health.
//!
//! Each neighbour is pinged on its own jittered schedule from the moment it is added.
//! A pong in time is an RTT sample for that link. A late pong starts the indirect phase:
//! one more direct ping plus `indirect_probes` helpers asked to reach the neighbour
//! themselves; the neighbour is evicted only if that whole window passes in silence. All
//! timeouts are the link's RTT-derived timeout stretched by the local health score, and a
//! timeout that fires late (this node stalled) is re-armed instead of acted on: the
//! silence it would report is our own.
//!
//! Three knobs make it cheap and patient (the `lan` profile, see `profile.rs`): with
//! `rotate_pings` a node has one ping schedule instead of one per link, and each tick
//! pings the neighbour it heard from longest ago (SWIM's probe schedule); with
//! `traffic_is_liveness` a ping that falls due is skipped if the neighbour was heard from
//! since it was scheduled — so a link's two ends do not both ping it, and a busy link is
//! not pinged at all — and a ping *from* a suspect clears it; with
//! `suspicion_timeout_ms` the indirect phase (the neighbour is `suspect` meanwhile) lasts
//! until that long after the missed ping, so a pause shorter than it is never a failure.

use super::health::{NeighborHealth, Probe};
use super::message::{Message, PeerAddr};
use super::views::sample;
use super::{Cx, DownCause, Membership, MembershipEvent, TimerKind};
use crate::id::NodeId;
use crate::time::Duration;

impl Membership {
    /// Probing state for a new neighbour: its first ping goes out at once. Until a round
    /// trip is measured the link's timeout is the long initial one, and its silence window
    /// that times `1 + indirect_timeout_factor` (9 s by default): a neighbour that froze
    /// while it was still unmeasured kept the whole cluster from knowing for that long,
    /// since the others' evictions leave it as the one path to the frozen node. Later
    /// pings follow each pong after a jittered interval, so links that came up together
    /// drift apart after one round.
    pub(super) fn start_probing(&mut self, ctx: &mut Cx, peer: NodeId) -> NeighborHealth {
        NeighborHealth {
            rtt: Default::default(),
            probe: Probe::Idle {
                timer: Some(self.arm(ctx, Duration::ZERO, TimerKind::Ping(peer))),
                since: ctx.now(),
            },
            rescues: 0,
            heard: ctx.now(),
        }
    }

    /// The direct ping timeout for `peer`: its RTT history, bounded, scaled by local health.
    fn probe_timeout(&self, peer: NodeId) -> Duration {
        let ms = Duration::from_millis;
        let base = self
            .active
            .get(&peer)
            .map_or(ms(self.cfg.ping_timeout_initial_ms), |n| {
                n.health.rtt.timeout(
                    self.cfg.rtt_deviations,
                    ms(self.cfg.ping_timeout_initial_ms),
                    ms(self.cfg.ping_timeout_floor_ms),
                    ms(self.cfg.ping_timeout_ceiling_ms),
                )
            });
        self.local.scale(base)
    }

    /// A round with `peer` ended well: wait for the next one — its own timer, or with
    /// `rotate_pings` the node's rotation.
    fn schedule_ping(&mut self, ctx: &mut Cx, peer: NodeId) {
        if self.cfg.rotate_pings {
            if let Some(n) = self.active.get_mut(&peer) {
                n.health.probe = Probe::Idle {
                    timer: None,
                    since: ctx.now(),
                };
            }
            return;
        }
        let after = self.cfg.jittered(ctx.rng(), self.cfg.ping_interval_ms);
        self.arm_ping(ctx, peer, after);
    }

    fn arm_ping(&mut self, ctx: &mut Cx, peer: NodeId, after: Duration) {
        let timer = self.arm(ctx, after, TimerKind::Ping(peer));
        if let Some(n) = self.active.get_mut(&peer) {
            n.health.probe = Probe::Idle {
                timer: Some(timer),
                since: ctx.now(),
            };
        }
    }

    /// With `rotate_pings`, once per (jittered) ping interval: ping the neighbour
    /// between rounds that was heard from longest ago (the lowest id among equals), if
    /// even it was heard from a whole interval ago; otherwise every link carried
    /// traffic lately and nothing needs asking. Over a few ticks every quiet
    /// neighbour takes its turn, since each answer makes it the freshest.
    pub(super) fn on_rotate_tick(&mut self, ctx: &mut Cx) {
        let interval = Duration::from_millis(self.cfg.ping_interval_ms);
        let stalest = self
            .active
            .iter()
            .filter(|(_, n)| matches!(n.health.probe, Probe::Idle { timer: None, .. }))
            .min_by_key(|(_, n)| n.health.heard)
            .map(|(id, n)| (*id, n.health.heard));
        match stalest {
            Some((peer, heard)) if ctx.now().saturating_since(heard) >= interval => {
                self.ping(peer, ctx);
            }
            Some(_) => self.counters.pings_spared += 1,
            None => {}
        }
        let tick = self.cfg.jittered(ctx.rng(), self.cfg.ping_interval_ms);
        self.arm(ctx, tick, TimerKind::Rotate);
    }

    /// A ping falls due: send it, unless (with `traffic_is_liveness`) the neighbour was
    /// heard from since it was scheduled; then the next one is due a jittered interval
    /// after what we heard. Never before this end has measured a round trip: a link
    /// whose pings the other end always sends would otherwise keep the long initial
    /// timeout here, and with it a 9 s silence window (measured: a 30 s freeze known
    /// everywhere only after 10 s, through the one link that had never pinged).
    pub(super) fn on_ping_tick(&mut self, peer: NodeId, ctx: &mut Cx) {
        let Some(n) = self.active.get(&peer) else {
            return;
        };
        let Probe::Idle { since, .. } = n.health.probe else {
            return;
        };
        let heard = n.health.heard;
        let measured = n.health.rtt.smoothed().is_some();
        if self.cfg.traffic_is_liveness && measured && heard > since {
            self.counters.pings_spared += 1;
            let interval = self.cfg.jittered(ctx.rng(), self.cfg.ping_interval_ms);
            let after = interval.saturating_sub(ctx.now().saturating_since(heard));
            return self.arm_ping(ctx, peer, after);
        }
        self.ping(peer, ctx);
    }

    /// Ping an idle neighbour now and wait for the pong.
    pub(super) fn ping(&mut self, peer: NodeId, ctx: &mut Cx) {
        if !matches!(self.active.get(&peer), Some(n) if matches!(n.health.probe, Probe::Idle { .. }))
        {
            return;
        }
        let seq = self.next_seq();
        let timeout = self.probe_timeout(peer);
        let timer = self.arm(ctx, timeout, TimerKind::PingTimeout(peer, seq));
        let sent = ctx.now();
        if let Some(n) = self.active.get_mut(&peer) {
            n.health.probe = Probe::Direct { seq, sent, timer };
        }
        self.send(ctx, peer, &Message::Ping { seq });
    }

    /// Answer; and if the pinger is no neighbour of ours and we are not about to make it
    /// one, tell it so: it holds a one-sided link (a flap, or a message lost with a
    /// replaced connection) that nothing else would correct. Helpers that probe us for
    /// someone else ignore the `Disconnect`, as they do not count us as a neighbour.
    pub(super) fn on_ping(&mut self, from: NodeId, seq: u64, ctx: &mut Cx) {
        self.send(ctx, from, &Message::Pong { seq });
        let asking = self.pending.get(&from).is_some_and(|p| p.request.is_some());
        if !self.active.contains_key(&from) && !asking {
            self.send(ctx, from, &Message::Disconnect);
        }
        self.refuted_by(from, ctx);
    }

    /// With `traffic_is_liveness`, a ping from a neighbour we suspect is its answer:
    /// it was running when it sent it (its refutation, or its own round of probing).
    fn refuted_by(&mut self, from: NodeId, ctx: &mut Cx) {
        if !self.cfg.traffic_is_liveness {
            return;
        }
        let Some(n) = self.active.get_mut(&from) else {
            return;
        };
        if let Probe::Indirect { timer, .. } = n.health.probe {
            ctx.cancel_timer(timer);
            self.counters.refuted += 1;
            n.health.rescues = 0;
            ctx.emit(MembershipEvent::Cleared(from));
            self.schedule_ping(ctx, from);
        }
    }

    /// How long the indirect phase of a probe sent at `sent` lasts. Without a suspicion
    /// phase: `timeout` times the indirect factor. With one, the rest of the suspicion
    /// (ending `suspicion_timeout_ms` after `sent`), and at least one more `timeout` for
    /// the second ping to be answered: the suspicion already gives a pause its time,
    /// and stretching it to eight timeouts as well — timeouts that may come from a
    /// round trip measured during a loaded start and rarely measured since — made a
    /// freeze take up to 21 s to be known everywhere.
    fn indirect_window(&self, timeout: Duration, sent: crate::time::Instant, ctx: &Cx) -> Duration {
        if self.cfg.suspicion_timeout_ms == 0 {
            return timeout.saturating_mul(self.cfg.indirect_timeout_factor);
        }
        Duration::from_millis(self.cfg.suspicion_timeout_ms)
            .saturating_sub(ctx.now().saturating_since(sent))
            .max(timeout)
    }

    pub(super) fn on_pong(&mut self, from: NodeId, seq: u64, ctx: &mut Cx) {
        if self.relays.get(&seq).is_some_and(|r| r.target == from) {
            return self.finish_relay(ctx, seq, true);
        }
        let now = ctx.now();
        let Some(n) = self.active.get_mut(&from) else {
            return;
        };
        match n.health.probe {
            Probe::Direct {
                seq: s,
                sent,
                timer,
            } if s == seq => {
                ctx.cancel_timer(timer);
                n.health.rtt.sample(now.saturating_since(sent));
                n.health.rescues = 0;
                self.local.better();
                self.schedule_ping(ctx, from);
            }
            // A late pong: alive. The first ping's is a round-trip sample (the second
            // ping has its own sequence number, so which one it answers is never
            // ambiguous): without it a link that turned slow would be timed out, and
            // rescued, round after round at its old fast timeout.
            Probe::Indirect {
                seq: s,
                sent,
                again,
                timer,
                ..
            } if s == seq || again == seq => {
                ctx.cancel_timer(timer);
                if s == seq {
                    n.health.rtt.sample(now.saturating_since(sent));
                }
                self.counters.rescued += 1;
                n.health.rescues = 0;
                ctx.emit(MembershipEvent::Cleared(from));
                self.schedule_ping(ctx, from);
            }
            _ => {}
        }
    }

    pub(super) fn on_ping_timeout(&mut self, peer: NodeId, seq: u64, late: bool, ctx: &mut Cx) {
        let Some(n) = self.active.get(&peer) else {
            return;
        };
        let Probe::Direct { seq: s, sent, .. } = n.health.probe else {
            return;
        };
        if s != seq {
            return;
        }
        let addr = n.addr.clone();
        let timeout = self.probe_timeout(peer);
        if late {
            // We were not running to hear the pong; give it a full timeout now that we are.
            let timer = self.arm(ctx, timeout, TimerKind::PingTimeout(peer, seq));
            if let Some(Probe::Direct { timer: t, .. }) =
                self.active.get_mut(&peer).map(|n| &mut n.health.probe)
            {
                *t = timer;
            }
            return;
        }
        if crate::planted::on(crate::planted::Bug::HastyDetector) {
            return self.evict(ctx, peer, DownCause::Evicted);
        }
        let helpers: Vec<NodeId> = self.active.keys().copied().filter(|h| *h != peer).collect();
        let helpers = sample(ctx.rng(), helpers, self.cfg.indirect_probes);
        let window = self.indirect_window(timeout, sent, ctx);
        let within_ms = u32::try_from(window.as_millis()).unwrap_or(u32::MAX);
        let target = PeerAddr { id: peer, addr };
        let again = self.next_seq();
        self.send(ctx, peer, &Message::Ping { seq: again });
        for h in &helpers {
            let msg = Message::ProbeRequest {
                target: target.clone(),
                seq,
                within_ms,
            };
            self.send(ctx, *h, &msg);
        }
        let timer = self.arm(ctx, window, TimerKind::IndirectTimeout(peer, seq));
        if let Some(n) = self.active.get_mut(&peer) {
            n.health.probe = Probe::Indirect {
                seq,
                sent,
                again,
                timer,
                asked: helpers.len() as u32,
                nacks: 0,
            };
        }
        ctx.emit(MembershipEvent::Suspected(peer));
    }

    pub(super) fn on_indirect_timeout(&mut self, peer: NodeId, seq: u64, late: bool, ctx: &mut Cx) {
        let Some(n) = self.active.get(&peer) else {
            return;
        };
        let Probe::Indirect {
            seq: s,
            asked,
            nacks,
            ..
        } = n.health.probe
        else {
            return;
        };
        if s != seq {
            return;
        }
        if late {
            // We stalled through the window: give the neighbour a whole one from now.
            let window = self.indirect_window(self.probe_timeout(peer), ctx.now(), ctx);
            let timer = self.arm(ctx, window, TimerKind::IndirectTimeout(peer, seq));
            if let Some(Probe::Indirect { timer: t, .. }) =
                self.active.get_mut(&peer).map(|n| &mut n.health.probe)
            {
                *t = timer;
            }
            return;
        }
        if asked > 0 && nacks == 0 {
            // Not even a "could not reach it" from any helper: our own messages are
            // probably not getting through, so trust our timeouts less from now on.
            self.local.worse(self.cfg.local_health_max);
        }
        self.evict(ctx, peer, DownCause::Evicted);
    }

    fn evict(&mut self, ctx: &mut Cx, peer: NodeId, reason: DownCause) {
        if self.remove_active(ctx, peer, reason) {
            self.passive_failed(ctx.now(), peer);
            self.release(ctx, peer);
            self.repair(ctx);
        }
    }

    /// A helper's answer about `target`. Alive means the neighbour lives; if that keeps
    /// being the only way to hear from it, the link itself is bad and is replaced.
    pub(super) fn on_probe_reply(&mut self, target: NodeId, seq: u64, alive: bool, ctx: &mut Cx) {
        let Some(n) = self.active.get_mut(&target) else {
            return;
        };
        let Probe::Indirect {
            seq: s,
            timer,
            ref mut nacks,
            ..
        } = n.health.probe
        else {
            return;
        };
        if s != seq {
            return;
        }
        if !alive {
            *nacks += 1;
            return;
        }
        ctx.cancel_timer(timer);
        self.counters.rescued += 1;
        n.health.rescues += 1;
        if n.health.rescues > self.cfg.max_indirect_rescues {
            self.evict(ctx, target, DownCause::LinkUnhealthy);
        } else {
            ctx.emit(MembershipEvent::Cleared(target));
            self.schedule_ping(ctx, target);
        }
    }

    /// Probe `target` for `requester`: ping it (dialling if we have no link) and answer
    /// by 80% of the asker's window either way, so a negative answer arrives in time to
    /// tell the asker that we, at least, are alive.
    pub(super) fn on_probe_request(
        &mut self,
        requester: NodeId,
        target: PeerAddr,
        their_seq: u64,
        within_ms: u32,
        ctx: &mut Cx,
    ) {
        if target.id == ctx.id() {
            let msg = Message::ProbeReply {
                target: target.id,
                seq: their_seq,
                alive: true,
            };
            return self.send(ctx, requester, &msg);
        }
        if self.relays.len() >= self.cfg.max_relays {
            self.counters.relays_refused += 1;
            let msg = Message::ProbeReply {
                target: target.id,
                seq: their_seq,
                alive: false,
            };
            return self.send(ctx, requester, &msg);
        }
        let within =
            Duration::from_millis(u64::from(within_ms).min(self.cfg.ping_timeout_ceiling_ms));
        let seq = self.next_seq();
        let timer = self.arm(
            ctx,
            Duration::from_nanos(within.as_nanos() / 5 * 4),
            TimerKind::RelayTimeout(seq),
        );
        self.relays.insert(
            seq,
            super::links::Relay {
                requester,
                their_seq,
                target: target.id,
                timer,
            },
        );
        self.deliver(ctx, &target, Message::Ping { seq });
    }

    pub(super) fn on_relay_timeout(&mut self, seq: u64, ctx: &mut Cx) {
        // Cancelling the timer that just fired (in `finish_relay`) is a no-op.
        self.finish_relay(ctx, seq, false);
    }
}
