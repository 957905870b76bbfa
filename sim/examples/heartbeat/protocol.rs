//! A heartbeat between linked peers: the smallest useful protocol on hawser, and the
//! guide to writing your own.
//!
//! Each node keeps links to a fixed list of peers, sends each a heartbeat every
//! `period`, and reports a peer silent when it has heard nothing for `silence` — then
//! drops the link and dials again with backoff. Each node also persists an incarnation
//! number that grows on every restart, carried in its heartbeats, so peers can tell a
//! restarted node from one that never went away.
//!
//! Everything the protocol does goes through `ctx`: that is the whole sans-IO contract.
//! The same code runs in the simulator (see `main.rs` and the tests) and under a real
//! driver.

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::{
    Addr, ConnectError, Ctx, DownReason, Duration, Instant, NodeId, Protocol, Snapshot, wire,
};
use serde::{Deserialize, Serialize};

const INCARNATION_KEY: &[u8] = b"hb/incarnation";

/// What goes over the wire. One enum, bincode-encoded, decoded with `wire::decode`,
/// which refuses malformed bytes with an error instead of panicking.
#[derive(Debug, Serialize, Deserialize)]
enum Message {
    Beat { incarnation: u64 },
}

/// Timers carry what they are for.
#[derive(Debug)]
pub enum Timer {
    Beat,
    Redial(Addr),
}

/// What the protocol tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatEvent {
    /// First heartbeat from a peer (or first since it was silent).
    Alive { peer: NodeId, incarnation: u64 },
    /// A peer we heard from came back with a higher incarnation: it restarted.
    Restarted { peer: NodeId, incarnation: u64 },
    /// Nothing heard from `peer` for the silence timeout, or its link went down.
    Silent { peer: NodeId },
}

pub struct Heartbeat {
    period: Duration,
    silence: Duration,
    peers: Vec<Addr>,
    incarnation: u64,
    last_heard: BTreeMap<NodeId, Instant>,
    incarnations: BTreeMap<NodeId, u64>,
    alive: BTreeSet<NodeId>,
    backoff: BTreeMap<Addr, Duration>,
    /// Who answered at each address, learned from link-ups.
    ids: BTreeMap<Addr, NodeId>,
}

impl Heartbeat {
    /// `recovered` is what the node's disk held; the incarnation continues from it.
    pub fn new(peers: Vec<Addr>, recovered: &Snapshot) -> Heartbeat {
        let incarnation = recovered
            .get(INCARNATION_KEY)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Heartbeat {
            period: Duration::from_millis(500),
            silence: Duration::from_millis(2000),
            peers,
            incarnation,
            last_heard: BTreeMap::new(),
            incarnations: BTreeMap::new(),
            alive: BTreeSet::new(),
            backoff: BTreeMap::new(),
            ids: BTreeMap::new(),
        }
    }

    /// This life's incarnation: 1 on first start, +1 on every restart.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Peers currently considered alive.
    pub fn alive(&self) -> &BTreeSet<NodeId> {
        &self.alive
    }

    fn beat(&self, peer: NodeId, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        let body = wire::encode(&Message::Beat {
            incarnation: self.incarnation,
        });
        // Sending can only fail if the link just went away; link_down handles that.
        let _ = ctx.send(peer, &body);
    }

    fn silent(&mut self, peer: NodeId, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        self.last_heard.remove(&peer);
        if self.alive.remove(&peer) {
            ctx.emit(HeartbeatEvent::Silent { peer });
        }
    }

    /// Redial a peer we lost, if it is one of ours to dial (the other end of a link we
    /// did not dial redials it).
    fn redial_peer(&mut self, peer: NodeId, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        let addr = self
            .ids
            .iter()
            .find(|(_, id)| **id == peer)
            .map(|(a, _)| a.clone());
        if let Some(addr) = addr {
            self.redial_later(&addr, ctx);
        }
    }

    /// Dial again later, doubling the wait each time (from 100 ms up to 5 s) with jitter.
    fn redial_later(&mut self, addr: &Addr, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        if !self.peers.contains(addr) {
            return;
        }
        let wait = self
            .backoff
            .entry(addr.clone())
            .or_insert(Duration::from_millis(100));
        let delay = ctx.rng().jitter(*wait, *wait);
        *wait = (*wait + *wait).min(Duration::from_secs(5));
        ctx.set_timer(delay, Timer::Redial(addr.clone()));
    }
}

impl Protocol for Heartbeat {
    type Timer = Timer;
    type Event = HeartbeatEvent;

    fn start(&mut self, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        self.incarnation += 1;
        ctx.persist(
            INCARNATION_KEY.to_vec(),
            Some(self.incarnation.to_be_bytes().to_vec()),
        );
        for addr in self.peers.clone() {
            ctx.connect(addr, None);
        }
        let first = ctx.rng().jitter(Duration::ZERO, self.period);
        ctx.set_timer(first, Timer::Beat);
    }

    fn link_up(&mut self, peer: NodeId, addr: &Addr, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        self.backoff.remove(addr);
        self.ids.insert(addr.clone(), peer);
        self.last_heard.insert(peer, ctx.now());
        self.beat(peer, ctx);
    }

    fn link_down(
        &mut self,
        peer: NodeId,
        _reason: DownReason,
        ctx: &mut Ctx<'_, Timer, HeartbeatEvent>,
    ) {
        self.silent(peer, ctx);
        self.redial_peer(peer, ctx);
    }

    fn connect_failed(
        &mut self,
        addr: &Addr,
        _expected: Option<NodeId>,
        _error: ConnectError,
        ctx: &mut Ctx<'_, Timer, HeartbeatEvent>,
    ) {
        self.redial_later(addr, ctx);
    }

    fn message(
        &mut self,
        from: NodeId,
        body: &[u8],
        ctx: &mut Ctx<'_, Timer, HeartbeatEvent>,
    ) -> Result<(), wire::WireError> {
        let Message::Beat { incarnation } = wire::decode(body)?;
        self.last_heard.insert(from, ctx.now());
        let known = self.incarnations.insert(from, incarnation);
        if known.is_some_and(|k| k < incarnation) {
            ctx.emit(HeartbeatEvent::Restarted {
                peer: from,
                incarnation,
            });
        }
        if self.alive.insert(from) {
            ctx.emit(HeartbeatEvent::Alive {
                peer: from,
                incarnation,
            });
        }
        Ok(())
    }

    fn timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        match timer {
            Timer::Beat => {
                let now = ctx.now();
                let peers: Vec<NodeId> = ctx.linked_peers().collect();
                for peer in peers {
                    let heard = self.last_heard.get(&peer).copied().unwrap_or(now);
                    if now - heard > self.silence {
                        ctx.disconnect(peer);
                        self.silent(peer, ctx);
                        self.redial_peer(peer, ctx);
                    } else {
                        self.beat(peer, ctx);
                    }
                }
                let next = ctx.rng().jitter(self.period, self.period / 10);
                ctx.set_timer(next, Timer::Beat);
            }
            Timer::Redial(addr) => {
                let expected = self.ids.get(&addr).copied();
                ctx.connect(addr, expected)
            }
        }
    }
}
