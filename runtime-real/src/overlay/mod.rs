//! The overlay network in the agent (issue 19): containers on different nodes talk over
//! VXLAN, and the agent is its control plane. The logic is the dataplane's
//! ([`hawser_dataplane::overlay`]); this module runs it.
//!
//! - `settings`: `--overlay`, `[[overlay]]` and `overlay_forget_ms`;
//! - `follower`: one `Member` per network inside the driver task, a ticker, and the
//!   task that writes their claims and VTEP records to the KV;
//! - `reconcile`: the task that brings the kernel to the members' desired state;
//! - `api`: the admin API's `GET /v1/networks`.

pub mod settings;

#[cfg(not(madsim))]
pub mod api;
#[cfg(not(madsim))]
pub mod follower;
#[cfg(not(madsim))]
pub mod reconcile;
