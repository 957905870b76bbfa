//! Invariants of a user's own protocol, written in Rust beside the scenario files'
//! generic expectations.
//!
//! A scenario file can only name the expectations the runner knows (`overlay-connected`,
//! `detected`, ...). What makes a protocol correct is usually something only its author
//! can say — "a restarted node announces a new incarnation", "a lock is never held
//! twice" — so the runner also takes [`Invariant`]s: read-only checks it calls as the run
//! goes, which fail the run by name. Each appears in the report beside the file's
//! expectations (its `kind` is the invariant's name, its `line` 0), and the shrinker
//! treats "the same invariant failed again" as the same failure, like an expectation of
//! the same kind.

use std::fmt;
use std::marker::PhantomData;

use hawser_sim::Sim;

use crate::file::ExpectKind;
use crate::target::Target;

/// Why an invariant does not hold, in words for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

impl Violation {
    pub fn new(why: impl Into<String>) -> Violation {
        Violation(why.into())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a check of an invariant found.
pub type Verdict = Result<(), Violation>;

/// A property of the protocol `T` that must hold throughout a run. Every hook has a
/// default that holds; implement the ones the property needs. A hook sees the world
/// read-only (`sim`: every node's status and protocol state, the network, the virtual
/// time `sim.now()`); the invariant's own fields may remember what it has seen. The
/// runner builds a fresh copy (a clone of the one given) for every run, and stops
/// calling it after its first violation.
pub trait Invariant<T: Target> {
    /// How the report and the shrinker name it (`"restarts-announced"`): distinct from
    /// every other invariant of the run and from every expectation kind.
    fn name(&self) -> &str;

    /// Node `node` just started a life: its first start, or a restart (`wiped`: with an
    /// empty disk). Its protocol has run its `start`.
    fn started(&mut self, _sim: &Sim<T>, _node: usize, _wiped: bool) -> Verdict {
        Ok(())
    }

    /// After every simulator step that may have changed node `node`'s state.
    fn after_step(&mut self, _sim: &Sim<T>, _node: usize) -> Verdict {
        Ok(())
    }

    /// Node `node` emitted `event` (the world as the step that emitted it left it).
    fn event(&mut self, _sim: &Sim<T>, _node: usize, _event: &T::Event) -> Verdict {
        Ok(())
    }

    /// At the end of the run.
    fn end(&mut self, _sim: &Sim<T>) -> Verdict {
        Ok(())
    }
}

/// An invariant from a closure on each event: `on_event("name", |sim, node, event| ...)`.
pub fn on_event<T, F>(name: &'static str, check: F) -> Closure<T, F, OnEvent>
where
    T: Target,
    F: FnMut(&Sim<T>, usize, &T::Event) -> Verdict + Clone,
{
    Closure::new(name, check)
}

/// An invariant from a closure run after every step: `after_step("name", |sim, node| ...)`.
pub fn after_step<T, F>(name: &'static str, check: F) -> Closure<T, F, AfterStep>
where
    T: Target,
    F: FnMut(&Sim<T>, usize) -> Verdict + Clone,
{
    Closure::new(name, check)
}

/// An invariant from a closure run at the end: `at_end("name", |sim| ...)`.
pub fn at_end<T, F>(name: &'static str, check: F) -> Closure<T, F, AtEnd>
where
    T: Target,
    F: FnMut(&Sim<T>) -> Verdict + Clone,
{
    Closure::new(name, check)
}

/// An invariant made of a named closure, called by the hook `Hook` names (see
/// [`on_event`], [`after_step`], [`at_end`]).
pub struct Closure<T, F, Hook> {
    name: &'static str,
    check: F,
    _for: PhantomData<fn(&T, Hook)>,
}

/// [`Closure`]'s hook: [`Invariant::event`].
pub enum OnEvent {}
/// [`Closure`]'s hook: [`Invariant::after_step`].
pub enum AfterStep {}
/// [`Closure`]'s hook: [`Invariant::end`].
pub enum AtEnd {}

impl<T, F, Hook> Closure<T, F, Hook> {
    fn new(name: &'static str, check: F) -> Self {
        Closure {
            name,
            check,
            _for: PhantomData,
        }
    }
}

impl<T, F: Clone, Hook> Clone for Closure<T, F, Hook> {
    fn clone(&self) -> Self {
        Closure::new(self.name, self.check.clone())
    }
}

impl<T: Target, F: FnMut(&Sim<T>, usize, &T::Event) -> Verdict> Invariant<T>
    for Closure<T, F, OnEvent>
{
    fn name(&self) -> &str {
        self.name
    }
    fn event(&mut self, sim: &Sim<T>, node: usize, event: &T::Event) -> Verdict {
        (self.check)(sim, node, event)
    }
}

impl<T: Target, F: FnMut(&Sim<T>, usize) -> Verdict> Invariant<T> for Closure<T, F, AfterStep> {
    fn name(&self) -> &str {
        self.name
    }
    fn after_step(&mut self, sim: &Sim<T>, node: usize) -> Verdict {
        (self.check)(sim, node)
    }
}

impl<T: Target, F: FnMut(&Sim<T>) -> Verdict> Invariant<T> for Closure<T, F, AtEnd> {
    fn name(&self) -> &str {
        self.name
    }
    fn end(&mut self, sim: &Sim<T>) -> Verdict {
        (self.check)(sim)
    }
}

type Fresh<T> = Box<dyn Fn() -> Box<dyn Invariant<T>>>;

/// The custom invariants a run checks (none by default): each kept as the value it was
/// given, cloned afresh for every run.
pub struct Invariants<T: Target> {
    fresh: Vec<Fresh<T>>,
}

impl<T: Target> Default for Invariants<T> {
    fn default() -> Self {
        Invariants { fresh: Vec::new() }
    }
}

impl<T: Target> Invariants<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an invariant.
    pub fn with<I: Invariant<T> + Clone + 'static>(mut self, invariant: I) -> Self {
        self.fresh
            .push(Box::new(move || Box::new(invariant.clone())));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.fresh.is_empty()
    }

    /// Fresh copies for one run, their names checked.
    pub(crate) fn instantiate(&self) -> Result<Vec<Box<dyn Invariant<T>>>, NameError> {
        let all: Vec<Box<dyn Invariant<T>>> = self.fresh.iter().map(|f| f()).collect();
        for (k, inv) in all.iter().enumerate() {
            let name = inv.name();
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return Err(NameError::Malformed(name.to_string()));
            }
            if ExpectKind::from_name(name).is_some() {
                return Err(NameError::ExpectationKind(name.to_string()));
            }
            if all[..k].iter().any(|other| other.name() == name) {
                return Err(NameError::Duplicate(name.to_string()));
            }
        }
        Ok(all)
    }
}

/// Why a custom invariant's name cannot be used: the report and the shrinker tell
/// failures apart by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Empty, or with whitespace.
    Malformed(String),
    /// The name of an expectation kind (`"views-bounded"`...).
    ExpectationKind(String),
    /// Two invariants of one run share it.
    Duplicate(String),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Malformed(n) => write!(
                f,
                "invariant name {n:?}: a name is one word, like \"restarts-announced\""
            ),
            NameError::ExpectationKind(n) => write!(
                f,
                "invariant name {n:?} is an expectation kind's: pick another, so failures \
                 of the two are told apart"
            ),
            NameError::Duplicate(n) => write!(f, "two invariants are named {n:?}"),
        }
    }
}

impl std::error::Error for NameError {}

/// A run's custom invariants, each with its first violation (then it is not called
/// again).
pub(crate) struct Watch<T: Target> {
    checks: Vec<Check<T>>,
}

/// An invariant and its first violation (virtual ms, why), if any.
type Check<T> = (Box<dyn Invariant<T>>, Option<(u64, Violation)>);

impl<T: Target> Watch<T> {
    pub(crate) fn new(invariants: &Invariants<T>) -> Result<Watch<T>, NameError> {
        let checks = invariants.instantiate()?;
        Ok(Watch {
            checks: checks.into_iter().map(|c| (c, None)).collect(),
        })
    }

    /// Call `hook` on every invariant still holding; record a violation at `sim.now()`.
    fn each(&mut self, sim: &Sim<T>, mut hook: impl FnMut(&mut dyn Invariant<T>) -> Verdict) {
        for (check, broken) in self.checks.iter_mut().filter(|(_, b)| b.is_none()) {
            if let Err(v) = hook(check.as_mut()) {
                *broken = Some((sim.now().as_millis(), v));
            }
        }
    }

    pub(crate) fn started(&mut self, sim: &Sim<T>, node: usize, wiped: bool) {
        self.each(sim, |c| c.started(sim, node, wiped));
    }

    pub(crate) fn after_step(&mut self, sim: &Sim<T>, node: usize) {
        if !self.checks.is_empty() {
            self.each(sim, |c| c.after_step(sim, node));
        }
    }

    pub(crate) fn event(&mut self, sim: &Sim<T>, node: usize, event: &T::Event) {
        self.each(sim, |c| c.event(sim, node, event));
    }

    pub(crate) fn end(&mut self, sim: &Sim<T>) {
        self.each(sim, |c| c.end(sim));
    }

    /// How each invariant stands, as the report lists it (after the file's
    /// expectations; `line` 0, since no line of the file asked for it).
    pub(crate) fn outcomes(self) -> Vec<crate::report::Outcome> {
        self.checks
            .into_iter()
            .map(|(check, broken)| crate::report::Outcome {
                kind: check.name().to_string(),
                line: 0,
                passed: broken.is_none(),
                at_ms: broken.as_ref().map(|(at, _)| *at),
                detail: match broken {
                    None => "held".into(),
                    Some((at, why)) => format!("broke at {:.3}s: {why}", at as f64 / 1000.0),
                },
                vacuous: false,
            })
            .collect()
    }
}
