//! DNS on every node (Spartan / dcos-dns, rebuilt): authoritative for the cluster zone
//! from the node's own KV replica and membership, and a forwarder for everything else
//! that races its upstreams so a dead one costs a client nothing visible.
//!
//! Sans-IO like core: [`DnsServer`] takes `(now, bytes in)` and gives bytes out and its
//! next deadline; the tokio front end in the runtime owns the sockets. hickory-proto is
//! the message codec; the request handling is ours.
//!
//! Files: `config` (settings), `message` (queries in, replies out), `zone` (the cluster
//! zone and its answers), `records` (user records in the KV), `upstream` (one
//! upstream's health), `forward` (racing the upstreams), `cache` (forwarded answers),
//! `server` (the state machine), `output` (what it hands the driver), `counters`.

mod cache;
mod config;
mod counters;
mod forward;
pub mod message;
mod output;
pub mod records;
mod server;
mod upstream;
mod zone;

#[cfg(test)]
mod tests;

pub use config::{DnsConfig, DnsConfigError, ForwardZone};
pub use counters::{DnsCounters, Ignored, Source};
pub use message::{Malformed, Transport};
pub use output::{Client, DnsEvent, Transmit};
pub use server::DnsServer;
pub use upstream::Upstream;
pub use zone::{Lookup, NoVips, RESERVED, VipNames, Zone};
