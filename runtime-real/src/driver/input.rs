//! What the driver's helper tasks (accept, dials, readers, writers, commits) hand the
//! node task: one channel of these is the node task's only way in from them.

use std::io;
use std::time::Duration;

use hawser_core::{ConnId, NodeId, PersistSeq};

use super::accept::Inbound;
use crate::store::StoreError;
use crate::tls::{PeerStream, TlsRefusal};

/// Inputs from helper tasks waiting at once before they wait on the node: this is what
/// makes a flood of frames slow its senders down (TCP backpressure) instead of growing.
pub(super) const INPUT_QUEUE: usize = 1024;

/// Inputs from the driver's helper tasks.
pub(super) enum Input<S> {
    Accepted(PeerStream<S>, Inbound),
    /// A dial connected (and passed TLS, naming the peer, if TLS is on).
    Connected(ConnId, PeerStream<S>, Option<NodeId>),
    /// A peer's TLS handshake failed: on a dial (`conn`), or on an accepted connection.
    TlsRefused {
        conn: Option<ConnId>,
        remote: String,
        why: TlsRefusal,
    },
    ConnectFailed(ConnId, io::Error),
    Frame(ConnId, Vec<u8>),
    Closed(ConnId),
    /// A write failed or timed out: the connection is unusable.
    WriteFailed(ConnId, io::Error),
    /// A batch is durable: its last sequence number, how long it took, its size.
    Committed(Result<(PersistSeq, Duration, usize), StoreError>),
}
