//! Runs a scenario in the simulator: expands its steps, applies them at their virtual
//! times, checks every expectation, and gathers the figures.

use std::fmt;
use std::io::Write;

use hawser_core::rng::mix_seed;
use hawser_core::routing::digest_of;
use hawser_core::{Addr, Cookie, Duration, Event, Instant, NodeId, NodeRng};
use hawser_sim::{DiskFault, Sim, SimConfig, Status};

use crate::expectations::Tracker;
use crate::file::{Expect, ExpectKind, Scenario, StackKind};
use crate::graph;
use crate::invariant::{Invariants, NameError, Watch};
use crate::metrics::{Metrics, report};
use crate::network::{Components, Network, together};
use crate::overlay::{Overlays, subnets_unique};
use crate::pictures::Recorder;
use crate::plan::{Prim, check, disruptive, expand};
use crate::report::Report;
use crate::target::Target;
use crate::tracelog;
use crate::viewcache::ViewCache;

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

/// Why a scenario cannot run (a failed expectation is not an error: it is in the
/// [`Report`]).
#[derive(Debug)]
pub enum RunError {
    /// The scenario asks for what this target cannot do (an action, an expectation, a
    /// `[config]` field): one line per problem.
    Unsupported(String),
    /// The simulator refused the settings.
    Sim(String),
    /// No node ever started, so nothing ran and nothing was checked.
    NothingRan { file: String },
    /// A custom invariant's name cannot be told apart from another's.
    Invariant(NameError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Unsupported(problems) => f.write_str(problems),
            RunError::Sim(why) => write!(f, "the simulator refused the settings: {why}"),
            RunError::NothingRan { file } => write!(
                f,
                "{file}: no node ever started, so nothing ran and no expectation had anything \
                 to check (add a step with action = \"start\")"
            ),
            RunError::Invariant(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RunError {}

/// For callers that report errors as text (the CLI).
impl From<RunError> for String {
    fn from(e: RunError) -> String {
        e.to_string()
    }
}

/// Run `scenario` on the stack it names (`stack = ...`): what `hawser sim` and the
/// catalogue tests do.
pub fn run_stack(scenario: &Scenario, options: Options) -> Result<Report, RunError> {
    match scenario.stack {
        StackKind::Full => run::<hawser_core::stack::Stack>(scenario, options),
        StackKind::Membership => run::<hawser_core::membership::Membership>(scenario, options),
    }
}

/// Run `scenario` with target `T`. `Err` only for a scenario this build cannot run.
pub fn run<T: Target>(scenario: &Scenario, options: Options) -> Result<Report, RunError> {
    run_with::<T>(scenario, options, &Invariants::new())
}

/// [`run`], also checking the protocol's own `invariants` (each in the report under its
/// name, after the file's expectations).
pub fn run_with<T: Target>(
    scenario: &Scenario,
    options: Options,
    invariants: &Invariants<T>,
) -> Result<Report, RunError> {
    run_recording::<T>(scenario, options, invariants, None)
}

/// [`run_with`], with the pictures' recording hook when `recorder` is given (`--report`).
pub(crate) fn run_recording<T: Target>(
    scenario: &Scenario,
    options: Options,
    invariants: &Invariants<T>,
    mut recorder: Option<&mut Recorder>,
) -> Result<Report, RunError> {
    check::<T>(scenario).map_err(RunError::Unsupported)?;
    let mut watch = Watch::new(invariants).map_err(RunError::Invariant)?;
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
    config.latency_tail = net
        .latency_tail
        .map(|(ppm, max)| hawser_sim::LatencyTail { ppm, max });
    config.handshake_reset_ppm = net.handshake_reset;
    config.link_timeout = net.link_timeout;
    config.connect_timeout = net.connect_timeout;
    config.sync_latency = net.sync_latency;
    config.lose_unsynced = net.lose_unsynced;
    let overrides = scenario.config.clone();
    let mut sim = Sim::new(scenario.nodes, config, move |i, snapshot| {
        T::build(i, &overrides, &contacts, snapshot)
    })
    .map_err(RunError::Sim)?;
    if let Some(log) = options.trace {
        sim.set_trace_log(log, Some(T::trace_event));
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
    if let Some(r) = recorder.as_deref_mut() {
        r.planned(scenario, &timeline, &trackers);
    }
    let watch_overlay = T::supports(ExpectKind::OverlayConnected);
    let mut overlays = Overlays::new(&scenario.overlays, scenario.nodes);
    let mut views = ViewCache::new(scenario.nodes);

    let mut metrics = Metrics::default();
    let mut net = Network::default();
    let mut next_check = Instant::ZERO;
    let mut prims = prims.into_iter().peekable();
    // The step's events, moved out of the simulator so the invariants can read it while
    // they look at each (reused: no allocation per step).
    let mut drained = Vec::new();
    loop {
        let next_prim = prims.peek().map(|(t, _)| *t).unwrap_or(end);
        let steady_at = if metrics.steady_start.is_none() {
            metrics.steady_from(end)
        } else {
            end
        };
        let deadline = next_prim
            .min(next_check)
            .min(end)
            .min(steady_at)
            .min(overlays.next_poll().unwrap_or(end));
        while let Some(step) = sim.step(deadline) {
            if let Some(i) = step.node {
                disk_stops(&mut sim, &mut metrics, &mut net, &mut overlays, &mut views);
                if sim.node(i).is_some() {
                    per_node_checks(&sim, i, step.at, &mut trackers, &scope, &mut views);
                    watch.after_step(&sim, i);
                }
            }
            let mut evictions = Vec::new();
            let mut changes = Vec::new();
            drained.extend(sim.drain_events());
            for (at, i, event) in drained.drain(..) {
                let Event::App(e) = event else { continue };
                watch.event(&sim, i, &e);
                if let Some(peer) = T::evicted(&e) {
                    evictions.push((at, i, peer.0 as usize));
                }
                if let Some(key) = T::kv_changed(&e) {
                    changes.push((at, i, key.to_string()));
                }
                if let Some(peer) = T::unreachable_event(&e) {
                    metrics.detection.noticed(at, peer.0 as usize);
                    if let Some(r) = recorder.as_deref_mut() {
                        r.unreachable_event();
                    }
                }
                if let Some((origin, seq)) = T::multicast_delivered(&e) {
                    metrics.mc.delivered(at, i, origin.0 as usize, seq);
                }
            }
            for (at, i, key) in changes {
                overlays.changed(&sim, i, &key);
                let node = sim.node(i).map(|n| n.protocol());
                metrics
                    .kv
                    .changed(at, i, &key, |t| node.is_some_and(|n| n.kv_seen(&key, t)));
            }
            for (at, i, p) in evictions {
                metrics.evictions += 1;
                let alive = p < sim.len() && matches!(sim.status(p), Status::Up | Status::Paused);
                // A neighbour may evict a node's previous life (killed or frozen) just
                // after the node came back: its connection to the dead life takes up
                // to the link timeout to break. That is detection, not a false positive.
                let old_life = metrics
                    .back_at
                    .get(&p)
                    .is_some_and(|&back| at < back + scenario.network.link_timeout);
                // Just after a heal, what the cut held is still on its way: a suspicion
                // that ran out then was the cut's doing (found by the swarm, seed
                // 100394: an eviction 2 ms after a heal).
                let cut_news = metrics.healed_at.is_some_and(|healed| {
                    at < healed + scenario.network.latency.1.saturating_mul(2)
                });
                if alive && !old_life && !cut_news && sim.path_open(i, p) {
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
        // Steps first, then checks: a check at a step's instant sees the step done (a
        // kill at 10 s is something to detect at 10 s, not a node still up that nobody
        // needs to consider unreachable).
        if let Some(r) = recorder.as_deref_mut() {
            r.before_steps(&sim, now);
        }
        while prims.peek().is_some_and(|(t, _)| *t <= now) {
            let (_, p) = prims.next().expect("peeked");
            if disruptive(&p) {
                metrics.disrupted(now);
                net.changed();
            }
            apply(
                &mut sim,
                p,
                &mut metrics,
                &mut net,
                &mut overlays,
                &mut views,
                &mut watch,
            );
        }
        overlays.poll(&mut sim);
        if now >= next_check {
            whole_cluster_checks(
                &sim,
                now,
                &mut trackers,
                &scope,
                watch_overlay,
                &mut metrics,
                &mut net,
                &overlays,
                &mut views,
            );
            if let Some(r) = recorder.as_deref_mut() {
                r.sample(&sim, now, &metrics, &trackers);
            }
            next_check = now + options.check_every;
        }
        if net.is_stale() && (metrics.mc.undelivered() > 0 || metrics.kv.owed()) {
            let components = net.current(&sim);
            metrics.mc.network_changed(now, components);
            metrics.kv.network_changed(now, components);
        }
        if now >= end {
            break;
        }
        if metrics.steady_start.is_none() && now >= steady_at {
            metrics.steady_start = Some((sim.stats().frames, sim.stats().bytes));
        }
    }
    for t in &mut trackers {
        if t.kind().is_per_event() {
            per_event_verdict(t, &metrics, end);
        }
        t.settle(end);
    }
    for i in 0..sim.len() {
        read_copies(&sim, i, &mut metrics.mc);
    }
    if (0..sim.len()).all(|i| sim.status(i) == Status::Idle) {
        return Err(RunError::NothingRan {
            file: scenario.file.clone(),
        });
    }
    watch.end(&sim);
    if let Some(r) = recorder {
        r.finish(&sim, &trackers);
    }
    let overlay_figures = if overlays.is_empty() {
        Vec::new()
    } else {
        overlays.figures(metrics.last_disruption)
    };
    metrics.notes.append(&mut overlays.refused);
    Ok(report(
        scenario,
        &sim,
        trackers,
        watch.outcomes(),
        metrics,
        overlay_figures,
        timeline,
        wall.elapsed().as_millis() as u64,
    ))
}

fn apply<T: Target>(
    sim: &mut Sim<T>,
    p: Prim,
    metrics: &mut Metrics,
    net: &mut Network,
    overlays: &mut Overlays,
    views: &mut ViewCache,
    watch: &mut Watch<T>,
) {
    let now = sim.now();
    match p {
        Prim::Start(i) => {
            if sim.node(i).is_none() {
                views.forget(i);
                sim.start(i);
                overlays.started(sim, i, now);
                watch.started(sim, i, false);
            }
        }
        Prim::Kill(i) | Prim::Freeze(i) => {
            let was_live = live(sim, i);
            read_copies(sim, i, &mut metrics.mc);
            match p {
                Prim::Kill(_) => {
                    views.forget(i);
                    sim.kill(i)
                }
                _ => sim.freeze(i),
            }
            life_ended(sim, i, now, was_live, metrics, overlays);
        }
        Prim::Restart(i) | Prim::Wipe(i) => {
            read_copies(sim, i, &mut metrics.mc);
            views.forget(i);
            let wiped = matches!(p, Prim::Wipe(_));
            if wiped {
                sim.wipe(i)
            } else {
                sim.start(i)
            }
            overlays.started(sim, i, now);
            watch.started(sim, i, wiped);
            metrics.mc.life_ended(i);
            metrics.detection.back(i);
            metrics.back_at.insert(i, now);
        }
        Prim::Partition(groups) => sim.partition(&groups),
        Prim::Oneway(from, to) => sim.partition_oneway(&from, &to),
        Prim::Heal => {
            metrics.healed_at = Some(now);
            sim.heal()
        }
        Prim::Cookie(i, broken) => {
            let cookie =
                broken.then(|| Cookie::new(format!("broken-cookie-of-n{i}")).expect("non-empty"));
            sim.set_cookie(i, cookie)
        }
        Prim::Slow(i, extra, d) => sim.slow(i, extra, d),
        Prim::Cut(i, cut) => {
            if !cut {
                metrics.healed_at = Some(now);
            }
            sim.cut(i, cut)
        }
        Prim::Pause(i, d) => sim.pause(i, d),
        Prim::Clock(i, ppm, step) => sim.set_clock(i, ppm, step),
        Prim::Bandwidth(i, rate) => sim.limit_bandwidth(i, rate),
        Prim::DiskSlow(i, latency) => sim.slow_disk(i, latency),
        Prim::DiskFault(i, fault) => sim.break_disk(i, fault),
        Prim::KvOp(i, key, op) => match tracelog::kv_op(
            sim,
            i,
            &key,
            || tracelog::op_json(&op),
            |p, ctx| p.kv_op(ctx, &key, &op),
        ) {
            Some(Ok(ticket)) => metrics.kv.op(now, i, &key, ticket, net.current(sim)),
            Some(Err(why)) => metrics
                .notes
                .push((now, format!("kv-op on n{i} refused: {why}"))),
            None => metrics.notes.push((
                now,
                format!("kv-op on n{i} not applied: the node is not up"),
            )),
        },
        Prim::Multicast(i, topic, size) => {
            // The payload names its step, so a trace shows which message is which.
            let payload: Vec<u8> = format!("multicast from n{i} at {now:?};")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(size)
                .collect();
            match tracelog::multicast(sim, i, &topic, size, |p, ctx| {
                p.multicast(ctx, &topic, payload)
            }) {
                Some(Ok((_, seq))) => {
                    let known = sim.node(i).and_then(|n| n.protocol().reachable_set());
                    let knows = |j: usize| known.is_none_or(|k| k.contains(&NodeId(j as u64)));
                    metrics.mc.sent(now, i, seq, net.current(sim), knows)
                }
                Some(Err(why)) => metrics
                    .notes
                    .push((now, format!("multicast on n{i} refused: {why}"))),
                None => metrics.notes.push((
                    now,
                    format!("multicast on n{i} not sent: the node is not up"),
                )),
            }
        }
    }
}

/// Node `i` stopped at `now` (killed, frozen, or stopped by a disk fault): nobody waits
/// for it any more, and if it was live, its failure is one to detect.
fn life_ended<T: Target>(
    sim: &Sim<T>,
    i: usize,
    now: Instant,
    was_live: bool,
    metrics: &mut Metrics,
    overlays: &mut Overlays,
) {
    overlays.stopped(i);
    metrics.kv.gone(now, i);
    metrics.mc.life_ended(i);
    if was_live {
        let observers = (0..sim.len()).filter(|&j| live(sim, j)).count();
        metrics.detection.failed(now, i, observers);
    }
}

/// The simulator stopped nodes whose disk failed or tore a sync (`disk-fail`,
/// `disk-tear`): the bookkeeping of a kill, at the sync. (Their multicast copies of
/// that life are not counted: the node was gone before the runner could read them.)
fn disk_stops<T: Target>(
    sim: &mut Sim<T>,
    metrics: &mut Metrics,
    net: &mut Network,
    overlays: &mut Overlays,
    views: &mut ViewCache,
) {
    let now = sim.now();
    let stopped: Vec<_> = sim.drain_disk_faults().collect();
    for (i, fault) in stopped {
        metrics.disrupted(now);
        net.changed();
        views.forget(i);
        life_ended(sim, i, now, true, metrics, overlays);
        let why = match fault {
            DiskFault::Fail => "its sync failed; the node stopped",
            DiskFault::Tear => "it crashed in the middle of a sync",
        };
        metrics.notes.push((now, format!("n{i} down: {why}")));
    }
}

pub(crate) fn live<T: Target>(sim: &Sim<T>, i: usize) -> bool {
    matches!(sim.status(i), Status::Up | Status::Paused)
}

/// Read node `i`'s multicast copies, if it is live: before its life ends and at the end
/// of the run (the counter only grows, so the last reading of a life is all it sent; a
/// frozen node's was read when it froze).
fn read_copies<T: Target>(sim: &Sim<T>, i: usize, mc: &mut crate::mctrack::McTrack) {
    if let Some(node) = sim.node(i).filter(|_| live(sim, i)) {
        mc.copies(i, node.protocol().multicast_copies());
    }
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
    views: &mut ViewCache,
) {
    let Some(node) = sim.node(i) else { return };
    for (t, s) in trackers.iter_mut().zip(scope) {
        if t.kind() == ExpectKind::ViewsBounded
            && t.active(at)
            && in_scope(s, i)
            && let Err(why) = views.verdict(i, node.protocol())
        {
            t.observe(at, Err(format!("n{i}: {why}")));
        }
    }
}

/// Expectations about the whole cluster, evaluated on the sampling clock.
#[allow(clippy::too_many_arguments)]
fn whole_cluster_checks<T: Target>(
    sim: &Sim<T>,
    now: Instant,
    trackers: &mut [Tracker],
    scope: &[Option<Vec<bool>>],
    watch_overlay: bool,
    metrics: &mut Metrics,
    net: &mut Network,
    overlays: &Overlays,
    view_cache: &mut ViewCache,
) {
    let views = graph::Views(if watch_overlay {
        view_cache.active_views(sim)
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
    let reference = metrics.kv.last_op.map(|op| op.max(metrics.last_disruption));
    if reference.is_some_and(|r| metrics.kv_converged_at.is_none_or(|c| c < r)) {
        let all = Expect {
            kind: ExpectKind::KvConverged,
            ..trackers_template()
        };
        if kv_converged(sim, &all, None).is_ok() {
            metrics.kv_converged_at = Some(now);
        }
    }
    for (t, s) in trackers.iter_mut().zip(scope) {
        if !t.active(now) {
            if t.kind().is_per_event() {
                // Events due by `until` are judged at `until`, even between checks.
                per_event_verdict(t, metrics, now);
            }
            t.settle(now);
            continue;
        }
        if has_subject(sim, t.kind(), s.as_deref(), &mut metrics.vips) {
            t.saw_subject();
        }
        match t.kind() {
            ExpectKind::OverlayConnected => t.observe(
                now,
                graph::overlay_connected(now, &views, s.as_deref(), &metrics.symmetry),
            ),
            ExpectKind::KvConverged => {
                let result = kv_converged(sim, &t.expect, s.as_deref());
                t.observe(now, result)
            }
            ExpectKind::Detected => {
                let result = detected(sim, &t.expect, s.as_deref());
                t.observe(now, result)
            }
            ExpectKind::MembershipAgrees => {
                let result = membership_agrees(sim, net.current(sim), s.as_deref());
                t.observe(now, result)
            }
            ExpectKind::MulticastDelivered | ExpectKind::KvOpVisible => {
                per_event_verdict(t, metrics, now)
            }
            ExpectKind::VipBackends => {
                let result = vip_backends(sim, net.current(sim), s.as_deref(), &mut metrics.vips);
                t.observe(now, result)
            }
            ExpectKind::SubnetsUnique => {
                let result = overlays
                    .views(sim, s.as_deref())
                    .iter()
                    .try_for_each(|(net, views)| subnets_unique(net, views));
                t.observe(now, result)
            }
            ExpectKind::ViewsBounded | ExpectKind::NoFalsePositives => t.observe(now, Ok(())),
        }
        t.settle(now);
    }
}

/// A per-event kind (`multicast-delivered`, `kv-op-visible`) at `now` (or at its
/// `until`, once that has come): every event whose deadline has come, judged on its own.
fn per_event_verdict(t: &mut Tracker, metrics: &Metrics, now: Instant) {
    if !t.open() || now < t.after {
        return;
    }
    let at = now.min(t.until);
    let (since, until, within) = (t.after, t.until, t.expect.within);
    let verdict = match t.kind() {
        ExpectKind::KvOpVisible => metrics.kv.check(since, until, within, at),
        _ => metrics.mc.check(since, until, within, at),
    };
    match verdict {
        Ok(0) => t.observe(at, Ok(())),
        Ok(_) => {
            t.saw_subject();
            t.observe(at, Ok(()))
        }
        Err(why) => {
            // A miss is something checked: the failure is not "nothing to check".
            t.saw_subject();
            t.observe(at, Err(why))
        }
    }
}

/// Whether an evaluation of an expectation of `kind` at this instant has anything to
/// check (see [`ExpectKind::subject`]).
fn has_subject<T: Target>(
    sim: &Sim<T>,
    kind: ExpectKind,
    scope: Option<&[bool]>,
    vips: &mut VipCache,
) -> bool {
    let mut nodes = (0..sim.len()).filter(|&i| scope.is_none_or(|s| s[i]));
    match kind {
        ExpectKind::OverlayConnected
        | ExpectKind::ViewsBounded
        | ExpectKind::NoFalsePositives
        | ExpectKind::KvConverged => nodes.any(|i| live(sim, i)),
        ExpectKind::MembershipAgrees | ExpectKind::SubnetsUnique => {
            nodes.any(|i| sim.status(i) == Status::Up)
        }
        ExpectKind::Detected => {
            nodes.any(|i| matches!(sim.status(i), Status::Down | Status::Frozen))
        }
        ExpectKind::VipBackends => nodes.any(|i| {
            sim.status(i) == Status::Up
                && sim
                    .node(i)
                    .and_then(|n| vips.vips(i, n.protocol()))
                    .is_some_and(|v| !v.is_empty())
        }),
        // Its subject is an event that came due: `per_event_verdict` says.
        ExpectKind::MulticastDelivered | ExpectKind::KvOpVisible => false,
    }
}

/// `kv-converged`: with `key` and `value`, every live node in scope holds exactly that
/// value; with `key` alone, they all hold the same value; with neither, identical stores
/// (compared by their digests).
fn kv_converged<T: Target>(sim: &Sim<T>, e: &Expect, scope: Option<&[bool]>) -> Result<(), String> {
    let mut nodes = (0..sim.len())
        .filter(|&i| live(sim, i) && scope.is_none_or(|s| s[i]))
        .map(|i| (i, sim.node(i).expect("live").protocol()));
    let Some(key) = &e.key else {
        let Some((first, node)) = nodes.next() else {
            return Ok(());
        };
        let digest = node.kv_digest();
        return match nodes.find(|(_, n)| n.kv_digest() != digest) {
            Some((i, _)) => Err(format!("the stores of n{first} and n{i} differ")),
            None => Ok(()),
        };
    };
    let mut first: Option<(usize, serde_json::Value)> = None;
    for (i, node) in nodes {
        let seen = node.kv_value(key);
        if let Some(want) = &e.value
            && &seen != want
        {
            return Err(format!("n{i} holds {key:?} = {seen}, expected {want}"));
        }
        match &first {
            None => first = Some((i, seen)),
            Some((j, v)) if *v != seen => {
                return Err(format!("n{j} holds {key:?} = {v} but n{i} holds {seen}"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `membership-agrees`: every running node in scope considers reachable exactly the
/// nodes it can reach through the network (see `network`). A node whose set has its
/// component's size and digest agrees; only one that does not is compared node by node,
/// for the message.
fn membership_agrees<T: Target>(
    sim: &Sim<T>,
    net: &Components,
    scope: Option<&[bool]>,
) -> Result<(), String> {
    let mut expected: Vec<(usize, u64)> = Vec::new();
    for (j, label) in net.iter().enumerate() {
        if let Some(c) = *label {
            let c = c as usize;
            if expected.len() <= c {
                expected.resize(c + 1, (0, 0));
            }
            expected[c].0 += 1;
            expected[c].1 ^= digest_of(Sim::<T>::id(j));
        }
    }
    for i in (0..sim.len()).filter(|&i| sim.status(i) == Status::Up && scope.is_none_or(|s| s[i])) {
        let Some(node) = sim.node(i).map(|n| n.protocol()) else {
            continue;
        };
        let Some(seen) = node.reachable_set() else {
            continue;
        };
        let component = net[i].map(|c| expected[c as usize]);
        if component.is_some_and(|(len, digest)| {
            seen.len() == len && node.reachable_digest() == Some(digest)
        }) {
            continue;
        }
        // Both sides in id order (node j is `NodeId(j)`): one merge pass, no lookups.
        let mut seen = seen.iter().map(|id| id.0 as usize).peekable();
        for j in 0..sim.len() {
            let sees = seen.next_if_eq(&j).is_some();
            let reaches = together(net, i, j);
            if sees != reaches {
                return Err(if sees {
                    format!("n{i} considers n{j} reachable, but cannot reach it")
                } else {
                    format!("n{i} does not consider n{j} reachable, but can reach it")
                });
            }
        }
        if let Some(j) = seen.next() {
            return Err(format!("n{i} considers #{j} reachable, which is no node"));
        }
    }
    Ok(())
}

/// `vip-backends`: every running node in scope wants, for each VIP in its KV, the
/// backends on the nodes it can reach through the network (fail open when none): its
/// desired state under its own membership view equals the one under the network's
/// ground truth. Both are the dataplane's `desired`, the function the agent runs.
fn vip_backends<T: Target>(
    sim: &Sim<T>,
    net: &Components,
    scope: Option<&[bool]>,
    cache: &mut VipCache,
) -> Result<(), String> {
    use hawser_dataplane::lb::{NameRanges, desired};
    for i in (0..sim.len()).filter(|&i| sim.status(i) == Status::Up && scope.is_none_or(|s| s[i])) {
        let Some(node) = sim.node(i).map(|n| n.protocol()) else {
            continue;
        };
        let Some(vips) = cache.vips(i, node) else {
            continue;
        };
        let ranges = NameRanges::default();
        let own = desired(vips, |n| !node.considers_unreachable(n), ranges).state;
        let truth = |id: NodeId| (id.0 as usize) < sim.len() && together(net, i, id.0 as usize);
        let want = desired(vips, truth, ranges).state;
        if own == want {
            continue;
        }
        for (service, dests) in &want.services {
            let has = own.services.get(service);
            if has != Some(dests) {
                return Err(format!(
                    "n{i} sends {service} to {:?}, but the backends it can reach are {:?}",
                    has.map(|d| d.keys().collect::<Vec<_>>()),
                    dests.keys().collect::<Vec<_>>()
                ));
            }
        }
        return Err(format!(
            "n{i} wants services it should not: {:?}",
            own.services.keys()
        ));
    }
    Ok(())
}

/// Each node's VIPs, re-read from its KV only when its KV digest moved (a 50-node run
/// checks every 100 ms; parsing every backend of every node each time dominated it).
#[derive(Default)]
pub(crate) struct VipCache {
    nodes: Vec<Option<(Vec<u64>, VipMap)>>,
}

type VipMap =
    std::collections::BTreeMap<hawser_dataplane::lb::Vip, Vec<hawser_dataplane::lb::Backend>>;

impl VipCache {
    fn vips<T: Target>(&mut self, i: usize, node: &T) -> Option<&VipMap> {
        if self.nodes.len() <= i {
            self.nodes.resize_with(i + 1, || None);
        }
        let digest = node.kv_digest();
        let fresh = !matches!(&self.nodes[i], Some((d, _)) if *d == digest);
        if fresh {
            self.nodes[i] = Some((digest, node.lb_vips()?));
        }
        self.nodes[i].as_ref().map(|(_, v)| v)
    }
}

/// An expectation with every optional part left out.
fn trackers_template() -> Expect {
    Expect {
        kind: ExpectKind::KvConverged,
        nodes: None,
        after: Duration::ZERO,
        within: None,
        until: None,
        key: None,
        value: None,
        fraction: None,
        line: 0,
    }
}

/// `detected`: every node in scope that is down or frozen is considered unreachable by
/// at least `fraction` (default all) of the live nodes.
fn detected<T: Target>(sim: &Sim<T>, e: &Expect, scope: Option<&[bool]>) -> Result<(), String> {
    let live_nodes: Vec<usize> = (0..sim.len()).filter(|&i| live(sim, i)).collect();
    let fraction = e.fraction.unwrap_or(1.0);
    for x in (0..sim.len()).filter(|&x| scope.is_none_or(|s| s[x])) {
        if matches!(sim.status(x), Status::Up | Status::Paused | Status::Idle) {
            continue;
        }
        let id = Sim::<T>::id(x);
        let knowing = live_nodes
            .iter()
            .filter(|&&i| {
                sim.node(i)
                    .is_some_and(|n| n.protocol().considers_unreachable(id))
            })
            .count();
        let needed = (fraction * live_nodes.len() as f64).ceil() as usize;
        if knowing < needed {
            return Err(format!(
                "{knowing} of {} live nodes consider n{x} unreachable (need {needed})",
                live_nodes.len()
            ));
        }
    }
    Ok(())
}
