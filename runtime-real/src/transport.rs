//! How the driver reaches the network: a small trait with one TCP implementation.
//!
//! The driver only needs to listen, accept, dial and get a byte stream. Keeping that
//! behind [`Transport`] means the very same driver runs on the real network and, built
//! with `--cfg madsim`, on madsim's simulated TCP: `tokio` here is madsim-tokio, whose
//! `net` module is tokio's under a normal build and madsim's under `--cfg madsim`, and the
//! only API used is the part both have (bind, accept, connect, `set_nodelay`, and the
//! `AsyncRead`/`AsyncWrite` of the stream).

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// A stream-oriented network: the driver's only way out.
pub trait Transport: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Listener: Send + Sync + 'static;

    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// The address the listener is bound to (the port, when bound to port 0).
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// Dial `addr` (`ip:port`, as peers advertise themselves). The caller bounds the time.
    fn connect(addr: String) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// TCP through `tokio::net` (real, or simulated under `--cfg madsim`).
pub struct Tcp;

impl Transport for Tcp {
    type Stream = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::bind(addr).await
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, from) = listener.accept().await?;
        // Frames are small and latency-sensitive (pings): never wait to coalesce them.
        stream.set_nodelay(true)?;
        Ok((stream, from))
    }

    async fn connect(addr: String) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(addr.as_str()).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}
