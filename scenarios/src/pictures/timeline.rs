//! The run's story in time: each step as a marker or a band, and each expectation's
//! course (waiting, holding, passed, failed) as the checks saw it.

use hawser_core::Instant;

use crate::expectations::{State, Tracker};
use crate::file::{Action, Scenario};

/// One step: a marker at `at_ms`, or a band to `until_ms` for the steps that last
/// (a partition until the next heal, a broken cookie until mended, a pause, a slow link,
/// a freeze until the node is restarted or the run ends).
#[derive(Clone, Debug)]
pub struct StepMark {
    pub at_ms: u64,
    pub until_ms: Option<u64>,
    pub action: &'static str,
    /// The step as the text report's timeline prints it.
    pub text: String,
}

/// Where an expectation stands at a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Holding,
    Passed,
    Failed,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Holding => "holding",
            Phase::Passed => "passed",
            Phase::Failed => "failed",
        }
    }
}

/// One `[[expect]]` over the run: its window and each change of phase.
#[derive(Clone, Debug)]
pub struct ExpectTrack {
    pub kind: &'static str,
    pub line: usize,
    pub after_ms: u64,
    pub window_end_ms: u64,
    pub until_ms: u64,
    /// (virtual ms, phase from then on), one entry per change.
    pub phases: Vec<(u64, Phase)>,
}

impl ExpectTrack {
    pub(crate) fn new(t: &Tracker) -> ExpectTrack {
        ExpectTrack {
            kind: t.expect.kind.name(),
            line: t.expect.line,
            after_ms: t.after.as_millis(),
            window_end_ms: t.window_end.as_millis(),
            until_ms: t.until.as_millis(),
            phases: Vec::new(),
        }
    }

    /// Note the tracker's phase at `now`, if it changed (nothing before its window opens).
    pub(crate) fn observe(&mut self, t: &Tracker, now: Instant) {
        if now < t.after {
            return;
        }
        let (phase, at) = match &t.state {
            State::Pending(_) => (Phase::Waiting, now),
            State::Holding(since) => (Phase::Holding, *since),
            State::Passed(_) => (Phase::Passed, now),
            State::Failed(at, _) => (Phase::Failed, *at),
        };
        if self.phases.last().is_none_or(|&(_, p)| p != phase) {
            self.phases.push((at.max(t.after).as_millis(), phase));
        }
    }
}

/// The scenario's steps as marks; `timeline` is the plan's text for each step, in order.
pub(crate) fn step_marks(
    scenario: &Scenario,
    timeline: &[(Instant, String)],
    end_ms: u64,
) -> Vec<StepMark> {
    let steps = &scenario.steps;
    let ms = |d: hawser_core::Duration| (Instant::ZERO + d).as_millis();
    let next = |from: usize, names: &[&str]| {
        steps[from + 1..]
            .iter()
            .find(|s| names.contains(&s.action.name()))
            .map_or(end_ms, |s| ms(s.at))
    };
    steps
        .iter()
        .zip(timeline)
        .enumerate()
        .map(|(k, (step, (_, text)))| {
            let at_ms = ms(step.at);
            let until_ms = match &step.action {
                Action::Partition { .. } | Action::PartitionOneway { .. } => {
                    Some(next(k, &["heal"]))
                }
                Action::BreakCookie { .. } => Some(next(k, &["mend-cookie"])),
                Action::Freeze { .. } => Some(next(k, &["restart", "wipe", "kill"])),
                Action::Pause { duration, .. } | Action::Flap { duration, .. } => {
                    Some(ms(step.at + *duration).min(end_ms))
                }
                Action::PowerLoss { down, .. } => Some(ms(step.at + *down).min(end_ms)),
                Action::SlowLink { duration, .. } => {
                    Some(duration.map_or(end_ms, |d| ms(step.at + d).min(end_ms)))
                }
                _ => None,
            };
            StepMark {
                at_ms,
                until_ms,
                action: step.action.name(),
                text: text.clone(),
            }
        })
        .collect()
}

/// Does this step disturb the cluster (the default snapshots are taken around the first
/// one)? Starting nodes, KV writes and multicasts do not; healing and mending undo one.
pub(crate) fn is_fault(action: &Action) -> bool {
    !matches!(
        action,
        Action::Start { .. }
            | Action::KvOp { .. }
            | Action::Multicast { .. }
            | Action::Heal
            | Action::MendCookie { .. }
    )
}
