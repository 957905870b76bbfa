//! The desired state of this node's kernel for one overlay network: from the
//! resolved allocation and the VTEP records, its VXLAN device and, per remote peer,
//! the neighbour entry (VTEP address → MAC), the forwarding entry (MAC → underlay) and
//! the route to its subnets via its VTEP.
//!
//! A peer is programmed when it holds a slot in the allocation and its record
//! describes that slot; a record left from an older slot waits for the peer to
//! publish again, so a subnet is never routed to a node that no longer holds it.
//! Reachability does not gate a peer: an agent that stops leaves its containers
//! running, and dcos-overlay's users relied on that; a peer's entries go when it
//! leaves the allocation (forgotten, see [`super::alloc`]). A pure function of its
//! inputs, so the simulator can check the very code the agent runs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hawser_core::NodeId;

use super::alloc::Allocation;
use super::config::Network;
use super::kv::Entry;
use super::share::Share;
use super::state::{Device, IfAddr, Link, Programmed};
use super::vtep::{Mac, VtepRecord};

/// The VXLAN device of the network with `vni` (as dcos-overlay named it; at most 12
/// bytes, within the kernel's 15).
pub fn device_name(vni: u32) -> String {
    format!("vtep{vni}")
}

/// Why peers were left out, for metrics and the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredStats {
    /// Peers holding a slot with no record yet.
    pub unrecorded: usize,
    /// Peers whose record describes another slot than the one they hold.
    pub stale: usize,
    /// Peers whose MAC is this node's or a lower peer's (the higher id is left out).
    pub mac_clash: usize,
    /// Peers whose underlay is of the other address family than this node's.
    pub family: usize,
}

/// What this node's kernel should hold for one network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// This node's share, if it holds a slot (without one it has no device).
    pub share: Option<Share>,
    /// The peers programmed, with their records.
    pub peers: BTreeMap<NodeId, VtepRecord>,
    pub state: Programmed,
    pub stats: DesiredStats,
}

/// Compute the desired state of `me`, reachable at `underlay`, in `net`.
pub fn desired(
    net: &Network,
    me: NodeId,
    underlay: IpAddr,
    alloc: &Allocation,
    nodes: &BTreeMap<NodeId, Entry>,
) -> Desired {
    let mut out = Desired::default();
    let Some(share) = alloc.slots.get(&me).and_then(|s| net.share(*s)) else {
        return out;
    };
    out.share = Some(share);
    let mac = Mac::of_node(me);
    let mut link = Link::new(Device {
        vni: net.vni,
        port: net.port,
        mtu: net.mtu,
        mac,
        local: underlay,
    });
    link.up = true;
    link.addresses.insert(IfAddr {
        ip: share.vtep_ip.into(),
        len: net.vtep.prefix_len(),
    });
    if share.subnet6.is_some() {
        link.addresses.insert(IfAddr {
            ip: mac.link_local().into(),
            len: 64,
        });
    }
    let mut macs: BTreeSet<Mac> = [mac].into();
    for (node, slot) in &alloc.slots {
        if *node == me {
            continue;
        }
        let Some(record) = nodes.get(node).and_then(|e| e.vtep) else {
            out.stats.unrecorded += 1;
            continue;
        };
        if !net.share(*slot).is_some_and(|s| record.matches(&s)) {
            out.stats.stale += 1;
            continue;
        }
        if record.underlay.is_ipv4() != underlay.is_ipv4() {
            out.stats.family += 1;
            continue;
        }
        if !macs.insert(record.mac) {
            out.stats.mac_clash += 1;
            continue;
        }
        let vtep = IpAddr::from(record.vtep_ip);
        link.neighbours.insert(vtep, record.mac);
        link.fdb.insert(record.mac, record.underlay);
        link.routes.insert(record.subnet, vtep);
        if let Some(subnet6) = record.subnet6 {
            let via = IpAddr::from(record.mac.link_local());
            link.neighbours.insert(via, record.mac);
            link.routes.insert(subnet6, via);
        }
        out.peers.insert(*node, record);
    }
    out.state.links.insert(device_name(net.vni), link);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::overlay::share::Slot;
    use crate::overlay::state::diff;

    fn net(v6: bool) -> Network {
        let six = if v6 { ",subnet6=fd01:b::/64" } else { "" };
        format!("name=t,subnet=198.18.0.0/16,vtep=198.19.0.0/24{six}")
            .parse()
            .unwrap()
    }

    fn underlay(n: u64) -> IpAddr {
        IpAddr::from([198, 18, 255, n as u8])
    }

    /// Nodes and their slots, each with a record that matches its slot.
    fn world(net: &Network, slots: &[(u64, u32)]) -> (Allocation, BTreeMap<NodeId, Entry>) {
        let mut alloc = Allocation::default();
        let mut nodes = BTreeMap::new();
        for (n, s) in slots {
            let (node, slot) = (NodeId(*n), Slot(*s));
            alloc.owners.insert(slot, node);
            alloc.slots.insert(node, slot);
            let record = VtepRecord::new(node, underlay(*n), &net.share(slot).unwrap());
            let entry = Entry {
                slots: [slot].into(),
                vtep: Some(record),
            };
            nodes.insert(node, entry);
        }
        (alloc, nodes)
    }

    #[test]
    fn each_peer_gets_a_neighbour_a_forwarding_entry_and_routes() {
        let net = net(true);
        let (alloc, nodes) = world(&net, &[(1, 0), (2, 5)]);
        let d = desired(&net, NodeId(1), underlay(1), &alloc, &nodes);
        assert_eq!(d.share.unwrap().slot, Slot(0));
        let link = &d.state.links["vtep1024"];
        assert!(link.up);
        assert_eq!(link.device.mac, Mac::of_node(NodeId(1)));
        assert_eq!(link.device.local, underlay(1));
        assert!(link.addresses.contains(&IfAddr {
            ip: "198.19.0.1".parse().unwrap(),
            len: 24
        }));
        assert_eq!(link.addresses.len(), 2, "and the IPv6 link-local");
        let peer_mac = Mac::of_node(NodeId(2));
        let vtep: IpAddr = "198.19.0.6".parse().unwrap();
        assert_eq!(link.neighbours[&vtep], peer_mac);
        assert_eq!(
            link.neighbours[&IpAddr::from(peer_mac.link_local())],
            peer_mac
        );
        assert_eq!(link.fdb, [(peer_mac, underlay(2))].into());
        assert_eq!(link.routes[&"198.18.5.0/24".parse().unwrap()], vtep);
        assert_eq!(
            link.routes[&"fd01:b:0:0:5::/80".parse().unwrap()],
            IpAddr::from(peer_mac.link_local())
        );
        assert_eq!(d.peers.len(), 1);
    }

    #[test]
    fn peers_without_a_current_record_wait() {
        let net = net(false);
        let (mut alloc, mut nodes) = world(&net, &[(1, 0), (2, 5), (3, 6), (4, 7)]);
        // Node 2 moved to slot 9 but still publishes its slot-5 record.
        alloc.owners.remove(&Slot(5));
        alloc.owners.insert(Slot(9), NodeId(2));
        alloc.slots.insert(NodeId(2), Slot(9));
        nodes.get_mut(&NodeId(3)).unwrap().vtep = None;
        // Node 4 is reached over IPv6, which an IPv4 device cannot.
        nodes
            .get_mut(&NodeId(4))
            .unwrap()
            .vtep
            .as_mut()
            .unwrap()
            .underlay = "2001:db8::4".parse().unwrap();
        let d = desired(&net, NodeId(1), underlay(1), &alloc, &nodes);
        assert!(d.peers.is_empty());
        assert_eq!(
            d.stats,
            DesiredStats {
                unrecorded: 1,
                stale: 1,
                mac_clash: 0,
                family: 1
            }
        );
        // A node without a slot has no device.
        let d = desired(&net, NodeId(8), underlay(8), &alloc, &nodes);
        assert_eq!(d, Desired::default());
    }

    #[test]
    fn a_peer_with_a_clashing_mac_is_left_out() {
        let net = net(false);
        let (alloc, mut nodes) = world(&net, &[(1, 0), (2, 1), (3, 2)]);
        let mac2 = Mac::of_node(NodeId(2));
        nodes
            .get_mut(&NodeId(3))
            .unwrap()
            .vtep
            .as_mut()
            .unwrap()
            .mac = mac2;
        let d = desired(&net, NodeId(1), underlay(1), &alloc, &nodes);
        assert_eq!(d.peers.keys().copied().collect::<Vec<_>>(), vec![NodeId(2)]);
        assert_eq!(d.stats.mac_clash, 1);
    }

    proptest! {
        /// Whoever joins or leaves, going from one desired state to the next never
        /// recreates the device, and a departed peer leaves nothing behind.
        #[test]
        fn peers_come_and_go_without_touching_the_device(
            before in proptest::collection::btree_set(2u64..10, 0..8),
            after in proptest::collection::btree_set(2u64..10, 0..8),
        ) {
            let net = net(true);
            let slots = |set: &BTreeSet<u64>| -> Vec<(u64, u32)> {
                [(1, 0)].into_iter().chain(set.iter().map(|n| (*n, *n as u32))).collect()
            };
            let (a1, n1) = world(&net, &slots(&before));
            let (a2, n2) = world(&net, &slots(&after));
            let d1 = desired(&net, NodeId(1), underlay(1), &a1, &n1);
            let d2 = desired(&net, NodeId(1), underlay(1), &a2, &n2);
            let changes = diff(&d1.state, &d2.state);
            prop_assert!(!changes.iter().any(|c| matches!(c, crate::overlay::Change::RemoveLink(_))));
            let link = &d2.state.links["vtep1024"];
            prop_assert_eq!(link.fdb.len(), after.len());
            prop_assert_eq!(link.routes.len(), 2 * after.len());
            prop_assert_eq!(link.neighbours.len(), 2 * after.len());
            let macs: BTreeSet<Mac> = after.iter().map(|n| Mac::of_node(NodeId(*n))).collect();
            prop_assert_eq!(link.fdb.keys().copied().collect::<BTreeSet<_>>(), macs);
        }
    }
}
