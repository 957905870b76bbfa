//! The accept task: hands the node task new connections, within bounds — at most
//! `max_connections` open at once, and at most `max_pending_per_source` from one IP
//! address still in their handshake — so that neither a flood nor one source can take
//! every slot. Connections over a bound are closed on arrival, counted, and logged at a
//! limited rate (see `lograte`: anyone who can reach the port can cause them).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hawser_core::{LinkConfig, NodeId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::warn;

use super::input::Input;
use crate::lograte::{LineKind, LogLimiter};
use crate::metrics::Metrics;
use crate::tls::{PeerStream, Tls, TlsRefusal};
use crate::transport::Transport;

/// What an accepted connection holds: one of `max_connections` slots until it closes,
/// and one of its source's pending-handshake slots until it has sent its handshake.
pub(super) struct Inbound {
    pub(super) from: SocketAddr,
    pub(super) slot: OwnedSemaphorePermit,
    pub(super) pending: PendingSlot,
    /// The node the peer's TLS certificate names (TLS only).
    pub(super) verified: Option<NodeId>,
}

/// Handshakes in progress per source address, shared by the accept task and readers.
type PendingBySource = Arc<Mutex<BTreeMap<IpAddr, usize>>>;

/// One connection's place among its source's pending handshakes, given back on drop.
pub(super) struct PendingSlot {
    by_source: PendingBySource,
    ip: IpAddr,
}

impl PendingSlot {
    /// A slot for `ip`, unless it already holds `max`.
    fn take(by_source: &PendingBySource, ip: IpAddr, max: usize) -> Option<PendingSlot> {
        let mut map = by_source
            .lock()
            .expect("never poisoned: no panics under the lock");
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PendingSlot {
            by_source: by_source.clone(),
            ip,
        })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut map = self.by_source.lock().expect("never poisoned");
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A TLS handshake, bounded by the time a link handshake may take.
pub(super) async fn tls_handshake<S>(
    handshake: impl Future<Output = Result<(tokio_rustls::TlsStream<S>, NodeId), TlsRefusal>>,
) -> Result<(tokio_rustls::TlsStream<S>, NodeId), TlsRefusal> {
    let limit = Duration::from_nanos(LinkConfig::default().handshake_timeout.as_nanos());
    tokio::time::timeout(limit, handshake)
        .await
        .unwrap_or(Err(TlsRefusal::Timeout))
}

pub(super) async fn accept_loop<T: Transport>(
    listener: T::Listener,
    slots: Arc<Semaphore>,
    max_pending_per_source: usize,
    tls: Option<Arc<Tls>>,
    inputs: mpsc::Sender<Input<T::Stream>>,
    metrics: Arc<Metrics>,
) {
    let origin = tokio::time::Instant::now();
    let mut log = LogLimiter::default();
    let by_source = PendingBySource::default();
    let mut refuse =
        |kind: LineKind, from: SocketAddr, why: &str| match log.admit(kind, origin.elapsed()) {
            Some(suppressed) => warn!(%from, suppressed, "{why}; closing a new connection at once"),
            None => {
                metrics.log_lines_suppressed.inc();
            }
        };
    loop {
        match T::accept(&listener).await {
            Ok((stream, from)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    metrics.connections_refused.inc();
                    refuse(LineKind::ConnectionRefused, from, "too many connections");
                    continue;
                };
                let Some(pending) =
                    PendingSlot::take(&by_source, from.ip(), max_pending_per_source)
                else {
                    metrics.pending_refused.inc();
                    refuse(
                        LineKind::PendingRefused,
                        from,
                        "too many handshakes from one source",
                    );
                    continue;
                };
                let mut inbound = Inbound {
                    from,
                    slot,
                    pending,
                    verified: None,
                };
                let Some(tls) = &tls else {
                    if inputs
                        .send(Input::Accepted(PeerStream::Plain(stream), inbound))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                };
                // The TLS handshake runs in its own task, holding the connection's slots,
                // so a slow one cannot stall the accepting of others.
                let (tls, inputs) = (tls.clone(), inputs.clone());
                tokio::spawn(async move {
                    let input = match tls_handshake(tls.accept(stream)).await {
                        Ok((s, peer)) => {
                            inbound.verified = Some(peer);
                            Input::Accepted(PeerStream::Tls(Box::new(s)), inbound)
                        }
                        Err(why) => Input::TlsRefused {
                            conn: None,
                            remote: from.to_string(),
                            why,
                        },
                    };
                    let _ = inputs.send(input).await;
                });
            }
            Err(e) => {
                // Out of file descriptors, usually: wait rather than spin.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
