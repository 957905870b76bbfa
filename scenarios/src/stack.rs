//! The protocol stack scenario files run against: hawser's `Stack`, observed through
//! its protocols' read-only accessors.

use std::collections::BTreeSet;
use std::error::Error;

use hawser_core::crdt::{Map, MapOp};
use hawser_core::gm::GmEvent;
use hawser_core::kv::{KvConfig, KvEvent, Ticket};
use hawser_core::membership::{MembershipConfig, MembershipEvent};
use hawser_core::routing::Routing;
use hawser_core::stack::{Stack, StackConfig, StackEvent, StackTimer};
use hawser_core::{Addr, Ctx, NodeId, Snapshot};
use hawser_sim::{TraceField, TraceNote};

use crate::file::ExpectKind;
use crate::invariant::Violation;
use crate::target::{Target, TargetError};

/// `[config]` overrides as the stack's config: membership fields at the top level (the
/// format's first settings, on top of the detector profile `profile = "lan" | "fast"`
/// names, `lan` by default), each other protocol's in its own table (`[config.kv]`,
/// `[config.gm]`, `[config.multicast]`). Unknown names are refused, every part validated.
/// The error is each protocol's own (or the TOML reader's).
fn stack_config(config: &toml::Table) -> Result<StackConfig, Box<dyn Error + Send + Sync>> {
    let mut rest = config.clone();
    let kv: KvConfig = section(&mut rest, "kv")?;
    let gm = section(&mut rest, "gm")?;
    let multicast = section(&mut rest, "multicast")?;
    let membership = MembershipConfig::from_overrides(None, toml::Value::Table(rest))?;
    membership.validate()?;
    kv.validate()?;
    let config = StackConfig {
        membership,
        kv,
        gm,
        multicast,
    };
    config.validate()?;
    Ok(config)
}

/// Take the table `name` out of `config` and read it (defaults where it is absent).
fn section<T: serde::de::DeserializeOwned + Default>(
    config: &mut toml::Table,
    name: &str,
) -> Result<T, String> {
    match config.remove(name) {
        None => Ok(T::default()),
        Some(t @ toml::Value::Table(_)) => t.try_into().map_err(|e| format!("{name}: {e}")),
        Some(other) => Err(format!("{name} must be a table, not {}", other.type_str())),
    }
}

impl Target for Stack {
    fn check_config(config: &toml::Table) -> Result<(), TargetError> {
        stack_config(config)
            .map(|_| ())
            .map_err(TargetError::Config)
    }

    fn build(_node: usize, config: &toml::Table, contacts: &[Addr], snapshot: &Snapshot) -> Self {
        let cfg = stack_config(config).expect("checked before the run");
        // Every node gets the full list, its own address included: that is how a contact
        // knows it is one (it joins the other contacts and admits their joins unthrottled).
        Stack::new(cfg, contacts.to_vec(), snapshot).expect("checked before the run")
    }

    fn supports(kind: ExpectKind) -> bool {
        matches!(
            kind,
            ExpectKind::OverlayConnected
                | ExpectKind::ViewsBounded
                | ExpectKind::NoFalsePositives
                | ExpectKind::KvConverged
                | ExpectKind::Detected
                | ExpectKind::MembershipAgrees
                | ExpectKind::MulticastDelivered
                | ExpectKind::KvOpVisible
                | ExpectKind::VipBackends
                | ExpectKind::SubnetsUnique
        )
    }

    fn active_view(&self) -> Vec<NodeId> {
        self.membership().active_view()
    }

    fn check_views(&self, me: NodeId) -> Result<(), Violation> {
        self.membership().check_views(me).map_err(Violation)
    }

    fn views_generation(&self) -> Option<u64> {
        Some(self.membership_runs())
    }

    fn kv_apply(
        &mut self,
        ctx: &mut Ctx<'_, StackTimer, StackEvent>,
        key: &str,
        op: &MapOp,
    ) -> Result<Ticket, TargetError> {
        Ok(self.kv_op(ctx, key, op)?)
    }

    fn kv_map(&self, key: &str) -> Option<&Map> {
        self.kv().get(key)
    }

    fn kv_keys(&self, prefix: &str) -> Vec<String> {
        self.kv().scan(prefix).map(|(k, _)| k.clone()).collect()
    }

    fn forget_after_ms(&self) -> Option<u64> {
        Some(self.gm().config().forget_after_ms)
    }

    fn kv_seen(&self, key: &str, ticket: Ticket) -> bool {
        self.kv().seen(key, ticket)
    }

    fn kv_value(&self, key: &str) -> serde_json::Value {
        self.kv()
            .get(key)
            .map_or_else(|| serde_json::json!({}), |m| m.to_json())
    }

    fn kv_digest(&self) -> Vec<u64> {
        self.kv().digest().to_vec()
    }

    fn kv_changed(event: &StackEvent) -> Option<&str> {
        match event {
            StackEvent::Kv(KvEvent::Changed { key, .. }) => Some(key),
            _ => None,
        }
    }

    /// KV acknowledgements, multicast deliveries, membership's neighbour changes and
    /// global membership's reachability changes. (Not every table change: a join storm
    /// of 1,000 nodes makes millions.)
    fn trace_event(event: &StackEvent) -> Option<TraceNote> {
        let node = |id: &NodeId| TraceField::Node(id.0 as usize);
        Some(match event {
            StackEvent::Membership(e) => crate::membership::trace_event(e),
            StackEvent::Kv(KvEvent::Committed { ticket, key, .. }) => (
                "kv.ack",
                vec![
                    ("key", TraceField::Str(key.clone())),
                    ("ticket", TraceField::Str(format!("{:?}", ticket.0))),
                ],
            ),
            StackEvent::Multicast(d) => (
                "multicast.deliver",
                vec![
                    ("origin", node(&d.origin)),
                    ("seq", TraceField::Num(d.seq)),
                    ("topic", TraceField::Str(d.topic.clone())),
                    ("size", TraceField::Num(d.payload.len() as u64)),
                ],
            ),
            StackEvent::Gm(GmEvent::Reachable(p)) => ("gm.reachable", vec![("peer", node(p))]),
            StackEvent::Gm(GmEvent::Unreachable(p)) => ("gm.unreachable", vec![("peer", node(p))]),
            StackEvent::Gm(GmEvent::Forgotten(p)) => ("gm.forgotten", vec![("peer", node(p))]),
            _ => return None,
        })
    }

    fn considers_unreachable(&self, peer: NodeId) -> bool {
        !self.gm().is_reachable(peer)
    }

    fn unreachable_event(event: &StackEvent) -> Option<NodeId> {
        match event {
            StackEvent::Gm(GmEvent::Unreachable(peer)) => Some(*peer),
            _ => None,
        }
    }

    fn reachable_set(&self) -> Option<&BTreeSet<NodeId>> {
        Some(self.gm().reachable())
    }

    fn reachable_digest(&self) -> Option<u64> {
        Some(self.gm().routing().map_or(0, Routing::reachable_digest))
    }

    fn multicast(
        &mut self,
        ctx: &mut Ctx<'_, StackTimer, StackEvent>,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<(NodeId, u64), TargetError> {
        Ok(Stack::multicast(self, ctx, topic, payload)?)
    }

    fn multicast_delivered(event: &StackEvent) -> Option<(NodeId, u64)> {
        match event {
            StackEvent::Multicast(d) => Some((d.origin, d.seq)),
            _ => None,
        }
    }

    fn multicast_copies(&self) -> u64 {
        self.multicast_state().counters().copies_sent
    }

    fn lb_vips(
        &self,
    ) -> Option<
        std::collections::BTreeMap<hawser_dataplane::lb::Vip, Vec<hawser_dataplane::lb::Backend>>,
    > {
        let mut catalog = hawser_dataplane::lb::Catalog::default();
        for (k, v) in self.kv().scan(hawser_dataplane::lb::kv::PREFIX) {
            catalog.update(k, Some(v));
        }
        Some(catalog.vips())
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
