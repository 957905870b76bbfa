//! A tiny in-memory network for membership tests: nodes, connections, and a clock.
//!
//! Connections are ordered streams (as TCP): each direction is a FIFO. Tests either let
//! proptest pick what happens next (`enabled` / `act`), or run everything fairly with
//! zero latency (`run_fair`). Nodes can be killed (their connections reset), paused
//! (nothing delivered to them, no timers fired, until resumed — late) and restarted from
//! what they persisted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::link::{ConnId, Cookie, LinkConfig, Transmit};
use crate::membership::{Membership, MembershipConfig, MembershipEvent, PeerAddr};
use crate::node::{Event, Identity, Node};
use crate::persist::Snapshot;
use crate::time::{Duration, Instant};
use crate::{Addr, Name, NodeId};

pub struct Host {
    pub node: Option<Node<Membership>>,
    pub addr: Addr,
    pub disk: Snapshot,
    pub events: Vec<MembershipEvent>,
    contacts: Vec<Addr>,
}

enum Item {
    Frame(Vec<u8>),
    Close,
}

/// One end of a connection: (host, its conn id).
type End = (usize, ConnId);

pub struct Net {
    pub now: Instant,
    pub hosts: Vec<Host>,
    pub paused: BTreeSet<usize>,
    /// Connection ends whose incoming frames are held: a link that is up but carries
    /// nothing, while new connections between the same nodes work.
    held: BTreeSet<End>,
    cfg: MembershipConfig,
    seed: u64,
    peer_of: BTreeMap<End, End>,
    /// Items travelling *to* an end.
    inbox: BTreeMap<End, VecDeque<Item>>,
    dials: VecDeque<(End, Addr)>,
}

/// Something the network can do next.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    Dial(usize),
    Deliver(End),
    Tick,
    Reset(End),
}

pub fn id(i: usize) -> NodeId {
    NodeId(1000 + i as u64)
}

impl Net {
    /// `n` nodes named `n0..`, each joining through `contacts` (node indices); none started.
    pub fn new(n: usize, contacts: &[usize], cfg: MembershipConfig, seed: u64) -> Net {
        let addr = |i: usize| Addr::new(format!("n{i}")).unwrap();
        let contacts: Vec<Addr> = contacts.iter().map(|c| addr(*c)).collect();
        Net {
            now: Instant::ZERO,
            hosts: (0..n)
                .map(|i| Host {
                    node: None,
                    addr: addr(i),
                    disk: Snapshot::default(),
                    events: Vec::new(),
                    contacts: contacts.clone(),
                })
                .collect(),
            paused: BTreeSet::new(),
            held: BTreeSet::new(),
            cfg,
            seed,
            peer_of: BTreeMap::new(),
            inbox: BTreeMap::new(),
            dials: VecDeque::new(),
        }
    }

    /// Start (or restart, from its disk) node `i`.
    pub fn start(&mut self, i: usize) {
        let h = &mut self.hosts[i];
        let m = Membership::new(self.cfg.clone(), h.contacts.clone(), &h.disk).unwrap();
        let identity = Identity {
            id: id(i),
            name: Name::new(h.addr.as_str()).unwrap(),
            addr: h.addr.clone(),
            cookie: Cookie::new("test").unwrap(),
        };
        let seed = self.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let mut node = Node::new(LinkConfig::default(), identity, seed, m).unwrap();
        node.handle_start(self.now);
        h.node = Some(node);
        self.collect(i);
    }

    pub fn set_contacts(&mut self, i: usize, contacts: &[usize]) {
        self.hosts[i].contacts = contacts
            .iter()
            .map(|c| self.hosts[*c].addr.clone())
            .collect();
    }

    pub fn m(&self, i: usize) -> &Membership {
        self.hosts[i].node.as_ref().expect("node is up").protocol()
    }
    pub fn node(&self, i: usize) -> &Node<Membership> {
        self.hosts[i].node.as_ref().expect("node is up")
    }
    pub fn live(&self) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|i| self.hosts[*i].node.is_some())
            .collect()
    }
    fn index_of(&self, peer: NodeId) -> usize {
        (peer.0 - 1000) as usize
    }

    /// Kill node `i`: its connections reset, what it had not persisted is lost.
    pub fn kill(&mut self, i: usize) {
        self.hosts[i].node = None;
        self.paused.remove(&i);
        let ends: Vec<End> = self.peer_of.keys().copied().filter(|e| e.0 == i).collect();
        for e in ends {
            if let Some(other) = self.peer_of.remove(&e) {
                self.peer_of.remove(&other);
                self.inbox.remove(&other);
                self.with(other.0, |n, now| n.handle_closed(now, other.1));
            }
            self.inbox.remove(&e);
        }
        self.dials.retain(|((h, _), _)| *h != i);
    }

    fn with(&mut self, i: usize, f: impl FnOnce(&mut Node<Membership>, Instant)) {
        let now = self.now;
        if let Some(n) = self.hosts[i].node.as_mut() {
            f(n, now);
            self.collect(i);
        }
    }

    /// Move node `i`'s outputs into the network.
    fn collect(&mut self, i: usize) {
        let Host {
            node: Some(node),
            disk,
            events,
            ..
        } = &mut self.hosts[i]
        else {
            return;
        };
        let now = self.now;
        while let Some(rec) = node.poll_persist() {
            disk.apply(&rec);
            node.handle_persisted(now, rec.seq);
        }
        while let Some(ev) = node.poll_event() {
            if let Event::App(e) = ev {
                events.push(e);
            }
        }
        let mut out = Vec::new();
        while let Some(t) = node.poll_transmit() {
            out.push(t);
        }
        for t in out {
            match t {
                Transmit::Connect { conn, addr } => self.dials.push_back(((i, conn), addr)),
                Transmit::Send { conn, frame } => {
                    if let Some(to) = self.peer_of.get(&(i, conn)) {
                        self.inbox
                            .entry(*to)
                            .or_default()
                            .push_back(Item::Frame(frame));
                    }
                }
                Transmit::Close { conn } => {
                    if let Some(to) = self.peer_of.remove(&(i, conn)) {
                        self.inbox.entry(to).or_default().push_back(Item::Close);
                    }
                    self.inbox.remove(&(i, conn));
                    self.dials.retain(|(e, _)| *e != (i, conn));
                }
            }
        }
    }

    fn deliverable(&self, to: End) -> bool {
        !self.held.contains(&to)
            && !self.paused.contains(&to.0)
            && self.inbox.get(&to).is_some_and(|q| !q.is_empty())
    }

    /// Hold every frame on the connections now open between `a` and `b`.
    pub fn blackhole(&mut self, a: usize, b: usize) {
        let ends: Vec<End> = self
            .peer_of
            .iter()
            .filter(|(x, y)| (x.0 == a && y.0 == b) || (x.0 == b && y.0 == a))
            .map(|(x, _)| *x)
            .collect();
        self.held.extend(ends);
    }

    /// Everything that can happen now (ticks only when nothing else can, in fair runs).
    pub fn enabled(&self) -> Vec<Action> {
        let mut acts: Vec<Action> = (0..self.dials.len())
            .filter(|k| {
                let addr = &self.dials[*k].1;
                !self
                    .hosts
                    .iter()
                    .enumerate()
                    .any(|(j, h)| h.addr == *addr && self.paused.contains(&j))
            })
            .map(Action::Dial)
            .collect();
        acts.extend(
            self.inbox
                .keys()
                .copied()
                .filter(|e| self.deliverable(*e))
                .map(Action::Deliver),
        );
        acts.extend(self.peer_of.keys().copied().map(Action::Reset));
        acts.push(Action::Tick);
        acts
    }

    pub fn act(&mut self, action: Action) {
        match action {
            Action::Dial(k) => {
                let Some(((i, conn), addr)) = self.dials.remove(k) else {
                    return;
                };
                let target = self.hosts.iter().position(|h| h.addr == addr);
                match target.filter(|j| self.hosts[*j].node.is_some()) {
                    None => self.with(i, |n, now| n.handle_closed(now, conn)),
                    Some(j) => {
                        let now = self.now;
                        let cj = self.hosts[j].node.as_mut().unwrap().handle_accept(now);
                        self.peer_of.insert((i, conn), (j, cj));
                        self.peer_of.insert((j, cj), (i, conn));
                        self.collect(j);
                        self.with(i, |n, now| n.handle_connected(now, conn));
                    }
                }
            }
            Action::Deliver(to) => {
                let Some(item) = self.inbox.get_mut(&to).and_then(|q| q.pop_front()) else {
                    return;
                };
                match item {
                    Item::Frame(f) => self.with(to.0, |n, now| n.handle_frame(now, to.1, &f)),
                    Item::Close => {
                        self.peer_of.remove(&to);
                        self.inbox.remove(&to);
                        self.with(to.0, |n, now| n.handle_closed(now, to.1));
                    }
                }
            }
            Action::Reset(end) => {
                if let Some(other) = self.peer_of.remove(&end) {
                    self.peer_of.remove(&other);
                    self.inbox.remove(&end);
                    self.inbox.remove(&other);
                    self.with(end.0, |n, now| n.handle_closed(now, end.1));
                    self.with(other.0, |n, now| n.handle_closed(now, other.1));
                }
            }
            Action::Tick => self.tick(None),
        }
    }

    /// Advance the clock to the next deadline of a running node (no further than
    /// `limit`) and fire what is due.
    fn tick(&mut self, limit: Option<Instant>) {
        let next = self
            .live()
            .into_iter()
            .filter(|i| !self.paused.contains(i))
            .filter_map(|i| self.node(i).poll_timeout())
            .min();
        let next = match (next, limit) {
            (Some(t), Some(l)) => t.min(l),
            (t, l) => t.or(l).unwrap_or(self.now),
        };
        self.now = self.now.max(next);
        for i in self.live() {
            if self.paused.contains(&i) {
                continue;
            }
            if self.node(i).poll_timeout().is_some_and(|t| t <= self.now) {
                self.with(i, |n, now| n.handle_timeout(now));
            }
        }
    }

    /// Deliver everything in flight (no time passes).
    pub fn drain(&mut self) {
        loop {
            let act = self
                .enabled()
                .into_iter()
                .find(|a| matches!(a, Action::Dial(_) | Action::Deliver(_)));
            match act {
                Some(a) => self.act(a),
                None => return,
            }
        }
    }

    /// Run with zero latency until `for_` has passed: everything in flight is delivered
    /// before the clock moves.
    pub fn run_fair(&mut self, for_: Duration) {
        let end = self.now + for_;
        while self.now < end {
            self.drain();
            self.tick(Some(end));
        }
        self.drain();
    }

    /// Resume a paused node: its overdue timers fire first (late), then its inbox.
    pub fn resume(&mut self, i: usize) {
        self.paused.remove(&i);
        if self.node(i).poll_timeout().is_some_and(|t| t <= self.now) {
            self.with(i, |n, now| n.handle_timeout(now));
        }
    }

    /// Node `i` leaves the cluster as a stopping agent does: it tells its neighbours,
    /// what it sent is delivered, then it is gone.
    pub fn leave(&mut self, i: usize) {
        self.with(i, |n, now| n.command(now, |m, c| m.leave(c)));
        self.drain();
        self.kill(i);
    }

    /// Hand node `i` the member list the stack would (global membership's table):
    /// `reachable` and `others`, by node index.
    pub fn learn(&mut self, i: usize, reachable: &[usize], others: &[usize]) {
        let peers = |of: &[usize]| -> Vec<PeerAddr> {
            of.iter()
                .map(|&j| PeerAddr {
                    id: id(j),
                    addr: self.hosts[j].addr.clone(),
                })
                .collect()
        };
        let (reachable, others) = (peers(reachable), peers(others));
        self.with(i, |n, now| {
            n.command(now, |m, c| m.learn_peers(reachable, others, c))
        });
    }

    /// Deliver raw bytes to node `to` as if node `from` had sent them over their link.
    pub fn inject(&mut self, from: usize, to: usize, body: &[u8]) -> bool {
        let Some(node) = self.hosts[from].node.as_mut() else {
            return false;
        };
        let sent = node
            .command(self.now, |_, ctx| ctx.send(id(to), body))
            .is_ok();
        self.collect(from);
        self.drain();
        sent
    }

    /// Panics unless every view invariant holds on every live node.
    pub fn check_invariants(&self) {
        for i in self.live() {
            let m = self.m(i);
            if let Err(why) = m.check_views(id(i)) {
                panic!("n{i}: {why}");
            }
            for p in m.active_view() {
                assert!(
                    self.node(i).links().is_linked(p),
                    "n{i}: neighbour {p} not linked"
                );
            }
            assert_eq!(
                self.node(i).pending_timers(),
                m.expected_timers(),
                "n{i}: timers leak"
            );
        }
    }

    /// Panics unless every active link is symmetric among live nodes.
    pub fn check_symmetric(&self) {
        for i in self.live() {
            for p in self.m(i).active_view() {
                let j = self.index_of(p);
                assert!(
                    self.hosts[j].node.is_some() && self.m(j).is_neighbor(id(i)),
                    "n{i} has n{j} as a neighbour but not the reverse"
                );
            }
        }
    }

    /// Whether the active-view graph of live nodes is one connected component.
    pub fn connected(&self) -> bool {
        let live = self.live();
        let Some(&first) = live.first() else {
            return true;
        };
        let mut seen = BTreeSet::from([first]);
        let mut stack = vec![first];
        while let Some(i) = stack.pop() {
            for p in self.m(i).active_view() {
                let j = self.index_of(p);
                if self.hosts[j].node.is_some() && seen.insert(j) {
                    stack.push(j);
                }
            }
        }
        seen.len() == live.len()
    }

    pub fn evictions(&self) -> u64 {
        self.live()
            .iter()
            .map(|i| self.m(*i).counters().evictions)
            .sum()
    }
}
