//! From scenario steps to primitive actions at instants: the run's plan.

use hawser_core::{Duration, Instant, NodeRng};
use hawser_sim::DiskFault;

use crate::file::{Action, ExpectKind, Scenario, Selector};
use crate::target::Target;

/// One primitive fault or command, at one instant.
#[derive(Clone, Debug)]
pub(crate) enum Prim {
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
    /// Cut (`true`) or restore every link of this node.
    Cut(usize, bool),
    Pause(usize, Duration),
    Clock(usize, i64, Duration),
    /// This node's interface carries this many bytes a second (`None`: no limit).
    Bandwidth(usize, Option<u64>),
    /// This node's syncs take this long (`None`: the run's `sync_latency` again).
    DiskSlow(usize, Option<Duration>),
    /// This node's next sync meets this fault.
    DiskFault(usize, DiskFault),
    /// Apply this op (JSON text) to this key on this node.
    KvOp(usize, String, String),
    /// Multicast this many bytes on this topic from this node.
    Multicast(usize, String, usize),
}

/// Refuse, before anything runs, what this build or this target cannot do.
pub fn check<T: Target>(scenario: &Scenario) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Err(e) = T::check_config(&scenario.config) {
        problems.push(format!("[config]: {e}"));
    }
    for step in &scenario.steps {
        let supported = match step.action {
            Action::KvOp { .. } => T::supports(ExpectKind::KvConverged),
            Action::Multicast { .. } => T::supports(ExpectKind::MulticastDelivered),
            _ => true,
        };
        if !supported {
            problems.push(format!(
                "line {}: action {:?} is not supported yet",
                step.line,
                step.action.name()
            ));
        }
    }
    if let Some(o) = scenario.overlays.first()
        && !T::supports(ExpectKind::SubnetsUnique)
    {
        problems.push(format!(
            "line {}: [[overlay]] is not supported by this stack (it needs the KV and global \
             membership: stack = \"full\")",
            o.line
        ));
    }
    for e in &scenario.expects {
        if e.kind == ExpectKind::SubnetsUnique && scenario.overlays.is_empty() {
            problems.push(format!(
                "line {}: expectation \"subnets-unique\" needs an [[overlay]] network to check",
                e.line
            ));
        }
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

/// Primitive actions at their instants, and the steps as the report's timeline shows them.
type Expanded = (Vec<(Instant, Prim)>, Vec<(Instant, String)>);

/// Expand the steps into primitive actions at their instants, in order, drawing random
/// selections from the run's seed.
pub(crate) fn expand(scenario: &Scenario, rng: &mut NodeRng) -> Expanded {
    let n = scenario.nodes;
    let mut pick = |k: usize| rng.index(k);
    let mut prims = Vec::new();
    let mut timeline = Vec::new();
    for step in &scenario.steps {
        let at = Instant::ZERO + step.at;
        let each = |sel: &Selector, pick: &mut dyn FnMut(usize) -> usize| sel.resolve(n, pick);
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
            Action::PowerLoss {
                nodes,
                down,
                stagger,
            } => {
                let mut ids = each(nodes, &mut pick);
                ids.iter().for_each(|&i| prims.push((at, Prim::Kill(i))));
                // Fisher–Yates from the run's stream: the order the nodes come back in.
                for k in (1..ids.len()).rev() {
                    ids.swap(k, pick(k + 1));
                }
                let back = at + *down;
                for (k, &i) in ids.iter().enumerate() {
                    prims.push((back + stagger.saturating_mul(k as u64), Prim::Restart(i)));
                }
                format!(
                    "power-loss {} nodes; back from +{down} in the order {}, {stagger} apart",
                    ids.len(),
                    summary(&ids)
                )
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
            Action::Flap {
                nodes,
                period,
                duration,
            } => {
                let ids = each(nodes, &mut pick);
                let end = at + *duration;
                let mut t = at;
                let mut cut = true;
                while t < end {
                    ids.iter().for_each(|&i| prims.push((t, Prim::Cut(i, cut))));
                    t += *period;
                    cut = !cut;
                }
                ids.iter()
                    .for_each(|&i| prims.push((end, Prim::Cut(i, false))));
                format!("flap {} every {period} for {duration}", summary(&ids))
            }
            Action::Pause { nodes, duration } => {
                let ids = each(nodes, &mut pick);
                ids.iter()
                    .for_each(|&i| prims.push((at, Prim::Pause(i, *duration))));
                format!("pause {} for {duration:?}", summary(&ids))
            }
            Action::Clock {
                nodes,
                drift_ppm,
                step,
            } => {
                let ids = each(nodes, &mut pick);
                ids.iter()
                    .for_each(|&i| prims.push((at, Prim::Clock(i, *drift_ppm, *step))));
                format!("clock {} {drift_ppm:+} ppm, step {step}", summary(&ids))
            }
            Action::Bandwidth {
                nodes,
                bytes_per_sec,
                duration,
            } => {
                let ids = each(nodes, &mut pick);
                let set = |i, on: bool| Prim::Bandwidth(i, on.then_some(*bytes_per_sec));
                for_a_while(&mut prims, &ids, at, *duration, set);
                let until = duration.map_or(String::new(), |d| format!(" for {d}"));
                format!("bandwidth {}: {bytes_per_sec} B/s{until}", summary(&ids))
            }
            Action::DiskSlow {
                nodes,
                latency,
                duration,
            } => {
                let ids = each(nodes, &mut pick);
                let set = |i, on: bool| Prim::DiskSlow(i, on.then_some(*latency));
                for_a_while(&mut prims, &ids, at, *duration, set);
                let until = duration.map_or(String::new(), |d| format!(" for {d}"));
                format!("disk-slow {}: syncs take {latency}{until}", summary(&ids))
            }
            Action::DiskFail { nodes } | Action::DiskTear { nodes } => {
                let ids = each(nodes, &mut pick);
                let fault = match step.action {
                    Action::DiskFail { .. } => DiskFault::Fail,
                    _ => DiskFault::Tear,
                };
                ids.iter()
                    .for_each(|&i| prims.push((at, Prim::DiskFault(i, fault))));
                format!(
                    "{} {} (at its next sync)",
                    step.action.name(),
                    summary(&ids)
                )
            }
            Action::KvOp { node, key, op } => {
                let ids = each(node, &mut pick);
                ids.iter()
                    .for_each(|&i| prims.push((at, Prim::KvOp(i, key.clone(), op.clone()))));
                format!("kv-op on {} key {key:?}: {op}", summary(&ids))
            }
            Action::Multicast {
                node,
                topic,
                size,
                count,
                every,
            } => {
                let mut origins = Vec::new();
                for k in 0..*count {
                    let at = at + every.saturating_mul(k as u64);
                    for i in each(node, &mut pick) {
                        prims.push((at, Prim::Multicast(i, topic.clone(), *size)));
                        origins.push(i);
                    }
                }
                let times = if *count > 1 {
                    format!(" x{count}, every {every:?}")
                } else {
                    String::new()
                };
                format!(
                    "multicast{times} from {} on {topic:?}, {size} bytes",
                    summary(&origins)
                )
            }
        };
        timeline.push((at, line));
    }
    prims.sort_by_key(|(t, _)| *t); // stable: same-instant actions keep file order
    (prims, timeline)
}

/// A setting that holds on each of `ids` from `at`, and is undone `duration` later if
/// given: `set(i, true)` and `set(i, false)`.
fn for_a_while(
    prims: &mut Vec<(Instant, Prim)>,
    ids: &[usize],
    at: Instant,
    duration: Option<Duration>,
    set: impl Fn(usize, bool) -> Prim,
) {
    for &i in ids {
        prims.push((at, set(i, true)));
        if let Some(d) = duration {
            prims.push((at + d, set(i, false)));
        }
    }
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

pub(crate) fn disruptive(p: &Prim) -> bool {
    !matches!(
        p,
        Prim::Slow(..)
            | Prim::Pause(..)
            | Prim::Clock(..)
            | Prim::DiskSlow(..)
            | Prim::Bandwidth(..)
            // The stop it causes, at the sync, is the disruption (see the runner).
            | Prim::DiskFault(..)
            | Prim::KvOp(..)
            | Prim::Multicast(..)
    )
}
