//! Membership alone as a scenario target (`stack = "membership"`): the overlay without
//! the protocols above it, for scale tests of the overlay itself.

use hawser_core::membership::{Membership, MembershipConfig, MembershipEvent};
use hawser_core::{Addr, NodeId, Snapshot};
use hawser_sim::{TraceField, TraceNote};

use crate::file::ExpectKind;
use crate::invariant::Violation;
use crate::target::{Target, TargetError};

fn config(table: &toml::Table) -> Result<MembershipConfig, String> {
    let cfg = MembershipConfig::from_overrides(None, toml::Value::Table(table.clone()))?;
    cfg.validate()?;
    Ok(cfg)
}

impl Target for Membership {
    fn check_config(table: &toml::Table) -> Result<(), TargetError> {
        config(table)
            .map(|_| ())
            .map_err(|e| TargetError::Config(e.into()))
    }

    fn build(_node: usize, table: &toml::Table, contacts: &[Addr], snapshot: &Snapshot) -> Self {
        let cfg = config(table).expect("checked before the run");
        Membership::new(cfg, contacts.to_vec(), snapshot).expect("checked before the run")
    }

    fn supports(kind: ExpectKind) -> bool {
        matches!(
            kind,
            ExpectKind::OverlayConnected | ExpectKind::ViewsBounded | ExpectKind::NoFalsePositives
        )
    }

    fn active_view(&self) -> Vec<NodeId> {
        Membership::active_view(self)
    }

    fn check_views(&self, me: NodeId) -> Result<(), Violation> {
        Membership::check_views(self, me).map_err(Violation)
    }

    fn trace_event(event: &MembershipEvent) -> Option<TraceNote> {
        Some(trace_event(event))
    }

    fn evicted(event: &MembershipEvent) -> Option<NodeId> {
        match event {
            MembershipEvent::NeighborDown { peer, reason } if reason.is_eviction() => Some(*peer),
            _ => None,
        }
    }
}

/// A membership event as the trace log names it (for both targets that run membership).
pub(crate) fn trace_event(event: &MembershipEvent) -> TraceNote {
    let peer = |p: &NodeId| ("peer", TraceField::Node(p.0 as usize));
    match event {
        MembershipEvent::NeighborUp(p) => ("membership.neighbor_up", vec![peer(p)]),
        MembershipEvent::NeighborDown { peer: p, reason } => (
            "membership.neighbor_down",
            vec![peer(p), ("reason", TraceField::Str(format!("{reason:?}")))],
        ),
        MembershipEvent::Suspected(p) => ("membership.suspected", vec![peer(p)]),
        MembershipEvent::Cleared(p) => ("membership.cleared", vec![peer(p)]),
    }
}
