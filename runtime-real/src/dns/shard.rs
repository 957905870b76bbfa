//! One DNS shard: a task that owns a [`DnsServer`], a client UDP socket (one of several
//! on the same address, with SO_REUSEPORT, so the kernel spreads clients over the
//! shards and cores), its own upstream sockets, and its share of the TCP clients.
//!
//! The loop is the sans-IO one: feed the server one input (a datagram, a TCP message,
//! a deadline), drain `poll_transmit` and `poll_event`, sleep until `poll_timeout`. To
//! keep up under load it takes every datagram already waiting (up to a batch) before
//! draining.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hawser_core::time::Instant as CoreInstant;
use hawser_dataplane::dns::{Client, DnsEvent, DnsServer, Transmit, Transport, VipNames};
use prometheus_client::metrics::histogram::Histogram;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use super::follower::SharedZone;
use super::metrics::{DnsMetrics, SYNC, Synced};
use super::service::udp_socket;
use super::tcp;

/// What reaches a shard from its TCP tasks.
pub enum Input {
    TcpOpened {
        conn: u64,
        replies: mpsc::Sender<Vec<u8>>,
    },
    TcpQuery {
        conn: u64,
        bytes: Vec<u8>,
    },
    TcpClosed {
        conn: u64,
    },
    UpstreamReply {
        upstream: SocketAddr,
        bytes: Vec<u8>,
    },
    /// An upstream connection ended: `failed` if it broke (its queries failed), and
    /// what was queued on it but not sent.
    UpstreamClosed {
        upstream: SocketAddr,
        generation: u64,
        failed: bool,
        unsent: Vec<Vec<u8>>,
    },
}

/// Datagrams taken from a socket per wake-up, at most.
const BATCH: usize = 32;

pub struct Shard {
    pub index: usize,
    pub server: DnsServer,
    pub zone: SharedZone,
    pub vips: Arc<dyn VipNames>,
    pub metrics: DnsMetrics,
    /// The client-facing socket (made a tokio one on the shard's own runtime).
    pub udp: Option<std::net::UdpSocket>,
    pub inbox: mpsc::Receiver<Input>,
    pub inbox_tx: mpsc::Sender<Input>,
    pub tcp_idle: Duration,
    pub connect_timeout: Duration,
}

/// A shard's upstream sockets, one per address family in use.
struct UpstreamSockets {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

async fn recv(socket: &Option<UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Handle the datagram `first` brought into `buf`, then every one already waiting on
/// `socket`, up to [`BATCH`].
fn batch(
    first: std::io::Result<(usize, SocketAddr)>,
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
    mut handle: impl FnMut(&[u8], SocketAddr),
) {
    let Some(socket) = socket else { return };
    let mut next = first;
    for taken in 1..=BATCH {
        let Ok((n, from)) = next else { return };
        handle(&buf[..n], from);
        if taken == BATCH {
            // Read no more than are handled: the next one waits for the next wake-up.
            return;
        }
        next = socket.try_recv_from(buf);
    }
}

struct TcpUpstream {
    queries: mpsc::Sender<Vec<u8>>,
    generation: u64,
}

impl Shard {
    /// Serve until `stop` says so.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let udp = match self.udp.take().map(UdpSocket::from_std) {
            Some(Ok(u)) => u,
            None => return,
            Some(Err(e)) => {
                warn!(shard = self.index, error = %e, "cannot use the DNS socket; this shard stops");
                return;
            }
        };
        let origin = Instant::now();
        let now = move || CoreInstant::from_nanos(origin.elapsed().as_nanos() as u64);
        self.server.handle_start(now());
        let sockets = match self.upstream_sockets() {
            Ok(s) => s,
            Err(e) => {
                warn!(shard = self.index, error = %e, "cannot open upstream sockets; this DNS shard stops");
                return;
            }
        };
        let mut clients: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
        let mut upstreams: HashMap<SocketAddr, TcpUpstream> = HashMap::new();
        let mut generation = 0u64;
        let mut rtts: HashMap<(SocketAddr, Transport), Histogram> = HashMap::new();
        let mut synced = Synced::default();
        let mut sync_at = Instant::now() + SYNC;
        // Something happened since the metrics were last synced: an idle shard does not
        // wake up just to find nothing new.
        let mut dirty = false;
        let (mut buf, mut up4, mut up6) = (vec![0u8; 65535], vec![0u8; 65535], vec![0u8; 65535]);
        loop {
            // Drain.
            while let Some(t) = self.server.poll_transmit() {
                match t {
                    Transmit::Client {
                        to: Client::Udp(addr),
                        bytes,
                    } => {
                        let _ = udp.send_to(&bytes, addr).await;
                    }
                    Transmit::Client {
                        to: Client::Tcp(conn),
                        bytes,
                    } => {
                        // A client that does not read its replies loses its connection.
                        if let Some(tx) = clients.get(&conn)
                            && tx.try_send(bytes).is_err()
                        {
                            clients.remove(&conn);
                        }
                    }
                    Transmit::Upstream {
                        to,
                        transport: Transport::Udp,
                        bytes,
                    } => {
                        let socket = if to.is_ipv4() {
                            &sockets.v4
                        } else {
                            &sockets.v6
                        };
                        if let Some(s) = socket {
                            let _ = s.send_to(&bytes, to).await;
                        }
                    }
                    Transmit::Upstream {
                        to,
                        transport: Transport::Tcp,
                        bytes,
                    } => self.send_tcp(&mut upstreams, &mut generation, to, bytes),
                }
            }
            while let Some(e) = self.server.poll_event() {
                match e {
                    DnsEvent::Rtt {
                        upstream,
                        transport,
                        rtt,
                    } => rtts
                        .entry((upstream, transport))
                        .or_insert_with(|| self.metrics.rtt(upstream, transport))
                        .observe(rtt.as_secs_f64()),
                    DnsEvent::UpstreamDown { upstream, failures } => warn!(
                        shard = self.index,
                        %upstream,
                        failures,
                        "DNS upstream out of rotation (failures in a row); probing it"
                    ),
                    DnsEvent::UpstreamUp { upstream, after } => info!(
                        shard = self.index,
                        %upstream,
                        after_ms = after.as_millis(),
                        "DNS upstream answered again; back in rotation"
                    ),
                }
            }
            if dirty && Instant::now() >= sync_at {
                synced.sync(&self.metrics, &self.server, self.index);
                sync_at = Instant::now() + SYNC;
                dirty = false;
            }
            let idle = Instant::now() + Duration::from_secs(3600);
            let wake = self
                .server
                .poll_timeout()
                .map(|t| origin + Duration::from_nanos(t.as_nanos()))
                .unwrap_or(idle)
                .min(if dirty { sync_at } else { idle });
            dirty = true;
            tokio::select! {
                _ = stop.changed() => return,
                r = udp.recv_from(&mut buf) => {
                    let zone = self.zone.read().unwrap_or_else(|e| e.into_inner());
                    let (server, vips) = (&mut self.server, self.vips.as_ref());
                    batch(r, Some(&udp), &mut buf, |bytes, from| {
                        server.handle_query(now(), &zone, vips, Client::Udp(from), bytes)
                    });
                }
                r = recv(&sockets.v4, &mut up4) => {
                    let server = &mut self.server;
                    batch(r, sockets.v4.as_ref(), &mut up4, |bytes, from| {
                        server.handle_reply(now(), from, Transport::Udp, bytes)
                    });
                }
                r = recv(&sockets.v6, &mut up6) => {
                    let server = &mut self.server;
                    batch(r, sockets.v6.as_ref(), &mut up6, |bytes, from| {
                        server.handle_reply(now(), from, Transport::Udp, bytes)
                    });
                }
                Some(input) = self.inbox.recv() => match input {
                    Input::TcpOpened { conn, replies } => {
                        clients.insert(conn, replies);
                    }
                    Input::TcpQuery { conn, bytes } => {
                        let zone = self.zone.read().unwrap_or_else(|e| e.into_inner());
                        self.server.handle_query(now(), &zone, self.vips.as_ref(), Client::Tcp(conn), &bytes);
                    }
                    Input::TcpClosed { conn } => {
                        clients.remove(&conn);
                    }
                    Input::UpstreamReply { upstream, bytes } => {
                        self.server.handle_reply(now(), upstream, Transport::Tcp, &bytes);
                    }
                    Input::UpstreamClosed { upstream, generation: g, failed, unsent } => {
                        if upstreams.get(&upstream).is_some_and(|u| u.generation == g) {
                            upstreams.remove(&upstream);
                        }
                        if failed {
                            self.server.handle_connection_failed(now(), upstream);
                        }
                        for bytes in unsent {
                            self.send_tcp(&mut upstreams, &mut generation, upstream, bytes);
                        }
                    }
                },
                _ = tokio::time::sleep_until(wake) => self.server.handle_timeout(now()),
            }
        }
    }

    fn upstream_sockets(&self) -> std::io::Result<UpstreamSockets> {
        let c = self.server.config();
        let all = || {
            c.upstreams
                .iter()
                .chain(c.forward_zones.iter().flat_map(|f| &f.upstreams))
        };
        let open = |wildcard: &str| {
            udp_socket(wildcard.parse().expect("a valid address"), false)
                .and_then(UdpSocket::from_std)
        };
        Ok(UpstreamSockets {
            v4: all()
                .any(SocketAddr::is_ipv4)
                .then(|| open("0.0.0.0:0"))
                .transpose()?,
            v6: all()
                .any(SocketAddr::is_ipv6)
                .then(|| open("[::]:0"))
                .transpose()?,
        })
    }

    /// Queue a query on the TCP connection to `to`, opening one if there is none (or
    /// the last one is gone).
    fn send_tcp(
        &self,
        upstreams: &mut HashMap<SocketAddr, TcpUpstream>,
        generation: &mut u64,
        to: SocketAddr,
        bytes: Vec<u8>,
    ) {
        let bytes = match upstreams.get(&to) {
            Some(u) => match u.queries.try_send(bytes) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            },
            None => bytes,
        };
        *generation += 1;
        let (queries, rx) = mpsc::channel(tcp::REPLY_QUEUE);
        let _ = queries.try_send(bytes);
        upstreams.insert(
            to,
            TcpUpstream {
                queries,
                generation: *generation,
            },
        );
        tokio::spawn(tcp::upstream(
            to,
            *generation,
            rx,
            self.inbox_tx.clone(),
            self.connect_timeout,
            self.tcp_idle,
        ));
    }
}
