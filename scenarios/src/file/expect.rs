//! `[[expect]]`: what must be true of the cluster, and when.

use std::ops::Range;

use hawser_core::Duration;
use toml::de::DeTable;

use super::reader::Reader;
use super::selector::Selector;

/// One expectation. Which of the optional fields may be set depends on `kind`; the parser
/// has already rejected the others.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub kind: ExpectKind,
    /// The nodes the expectation is about; `None` when the file does not say (the kind
    /// decides what that means, usually every live node).
    pub nodes: Option<Selector>,
    /// Checking starts here (default 0s).
    pub after: Duration,
    /// It must hold at some instant in `[after, after + within]`; never set for
    /// invariant kinds, which must hold throughout.
    pub within: Option<Duration>,
    /// Once it holds it must keep holding until here; `None` means the end of the run.
    pub until: Option<Duration>,
    /// `kv-converged`: the one key to compare (otherwise whole stores are compared).
    pub key: Option<String>,
    /// `kv-converged`: the value every live node must hold for `key`, in canonical JSON.
    pub value: Option<serde_json::Value>,
    /// `detected`: the fraction of live nodes that must see the failure (e.g. 0.9);
    /// `None` leaves the choice to the runner.
    pub fraction: Option<f64>,
    /// Line of the expectation in the file (its `[[expect]]` header).
    pub line: usize,
}

/// What an expectation checks. The file spells each as its [`ExpectKind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExpectKind {
    /// The active-view graph of live nodes is one component and every link symmetric.
    OverlayConnected,
    /// Every live node's reachable set equals the nodes it can reach through the network.
    MembershipAgrees,
    /// Views stay within their configured bounds (checked after every event).
    ViewsBounded,
    /// A failed node is seen as unreachable by `fraction` of the live nodes.
    Detected,
    /// No live node evicts a neighbour that is alive and reachable (checked throughout).
    NoFalsePositives,
    /// Live nodes hold the same KV store, or `value` for `key`.
    KvConverged,
    /// Each multicast reached every node reachable from its origin, exactly once.
    MulticastDelivered,
    /// Each `kv-op` became visible on every node reachable from its origin.
    KvOpVisible,
    /// Every live node's load-balancer desired state (from its own KV) holds, for each
    /// VIP, exactly the backends on nodes it can reach through the network (all of them
    /// when it can reach none: fail open).
    VipBackends,
    /// In every `[[overlay]]` network, the running members agree on who holds each
    /// running node's slot, every running node holds one (unless the network is full),
    /// and no two route one subnet to two nodes.
    SubnetsUnique,
}

/// Keys every kind takes.
const COMMON: [&str; 5] = ["kind", "nodes", "after", "within", "until"];
/// Keys of per-event kinds: no `nodes`, since who owes an event is decided by the
/// network (the nodes reaching its origin).
const PER_EVENT: [&str; 4] = ["kind", "after", "within", "until"];
/// Keys of invariant kinds: no `within`, since they must hold at every instant.
const INVARIANT: [&str; 4] = ["kind", "nodes", "after", "until"];

/// Every kind with its file name and the keys it takes: the one table behind parsing
/// and the lists of valid choices in messages.
const KINDS: [(ExpectKind, &str, &[&str]); 10] = [
    (ExpectKind::OverlayConnected, "overlay-connected", &COMMON),
    (ExpectKind::MembershipAgrees, "membership-agrees", &COMMON),
    (ExpectKind::ViewsBounded, "views-bounded", &INVARIANT),
    (
        ExpectKind::Detected,
        "detected",
        &["kind", "nodes", "after", "within", "until", "fraction"],
    ),
    (
        ExpectKind::NoFalsePositives,
        "no-false-positives",
        &INVARIANT,
    ),
    (
        ExpectKind::KvConverged,
        "kv-converged",
        &["kind", "nodes", "after", "within", "until", "key", "value"],
    ),
    (
        ExpectKind::MulticastDelivered,
        "multicast-delivered",
        &PER_EVENT,
    ),
    (ExpectKind::KvOpVisible, "kv-op-visible", &PER_EVENT),
    (ExpectKind::VipBackends, "vip-backends", &COMMON),
    (ExpectKind::SubnetsUnique, "subnets-unique", &COMMON),
];

impl ExpectKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [ExpectKind; 10] = {
        let mut all = [ExpectKind::OverlayConnected; 10];
        let mut i = 0;
        while i < KINDS.len() {
            all[i] = KINDS[i].0;
            i += 1;
        }
        all
    };

    /// The name the file uses (`"overlay-connected"`, ...).
    pub fn name(self) -> &'static str {
        KINDS[self as usize].1
    }

    /// The kind a file name stands for.
    pub fn from_name(name: &str) -> Option<ExpectKind> {
        KINDS
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(k, _, _)| *k)
    }

    /// Invariants are checked after every event from `after` to `until` and take no
    /// `within`; the other kinds must come true within a window and then stay true.
    pub fn is_invariant(self) -> bool {
        matches!(
            self,
            ExpectKind::ViewsBounded | ExpectKind::NoFalsePositives
        )
    }

    /// Per-event kinds judge each event (a multicast, a kv op) on its own: `within` is
    /// the deadline of each, counted from its own sending, so one checked late never
    /// makes the next one fail, and any event that misses its deadline fails the
    /// expectation.
    pub fn is_per_event(self) -> bool {
        matches!(
            self,
            ExpectKind::MulticastDelivered | ExpectKind::KvOpVisible
        )
    }

    /// Invariants and per-event kinds hold from `after` until something breaks them;
    /// the others must first come true within their window.
    pub fn holds_throughout(self) -> bool {
        self.is_invariant() || self.is_per_event()
    }

    /// What an evaluation must find for the expectation to have checked anything; one
    /// that never finds it fails rather than passing vacuously.
    pub fn subject(self) -> &'static str {
        match self {
            ExpectKind::OverlayConnected
            | ExpectKind::ViewsBounded
            | ExpectKind::NoFalsePositives
            | ExpectKind::KvConverged => "a live node in scope",
            ExpectKind::MembershipAgrees | ExpectKind::SubnetsUnique => "a running node in scope",
            ExpectKind::Detected => "a node in scope that was down or frozen",
            ExpectKind::MulticastDelivered => {
                "a multicast sent at or after \"after\" whose deadline had come by \"until\""
            }
            ExpectKind::KvOpVisible => {
                "a kv-op applied at or after \"after\" whose deadline had come by \"until\""
            }
            ExpectKind::VipBackends => "a running node in scope holding a VIP in its KV",
        }
    }
}

/// Reads one `[[expect]]` table whose header is at `span`.
pub(super) fn read_expect(
    r: &mut Reader<'_>,
    table: &DeTable<'_>,
    span: Range<usize>,
) -> Option<Expect> {
    let line = r.problems.line_of(span.start);
    let kind = r.required(table, span.clone(), "expectation", "kind", |r, v, k| {
        let name = r.string(v, k)?;
        let kind = ExpectKind::from_name(name);
        if kind.is_none() {
            let valid: Vec<_> = KINDS.iter().map(|(_, n, _)| *n).collect();
            r.problems.at(
                v.span(),
                format!(
                    "unknown expectation kind {name:?}; valid kinds: {}",
                    valid.join(", ")
                ),
            );
        }
        kind
    })?;
    r.only_keys(
        table,
        KINDS[kind as usize].2,
        &format!("for expectation {:?}", kind.name()),
    );
    let nodes = r.optional(table, "nodes", Reader::selector);
    let after = r
        .optional(table, "after", Reader::moment)
        .unwrap_or(Duration::ZERO);
    let within = r.optional(table, "within", Reader::time);
    if let (Some(within), Some(value)) = (within, table.get("within")) {
        let deadline = after + within;
        if let Some(end) = r.duration.filter(|end| deadline > *end) {
            r.problems.at(
                value.span(),
                format!("after + within is {deadline}, beyond the scenario's duration of {end}"),
            );
        }
    }
    let until = r.optional(table, "until", Reader::moment);
    if let (Some(until), Some(value)) = (until, table.get("until")) {
        let earliest = after + within.unwrap_or_default();
        if until < earliest {
            r.problems.at(
                value.span(),
                format!("\"until\" is {until}, before the expectation can first hold ({earliest}, after + within)"),
            );
        }
    }
    let fraction = r.optional(table, "fraction", Reader::fraction);
    let key = r.optional(table, "key", Reader::name);
    let value = r
        .optional(table, "value", Reader::json)
        .map(|(_, json)| json);
    if let (Some(_), None, Some(v)) = (&value, &key, table.get("value")) {
        r.problems.at(
            v.span(),
            "\"value\" needs a \"key\": it is the value every live node must hold for that key",
        );
    }
    Some(Expect {
        kind,
        nodes,
        after,
        within,
        until,
        key,
        value,
        fraction,
        line,
    })
}
