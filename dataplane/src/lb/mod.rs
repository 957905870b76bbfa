//! The L4 load balancer (Minuteman / dcos-l4lb): VIPs whose backends are published in
//! the replicated KV, programmed into every node's kernel so that a connection to a VIP
//! goes straight to a backend, with no proxy in the path.
//!
//! Split as DESIGN.md asks:
//! - pure and deterministic: [`vip`] (the VIP and backend formats), [`kv`] (how they live
//!   in the KV), [`names`] (addresses for named VIPs), [`desired`] (what this node's
//!   kernel should hold, given what it can reach) and [`state`] (the kernel state model,
//!   its diff and how a change applies);
//! - the kernel: [`Kernel`] backends ([`nft`]: nftables; [`ipvs`]: IPVS over generic
//!   netlink), the VIP addresses on a dummy interface ([`rtnl`]), and the [`reconcile`]
//!   loop that reads the kernel, diffs and applies the minimal change.

pub mod desired;
pub mod ipvs;
pub mod kernel;
pub mod kv;
pub mod names;
pub mod nft;
pub mod reconcile;
pub mod rtnl;
pub mod state;
pub mod vip;

pub use crate::prefix::{Prefix, PrefixError};
pub use desired::{Desired, DesiredStats, desired};
pub use kernel::{Kernel, KernelError};
pub use kv::Catalog;
pub use names::{NameRanges, ProgrammedNames};
pub use reconcile::{Pass, Reconciler};
pub use state::{Change, Dests, Programmed, diff};
pub use vip::{Backend, Host, Proto, Service, Vip, VipError};
