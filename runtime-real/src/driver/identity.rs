//! Who a node is, for any protocol: its name (its id is derived from it), the address it
//! advertises and the cluster cookie — and the node built from them.

use std::fmt;

use hawser_core::id::MAX_NAME_LEN;
use hawser_core::{Addr, Cookie, Identity, LinkConfig, Name, Node, NodeId, Protocol, RngSeed};

/// Why a node could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeError {
    /// The name is empty or longer than a name may be.
    Name { name: String },
    /// The link settings are out of range (core's message says which).
    Link(String),
    /// The protocol's settings are out of range (its message says which).
    Protocol(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Name { name } => write!(f, "name {name:?}: use 1 to {MAX_NAME_LEN} bytes"),
            NodeError::Link(e) => write!(f, "link settings: {e}"),
            NodeError::Protocol(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for NodeError {}

/// The node `name` runs: `protocol` over links that advertise `advertise` and prove
/// `cookie`. The RNG seed is the caller's: a real node draws it from the OS once
/// ([`super::os_seed`]); a test may fix it.
pub fn build_node<P: Protocol>(
    name: &str,
    advertise: Addr,
    cookie: Cookie,
    link: LinkConfig,
    seed: impl Into<RngSeed>,
    protocol: P,
) -> Result<Node<P>, NodeError> {
    let identity = Identity {
        id: NodeId::from_name(name),
        name: Name::new(name).ok_or_else(|| NodeError::Name { name: name.into() })?,
        addr: advertise,
        cookie,
    };
    Node::new(link, identity, seed, protocol).map_err(NodeError::Link)
}
