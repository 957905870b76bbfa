//! Curves over virtual time, sampled on the runner's check clock (every 100 ms of virtual
//! time). A sample only reads the simulator and the runner's figures, so recording never
//! changes what a run does or its trace hash.

use hawser_core::Instant;
use hawser_sim::Sim;

use crate::file::ExpectKind;
use crate::metrics::Metrics;
use crate::runner::live;
use crate::target::Target;

use super::graph_snapshot::{components, views};

/// One curve: its values at [`Series::t_ms`], drawn on the chart named `chart`.
#[derive(Clone, Debug)]
pub struct Curve {
    pub chart: &'static str,
    pub name: &'static str,
    pub values: Vec<f64>,
}

/// Every curve of a run, sharing one time axis.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Sample instants, virtual ms.
    pub t_ms: Vec<u64>,
    pub curves: Vec<Curve>,
}

impl Series {
    pub fn curve(&self, name: &str) -> Option<&Curve> {
        self.curves.iter().find(|c| c.name == name)
    }

    /// Append one sample. The set of curves depends only on the target (what it can
    /// answer), so every sample of a run names the same curves in the same order.
    fn push(&mut self, t_ms: u64, values: Vec<(&'static str, &'static str, f64)>) {
        if self.curves.is_empty() {
            self.curves = values
                .iter()
                .map(|&(chart, name, _)| Curve {
                    chart,
                    name,
                    values: Vec::new(),
                })
                .collect();
        }
        for (curve, (_, _, v)) in self.curves.iter_mut().zip(values) {
            curve.values.push(v);
        }
        self.t_ms.push(t_ms);
    }
}

/// What a sample needs from the previous one (rates are per interval).
#[derive(Default)]
pub(crate) struct Sampler {
    last: Option<(Instant, u64, u64)>,
    unreachable_events: u64,
    evictions_seen: u64,
    pub(crate) series: Series,
}

impl Sampler {
    /// A node reported a peer unreachable (counted until the next sample).
    pub(crate) fn unreachable_event(&mut self) {
        self.unreachable_events += 1;
    }

    pub(crate) fn sample<T: Target>(&mut self, sim: &Sim<T>, now: Instant, metrics: &Metrics) {
        let n = sim.len();
        let alive: Vec<bool> = (0..n).map(|i| live(sim, i)).collect();
        let live_count = alive.iter().filter(|&&a| a).count();
        let mut v = vec![("Nodes", "live nodes", live_count as f64)];
        if T::supports(ExpectKind::MembershipAgrees) {
            v.push((
                "Reachability",
                "live pairs considered reachable",
                reachable_fraction(sim, &alive),
            ));
        }
        if T::supports(ExpectKind::OverlayConnected) {
            let views = views(sim);
            let labels = components(&views);
            let count = labels.iter().flatten().max().map_or(0, |&c| c + 1);
            v.push(("Overlay components", "components", count as f64));
            let mut sizes: Vec<usize> = views.iter().flatten().map(Vec::len).collect();
            sizes.sort_unstable();
            let at = |k: usize| sizes.get(k).copied().unwrap_or(0) as f64;
            v.push(("Active view size", "min", at(0)));
            v.push(("Active view size", "median", at(sizes.len() / 2)));
            v.push(("Active view size", "max", at(sizes.len().saturating_sub(1))));
        }
        v.push((
            "Failure detection (per sample)",
            "unreachable events",
            std::mem::take(&mut self.unreachable_events) as f64,
        ));
        v.push((
            "Failure detection (per sample)",
            "evictions",
            (metrics.evictions - self.evictions_seen) as f64,
        ));
        self.evictions_seen = metrics.evictions;
        if T::supports(ExpectKind::KvConverged) {
            let lag = metrics
                .kv
                .oldest_in_flight()
                .map_or(0.0, |at| (now - at).as_nanos() as f64 / 1e6);
            v.push((
                "KV convergence lag (ms)",
                "oldest op not yet everywhere",
                lag,
            ));
            let in_flight = metrics.kv.undelivered();
            v.push(("KV ops", "in flight", in_flight as f64));
            v.push((
                "KV ops",
                "applied (total)",
                (metrics.kv.latencies.len() + in_flight) as f64,
            ));
        }
        let stats = sim.stats();
        let (msgs, bytes) = match self.last {
            Some((t0, f0, b0)) if now > t0 && live_count > 0 => {
                let per = (now - t0).as_secs_f64() * live_count as f64;
                (
                    (stats.frames - f0) as f64 / per,
                    (stats.bytes - b0) as f64 / per,
                )
            }
            _ => (0.0, 0.0),
        };
        v.push(("Messages per node per second", "messages", round2(msgs)));
        v.push(("Bytes per node per second", "bytes", round2(bytes)));
        self.last = Some((now, stats.frames, stats.bytes));
        self.series.push(now.as_millis(), v);
    }
}

/// Of the ordered pairs (i, j) of distinct live nodes, the fraction where i considers j
/// reachable. Each node's set is counted against the non-live nodes or walked, whichever
/// is shorter, so a 1,000-node sample stays cheap.
pub(crate) fn reachable_fraction<T: Target>(sim: &Sim<T>, alive: &[bool]) -> f64 {
    let live_count = alive.iter().filter(|&&a| a).count();
    if live_count < 2 {
        return 1.0;
    }
    let gone: Vec<usize> = (0..alive.len()).filter(|&i| !alive[i]).collect();
    let mut pairs = 0usize;
    for i in (0..alive.len()).filter(|&i| alive[i]) {
        let Some(seen) = sim.node(i).and_then(|n| n.protocol().reachable_set()) else {
            continue;
        };
        let me = Sim::<T>::id(i);
        let own = usize::from(seen.contains(&me));
        pairs += if seen.len() <= gone.len() {
            seen.iter()
                .filter(|id| **id != me && alive.get(id.0 as usize) == Some(&true))
                .count()
        } else {
            let dead = gone
                .iter()
                .filter(|&&j| seen.contains(&Sim::<T>::id(j)))
                .count();
            let beyond = seen
                .iter()
                .rev()
                .take_while(|id| id.0 as usize >= alive.len());
            seen.len() - own - dead - beyond.count()
        };
    }
    pairs as f64 / (live_count * (live_count - 1)) as f64
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
