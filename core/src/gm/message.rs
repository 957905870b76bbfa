//! Global membership's messages:
//! - `Entries`: adjacency entries to apply (a node's own new version, pushed to its
//!   neighbours; the answer to a `Want`; the answer to a digest);
//! - `Have`: versions the sender holds that may be news to the receiver (announced
//!   lazily: the receiver asks for what it lacks, from one announcer only);
//! - `Want`: the members whose entries the sender asks for;
//! - `Digest`: the versions the sender holds for ids in `[from, to]`, so the receiver
//!   answers with exactly the entries the sender lacks. A table is described in chunks
//!   of consecutive id ranges, so a digest of any size fits bounded messages.
//!
//! Every collection is bounded while decoding and every address is length-checked.

use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::id::MAX_ADDR_LEN;
use crate::id::{Addr, Name, NodeId};
use crate::membership::MAX_ACTIVE_VIEW;
use crate::wire::Bounded;
use crate::wire::{self, WireError};

/// Most entries in one `Entries` message.
pub const MAX_ENTRIES: usize = 512;
/// Most versions in one `Digest` chunk, `Have` or `Want`.
pub const MAX_DIGEST: usize = 4_096;

/// Which of a member's adjacency lists is newer: a restart bumps `incarnation` (it is
/// persisted), every change bumps `counter`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    pub incarnation: u64,
    pub counter: u64,
}

/// One member as published by itself: its name, where it listens, its active view, and
/// which of those neighbours its failure detector suspects right now (their other
/// neighbours check them at once; see `Membership::check_now`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: NodeId,
    pub name: Name,
    pub addr: Addr,
    pub version: Version,
    pub adjacency: Bounded<NodeId, MAX_ACTIVE_VIEW>,
    pub suspects: Bounded<NodeId, MAX_ACTIVE_VIEW>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GmMessage {
    Entries(Bounded<Entry, MAX_ENTRIES>),
    Digest {
        from: NodeId,
        to: NodeId,
        versions: Bounded<(NodeId, Version), MAX_DIGEST>,
    },
    Have(Bounded<(NodeId, Version), MAX_DIGEST>),
    Want(Bounded<NodeId, MAX_DIGEST>),
}

impl GmMessage {
    /// The message's kind as logs name it (`gm.have`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            GmMessage::Entries(_) => "gm.entries",
            GmMessage::Digest { .. } => "gm.digest",
            GmMessage::Have(_) => "gm.have",
            GmMessage::Want(_) => "gm.want",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decode untrusted bytes: bounded collections, bounded names and addresses.
    pub fn decode(bytes: &[u8]) -> Result<GmMessage, WireError> {
        wire::decode(bytes)
    }
}

/// A test entry: node `i`, named and addressed `n{i}`, incarnation 1, with these
/// neighbours.
#[cfg(test)]
pub(super) fn test_entry(i: u64, counter: u64, adjacency: &[u64]) -> Entry {
    Entry {
        id: NodeId(i),
        name: Name::new(format!("n{i}")).expect("short"),
        addr: Addr::new(format!("n{i}")).expect("short"),
        version: Version {
            incarnation: 1,
            counter,
        },
        adjacency: Bounded(adjacency.iter().map(|&n| NodeId(n)).collect()),
        suspects: Bounded(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Node `i`'s entry (version `i`) with `adj` neighbours.
    fn entry(i: u64, adj: usize) -> Entry {
        test_entry(i, i, &(0..adj as u64).collect::<Vec<_>>())
    }

    #[test]
    fn round_trip_and_bounds() {
        let m = GmMessage::Entries(Bounded(vec![entry(1, 3), entry(2, MAX_ACTIVE_VIEW)]));
        assert_eq!(GmMessage::decode(&m.encode()).unwrap(), m);
        let too_wide = GmMessage::Entries(Bounded(vec![entry(1, MAX_ACTIVE_VIEW + 1)]));
        assert!(GmMessage::decode(&too_wide.encode()).is_err());
        let too_many = GmMessage::Entries(Bounded(
            (0..=MAX_ENTRIES as u64).map(|i| entry(i, 0)).collect(),
        ));
        assert!(GmMessage::decode(&too_many.encode()).is_err());
        let have = GmMessage::Have(Bounded(vec![(NodeId(3), entry(3, 0).version)]));
        assert_eq!(GmMessage::decode(&have.encode()).unwrap(), have);
        let want = GmMessage::Want(Bounded(vec![NodeId(3), NodeId(4)]));
        assert_eq!(GmMessage::decode(&want.encode()).unwrap(), want);
        let too_many = GmMessage::Want(Bounded(vec![NodeId(1); MAX_DIGEST + 1]));
        assert!(GmMessage::decode(&too_many.encode()).is_err());
    }

    #[test]
    fn overlong_address_is_refused() {
        /// An entry's fields in wire order: id, name, address, version, adjacency,
        /// suspects.
        type Fields = (u64, &'static str, String, (u64, u64), Vec<u64>, Vec<u64>);
        #[derive(Serialize)]
        enum Forged {
            Entries(Vec<Fields>),
        }
        let forged = |len| {
            wire::encode(&Forged::Entries(vec![(
                1,
                "n1",
                "x".repeat(len),
                (1, 1),
                vec![],
                vec![],
            )]))
        };
        assert!(GmMessage::decode(&forged(MAX_ADDR_LEN)).is_ok());
        assert!(GmMessage::decode(&forged(MAX_ADDR_LEN + 1)).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = GmMessage::decode(&bytes);
        }
    }
}
