//! Overlay worlds for the tests and benches: a network, its nodes' allocation and the
//! records they publish, as the agents would make them, for `overlay::desired`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hawser_core::NodeId;
use hawser_dataplane::overlay::kv::Entry;
use hawser_dataplane::overlay::{Allocation, Network, Programmed, Slot, VtepRecord, desired};

/// Node `n` (1 or 2) holds slot `n`, and is reached at `underlay(n)`.
pub type Underlay = fn(u64) -> IpAddr;

pub fn underlay4(n: u64) -> IpAddr {
    IpAddr::from([198, 18, 0, n as u8])
}

pub fn underlay6(n: u64) -> IpAddr {
    IpAddr::from([0x2001, 0xdb8, 0x18, 0, 0, 0, 0, n as u16])
}

pub fn network() -> Network {
    "name=t,subnet=198.19.0.0/16,subnet6=2001:db8:1::/64"
        .parse()
        .unwrap()
}

/// The allocation and KV entries of `nodes`, each holding slot `n` and publishing a
/// record of it, as the agents would.
pub fn world(
    net: &Network,
    nodes: &[u64],
    underlay: Underlay,
) -> (Allocation, BTreeMap<NodeId, Entry>) {
    let mut alloc = Allocation::default();
    let mut entries = BTreeMap::new();
    for n in nodes {
        let (node, slot) = (NodeId(*n), Slot(*n as u32));
        alloc.owners.insert(slot, node);
        alloc.slots.insert(node, slot);
        let share = net.share(slot).unwrap();
        let entry = Entry {
            slots: [slot].into(),
            vtep: Some(VtepRecord::new(node, underlay(*n), &share)),
        };
        entries.insert(node, entry);
    }
    (alloc, entries)
}

/// What node `me` should hold when `nodes` are in the network.
pub fn want(net: &Network, me: u64, nodes: &[u64], underlay: Underlay) -> Programmed {
    let (alloc, entries) = world(net, nodes, underlay);
    desired(net, NodeId(me), underlay(me), &alloc, &entries).state
}
