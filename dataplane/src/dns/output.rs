//! What the DNS server hands its driver: datagrams and TCP messages to send, and events.
//!
//! Drain rule (str0m's): after every `handle_*` call, the driver drains `poll_transmit`
//! and `poll_event` until they return `None`, then sleeps until `poll_timeout`. Nothing
//! is sent or reported behind the driver's back, and nothing waits for it.

use std::collections::VecDeque;
use std::net::SocketAddr;

use hawser_core::time::Duration;

use super::counters::DnsCounters;
use super::message::Transport;

/// Who asked: a UDP source address, or a TCP connection the driver numbered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    Udp(SocketAddr),
    Tcp(u64),
}

impl Client {
    pub fn transport(self) -> Transport {
        match self {
            Client::Udp(_) => Transport::Udp,
            Client::Tcp(_) => Transport::Tcp,
        }
    }
}

/// Bytes to send. Over TCP the driver adds the two-byte length prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// A reply to a client.
    Client { to: Client, bytes: Vec<u8> },
    /// A query to an upstream, over UDP or over the driver's TCP connection to it.
    Upstream {
        to: SocketAddr,
        transport: Transport,
        bytes: Vec<u8>,
    },
}

/// What the driver may want to log or measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsEvent {
    /// An upstream answered after `rtt`.
    Rtt {
        upstream: SocketAddr,
        transport: Transport,
        rtt: Duration,
    },
    /// An upstream was taken out of rotation after failures in a row.
    UpstreamDown { upstream: SocketAddr, failures: u32 },
    /// An upstream answered again and is back in rotation.
    UpstreamUp {
        upstream: SocketAddr,
        after: Duration,
    },
}

/// The queues the server's parts write into, and the running totals.
#[derive(Debug, Default)]
pub struct Output {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<DnsEvent>,
    pub counters: DnsCounters,
}
