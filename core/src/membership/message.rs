//! The membership protocol's messages: one enum, bincode on the wire.
//!
//! Every message comes from an authenticated peer, but an authenticated peer can still be
//! buggy or hostile, so [`Message::decode`] bounds everything a message can carry — the
//! number of peers in a sample is checked *while* decoding, before anything is allocated
//! for them, and every address is held to [`MAX_ADDR_LEN`](crate::id::MAX_ADDR_LEN) by `Addr`'s own decoder — and rejects the rest with a
//! [`WireError`], which makes the node drop the link and count it.

use serde::{Deserialize, Deserializer, Serialize};

use crate::id::{Addr, NodeId};
use crate::wire::{self, Bounded, WireError};

/// Most peers a shuffle sample (or its reply) may carry. A protocol constant, not a
/// config value: peers configured differently must still understand each other.
pub const MAX_SAMPLE: usize = 64;

/// A peer as views exchange it: who, and where to dial it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddr {
    pub id: NodeId,
    pub addr: Addr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A node joining the overlay, to a contact: "make me your neighbour and introduce me".
    Join,
    /// A join's random walk; `joiner` ends in the active view of the node where `ttl`
    /// runs out, and in passive views along the way.
    ForwardJoin {
        joiner: PeerAddr,
        ttl: u8,
    },
    /// "Become my neighbour." `high` when the sender has no neighbour at all (or a
    /// forward-join ended here): the receiver must accept, dropping someone if full.
    Neighbor {
        high: bool,
    },
    /// The answer to a `Neighbor` or a `Join`. `accepted` means the sender has already
    /// put the receiver in its active view; the receiver does the same.
    NeighborReply {
        accepted: bool,
    },
    /// "You are no longer in my active view"; the sender closes the link after it.
    Disconnect,
    /// A shuffle's random walk: `origin`'s sample of its views, to be swapped for a
    /// sample of the passive view of the node where `ttl` runs out.
    Shuffle {
        origin: PeerAddr,
        ttl: u8,
        sample: Sample,
    },
    /// The swap: a sample of the replying node's passive view, sent straight to the
    /// shuffle's origin over a temporary link.
    ShuffleReply {
        sample: Sample,
    },
    /// Liveness probe; the peer answers `Pong` with the same `seq`.
    Ping {
        seq: u64,
    },
    Pong {
        seq: u64,
    },
    /// "I cannot hear `target`; try it yourself and tell me" (SWIM's indirect probe).
    /// `within_ms` is how long the asker will wait.
    ProbeRequest {
        target: PeerAddr,
        seq: u64,
        within_ms: u32,
    },
    /// The outcome of a `ProbeRequest`: `alive` when `target` answered in time. A
    /// negative answer still tells the asker that the helper itself is alive (Lifeguard's
    /// nack), which feeds the asker's local health.
    ProbeReply {
        target: NodeId,
        seq: u64,
        alive: bool,
    },
    /// "I am leaving the cluster" (the agent is stopping): the receiver drops the sender
    /// from both views at once, so it repairs now and does not dial it back, instead of
    /// detecting a failure. (Last, so the other variants keep their encoding.)
    Leave,
}

/// Message kinds, for per-kind counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Join,
    ForwardJoin,
    Neighbor,
    NeighborReply,
    Disconnect,
    Shuffle,
    ShuffleReply,
    Ping,
    Pong,
    ProbeRequest,
    ProbeReply,
    Leave,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Join,
        Kind::ForwardJoin,
        Kind::Neighbor,
        Kind::NeighborReply,
        Kind::Disconnect,
        Kind::Shuffle,
        Kind::ShuffleReply,
        Kind::Ping,
        Kind::Pong,
        Kind::ProbeRequest,
        Kind::ProbeReply,
        Kind::Leave,
    ];
}

impl Message {
    pub fn kind(&self) -> Kind {
        match self {
            Message::Join => Kind::Join,
            Message::ForwardJoin { .. } => Kind::ForwardJoin,
            Message::Neighbor { .. } => Kind::Neighbor,
            Message::NeighborReply { .. } => Kind::NeighborReply,
            Message::Disconnect => Kind::Disconnect,
            Message::Shuffle { .. } => Kind::Shuffle,
            Message::ShuffleReply { .. } => Kind::ShuffleReply,
            Message::Ping { .. } => Kind::Ping,
            Message::Pong { .. } => Kind::Pong,
            Message::ProbeRequest { .. } => Kind::ProbeRequest,
            Message::ProbeReply { .. } => Kind::ProbeReply,
            Message::Leave => Kind::Leave,
        }
    }

    /// The message's kind as logs name it (`membership.ping`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self.kind() {
            Kind::Join => "membership.join",
            Kind::ForwardJoin => "membership.forward_join",
            Kind::Neighbor => "membership.neighbor",
            Kind::NeighborReply => "membership.neighbor_reply",
            Kind::Disconnect => "membership.disconnect",
            Kind::Shuffle => "membership.shuffle",
            Kind::ShuffleReply => "membership.shuffle_reply",
            Kind::Ping => "membership.ping",
            Kind::Pong => "membership.pong",
            Kind::ProbeRequest => "membership.probe_request",
            Kind::ProbeReply => "membership.probe_reply",
            Kind::Leave => "membership.leave",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decode untrusted bytes; see the module docs for what is bounded.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        wire::decode(bytes)
    }
}

/// A shuffle sample: at most [`MAX_SAMPLE`] peers, enforced by the decoder itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sample(pub Vec<PeerAddr>);

impl<'de> Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sample, D::Error> {
        Bounded::<PeerAddr, MAX_SAMPLE>::deserialize(d).map(|b| Sample(b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(i: u64) -> PeerAddr {
        PeerAddr {
            id: NodeId(i),
            addr: Addr::new(format!("n{i}")).unwrap(),
        }
    }

    #[test]
    fn round_trip() {
        let msgs = [
            Message::Join,
            Message::ForwardJoin {
                joiner: peer(1),
                ttl: 3,
            },
            Message::Shuffle {
                origin: peer(2),
                ttl: 4,
                sample: Sample((0..MAX_SAMPLE as u64).map(peer).collect()),
            },
            Message::ProbeReply {
                target: NodeId(5),
                seq: 9,
                alive: true,
            },
        ];
        for m in msgs {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn oversize_sample_is_rejected() {
        let m = Message::ShuffleReply {
            sample: Sample((0..=MAX_SAMPLE as u64).map(peer).collect()),
        };
        assert!(matches!(
            Message::decode(&m.encode()),
            Err(WireError::Payload(_))
        ));
    }

    #[test]
    fn forged_sample_length_is_rejected_without_allocating() {
        // ShuffleReply's variant index, then a varint length of u64::MAX.
        let mut bytes = wire::encode(&Message::ShuffleReply {
            sample: Sample::default(),
        });
        bytes.pop();
        bytes.extend([0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(Message::decode(&bytes).is_err());
    }

    #[test]
    fn overlong_address_is_rejected() {
        #[derive(Serialize)]
        enum Forged {
            _Join,
            ForwardJoin { joiner: (u64, String), ttl: u8 },
        }
        let bytes = wire::encode(&Forged::ForwardJoin {
            joiner: (1, "x".repeat(crate::id::MAX_ADDR_LEN + 1)),
            ttl: 1,
        });
        assert!(Message::decode(&bytes).is_err());
        let bytes = wire::encode(&Forged::ForwardJoin {
            joiner: (1, "n1".into()),
            ttl: 1,
        });
        assert!(Message::decode(&bytes).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(&bytes);
        }
    }
}
