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
        write!(f, "#{:x}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where a node accepts links: opaque to core. A real agent uses `ip:port`, the simulator
/// uses the node's name (`n17`). Bounded so a hostile peer cannot make us store megabytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Addr(String);

/// Longest address a peer may advertise (a DNS name plus a port fits comfortably).
pub const MAX_ADDR_LEN: usize = 255;

impl Addr {
    /// `None` when `s` is empty or longer than [`MAX_ADDR_LEN`].
    pub fn new(s: impl Into<String>) -> Option<Addr> {
        let s = s.into();
        (!s.is_empty() && s.len() <= MAX_ADDR_LEN).then_some(Addr(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Addr {
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
    }
}
