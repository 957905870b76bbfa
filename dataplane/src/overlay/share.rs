//! A node's share of an overlay network: its IPv4 subnet, its IPv6 subnet (if the
//! network has IPv6) and its VTEP address, all picked by one index, the [`Slot`].
//!
//! One index for all three keeps them together: a node that holds a slot alone holds
//! its subnets and its VTEP address, so one allocation ([`super::alloc`]) makes all of
//! them unique. The slot `i` is the `i`-th subnet of each range and the `i`-th host of
//! the VTEP range, so a network has as many slots as the smallest of those counts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::config::Network;
use crate::prefix::Prefix;

/// The index of a share within a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u32);

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a slot gives its holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Share {
    pub slot: Slot,
    pub subnet: Prefix,
    pub subnet6: Option<Prefix>,
    /// The address of the node's VXLAN device, the next hop to its subnets.
    pub vtep_ip: Ipv4Addr,
}

impl Share {
    /// The subnet's first host: the address containers on the node route through.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.subnet.host(0)
    }
}

impl Network {
    /// How many slots (nodes) the network has room for.
    pub fn capacity(&self) -> u32 {
        let v6 = self.subnet6.map_or(u128::MAX, |r| r.subnets(self.prefix6));
        let n = self
            .subnet
            .subnets(self.prefix)
            .min(v6)
            .min(self.vtep.hosts());
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The share `slot` stands for, or `None` past [`Network::capacity`].
    pub fn share(&self, slot: Slot) -> Option<Share> {
        if slot.0 >= self.capacity() {
            return None;
        }
        let i = u128::from(slot.0);
        let vtep_ip = match self.vtep.host(i)? {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => return None,
        };
        Some(Share {
            slot,
            subnet: self.subnet.subnet(self.prefix, i)?,
            subnet6: match self.subnet6 {
                Some(r) => Some(r.subnet(self.prefix6, i)?),
                None => None,
            },
            vtep_ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_picks_the_same_index_in_every_range() {
        let n: Network = "name=t,subnet=198.18.0.0/16,subnet6=fd01:b::/64,vtep=198.19.0.0/24"
            .parse()
            .unwrap();
        assert_eq!(n.capacity(), 254, "the VTEP range is the smallest");
        let s = n.share(Slot(3)).unwrap();
        assert_eq!(s.subnet.to_string(), "198.18.3.0/24");
        assert_eq!(s.subnet6.unwrap().to_string(), "fd01:b:0:0:3::/80");
        assert_eq!(s.vtep_ip, Ipv4Addr::new(198, 19, 0, 4));
        assert_eq!(s.gateway(), Some("198.18.3.1".parse().unwrap()));
        assert!(n.share(Slot(253)).is_some());
        assert_eq!(n.share(Slot(254)), None);
        let small: Network = "name=t,subnet=198.18.0.0/22,vtep=198.19.0.0/24"
            .parse()
            .unwrap();
        assert_eq!(small.capacity(), 4, "the subnet range is the smallest");
    }
}
