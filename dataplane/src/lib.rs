//! hawser-dataplane: DNS, the L4 load balancer and overlay routes, each split into a pure
//! "desired state + diff" part and a thin kernel/socket backend.
//!
//! - [`dns`]: the cluster zone from the KV and membership, and a racing forwarder, as a
//!   sans-IO server the runtime drives.

pub mod dns;
pub mod fuzzing;
