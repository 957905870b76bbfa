//! Pictures of a run (`hawser sim run --report`, `hawser sim sweep --report`): what the
//! runner records when asked (curves, graph snapshots, the story in time) and the
//! self-contained HTML pages drawn from it.
//!
//! Recording is a hook the runner calls only when it is given a [`Recorder`]: a run
//! without `--report` pays nothing, and one with it only reads the simulator, so its
//! trace hash is the same.

mod graph_snapshot;
mod html;
mod layout;
mod series;
mod svg;
mod sweep;
mod timeline;

use hawser_core::{Duration, Instant};
use hawser_sim::Sim;

use crate::expectations::Tracker;
use crate::file::{Scenario, StackKind};
use crate::invariant::Invariants;
use crate::metrics::Metrics;
use crate::report::Report;
use crate::runner::{Options, RunError, run_recording};
use crate::target::Target;

pub use graph_snapshot::{Edge, GraphSnapshot, NodeStatus};
pub use html::render_run;
pub use layout::{Cluster, Layout};
pub use series::{Curve, Series};
pub use sweep::{SweepFailure, render_sweep};
pub use timeline::{ExpectTrack, Phase, StepMark};

/// Everything a run report draws besides the [`Report`] itself.
#[derive(Clone, Debug)]
pub struct Recording {
    pub end_ms: u64,
    pub series: Series,
    pub snapshots: Vec<GraphSnapshot>,
    pub steps: Vec<StepMark>,
    pub expectations: Vec<ExpectTrack>,
}

/// Run `scenario` (as [`crate::run_stack`]) and record its pictures. Graph snapshots are
/// taken at `at` (virtual times) and at the end; with `at` empty, just before the first
/// disruptive step, during it (just before the next step, or halfway to the end), and at
/// the end.
pub fn run_stack_recorded(
    scenario: &Scenario,
    options: Options,
    at: &[Duration],
) -> Result<(Report, Recording), RunError> {
    let mut recorder = Recorder::new(scenario, at);
    let report = match scenario.stack {
        StackKind::Full => run_recording::<hawser_core::stack::Stack>(
            scenario,
            options,
            &Invariants::new(),
            Some(&mut recorder),
        ),
        StackKind::Membership => run_recording::<hawser_core::membership::Membership>(
            scenario,
            options,
            &Invariants::new(),
            Some(&mut recorder),
        ),
    }?;
    Ok((report, recorder.recording))
}

/// The runner's recording hook.
pub(crate) struct Recorder {
    sampler: series::Sampler,
    /// Snapshots still to take: (label, instant), in time order.
    due: Vec<(String, Instant)>,
    recording: Recording,
}

impl Recorder {
    fn new(scenario: &Scenario, at: &[Duration]) -> Recorder {
        let end = Instant::ZERO + scenario.duration;
        let mut due: Vec<(String, Instant)> = if at.is_empty() {
            default_instants(scenario, end)
        } else {
            at.iter()
                .map(|&d| (format!("at {d:?}"), Instant::ZERO + d))
                .filter(|(_, t)| *t < end)
                .collect()
        };
        due.sort_by_key(|(_, t)| *t);
        Recorder {
            sampler: series::Sampler::default(),
            due,
            recording: Recording {
                end_ms: end.as_millis(),
                series: Series::default(),
                snapshots: Vec::new(),
                steps: Vec::new(),
                expectations: Vec::new(),
            },
        }
    }

    /// The plan is known: the steps (with their timeline text) and the expectations.
    pub(crate) fn planned(
        &mut self,
        scenario: &Scenario,
        timeline: &[(Instant, String)],
        trackers: &[Tracker],
    ) {
        self.recording.steps = timeline::step_marks(scenario, timeline, self.recording.end_ms);
        self.recording.expectations = trackers.iter().map(timeline::ExpectTrack::new).collect();
    }

    /// A node reported a peer unreachable.
    pub(crate) fn unreachable_event(&mut self) {
        self.sampler.unreachable_event();
    }

    /// Time has reached `now`, before the steps due at `now` are applied: take the
    /// snapshots that are due.
    pub(crate) fn before_steps<T: Target>(&mut self, sim: &Sim<T>, now: Instant) {
        while self.due.first().is_some_and(|(_, t)| *t <= now) {
            let (label, _) = self.due.remove(0);
            let snap = GraphSnapshot::take(sim, label, now);
            self.recording.snapshots.push(snap);
        }
    }

    /// The checks at `now` are done: sample the curves and the expectations' phases.
    pub(crate) fn sample<T: Target>(
        &mut self,
        sim: &Sim<T>,
        now: Instant,
        metrics: &Metrics,
        trackers: &[Tracker],
    ) {
        self.sampler.sample(sim, now, metrics);
        for (track, t) in self.recording.expectations.iter_mut().zip(trackers) {
            track.observe(t, now);
        }
    }

    /// The run is over (expectations settled).
    pub(crate) fn finish<T: Target>(&mut self, sim: &Sim<T>, trackers: &[Tracker]) {
        let now = sim.now();
        self.before_steps(sim, now);
        for (track, t) in self.recording.expectations.iter_mut().zip(trackers) {
            track.observe(t, now);
        }
        self.recording.series = std::mem::take(&mut self.sampler.series);
        let end = GraphSnapshot::take(sim, "end".into(), now);
        self.recording.snapshots.push(end);
    }
}

/// Before the first disruptive step, during it, and (by [`Recorder::finish`]) at the end.
fn default_instants(scenario: &Scenario, end: Instant) -> Vec<(String, Instant)> {
    let Some(k) = scenario
        .steps
        .iter()
        .position(|s| timeline::is_fault(&s.action))
    else {
        return Vec::new();
    };
    let fault = Instant::ZERO + scenario.steps[k].at;
    let during = scenario.steps[k + 1..]
        .iter()
        .map(|s| Instant::ZERO + s.at)
        .find(|&t| t > fault)
        .unwrap_or(fault + Duration::from_nanos((end - fault).as_nanos() / 2));
    let mut due = vec![("before".to_string(), fault)];
    if during < end {
        due.push(("during".to_string(), during));
    }
    due
}
