//! The simulator proper: nodes, connections, faults, and the run loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write;

use hawser_core::wire::{FrameKind, decode_header};
use hawser_core::{
    Addr, ConnId, Cookie, Duration, Event, Identity, Instant, LinkConfig, Name, Node, NodeId,
    NodeRng, Observed, PersistSeq, Protocol, Snapshot, Transmit,
};

use hawser_core::rng::mix_seed;

use crate::clock::Clock;
use crate::disk::{Disk, DiskFault, Recovered};
use crate::latency::LatencyTail;
use crate::queue::Queue;
use crate::slab::Slab;
use crate::topology::Topology;
use crate::trace::{Trace, TraceField};

/// How the simulated world behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds the network's randomness and every node's RNG.
    pub seed: u64,
    /// One-way latency of each frame, uniform in `[min, max]`.
    pub latency: (Duration, Duration),
    /// How long a connection whose frames are blackholed takes to break at the sender
    /// (a TCP retransmission timeout).
    pub link_timeout: Duration,
    /// How long a dial into a blackhole takes to fail.
    pub connect_timeout: Duration,
    /// A heavy tail on top of `latency`, if any.
    pub latency_tail: Option<LatencyTail>,
    /// Millionths of new connections that the network resets in the middle of the link
    /// handshake, at its first or second frame (a middlebox or NAT dropping state, a
    /// peer's kernel under SYN pressure). 0: none, and no randomness is drawn for it.
    pub handshake_reset_ppm: u32,
    /// How long a simulated fsync takes.
    pub sync_latency: Duration,
    /// A killed node loses what it wrote but had not synced.
    pub lose_unsynced: bool,
    pub link: LinkConfig,
    /// The cluster cookie every node starts with.
    pub cookie: Cookie,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            latency: (Duration::from_millis(1), Duration::from_millis(5)),
            link_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            latency_tail: None,
            handshake_reset_ppm: 0,
            sync_latency: Duration::from_millis(1),
            lose_unsynced: true,
            link: LinkConfig::default(),
            cookie: Cookie::new("hawser-sim-cookie").expect("non-empty"),
        }
    }
}

/// What state a simulated node is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Never started.
    Idle,
    Up,
    /// Processing nothing until the given time; inputs wait for it.
    Paused,
    /// Host silent: nothing in or out, no resets, until killed or restarted.
    Frozen,
    /// Process dead; its disk remains.
    Down,
}

/// What happened in one simulated step, for observers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub at: Instant,
    /// The node whose state the step may have changed, if any.
    pub node: Option<usize>,
}

/// Figures about the run so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub events: u64,
    pub frames: u64,
    pub bytes: u64,
    pub connects: u64,
    /// Syncs that failed (`disk-fail`), each stopping its node.
    pub sync_failures: u64,
    /// Syncs a crash tore (`tear`)...
    pub torn_syncs: u64,
    /// ...and, of those, the batches a restart found damaged by their checksum and
    /// dropped (the rest had reached the disk whole and were loaded).
    pub torn_dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packet {
    Fin,
    Rst,
}

enum Payload {
    Frame(Vec<u8>),
    Control(Packet),
}

enum Ev {
    Wake {
        node: usize,
        generation: u64,
    },
    Syn {
        conn: u64,
    },
    Established {
        conn: u64,
    },
    ConnectFail {
        conn: u64,
    },
    Arrive {
        conn: u64,
        to: usize,
        payload: Payload,
    },
    DirTimeout {
        conn: u64,
        from: usize,
    },
    Sync {
        node: usize,
        epoch: u64,
        upto: PersistSeq,
    },
    Resume {
        node: usize,
        epoch: u64,
    },
    ClearExtra {
        node: usize,
        generation: u64,
    },
}

impl Ev {
    /// The node an event is addressed to, if it is held while that node is paused.
    fn target(&self, conns: &Slab<SimConn>) -> Option<usize> {
        match *self {
            Ev::Wake { node, .. } | Ev::Sync { node, .. } => Some(node),
            Ev::Syn { conn } => conns.get(&conn).map(|c| c.ends[1].node),
            Ev::Established { conn } | Ev::ConnectFail { conn } => {
                conns.get(&conn).map(|c| c.ends[0].node)
            }
            Ev::Arrive { conn, to, .. } => conns.get(&conn).map(|c| c.ends[to].node),
            Ev::DirTimeout { conn, from } => conns.get(&conn).map(|c| c.ends[from].node),
            Ev::Resume { .. } | Ev::ClearExtra { .. } => None,
        }
    }
}

/// One end of a simulated connection: side 0 dialled, side 1 accepted.
struct End {
    node: usize,
    epoch: u64,
    conn: Option<ConnId>,
    open: bool,
}

/// One direction of a connection: FIFO delivery, and frames held while blackholed.
#[derive(Default)]
struct Dir {
    last: Instant,
    held: VecDeque<Payload>,
    blocked_since: Option<Instant>,
}

struct SimConn {
    ends: [End; 2],
    dirs: [Dir; 2],
    connect_deadline: Instant,
    /// The frame (counting both ways, from 1) at which the network resets the
    /// connection; 0: never (see `SimConfig::handshake_reset_ppm`).
    reset_at_frame: u8,
    frames: u8,
}

struct SimNode<P: Protocol> {
    node: Option<Node<P>>,
    status: Status,
    epoch: u64,
    wake: Option<Instant>,
    wake_gen: u64,
    extra_gen: u64,
    /// The node's connection ids, mapped to the simulator's connection and side.
    conns: BTreeMap<ConnId, (u64, usize)>,
    disk: Disk,
    cookie: Cookie,
    deferred: Vec<Ev>,
    /// The host's clock, which every `now` the node gets is read from (see `clock`).
    clock: Clock,
    /// A bandwidth limit on the host's network interface, if any.
    nic: Option<Nic>,
}

/// A host's network interface with a bandwidth limit: frames leave it, and arrive
/// through it, one after another at `bytes_per_sec`, so a burst queues up (in the
/// simulator's queues, which have no bound: the real driver's cap on a connection's
/// send queue is not modelled).
#[derive(Clone, Copy)]
struct Nic {
    bytes_per_sec: u64,
    /// When the last frame queued to go out has left.
    out_free: Instant,
    /// When the last frame queued to come in has been taken in.
    in_free: Instant,
}

impl Nic {
    /// How long `len` bytes take on the wire.
    fn time(&self, len: u64) -> Duration {
        let ns = (u128::from(len) * 1_000_000_000).div_ceil(u128::from(self.bytes_per_sec));
        Duration::from_nanos(ns.min(u128::from(u64::MAX)) as u64)
    }
}

type Factory<P> = Box<dyn FnMut(usize, &Snapshot) -> P>;

/// A line a driver adds to the trace log: its `event` name and its fields.
pub type TraceNote = (&'static str, Vec<(&'static str, TraceField)>);

/// How a driver names a node's event for the trace log, or `None` to leave it out (see
/// [`Sim::set_trace_log`]).
pub type DescribeEvent<E> = fn(&E) -> Option<TraceNote>;

/// A seeded discrete-event simulation of `n` nodes running protocol `P`.
pub struct Sim<P: Protocol> {
    config: SimConfig,
    now: Instant,
    rng: NodeRng,
    queue: Queue<Ev>,
    nodes: Vec<SimNode<P>>,
    conns: Slab<SimConn>,
    /// How many nodes are paused (events are checked for a paused target only if any).
    paused: usize,
    blocked: BTreeSet<(u64, usize)>,
    topo: Topology,
    trace: Trace,
    /// Names the nodes' events in the trace log (set with the log).
    describe: Option<DescribeEvent<P::Event>>,
    factory: Factory<P>,
    events: Vec<(Instant, usize, Event<P::Event>)>,
    /// Nodes a disk fault stopped, for the driver's bookkeeping (see
    /// [`Sim::drain_disk_faults`]).
    disk_faults: Vec<(usize, DiskFault)>,
    stats: SimStats,
}

impl<P: Protocol> Sim<P> {
    /// `factory(i, snapshot)` builds node `i`'s protocol, from what its disk holds.
    pub fn new(
        n: usize,
        config: SimConfig,
        factory: impl FnMut(usize, &Snapshot) -> P + 'static,
    ) -> Result<Self, String> {
        config.link.validate()?;
        if config.latency.0 > config.latency.1 {
            return Err(format!(
                "latency range {:?}..{:?} is empty",
                config.latency.0, config.latency.1
            ));
        }
        let nodes = (0..n)
            .map(|_| SimNode {
                node: None,
                status: Status::Idle,
                epoch: 0,
                wake: None,
                wake_gen: 0,
                extra_gen: 0,
                conns: BTreeMap::new(),
                disk: Disk::default(),
                cookie: config.cookie.clone(),
                deferred: Vec::new(),
                clock: Clock::default(),
                nic: None,
            })
            .collect();
        Ok(Sim {
            rng: NodeRng::from_seed(mix_seed(config.seed, u64::MAX)),
            config,
            now: Instant::ZERO,
            queue: Queue::new(),
            nodes,
            conns: Slab::new(),
            paused: 0,
            blocked: BTreeSet::new(),
            topo: Topology::new(n),
            trace: Trace::new(),
            describe: None,
            factory: Box::new(factory),
            events: Vec::new(),
            disk_faults: Vec::new(),
            stats: SimStats::default(),
        })
    }

    /// The address node `i` listens on.
    pub fn addr(i: usize) -> Addr {
        Addr::new(format!("n{i}")).expect("short and non-empty")
    }
    /// Node `i`'s name, as its peers see it in global membership.
    pub fn name(i: usize) -> Name {
        Name::new(format!("n{i}")).expect("short and non-empty")
    }
    pub fn id(i: usize) -> NodeId {
        NodeId(i as u64)
    }
    fn index_of(addr: &Addr) -> Option<usize> {
        addr.as_str().strip_prefix('n')?.parse().ok()
    }

    pub fn now(&self) -> Instant {
        self.now
    }
    /// What node `i`'s clock reads now (see `clock`).
    pub fn local(&self, i: usize) -> Instant {
        self.nodes[i].clock.read(self.now)
    }
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    pub fn config(&self) -> &SimConfig {
        &self.config
    }
    pub fn stats(&self) -> &SimStats {
        &self.stats
    }
    pub fn status(&self, i: usize) -> Status {
        self.nodes[i].status
    }
    /// The cookie node `i` holds (it keeps it across restarts).
    pub fn cookie(&self, i: usize) -> &Cookie {
        &self.nodes[i].cookie
    }
    /// The node's state, while its process exists (up, paused or frozen).
    pub fn node(&self, i: usize) -> Option<&Node<P>> {
        self.nodes[i].node.as_ref()
    }
    /// What node `i`'s disk would give a restart.
    pub fn disk(&self, i: usize) -> &Snapshot {
        self.nodes[i].disk.snapshot()
    }
    /// Can frames flow both ways between `a` and `b` right now?
    pub fn path_open(&self, a: usize, b: usize) -> bool {
        self.topo.both_open(a, b)
    }
    /// The trace hash: identical for identical runs.
    pub fn trace_hash(&self) -> String {
        self.trace.hash()
    }
    /// Write, from now on, a JSON line to `log` for everything the trace hash covers —
    /// every delivered frame (its message named by [`Protocol::message_kind`]),
    /// connection event, timer wake (with the timers that fired), sync, start, kill,
    /// freeze and pause — and for every other fault (partition, heal, cookie, slow link),
    /// every node's link events, and the node events `describe` names. The run and its
    /// hash are the same with or without a log. Give `log` a buffered writer.
    pub fn set_trace_log(
        &mut self,
        log: Box<dyn Write>,
        describe: Option<DescribeEvent<P::Event>>,
    ) {
        self.trace.set_log(log);
        self.describe = describe;
        for node in self.nodes.iter_mut().filter_map(|n| n.node.as_mut()) {
            node.observe();
        }
    }
    /// Is a trace log being written? (Build a [`Sim::trace_note`] only then.)
    pub fn trace_logging(&self) -> bool {
        self.trace.logging()
    }
    /// Add a line to the trace log (never to the hash): `event` on node `node`, with
    /// `fields` after `t_ns`, `event` and `node` — what the simulator's driver did that the
    /// simulator cannot name itself (a KV op, a multicast send).
    pub fn trace_note(&mut self, node: usize, event: &str, fields: &[(&str, TraceField)]) {
        if let Some(mut line) = self.trace.line(self.now, event) {
            line = line.node("node", node);
            for (key, value) in fields {
                line = line.field(key, value);
            }
        }
    }
    /// Node events since the last call, in the order they happened.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, (Instant, usize, Event<P::Event>)> {
        self.events.drain(..)
    }

    // ---- the run loop -------------------------------------------------------------

    /// Process the next event if it is due by `deadline`; otherwise move the clock to
    /// `deadline` and return `None`.
    pub fn step(&mut self, deadline: Instant) -> Option<Step> {
        match self.queue.peek_time() {
            Some(t) if t <= deadline => {
                let (at, ev) = self.queue.pop().expect("peeked");
                self.now = at;
                self.stats.events += 1;
                let node = self.handle(ev);
                Some(Step { at, node })
            }
            _ => {
                self.now = self.now.max(deadline);
                None
            }
        }
    }

    /// Run every event due by `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        while self.step(deadline).is_some() {}
        self.trace.flush();
    }

    /// Pending events (a measure of the simulation's load).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    fn handle(&mut self, ev: Ev) -> Option<usize> {
        if self.paused > 0
            && let Some(target) = ev.target(&self.conns)
            && self.nodes[target].status == Status::Paused
        {
            self.nodes[target].deferred.push(ev);
            return None;
        }
        match ev {
            Ev::Wake { node, generation } => self.on_wake(node, generation),
            Ev::Syn { conn } => self.on_syn(conn),
            Ev::Established { conn } => self.on_established(conn),
            Ev::ConnectFail { conn } => self.on_connect_fail(conn),
            Ev::Arrive { conn, to, payload } => self.on_arrive(conn, to, payload),
            Ev::DirTimeout { conn, from } => self.on_dir_timeout(conn, from),
            Ev::Sync { node, epoch, upto } => self.on_sync(node, epoch, upto),
            Ev::Resume { node, epoch } => self.on_resume(node, epoch),
            Ev::ClearExtra { node, generation } => {
                if self.nodes[node].extra_gen == generation {
                    self.topo.set_extra(node, Duration::ZERO);
                    if let Some(line) = self.trace.line(self.now, "slow-end") {
                        line.node("node", node);
                    }
                }
                None
            }
        }
    }

    fn latency(&mut self, from: usize, to: usize) -> Duration {
        let (lo, hi) = self.config.latency;
        let mut base = Duration::from_nanos(self.rng.below(lo.as_nanos(), hi.as_nanos() + 1));
        if let Some(tail) = self.config.latency_tail
            && self.rng.below(0, 1_000_000) < u64::from(tail.ppm)
        {
            base = tail.draw(hi, &mut self.rng);
        }
        base + self.topo.extra(from, to)
    }

    /// Whether a new connection is to be reset mid-handshake, and at which frame.
    fn draw_handshake_reset(&mut self) -> u8 {
        let ppm = self.config.handshake_reset_ppm;
        if ppm == 0 || self.rng.below(0, 1_000_000) >= u64::from(ppm) {
            return 0;
        }
        1 + self.rng.below(0, 2) as u8
    }

    /// A reset from the other end of connection `id` reaches `side` at `at`.
    fn reset_at(&mut self, id: u64, side: usize, at: Instant) {
        self.queue.push(
            at,
            Ev::Arrive {
                conn: id,
                to: side,
                payload: Payload::Control(Packet::Rst),
            },
        );
    }

    /// Is this end's process the one that owns it, and able to take input?
    fn end_live(&self, conn: u64, side: usize) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let end = &c.ends[side];
        let n = &self.nodes[end.node];
        end.open && end.epoch == n.epoch && matches!(n.status, Status::Up | Status::Paused)
    }

    // ---- driving nodes ------------------------------------------------------------

    /// Drain everything a node produced after an input.
    fn flush(&mut self, i: usize) {
        loop {
            let Some(node) = self.nodes[i].node.as_mut() else {
                return;
            };
            let Some(t) = node.poll_transmit() else { break };
            match t {
                Transmit::Connect { conn, addr } => self.dial(i, conn, &addr),
                Transmit::Send { conn, frame } => {
                    if let Some(&(id, side)) = self.nodes[i].conns.get(&conn) {
                        self.send(id, side, Payload::Frame(frame));
                    }
                }
                Transmit::Close { conn } => {
                    if let Some((id, side)) = self.nodes[i].conns.remove(&conn) {
                        let c = self.conns.get_mut(&id).expect("mapped");
                        c.ends[side].open = false;
                        let peer = c.ends[1 - side].node;
                        if let Some(line) = self.trace.line(self.now, "hang-up") {
                            line.node("node", i).node("peer", peer).num("conn", id);
                        }
                        self.send(id, side, Payload::Control(Packet::Fin));
                        self.forget_if_closed(id);
                    }
                }
            }
        }
        let n = &mut self.nodes[i];
        let node = n.node.as_mut().expect("checked above");
        while let Some(record) = node.poll_persist() {
            n.disk.write(record);
        }
        if n.disk.syncing.is_none()
            && let Some(upto) = n.disk.last_pending()
        {
            n.disk.syncing = Some(upto);
            let epoch = n.epoch;
            self.queue.push(
                self.now + n.disk.latency.unwrap_or(self.config.sync_latency),
                Ev::Sync {
                    node: i,
                    epoch,
                    upto,
                },
            );
        }
        let n = &mut self.nodes[i];
        let node = n.node.as_mut().expect("checked above");
        while let Some(event) = node.poll_event() {
            if self.trace.logging() {
                log_event(&mut self.trace, self.describe, self.now, i, &event);
            }
            self.events.push((self.now, i, event));
        }
        if let Some(t) = node.poll_timeout()
            && n.wake.is_none_or(|w| t < w)
        {
            self.wake_at(i, t);
        }
    }

    fn dial(&mut self, i: usize, conn: ConnId, addr: &Addr) {
        self.stats.connects += 1;
        let epoch = self.nodes[i].epoch;
        let target = Self::index_of(addr).filter(|&k| k < self.nodes.len());
        let deadline = self.now + self.config.connect_timeout;
        let k = target.unwrap_or(i);
        let reset_at_frame = self.draw_handshake_reset();
        let id = self.conns.insert(SimConn {
            ends: [
                End {
                    node: i,
                    epoch,
                    conn: Some(conn),
                    open: true,
                },
                End {
                    node: k,
                    epoch: 0,
                    conn: None,
                    open: false,
                },
            ],
            dirs: [Dir::default(), Dir::default()],
            connect_deadline: deadline,
            reset_at_frame,
            frames: 0,
        });
        self.nodes[i].conns.insert(conn, (id, 0));
        self.trace.record(self.now, i, 3, &(k as u64).to_le_bytes());
        if let Some(line) = self.trace.line(self.now, "connect") {
            let line = line.node("node", i).num("conn", id);
            match target {
                Some(k) => line.node("peer", k),
                None => line.str("addr", addr.as_str()),
            };
        }
        match target {
            Some(k) if self.topo.open(i, k) => {
                let at = self.now + self.latency(i, k);
                self.conns.get_mut(&id).expect("inserted").dirs[0].last = at;
                self.queue.push(at, Ev::Syn { conn: id });
            }
            // No such address: refused at once. A blackhole: no answer until the timeout.
            None => {
                let at = self.now + self.config.latency.0;
                self.queue.push(at, Ev::ConnectFail { conn: id })
            }
            Some(_) => self.queue.push(deadline, Ev::ConnectFail { conn: id }),
        }
    }

    fn send(&mut self, id: u64, side: usize, payload: Payload) {
        let (from, to) = {
            let c = &self.conns[&id];
            (c.ends[side].node, c.ends[1 - side].node)
        };
        let peer_gone = {
            let c = &self.conns[&id];
            c.ends[1 - side].conn.is_some() && !self.end_live(id, 1 - side)
        };
        if peer_gone {
            // The peer's process is gone or closed its end: its kernel answers a frame
            // with a reset, if the answer can get back; else the sender's retransmissions
            // time out.
            if matches!(payload, Payload::Frame(_)) && self.nodes[to].status != Status::Frozen {
                let back = if self.topo.both_open(from, to) {
                    self.now + self.latency(from, to) + self.latency(to, from)
                } else {
                    self.now + self.config.link_timeout
                };
                self.reset_at(id, side, back);
            }
            return;
        }
        let open = self.topo.open(from, to);
        let dir = &mut self.conns.get_mut(&id).expect("exists").dirs[side];
        if !open || !dir.held.is_empty() {
            dir.held.push_back(payload);
            if dir.blocked_since.is_none() {
                dir.blocked_since = Some(self.now);
                self.blocked.insert((id, side));
                self.queue.push(
                    self.now + self.config.link_timeout,
                    Ev::DirTimeout {
                        conn: id,
                        from: side,
                    },
                );
            }
            return;
        }
        self.schedule_arrival(id, side, from, to, payload);
    }

    /// Put `payload` on the wire from `side`: it arrives after a fresh latency, and never
    /// before what was sent on this direction earlier (the transport is ordered).
    fn schedule_arrival(&mut self, id: u64, side: usize, from: usize, to: usize, payload: Payload) {
        let lat = self.latency(from, to);
        let len = match &payload {
            Payload::Frame(bytes) => bytes.len() as u64,
            Payload::Control(_) => 0,
        };
        let mut at = self.now;
        if let Some(nic) = &mut self.nodes[from].nic {
            at = at.max(nic.out_free) + nic.time(len);
            nic.out_free = at;
        }
        at += lat;
        if let Some(nic) = &mut self.nodes[to].nic {
            at = at.max(nic.in_free) + nic.time(len);
            nic.in_free = at;
        }
        let dir = &mut self.conns.get_mut(&id).expect("exists").dirs[side];
        let at = at.max(dir.last);
        dir.last = at;
        self.queue.push(
            at,
            Ev::Arrive {
                conn: id,
                to: 1 - side,
                payload,
            },
        );
    }

    /// After a heal: frames held on paths that are open again go out, in order.
    fn release_held(&mut self) {
        let blocked: Vec<(u64, usize)> = self.blocked.iter().copied().collect();
        for (id, side) in blocked {
            let Some(c) = self.conns.get(&id) else {
                self.blocked.remove(&(id, side));
                continue;
            };
            let (from, to) = (c.ends[side].node, c.ends[1 - side].node);
            if !self.topo.open(from, to) {
                continue;
            }
            self.blocked.remove(&(id, side));
            let held: Vec<Payload> = {
                let dir = &mut self.conns.get_mut(&id).expect("exists").dirs[side];
                dir.blocked_since = None;
                dir.held.drain(..).collect()
            };
            for payload in held {
                self.send(id, side, payload);
            }
        }
    }

    fn forget_if_closed(&mut self, id: u64) {
        if let Some(c) = self.conns.get(&id) {
            let dead = |e: &End| !e.open;
            if dead(&c.ends[0]) && dead(&c.ends[1]) {
                self.conns.remove(&id);
                self.blocked.remove(&(id, 0));
                self.blocked.remove(&(id, 1));
            }
        }
    }

    /// Tell the owner of `side` that its connection is closed.
    fn close_end(&mut self, id: u64, side: usize, tag: u8) -> Option<usize> {
        if !self.end_live(id, side) {
            return None;
        }
        let c = self.conns.get_mut(&id).expect("live");
        let end = &mut c.ends[side];
        end.open = false;
        let (i, conn) = (end.node, end.conn.expect("live ends have ids"));
        let peer = c.ends[1 - side].node;
        c.dirs[side].held.clear();
        c.dirs[side].blocked_since = None;
        self.nodes[i].conns.remove(&conn);
        self.trace.record(self.now, i, tag, &conn.0.to_le_bytes());
        if let Some(line) = self.trace.line(self.now, "close") {
            let reason = match tag {
                CLOSE_CONNECT_FAILED => "connect-failed",
                CLOSE_FIN => "fin",
                CLOSE_RESET => "reset",
                _ => "timeout",
            };
            line.node("node", i)
                .node("peer", peer)
                .num("conn", id)
                .str("reason", reason);
        }
        self.forget_if_closed(id);
        let now = self.local(i);
        self.nodes[i]
            .node
            .as_mut()
            .expect("live")
            .handle_closed(now, conn);
        self.flush(i);
        Some(i)
    }

    fn on_wake(&mut self, i: usize, generation: u64) -> Option<usize> {
        let n = &mut self.nodes[i];
        if n.wake_gen != generation || n.status != Status::Up {
            return None;
        }
        n.wake = None;
        let now = self.now;
        self.trace.record(now, i, 4, &[]);
        let node = n.node.as_mut().expect("up");
        node.handle_timeout(n.clock.read(now));
        if self.trace.logging() {
            let mut timers = Vec::new();
            while let Some(observed) = node.poll_observed() {
                if let Observed::Timer(t) = observed {
                    timers.push(t);
                }
            }
            if let Some(line) = self.trace.line(now, "wake") {
                line.node("node", i).strs("timers", &timers);
            }
        }
        self.flush(i);
        Some(i)
    }

    fn on_syn(&mut self, id: u64) -> Option<usize> {
        let c = self.conns.get(&id)?;
        let (i, k) = (c.ends[0].node, c.ends[1].node);
        let deadline = c.connect_deadline;
        if !self.end_live(id, 0) {
            return None;
        }
        match self.nodes[k].status {
            Status::Up => {}
            Status::Idle | Status::Down => {
                let at = self.now + self.latency(k, i);
                self.queue.push(at, Ev::ConnectFail { conn: id });
                return None;
            }
            Status::Frozen | Status::Paused => {
                self.queue.push(deadline, Ev::ConnectFail { conn: id });
                return None;
            }
        }
        if !self.topo.open(k, i) {
            self.queue
                .push(deadline.max(self.now), Ev::ConnectFail { conn: id });
            return None;
        }
        let now = self.now;
        let local = self.local(k);
        let conn = self.nodes[k]
            .node
            .as_mut()
            .expect("up")
            .handle_accept(local);
        let at = now + self.latency(k, i);
        let epoch = self.nodes[k].epoch;
        let c = self.conns.get_mut(&id).expect("exists");
        c.ends[1] = End {
            node: k,
            epoch,
            conn: Some(conn),
            open: true,
        };
        c.dirs[1].last = at;
        self.nodes[k].conns.insert(conn, (id, 1));
        self.queue.push(at, Ev::Established { conn: id });
        self.trace.record(now, k, 5, &conn.0.to_le_bytes());
        if let Some(line) = self.trace.line(now, "accept") {
            line.node("node", k).node("peer", i).num("conn", id);
        }
        self.flush(k);
        Some(k)
    }

    fn on_established(&mut self, id: u64) -> Option<usize> {
        if !self.end_live(id, 0) {
            return None;
        }
        let c = &self.conns[&id];
        let (i, conn) = (c.ends[0].node, c.ends[0].conn.expect("dialled"));
        let peer = c.ends[1].node;
        let now = self.now;
        self.trace.record(now, i, 6, &conn.0.to_le_bytes());
        if let Some(line) = self.trace.line(now, "connected") {
            line.node("node", i).node("peer", peer).num("conn", id);
        }
        let local = self.local(i);
        self.nodes[i]
            .node
            .as_mut()
            .expect("live")
            .handle_connected(local, conn);
        self.flush(i);
        Some(i)
    }

    fn on_connect_fail(&mut self, id: u64) -> Option<usize> {
        let established = self.conns.get(&id)?.ends[1].conn.is_some();
        if established {
            return None;
        }
        self.close_end(id, 0, CLOSE_CONNECT_FAILED)
    }

    fn on_arrive(&mut self, id: u64, to: usize, payload: Payload) -> Option<usize> {
        let c = self.conns.get(&id)?;
        let i = c.ends[to].node;
        if self.nodes[i].status == Status::Frozen {
            return None;
        }
        if !self.end_live(id, to) {
            if matches!(payload, Payload::Frame(_)) && self.end_live(id, 1 - to) {
                let back = if self.topo.both_open(i, c.ends[1 - to].node) {
                    self.now + self.latency(i, c.ends[1 - to].node)
                } else {
                    self.now + self.config.link_timeout
                };
                self.reset_at(id, 1 - to, back);
            }
            return None;
        }
        let from = c.ends[1 - to].node;
        if matches!(payload, Payload::Frame(_)) && c.reset_at_frame > 0 {
            let c = self.conns.get_mut(&id).expect("exists");
            c.frames = c.frames.saturating_add(1);
            if c.frames == c.reset_at_frame {
                // The frame is lost; the receiver's end is reset, and so, a trip later,
                // is the sender's.
                let back = self.now + self.latency(i, from);
                self.reset_at(id, 1 - to, back);
                return self.close_end(id, to, CLOSE_RESET);
            }
        }
        let c = &self.conns[&id];
        match payload {
            Payload::Frame(bytes) => {
                let conn = c.ends[to].conn.expect("live");
                self.stats.frames += 1;
                self.stats.bytes += bytes.len() as u64;
                let now = self.now;
                self.trace.record(now, i, 1, &bytes);
                let local = self.local(i);
                let node = self.nodes[i].node.as_mut().expect("live");
                node.handle_frame(local, conn, &bytes);
                if let Some(line) = self.trace.line(now, "frame") {
                    line.node("from", from)
                        .node("to", i)
                        .num("conn", id)
                        .str("kind", frame_kind(&bytes, node))
                        .num("len", bytes.len() as u64);
                }
                self.flush(i);
                Some(i)
            }
            Payload::Control(p) => {
                let tag = if p == Packet::Fin {
                    CLOSE_FIN
                } else {
                    CLOSE_RESET
                };
                self.close_end(id, to, tag)
            }
        }
    }

    fn on_dir_timeout(&mut self, id: u64, from: usize) -> Option<usize> {
        let dir = &self.conns.get(&id)?.dirs[from];
        let since = dir.blocked_since?;
        if self.now < since + self.config.link_timeout || dir.held.is_empty() {
            return None;
        }
        self.close_end(id, from, CLOSE_TIMEOUT)
    }

    fn on_sync(&mut self, i: usize, epoch: u64, upto: PersistSeq) -> Option<usize> {
        let n = &mut self.nodes[i];
        if n.epoch != epoch || n.status != Status::Up {
            return None;
        }
        if let Some(fault) = n.disk.fault.take() {
            self.disk_fault(i, upto, fault);
            return Some(i);
        }
        let n = &mut self.nodes[i];
        n.disk.sync(upto);
        n.disk.syncing = None;
        let now = self.now;
        self.trace.record(now, i, 11, &upto.0.to_le_bytes());
        if let Some(line) = self.trace.line(now, "sync") {
            line.node("node", i).num("upto", upto.0);
        }
        let local = n.clock.read(now);
        n.node.as_mut().expect("up").handle_persisted(local, upto);
        self.flush(i);
        Some(i)
    }

    /// Node `i`'s sync up to `upto` meets `fault`, and the node stops: a failed sync
    /// makes the driver stop it (the real one says "store failure, stopping"), a torn
    /// one is a crash in the middle of the write. Either way it never hears of the sync,
    /// so it acknowledged nothing the sync covered.
    fn disk_fault(&mut self, i: usize, upto: PersistSeq, fault: DiskFault) {
        let (tag, name) = match fault {
            DiskFault::Fail => {
                self.nodes[i].disk.fail(upto);
                self.stats.sync_failures += 1;
                (18, "sync-failed")
            }
            DiskFault::Tear => {
                let of = self.nodes[i].disk.batch_len(upto);
                let reached = self.rng.below(0, of as u64 + 1) as usize;
                let damaged = self.rng.below(0, 2) == 1;
                self.nodes[i].disk.tear(upto, reached, damaged);
                self.stats.torn_syncs += 1;
                (19, "sync-torn")
            }
        };
        self.trace.record(self.now, i, tag, &upto.0.to_le_bytes());
        if let Some(line) = self.trace.line(self.now, name) {
            line.node("node", i).num("upto", upto.0);
        }
        self.disk_faults.push((i, fault));
        self.kill(i);
    }

    /// Wake node `i` when its clock reads `t` (not before now); an earlier pending
    /// wake-up is superseded.
    fn wake_at(&mut self, i: usize, t: Instant) {
        let n = &mut self.nodes[i];
        n.wake = Some(t);
        n.wake_gen += 1;
        let generation = n.wake_gen;
        self.queue.push(
            n.clock.when(t).max(self.now),
            Ev::Wake {
                node: i,
                generation,
            },
        );
    }

    fn on_resume(&mut self, i: usize, epoch: u64) -> Option<usize> {
        let n = &mut self.nodes[i];
        if n.epoch != epoch || n.status != Status::Paused {
            return None;
        }
        n.status = Status::Up;
        self.paused -= 1;
        for ev in std::mem::take(&mut n.deferred) {
            self.queue.push(self.now, ev);
        }
        // Timers that came due during the pause fire now, late: the protocol must cope.
        if let Some(t) = n.node.as_ref().and_then(|node| node.poll_timeout()) {
            self.wake_at(i, t);
        }
        self.trace.record(self.now, i, 12, &[]);
        if let Some(line) = self.trace.line(self.now, "resume") {
            line.node("node", i);
        }
        Some(i)
    }

    // ---- faults and commands --------------------------------------------------------

    /// Start node `i` (or restart it, if it is running): its protocol is rebuilt from
    /// what its disk holds.
    pub fn start(&mut self, i: usize) {
        if self.nodes[i].node.is_some() {
            self.kill(i);
        }
        let n = &mut self.nodes[i];
        n.epoch += 1;
        n.status = Status::Up;
        n.deferred.clear();
        n.wake = None;
        if let Some(recovered) = n.disk.recover() {
            let (tag, what) = match recovered {
                Recovered::Whole { records } => (20, format!("{records} records loaded")),
                Recovered::Dropped { written, of } => {
                    self.stats.torn_dropped += 1;
                    (
                        21,
                        format!("{written} of {of} records on disk, checksum failed: dropped"),
                    )
                }
            };
            self.trace.record(self.now, i, tag, &[]);
            if let Some(line) = self.trace.line(self.now, "torn-batch") {
                line.node("node", i).str("what", &what);
            }
        }
        let n = &mut self.nodes[i];
        let protocol = (self.factory)(i, n.disk.snapshot());
        let identity = Identity {
            id: Self::id(i),
            name: Self::name(i),
            addr: Self::addr(i),
            cookie: n.cookie.clone(),
        };
        let seed = mix_seed(self.config.seed, ((i as u64) << 24) ^ n.epoch);
        let mut node = Node::new(self.config.link.clone(), identity, seed, protocol)
            .expect("link config validated in Sim::new");
        if self.trace.logging() {
            node.observe();
        }
        n.node = Some(node);
        let now = self.now;
        self.trace.record(now, i, 13, &n.epoch.to_le_bytes());
        if let Some(line) = self.trace.line(now, "start") {
            line.node("node", i).num("epoch", n.epoch);
        }
        let local = n.clock.read(now);
        n.node.as_mut().expect("just set").handle_start(local);
        self.flush(i);
    }

    /// Kill node `i`'s process: volatile state gone, peers see resets, the disk keeps
    /// what was synced.
    pub fn kill(&mut self, i: usize) {
        if self.nodes[i].node.is_none() {
            return;
        }
        let was_frozen = self.nodes[i].status == Status::Frozen;
        if self.nodes[i].status == Status::Paused {
            self.paused -= 1;
        }
        self.topo.set_frozen(i, false);
        let conns: Vec<(u64, usize)> = self.nodes[i].conns.values().copied().collect();
        for (id, side) in conns {
            let c = self.conns.get_mut(&id).expect("mapped");
            c.ends[side].open = false;
            c.dirs[side].held.clear();
            c.dirs[side].blocked_since = None;
            let peer = c.ends[1 - side].node;
            // A dead process's kernel resets its connections; a frozen host's cannot.
            if !was_frozen && c.ends[1 - side].open && self.topo.open(i, peer) {
                self.send_control(id, side, Packet::Rst);
            }
            self.forget_if_closed(id);
        }
        let n = &mut self.nodes[i];
        n.conns.clear();
        n.node = None;
        n.status = Status::Down;
        n.deferred.clear();
        n.wake = None;
        n.disk.crash(self.config.lose_unsynced);
        self.trace.record(self.now, i, 14, &[]);
        if let Some(line) = self.trace.line(self.now, "kill") {
            line.node("node", i);
        }
    }

    /// A reset travels like a frame but ignores the dead end's liveness.
    fn send_control(&mut self, id: u64, side: usize, p: Packet) {
        let (from, to) = {
            let c = &self.conns[&id];
            (c.ends[side].node, c.ends[1 - side].node)
        };
        self.schedule_arrival(id, side, from, to, Payload::Control(p));
    }

    /// Kill and start again from the disk.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.start(i);
    }

    /// Kill, erase the disk, and start again: a replaced machine with the same name.
    pub fn wipe(&mut self, i: usize) {
        self.kill(i);
        self.nodes[i].disk.wipe();
        if let Some(line) = self.trace.line(self.now, "wipe") {
            line.node("node", i);
        }
        self.start(i);
    }

    /// The host goes silent: nothing in, nothing out, no resets. Peers find out only
    /// by timeouts. Ends with a kill or restart.
    pub fn freeze(&mut self, i: usize) {
        if self.nodes[i].node.is_some() {
            if self.nodes[i].status == Status::Paused {
                self.paused -= 1;
            }
            self.nodes[i].status = Status::Frozen;
            self.topo.set_frozen(i, true);
            self.trace.record(self.now, i, 15, &[]);
            if let Some(line) = self.trace.line(self.now, "freeze") {
                line.node("node", i);
            }
        }
    }

    /// The process stops for `d` (a GC pause, a VM steal): inputs queue up, timers come
    /// due, and everything is processed late when it resumes.
    pub fn pause(&mut self, i: usize, d: Duration) {
        if self.nodes[i].status == Status::Up {
            self.nodes[i].status = Status::Paused;
            self.paused += 1;
            let epoch = self.nodes[i].epoch;
            self.queue.push(self.now + d, Ev::Resume { node: i, epoch });
            self.trace
                .record(self.now, i, 16, &d.as_nanos().to_le_bytes());
            if let Some(line) = self.trace.line(self.now, "pause") {
                line.node("node", i).num("for_ns", d.as_nanos());
            }
        }
    }

    /// Split the network: nodes in different groups cannot exchange anything; a node in
    /// no group reaches everyone.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        if let Some(line) = self.trace.line(self.now, "partition") {
            let names: Vec<Vec<String>> = groups
                .iter()
                .map(|g| g.iter().map(|i| format!("n{i}")).collect())
                .collect();
            line.field("groups", &TraceField::Json(names.into()));
        }
        self.topo.partition(groups);
        self.release_held();
    }

    /// Frames from `from` to `to` are lost; the reverse direction still flows.
    pub fn partition_oneway(&mut self, from: &[usize], to: &[usize]) {
        if let Some(line) = self.trace.line(self.now, "oneway") {
            line.nodes("senders", from).nodes("receivers", to);
        }
        self.topo.partition_oneway(from, to);
    }

    /// Cut (or restore) every link of node `i`: it keeps running, its frames are held
    /// as on a partition, and a restore lets them out. Partitions and heals do not touch
    /// it.
    pub fn cut(&mut self, i: usize, cut: bool) {
        if let Some(line) = self.trace.line(self.now, if cut { "cut" } else { "uncut" }) {
            line.node("node", i);
        }
        self.topo.set_cut(i, cut);
        if !cut {
            self.release_held();
        }
    }

    /// End every partition; frames held on now-open paths go out.
    pub fn heal(&mut self) {
        // A line is written when it is dropped: this one has no fields.
        drop(self.trace.line(self.now, "heal"));
        self.topo.heal();
        self.release_held();
    }

    /// From now on node `i`'s clock runs `ppm` parts per million fast (negative: slow)
    /// and reads `step` ahead of where it was (see `clock`). The host's clock: it keeps
    /// it across restarts.
    pub fn set_clock(&mut self, i: usize, ppm: i64, step: Duration) {
        if let Some(line) = self.trace.line(self.now, "clock") {
            line.node("node", i)
                .num("drift_ppm", ppm.unsigned_abs())
                .str("drift", if ppm < 0 { "slow" } else { "fast" })
                .num("step_ns", step.as_nanos());
        }
        let now = self.now;
        let mut data = ppm.to_le_bytes().to_vec();
        data.extend(step.as_nanos().to_le_bytes());
        self.trace.record(now, i, 17, &data);
        self.nodes[i].clock.change(now, ppm, step);
        // A pending wake-up was set by the old clock's rate: set it again.
        if let Some(t) = self.nodes[i].wake
            && self.nodes[i].status == Status::Up
        {
            self.wake_at(i, t);
        }
    }

    /// Change node `i`'s cookie (it keeps it across restarts). `None` restores the
    /// cluster's cookie.
    pub fn set_cookie(&mut self, i: usize, cookie: Option<Cookie>) {
        if let Some(line) = self.trace.line(self.now, "cookie") {
            let which = if cookie.is_some() { "own" } else { "cluster" };
            line.node("node", i).str("cookie", which);
        }
        let cookie = cookie.unwrap_or_else(|| self.config.cookie.clone());
        self.nodes[i].cookie = cookie.clone();
        let now = self.local(i);
        if self.nodes[i].status != Status::Down
            && let Some(node) = self.nodes[i].node.as_mut()
        {
            node.handle_cookie(now, cookie);
            self.flush(i);
        }
    }

    /// Add `extra` latency to every frame to or from node `i`, for `d` if given.
    pub fn slow(&mut self, i: usize, extra: Duration, d: Option<Duration>) {
        if let Some(line) = self.trace.line(self.now, "slow") {
            let line = line.node("node", i).num("extra_ns", extra.as_nanos());
            if let Some(d) = d {
                line.num("for_ns", d.as_nanos());
            }
        }
        self.topo.set_extra(i, extra);
        self.nodes[i].extra_gen += 1;
        if let Some(d) = d {
            let generation = self.nodes[i].extra_gen;
            self.queue.push(
                self.now + d,
                Ev::ClearExtra {
                    node: i,
                    generation,
                },
            );
        }
    }

    /// From now on node `i`'s network interface carries `bytes_per_sec` each way
    /// (`None`: no limit again): frames queue behind each other to leave and to come
    /// in, so a burst (a join storm, an anti-entropy exchange) arrives late.
    pub fn limit_bandwidth(&mut self, i: usize, bytes_per_sec: Option<u64>) {
        if let Some(line) = self.trace.line(self.now, "bandwidth") {
            line.node("node", i)
                .num("bytes_per_sec", bytes_per_sec.unwrap_or(0));
        }
        let now = self.now;
        let n = &mut self.nodes[i];
        n.nic = bytes_per_sec.filter(|&b| b > 0).map(|bytes_per_sec| {
            // What is queued keeps its times; a new limit applies to what comes next.
            let (out_free, in_free) = n.nic.map_or((now, now), |x| (x.out_free, x.in_free));
            Nic {
                bytes_per_sec,
                out_free,
                in_free,
            }
        });
    }

    /// From now on node `i`'s syncs take `latency` (`None`: the simulation's
    /// `sync_latency` again): a slow or overloaded disk. The sync in flight keeps its
    /// time.
    pub fn slow_disk(&mut self, i: usize, latency: Option<Duration>) {
        if let Some(line) = self.trace.line(self.now, "disk-slow") {
            let ns = latency.unwrap_or(self.config.sync_latency).as_nanos();
            line.node("node", i).num("sync_ns", ns);
        }
        self.nodes[i].disk.latency = latency;
    }

    /// Node `i`'s next sync meets `fault` (see [`DiskFault`]): the node stops there, and
    /// is listed by [`Sim::drain_disk_faults`]. A kill or restart before that sync
    /// clears it.
    pub fn break_disk(&mut self, i: usize, fault: DiskFault) {
        if let Some(line) = self.trace.line(self.now, "disk-armed") {
            line.node("node", i).str("fault", &format!("{fault:?}"));
        }
        if self.nodes[i].node.is_some() {
            self.nodes[i].disk.fault = Some(fault);
        }
    }

    /// Nodes a disk fault stopped since the last call, in order: the simulator killed
    /// them (`Sim::status` is `Down`); a driver does its own bookkeeping of a kill.
    pub fn drain_disk_faults(&mut self) -> std::vec::Drain<'_, (usize, DiskFault)> {
        self.disk_faults.drain(..)
    }

    /// Run a user command on node `i`'s protocol (a kv op, a multicast, ...).
    pub fn command<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut P, &mut hawser_core::Ctx<'_, P::Timer, P::Event>) -> R,
    ) -> Option<R> {
        if self.nodes[i].status != Status::Up {
            return None;
        }
        let now = self.local(i);
        let r = self.nodes[i].node.as_mut()?.command(now, f);
        self.flush(i);
        Some(r)
    }
}

/// What the hash records for a closed connection end, by cause.
const CLOSE_CONNECT_FAILED: u8 = 7;
const CLOSE_FIN: u8 = 8;
const CLOSE_RESET: u8 = 9;
const CLOSE_TIMEOUT: u8 = 10;

/// A delivered frame's kind for the log: the link layer's own frames by their header; a
/// data frame by the message the node took out of it (named by the protocol), or
/// `link.data` when none came out (not an established link, or it did not open).
fn frame_kind<P: Protocol>(bytes: &[u8], node: &mut Node<P>) -> &'static str {
    let mut message = None;
    while let Some(observed) = node.poll_observed() {
        if let Observed::Message { kind, .. } = observed {
            message = Some(kind.unwrap_or("message"));
        }
    }
    match decode_header(bytes, usize::MAX) {
        Ok((FrameKind::Hello, _)) => "link.hello",
        Ok((FrameKind::Proof, _)) => "link.proof",
        Ok((FrameKind::Refuse, _)) => "link.refuse",
        Ok((FrameKind::Data, _)) => message.unwrap_or("link.data"),
        Err(_) => "invalid",
    }
}

/// Log what node `i` reported: link events and bad messages as the core names them, and
/// the protocol's events that `describe` names.
fn log_event<E>(
    trace: &mut Trace,
    describe: Option<DescribeEvent<E>>,
    now: Instant,
    i: usize,
    event: &Event<E>,
) {
    match event {
        Event::Link(e) => {
            if let Some(line) = trace.line(now, "link") {
                line.node("node", i).str("what", &format!("{e:?}"));
            }
        }
        Event::BadMessage { from, error } => {
            if let Some(line) = trace.line(now, "bad-message") {
                line.node("node", i)
                    .node("peer", from.0 as usize)
                    .str("error", &error.to_string());
            }
        }
        Event::App(e) => {
            if let Some((name, fields)) = describe.and_then(|d| d(e))
                && let Some(mut line) = trace.line(now, name)
            {
                line = line.node("node", i);
                for (key, value) in &fields {
                    line = line.field(key, value);
                }
            }
        }
    }
}
