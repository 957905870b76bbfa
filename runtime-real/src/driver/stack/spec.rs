//! What defines the node an agent runs: hawser's [`Stack`] over authenticated links.

use std::time::Duration;

use hawser_core::gm::GmConfig;
use hawser_core::membership::MembershipConfig;
use hawser_core::stack::{Stack, StackConfig};
use hawser_core::{Addr, Cookie, LinkConfig, Node, RngSeed, Snapshot};

use crate::driver::{NodeError, build_node};

/// Everything that defines the node an agent runs.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's name; its id is derived from it ([`hawser_core::NodeId::from_name`]).
    pub name: String,
    /// The address peers dial (carried in the link handshake).
    pub advertise: Addr,
    pub cookie: Cookie,
    /// Where to join (every node is given the same list; a contact skips itself).
    pub contacts: Vec<Addr>,
    pub membership: MembershipConfig,
    pub max_frame: usize,
    /// How long a failed or left member is kept before it is forgotten (global
    /// membership's `forget_after_ms`).
    pub reap_after: Duration,
}

impl NodeSpec {
    /// The node, rebuilt from what the store held. The RNG seed is the caller's: the
    /// agent draws it from the OS once ([`crate::driver::os_seed`]); a test may fix it.
    pub fn build(
        &self,
        recovered: &Snapshot,
        seed: impl Into<RngSeed>,
    ) -> Result<Node<Stack>, NodeError> {
        let config = StackConfig {
            membership: self.membership.clone(),
            gm: GmConfig {
                forget_after_ms: u64::try_from(self.reap_after.as_millis()).unwrap_or(u64::MAX),
                ..GmConfig::default()
            },
            ..StackConfig::default()
        };
        let stack = Stack::new(config, self.contacts.clone(), recovered)
            .map_err(|e| NodeError::Protocol(e.to_string()))?;
        let link = LinkConfig {
            max_frame: self.max_frame,
            ..LinkConfig::default()
        };
        build_node(
            &self.name,
            self.advertise.clone(),
            self.cookie.clone(),
            link,
            seed,
            stack,
        )
    }
}
