//! KV ops from other tasks, answered once durable: the driver keeps the caller's reply
//! channel under the op's ticket and answers when core reports the op `Committed`, which
//! it does only once the batch holding it is synced.

use std::collections::BTreeMap;

use hawser_core::crdt::{Map, MapOp};
use hawser_core::kv::{KvError, Ticket};
use hawser_core::stack::Stack;
use hawser_core::{Instant, Node};
use tokio::sync::oneshot;

use super::{StackHost, StackRequest};
use crate::driver::DriverHandle;

/// The answer to a KV op: the key's value once the op is durable, or why it was refused.
pub(super) type KvReply = oneshot::Sender<Result<Map, KvError>>;

/// Why [`DriverHandle::kv_op`] has no value to give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOpError {
    /// Core refused the op; nothing was applied.
    Refused(KvError),
    /// The driver stopped before the op was known to be durable.
    Stopped,
}

impl std::fmt::Display for KvOpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvOpError::Refused(e) => e.fmt(f),
            KvOpError::Stopped => f.write_str(
                "the agent stopped before the op was known to be durable (it may or may not \
                 have reached the disk)",
            ),
        }
    }
}

/// KV ops awaiting durability: the caller's reply channel, by key and ticket. (A ticket
/// is a dot of the key's own causal context, so two keys' first ops can have the same
/// ticket: only the pair names an op.)
#[derive(Default)]
pub(super) struct Waiting(BTreeMap<(String, Ticket), KvReply>);

impl Waiting {
    /// Apply `op` (`None`: clear the key) on the node; its answer waits here for
    /// [`Waiting::answer`], unless core refused it (answered now).
    pub(super) fn apply(
        &mut self,
        node: &mut Node<Stack>,
        now: Instant,
        key: String,
        op: Option<MapOp>,
        reply: KvReply,
    ) {
        let kv = node.protocol().kv();
        let Some(op) = op.or_else(|| MapOp::clear(kv.get(&key)?.store())) else {
            // A delete of a key with no field: nothing to remove.
            let _ = reply.send(Ok(kv.get(&key).cloned().unwrap_or_default()));
            return;
        };
        match node.command(now, |s, c| s.kv_op(c, &key, &op)) {
            // Answered when core reports it `Committed`: the event cannot have come out
            // yet, since it needs `handle_persisted`.
            Ok(ticket) => {
                self.0.insert((key, ticket), reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Answer the op `ticket` names on `key`, if its caller is still waiting.
    pub(super) fn answer(&mut self, key: String, ticket: Ticket, value: &Map) {
        if let Some(reply) = self.0.remove(&(key, ticket)) {
            let _ = reply.send(Ok(value.clone()));
        }
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

impl DriverHandle<StackHost> {
    /// Apply `op` to `key` on this node and wait until it is durable: the answer is the
    /// key's value right after the op, and comes only once the batch holding the op has
    /// been synced to disk.
    pub async fn kv_op(&self, key: String, op: MapOp) -> Result<Map, KvOpError> {
        self.kv_control(key, Some(op)).await
    }

    /// Delete `key`: remove every field this node holds of it, as one op, and wait until
    /// that is durable (the answer is the value after, `{}`). Observed removal: an update
    /// made concurrently on a node that had not seen this delete survives it (see
    /// `MapOp::clear`). A key with no field is left as it is, and answered at once.
    pub async fn kv_delete(&self, key: String) -> Result<Map, KvOpError> {
        self.kv_control(key, None).await
    }

    /// An op (`None`: the delete) sent to the driver, and its answer awaited.
    async fn kv_control(&self, key: String, op: Option<MapOp>) -> Result<Map, KvOpError> {
        let (reply, rx) = oneshot::channel();
        self.request(StackRequest::KvOp { key, op, reply })
            .await
            .map_err(|_| KvOpError::Stopped)?;
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(KvOpError::Refused(e)),
            Err(_) => Err(KvOpError::Stopped),
        }
    }
}
