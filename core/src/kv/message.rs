//! What KV replicas say to each other.

use serde::{Deserialize, Serialize};

use super::store::BUCKETS;
use crate::crdt::Map;
use crate::wire::{self, WireError};

/// Most keys (or entries) one message carries; bigger exchanges are split.
pub const MAX_BATCH: usize = 4096;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KvMessage {
    /// A change made at its origin, spread by the stack: merge it.
    Delta { key: String, delta: Map },
    /// Anti-entropy, step 1: my per-bucket digest.
    Digest { buckets: Vec<u64> },
    /// Step 2: the buckets where we differ, and every key (with hash) I hold in them.
    Summaries {
        buckets: Vec<u16>,
        keys: Vec<(String, u64)>,
    },
    /// Step 3 (and the answer to `Want`): full values, to merge.
    Entries { entries: Vec<(String, Map)> },
    /// Step 3: send me your values of these keys.
    Want { keys: Vec<String> },
    /// Step 3, for a value too large for one frame: `bytes` of the encoded value, from
    /// `offset`, of `total` bytes in all. A key's pieces go in order, one after another;
    /// the receiver merges the value once the last one is in.
    Piece {
        key: String,
        total: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
}

impl KvMessage {
    /// The message's kind as logs name it (`kv.delta`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            KvMessage::Delta { .. } => "kv.delta",
            KvMessage::Digest { .. } => "kv.digest",
            KvMessage::Summaries { .. } => "kv.summaries",
            KvMessage::Entries { .. } => "kv.entries",
            KvMessage::Want { .. } => "kv.want",
            KvMessage::Piece { .. } => "kv.piece",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        wire::encode(self)
    }

    /// Decode and bound a message from a peer.
    pub fn decode(bytes: &[u8], max_key: usize) -> Result<KvMessage, WireError> {
        let msg: KvMessage = wire::decode(bytes)?;
        let bad = |what: &str| Err(WireError::Payload(format!("kv: {what}")));
        let key_ok = |k: &String| !k.is_empty() && k.len() <= max_key;
        match &msg {
            KvMessage::Delta { key, .. } if !key_ok(key) => bad("bad key"),
            KvMessage::Digest { buckets } if buckets.len() != BUCKETS => {
                bad("digest of the wrong size")
            }
            KvMessage::Summaries { buckets, keys } => {
                if buckets.len() > BUCKETS || buckets.iter().any(|b| *b as usize >= BUCKETS) {
                    bad("bucket out of range")
                } else if keys.len() > MAX_BATCH || !keys.iter().all(|(k, _)| key_ok(k)) {
                    bad("bad summaries")
                } else {
                    Ok(msg)
                }
            }
            KvMessage::Entries { entries }
                if entries.len() > MAX_BATCH || !entries.iter().all(|(k, _)| key_ok(k)) =>
            {
                bad("bad entries")
            }
            KvMessage::Want { keys } if keys.len() > MAX_BATCH || !keys.iter().all(key_ok) => {
                bad("bad want")
            }
            KvMessage::Piece {
                key,
                total,
                offset,
                bytes,
            } if !key_ok(key)
                || bytes.is_empty()
                || offset
                    .checked_add(bytes.len() as u64)
                    .is_none_or(|end| end > *total) =>
            {
                bad("bad piece")
            }
            _ => Ok(msg),
        }
    }
}
