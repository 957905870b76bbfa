//! Starting the DNS service: the sockets (refused at start, by address, if they cannot
//! be had), one shard per core, the TCP acceptor.
//!
//! Each shard runs on a thread of its own with a single-threaded tokio runtime: a shard
//! is one loop over its sockets, and a work-stealing scheduler only moved it between
//! cores (measured: about a tenth more queries per second this way, on two cores).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hawser_dataplane::dns::{DnsServer, VipNames};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::error;

use super::follower::SharedZone;
use super::metrics::DnsMetrics;
use super::settings::DnsSettings;
use super::shard::Shard;
use super::tcp;

/// A running DNS service; dropping it stops every task and shard.
pub struct DnsService {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Drop for DnsService {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.stop.send(true);
    }
}

/// A UDP socket on `addr` with a receive buffer that absorbs bursts; with `shared`,
/// other sockets may bind the same address (SO_REUSEPORT) and the kernel spreads the
/// clients over them.
pub(super) fn udp_socket(addr: SocketAddr, shared: bool) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(shared)?;
    // The kernel caps it at net.core.rmem_max; whatever it grants is fine.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// The UDP sockets and the TCP listener, all on one address. Port 0 picks a port free
/// for both.
async fn bind(
    listen: SocketAddr,
    shards: usize,
) -> Result<(Vec<std::net::UdpSocket>, TcpListener), String> {
    let why = |e: std::io::Error| format!("cannot serve DNS on {listen}: {e}");
    for _ in 0..16 {
        let first = udp_socket(listen, true).map_err(why)?;
        let addr = first.local_addr().map_err(why)?;
        let tcp = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) if listen.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(why(e)),
        };
        let mut udp = vec![first];
        for _ in 1..shards {
            udp.push(udp_socket(addr, true).map_err(why)?);
        }
        return Ok((udp, tcp));
    }
    Err(format!(
        "cannot serve DNS on {listen}: no port free for both UDP and TCP"
    ))
}

impl DnsService {
    pub async fn start(
        settings: &DnsSettings,
        listen: SocketAddr,
        zone: SharedZone,
        vips: Arc<dyn VipNames>,
        metrics: DnsMetrics,
    ) -> Result<DnsService, String> {
        let (udp, listener) = bind(listen, settings.shards).await?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop, stopped) = watch::channel(false);
        let mut inboxes = Vec::new();
        for (index, udp) in udp.into_iter().enumerate() {
            let seed = getrandom::u64().map_err(|e| format!("cannot read OS randomness: {e}"))?;
            let server =
                DnsServer::new(settings.server.clone(), seed).map_err(|e| e.to_string())?;
            let (inbox_tx, inbox) = mpsc::channel(1024);
            inboxes.push(inbox_tx.clone());
            let shard = Shard {
                index,
                server,
                zone: zone.clone(),
                vips: vips.clone(),
                metrics: metrics.clone(),
                udp: Some(udp),
                inbox,
                inbox_tx,
                tcp_idle: settings.tcp_idle,
                connect_timeout: Duration::from_nanos(
                    settings.server.attempt_timeout_max.as_nanos(),
                ),
            };
            let stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("hawser-dns-{index}"))
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(shard.run(stopped)),
                        Err(e) => error!(shard = index, error = %e, "cannot start a DNS shard"),
                    }
                })
                .map_err(|e| format!("cannot start a DNS shard thread: {e}"))?;
        }
        let linger = Duration::from_nanos(settings.server.query_timeout.as_nanos());
        let accept = tokio::spawn(tcp::accept(
            listener,
            inboxes,
            settings.max_tcp_connections,
            settings.tcp_idle,
            linger,
            metrics,
        ));
        Ok(DnsService { addr, accept, stop })
    }
}
