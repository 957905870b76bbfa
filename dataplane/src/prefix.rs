//! Address ranges (`11.0.0.0/8`, `fd01:c::/64`): parsed strictly, split into equal
//! sub-ranges, and indexed by host.
//!
//! Shared by the load balancer (the ranges named VIPs take addresses from) and the
//! overlay (the overlay's address space, each node's share of it, the VTEP range), so
//! that both refuse the same malformed ranges with the same words.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range with its host bits zero and at least 4 addresses (a network, a
/// broadcast and two hosts), so that every range has a usable host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why a range was refused; each variant holds the text as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// Not `ADDR/LEN` with an IP address and a decimal length.
    Syntax(String),
    /// A length of 0, or one that leaves fewer than 4 addresses.
    Length(String),
    /// Bits set after the length (`11.0.0.1/8`).
    HostBits(String),
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (text, why) = match self {
            PrefixError::Syntax(s) => (s, "write ADDR/LEN"),
            PrefixError::Length(s) => (s, "the length must be 1 to 30 (IPv4) or 1 to 126 (IPv6)"),
            PrefixError::HostBits(s) => (s, "the bits after the length must be zero"),
        };
        write!(
            f,
            "{text:?} is not a usable address range: {why} (e.g. 11.0.0.0/8, fd01:c::/64)"
        )
    }
}

impl std::error::Error for PrefixError {}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_owned());
        let (addr, len) = s.split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let len: u8 = len.parse().map_err(|_| PrefixError::Length(s.to_owned()))?;
        Prefix::new(addr, len).ok_or_else(|| {
            if len == 0 || len > bits(addr) - 2 {
                PrefixError::Length(s.to_owned())
            } else {
                PrefixError::HostBits(s.to_owned())
            }
        })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `family` whose number is `n` (`n` fits the family: callers stay
/// inside a range of it).
fn from_u128(family: IpAddr, n: u128) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

impl Prefix {
    /// The range `addr/len`, or `None` if the length is 0, leaves fewer than 4
    /// addresses, or `addr` has bits set after it.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        if len == 0 || len > bits(addr) - 2 {
            return None;
        }
        let p = Prefix { addr, len };
        (to_u128(addr) & (p.size() - 1) == 0).then_some(p)
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The first address (the network's).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Addresses in the range (at most 2^127, so it fits).
    fn size(&self) -> u128 {
        1u128 << (bits(self.addr) - self.len)
    }

    /// How many usable hosts: every address but the first (network) and last
    /// (broadcast).
    pub fn hosts(&self) -> u128 {
        self.size() - 2
    }

    /// The `i`-th usable host (`i` from 0), or `None` past the last.
    pub fn host(&self, i: u128) -> Option<IpAddr> {
        (i < self.hosts()).then(|| from_u128(self.addr, to_u128(self.addr) + 1 + i))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4() && to_u128(ip) & !(self.size() - 1) == to_u128(self.addr)
    }

    /// Whether the two ranges share an address (one holds the other).
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// How many ranges of length `len` this one splits into: 0 if `len` is shorter
    /// than this range's or leaves fewer than 4 addresses.
    pub fn subnets(&self, len: u8) -> u128 {
        if len < self.len || len > bits(self.addr) - 2 {
            return 0;
        }
        // At most 2^125 (a /1 split into /126s): the shift cannot overflow.
        1u128 << (len - self.len)
    }

    /// The `i`-th range of length `len` inside this one (`i` from 0), or `None` past
    /// the last.
    pub fn subnet(&self, len: u8, i: u128) -> Option<Prefix> {
        if i >= self.subnets(len) {
            return None;
        }
        let step = 1u128 << (bits(self.addr) - len);
        Some(Prefix {
            addr: from_u128(self.addr, to_u128(self.addr) + i * step),
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_refuse_with_a_reason() {
        let r = p("11.0.0.0/8");
        assert!(r.contains("11.200.3.4".parse().unwrap()));
        assert!(!r.contains("12.0.0.1".parse().unwrap()));
        assert!(!r.contains("fd01:c::1".parse().unwrap()));
        let err = |s: &str| s.parse::<Prefix>().unwrap_err();
        assert!(matches!(err("11.0.0.1/8"), PrefixError::HostBits(_)));
        assert!(matches!(err("11.0.0.0"), PrefixError::Syntax(_)));
        assert!(matches!(err("x/8"), PrefixError::Syntax(_)));
        assert!(matches!(err("11.0.0.0/+8"), PrefixError::Syntax(_)));
        assert!(matches!(err("11.0.0.0/31"), PrefixError::Length(_)));
        assert!(matches!(err("11.0.0.0/0"), PrefixError::Length(_)));
        assert!(matches!(err("11.0.0.0/999"), PrefixError::Length(_)));
        assert!(matches!(err("fd01:c::/127"), PrefixError::Length(_)));
        assert!(err("11.0.0.1/8").to_string().contains("11.0.0.1/8"));
    }

    #[test]
    fn hosts_skip_the_network_and_broadcast_addresses() {
        let r = p("198.18.0.0/30");
        assert_eq!(r.hosts(), 2);
        assert_eq!(r.host(0), Some("198.18.0.1".parse().unwrap()));
        assert_eq!(r.host(1), Some("198.18.0.2".parse().unwrap()));
        assert_eq!(r.host(2), None);
        assert_eq!(p("fd01:c::/64").host(0), Some("fd01:c::1".parse().unwrap()));
    }

    #[test]
    fn a_range_splits_into_equal_subnets() {
        let r = p("198.18.0.0/16");
        assert_eq!(r.subnets(24), 256);
        assert_eq!(r.subnet(24, 0), Some(p("198.18.0.0/24")));
        assert_eq!(r.subnet(24, 255), Some(p("198.18.255.0/24")));
        assert_eq!(r.subnet(24, 256), None);
        assert_eq!(r.subnets(15), 0, "shorter than the range");
        assert_eq!(r.subnets(31), 0, "fewer than 4 addresses");
        assert_eq!(r.subnets(16), 1);
        let v6 = p("fd01:b::/64");
        assert_eq!(v6.subnet(80, 5), Some(p("fd01:b:0:0:5::/80")));
        assert_eq!(p("fd00::/8").subnets(126), 1 << 118);
        assert!(r.overlaps(&p("198.18.7.0/24")));
        assert!(p("198.18.7.0/24").overlaps(&r));
        assert!(!r.overlaps(&p("198.19.0.0/16")));
        assert!(!r.overlaps(&p("fd01:b::/64")));
    }
}
