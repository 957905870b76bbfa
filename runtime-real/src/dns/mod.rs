//! The agent's DNS service: the dataplane's sans-IO [`DnsServer`] on real sockets.
//!
//! - `settings`: flags and the `[dns]` table;
//! - `follower`: keeps the shared cluster zone equal to the KV and membership, inside
//!   the driver task;
//! - `service`, `shard`, `tcp`: sockets and tasks (SO_REUSEPORT UDP sockets, one shard
//!   per core; TCP clients and upstream connections);
//! - `api`: the admin API's `/v1/dns/*`; `query`: `hawser dns query`'s client;
//! - `metrics`: `hawser_dns_*`.
//!
//! [`DnsServer`]: hawser_dataplane::dns::DnsServer

pub mod follower;
pub mod query;
pub mod settings;

#[cfg(not(madsim))]
pub mod api;
pub mod metrics;
#[cfg(not(madsim))]
pub mod service;
#[cfg(not(madsim))]
mod shard;
#[cfg(not(madsim))]
mod tcp;
