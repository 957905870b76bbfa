//! What a protocol must offer to be run from scenario files.

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt;

use hawser_core::crdt::{Map, MapOp, ParseError};
use hawser_core::kv::{KvError, Ticket};
use hawser_core::multicast::MulticastError;
use hawser_core::{Addr, Ctx, NodeId, Protocol, Snapshot};
use hawser_sim::TraceNote;

use crate::file::ExpectKind;
use crate::invariant::Violation;

/// Why a target refused what a scenario asked of it. Its text is what the report (and
/// the trace log) says after "refused:".
#[derive(Debug)]
pub enum TargetError {
    /// The scenario's `[config]` is not what the target takes. The target's own error,
    /// whatever its type: its text names the field and what is wrong.
    Config(Box<dyn Error + Send + Sync>),
    /// The target has no KV: it refuses every `kv-op` step and overlay write.
    NoKv,
    /// The target has no multicast: it refuses every `multicast` step.
    NoMulticast,
    /// A `kv-op` step's JSON is not an op.
    BadOp(ParseError),
    /// The KV refused the op; nothing was applied.
    Kv(KvError),
    /// Multicast refused the message; nothing was sent.
    Multicast(MulticastError),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Config(e) => e.fmt(f),
            TargetError::NoKv => f.write_str("this stack has no KV"),
            TargetError::NoMulticast => f.write_str("this stack has no multicast"),
            TargetError::BadOp(e) => e.fmt(f),
            TargetError::Kv(e) => e.fmt(f),
            TargetError::Multicast(e) => e.fmt(f),
        }
    }
}

impl Error for TargetError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            TargetError::Config(e) => Some(&**e),
            TargetError::NoKv | TargetError::NoMulticast => None,
            TargetError::BadOp(e) => Some(e),
            TargetError::Kv(e) => Some(e),
            TargetError::Multicast(e) => Some(e),
        }
    }
}

impl From<KvError> for TargetError {
    fn from(e: KvError) -> Self {
        TargetError::Kv(e)
    }
}

impl From<MulticastError> for TargetError {
    fn from(e: MulticastError) -> Self {
        TargetError::Multicast(e)
    }
}

/// A protocol the scenario runner can build, configure and observe. Observers are
/// read-only; an expectation kind the target cannot answer is refused before the run
/// starts (see [`Target::supports`]).
pub trait Target: Protocol + Sized + 'static {
    /// Check the scenario's `[config]` overrides (field names are the protocol config's).
    /// The error ([`TargetError::Config`]) names the field and what is wrong.
    fn check_config(config: &toml::Table) -> Result<(), TargetError>;

    /// Build node `i`'s protocol from the (checked) overrides, the contacts' addresses and
    /// what its disk holds.
    fn build(i: usize, config: &toml::Table, contacts: &[Addr], snapshot: &Snapshot) -> Self;

    /// Can this target answer expectations of `kind`?
    fn supports(kind: ExpectKind) -> bool;

    /// The peers this node keeps as overlay neighbours (for `overlay-connected` and the
    /// view metrics).
    fn active_view(&self) -> Vec<NodeId>;

    /// `Err(why)` if the views of node `me` break their bounds or invariants.
    fn check_views(&self, me: NodeId) -> Result<(), Violation>;

    /// A number that moves whenever the membership views may have changed (`None`: no
    /// such number, the views are read again after every event). With it, the runner
    /// reads a node's views again only when it moved (see `viewcache`).
    fn views_generation(&self) -> Option<u64> {
        None
    }

    /// The peer an event says this node evicted for silence, if it is such an event.
    fn evicted(event: &Self::Event) -> Option<NodeId>;

    /// Apply a KV op on this node (a write of an `[[overlay]]` member). `Err(why)` when
    /// the op is refused. A target without a KV (the default) refuses every op
    /// ([`TargetError::NoKv`]), and must not claim to support `kv-converged` or
    /// `subnets-unique`.
    fn kv_apply(
        &mut self,
        _ctx: &mut Ctx<'_, Self::Timer, Self::Event>,
        _key: &str,
        _op: &MapOp,
    ) -> Result<Ticket, TargetError> {
        Err(TargetError::NoKv)
    }

    /// Apply a KV op given as its JSON text (a `kv-op` step): parsed, then
    /// [`Target::kv_apply`].
    fn kv_op(
        &mut self,
        ctx: &mut Ctx<'_, Self::Timer, Self::Event>,
        key: &str,
        op_json: &str,
    ) -> Result<Ticket, TargetError> {
        let op = MapOp::from_json_str(op_json).map_err(TargetError::BadOp)?;
        self.kv_apply(ctx, key, &op)
    }

    /// A key's value as the KV holds it (`None`: never written, or no KV).
    fn kv_map(&self, _key: &str) -> Option<&Map> {
        None
    }

    /// The keys that start with `prefix`, in order.
    fn kv_keys(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }

    /// How long global membership keeps a member it cannot reach (the default forget
    /// time of `[[overlay]]` members); `None` for a target without it, which must not
    /// claim to support `subnets-unique`.
    fn forget_after_ms(&self) -> Option<u64> {
        None
    }

    /// Does this node hold the op `ticket` names?
    fn kv_seen(&self, _key: &str, _ticket: Ticket) -> bool {
        false
    }

    /// A key's value in canonical JSON (`{}` for a key never written).
    fn kv_value(&self, _key: &str) -> serde_json::Value {
        serde_json::json!({})
    }

    /// A digest of the whole store: equal digests mean identical stores.
    fn kv_digest(&self) -> Vec<u64> {
        Vec::new()
    }

    /// The key an event says changed on this node, if it is such an event.
    fn kv_changed(_event: &Self::Event) -> Option<&str> {
        None
    }

    /// Does this node consider `peer` unreachable (for `detected`)? Only targets that
    /// support `detected` answer; the default knows nothing.
    fn considers_unreachable(&self, _peer: NodeId) -> bool {
        false
    }

    /// The node an event says just became unreachable from this one, if it is such an
    /// event (for the detection metrics).
    fn unreachable_event(_event: &Self::Event) -> Option<NodeId> {
        None
    }

    /// The nodes this node considers reachable, itself included (for
    /// `membership-agrees`). Only targets that support it answer.
    fn reachable_set(&self) -> Option<&BTreeSet<NodeId>> {
        None
    }

    /// XOR of `hawser_core::routing::digest_of` over [`Target::reachable_set`], so the
    /// checker compares a whole set in O(1) and lists it only when they differ.
    fn reachable_digest(&self) -> Option<u64> {
        None
    }

    /// Multicast `payload` on `topic` from this node (a `multicast` step): its
    /// `(origin, seq)`, or why it was refused. A target without multicast (the default)
    /// refuses ([`TargetError::NoMulticast`]), and must not claim to support
    /// `multicast-delivered`.
    fn multicast(
        &mut self,
        _ctx: &mut Ctx<'_, Self::Timer, Self::Event>,
        _topic: &str,
        _payload: Vec<u8>,
    ) -> Result<(NodeId, u64), TargetError> {
        Err(TargetError::NoMulticast)
    }

    /// The `(origin, seq)` an event says this node delivered, if it is such an event.
    fn multicast_delivered(_event: &Self::Event) -> Option<(NodeId, u64)> {
        None
    }

    /// Multicast copies this node has sent since it started (as origin or forwarder).
    fn multicast_copies(&self) -> u64 {
        0
    }

    /// How the trace log (`--trace`) names this event, with its fields; `None` leaves it
    /// out. Only called while a log is written.
    fn trace_event(_event: &Self::Event) -> Option<TraceNote> {
        None
    }

    /// The load balancer's VIPs and backends as this node's KV holds them (read as the
    /// agent reads them); `None` if this stack has no KV.
    fn lb_vips(
        &self,
    ) -> Option<
        std::collections::BTreeMap<hawser_dataplane::lb::Vip, Vec<hawser_dataplane::lb::Backend>>,
    > {
        None
    }
}
