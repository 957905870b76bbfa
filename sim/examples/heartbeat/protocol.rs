//! A heartbeat between linked peers: the smallest useful protocol on hawser, and the
//! guide to writing your own.
//!
//! Each node keeps links to a fixed list of peers, sends each a heartbeat every
//! `period`, and reports a peer silent when it has heard nothing for `silence` — then
//! drops the link and dials again with backoff. Each node also persists an incarnation
//! number that grows on every restart, carried in its heartbeats, so peers can tell a
//! restarted node from one that never went away. A node announces an incarnation only
//! once it is on disk: one announced and then lost in a crash would come back as the
//! next life's, and peers could not tell the two lives apart.
//!
//! Everything the protocol does goes through `ctx`: that is the whole sans-IO contract.
//! The same code runs in the simulator (see `main.rs` and the tests) and under a real
//! driver.

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::{
    Addr, ConnectError, Ctx, DownReason, Duration, Instant, NodeId, PersistSeq, Protocol, Snapshot,
    wire,
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

/// How often a node beats and how long a silence means a peer is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub period: Duration,
    pub silence: Duration,
    /// A deliberately broken variant (for tests that show the swarm finds it); `None`
    /// in any real use.
    pub planted_bug: Option<PlantedBug>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            period: Duration::from_millis(500),
            silence: Duration::from_millis(2000),
            planted_bug: None,
        }
    }
}

/// The bugs a test may plant, to show that the swarm finds and shrinks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// A restart keeps the incarnation its disk holds instead of bumping it, so peers
    /// that heard the previous life take the new one for it.
    IncarnationNotBumped,
}

pub struct Heartbeat {
    settings: Settings,
    peers: Vec<Addr>,
    incarnation: u64,
    /// The write of this life's incarnation, until it is durable: nothing is announced
    /// before.
    unsynced: Option<PersistSeq>,
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
        Heartbeat::with_settings(Settings::default(), peers, recovered)
    }

    /// [`Heartbeat::new`] with other settings.
    pub fn with_settings(settings: Settings, peers: Vec<Addr>, recovered: &Snapshot) -> Heartbeat {
        let incarnation = recovered
            .get(INCARNATION_KEY)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Heartbeat {
            settings,
            peers,
            incarnation,
            unsynced: None,
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
        if self.unsynced.is_some() {
            return;
        }
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
        let planted = self.settings.planted_bug == Some(PlantedBug::IncarnationNotBumped);
        if !planted || self.incarnation == 0 {
            self.incarnation += 1;
        }
        let write = ctx.persist(
            INCARNATION_KEY.to_vec(),
            Some(self.incarnation.to_be_bytes().to_vec()),
        );
        self.unsynced = Some(write);
    }

    /// The incarnation is durable: now the node may announce it.
    fn persisted(&mut self, seq: PersistSeq, ctx: &mut Ctx<'_, Timer, HeartbeatEvent>) {
        if self.unsynced.is_none_or(|write| seq < write) {
            return;
        }
        self.unsynced = None;
        for addr in self.peers.clone() {
            ctx.connect(addr, None);
        }
        // Peers that dialled us meanwhile hear us now.
        let linked: Vec<NodeId> = ctx.linked_peers().collect();
        for peer in linked {
            self.beat(peer, ctx);
        }
        let first = ctx.rng().jitter(Duration::ZERO, self.settings.period);
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
                    if now - heard > self.settings.silence {
                        ctx.disconnect(peer);
                        self.silent(peer, ctx);
                        self.redial_peer(peer, ctx);
                    } else {
                        self.beat(peer, ctx);
                    }
                }
                let period = self.settings.period;
                let next = ctx.rng().jitter(period, period / 10);
                ctx.set_timer(next, Timer::Beat);
            }
            Timer::Redial(addr) => {
                let expected = self.ids.get(&addr).copied();
                ctx.connect(addr, expected)
            }
        }
    }
}
