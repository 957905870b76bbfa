//! VIPs and backends as users write them and as the KV stores them.
//!
//! A VIP is `proto://host:port`: `tcp://11.1.2.3:80`, `udp://[fd01:c::1]:53`, or a named
//! VIP `tcp://web:80` whose address the cluster assigns ([`super::names`]). Every VIP has
//! one canonical spelling (lower case, IPv6 in brackets, no leading zeros), which is the
//! name of its field in the KV, so two nodes that spell a VIP differently still publish
//! into the same field.
//!
//! A backend is `(node, ip:port, weight)`, stored as the set element
//! `"<node id, 16 hex digits> <ip:port> <weight>"`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use hawser_core::NodeId;

/// Largest backend weight. Bounded so that a VIP's total weight fits the kernel's
/// counters (nftables' `numgen mod`, IPVS's signed weight) with any number of backends.
pub const MAX_WEIGHT: u32 = 10_000;

/// Longest VIP name (it becomes a DNS name, `<name>.vip.<zone>`).
pub const MAX_NAME: usize = 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// The IP protocol number (what IPVS and nftables match on).
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// Where a VIP points: an address the user chose, or a name the cluster gives one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// A VIP: protocol, host, port. Displays as its canonical spelling.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vip {
    pub proto: Proto,
    pub host: Host,
    pub port: u16,
}

/// A VIP with its address resolved: what the kernel is programmed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Service {
    pub proto: Proto,
    pub addr: SocketAddr,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.proto.as_str(), self.addr)
    }
}

/// Why a VIP or backend was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VipError {
    /// Not `proto://host:port`.
    Syntax(String),
    /// A protocol other than tcp or udp.
    Proto(String),
    /// Port missing, not a number, or 0.
    Port(String),
    /// A host that is neither an IP address nor a valid name.
    Host(String),
    /// An address that cannot be a VIP or backend (unspecified, multicast, ...).
    Address(IpAddr),
    /// A weight above [`MAX_WEIGHT`] or not a number.
    Weight(String),
    /// A stored backend element that does not parse.
    Element(String),
}

impl fmt::Display for VipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VipError::Syntax(s) => write!(
                f,
                "{s:?} is not a VIP: write proto://ip:port or proto://name:port \
                 (e.g. tcp://11.1.2.3:80, udp://[fd01:c::1]:53, tcp://web:80)"
            ),
            VipError::Proto(p) => write!(f, "protocol {p:?}: use tcp or udp"),
            VipError::Port(p) => write!(f, "port {p:?}: use a number from 1 to 65535"),
            VipError::Host(h) => write!(
                f,
                "host {h:?}: use an IP address or a name of 1 to {MAX_NAME} letters, digits \
                 and '-', starting with a letter"
            ),
            VipError::Address(a) => write!(
                f,
                "address {a} cannot be used (unspecified, loopback, multicast or broadcast)"
            ),
            VipError::Weight(w) => write!(f, "weight {w:?}: use a number from 0 to {MAX_WEIGHT}"),
            VipError::Element(e) => write!(f, "stored backend {e:?} does not parse"),
        }
    }
}

impl std::error::Error for VipError {}

fn usable(ip: IpAddr) -> Result<IpAddr, VipError> {
    let bad = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if bad || ip.is_loopback() {
        return Err(VipError::Address(ip));
    }
    // One spelling per address: an IPv4-mapped IPv6 address is the IPv4 address.
    Ok(ip.to_canonical())
}

/// A VIP name: a DNS label (letters, digits, '-'; starts with a letter), lower-cased.
fn name(s: &str) -> Result<String, VipError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(VipError::Host(s.to_owned()))
    }
}

fn port(s: &str) -> Result<u16, VipError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 && !s.starts_with('0') => Ok(p),
        _ => Err(VipError::Port(s.to_owned())),
    }
}

impl FromStr for Vip {
    type Err = VipError;

    fn from_str(s: &str) -> Result<Vip, VipError> {
        let syntax = || VipError::Syntax(s.to_owned());
        let (proto, rest) = s.split_once("://").ok_or_else(syntax)?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return Err(VipError::Proto(proto.to_owned())),
        };
        if let Ok(addr) = rest.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(VipError::Port("0".into()));
            }
            return Ok(Vip {
                proto,
                host: Host::Ip(usable(addr.ip())?),
                port: addr.port(),
            });
        }
        let (host, p) = rest.rsplit_once(':').ok_or_else(syntax)?;
        let port = port(p)?;
        if host.starts_with('[') || host.parse::<IpAddr>().is_ok() || host.contains(':') {
            // An address that did not parse with its port (or an IPv6 one without brackets).
            return Err(VipError::Host(host.to_owned()));
        }
        Ok(Vip {
            proto,
            host: Host::Name(name(host)?),
            port,
        })
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = self.proto.as_str();
        match &self.host {
            Host::Ip(ip) => write!(f, "{proto}://{}", SocketAddr::new(*ip, self.port)),
            Host::Name(n) => write!(f, "{proto}://{n}:{}", self.port),
        }
    }
}

impl Vip {
    /// The name of a named VIP.
    pub fn name(&self) -> Option<&str> {
        match &self.host {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }
}

/// One backend of a VIP, as a node published it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    /// The node that published it (and runs it): its reachability gates the backend.
    pub node: NodeId,
    pub addr: SocketAddr,
    /// Share of new connections; 0 = draining (open connections stay, no new ones).
    pub weight: u32,
}

impl Backend {
    /// A backend for tests: node `node` at `addr` with `weight`.
    #[cfg(test)]
    pub(crate) fn test(node: u64, addr: &str, weight: u32) -> Backend {
        Backend {
            node: NodeId(node),
            addr: addr.parse().unwrap(),
            weight,
        }
    }
}

/// Parse a backend address given by a user (`198.18.1.2:8080`, `[2001:db8::1]:80`).
pub fn backend_addr(s: &str) -> Result<SocketAddr, VipError> {
    let addr: SocketAddr = s.parse().map_err(|_| VipError::Syntax(s.to_owned()))?;
    if addr.port() == 0 {
        return Err(VipError::Port("0".into()));
    }
    Ok(SocketAddr::new(usable(addr.ip())?, addr.port()))
}

/// Parse a weight given by a user.
pub fn weight(s: &str) -> Result<u32, VipError> {
    match s.parse::<u32>() {
        Ok(w) if w <= MAX_WEIGHT => Ok(w),
        _ => Err(VipError::Weight(s.to_owned())),
    }
}

impl Backend {
    /// The set element this backend is stored as.
    pub fn element(&self) -> String {
        format!("{:016x} {} {}", self.node.0, self.addr, self.weight)
    }

    /// Parse a stored element (from any node: refused, not trusted, if malformed).
    pub fn from_element(e: &str) -> Result<Backend, VipError> {
        let bad = || VipError::Element(e.to_owned());
        let mut parts = e.split(' ');
        let (Some(node), Some(addr), Some(w), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if node.len() != 16 {
            return Err(bad());
        }
        let node = NodeId(u64::from_str_radix(node, 16).map_err(|_| bad())?);
        let addr = backend_addr(addr).map_err(|_| bad())?;
        let weight = weight(w).map_err(|_| bad())?;
        Ok(Backend { node, addr, weight })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_parse_to_one_canonical_spelling() {
        for (input, canonical) in [
            ("tcp://11.1.2.3:80", "tcp://11.1.2.3:80"),
            ("TCP://11.1.2.3:80", "tcp://11.1.2.3:80"),
            ("udp://[fd01:c::1]:53", "udp://[fd01:c::1]:53"),
            ("udp://[fd01:000c:0::1]:53", "udp://[fd01:c::1]:53"),
            ("tcp://[::ffff:11.1.2.3]:80", "tcp://11.1.2.3:80"),
            ("tcp://Web-1:8080", "tcp://web-1:8080"),
        ] {
            let vip: Vip = input.parse().unwrap();
            assert_eq!(vip.to_string(), canonical, "{input}");
            assert_eq!(canonical.parse::<Vip>().unwrap(), vip);
        }
    }

    #[test]
    fn bad_vips_are_refused_with_a_reason() {
        let err = |s: &str| s.parse::<Vip>().unwrap_err();
        assert!(matches!(err("11.1.2.3:80"), VipError::Syntax(_)));
        assert!(matches!(err("sctp://11.1.2.3:80"), VipError::Proto(_)));
        assert!(matches!(err("tcp://11.1.2.3:0"), VipError::Port(_)));
        assert!(matches!(err("tcp://web:99999"), VipError::Port(_)));
        assert!(matches!(err("tcp://web:080"), VipError::Port(_)));
        assert!(matches!(err("tcp://web"), VipError::Syntax(_)));
        assert!(matches!(err("tcp://fd01::1:80"), VipError::Host(_)));
        assert!(matches!(err("tcp://1web:80"), VipError::Host(_)));
        assert!(matches!(err("tcp://we_b:80"), VipError::Host(_)));
        assert!(matches!(err("tcp://web-:80"), VipError::Host(_)));
        assert!(matches!(
            err(&format!("tcp://{}:80", "a".repeat(64))),
            VipError::Host(_)
        ));
        assert!(matches!(err("tcp://0.0.0.0:80"), VipError::Address(_)));
        assert!(matches!(err("tcp://224.0.0.1:80"), VipError::Address(_)));
        assert!(matches!(err("tcp://127.0.0.1:80"), VipError::Address(_)));
        assert!(matches!(err("tcp://[::]:80"), VipError::Address(_)));
        assert!(!err("x").to_string().is_empty());
    }

    #[test]
    fn backends_round_trip_through_their_element() {
        let b = Backend {
            node: NodeId(0xab),
            addr: "[2001:db8::1]:8080".parse().unwrap(),
            weight: 7,
        };
        assert_eq!(b.element(), "00000000000000ab [2001:db8::1]:8080 7");
        assert_eq!(Backend::from_element(&b.element()).unwrap(), b);
        for bad in [
            "",
            "ab 198.18.1.2:80 1",
            "00000000000000ab 198.18.1.2:80",
            "00000000000000ab 198.18.1.2:80 1 x",
            "00000000000000zz 198.18.1.2:80 1",
            "00000000000000ab 198.18.1.2 1",
            "00000000000000ab 198.18.1.2:80 10001",
            "00000000000000ab 0.0.0.0:80 1",
        ] {
            assert!(Backend::from_element(bad).is_err(), "{bad:?}");
        }
    }
}
