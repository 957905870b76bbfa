//! The driver: one task that owns a core [`Node`](hawser_core::Node) and connects it to
//! the world — for any [`Protocol`](hawser_core::Protocol), hawser's stack being one.
//!
//! It is the sans-IO loop of DESIGN.md and nothing more: feed the node one input (an
//! accepted connection, a dial that succeeded or failed, a frame, a closed connection, a
//! batch that reached the disk, a deadline), then drain `poll_transmit`, `poll_event` and
//! `poll_persist`, and sleep until `poll_timeout` or the next input. Every protocol
//! decision is core's; the driver only moves bytes, records and time.
//!
//! Around the node task:
//! - an accept task hands it new connections (at most `max_connections` at once, and at
//!   most `max_pending_per_source` from one IP address still in their handshake; the rest
//!   are closed on arrival and counted) — see `accept`;
//! - per connection, a reader task cuts the byte stream into frames and a writer task
//!   writes what the node sends — see `frames`. The node never waits for a writer: each
//!   connection has a byte budget, and a peer that lets its queue overflow is
//!   disconnected and counted (`queue_drops`); a write that fails or outlasts
//!   `write_timeout` closes the connection and is counted (`write_failures`) — see
//!   `connections`;
//! - dials run in their own tasks, bounded by `connect_timeout`;
//! - a store commit runs on a blocking thread while the node keeps going; records that
//!   arrive meanwhile form the next batch (one sync per batch), and the node hears
//!   `handle_persisted` only once its batch is on disk — see `persist`.
//!
//! What is not moving bytes, records and time is the [`Host`]'s: what the protocol's
//! events mean, the requests a [`DriverHandle`] may carry besides inspect and command,
//! the gauges of the protocol, how the node leaves. hawser's own stack is the
//! [`StackHost`] (KV ops answered once durable, watches, followers, the stack's log lines
//! and metrics); a user's protocol runs with the plain host of [`crate::runner`].
//!
//! Split by concept: `node_task` (the loop), `connections` (dials and open connections),
//! `accept`, `frames`, `persist`, `link_log` (what the link layer reports, logged),
//! `handle` (how other tasks reach the node), `host` (the protocol-specific layer),
//! `identity` (who the node is), `config`, `seed`, and `stack` (hawser's stack as a host).

mod accept;
mod config;
mod connections;
mod frames;
mod handle;
mod host;
mod identity;
mod input;
mod link_log;
mod node_task;
mod persist;
mod seed;
pub mod stack;

pub use config::DriverConfig;
pub use handle::{DriverError, DriverHandle, DriverStopped};
pub use host::{Host, HostCx, RunnableProtocol, View};
pub use identity::{NodeError, build_node};
pub use node_task::Driver;
pub use seed::{SeedError, os_seed};
pub use stack::follow::{Changes, Follower};
pub use stack::kv::KvOpError;
pub use stack::spec::NodeSpec;
pub use stack::watch::{Watch, WatchError, watch_json};
pub use stack::{StackHost, StackRequest};
