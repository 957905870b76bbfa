//! The protocol stack scenario files run against: hawser's `Stack`, observed through
//! its protocols' read-only accessors.

use hawser_core::membership::{MembershipConfig, MembershipEvent};
use hawser_core::stack::{Stack, StackConfig, StackEvent};
use hawser_core::{Addr, NodeId, Snapshot};

use crate::file::ExpectKind;
use crate::target::Target;

/// `[config]` overrides as a membership config: field names are `MembershipConfig`'s,
/// unknown ones are refused, and the result is validated.
fn membership_config(config: &toml::Table) -> Result<MembershipConfig, String> {
    let cfg: MembershipConfig = toml::Value::Table(config.clone())
        .try_into()
        .map_err(|e| e.to_string())?;
    cfg.validate()?;
    Ok(cfg)
}

impl Target for Stack {
    fn check_config(config: &toml::Table) -> Result<(), String> {
        membership_config(config).map(|_| ())
    }

    fn build(_node: usize, config: &toml::Table, contacts: &[Addr], snapshot: &Snapshot) -> Self {
        let cfg = membership_config(config).expect("checked before the run");
        // Every node gets the full list, its own address included: that is how a contact
        // knows it is one (it joins the other contacts and admits their joins unthrottled).
        Stack::new(StackConfig { membership: cfg }, contacts.to_vec(), snapshot)
            .expect("checked before the run")
    }

    fn supports(kind: ExpectKind) -> bool {
        matches!(
            kind,
            ExpectKind::OverlayConnected | ExpectKind::ViewsBounded | ExpectKind::NoFalsePositives
        )
    }

    fn active_view(&self) -> Vec<NodeId> {
        self.membership().active_view()
    }

    fn check_views(&self, me: NodeId) -> Result<(), String> {
        self.membership().check_views(me)
    }

    fn evicted(event: &StackEvent) -> Option<NodeId> {
        match event {
            StackEvent::Membership(MembershipEvent::NeighborDown { peer, reason })
                if reason.is_eviction() =>
            {
                Some(*peer)
            }
            _ => None,
        }
    }
}
