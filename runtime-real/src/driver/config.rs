//! The driver's limits.

use std::sync::Arc;
use std::time::Duration;

use hawser_core::LinkConfig;

use crate::tls::Tls;

/// Limits of the driver. Defaults suit a cluster of hundreds of nodes on a LAN.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Largest frame accepted or sent (core's limit; the reader enforces it too).
    pub max_frame: usize,
    /// A dial that has not connected by then has failed.
    pub connect_timeout: Duration,
    /// A single write that has not completed by then closes the connection.
    pub write_timeout: Duration,
    /// Bytes queued for one connection beyond which the peer is judged too slow: the
    /// connection is closed and `queue_drops` counted.
    pub send_queue_bytes: usize,
    /// Transport connections open at once (inbound); more are closed on arrival.
    pub max_connections: usize,
    /// Inbound connections from one IP address that may be in their handshake at once;
    /// more are closed on arrival, so one source cannot hold every slot unauthenticated.
    pub max_pending_per_source: usize,
    /// KV watchers (`/v1/kv/watch` streams) at once; more are refused. Read by hawser's
    /// stack layer ([`super::StackHost`]) only; kept here because the agent's one
    /// config section sets it with the rest.
    pub max_watchers: usize,
    /// Bytes of changes queued for one watcher; a watcher that lets more pile up (a
    /// stalled client) is cut off with `lagged`. Stack layer only, like `max_watchers`.
    pub watch_queue_bytes: usize,
    /// Mutual TLS on every peer connection, if set (see [`crate::tls`]).
    pub tls: Option<Arc<Tls>>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_frame: LinkConfig::default().max_frame,
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
            send_queue_bytes: 16 << 20,
            max_connections: 1024,
            max_pending_per_source: 32,
            max_watchers: 64,
            watch_queue_bytes: 8 << 20,
            tls: None,
        }
    }
}
