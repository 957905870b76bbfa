//! A node's VXLAN tunnel endpoint (VTEP) in one network, as it publishes it in the KV:
//! its underlay address, the VTEP address and MAC of its VXLAN device, and the subnets
//! its slot gives it. Every other node programs its kernel from this record.
//!
//! The MAC is derived from the node id alone ([`Mac::of_node`]), so it is the same
//! across restarts: dcos-overlay re-set the device's MAC at start, which flushed the
//! static neighbour entries and broke traffic on every restart.
//!
//! Stored as one line of `key=value` items, in this order:
//! `underlay=198.18.0.1 vtep=100.64.0.4 mac=ce:2d:f4:2d:0d:50 subnet=9.0.3.0/24
//! [subnet6=fd01:b:0:0:3::/80]`. A reader skips keys it does not know (a newer
//! version's additions) and refuses a record whose known items are missing, repeated
//! or malformed: it comes from another node and is not trusted.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hawser_core::NodeId;

use super::share::Share;
use crate::prefix::Prefix;

/// An Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The VTEP MAC of `node`: the first 6 bytes of a BLAKE3 hash of its id, made
    /// locally administered (bit 1 set) and unicast (bit 0 clear). 46 random bits: two
    /// of 4,000 nodes share one with a probability around 1e-7, and
    /// [`super::desired`] skips the higher id of such a pair.
    pub fn of_node(node: NodeId) -> Mac {
        let mut h = blake3::Hasher::new();
        h.update(b"hawser overlay vtep mac\0");
        h.update(&node.0.to_be_bytes());
        let mut b = [0u8; 6];
        b.copy_from_slice(&h.finalize().as_bytes()[..6]);
        b[0] = (b[0] & 0xfc) | 0x02;
        Mac(b)
    }

    /// Whether it can be a device's address: unicast and not all zero.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }

    /// The IPv6 link-local address the kernel gives a device with this MAC (EUI-64):
    /// the next hop to a peer's IPv6 subnet, so IPv6 needs no VTEP range of its own.
    pub fn link_local(&self) -> Ipv6Addr {
        let m = self.0;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Six pairs of lower-case hex digits separated by ':' (the one spelling
/// [`Mac`]'s `Display` writes).
impl FromStr for Mac {
    type Err = VtepError;

    fn from_str(s: &str) -> Result<Mac, VtepError> {
        let bad = || VtepError::Value(Item::Mac);
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            let hex = p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

/// An item of a stored record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    Underlay,
    Vtep,
    Mac,
    Subnet,
    Subnet6,
}

impl Item {
    const ALL: [Item; 5] = [
        Item::Underlay,
        Item::Vtep,
        Item::Mac,
        Item::Subnet,
        Item::Subnet6,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Item::Underlay => "underlay",
            Item::Vtep => "vtep",
            Item::Mac => "mac",
            Item::Subnet => "subnet",
            Item::Subnet6 => "subnet6",
        }
    }
}

/// Why a stored record was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VtepError {
    /// Something that is not a `key=value` item.
    Syntax(String),
    Missing(Item),
    Duplicate(Item),
    /// A value that does not parse, or cannot be what the item says (a multicast
    /// underlay or MAC, an IPv6 VTEP address, an IPv4 `subnet6`).
    Value(Item),
}

impl fmt::Display for VtepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VtepError::Syntax(s) => write!(f, "VTEP record item {s:?} is not key=value"),
            VtepError::Missing(i) => write!(f, "VTEP record lacks {}", i.as_str()),
            VtepError::Duplicate(i) => write!(f, "VTEP record repeats {}", i.as_str()),
            VtepError::Value(i) => write!(f, "VTEP record has an unusable {}", i.as_str()),
        }
    }
}

impl std::error::Error for VtepError {}

/// One node's VTEP in one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VtepRecord {
    /// Where VXLAN packets for this node go: its advertised address.
    pub underlay: IpAddr,
    pub vtep_ip: Ipv4Addr,
    pub mac: Mac,
    pub subnet: Prefix,
    pub subnet6: Option<Prefix>,
}

impl VtepRecord {
    /// What `node`, reachable at `underlay`, publishes for its `share`.
    pub fn new(node: NodeId, underlay: IpAddr, share: &Share) -> VtepRecord {
        VtepRecord {
            underlay,
            vtep_ip: share.vtep_ip,
            mac: Mac::of_node(node),
            subnet: share.subnet,
            subnet6: share.subnet6,
        }
    }

    /// Whether the record describes `share` (its slot's addresses, as this node's
    /// configuration computes them): a record left from an older slot does not.
    pub fn matches(&self, share: &Share) -> bool {
        self.vtep_ip == share.vtep_ip
            && self.subnet == share.subnet
            && self.subnet6 == share.subnet6
    }
}

impl fmt::Display for VtepRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "underlay={} vtep={} mac={} subnet={}",
            self.underlay, self.vtep_ip, self.mac, self.subnet
        )?;
        if let Some(s6) = self.subnet6 {
            write!(f, " subnet6={s6}")?;
        }
        Ok(())
    }
}

/// Whether other nodes can send VXLAN packets to `ip`: not unspecified, multicast,
/// loopback or broadcast. Records with any other underlay are refused as malformed, and
/// an agent whose advertised address is not one refuses to start with an overlay.
pub fn is_underlay(ip: IpAddr) -> bool {
    !(ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_loopback()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()))
}

fn underlay(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    is_underlay(ip).then_some(ip.to_canonical())
}

impl FromStr for VtepRecord {
    type Err = VtepError;

    fn from_str(s: &str) -> Result<VtepRecord, VtepError> {
        let mut given: [Option<&str>; Item::ALL.len()] = [None; Item::ALL.len()];
        for item in s.split(' ') {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| VtepError::Syntax(item.to_owned()))?;
            let Some(known) = Item::ALL.into_iter().find(|i| i.as_str() == key) else {
                continue;
            };
            if given[known as usize].replace(value).is_some() {
                return Err(VtepError::Duplicate(known));
            }
        }
        let get = |i: Item| given[i as usize].ok_or(VtepError::Missing(i));
        let range = |i: Item, text: &str, v4: bool| {
            text.parse::<Prefix>()
                .ok()
                .filter(|p| p.is_ipv4() == v4)
                .ok_or(VtepError::Value(i))
        };
        let mac: Mac = get(Item::Mac)?.parse()?;
        if !mac.is_unicast() {
            return Err(VtepError::Value(Item::Mac));
        }
        Ok(VtepRecord {
            underlay: underlay(get(Item::Underlay)?).ok_or(VtepError::Value(Item::Underlay))?,
            vtep_ip: get(Item::Vtep)?
                .parse()
                .map_err(|_| VtepError::Value(Item::Vtep))?,
            mac,
            subnet: range(Item::Subnet, get(Item::Subnet)?, true)?,
            subnet6: given[Item::Subnet6 as usize]
                .map(|t| range(Item::Subnet6, t, false))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::overlay::config::Network;
    use crate::overlay::share::Slot;

    fn record() -> VtepRecord {
        let net: Network = "name=t,subnet=198.18.0.0/16,subnet6=fd01:b::/64,vtep=198.19.0.0/24"
            .parse()
            .unwrap();
        let share = net.share(Slot(3)).unwrap();
        VtepRecord::new(NodeId(0xab), "198.18.200.1".parse().unwrap(), &share)
    }

    #[test]
    fn the_mac_is_stable_local_and_unicast() {
        // Part of the cluster's format: a node's MAC must not change between versions,
        // or every upgrade resets the devices. (Pinned from this implementation; no
        // independent BLAKE3 tool was at hand to compute it.)
        assert_eq!(Mac::of_node(NodeId(0xab)).to_string(), "ce:2d:f4:2d:0d:50");
        assert_eq!(Mac::of_node(NodeId(0xab)), Mac::of_node(NodeId(0xab)));
        assert_ne!(Mac::of_node(NodeId(1)), Mac::of_node(NodeId(2)));
        assert_eq!(
            Mac([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]).link_local(),
            "fe80::11:22ff:fe33:4455".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn a_record_round_trips_through_its_text() {
        let r = record();
        let text = r.to_string();
        assert!(text.starts_with("underlay=198.18.200.1 vtep=198.19.0.4 mac="));
        assert!(text.ends_with(" subnet=198.18.3.0/24 subnet6=fd01:b:0:0:3::/80"));
        assert_eq!(text.parse::<VtepRecord>().unwrap(), r);
        // A newer version's extra item is skipped.
        assert_eq!(
            format!("{text} colour=blue").parse::<VtepRecord>().unwrap(),
            r
        );
        let v4_only = VtepRecord { subnet6: None, ..r };
        assert_eq!(v4_only.to_string().parse::<VtepRecord>().unwrap(), v4_only);
    }

    #[test]
    fn malformed_records_are_refused_with_the_item() {
        let text = record().to_string();
        let swap = |from: &str, to: &str| text.replace(from, to).parse::<VtepRecord>();
        assert_eq!(
            swap("underlay=198.18.200.1", "underlay=224.0.0.1"),
            Err(VtepError::Value(Item::Underlay))
        );
        assert_eq!(
            swap("underlay=198.18.200.1", "underlay=127.0.0.1"),
            Err(VtepError::Value(Item::Underlay))
        );
        assert_eq!(
            swap("vtep=198.19.0.4", "vtep=fd01::4"),
            Err(VtepError::Value(Item::Vtep))
        );
        assert_eq!(swap("mac=ce", "mac=cf"), Err(VtepError::Value(Item::Mac)));
        assert_eq!(swap("mac=ce", "mac=CE"), Err(VtepError::Value(Item::Mac)));
        assert_eq!(
            swap("mac=ce", "mac=ce:00"),
            Err(VtepError::Value(Item::Mac))
        );
        assert_eq!(
            swap("subnet=198.18.3.0/24", "subnet=fd01::/64"),
            Err(VtepError::Value(Item::Subnet))
        );
        assert_eq!(
            swap(" subnet6=fd01:b:0:0:3::/80", ""),
            Ok(VtepRecord {
                subnet6: None,
                ..record()
            })
        );
        assert_eq!(
            swap("vtep=198.19.0.4 ", ""),
            Err(VtepError::Missing(Item::Vtep))
        );
        assert_eq!(
            swap("vtep=198.19.0.4", "vtep=198.19.0.4 vtep=198.19.0.5"),
            Err(VtepError::Duplicate(Item::Vtep))
        );
        assert_eq!(swap(" ", "  "), Err(VtepError::Syntax(String::new())));
        assert!("".parse::<VtepRecord>().is_err());
    }

    proptest! {
        /// Whatever a peer stores, reading it never panics, and what reads back is
        /// what writing it gives.
        #[test]
        fn any_text_reads_without_panic(text in "[a-z0-9=:./ ]{0,80}") {
            if let Ok(r) = text.parse::<VtepRecord>() {
                prop_assert_eq!(r.to_string().parse::<VtepRecord>(), Ok(r));
            }
        }

        #[test]
        fn every_node_gets_a_local_unicast_mac(node in any::<u64>()) {
            let mac = Mac::of_node(NodeId(node));
            prop_assert!(mac.is_unicast());
            prop_assert_eq!(mac.0[0] & 0x02, 0x02);
            prop_assert_eq!(mac.to_string().parse::<Mac>(), Ok(mac));
        }
    }
}
