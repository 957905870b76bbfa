//! The figures a run reports, and the report itself.

use std::collections::BTreeMap;

use hawser_core::Instant;
use hawser_sim::Sim;

use crate::detect::Detection;
use crate::expectations::{State, Tracker};
use crate::file::{ExpectKind, Scenario};
use crate::graph;
use crate::kvtrack::KvTrack;
use crate::mctrack::McTrack;
use crate::report::{Outcome, Report};
use crate::runner::live;
use crate::target::Target;

#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) detection: Detection,
    pub(crate) kv: KvTrack,
    pub(crate) mc: McTrack,
    /// Things that happened to steps (a refused kv-op), for the timeline.
    pub(crate) notes: Vec<(Instant, String)>,
    /// When the live nodes' stores were last seen identical after the last kv-op.
    pub(crate) kv_converged_at: Option<Instant>,
    pub(crate) evictions: u64,
    pub(crate) symmetry: graph::Symmetry,
    pub(crate) last_disruption: Instant,
    pub(crate) connected_at: Option<Instant>,
    pub(crate) steady_start: Option<(u64, u64)>,
    /// When each node last came back from being down or frozen (a restart or a wipe).
    pub(crate) back_at: std::collections::BTreeMap<usize, Instant>,
    /// When a cut (a partition, a one-way partition, a flapping link) last ended.
    pub(crate) healed_at: Option<Instant>,
    /// `vip-backends`: each node's VIPs, read again only when its KV changed.
    pub(crate) vips: crate::runner::VipCache,
}

impl Metrics {
    pub(crate) fn disrupted(&mut self, now: Instant) {
        self.last_disruption = now;
        self.connected_at = None;
    }
    /// Steady-state traffic is measured over the last quarter of the run.
    pub(crate) fn steady_from(&self, end: Instant) -> Instant {
        Instant::ZERO + (end - Instant::ZERO).saturating_sub((end - Instant::ZERO) / 4)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn report<T: Target>(
    scenario: &Scenario,
    sim: &Sim<T>,
    trackers: Vec<Tracker>,
    custom: Vec<Outcome>,
    metrics: Metrics,
    overlay: Vec<(&'static str, f64)>,
    timeline: Vec<(Instant, String)>,
    wall_ms: u64,
) -> Report {
    let expectations: Vec<Outcome> = trackers
        .into_iter()
        .map(|t| {
            let vacuous = !t.checked_anything();
            let (passed, at, detail) = match t.state {
                State::Passed(at) => (true, Some(at), "held".to_string()),
                State::Failed(at, why) => (false, Some(at), why),
                State::Holding(at) => (true, Some(at), "held".to_string()),
                State::Pending(why) => (false, None, format!("never held: {why}")),
            };
            Outcome {
                kind: t.expect.kind.name().to_string(),
                line: t.expect.line,
                passed,
                at_ms: at.map(|a| a.as_millis()),
                vacuous: !passed && vacuous,
                detail,
            }
        })
        .chain(custom)
        .collect();
    let stats = sim.stats();
    let mut m = BTreeMap::new();
    let n = scenario.nodes.max(1) as f64;
    let end = sim.now();
    let steady_secs = (end - metrics.steady_from(end)).as_secs_f64().max(1e-9);
    let (f0, b0) = metrics.steady_start.unwrap_or((0, 0));
    m.insert(
        "msgs_per_node_per_s".into(),
        round2((stats.frames - f0) as f64 / n / steady_secs),
    );
    m.insert(
        "bytes_per_node_per_s".into(),
        round2((stats.bytes - b0) as f64 / n / steady_secs),
    );
    m.insert("evictions".into(), metrics.evictions as f64);
    m.insert("connects".into(), stats.connects as f64);
    // Disk faults, only in runs that had any (older reports stay as they were).
    for (name, n) in [
        ("sync_failures", stats.sync_failures),
        ("torn_syncs", stats.torn_syncs),
        ("torn_dropped", stats.torn_dropped),
    ] {
        if n > 0 {
            m.insert(name.into(), n as f64);
        }
    }
    let live_nodes: Vec<usize> = (0..sim.len()).filter(|&i| live(sim, i)).collect();
    let (mut auth, mut decode) = (0, 0);
    for &i in &live_nodes {
        let s = sim.node(i).expect("live").stats();
        auth += s.auth_failures;
        decode += s.decode_errors;
    }
    m.insert("auth_failures".into(), auth as f64);
    m.insert("decode_errors".into(), decode as f64);
    if T::supports(ExpectKind::OverlayConnected) {
        if let Some(at) = metrics.connected_at {
            m.insert(
                "overlay_connected_ms".into(),
                (at - metrics.last_disruption).as_millis() as f64,
            );
        }
        let mut in_degree = vec![0u64; sim.len()];
        let sizes: Vec<usize> = live_nodes
            .iter()
            .map(|&i| {
                let view = sim.node(i).expect("live").protocol().active_view();
                for p in &view {
                    if let Some(d) = in_degree.get_mut(p.0 as usize) {
                        *d += 1;
                    }
                }
                view.len()
            })
            .collect();
        m.insert(
            "active_view_min".into(),
            sizes.iter().min().copied().unwrap_or(0) as f64,
        );
        m.insert(
            "active_view_max".into(),
            sizes.iter().max().copied().unwrap_or(0) as f64,
        );
        m.insert(
            "in_degree_max".into(),
            in_degree.iter().max().copied().unwrap_or(0) as f64,
        );
    }
    if let Some(last_op) = metrics.kv.last_op {
        let reference = last_op.max(metrics.last_disruption);
        if let Some(at) = metrics.kv_converged_at.filter(|at| *at >= reference) {
            m.insert("kv_converge_ms".into(), (at - reference).as_millis() as f64);
        }
        let lat = sorted_ms(&metrics.kv.latencies);
        if !lat.is_empty() {
            m.insert("kv_update_p50_ms".into(), round2(percentile(&lat, 0.50)));
            m.insert("kv_update_p99_ms".into(), round2(percentile(&lat, 0.99)));
        }
        m.insert(
            "kv_updates_undelivered".into(),
            metrics.kv.undelivered() as f64,
        );
    }
    let failures = metrics.detection.all();
    if !failures.is_empty() {
        // Over every failure: the first observer, the median and 90th percentile of all
        // observers, and the slowest failure to be noticed by every live node.
        let ms = |d: &hawser_core::Duration| d.as_nanos() as f64 / 1e6;
        let mut every: Vec<f64> = failures
            .iter()
            .flat_map(|(seen, _)| seen.iter().map(ms))
            .collect();
        every.sort_by(f64::total_cmp);
        if !every.is_empty() {
            m.insert("detect_first_ms".into(), round2(every[0]));
            m.insert("detect_p50_ms".into(), round2(percentile(&every, 0.5)));
            m.insert("detect_p90_ms".into(), round2(percentile(&every, 0.9)));
        }
        let complete: Vec<f64> = failures
            .iter()
            .filter(|(seen, n)| seen.len() >= *n)
            .map(|(seen, _)| seen.iter().map(ms).fold(0.0, f64::max))
            .collect();
        if complete.len() == failures.len() {
            m.insert(
                "detect_all_ms".into(),
                round2(complete.iter().copied().fold(0.0, f64::max)),
            );
        }
    }
    if metrics.mc.any_sent() {
        let delays = sorted_ms(&metrics.mc.delays);
        if !delays.is_empty() {
            m.insert(
                "mc_delivery_p50_ms".into(),
                round2(percentile(&delays, 0.5)),
            );
            m.insert(
                "mc_delivery_p99_ms".into(),
                round2(percentile(&delays, 0.99)),
            );
            m.insert(
                "mc_msgs_per_delivery".into(),
                round2(metrics.mc.total_copies() as f64 / delays.len() as f64),
            );
        }
        m.insert("mc_undelivered".into(), metrics.mc.undelivered() as f64);
    }
    for (name, value) in overlay {
        m.insert(name.into(), round2(value));
    }
    let passed = expectations.iter().all(|e| e.passed);
    let at = |t: Instant| format!("{:>9.3}s", t.as_nanos() as f64 / 1e9);
    let notes = metrics
        .notes
        .iter()
        .map(|(t, l)| format!("{}  {l}", at(*t).trim_start()))
        .collect();
    let mut lines: Vec<(Instant, String)> = timeline.into_iter().chain(metrics.notes).collect();
    lines.sort_by_key(|(t, _)| *t); // stable: a step's note follows the step
    Report {
        scenario: scenario.name.clone(),
        seed: scenario.seed,
        nodes: scenario.nodes,
        virtual_ms: end.as_millis(),
        wall_ms,
        events: stats.events,
        trace_hash: sim.trace_hash(),
        passed,
        expectations,
        metrics: m,
        notes,
        timeline: lines
            .into_iter()
            .map(|(t, l)| format!("{}  {l}", at(t)))
            .collect(),
    }
}

/// Durations in milliseconds, sorted (for [`percentile`]).
fn sorted_ms(durations: &[hawser_core::Duration]) -> Vec<f64> {
    let mut ms: Vec<f64> = durations
        .iter()
        .map(|d| d.as_nanos() as f64 / 1e6)
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

/// The `p` quantile (0..=1) of sorted, non-empty `values` (nearest rank).
fn percentile(values: &[f64], p: f64) -> f64 {
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
