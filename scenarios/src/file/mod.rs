//! The scenario file: a TOML description of a simulated run — how many nodes, for how
//! long, on what network, what happens to them when, and what must then be true.
//!
//! This format is a public contract: it may gain keys, actions and kinds, but a file that
//! parses today must parse, and mean the same, tomorrow. That is why the parser is
//! strict — an unknown key, action or kind is an error rather than ignored, so that a
//! key added later can never silently change what an old file (with a typo that
//! happened to match) means.
//!
//! ```toml
//! name = "join-and-kill"
//! nodes = 100                 # nodes n0..n99 (1 to 1,000,000)
//! duration = "120s"           # virtual time
//! seed = 7                    # default 0; --seed overrides
//! contacts = "n0..n2"         # every node joins through these (default "n0")
//!
//! [network]
//! latency = "1ms..5ms"        # uniform per-message latency; "2ms" for fixed (default "1ms..5ms")
//! link_timeout = "3s"         # how long a blackholed TCP connection takes to break (default "3s")
//! connect_timeout = "1s"      # (default "1s")
//! sync_latency = "1ms"        # simulated fsync (default "1ms")
//! lose_unsynced = true        # a kill loses un-synced writes (default true)
//!
//! [config]                    # protocol config overrides, checked by the runner
//! active_view = 6
//!
//! [[overlay]]                 # an overlay network every running node takes part in
//! name = "dcos"               # the agent's --overlay settings (name, subnet, subnet6,
//! subnet = "9.0.0.0/16"       #   prefix, prefix6, vni, port, mtu, vtep), strings or
//! prefix = 24                 #   whole numbers, checked by the agent's parser
//! forget_after = "10m"        # default: global membership's forget time
//!
//! [[step]]
//! at = "0s"
//! action = "start"            # nodes (default all), stagger (default "0s")
//! stagger = "20ms"
//!
//! [[step]]
//! at = "60s"
//! action = "kill"
//! nodes = "random:10%"
//!
//! [[expect]]
//! kind = "overlay-connected"
//! after = "60s"               # default "0s"
//! within = "30s"              # must hold by after + within ...
//! until = "120s"              # ... and keep holding until here (default: the end)
//! ```
//!
//! Steps ([`Action::NAMES`]): `start`, `kill`, `restart`, `freeze`, `wipe`, `partition`,
//! `partition-oneway`, `heal`, `break-cookie`, `mend-cookie`, `slow-link`, `pause`,
//! `kv-op`, `multicast`. Steps must be listed in time order (equal `at` allowed, run in
//! file order); the parser rejects an out-of-order list instead of sorting it, so the
//! file always reads as the timeline it runs — and the rule can be relaxed later
//! without breaking any file, while the reverse could not.
//!
//! A `multicast` step may repeat: `count = 100` and `every = "200ms"` send 100
//! multicasts, each from a fresh pick of its `node` selector.
//!
//! Expectations ([`ExpectKind::ALL`]): `overlay-connected`, `membership-agrees`,
//! `views-bounded`, `detected`, `no-false-positives`, `kv-converged`,
//! `multicast-delivered`, `kv-op-visible`, `vip-backends`, `subnets-unique` (which needs an
//! `[[overlay]]`; see [`Overlay`]).
//!
//! Every time a step or expectation names (`at`, `after`, `after + within`, `until`)
//! must lie within `duration`, and every selector within `nodes`.

mod duration;
mod error;
mod expect;
mod overlay;
mod reader;
mod selector;
mod step;
#[cfg(test)]
mod tests;

use std::path::Path;

use hawser_core::Duration;
use serde::Deserialize;
use toml::de::{DeTable, ValueDeserializer};

pub use duration::{parse_duration, parse_latency};
pub use error::{Problem, ScenarioError};
pub use expect::{Expect, ExpectKind};
pub use overlay::Overlay;
pub use selector::Selector;
pub use step::{Action, Step};

use reader::{Reader, Value};

/// The most nodes a scenario may have: far beyond what the simulator is built for
/// (10,000), it only stops a typo from making the runner allocate without bound.
pub const MAX_NODES: usize = 1_000_000;

/// Keys allowed at the top level of a file.
const TOP_KEYS: [&str; 11] = [
    "name", "nodes", "duration", "seed", "contacts", "stack", "network", "config", "overlay",
    "step", "expect",
];

/// `latency_tail_max` when not given.
const DEFAULT_TAIL_MAX: Duration = Duration::from_secs(1);

/// Keys allowed in `[network]`.
const NETWORK_KEYS: [&str; 8] = [
    "latency",
    "latency_tail",
    "latency_tail_max",
    "handshake_reset",
    "link_timeout",
    "connect_timeout",
    "sync_latency",
    "lose_unsynced",
];

/// A parsed, validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file it came from, as given to [`parse`] or [`load`] (for messages and for
    /// the command that replays a run).
    pub file: String,
    pub name: String,
    /// Nodes are `n0..n{nodes-1}`.
    pub nodes: usize,
    /// Virtual time the run lasts.
    pub duration: Duration,
    /// The seed used unless `--seed` overrides it (default 0).
    pub seed: u64,
    /// The nodes every node joins through (default `"n0"`).
    pub contacts: Selector,
    /// Which protocols the nodes run (default: all of hawser's).
    pub stack: StackKind,
    pub network: Network,
    /// Protocol config overrides, free-form here: the runner checks them against core's
    /// config, which this crate's format must not need to track.
    pub config: toml::Table,
    /// Overlay networks (`[[overlay]]`) every running node takes part in, in file order.
    pub overlays: Vec<Overlay>,
    /// In non-decreasing `at` order.
    pub steps: Vec<Step>,
    pub expects: Vec<Expect>,
}

/// Which protocols a scenario's nodes run: `stack = "full"` (the default: hawser's whole
/// node) or `stack = "membership"` (the overlay alone — what scale tests of membership
/// need, since every node holding the whole graph costs O(nodes²) in one simulator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StackKind {
    #[default]
    Full,
    Membership,
}

impl StackKind {
    pub const NAMES: [&str; 2] = ["full", "membership"];

    pub fn name(self) -> &'static str {
        match self {
            StackKind::Full => "full",
            StackKind::Membership => "membership",
        }
    }
}

/// The simulated network (`[network]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// Per-message latency, drawn uniformly from `low..=high`.
    pub latency: (Duration, Duration),
    /// The share of messages, in parts per million, whose latency comes from a heavy
    /// tail instead (see `hawser_sim::LatencyTail`), and that tail's cap.
    pub latency_tail: Option<(u32, Duration)>,
    /// The share of new connections, in parts per million, that the network resets in
    /// the middle of the link handshake (0: none).
    pub handshake_reset: u32,
    /// How long a blackholed TCP connection takes to break.
    pub link_timeout: Duration,
    /// How long a connection attempt to an unreachable node takes to fail.
    pub connect_timeout: Duration,
    /// How long a simulated fsync takes.
    pub sync_latency: Duration,
    /// Whether a kill loses persisted writes that were not yet synced.
    pub lose_unsynced: bool,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: (Duration::from_millis(1), Duration::from_millis(5)),
            latency_tail: None,
            handshake_reset: 0,
            link_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(1),
            sync_latency: Duration::from_millis(1),
            lose_unsynced: true,
        }
    }
}

/// Parses and validates a scenario. `file_name` is only used in messages.
pub fn parse(text: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
    let document = DeTable::parse(text).map_err(|e| {
        let mut problems = error::Problems::new(text);
        problems.at(
            e.span().unwrap_or(0..0),
            format!("invalid TOML: {}", e.message()),
        );
        problems.into_error(file_name)
    })?;
    let root = document.get_ref();
    let top = 0..0;
    let mut r = Reader::new(text);
    r.only_keys(root, &TOP_KEYS, "at the top level");

    let name = r.required(root, top.clone(), "the scenario", "name", Reader::name);
    let nodes = r.required(root, top.clone(), "the scenario", "nodes", |r, v, k| {
        r.count(v, k, 1, MAX_NODES)
    });
    r.nodes = nodes;
    let duration = r.required(root, top.clone(), "the scenario", "duration", positive_time);
    r.duration = duration;
    let seed = r
        .optional(root, "seed", |r, v, k| r.integer(v, k, 0, i64::MAX as u64))
        .unwrap_or(0);
    let contacts = r
        .optional(root, "contacts", Reader::selector)
        .unwrap_or(Selector::Node(0));
    let stack = r
        .optional(root, "stack", |r, v, k| {
            let name = r.string(v, k)?;
            match name {
                "full" => Some(StackKind::Full),
                "membership" => Some(StackKind::Membership),
                other => {
                    r.problems.at(
                        v.span(),
                        format!(
                            "unknown stack {other:?}; valid stacks: {}",
                            StackKind::NAMES.join(", ")
                        ),
                    );
                    None
                }
            }
        })
        .unwrap_or_default();
    let network = r
        .optional(root, "network", read_network)
        .unwrap_or_default();
    let config = r.optional(root, "config", read_config).unwrap_or_default();
    let overlays = r
        .optional(root, "overlay", |r, v, k| {
            let tables = r.tables(v, k);
            let overlays: Vec<Overlay> = tables
                .into_iter()
                .filter_map(|(t, span)| overlay::read_overlay(r, t, span))
                .collect();
            overlay::check_together(r, &overlays, v.span());
            Some(overlays)
        })
        .unwrap_or_default();
    let steps = read_steps(&mut r, root);
    let expects = r
        .optional(root, "expect", |r, v, k| {
            let tables = r.tables(v, k);
            Some(
                tables
                    .into_iter()
                    .filter_map(|(t, span)| expect::read_expect(r, t, span))
                    .collect(),
            )
        })
        .unwrap_or_default();

    match (name, nodes, duration) {
        (Some(name), Some(nodes), Some(duration)) if r.problems.is_empty() => Ok(Scenario {
            file: file_name.to_owned(),
            name,
            nodes,
            duration,
            seed,
            contacts,
            stack,
            network,
            config,
            overlays,
            steps,
            expects,
        }),
        _ => Err(r.problems.into_error(file_name)),
    }
}

/// Reads and parses a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioError::whole_file(&file_name, format!("cannot read the scenario: {e}"))
    })?;
    parse(&text, &file_name)
}

impl Scenario {
    /// Applies the command line's `--seed` and `--nodes`. A new node count is checked
    /// against every selector in the file, since `"n90"` fits 100 nodes but not 50.
    pub fn with_overrides(
        mut self,
        seed: Option<u64>,
        nodes: Option<usize>,
    ) -> Result<Scenario, ScenarioError> {
        if let Some(seed) = seed {
            self.seed = seed;
        }
        let Some(nodes) = nodes else {
            return Ok(self);
        };
        if !(1..=MAX_NODES).contains(&nodes) {
            return Err(ScenarioError::whole_file(
                &self.file,
                format!("--nodes {nodes}: a scenario has from 1 to {MAX_NODES} nodes"),
            ));
        }
        let misfit = |line: Option<usize>, what: String, selector: &Selector| {
            selector.check(nodes).err().map(|e| Problem {
                line,
                column: None,
                message: format!("--nodes {nodes} does not fit {what}: {e}"),
            })
        };
        let mut problems: Vec<Problem> = misfit(None, "\"contacts\"".into(), &self.contacts)
            .into_iter()
            .collect();
        for step in &self.steps {
            let what = format!("step {:?}", step.action.name());
            problems.extend(
                step.action
                    .selectors()
                    .into_iter()
                    .filter_map(|s| misfit(Some(step.line), what.clone(), s)),
            );
        }
        for expect in &self.expects {
            let what = format!("expectation {:?}", expect.kind.name());
            problems.extend(
                expect
                    .nodes
                    .as_ref()
                    .and_then(|s| misfit(Some(expect.line), what, s)),
            );
        }
        if !problems.is_empty() {
            return Err(ScenarioError::new(&self.file, problems));
        }
        self.nodes = nodes;
        Ok(self)
    }
}

/// `duration`: a run of zero length checks nothing.
fn positive_time(r: &mut Reader<'_>, value: &Value<'_>, key: &str) -> Option<Duration> {
    let t = r.time(value, key)?;
    if t == Duration::ZERO {
        r.problems
            .at(value.span(), format!("{key:?} must be longer than 0s"));
        return None;
    }
    Some(t)
}

fn read_network(r: &mut Reader<'_>, value: &Value<'_>, key: &str) -> Option<Network> {
    let table = r.table(value, key)?;
    r.only_keys(table, &NETWORK_KEYS, "in [network]");
    let default = Network::default();
    Some(Network {
        latency: r
            .optional(table, "latency", Reader::latency)
            .unwrap_or(default.latency),
        latency_tail: r
            .optional(table, "latency_tail", Reader::fraction)
            .map(|share| {
                let max = r
                    .optional(table, "latency_tail_max", positive_time)
                    .unwrap_or(DEFAULT_TAIL_MAX);
                ((share * 1e6).round() as u32, max)
            }),
        handshake_reset: r
            .optional(table, "handshake_reset", Reader::fraction)
            .map_or(0, |share| (share * 1e6).round() as u32),
        link_timeout: r
            .optional(table, "link_timeout", positive_time)
            .unwrap_or(default.link_timeout),
        connect_timeout: r
            .optional(table, "connect_timeout", positive_time)
            .unwrap_or(default.connect_timeout),
        sync_latency: r
            .optional(table, "sync_latency", Reader::time)
            .unwrap_or(default.sync_latency),
        lose_unsynced: r
            .optional(table, "lose_unsynced", Reader::boolean)
            .unwrap_or(default.lose_unsynced),
    })
}

/// `[config]`, converted by toml's own deserializer so its values mean exactly what
/// they would to any other TOML reader.
fn read_config(r: &mut Reader<'_>, value: &Value<'_>, key: &str) -> Option<toml::Table> {
    r.table(value, key)?;
    toml::Table::deserialize(ValueDeserializer::from(value.clone()))
        .map_err(|e| {
            let span = e.span().unwrap_or(value.span());
            r.problems.at(span, format!("[config]: {}", e.message()));
        })
        .ok()
}

/// `[[step]]`s, which must be listed in time order (see the module docs for why).
fn read_steps(r: &mut Reader<'_>, root: &DeTable<'_>) -> Vec<Step> {
    let Some(value) = root.get("step") else {
        return Vec::new();
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut latest: Option<(Duration, usize)> = None;
    for (table, span) in r.tables(value, "step") {
        let Some(step) = step::read_step(r, table, span.clone()) else {
            continue;
        };
        match latest {
            Some((at, line)) if step.at < at => r.problems.at(
                span,
                format!(
                    "this step (at = \"{}\") comes after a step at \"{at}\" (line {line}); \
                     list steps in time order",
                    step.at
                ),
            ),
            _ => latest = Some((step.at, step.line)),
        }
        steps.push(step);
    }
    steps
}
