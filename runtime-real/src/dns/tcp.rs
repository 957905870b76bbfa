//! DNS over TCP: client connections (two-byte length framing, several queries per
//! connection, answered in any order), and the connections a shard keeps to upstreams
//! for queries that came in over TCP.
//!
//! Bounds: at most `max_tcp_connections` clients (more are closed at once and counted);
//! a client that sends nothing for `tcp_idle`, stalls inside a message, or announces a
//! length a query cannot have is closed and counted; a reply queue that fills (a client
//! that does not read) closes the connection. Nothing is allocated beyond the bytes
//! that actually arrived.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::{debug, warn};

use super::metrics::{DnsMetrics, TcpClose};
use super::shard::Input;

/// Largest query accepted over TCP. Queries are a question and an OPT record: a few
/// hundred bytes; anything near this is not a query.
pub const MAX_QUERY: usize = 4096;
/// Replies queued for one client before it is judged not to read.
pub const REPLY_QUEUE: usize = 64;

/// Why reading one framed message stopped.
enum ReadError {
    Eof,
    Idle,
    Stalled,
    BadLength,
    Io,
}

/// Read one length-prefixed message: the prefix within `idle`, the body within `idle`
/// of it, the body no longer than `max`.
async fn read_message<R: AsyncRead + Unpin>(
    read: &mut R,
    idle: Duration,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut len = [0u8; 2];
    match tokio::time::timeout(idle, read.read_exact(&mut len)).await {
        Err(_) => return Err(ReadError::Idle),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(ReadError::Eof),
        Ok(Err(_)) => return Err(ReadError::Io),
        Ok(Ok(_)) => {}
    }
    let len = u16::from_be_bytes(len) as usize;
    if len < min || len > max {
        return Err(ReadError::BadLength);
    }
    let mut body = vec![0u8; len];
    match tokio::time::timeout(idle, read.read_exact(&mut body)).await {
        Err(_) => Err(ReadError::Stalled),
        Ok(Err(_)) => Err(ReadError::Stalled),
        Ok(Ok(_)) => Ok(body),
    }
}

async fn write_message<W: AsyncWrite + Unpin>(write: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    write.write_all(&framed).await
}

/// Accept clients and hand each to a shard, in turn.
pub async fn accept(
    listener: TcpListener,
    shards: Vec<mpsc::Sender<Input>>,
    max: usize,
    idle: Duration,
    linger: Duration,
    metrics: DnsMetrics,
) {
    let slots = Arc::new(Semaphore::new(max));
    let mut next = 0u64;
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "DNS TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.tcp_refused.inc();
            debug!(%from, "too many DNS TCP clients; closing a new one at once");
            continue;
        };
        let conn = next;
        next += 1;
        let shard = shards[(conn % shards.len() as u64) as usize].clone();
        tokio::spawn(client(
            stream,
            conn,
            shard,
            slot,
            idle,
            linger,
            metrics.clone(),
        ));
    }
}

/// One client connection: queries to the shard, replies back, until it closes, idles or
/// misbehaves. After the client stops sending, replies still being resolved get up to
/// `linger` to go out.
async fn client(
    stream: TcpStream,
    conn: u64,
    shard: mpsc::Sender<Input>,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    linger: Duration,
    metrics: DnsMetrics,
) {
    let (mut read, mut write) = stream.into_split();
    let (replies, mut queue) = mpsc::channel::<Vec<u8>>(REPLY_QUEUE);
    if shard
        .send(Input::TcpOpened { conn, replies })
        .await
        .is_err()
    {
        return;
    }
    metrics.tcp_connections.inc();
    // Queries sent to the shard and not answered yet.
    let waiting = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(Notify::new());
    let (w, a) = (waiting.clone(), answered.clone());
    let writer = tokio::spawn(async move {
        while let Some(bytes) = queue.recv().await {
            if write_message(&mut write, &bytes).await.is_err() {
                return;
            }
            w.fetch_sub(1, Ordering::Relaxed);
            a.notify_one();
        }
    });
    loop {
        match read_message(
            &mut read,
            idle,
            hawser_dataplane::dns::message::HEADER,
            MAX_QUERY,
        )
        .await
        {
            Ok(bytes) => {
                waiting.fetch_add(1, Ordering::Relaxed);
                if shard.send(Input::TcpQuery { conn, bytes }).await.is_err() {
                    break;
                }
            }
            Err(ReadError::Eof | ReadError::Io) => break,
            Err(e) => {
                metrics.tcp_closed(match e {
                    ReadError::Idle => TcpClose::Idle,
                    ReadError::BadLength => TcpClose::BadLength,
                    _ => TcpClose::Stalled,
                });
                writer.abort();
                break;
            }
        }
    }
    // Let answers still in flight reach a client that only stopped sending.
    let _ = tokio::time::timeout(linger, async {
        while waiting.load(Ordering::Relaxed) > 0 && !writer.is_finished() {
            answered.notified().await;
        }
    })
    .await;
    writer.abort();
    let _ = shard.send(Input::TcpClosed { conn }).await;
    metrics.tcp_connections.dec();
}

/// A shard's connection to one upstream: framed queries out, replies to the shard. It
/// ends when the upstream closes or fails (`failed`), or after `idle` with nothing to
/// send (then whatever was queued meanwhile goes back to the shard).
pub async fn upstream(
    addr: SocketAddr,
    generation: u64,
    mut queries: mpsc::Receiver<Vec<u8>>,
    shard: mpsc::Sender<Input>,
    connect_timeout: Duration,
    idle: Duration,
) {
    let closed = |failed: bool, unsent: Vec<Vec<u8>>| Input::UpstreamClosed {
        upstream: addr,
        generation,
        failed,
        unsent,
    };
    let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(%addr, error = %e, "DNS upstream TCP connect failed");
            let _ = shard.send(closed(true, Vec::new())).await;
            return;
        }
        Err(_) => {
            debug!(%addr, "DNS upstream TCP connect timed out");
            let _ = shard.send(closed(true, Vec::new())).await;
            return;
        }
    };
    let (mut read, mut write) = stream.into_split();
    let replies = shard.clone();
    let mut reader = tokio::spawn(async move {
        loop {
            match read_message(&mut read, Duration::from_secs(3600), 2, u16::MAX as usize).await {
                Ok(bytes) => {
                    let reply = Input::UpstreamReply {
                        upstream: addr,
                        bytes,
                    };
                    if replies.send(reply).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    loop {
        tokio::select! {
            q = queries.recv() => match q {
                Some(bytes) => {
                    if write_message(&mut write, &bytes).await.is_err() {
                        reader.abort();
                        let _ = shard.send(closed(true, Vec::new())).await;
                        return;
                    }
                }
                None => {
                    reader.abort();
                    return;
                }
            },
            _ = &mut reader => {
                let _ = shard.send(closed(true, Vec::new())).await;
                return;
            }
            _ = tokio::time::sleep(idle) => {
                queries.close();
                let mut unsent = Vec::new();
                while let Ok(q) = queries.try_recv() {
                    unsent.push(q);
                }
                reader.abort();
                let _ = shard.send(closed(false, unsent)).await;
                return;
            }
        }
    }
}
