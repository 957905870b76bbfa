//! hawser-runtime: hawser's core on tokio — the driver, the TCP transport, the durable
//! store, metrics — and, outside madsim builds, the agent, its admin API and the CLI
//! client that talks to it.
//!
//! The driver runs any [`hawser_core::Protocol`], not only hawser's stack: [`run`] (or
//! [`start`]) runs your own protocol for real in a few lines — see `runner`
//! (left out of madsim builds, like the agent: it waits on real signals).
//!
//! Built with `--cfg madsim`, `tokio` is madsim's simulation, so the driver, transport
//! and store run unchanged in a deterministic simulated network. The admin API (axum)
//! needs the real tokio and the agent reads real signals, so they are left out of such
//! builds.

pub mod driver;
pub mod isolation;
pub mod lograte;
pub mod metrics;
#[cfg(not(madsim))]
pub mod runner;
pub mod store;
pub mod tls;
pub mod transport;

#[cfg(not(madsim))]
pub use runner::{EventHost, RunConfig, RunError, Running, run, start};

#[cfg(not(madsim))]
pub mod admin;
#[cfg(not(madsim))]
pub mod admin_guard;
#[cfg(not(madsim))]
pub mod agent;
pub mod client;
pub mod config;
#[cfg(not(madsim))]
pub mod demo;
pub mod dns;
#[cfg(not(madsim))]
pub mod graph_view;
#[cfg(not(madsim))]
pub mod lb;
#[cfg(not(madsim))]
pub mod lb_api;
#[cfg(not(madsim))]
pub mod members_api;
#[cfg(not(madsim))]
pub mod monitor;
pub mod overlay;
#[cfg(not(madsim))]
pub mod reconcile_loop;
#[cfg(not(madsim))]
pub mod ui;
