//! Runs a scenario in the simulator: expands its steps, applies them at their virtual
//! times, checks every expectation, and gathers the figures.

use std::collections::BTreeMap;
use std::io::Write;

use hawser_core::rng::mix_seed;
use hawser_core::{Addr, Cookie, Duration, Event, Instant, NodeRng};
use hawser_sim::{Sim, SimConfig, Status};

use crate::expectations::{State, Tracker};
use crate::file::{Action, ExpectKind, Scenario};
use crate::graph;
use crate::report::{Outcome, Report};
use crate::target::Target;

/// Knobs that do not change what the run does (they are not part of the scenario).
pub struct Options {
    /// Write every delivered event as JSON lines here.
    pub trace: Option<Box<dyn Write>>,
    /// How often (virtual time) whole-cluster expectations are evaluated.
    pub check_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            trace: None,
            check_every: Duration::from_millis(100),
        }
    }
}

/// One primitive fault or command, at one instant.
#[derive(Clone, Debug)]
enum Prim {
    Start(usize),
    Kill(usize),
    Restart(usize),
    Freeze(usize),
    Wipe(usize),
    Partition(Vec<Vec<usize>>),
    Oneway(Vec<usize>, Vec<usize>),
    Heal,
    Cookie(usize, bool),
    Slow(usize, Duration, Option<Duration>),
    Pause(usize, Duration),
}

/// Refuse, before anything runs, what this build or this target cannot do.
pub fn check<T: Target>(scenario: &Scenario) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Err(e) = T::check_config(&scenario.config) {
        problems.push(format!("[config]: {e}"));
    }
    for step in &scenario.steps {
        if matches!(step.action, Action::KvOp { .. } | Action::Multicast { .. }) {
            problems.push(format!(
                "line {}: action {:?} is not supported yet",
                step.line,
                step.action.name()
            ));
        }
    }
    for e in &scenario.expects {
        if !T::supports(e.kind) {
            problems.push(format!(
                "line {}: expectation {:?} is not supported yet",
                e.line,
                e.kind.name()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Expand the steps into primitive actions at their instants, in order, drawing random
/// selections from the run's seed.
fn expand(
    scenario: &Scenario,
    rng: &mut NodeRng,
) -> (Vec<(Instant, Prim)>, Vec<(Instant, String)>) {
    let n = scenario.nodes;
    let mut pick = |k: usize| rng.index(k);
    let mut prims = Vec::new();
    let mut timeline = Vec::new();
    for step in &scenario.steps {
        let at = Instant::ZERO + step.at;
        let each = |sel: &crate::file::Selector, pick: &mut dyn FnMut(usize) -> usize| {
            sel.resolve(n, pick)
        };
        let summary = |ids: &[usize]| summarize(ids);
        let line = match &step.action {
            Action::Start { nodes, stagger } => {
                let ids = each(nodes, &mut pick);
                for (k, &i) in ids.iter().enumerate() {
                    prims.push((at + stagger.saturating_mul(k as u64), Prim::Start(i)));
                }
                format!("start {} (stagger {stagger:?})", summary(&ids))
            }
            Action::Kill { nodes }
            | Action::Restart { nodes }
            | Action::Freeze { nodes }
            | Action::Wipe { nodes } => {
                let ids = each(nodes, &mut pick);
                for &i in &ids {
                    let p = match step.action {
                        Action::Kill { .. } => Prim::Kill(i),
                        Action::Restart { .. } => Prim::Restart(i),
                        Action::Freeze { .. } => Prim::Freeze(i),
                        _ => Prim::Wipe(i),
                    };
                    prims.push((at, p));
                }
                format!("{} {}", step.action.name(), summary(&ids))
            }
            Action::BreakCookie { nodes } | Action::MendCookie { nodes } => {
                let ids = each(nodes, &mut pick);
                let broken = matches!(step.action, Action::BreakCookie { .. });
                ids.iter()
                    .for_each(|&i| prims.push((at, Prim::Cookie(i, broken))));
                format!("{} {}", step.action.name(), summary(&ids))
            }
            Action::Partition { groups, keep } => {
                let bridges = keep
                    .as_ref()
                    .map(|k| each(k, &mut pick))
                    .unwrap_or_default();
                let groups: Vec<Vec<usize>> = groups
                    .iter()
                    .map(|g| {
                        each(g, &mut pick)
                            .into_iter()
                            .filter(|i| !bridges.contains(i))
                            .collect()
                    })
                    .collect();
                let text = groups
                    .iter()
                    .map(|g| summary(g))
                    .collect::<Vec<_>>()
                    .join(" | ");
                prims.push((at, Prim::Partition(groups)));
                format!("partition {text}")
            }
            Action::PartitionOneway { from, to } => {
                let (f, t) = (each(from, &mut pick), each(to, &mut pick));
                let line = format!("partition-oneway {} -> {}", summary(&f), summary(&t));
                prims.push((at, Prim::Oneway(f, t)));
                line
            }
            Action::Heal => {
                prims.push((at, Prim::Heal));
                "heal".to_string()
            }
            Action::SlowLink {
                nodes,
                extra,
                duration,
            } => {
                let ids = each(nodes, &mut pick);
                ids.iter()
                    .for_each(|&i| prims.push((at, Prim::Slow(i, *extra, *duration))));
                format!("slow-link {} +{extra:?} for {duration:?}", summary(&ids))
            }
            Action::Pause { nodes, duration } => {
                let ids = each(nodes, &mut pick);
                ids.iter()
                    .for_each(|&i| prims.push((at, Prim::Pause(i, *duration))));
                format!("pause {} for {duration:?}", summary(&ids))
            }
            Action::KvOp { .. } | Action::Multicast { .. } => unreachable!("refused by check()"),
        };
        timeline.push((at, line));
    }
    prims.sort_by_key(|(t, _)| *t); // stable: same-instant actions keep file order
    (prims, timeline)
}

/// `n0..n9`, `n3`, or `n1,n4,n7` (shortened past eight names).
fn summarize(ids: &[usize]) -> String {
    match ids {
        [] => "(none)".into(),
        [one] => format!("n{one}"),
        _ if ids.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!("n{}..n{}", ids[0], ids[ids.len() - 1])
        }
        _ if ids.len() <= 8 => ids
            .iter()
            .map(|i| format!("n{i}"))
            .collect::<Vec<_>>()
            .join(","),
        _ => format!(
            "{} nodes ({}, ...)",
            ids.len(),
            ids[..4]
                .iter()
                .map(|i| format!("n{i}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn disruptive(p: &Prim) -> bool {
    !matches!(p, Prim::Slow(..) | Prim::Pause(..))
}

/// Run `scenario` with target `T`. `Err` only for a scenario this build cannot run.
pub fn run<T: Target>(scenario: &Scenario, options: Options) -> Result<Report, String> {
    check::<T>(scenario)?;
    let wall = std::time::Instant::now();
    let mut rng = NodeRng::from_seed(mix_seed(scenario.seed, 0x5CE7A210));
    let contacts: Vec<Addr> = scenario
        .contacts
        .resolve(scenario.nodes, &mut |k| rng.index(k))
        .into_iter()
        .map(Sim::<T>::addr)
        .collect();
    let (prims, timeline) = expand(scenario, &mut rng);

    let mut config = SimConfig::new(scenario.seed);
    let net = &scenario.network;
    config.latency = net.latency;
    config.link_timeout = net.link_timeout;
    config.connect_timeout = net.connect_timeout;
    config.sync_latency = net.sync_latency;
    config.lose_unsynced = net.lose_unsynced;
    let overrides = scenario.config.clone();
    let mut sim = Sim::new(scenario.nodes, config, move |i, snapshot| {
        T::build(i, &overrides, &contacts, snapshot)
    })?;
    if let Some(log) = options.trace {
        sim.set_trace_log(log);
    }

    let end = Instant::ZERO + scenario.duration;
    let mut trackers: Vec<Tracker> = scenario
        .expects
        .iter()
        .map(|e| Tracker::new(e, end))
        .collect();
    let scope: Vec<Option<Vec<bool>>> = scenario
        .expects
        .iter()
        .map(|e| {
            e.nodes.as_ref().map(|sel| {
                let mut member = vec![false; scenario.nodes];
                sel.resolve(scenario.nodes, &mut |k| rng.index(k))
                    .into_iter()
                    .for_each(|i| member[i] = true);
                member
            })
        })
        .collect();
    let watch_overlay = T::supports(ExpectKind::OverlayConnected);

    let mut metrics = Metrics::default();
    let mut next_check = Instant::ZERO;
    let mut prims = prims.into_iter().peekable();
    loop {
        let next_prim = prims.peek().map(|(t, _)| *t).unwrap_or(end);
        let steady_at = if metrics.steady_start.is_none() {
            metrics.steady_from(end)
        } else {
            end
        };
        let deadline = next_prim.min(next_check).min(end).min(steady_at);
        while let Some(step) = sim.step(deadline) {
            if let Some(i) = step.node {
                per_node_checks(&sim, i, step.at, &mut trackers, &scope);
            }
            let evictions: Vec<_> = sim
                .drain_events()
                .filter_map(|(at, i, event)| match event {
                    Event::App(e) => T::evicted(&e).map(|peer| (at, i, peer.0 as usize)),
                    _ => None,
                })
                .collect();
            for (at, i, p) in evictions {
                metrics.evictions += 1;
                let alive = p < sim.len() && matches!(sim.status(p), Status::Up | Status::Paused);
                if alive && sim.path_open(i, p) {
                    let why = format!("n{i} evicted n{p}, which was alive and reachable");
                    for t in trackers
                        .iter_mut()
                        .filter(|t| t.kind() == ExpectKind::NoFalsePositives && t.active(at))
                    {
                        t.observe(at, Err(why.clone()));
                    }
                }
            }
        }
        let now = sim.now();
        if now >= next_check {
            whole_cluster_checks(
                &sim,
                now,
                &mut trackers,
                &scope,
                watch_overlay,
                &mut metrics,
            );
            next_check = now + options.check_every;
        }
        while prims.peek().is_some_and(|(t, _)| *t <= now) {
            let (_, p) = prims.next().expect("peeked");
            if disruptive(&p) {
                metrics.disrupted(now);
            }
            apply(&mut sim, p);
        }
        if now >= end {
            break;
        }
        if metrics.steady_start.is_none() && now >= steady_at {
            metrics.steady_start = Some((sim.stats().frames, sim.stats().bytes));
        }
    }
    trackers.iter_mut().for_each(|t| t.settle(end));
    Ok(report(
        scenario,
        &sim,
        trackers,
        metrics,
        timeline,
        wall.elapsed().as_millis() as u64,
    ))
}

fn apply<T: Target>(sim: &mut Sim<T>, p: Prim) {
    match p {
        Prim::Start(i) => {
            if sim.node(i).is_none() {
                sim.start(i)
            }
        }
        Prim::Kill(i) => sim.kill(i),
        Prim::Restart(i) => sim.start(i),
        Prim::Freeze(i) => sim.freeze(i),
        Prim::Wipe(i) => sim.wipe(i),
        Prim::Partition(groups) => sim.partition(&groups),
        Prim::Oneway(from, to) => sim.partition_oneway(&from, &to),
        Prim::Heal => sim.heal(),
        Prim::Cookie(i, broken) => {
            let cookie =
                broken.then(|| Cookie::new(format!("broken-cookie-of-n{i}")).expect("non-empty"));
            sim.set_cookie(i, cookie)
        }
        Prim::Slow(i, extra, d) => sim.slow(i, extra, d),
        Prim::Pause(i, d) => sim.pause(i, d),
    }
}

fn live<T: Target>(sim: &Sim<T>, i: usize) -> bool {
    matches!(sim.status(i), Status::Up | Status::Paused)
}

fn in_scope(scope: &Option<Vec<bool>>, i: usize) -> bool {
    scope.as_ref().is_none_or(|m| m[i])
}

/// Invariants on the node an event touched.
fn per_node_checks<T: Target>(
    sim: &Sim<T>,
    i: usize,
    at: Instant,
    trackers: &mut [Tracker],
    scope: &[Option<Vec<bool>>],
) {
    let Some(node) = sim.node(i) else { return };
    for (t, s) in trackers.iter_mut().zip(scope) {
        if t.kind() == ExpectKind::ViewsBounded && t.active(at) && in_scope(s, i) {
            if let Err(why) = node.protocol().check_views(Sim::<T>::id(i)) {
                t.observe(at, Err(format!("n{i}: {why}")));
            }
        }
    }
}

/// Expectations about the whole cluster, evaluated on the sampling clock.
fn whole_cluster_checks<T: Target>(
    sim: &Sim<T>,
    now: Instant,
    trackers: &mut [Tracker],
    scope: &[Option<Vec<bool>>],
    watch_overlay: bool,
    metrics: &mut Metrics,
) {
    let views = graph::Views(if watch_overlay {
        (0..sim.len())
            .map(|i| {
                let node = sim.node(i).filter(|_| live(sim, i))?;
                Some(
                    node.protocol()
                        .active_view()
                        .iter()
                        .map(|p| p.0 as usize)
                        .collect(),
                )
            })
            .collect()
    } else {
        Vec::new()
    });
    metrics.symmetry.observe(now, &views);
    if watch_overlay
        && metrics.connected_at.is_none()
        && graph::overlay_connected(now, &views, None, &metrics.symmetry).is_ok()
    {
        metrics.connected_at = Some(now);
    }
    for (t, s) in trackers.iter_mut().zip(scope) {
        if !t.active(now) {
            t.settle(now);
            continue;
        }
        match t.kind() {
            ExpectKind::OverlayConnected => t.observe(
                now,
                graph::overlay_connected(now, &views, s.as_deref(), &metrics.symmetry),
            ),
            ExpectKind::ViewsBounded | ExpectKind::NoFalsePositives => t.observe(now, Ok(())),
            other => t.observe(now, Err(format!("{} is not supported", other.name()))),
        }
        t.settle(now);
    }
}

#[derive(Default)]
struct Metrics {
    evictions: u64,
    symmetry: graph::Symmetry,
    last_disruption: Instant,
    connected_at: Option<Instant>,
    steady_start: Option<(u64, u64)>,
}

impl Metrics {
    fn disrupted(&mut self, now: Instant) {
        self.last_disruption = now;
        self.connected_at = None;
    }
    /// Steady-state traffic is measured over the last quarter of the run.
    fn steady_from(&self, end: Instant) -> Instant {
        Instant::ZERO + (end - Instant::ZERO).saturating_sub((end - Instant::ZERO) / 4)
    }
}

fn report<T: Target>(
    scenario: &Scenario,
    sim: &Sim<T>,
    trackers: Vec<Tracker>,
    metrics: Metrics,
    timeline: Vec<(Instant, String)>,
    wall_ms: u64,
) -> Report {
    let expectations: Vec<Outcome> = trackers
        .into_iter()
        .map(|t| {
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
                detail,
            }
        })
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
    let passed = expectations.iter().all(|e| e.passed);
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
        timeline: timeline
            .into_iter()
            .map(|(t, l)| format!("{:>9.3}s  {l}", t.as_nanos() as f64 / 1e9))
            .collect(),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
