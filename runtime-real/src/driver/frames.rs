//! A connection's two tasks: the reader cuts the byte stream into frames, reading through
//! a fixed 4 KiB buffer (the 8-byte header is checked against the frame limit before a
//! byte of payload is taken from it — core's few-hundred-byte handshake limit for the
//! handshake's frames — and the payload buffer grows only as bytes actually arrive); the
//! writer writes what the node sends. What one drain of the node sends to a connection
//! is handed to its writer as one buffer, written with one syscall (one TCP segment, not
//! one per frame).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hawser_core::ConnId;
use hawser_core::link::{HANDSHAKE_FRAMES, MAX_HANDSHAKE_FRAME};
use hawser_core::wire::{HEADER_LEN, decode_header};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::accept::PendingSlot;
use super::input::Input;

/// Memory a queued buffer costs: its bytes plus the queue node and vector header.
pub(super) fn cost(bytes: &[u8]) -> usize {
    bytes.len() + 64
}

/// What a reader asks the socket for at once: a frame's header and body, and the frames
/// behind it, in one read (rather than two or three reads a frame).
const READ_BUFFER: usize = 4 << 10;

/// Cut the stream into frames. A header that does not decode (wrong magic, oversize
/// length, ...) is handed to the node as it is: the node's decoder rejects it with the
/// same error, counts it and closes the connection. The handshake's frames may be no
/// larger than the handshake needs; an inbound connection's `pending` slot is given back
/// once they are read.
pub(super) async fn read_frames<R: AsyncRead + Unpin, S>(
    read: R,
    conn: ConnId,
    max_frame: usize,
    mut pending: Option<PendingSlot>,
    inputs: mpsc::Sender<Input<S>>,
) {
    let mut read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
    let mut frames = 0u64;
    loop {
        if frames == HANDSHAKE_FRAMES {
            pending = None;
        }
        let limit = if frames < HANDSHAKE_FRAMES {
            MAX_HANDSHAKE_FRAME
        } else {
            max_frame
        };
        frames += 1;
        let mut header = [0u8; HEADER_LEN];
        if read.read_exact(&mut header).await.is_err() {
            break;
        }
        let len = match decode_header(&header, limit) {
            Ok((_, len)) => len,
            Err(_) => {
                let _ = inputs.send(Input::Frame(conn, header.to_vec())).await;
                return;
            }
        };
        // Grow with what arrives, not with what the header claims.
        let mut frame = Vec::with_capacity(HEADER_LEN + len.min(64 << 10));
        frame.extend_from_slice(&header);
        match (&mut read).take(len as u64).read_to_end(&mut frame).await {
            Ok(n) if n == len => {}
            _ => break,
        }
        if inputs.send(Input::Frame(conn, frame)).await.is_err() {
            return;
        }
    }
    drop(pending);
    let _ = inputs.send(Input::Closed(conn)).await;
}

/// Bytes one write of [`write_frames`] gathers at most from buffers waiting together.
const WRITE_GATHER: usize = 64 << 10;

/// Write what the node task hands over, each buffer (a drain's frames) with one write,
/// and buffers that wait together gathered into one (up to [`WRITE_GATHER`] bytes):
/// with `TCP_NODELAY` each write is a segment, so fewer writes are fewer packets (and
/// fewer syscalls). A write that fails or outlasts `write_timeout` ends the task with a
/// `WriteFailed` input.
pub(super) async fn write_frames<W: AsyncWrite + Unpin, S>(
    mut write: W,
    conn: ConnId,
    mut buffers: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    inputs: mpsc::Sender<Input<S>>,
    write_timeout: Duration,
) {
    while let Some(mut bytes) = buffers.recv().await {
        let mut taken = cost(&bytes);
        while bytes.len() < WRITE_GATHER {
            match buffers.try_recv() {
                Ok(more) => {
                    taken += cost(&more);
                    bytes.extend_from_slice(&more);
                }
                Err(_) => break,
            }
        }
        // Flushed once per write: a stream may buffer writes until flushed (madsim's
        // simulated TCP does, and so does TLS).
        let written = tokio::time::timeout(write_timeout, async {
            write.write_all(&bytes).await?;
            write.flush().await
        })
        .await;
        queued.fetch_sub(taken, Ordering::Relaxed);
        let error = match written {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("a write took over {write_timeout:?}"),
            ),
        };
        let _ = inputs.send(Input::WriteFailed(conn, error)).await;
        return;
    }
    // The node closed the connection: everything queued is written; say goodbye.
    let _ = tokio::time::timeout(write_timeout, write.shutdown()).await;
}
