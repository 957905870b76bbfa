//! Refilling the passive view from the cluster's member list (global membership's
//! table, which the stack hands in), so a node whose active view runs short always has
//! someone on its own side of a partition to ask.
//!
//! A passive view only knows whom joins, shuffles and evictions happened to bring: a
//! young node, or one in a small cluster where nearly everyone is in the active views,
//! may know nobody outside its active view. When a partition then takes its neighbours
//! away, its passive view holds only the far side, and with 30 s shuffles (`quiet`) it
//! stayed alone for over 10 s (an 8-node 4/4 split, 2 of 8 seeds) — while global
//! membership's table, flooded to every node, named every member on its side all along.
//!
//! So whenever the active view is short and the passive view has room, membership asks
//! for the members it does not know yet and takes them in: those global membership says
//! are reachable first (live, on our side), then the rest (perhaps dead, perhaps only
//! cut off with us). A bad pick costs one dial and a back-off, as any stale passive peer
//! does. It asks at most once per repair period, and a cluster of full active views
//! (any large one, at rest) never asks.

use super::message::PeerAddr;
use super::views::sample;
use super::{Cx, Membership};
use crate::time::Duration;

impl Membership {
    /// Whether membership asks for peers it does not know (see the module docs); the
    /// stack answers with [`Membership::learn_peers`].
    pub fn wants_peers(&self) -> bool {
        self.refill.wanted
    }

    /// Raise the request if the active view is short, the passive view has room, and
    /// the last answer is a repair period old.
    pub(super) fn want_peers_if_short(&mut self, ctx: &Cx) {
        if self.active.len() < self.cfg.active_view
            && self.passive.len() < self.cfg.passive_view
            && ctx.now() >= self.refill.next
        {
            self.refill.wanted = true;
        }
    }

    /// The answer to [`Membership::wants_peers`]: the members the cluster knows of,
    /// `reachable` ones (alive, as far as this node can tell) and `others`. Those in
    /// neither view join the passive view, reachable ones first, in random order, as
    /// many as it has room for; then the active view is repaired with them.
    pub fn learn_peers(&mut self, reachable: Vec<PeerAddr>, others: Vec<PeerAddr>, ctx: &mut Cx) {
        self.refill.wanted = false;
        self.refill.next = ctx.now() + Duration::from_millis(self.cfg.repair_period_ms);
        let me = ctx.id();
        for group in [reachable, others] {
            let new: Vec<PeerAddr> = group
                .into_iter()
                .filter(|p| {
                    p.id != me && !self.active.contains_key(&p.id) && !self.passive.contains(p.id)
                })
                .collect();
            let room = self.cfg.passive_view.saturating_sub(self.passive.len());
            for p in sample(ctx.rng(), new, room) {
                self.counters.peers_learned += 1;
                self.passive.insert(ctx.rng(), p.id, p.addr, &[]);
            }
        }
        self.repair(ctx);
    }
}

/// When the passive view may next be refilled, and whether it asks now.
#[derive(Debug, Default)]
pub(super) struct RefillState {
    wanted: bool,
    next: crate::time::Instant,
}
