//! hawser-dataplane: DNS, the L4 load balancer and overlay routes, each split into a pure
//! "desired state + diff" part and a thin kernel/socket backend.
//!
//! Nothing is implemented yet (see README.md); the crate holds its place in the workspace.
