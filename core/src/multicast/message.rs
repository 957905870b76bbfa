//! The one multicast message: a payload, who sent it, and which of the origin's trees
//! this copy travels. No tree is shipped: each node derives the trees from its own graph
//! and `view` says whether the sender's graph was the same.

use serde::{Deserialize, Serialize};

use crate::gm::Bounded;
use crate::id::NodeId;
use crate::time::Duration;
use crate::wire::{self, WireError};

/// Most redundant trees (a copy's trees are a bitmask of this many bits).
pub const MAX_TREES: u8 = 8;
/// Largest payload any node accepts on the wire.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Longest topic, in bytes.
pub const MAX_TOPIC: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub origin: NodeId,
    /// Unique per origin across restarts: the origin's incarnation in the high 32 bits.
    pub seq: u64,
    /// The trees (bit `i` = tree `i`) this copy travels; ignored when `flood`. None
    /// (zero, and not `flood`): an offer to a new neighbour (see `repair`), which floods
    /// it on only if it is new there.
    pub trees: u8,
    /// Forwarded to every neighbour instead of along trees (graphs disagreed).
    pub flood: bool,
    /// The sender's table fingerprint (`GlobalMembership::view`).
    pub view: u64,
    /// How long the message waited at nodes that sent it again after losing a link
    /// (see `repair`); zero on its first way out. A lower bound of its age (link latency
    /// is not counted), by which a node that started since then knows the message
    /// predates it.
    pub age: Duration,
    pub topic: String,
    pub payload: Bounded<u8, MAX_PAYLOAD>,
}

impl Packet {
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Packet, WireError> {
        let p: Packet = wire::decode(bytes)?;
        if p.topic.len() > MAX_TOPIC {
            return Err(WireError::Payload(format!(
                "topic of {} bytes, more than {MAX_TOPIC}",
                p.topic.len()
            )));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_topic_bound() {
        let mut p = Packet {
            origin: NodeId(3),
            seq: 1 << 32 | 7,
            trees: 0b11,
            flood: false,
            view: 99,
            age: Duration::from_millis(5),
            topic: "kv".into(),
            payload: Bounded(vec![1, 2, 3]),
        };
        assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
        p.topic = "t".repeat(MAX_TOPIC + 1);
        assert!(Packet::decode(&p.encode()).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Packet::decode(&bytes);
        }
    }
}
