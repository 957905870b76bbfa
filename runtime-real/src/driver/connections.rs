//! The node task's side of connections: dialling, starting a connected stream's reader
//! and writer, handing each drain's frames to the writer within a byte budget, and
//! closing.
//!
//! The node never waits for a writer: each connection has a byte budget, and a peer that
//! lets its queue overflow is disconnected and counted (`queue_drops`). A write that
//! fails (the peer closed or reset the connection, or a write outlasted `write_timeout`)
//! is another matter: the writer reports it with its error and the connection is closed
//! and counted (`write_failures`); bytes the node sends to it meanwhile are dropped,
//! since the connection is already gone.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hawser_core::{Addr, ConnId};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use super::accept::{PendingSlot, tls_handshake};
use super::frames::{cost, read_frames, write_frames};
use super::host::Host;
use super::input::Input;
use super::node_task::Driver;
use crate::tls::PeerStream;
use crate::transport::Transport;

pub(super) enum Conn {
    Dialing(AbortHandle),
    Open(Open),
}

/// An open connection's handles, as the node task holds them.
pub(super) struct Open {
    /// Bytes to write, a drain's worth at a time; dropping it lets the writer flush and
    /// close.
    writer: mpsc::UnboundedSender<Vec<u8>>,
    /// Frames the current drain sends, not yet handed to the writer.
    pub(super) outgoing: Vec<u8>,
    /// Bytes queued and not yet written (shared with the writer).
    queued: Arc<AtomicUsize>,
    pub(super) reader: AbortHandle,
    writer_task: AbortHandle,
    /// Inbound connections hold one of `max_connections` slots until closed.
    _slot: Option<OwnedSemaphorePermit>,
}

/// A send queue went over its byte budget.
pub(super) struct Overflow;

impl Open {
    /// Hand what this drain sent to the writer, as one buffer. `Err` if that would put
    /// more than `budget` bytes in its queue: the peer does not read what it is sent.
    /// A writer that has stopped (its write failed, and its `WriteFailed` is on the way
    /// to the node task) takes nothing: the bytes are dropped with the connection.
    pub(super) fn hand_over(&mut self, budget: usize) -> Result<(), Overflow> {
        if self.outgoing.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.outgoing);
        let c = cost(&bytes);
        if self.queued.fetch_add(c, Ordering::Relaxed) + c > budget {
            return Err(Overflow);
        }
        if self.writer.send(bytes).is_err() {
            self.queued.fetch_sub(c, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Stop a connection's tasks at once (nothing more is written).
pub(super) fn abort(c: &Conn) {
    match c {
        Conn::Dialing(task) => task.abort(),
        Conn::Open(o) => {
            o.reader.abort();
            o.writer_task.abort();
        }
    }
}

/// The other end of a connection, for log lines.
pub(super) struct Remote {
    pub(super) addr: String,
    /// We dialled it (it is a contact or a member), rather than it us.
    pub(super) outbound: bool,
}

impl<T: Transport, H: Host> Driver<T, H> {
    pub(super) fn dial(&mut self, conn: ConnId, addr: Addr) {
        self.remotes.insert(
            conn,
            Remote {
                addr: addr.to_string(),
                outbound: true,
            },
        );
        let inputs = self.inputs.clone();
        let limit = self.config.connect_timeout;
        if self.deny.contains(&addr) {
            debug!(%addr, "not dialling a denied address (test/demo partition)");
            let task = tokio::spawn(async move {
                let refused = io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "address on the deny list (test/demo partition)",
                );
                let _ = inputs.send(Input::ConnectFailed(conn, refused)).await;
            });
            self.conns.insert(conn, Conn::Dialing(task.abort_handle()));
            return;
        }
        let tls = self.config.tls.clone();
        let task = tokio::spawn(async move {
            let input =
                match tokio::time::timeout(limit, T::connect(addr.as_str().to_owned())).await {
                    Ok(Ok(stream)) => match tls {
                        None => Input::Connected(conn, PeerStream::Plain(stream), None),
                        Some(tls) => match tls_handshake(tls.connect(stream)).await {
                            Ok((s, peer)) => {
                                Input::Connected(conn, PeerStream::Tls(Box::new(s)), Some(peer))
                            }
                            Err(why) => Input::TlsRefused {
                                conn: Some(conn),
                                remote: addr.to_string(),
                                why,
                            },
                        },
                    },
                    Ok(Err(e)) => Input::ConnectFailed(conn, e),
                    Err(_) => Input::ConnectFailed(
                        conn,
                        io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
                    ),
                };
            let _ = inputs.send(input).await;
        });
        self.conns.insert(conn, Conn::Dialing(task.abort_handle()));
    }

    /// Start the reader and writer of a connected stream.
    pub(super) fn open(
        &mut self,
        conn: ConnId,
        stream: PeerStream<T::Stream>,
        slot: Option<OwnedSemaphorePermit>,
        pending: Option<PendingSlot>,
    ) {
        let (read, write) = tokio::io::split(stream);
        let (writer, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let reader = tokio::spawn(read_frames(
            read,
            conn,
            self.config.max_frame,
            pending,
            self.inputs.clone(),
        ));
        let writer_task = tokio::spawn(write_frames(
            write,
            conn,
            rx,
            queued.clone(),
            self.inputs.clone(),
            self.config.write_timeout,
        ));
        let writer_abort = writer_task.abort_handle();
        self.writers.retain(|w| !w.is_finished());
        self.writers.push(writer_task);
        self.conns.insert(
            conn,
            Conn::Open(Open {
                writer,
                outgoing: Vec::new(),
                queued,
                reader: reader.abort_handle(),
                writer_task: writer_abort,
                _slot: slot,
            }),
        );
    }

    /// The node closes `conn`: a dial is abandoned; an open connection stops reading,
    /// and its writer flushes what is queued and closes.
    pub(super) fn close(&mut self, conn: ConnId) {
        match self.conns.remove(&conn) {
            Some(Conn::Dialing(task)) => task.abort(),
            // Dropping the sender lets the writer flush what is queued and close;
            // nothing more will be read.
            Some(Conn::Open(mut o)) => {
                o.reader.abort();
                if o.hand_over(self.config.send_queue_bytes).is_err() {
                    self.too_slow(conn);
                    o.writer_task.abort();
                }
            }
            None => {}
        }
    }

    /// `conn`'s send queue went over `send_queue_bytes`: count it and say so.
    pub(super) fn too_slow(&self, conn: ConnId) {
        self.metrics.queue_drops.inc();
        warn!(
            ?conn,
            remote = self.remote(conn),
            "peer does not drain its send queue; closing the connection"
        );
    }

    /// Who is at the other end of `conn`, for a log line.
    pub(super) fn remote(&self, conn: ConnId) -> &str {
        self.remotes
            .get(&conn)
            .map_or("unknown", |r| r.addr.as_str())
    }
}
