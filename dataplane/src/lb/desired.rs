//! The desired state of this node's kernel: from the VIPs in the KV and what this node
//! can reach, which services and destinations it should hold.
//!
//! Per VIP and address family, the destinations are the backends whose node this node
//! can reach, with their weights (0 = draining: no new connections, open ones stay). If
//! none of them is reachable, all of them are kept (fail open: a routing view that is
//! wrong, or a partition the backends can still be reached across, must not black-hole
//! a service) and the VIP is counted in [`DesiredStats::fail_open`]. A backend address
//! published by two nodes takes the larger weight.
//!
//! A pure function of its inputs, so the simulator checks the very code the agent runs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hawser_core::NodeId;

use super::names::{NameRanges, assign};
use super::state::{Dests, Programmed};
use super::vip::{Backend, Host, Service, Vip};

/// What the computation saw, for metrics and the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredStats {
    pub vips: usize,
    pub backends: usize,
    /// Backends left out because their node is unreachable.
    pub unreachable: usize,
    /// Services kept with all their backends although none was reachable.
    pub fail_open: usize,
    /// Backends whose address family the VIP has no address in (an IPv6 backend of an
    /// IPv4 VIP, or a named VIP whose range for that family is absent or full).
    pub unaddressed: usize,
}

/// The kernel state to reach, and the names it serves once reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub state: Programmed,
    /// Named VIPs and the addresses that have a service here (for [`ProgrammedNames`]
    /// once applied).
    ///
    /// [`ProgrammedNames`]: super::ProgrammedNames
    pub names: BTreeMap<String, Vec<IpAddr>>,
    pub stats: DesiredStats,
}

/// Each named VIP's addresses: see [`assign`]. IP VIPs' addresses are never given to a
/// name.
pub fn addresses<'a>(
    vips: impl Iterator<Item = &'a Vip> + Clone,
    ranges: NameRanges,
) -> BTreeMap<String, Vec<IpAddr>> {
    let names: BTreeSet<String> = vips
        .clone()
        .filter_map(|v| v.name())
        .map(str::to_owned)
        .collect();
    let taken: BTreeSet<IpAddr> = vips
        .filter_map(|v| match v.host {
            Host::Ip(ip) => Some(ip),
            Host::Name(_) => None,
        })
        .collect();
    assign(&names, &taken, ranges)
}

/// Compute the desired state from every VIP with its backends.
pub fn desired(
    vips: &BTreeMap<Vip, Vec<Backend>>,
    reachable: impl Fn(NodeId) -> bool,
    ranges: NameRanges,
) -> Desired {
    let named = addresses(vips.keys(), ranges);
    let mut out = Desired::default();
    for (vip, backends) in vips {
        out.stats.vips += 1;
        out.stats.backends += backends.len();
        let vip_addrs: Vec<IpAddr> = match &vip.host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(n) => named.get(n).cloned().unwrap_or_default(),
        };
        for family_v4 in [true, false] {
            let of_family: Vec<&Backend> = backends
                .iter()
                .filter(|b| b.addr.is_ipv4() == family_v4)
                .collect();
            if of_family.is_empty() {
                continue;
            }
            let Some(addr) = vip_addrs.iter().find(|a| a.is_ipv4() == family_v4) else {
                out.stats.unaddressed += of_family.len();
                continue;
            };
            let live: Vec<&Backend> = of_family
                .iter()
                .copied()
                .filter(|b| reachable(b.node))
                .collect();
            out.stats.unreachable += of_family.len() - live.len();
            let chosen = if live.is_empty() {
                out.stats.fail_open += 1;
                of_family
            } else {
                live
            };
            let mut dests = Dests::new();
            for b in chosen {
                let w = dests.entry(b.addr).or_insert(b.weight);
                *w = (*w).max(b.weight);
            }
            let service = Service {
                proto: vip.proto,
                addr: std::net::SocketAddr::new(*addr, vip.port),
            };
            out.state.addresses.insert(*addr);
            out.state.services.insert(service, dests);
            if let Some(name) = vip.name() {
                let addrs = out.names.entry(name.to_owned()).or_default();
                if !addrs.contains(addr) {
                    addrs.push(*addr);
                    addrs.sort();
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use proptest::prelude::*;

    use super::*;
    use crate::lb::vip::Proto;

    fn b(node: u64, addr: &str, weight: u32) -> Backend {
        Backend::test(node, addr, weight)
    }

    fn svc(s: &str) -> Service {
        let vip: Vip = s.parse().unwrap();
        let Host::Ip(ip) = vip.host else { panic!() };
        Service {
            proto: vip.proto,
            addr: SocketAddr::new(ip, vip.port),
        }
    }

    #[test]
    fn unreachable_backends_are_left_out_and_all_unreachable_fails_open() {
        let vips: BTreeMap<Vip, Vec<Backend>> = [
            (
                "tcp://11.1.2.3:80".parse().unwrap(),
                vec![b(1, "198.18.1.2:80", 1), b(2, "198.18.2.2:80", 0)],
            ),
            (
                "udp://11.1.2.4:53".parse().unwrap(),
                vec![b(3, "198.18.3.2:53", 2)],
            ),
        ]
        .into();
        let d = desired(
            &vips,
            |n| n != NodeId(1) && n != NodeId(3),
            NameRanges::default(),
        );
        assert_eq!(
            d.state.services[&svc("tcp://11.1.2.3:80")],
            [("198.18.2.2:80".parse().unwrap(), 0)].into()
        );
        assert_eq!(
            d.state.services[&svc("udp://11.1.2.4:53")],
            [("198.18.3.2:53".parse().unwrap(), 2)].into(),
            "fail open"
        );
        assert_eq!(d.stats.unreachable, 2);
        assert_eq!(d.stats.fail_open, 1);
        assert_eq!(d.state.addresses.len(), 2);
        assert!(d.names.is_empty());
    }

    #[test]
    fn named_vips_serve_each_family_from_its_own_address() {
        let vips: BTreeMap<Vip, Vec<Backend>> = [(
            "tcp://web:80".parse().unwrap(),
            vec![b(1, "198.18.1.2:8080", 1), b(1, "[2001:db8::1]:8080", 1)],
        )]
        .into();
        let d = desired(&vips, |_| true, NameRanges::default());
        let addrs = &d.names["web"];
        assert_eq!(addrs.len(), 2);
        assert_eq!(d.state.services.len(), 2);
        for s in d.state.services.keys() {
            assert!(addrs.contains(&s.addr.ip()));
            assert_eq!(s.proto, Proto::Tcp);
        }
        let no_v6 = NameRanges {
            v6: None,
            ..NameRanges::default()
        };
        let d = desired(&vips, |_| true, no_v6);
        assert_eq!(d.state.services.len(), 1);
        assert_eq!(d.stats.unaddressed, 1);
    }

    #[test]
    fn the_same_backend_from_two_nodes_takes_the_larger_weight() {
        let vips: BTreeMap<Vip, Vec<Backend>> = [(
            "tcp://11.1.2.3:80".parse().unwrap(),
            vec![b(1, "198.18.1.2:80", 1), b(2, "198.18.1.2:80", 3)],
        )]
        .into();
        let d = desired(&vips, |_| true, NameRanges::default());
        assert_eq!(
            d.state.services[&svc("tcp://11.1.2.3:80")],
            [("198.18.1.2:80".parse().unwrap(), 3)].into()
        );
    }

    proptest! {
        /// Whatever the VIPs and the reachable set: a service's destinations are exactly
        /// its reachable backends, or all of them when none is reachable.
        #[test]
        fn destinations_are_the_reachable_backends_or_all(
            backends in proptest::collection::vec((0u64..6, 0u8..4, 0u32..3), 1..12),
            reachable in proptest::collection::btree_set(0u64..6, 0..6),
        ) {
            let list: Vec<Backend> = backends.iter().map(|(n, i, w)| Backend {
                node: NodeId(*n),
                addr: SocketAddr::from(([198, 18, 1, *i], 80)),
                weight: *w,
            }).collect();
            let vip: Vip = "tcp://11.1.2.3:80".parse().unwrap();
            let d = desired(&[(vip, list.clone())].into(), |n| reachable.contains(&n.0), NameRanges::default());
            let dests = &d.state.services[&svc("tcp://11.1.2.3:80")];
            let live: Vec<&Backend> = list.iter().filter(|b| reachable.contains(&b.node.0)).collect();
            let expect: BTreeSet<SocketAddr> = if live.is_empty() {
                list.iter().map(|b| b.addr).collect()
            } else {
                live.iter().map(|b| b.addr).collect()
            };
            prop_assert_eq!(dests.keys().copied().collect::<BTreeSet<_>>(), expect);
            prop_assert_eq!(d.stats.fail_open, usize::from(live.is_empty()));
        }
    }
}
