use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::Cookie;
use super::handshake::{
    Hello, Keys, LINK_VERSION, Opener, PROOF_LEN, Pake, Role, Sealer, TAG_LEN, Transcript,
};
use crate::id::{Addr, NodeId};
use crate::rng::NodeRng;
use crate::stats::Stats;
use crate::time::{Duration, Instant};
use crate::wire::{self, Bounded, FrameKind, MIN_MAX_FRAME, WireError};

/// Largest frame payload a connection may send before it has authenticated: a hello
/// (its address is at most 255 bytes) or a proof. Nothing an unauthenticated peer sends
/// can make a node hold more than this per connection.
pub const MAX_HANDSHAKE_FRAME: usize = 320;
/// Frames each end sends before data frames: its hello and its proof. A stream driver
/// reads the first this many frames of a connection with [`MAX_HANDSHAKE_FRAME`] as the
/// limit, and the rest with the configured `max_frame`.
pub const HANDSHAKE_FRAMES: u64 = 2;

/// A transport connection, named by the node (the driver never invents ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConnId(pub u64);

/// Limits of the link layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Largest frame payload accepted or sent, in bytes.
    pub max_frame: usize,
    /// A connection that has not authenticated within this time is closed, so a peer that
    /// connects and says nothing holds no resources for long.
    pub handshake_timeout: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            max_frame: 4 << 20,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

impl LinkConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_frame < MIN_MAX_FRAME || self.max_frame > (u32::MAX as usize) {
            return Err(format!(
                "max_frame = {}: must be between {MIN_MAX_FRAME} and {} bytes",
                self.max_frame,
                u32::MAX
            ));
        }
        if self.handshake_timeout == Duration::ZERO {
            return Err("handshake_timeout must be greater than zero".into());
        }
        Ok(())
    }
}

/// What the node asks the driver to do with connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Open a transport connection to `addr`; report it with `handle_connected` or
    /// `handle_closed`.
    Connect { conn: ConnId, addr: Addr },
    /// Write one frame (header included) on the connection, after those before it.
    Send { conn: ConnId, frame: Vec<u8> },
    /// Close the connection once the frames queued before this are written.
    Close { conn: ConnId },
}

/// Why an established link went down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DownReason {
    /// The transport closed or reset (peer died, network broke, peer closed it).
    Closed,
    /// The peer sent something malformed or unauthenticated after the handshake.
    Protocol,
    /// The local cookie changed; links made under the old one are dropped.
    Rekeyed,
}

/// Why an outbound connection did not become a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectError {
    /// The transport could not connect, or closed during the handshake.
    Unreachable,
    /// The peer does not hold our cookie (or we do not hold theirs).
    AuthFailed,
    /// The peer is not who we expected, speaks another link version, or is ourselves.
    WrongPeer,
    /// No handshake within the configured timeout.
    Timeout,
    /// The peer sent bytes that are not a valid handshake.
    Malformed,
    /// Another node with the same id (the same name) is linked already, from another
    /// address; or the peer refused us for that reason.
    DuplicateId,
}

/// Why a node closed a link it had just authenticated, sent to the peer in a `Refuse`
/// frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefuseReason {
    /// A live link to a node with the refused one's id exists, from another address:
    /// two agents were given the same name.
    DuplicateId,
}

/// Happenings the node passes on: to the protocol and, as events, to the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    Up {
        peer: NodeId,
        addr: Addr,
    },
    Down {
        peer: NodeId,
        reason: DownReason,
    },
    ConnectFailed {
        addr: Addr,
        expected: Option<NodeId>,
        error: ConnectError,
    },
    Message {
        from: NodeId,
        body: Vec<u8>,
    },
    /// A peer failed the cookie proof. `claimed` is the id it announced (unverified).
    AuthFailure {
        conn: ConnId,
        claimed: Option<NodeId>,
    },
    /// Bytes on a connection that do not decode; the connection was closed.
    DecodeError {
        conn: ConnId,
        error: WireError,
    },
    /// A second node claimed `peer`'s id from `addr` while the link to `live_addr` was
    /// up: we kept the live one and refused the newcomer (names must be unique).
    DuplicateRefused {
        conn: ConnId,
        peer: NodeId,
        addr: Addr,
        live_addr: Addr,
    },
    /// `peer` refused the link we had just made with it.
    RefusedByPeer {
        peer: NodeId,
        reason: RefuseReason,
    },
}

enum State {
    /// Outbound, transport not connected yet.
    Connecting,
    /// Transport up; hellos and proofs in flight. `pake` is our half of the key
    /// exchange until the peer's hello completes it into `peer`'s keys.
    Handshaking {
        ours: Vec<u8>,
        pake: Option<Box<Pake>>,
        peer: Option<(Hello, Box<Keys>)>,
    },
    Established {
        peer: NodeId,
        /// Where the peer said it listens (its hello).
        addr: Addr,
        sealer: Sealer,
        opener: Opener,
    },
}

struct Conn {
    role: Role,
    /// For outbound connections: where we dialled and whom we expect there.
    target: Option<(Addr, Option<NodeId>)>,
    /// When the handshake must be done by (for the timeout).
    deadline: Instant,
    /// Order of creation: the newer of two same-initiator connections wins.
    opened: u64,
    /// Who the transport proved the peer to be (mutual TLS: its certificate's name).
    verified: Option<NodeId>,
    state: State,
}

/// The link table of one node: its connections, their handshakes, its links.
pub struct Links {
    config: LinkConfig,
    id: NodeId,
    addr: Addr,
    cookie: Cookie,
    conns: BTreeMap<ConnId, Conn>,
    by_peer: BTreeMap<NodeId, ConnId>,
    deadlines: BTreeSet<(Instant, ConnId)>,
    next_conn: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LinkEvent>,
}

impl Links {
    pub fn new(config: LinkConfig, id: NodeId, addr: Addr, cookie: Cookie) -> Links {
        Links {
            config,
            id,
            addr,
            cookie,
            conns: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_conn: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn addr(&self) -> &Addr {
        &self.addr
    }
    pub fn max_frame(&self) -> usize {
        self.config.max_frame
    }
    pub fn is_linked(&self, peer: NodeId) -> bool {
        self.by_peer.contains_key(&peer)
    }
    /// Established peers, in id order.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.by_peer.keys().copied()
    }
    /// Connections that exist but are not (yet) links.
    pub fn pending(&self) -> usize {
        self.conns.len() - self.by_peer.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    fn new_conn(
        &mut self,
        now: Instant,
        role: Role,
        target: Option<(Addr, Option<NodeId>)>,
        state: State,
    ) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let deadline = now + self.config.handshake_timeout;
        self.deadlines.insert((deadline, conn));
        self.conns.insert(
            conn,
            Conn {
                role,
                target,
                deadline,
                opened: conn.0,
                verified: None,
                state,
            },
        );
        conn
    }

    /// Dial `addr`. With `expected`, a link to that peer that already exists makes this a
    /// no-op, and a different node answering at `addr` is refused.
    pub fn connect(&mut self, now: Instant, addr: Addr, expected: Option<NodeId>) {
        if expected.is_some_and(|p| p == self.id || self.is_linked(p)) {
            return;
        }
        let conn = self.new_conn(
            now,
            Role::Initiator,
            Some((addr.clone(), expected)),
            State::Connecting,
        );
        self.transmits.push_back(Transmit::Connect { conn, addr });
    }

    /// Close the link to `peer` (after frames already queued). The protocol asked for it,
    /// so it is not told again with a `Down`.
    pub fn disconnect(&mut self, peer: NodeId) {
        if let Some(conn) = self.by_peer.remove(&peer) {
            self.drop_conn(conn);
        }
    }

    /// Seal and queue a message for `peer`: the concatenation of `parts`.
    pub fn send(
        &mut self,
        stats: &mut Stats,
        peer: NodeId,
        parts: &[&[u8]],
    ) -> Result<(), SendError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let Some(&conn) = self.by_peer.get(&peer) else {
            stats.send_without_link += 1;
            return Err(SendError::NotLinked(peer));
        };
        if len + TAG_LEN > self.config.max_frame {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_frame - TAG_LEN,
            });
        }
        let Some(Conn {
            state: State::Established { sealer, .. },
            ..
        }) = self.conns.get_mut(&conn)
        else {
            unreachable!("by_peer only names established connections")
        };
        let Some(sealed) = sealer.seal(parts) else {
            self.fail(conn, ConnectError::AuthFailed);
            return Err(SendError::NotLinked(peer));
        };
        let frame = wire::encode_frame(FrameKind::Data, &sealed);
        stats.frames_out += 1;
        stats.bytes_out += frame.len() as u64;
        self.transmits.push_back(Transmit::Send { conn, frame });
        Ok(())
    }

    /// The transport accepted an inbound connection.
    pub fn accepted(&mut self, now: Instant, rng: &mut NodeRng) -> ConnId {
        let conn = self.new_conn(now, Role::Responder, None, State::Connecting);
        self.start_handshake(conn, rng);
        conn
    }

    /// An outbound connection is up at the transport level.
    pub fn connected(&mut self, conn: ConnId, rng: &mut NodeRng) {
        if matches!(
            self.conns.get(&conn),
            Some(Conn {
                state: State::Connecting,
                ..
            })
        ) {
            self.start_handshake(conn, rng);
        }
    }

    fn start_handshake(&mut self, conn: ConnId, rng: &mut NodeRng) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (pake, msg) = Pake::start(&self.cookie, c.role, rng);
        let hello = Hello {
            version: LINK_VERSION,
            node: self.id,
            addr: self.addr.clone(),
            pake: Bounded(msg),
        };
        let ours = wire::encode(&hello);
        self.transmits.push_back(Transmit::Send {
            conn,
            frame: wire::encode_frame(FrameKind::Hello, &ours),
        });
        c.state = State::Handshaking {
            ours,
            pake: Some(Box::new(pake)),
            peer: None,
        };
    }

    /// The transport authenticated the peer on `conn` as `peer` (mutual TLS: a
    /// certificate from the cluster's CA for the name `peer` derives from). A hello that
    /// claims another id then fails like a wrong cookie does.
    pub fn transport_verified(&mut self, conn: ConnId, peer: NodeId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.verified = Some(peer);
        }
    }

    /// The transport refused the peer's credentials on `conn` (mutual TLS: no
    /// certificate, a wrong or expired one): counted, reported and closed exactly as a
    /// failed cookie proof is.
    pub fn transport_refused(&mut self, stats: &mut Stats, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.auth_failed(stats, conn, None);
        }
    }

    fn auth_failed(&mut self, stats: &mut Stats, conn: ConnId, claimed: Option<NodeId>) {
        stats.auth_failures += 1;
        self.events
            .push_back(LinkEvent::AuthFailure { conn, claimed });
        self.fail(conn, ConnectError::AuthFailed);
    }

    /// The transport closed, reset, or failed to connect.
    pub fn closed(&mut self, conn: ConnId) {
        let Some(c) = self.remove_conn(conn) else {
            return;
        };
        match c.state {
            State::Established { peer, .. } => {
                if self.by_peer.get(&peer) == Some(&conn) {
                    self.by_peer.remove(&peer);
                    self.events.push_back(LinkEvent::Down {
                        peer,
                        reason: DownReason::Closed,
                    });
                }
            }
            _ => Self::connect_failed(&mut self.events, &c, ConnectError::Unreachable),
        }
    }

    /// Close every connection whose handshake is overdue.
    pub fn expire(&mut self, now: Instant, stats: &mut Stats) {
        while let Some(&(t, conn)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            stats.handshake_timeouts += 1;
            self.fail(conn, ConnectError::Timeout);
        }
    }

    /// A frame arrived on `conn`.
    pub fn frame(&mut self, stats: &mut Stats, conn: ConnId, bytes: &[u8]) {
        stats.frames_in += 1;
        stats.bytes_in += bytes.len() as u64;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let limit = match c.state {
            State::Established { .. } => self.config.max_frame,
            _ => MAX_HANDSHAKE_FRAME,
        };
        let frame = match wire::decode_frame(bytes, limit) {
            Ok(f) => f,
            Err(error) => return self.decode_error(stats, conn, error),
        };
        match (&mut c.state, frame.kind) {
            (State::Established { opener, peer, .. }, FrameKind::Refuse) => {
                let (peer, reason) = (*peer, opener.open(frame.payload));
                match reason.and_then(|r| wire::decode::<RefuseReason>(&r).ok()) {
                    Some(reason) => {
                        stats.refused_by_peer += 1;
                        self.events
                            .push_back(LinkEvent::RefusedByPeer { peer, reason });
                        self.fail(conn, ConnectError::DuplicateId);
                    }
                    None => {
                        let error = WireError::Payload("a refusal that does not open".into());
                        self.decode_error(stats, conn, error);
                    }
                }
            }
            (State::Established { opener, peer, .. }, FrameKind::Data) => {
                match opener.open(frame.payload) {
                    Some(body) => {
                        let from = *peer;
                        self.events.push_back(LinkEvent::Message { from, body })
                    }
                    None => {
                        let claimed = Some(*peer);
                        self.auth_failed(stats, conn, claimed);
                    }
                }
            }
            (State::Handshaking { peer: None, .. }, FrameKind::Hello) => {
                self.on_hello(stats, conn, frame.payload)
            }
            (State::Handshaking { peer: Some(_), .. }, FrameKind::Proof) => {
                self.on_proof(stats, conn, frame.payload)
            }
            (_, kind) => {
                let error = WireError::Payload(format!(
                    "unexpected {kind:?} frame at this point of the link"
                ));
                self.decode_error(stats, conn, error)
            }
        }
    }

    fn on_hello(&mut self, stats: &mut Stats, conn: ConnId, payload: &[u8]) {
        let hello: Hello = match wire::decode(payload) {
            Ok(h) => h,
            Err(error) => return self.decode_error(stats, conn, error),
        };
        let c = self.conns.get_mut(&conn).expect("caller checked");
        let expected = c.target.as_ref().and_then(|(_, e)| *e);
        if hello.version != LINK_VERSION
            || hello.node == self.id
            || expected.is_some_and(|e| e != hello.node)
        {
            return self.fail(conn, ConnectError::WrongPeer);
        }
        if c.verified.is_some_and(|v| v != hello.node) {
            return self.auth_failed(stats, conn, Some(hello.node));
        }
        let State::Handshaking { ours, pake, peer } = &mut c.state else {
            unreachable!("caller checked")
        };
        let transcript = match c.role {
            Role::Initiator => Transcript {
                initiator_hello: ours,
                responder_hello: payload,
            },
            Role::Responder => Transcript {
                initiator_hello: payload,
                responder_hello: ours,
            },
        };
        let pake = pake
            .take()
            .expect("a handshake holds its exchange until the hello");
        let keys = match pake.finish(&hello.pake.0, &transcript) {
            Ok(keys) => keys,
            Err(e) => {
                let error = WireError::Payload(format!("hello: {e:?}"));
                return self.decode_error(stats, conn, error);
            }
        };
        let proof = keys.proof();
        *peer = Some((hello, Box::new(keys)));
        self.transmits.push_back(Transmit::Send {
            conn,
            frame: wire::encode_frame(FrameKind::Proof, &proof),
        });
    }

    fn on_proof(&mut self, stats: &mut Stats, conn: ConnId, proof: &[u8]) {
        let c = self.conns.get_mut(&conn).expect("caller checked");
        let State::Handshaking {
            peer: Some((hello, keys)),
            ..
        } = &c.state
        else {
            unreachable!("caller checked")
        };
        if proof.len() != PROOF_LEN || !keys.verify(proof) {
            let claimed = Some(hello.node);
            return self.auth_failed(stats, conn, claimed);
        }
        let (sealer, opener) = keys.session();
        let (peer, addr) = (hello.node, hello.addr.clone());
        self.deadlines.remove(&(c.deadline, conn));
        c.state = State::Established {
            peer,
            addr: addr.clone(),
            sealer,
            opener,
        };
        self.establish(stats, conn, peer, addr);
    }

    /// Keep one link per peer. When two connections to the same peer authenticate (both
    /// ends dialled at once), both ends must keep the same one without talking about it:
    /// between connections dialled by different ends, the one dialled by the lower id
    /// wins; between two dialled by the same end, the newer wins (the older is likely
    /// a dead connection not yet noticed).
    ///
    /// Both connections of one node carry the address it listens on. A second connection
    /// for a linked id from *another* address is a second node with the same name: the
    /// live link is kept and the newcomer refused, told why, and counted (letting the
    /// rule above pick would drop the live link for it, and the two would take turns).
    fn establish(&mut self, stats: &mut Stats, conn: ConnId, peer: NodeId, addr: Addr) {
        let Some(&old) = self.by_peer.get(&peer) else {
            self.by_peer.insert(peer, conn);
            self.events.push_back(LinkEvent::Up { peer, addr });
            return;
        };
        if let State::Established { addr: live, .. } = &self.conns[&old].state
            && *live != addr
        {
            let live_addr = live.clone();
            return self.refuse_duplicate(stats, conn, peer, addr, live_addr);
        }
        let (new_role, old_role) = (self.conns[&conn].role, self.conns[&old].role);
        let new_wins = if new_role == old_role {
            self.conns[&conn].opened > self.conns[&old].opened
        } else {
            (new_role == Role::Initiator) == (self.id < peer)
        };
        let loser = if new_wins {
            self.by_peer.insert(peer, conn);
            old
        } else {
            conn
        };
        self.drop_conn(loser);
    }

    fn refuse_duplicate(
        &mut self,
        stats: &mut Stats,
        conn: ConnId,
        peer: NodeId,
        addr: Addr,
        live_addr: Addr,
    ) {
        stats.duplicate_ids += 1;
        if let Some(Conn {
            state: State::Established { sealer, .. },
            ..
        }) = self.conns.get_mut(&conn)
            && let Some(sealed) = sealer.seal(&[&wire::encode(&RefuseReason::DuplicateId)])
        {
            let frame = wire::encode_frame(FrameKind::Refuse, &sealed);
            self.transmits.push_back(Transmit::Send { conn, frame });
        }
        self.events.push_back(LinkEvent::DuplicateRefused {
            conn,
            peer,
            addr,
            live_addr,
        });
        self.drop_conn(conn);
    }

    fn decode_error(&mut self, stats: &mut Stats, conn: ConnId, error: WireError) {
        stats.decode_errors += 1;
        self.events
            .push_back(LinkEvent::DecodeError { conn, error });
        self.fail(conn, ConnectError::Malformed);
    }

    /// Close a connection for cause, telling the protocol what it lost.
    fn fail(&mut self, conn: ConnId, error: ConnectError) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if let State::Established { peer, .. } = c.state {
            if self.by_peer.get(&peer) == Some(&conn) {
                self.by_peer.remove(&peer);
                let reason =
                    if error == ConnectError::AuthFailed || error == ConnectError::Malformed {
                        DownReason::Protocol
                    } else {
                        DownReason::Closed
                    };
                self.events.push_back(LinkEvent::Down { peer, reason });
            }
        } else {
            Self::connect_failed(&mut self.events, c, error);
        }
        self.drop_conn(conn);
    }

    fn connect_failed(events: &mut VecDeque<LinkEvent>, c: &Conn, error: ConnectError) {
        if let Some((addr, expected)) = &c.target {
            events.push_back(LinkEvent::ConnectFailed {
                addr: addr.clone(),
                expected: *expected,
                error,
            });
        }
    }

    fn remove_conn(&mut self, conn: ConnId) -> Option<Conn> {
        let c = self.conns.remove(&conn)?;
        self.deadlines.remove(&(c.deadline, conn));
        Some(c)
    }

    fn drop_conn(&mut self, conn: ConnId) {
        if self.remove_conn(conn).is_some() {
            self.transmits.push_back(Transmit::Close { conn });
        }
    }

    /// Replace the cookie: every connection made under the old one is closed, and every
    /// link reported down, so nothing authenticated by the old secret survives.
    pub fn rekey(&mut self, cookie: Cookie) {
        self.cookie = cookie;
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            let c = self.conns.get(&conn).expect("listed above");
            match c.state {
                State::Established { peer, .. } if self.by_peer.get(&peer) == Some(&conn) => {
                    self.by_peer.remove(&peer);
                    self.events.push_back(LinkEvent::Down {
                        peer,
                        reason: DownReason::Rekeyed,
                    });
                }
                State::Established { .. } => {}
                _ => Self::connect_failed(&mut self.events, c, ConnectError::Unreachable),
            }
            self.drop_conn(conn);
        }
    }
}

/// Why a message could not be queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    NotLinked(NodeId),
    TooLarge { len: usize, max: usize },
}
