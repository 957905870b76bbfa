//! Joining through contacts, and being a contact.
//!
//! Every node introduces itself with a `Join` to a contact once per incarnation — even if
//! its remembered passive view already found it neighbours, since those may be an island
//! that does not include the rest of the cluster — and again whenever it is isolated. It
//! retries with jittered exponential back-off for as long as no contact has answered, so
//! a cluster whose contacts were unreachable at first still converges once they are up.
//!
//! Contacts introduce themselves to *every* other contact, and accept each other's joins
//! without throttling, so that nodes joining through different contacts at the same
//! moment do not build separate overlays. Joins from anyone else are throttled: a
//! contact adds at most `join_burst` joiners (refilled every `join_refill_ms`) to its own
//! view, but forwards every join, so the joiners still get neighbours from the walks.

use std::collections::{BTreeMap, BTreeSet};

use super::config::MembershipConfig;
use super::message::{Message, PeerAddr};
use super::views::pick;
use super::{Cx, Membership, TimerKind};
use crate::id::{Addr, NodeId};
use crate::protocol::TimerId;
use crate::time::{Duration, Instant};

pub struct JoinState {
    /// The other contacts (our own address is removed at start).
    contacts: Vec<Addr>,
    /// Our own address is in the contact list.
    is_contact: bool,
    /// Contacts still to answer a join of ours; empty once introduced.
    unjoined: BTreeSet<Addr>,
    /// Whether an answer from any one of `unjoined` will do. Only a contact's first
    /// introduction needs them all.
    any: bool,
    /// Contacts being dialled to join through (ids unknown until they answer), with when
    /// to stop waiting for the link.
    pub dialing: BTreeMap<Addr, Instant>,
    /// Joins sent and not yet answered, by contact.
    pub requests: BTreeMap<NodeId, Addr>,
    /// The join timer, while armed.
    pub timer: Option<TimerId>,
    backoff: Duration,
    /// Contact-side throttle: a token bucket.
    tokens: u32,
    refilled: Instant,
}

impl JoinState {
    pub fn new(cfg: &MembershipConfig, contacts: Vec<Addr>) -> JoinState {
        JoinState {
            contacts,
            is_contact: false,
            unjoined: BTreeSet::new(),
            any: true,
            dialing: BTreeMap::new(),
            requests: BTreeMap::new(),
            timer: None,
            backoff: Duration::from_millis(cfg.join_retry_ms),
            tokens: cfg.join_burst,
            refilled: Instant::ZERO,
        }
    }

    /// Learn who we are: a contact introduces itself to all the others.
    pub fn start(&mut self, me: &Addr) {
        self.is_contact = self.contacts.contains(me);
        self.contacts.retain(|a| a != me);
        self.contacts.sort();
        self.contacts.dedup();
        self.unjoined = self.contacts.iter().cloned().collect();
        self.any = !self.is_contact;
    }
}

impl Membership {
    /// The active view just emptied: introduce ourselves again, through any contact.
    pub(super) fn isolated(&mut self, ctx: &mut Cx) {
        if self.join.unjoined.is_empty() {
            self.join.unjoined = self.join.contacts.iter().cloned().collect();
            self.join.any = true;
        }
        if self.join.timer.is_none() && !self.join.unjoined.is_empty() {
            let after = self.cfg.jittered(ctx.rng(), self.cfg.join_retry_ms);
            self.join.timer = Some(self.arm(ctx, after, TimerKind::Join));
        }
    }

    pub(super) fn on_join_tick(&mut self, ctx: &mut Cx) {
        self.join.timer = None;
        if self.active.is_empty() && self.join.unjoined.is_empty() {
            // Introduced, but still (or again) alone: a contact answered without adding
            // us and no walk reached us. Try the contacts again.
            self.join.unjoined = self.join.contacts.iter().cloned().collect();
            self.join.any = true;
        }
        if self.join.unjoined.is_empty() {
            self.join.backoff = Duration::from_millis(self.cfg.join_retry_ms);
            return;
        }
        let idle: Vec<Addr> = self
            .join
            .unjoined
            .iter()
            .filter(|a| {
                !self.join.dialing.contains_key(*a) && !self.join.requests.values().any(|r| r == *a)
            })
            .cloned()
            .collect();
        let targets = if self.join.any {
            pick(ctx.rng(), &idle).into_iter().collect()
        } else {
            idle
        };
        for addr in targets {
            let linked = self
                .links
                .iter()
                .find(|(_, l)| l.addr == addr)
                .map(|(id, _)| *id);
            match linked {
                Some(id) => self.send_join(ctx, id, addr),
                None => {
                    let deadline = ctx.now() + Duration::from_millis(self.cfg.neighbor_timeout_ms);
                    self.join.dialing.insert(addr.clone(), deadline);
                    ctx.connect(addr, None);
                }
            }
        }
        let after = self.cfg.jittered(ctx.rng(), self.join.backoff.as_millis());
        self.join.backoff = (self.join.backoff.saturating_mul(2))
            .min(Duration::from_millis(self.cfg.join_retry_max_ms));
        self.join.timer = Some(self.arm(ctx, after, TimerKind::Join));
    }

    pub(super) fn send_join(&mut self, ctx: &mut Cx, contact: NodeId, addr: Addr) {
        self.join.requests.insert(contact, addr.clone());
        self.start_request(ctx, &PeerAddr { id: contact, addr }, Message::Join);
    }

    /// A reply from `peer`; if it answers our join, we are introduced (to that contact).
    pub(super) fn join_answered(&mut self, peer: NodeId) {
        if let Some(addr) = self.join.requests.remove(&peer) {
            if self.join.any {
                self.join.unjoined.clear();
            } else {
                self.join.unjoined.remove(&addr);
            }
        }
    }

    /// As a contact: add the joiner (if the throttle allows) and send a forward-join
    /// walk down every other neighbour.
    pub(super) fn on_join(&mut self, joiner: PeerAddr, ctx: &mut Cx) {
        let accepted = self.active.contains_key(&joiner.id)
            || self.join.contacts.contains(&joiner.addr)
            || self.take_join_token(ctx);
        if accepted {
            self.add_active(ctx, &joiner);
        } else {
            self.counters.joins_throttled += 1;
            self.passive
                .insert(ctx.rng(), joiner.id, joiner.addr.clone(), &[]);
        }
        self.send(ctx, joiner.id, &Message::NeighborReply { accepted });
        let others: Vec<NodeId> = self
            .active
            .keys()
            .copied()
            .filter(|n| *n != joiner.id)
            .collect();
        for n in others {
            let msg = Message::ForwardJoin {
                joiner: joiner.clone(),
                ttl: self.cfg.arwl,
            };
            self.send(ctx, n, &msg);
        }
    }

    fn take_join_token(&mut self, ctx: &mut Cx) -> bool {
        let refill = Duration::from_millis(self.cfg.join_refill_ms);
        let earned = ctx.now().saturating_since(self.join.refilled).as_nanos() / refill.as_nanos();
        if earned > 0 {
            let tokens = u64::from(self.join.tokens).saturating_add(earned);
            self.join.tokens = tokens.min(u64::from(self.cfg.join_burst)) as u32;
            self.join.refilled += refill.saturating_mul(earned);
        }
        if self.join.tokens == 0 {
            return false;
        }
        self.join.tokens -= 1;
        true
    }
}
