//! `[[step]]`: what the simulator does to the cluster, and when.

use std::ops::Range;

use hawser_core::Duration;
use toml::de::DeTable;

use super::reader::{Reader, Value};
use super::selector::Selector;

/// One timed action.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Virtual time from the start of the run.
    pub at: Duration,
    pub action: Action,
    /// Line of the step in the file (its `[[step]]` header), for the runner's messages.
    pub line: usize,
}

/// What a step does. The file spells each as its [`Action::name`].
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Start the nodes (default all), `stagger` apart; each joins through the contacts.
    Start { nodes: Selector, stagger: Duration },
    /// The process dies: volatile state is gone, the disk is kept, peers see resets.
    Kill { nodes: Selector },
    /// Bring killed nodes back from what they had persisted.
    Restart { nodes: Selector },
    /// The host goes silent: its links are blackholed, nothing is reset.
    Freeze { nodes: Selector },
    /// Restart with an empty disk.
    Wipe { nodes: Selector },
    /// Power loss: the nodes (default all) die at once, losing what they had not synced,
    /// and come back `down` later one by one, `stagger` apart, in an order drawn from the
    /// run's seed (machines do not boot in rack order).
    PowerLoss {
        nodes: Selector,
        down: Duration,
        stagger: Duration,
    },
    /// Nodes in different groups cannot exchange anything; nodes in no group (or named
    /// in `keep`) still reach every group.
    Partition {
        groups: Vec<Selector>,
        keep: Option<Selector>,
    },
    /// Frames from `from` to `to` are lost; the reverse still flows.
    PartitionOneway { from: Selector, to: Selector },
    /// Every partition ends.
    Heal,
    /// The nodes' cookie changes, so the real handshake refuses them.
    BreakCookie { nodes: Selector },
    /// The nodes get the cluster cookie back.
    MendCookie { nodes: Selector },
    /// Every link of the nodes is cut and restored, `period` each, for `duration`: a
    /// flapping link (a bad cable, a NIC resetting). Frames wait out the cuts as on a
    /// partition, and a cut longer than the link timeout breaks connections.
    Flap {
        nodes: Selector,
        period: Duration,
        duration: Duration,
    },
    /// Every link touching the nodes gets `extra` latency, for `duration` or for good.
    SlowLink {
        nodes: Selector,
        extra: Duration,
        duration: Option<Duration>,
    },
    /// The nodes process nothing for `duration`, then resume with their timers late.
    Pause { nodes: Selector, duration: Duration },
    /// From now on the nodes' clocks run `drift_ppm` parts per million fast (negative:
    /// slow), after jumping `step` ahead: every `now` the node is handed, and so every
    /// timeout and rate it keeps, comes from its own clock.
    Clock {
        nodes: Selector,
        drift_ppm: i64,
        step: Duration,
    },
    /// The nodes' network interfaces carry `bytes_per_sec` each way, for `duration` or
    /// for good: frames queue behind each other, so bursts arrive late (a saturated
    /// or throttled link, a slow receiver).
    Bandwidth {
        nodes: Selector,
        bytes_per_sec: u64,
        duration: Option<Duration>,
    },
    /// The nodes' syncs take `latency` (a slow or overloaded disk), for `duration` or
    /// for good: whatever waits on durability (a KV op's acknowledgement) waits longer.
    DiskSlow {
        nodes: Selector,
        latency: Duration,
        duration: Option<Duration>,
    },
    /// Each node's next sync fails, and the node stops, as the real driver does on a
    /// store error: what the sync covered was never acknowledged. A `restart` step
    /// brings it back.
    DiskFail { nodes: Selector },
    /// Each node crashes in the middle of its next sync: part of the batch (or all of
    /// it) reaches the disk, perhaps damaged. At restart the batch's checksum decides:
    /// a damaged batch is dropped whole, a whole one is loaded. A `restart` step brings
    /// it back.
    DiskTear { nodes: Selector },
    /// Apply a KV op on one node. `op` is the op's JSON text, already checked by the
    /// KV's own op parser when the file loaded (so a typo fails the load, not the run).
    KvOp {
        node: Selector,
        key: String,
        op: String,
    },
    /// Multicast `size` bytes on `topic` from one node; `count` times (default 1),
    /// `every` apart, each from a fresh pick of `node` (so `random:1` varies the origin).
    Multicast {
        node: Selector,
        topic: String,
        size: usize,
        count: usize,
        every: Duration,
    },
}

/// Every action, as spelled in files, with the parameters it takes (besides `at` and
/// `action`). The one table behind parsing, unknown-key messages and [`Action::NAMES`].
const ACTIONS: [(&str, &[&str]); 21] = [
    ("start", &["nodes", "stagger"]),
    ("kill", &["nodes"]),
    ("restart", &["nodes"]),
    ("freeze", &["nodes"]),
    ("wipe", &["nodes"]),
    ("power-loss", &["nodes", "down", "stagger"]),
    ("partition", &["groups", "keep"]),
    ("partition-oneway", &["from", "to"]),
    ("heal", &[]),
    ("break-cookie", &["nodes"]),
    ("mend-cookie", &["nodes"]),
    ("flap", &["nodes", "period", "duration"]),
    ("slow-link", &["nodes", "extra", "duration"]),
    ("pause", &["nodes", "duration"]),
    ("clock", &["nodes", "drift_ppm", "step"]),
    ("bandwidth", &["nodes", "bytes_per_sec", "duration"]),
    ("disk-slow", &["nodes", "latency", "duration"]),
    ("disk-fail", &["nodes"]),
    ("disk-tear", &["nodes"]),
    ("kv-op", &["node", "key", "op"]),
    ("multicast", &["node", "topic", "size", "count", "every"]),
];

/// `flap` without `period`: how long each cut, and each restored spell, lasts.
const DEFAULT_FLAP_PERIOD: Duration = Duration::from_millis(300);
/// `power-loss` without `down`: how long the power stays off.
const DEFAULT_POWER_DOWN: Duration = Duration::from_secs(5);
/// `power-loss` without `stagger`: time between two nodes coming back.
const DEFAULT_POWER_STAGGER: Duration = Duration::from_millis(200);

/// `bandwidth`'s range, in bytes per second: from a link barely able to carry the
/// handshakes (1 kB/s) to 100 GB/s.
const MIN_BANDWIDTH: usize = 1_000;
const MAX_BANDWIDTH: usize = 100_000_000_000;

/// Largest multicast payload a scenario may ask for; far above any sane protocol limit,
/// it only stops a typo from making the runner allocate gigabytes.
const MAX_MULTICAST_SIZE: usize = 64 << 20;
/// Most repetitions of one multicast step.
const MAX_MULTICAST_COUNT: usize = 100_000;

impl Action {
    /// Every action name, in the order the documentation lists them.
    pub const NAMES: [&str; 21] = {
        let mut names = [""; 21];
        let mut i = 0;
        while i < ACTIONS.len() {
            names[i] = ACTIONS[i].0;
            i += 1;
        }
        names
    };

    /// The name the file uses for this action (`"partition-oneway"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Start { .. } => "start",
            Action::Kill { .. } => "kill",
            Action::Restart { .. } => "restart",
            Action::Freeze { .. } => "freeze",
            Action::Wipe { .. } => "wipe",
            Action::PowerLoss { .. } => "power-loss",
            Action::Partition { .. } => "partition",
            Action::PartitionOneway { .. } => "partition-oneway",
            Action::Heal => "heal",
            Action::BreakCookie { .. } => "break-cookie",
            Action::MendCookie { .. } => "mend-cookie",
            Action::Flap { .. } => "flap",
            Action::SlowLink { .. } => "slow-link",
            Action::Pause { .. } => "pause",
            Action::Clock { .. } => "clock",
            Action::Bandwidth { .. } => "bandwidth",
            Action::DiskSlow { .. } => "disk-slow",
            Action::DiskFail { .. } => "disk-fail",
            Action::DiskTear { .. } => "disk-tear",
            Action::KvOp { .. } => "kv-op",
            Action::Multicast { .. } => "multicast",
        }
    }

    /// Every selector the action holds, for re-checking them when `--nodes` changes the
    /// node count.
    pub fn selectors(&self) -> Vec<&Selector> {
        match self {
            Action::Start { nodes, .. }
            | Action::Kill { nodes }
            | Action::Restart { nodes }
            | Action::Freeze { nodes }
            | Action::Wipe { nodes }
            | Action::BreakCookie { nodes }
            | Action::MendCookie { nodes }
            | Action::SlowLink { nodes, .. }
            | Action::Pause { nodes, .. }
            | Action::Clock { nodes, .. }
            | Action::Bandwidth { nodes, .. }
            | Action::DiskSlow { nodes, .. }
            | Action::DiskFail { nodes }
            | Action::DiskTear { nodes }
            | Action::Flap { nodes, .. }
            | Action::PowerLoss { nodes, .. } => vec![nodes],
            Action::Partition { groups, keep } => groups.iter().chain(keep).collect(),
            Action::PartitionOneway { from, to } => vec![from, to],
            Action::Heal => Vec::new(),
            Action::KvOp { node, .. } | Action::Multicast { node, .. } => vec![node],
        }
    }
}

/// Reads one `[[step]]` table whose header is at `span`.
pub(super) fn read_step(
    r: &mut Reader<'_>,
    table: &DeTable<'_>,
    span: Range<usize>,
) -> Option<Step> {
    let line = r.problems.line_of(span.start);
    let name = r.required(table, span.clone(), "step", "action", |r, v, k| {
        let name = r.string(v, k)?;
        match ACTIONS.iter().find(|(n, _)| *n == name) {
            Some(&(name, params)) => Some((name, params)),
            None => {
                r.problems.at(
                    v.span(),
                    format!(
                        "unknown action {name:?}; valid actions: {}",
                        Action::NAMES.join(", ")
                    ),
                );
                None
            }
        }
    });
    let at = r.required(table, span.clone(), "step", "at", Reader::moment);
    let (name, params) = name?;
    let allowed: Vec<&str> = ["at", "action"].iter().chain(params).copied().collect();
    r.only_keys(table, &allowed, &format!("for action {name:?}"));
    let what = format!("step {name:?}");
    let need_nodes =
        |r: &mut Reader<'_>| r.required(table, span.clone(), &what, "nodes", Reader::selector);
    let action = match name {
        "start" => Action::Start {
            nodes: r
                .optional(table, "nodes", Reader::selector)
                .unwrap_or(Selector::All),
            stagger: r
                .optional(table, "stagger", Reader::time)
                .unwrap_or(Duration::ZERO),
        },
        "kill" => Action::Kill {
            nodes: need_nodes(r)?,
        },
        "restart" => Action::Restart {
            nodes: need_nodes(r)?,
        },
        "freeze" => Action::Freeze {
            nodes: need_nodes(r)?,
        },
        "wipe" => Action::Wipe {
            nodes: need_nodes(r)?,
        },
        "power-loss" => {
            let nodes = r
                .optional(table, "nodes", Reader::selector)
                .unwrap_or(Selector::All);
            let down = r
                .optional(table, "down", Reader::time)
                .unwrap_or(DEFAULT_POWER_DOWN);
            let stagger = r
                .optional(table, "stagger", Reader::time)
                .unwrap_or(DEFAULT_POWER_STAGGER);
            if let (Some(at), Some(n)) = (&at, r.nodes) {
                let count = nodes.fixed_members(n).map_or(n, |m| m.len()) as u64;
                let last = *at + down + stagger.saturating_mul(count.saturating_sub(1));
                let span = table
                    .get("down")
                    .or(table.get("stagger"))
                    .map_or(span.clone(), |v| v.span());
                r.check_moment(
                    span,
                    "the last node's return (at + down + (nodes - 1) * stagger)",
                    last,
                )?;
            }
            Action::PowerLoss {
                nodes,
                down,
                stagger,
            }
        }
        "break-cookie" => Action::BreakCookie {
            nodes: need_nodes(r)?,
        },
        "mend-cookie" => Action::MendCookie {
            nodes: need_nodes(r)?,
        },
        "heal" => Action::Heal,
        "slow-link" => {
            let nodes = need_nodes(r);
            let extra = r.required(table, span.clone(), &what, "extra", Reader::time);
            let duration = r.optional(table, "duration", Reader::time);
            Action::SlowLink {
                nodes: nodes?,
                extra: extra?,
                duration,
            }
        }
        "flap" => {
            let nodes = need_nodes(r);
            let period = r.optional(table, "period", Reader::time_at_least_1ms);
            let duration = r.required(table, span.clone(), &what, "duration", Reader::time);
            if let (Some(at), Some(d), Some(value)) = (&at, duration, table.get("duration")) {
                r.check_moment(
                    value.span(),
                    "the end of the flapping (at + duration)",
                    *at + d,
                )?;
            }
            Action::Flap {
                nodes: nodes?,
                period: period.unwrap_or(DEFAULT_FLAP_PERIOD),
                duration: duration?,
            }
        }
        "pause" => {
            let nodes = need_nodes(r);
            let duration = r.required(table, span.clone(), &what, "duration", Reader::time);
            Action::Pause {
                nodes: nodes?,
                duration: duration?,
            }
        }
        "clock" => {
            let nodes = need_nodes(r);
            let max = hawser_sim::MAX_DRIFT_PPM;
            let drift = r.optional(table, "drift_ppm", |r, v, k| r.signed(v, k, -max, max));
            let step = r.optional(table, "step", Reader::time);
            if table.get("drift_ppm").is_none() && table.get("step").is_none() {
                r.problems.at(
                    span.clone(),
                    format!("{what} needs \"drift_ppm\" or \"step\" (or both)"),
                );
            }
            Action::Clock {
                nodes: nodes?,
                drift_ppm: drift.unwrap_or(0),
                step: step.unwrap_or(Duration::ZERO),
            }
        }
        "bandwidth" => {
            let nodes = need_nodes(r);
            let rate = r.required(table, span.clone(), &what, "bytes_per_sec", |r, v, k| {
                r.count(v, k, MIN_BANDWIDTH, MAX_BANDWIDTH)
            });
            let duration = r.optional(table, "duration", Reader::time);
            Action::Bandwidth {
                nodes: nodes?,
                bytes_per_sec: rate? as u64,
                duration,
            }
        }
        "disk-slow" => {
            let nodes = need_nodes(r);
            let latency = r.required(table, span.clone(), &what, "latency", Reader::time);
            let duration = r.optional(table, "duration", Reader::time);
            Action::DiskSlow {
                nodes: nodes?,
                latency: latency?,
                duration,
            }
        }
        "disk-fail" => Action::DiskFail {
            nodes: need_nodes(r)?,
        },
        "disk-tear" => Action::DiskTear {
            nodes: need_nodes(r)?,
        },
        "partition" => read_partition(r, table, span.clone())?,
        "partition-oneway" => {
            let from = r.required(table, span.clone(), &what, "from", Reader::selector);
            let to = r.required(table, span.clone(), &what, "to", Reader::selector);
            Action::PartitionOneway {
                from: from?,
                to: to?,
            }
        }
        "kv-op" => {
            let node = r.required(table, span.clone(), &what, "node", read_one_node);
            let key = r.required(table, span.clone(), &what, "key", Reader::name);
            let op = r.required(table, span.clone(), &what, "op", read_op);
            Action::KvOp {
                node: node?,
                key: key?,
                op: op?.0,
            }
        }
        "multicast" => {
            let node = r.required(table, span.clone(), &what, "node", read_one_node);
            let topic = r.required(table, span.clone(), &what, "topic", Reader::name);
            let size = r.required(table, span.clone(), &what, "size", |r, v, k| {
                r.count(v, k, 0, MAX_MULTICAST_SIZE)
            });
            let count = r
                .optional(table, "count", |r, v, k| {
                    r.count(v, k, 1, MAX_MULTICAST_COUNT)
                })
                .unwrap_or(1);
            let every = r.optional(table, "every", Reader::time);
            if let (Some(at), Some(every), Some(value)) = (&at, every, table.get("every")) {
                let last = *at + every.saturating_mul(count as u64 - 1);
                r.check_moment(
                    value.span(),
                    "the last multicast (at + (count - 1) * every)",
                    last,
                )?;
            }
            Action::Multicast {
                node: node?,
                topic: topic?,
                size: size?,
                count,
                every: every.unwrap_or(Duration::ZERO),
            }
        }
        other => unreachable!("action {other:?} is in ACTIONS but has no reader"),
    };
    Some(Step {
        at: at?,
        action,
        line,
    })
}

/// `op` of `kv-op`: JSON text that core's op parser accepts (the grammar is in
/// `hawser_core::crdt::json` and `hawser kv op --help`).
fn read_op(
    r: &mut Reader<'_>,
    value: &Value<'_>,
    key: &str,
) -> Option<(String, serde_json::Value)> {
    let (text, json) = r.json(value, key)?;
    match hawser_core::crdt::MapOp::from_json(&json) {
        Ok(_) => Some((text, json)),
        Err(e) => {
            r.problems.at(
                value.span(),
                format!("{key:?} is not a KV op: {e} (ops look like {EXAMPLE_OP})"),
            );
            None
        }
    }
}

/// A valid op, shown in the message about an invalid one.
const EXAMPLE_OP: &str = r#"{"update":[{"field":"n","type":"counter","op":{"increment":1}}]}"#;

/// `node` of `kv-op` and `multicast`: a selector that always names exactly one node.
fn read_one_node(r: &mut Reader<'_>, value: &Value<'_>, key: &str) -> Option<Selector> {
    let selector = r.selector(value, key)?;
    if !selector.is_single() {
        r.problems.at(
            value.span(),
            format!(
                "{key:?} must name exactly one node (e.g. \"n3\" or \"random:1\"), not {selector}"
            ),
        );
        return None;
    }
    Some(selector)
}

/// `partition`: at least two groups, and no node (named without randomness) in two
/// groups or both in a group and in `keep` — such a file contradicts itself.
fn read_partition(r: &mut Reader<'_>, table: &DeTable<'_>, span: Range<usize>) -> Option<Action> {
    let groups = r.required(
        table,
        span.clone(),
        "step \"partition\"",
        "groups",
        Reader::selectors,
    );
    let keep = r.optional(table, "keep", Reader::selector);
    let groups = groups?;
    if groups.len() < 2 {
        r.problems.at(
            table.get("groups").map_or(span, |v| v.span()),
            "\"groups\" needs at least two groups: a partition is between groups of nodes",
        );
        return None;
    }
    if let Some(nodes) = r.nodes {
        let mut seen: Vec<Option<usize>> = vec![None; nodes];
        let named = groups.iter().chain(&keep).enumerate();
        for (g, selector) in named {
            for node in selector.fixed_members(nodes).unwrap_or_default() {
                if let Some(earlier) = seen[node].replace(g) {
                    let place = |g: usize| match groups.get(g) {
                        Some(_) => format!("group {}", g + 1),
                        None => "keep".to_owned(),
                    };
                    r.problems.at(
                        table.get("groups").map_or(span, |v| v.span()),
                        format!(
                            "n{node} is in both {} and {}; a node can be on one side only",
                            place(earlier),
                            place(g)
                        ),
                    );
                    return None;
                }
            }
        }
    }
    Some(Action::Partition { groups, keep })
}
