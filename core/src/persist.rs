//! What a node asks to be made durable, and what it gets back after a restart.
//!
//! Core never touches a disk. A protocol calls `Ctx::persist(key, value)`; the record is
//! handed to the driver by `Node::poll_persist`; the driver writes it (batching as it
//! likes) and reports `Node::handle_persisted(seq)` once every record up to `seq` is
//! durable. Anything acknowledged to a user must wait for that report. On restart the
//! driver hands the surviving records back as a [`Snapshot`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Position of a record in the node's persistence stream; strictly increasing.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct PersistSeq(pub u64);

/// One durable write: set `key` to `value`, or delete it when `value` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: PersistSeq,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// The durable state a node restarts from: every key's last durable value. Protocols
/// prefix their keys (`b"hb/"`, `b"hv/"`, ...) so they never collide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl Snapshot {
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// Apply a record as a store would.
    pub fn apply(&mut self, record: &Record) {
        match &record.value {
            Some(v) => self.0.insert(record.key.clone(), v.clone()),
            None => self.0.remove(&record.key),
        };
    }
}
