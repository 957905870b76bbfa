//! hawser-dataplane: DNS, the L4 load balancer and overlay routes, each split into a pure
//! "desired state + diff" part and a thin kernel/socket backend.

pub mod lb;
