//! Who a node is and where it can be reached.

use core::fmt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A node's identity: 64 bits, compact enough to store by the thousand in every view and
/// table. The simulator numbers its nodes; a real agent derives its id from its name
/// ([`NodeId::from_name`]) so that ids need no coordination.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl NodeId {
    /// A stable id for a node name: the first 8 bytes of SHA-256(name). Collisions among
    /// 10,000 names have a probability around 3e-12.
    pub fn from_name(name: &str) -> NodeId {
        let digest = Sha256::digest(name.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        NodeId(u64::from_be_bytes(bytes))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A short string a peer tells us and we keep: never empty, at most `MAX` bytes, so a
/// hostile peer cannot make us store megabytes. The bound is enforced by the decoder
/// itself, so no message can carry an unchecked one.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BoundedStr<const MAX: usize>(String);

/// Where a node accepts links: opaque to core. A real agent uses `ip:port`, the simulator
/// uses the node's name (`n17`).
pub type Addr = BoundedStr<MAX_ADDR_LEN>;

/// A node's human name (`--name` of a real agent, `n17` in the simulator), published in
/// global membership so every node can show whom an id belongs to.
pub type Name = BoundedStr<MAX_NAME_LEN>;

/// Longest address a peer may advertise (a DNS name plus a port fits comfortably).
pub const MAX_ADDR_LEN: usize = 255;

/// Longest node name (a host name fits).
pub const MAX_NAME_LEN: usize = 64;

impl<const MAX: usize> BoundedStr<MAX> {
    /// `None` when `s` is empty or longer than `MAX` bytes.
    pub fn new(s: impl Into<String>) -> Option<Self> {
        let s = s.into();
        (!s.is_empty() && s.len() <= MAX).then_some(BoundedStr(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedStr<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let len = s.len();
        BoundedStr::new(s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "a string of {len} bytes where 1 to {MAX} are allowed"
            ))
        })
    }
}

impl<const MAX: usize> fmt::Debug for BoundedStr<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> fmt::Display for BoundedStr<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_names_are_stable_and_distinct() {
        assert_eq!(NodeId::from_name("n1"), NodeId::from_name("n1"));
        assert_ne!(NodeId::from_name("n1"), NodeId::from_name("n2"));
    }

    #[test]
    fn addresses_are_bounded() {
        assert!(Addr::new("").is_none());
        assert!(Addr::new("x".repeat(MAX_ADDR_LEN + 1)).is_none());
        assert_eq!(
            Addr::new("127.0.0.1:7600").unwrap().as_str(),
            "127.0.0.1:7600"
        );
        assert!(Name::new("x".repeat(MAX_NAME_LEN + 1)).is_none());
    }

    #[test]
    fn the_decoder_refuses_an_empty_or_overlong_string() {
        let long = crate::wire::encode(&"x".repeat(MAX_NAME_LEN + 1));
        assert!(crate::wire::decode::<Name>(&long).is_err());
        assert!(crate::wire::decode::<Name>(&crate::wire::encode(&"")).is_err());
        let ok = crate::wire::encode(&"n1");
        assert_eq!(crate::wire::decode::<Name>(&ok).unwrap().as_str(), "n1");
    }
}
