//! The overlay network (Navstar / dcos-overlay): containers on different nodes talk
//! over VXLAN, and hawser is its control plane. Each node owns a share of each
//! overlay's address space, claimed in the replicated KV without a central allocator,
//! publishes its VXLAN tunnel endpoint (VTEP) there, and turns what it reads into
//! kernel state.
//!
//! Built so far, the pure and deterministic part:
//! - [`config`]: a network's settings and their validation;
//! - [`share`]: what a node's slot gives it (subnets, VTEP address);
//! - [`kv`]: how claims and VTEP records live in the KV;
//! - [`alloc`]: who holds which slot, from the claims alone, and what a node does next;
//! - [`vtep`]: a node's VTEP record, and its MAC derived from its id;
//! - [`desired`]: this node's VXLAN device and its peers' entries and routes;
//! - [`member`]: one node's part, run alike by the agent and the simulator: the KV
//!   writes it makes and the kernel state it wants;
//! - [`state`]: the kernel state model, its minimal diff and how a change applies.
//!
//! And the kernel: the [`Kernel`] trait, its rtnetlink backend ([`rtnl`]: VXLAN
//! devices, addresses, neighbours, FDB entries and routes) and the [`reconcile`] pass
//! that reads the kernel, diffs and applies the minimal change.
//!
//! The agent runs it all in `runtime-real/src/overlay/`.

pub mod alloc;
pub mod config;
pub mod desired;
pub mod kernel;
pub mod kv;
pub mod member;
pub mod reconcile;
pub mod rtnl;
pub mod share;
pub mod state;
pub mod vtep;

pub use alloc::{Allocation, Liveness, Step, resolve, step};
pub use config::{ConfigError, Field, Network, check_all};
pub use desired::{Desired, DesiredStats, desired, device_name};
pub use kernel::{Kernel, KernelError};
pub use kv::Catalog;
pub use member::{Member, Write};
pub use reconcile::{Pass, Reconciler};
pub use rtnl::Rtnl;
pub use share::{Share, Slot};
pub use state::{Change, Device, IfAddr, Link, Programmed, diff};
pub use vtep::{Mac, VtepError, VtepRecord};
