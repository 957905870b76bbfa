//! hawser-dataplane: DNS, the L4 load balancer and overlay routes, each split into a pure
//! "desired state + diff" part and a thin kernel/socket backend.
//!
//! - [`dns`]: the cluster zone from the KV and membership, and a racing forwarder, as a
//!   sans-IO server the runtime drives.
//! - [`lb`]: the L4 load balancer's VIPs in the KV, the desired kernel state from them and
//!   the routing table, its diff, and the nftables and IPVS backends.
//! - [`overlay`]: the overlay network's settings, per-node subnets claimed in the KV,
//!   VTEP records, the desired VXLAN state with its diff, its rtnetlink backend and
//!   reconcile pass.
//! - [`kernel`]: the errors every kernel backend shares.
//! - [`prefix`]: address ranges, shared by the load balancer and the overlay.
//! - [`probe`]: choosing a free index from a key the same way on every node.

#[cfg(test)]
mod diff_laws;
pub mod dns;
pub mod fuzzing;
pub mod kernel;
pub mod lb;
pub mod overlay;
pub mod prefix;
pub mod probe;
mod rtnetlink;
