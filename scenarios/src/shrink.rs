//! Shrinking a failing run to a smaller scenario that fails the same way.
//!
//! A failing seed of a 20-node, 40-step run is a bug report nobody wants to read. The
//! shrinker edits the scenario file's own TOML — drops steps and expectations, fewer
//! nodes, a shorter run, narrower selectors, fewer multicasts, earlier steps — and keeps
//! each edit whose run still fails the same expectation kind (or still panics). Every
//! candidate is an ordinary deterministic run of a file the parser accepted, so the
//! result replays with `hawser sim run` like any other scenario. It is delta debugging
//! (Zeller's ddmin) over the file's structure, repeated until a whole pass changes
//! nothing or the run budget is spent.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use toml::{Table, Value};

use crate::file::{self, Scenario, Selector};
use crate::invariant::Invariants;
use crate::report::Report;
use crate::runner::{Options, run_with};
use crate::target::Target;

/// How a run failed, as the shrinker compares runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// An expectation failed: its kind (the first failing one in file order), whether
    /// it failed for having nothing to check, and why.
    Expectation {
        kind: String,
        vacuous: bool,
        detail: String,
    },
    /// The run panicked, with this message.
    Panic(String),
}

impl Failure {
    /// The same failure for shrinking: the same expectation kind failing for the same
    /// kind of reason (a fault found, or nothing to check: a candidate that removed the
    /// kill a `detected` was about fails vacuously, which is not the bug), or a panic.
    fn same_as(&self, other: &Failure) -> bool {
        match (self, other) {
            (
                Failure::Expectation {
                    kind: a,
                    vacuous: va,
                    ..
                },
                Failure::Expectation {
                    kind: b,
                    vacuous: vb,
                    ..
                },
            ) => a == b && va == vb,
            (Failure::Panic(_), Failure::Panic(_)) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Expectation { kind, detail, .. } => write!(f, "{kind} failed: {detail}"),
            Failure::Panic(message) => write!(f, "the run panicked: {message}"),
        }
    }
}

/// How a run ended: `Ok(None)` passed, `Ok(Some(_))` failed, `Err` the runner refused
/// the scenario (no node ever started, a config the stack rejects...). A panic in the
/// run is caught and reported as [`Failure::Panic`].
pub fn outcome<E>(run: impl FnOnce() -> Result<Report, E>) -> Result<Option<Failure>, E> {
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(report)) => {
            Ok(report
                .expectations
                .iter()
                .find(|e| !e.passed)
                .map(|e| Failure::Expectation {
                    kind: e.kind.clone(),
                    vacuous: e.vacuous,
                    detail: e.detail.clone(),
                }))
        }
        Ok(Err(why)) => Err(why),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Ok(Some(Failure::Panic(message)))
        }
    }
}

/// The size of a scenario, as the shrinker reports it before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub nodes: usize,
    pub steps: usize,
    pub expects: usize,
    /// Virtual milliseconds.
    pub duration_ms: u64,
    /// Multicasts and kv ops the steps make.
    pub ops: usize,
}

impl Size {
    pub fn of(s: &Scenario) -> Size {
        let ops = s
            .steps
            .iter()
            .map(|step| match &step.action {
                file::Action::Multicast { count, .. } => *count,
                file::Action::KvOp { .. } => 1,
                _ => 0,
            })
            .sum();
        Size {
            nodes: s.nodes,
            steps: s.steps.len(),
            expects: s.expects.len(),
            duration_ms: s.duration.as_millis(),
            ops,
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        write!(
            f,
            "{}, {}, {}, {}, {} of virtual time",
            plural(self.nodes, "node"),
            plural(self.steps, "step"),
            plural(self.expects, "expectation"),
            plural(self.ops, "op"),
            time_text(self.duration_ms)
        )
    }
}

/// What the shrinker found.
#[derive(Debug)]
pub struct Shrunk {
    /// The minimal scenario's file text (TOML), seed included.
    pub text: String,
    pub before: Size,
    pub after: Size,
    /// How the minimal scenario fails.
    pub failure: Failure,
    /// Candidate runs made.
    pub runs: usize,
    /// The budget ran out before a pass changed nothing: a smaller one may exist.
    pub budget_spent: bool,
}

/// Why a scenario could not be shrunk.
#[derive(Debug, PartialEq)]
pub enum ShrinkError {
    /// The text is not a valid scenario.
    Invalid(String),
    /// The run passes with this seed: there is nothing to shrink.
    Passes,
    /// The runner refused the scenario itself.
    Refused(String),
}

impl fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShrinkError::Invalid(why) => write!(f, "{why}"),
            ShrinkError::Passes => write!(f, "the run passes: there is no failure to shrink"),
            ShrinkError::Refused(why) => write!(f, "the scenario cannot run: {why}"),
        }
    }
}

impl std::error::Error for ShrinkError {}

/// Shrinks the scenario `text` (named `file_name` in messages), run with `seed`, making
/// at most `budget` candidate runs. `run` runs one scenario to its outcome (see
/// [`outcome`]); it is called with the original first, and then with every candidate.
pub fn shrink(
    text: &str,
    file_name: &str,
    seed: u64,
    budget: usize,
    mut run: impl FnMut(&Scenario) -> Result<Option<Failure>, String>,
) -> Result<Shrunk, ShrinkError> {
    let original = file::parse(text, file_name).map_err(|e| ShrinkError::Invalid(e.to_string()))?;
    let mut doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ShrinkError::Invalid(e.to_string()))?;
    doc.insert("seed".into(), Value::Integer(seed as i64));
    let scenario =
        file::parse(&to_text(&doc), file_name).map_err(|e| ShrinkError::Invalid(e.to_string()))?;
    let failure = match run(&scenario) {
        Ok(Some(failure)) => failure,
        Ok(None) => return Err(ShrinkError::Passes),
        Err(why) => return Err(ShrinkError::Refused(why)),
    };
    let mut s = Shrinker {
        file_name,
        budget,
        runs: 1,
        target: failure.clone(),
        last: failure,
        run: &mut run,
    };
    s.only_the_failing_expectation(&mut doc);
    loop {
        let before = to_text(&doc);
        s.drop_items(&mut doc, "step");
        s.drop_items(&mut doc, "expect");
        s.fewer_nodes(&mut doc);
        s.shorter_run(&mut doc);
        s.narrower_selectors(&mut doc);
        s.fewer_multicasts(&mut doc);
        s.earlier_steps(&mut doc);
        if to_text(&doc) == before || s.spent() {
            break;
        }
    }
    let text = to_text(&doc);
    let after = file::parse(&text, file_name).expect("every kept candidate parsed");
    Ok(Shrunk {
        text,
        before: Size::of(&original),
        after: Size::of(&after),
        budget_spent: s.spent(),
        runs: s.runs,
        failure: s.last,
    })
}

/// [`shrink`] with every candidate run on target `T`, its custom `invariants` checked:
/// what a test of a user's own protocol calls.
pub fn shrink_target<T: Target>(
    text: &str,
    file_name: &str,
    seed: u64,
    budget: usize,
    invariants: &Invariants<T>,
) -> Result<Shrunk, ShrinkError> {
    shrink(text, file_name, seed, budget, |s| {
        outcome(|| run_with::<T>(s, Options::default(), invariants)).map_err(String::from)
    })
}

fn to_text(doc: &Table) -> String {
    toml::to_string(doc).expect("a table of plain values always serializes")
}

struct Shrinker<'a, F> {
    file_name: &'a str,
    budget: usize,
    runs: usize,
    /// The failure every kept candidate must reproduce...
    target: Failure,
    /// ...and how the last kept one did (its detail names its own nodes and times).
    last: Failure,
    run: &'a mut F,
}

impl<F: FnMut(&Scenario) -> Result<Option<Failure>, String>> Shrinker<'_, F> {
    fn spent(&self) -> bool {
        self.runs >= self.budget
    }

    /// Does `candidate` parse and fail the same way? A candidate the parser refuses (a
    /// selector beyond fewer nodes, a time beyond a shorter run) costs no run.
    fn fails(&mut self, candidate: &Table) -> bool {
        if self.spent() {
            return false;
        }
        let Ok(scenario) = file::parse(&to_text(candidate), self.file_name) else {
            return false;
        };
        self.runs += 1;
        match (self.run)(&scenario) {
            Ok(Some(f)) if f.same_as(&self.target) => {
                self.last = f;
                true
            }
            _ => false,
        }
    }

    /// Keeps `candidate` in `doc` if it fails the same way.
    fn attempt(&mut self, doc: &mut Table, candidate: Table) -> bool {
        let kept = self.fails(&candidate);
        if kept {
            *doc = candidate;
        }
        kept
    }

    /// Only the expectation that failed is worth keeping (the others pass or fail
    /// later for reasons of their own).
    fn only_the_failing_expectation(&mut self, doc: &mut Table) {
        let Failure::Expectation { kind, .. } = &self.target else {
            return;
        };
        let Some(expects) = doc.get("expect").and_then(Value::as_array) else {
            return;
        };
        let kind = kind.clone();
        let kept: Vec<Value> = expects
            .iter()
            .filter(|e| e.get("kind").and_then(Value::as_str) == Some(&kind))
            .cloned()
            .collect();
        if kept.len() < expects.len() {
            let mut candidate = doc.clone();
            candidate.insert("expect".into(), Value::Array(kept));
            self.attempt(doc, candidate);
        }
    }

    /// ddmin over the array of tables `key`: remove chunks of half, a quarter... down
    /// to single entries.
    fn drop_items(&mut self, doc: &mut Table, key: &str) {
        let len = |doc: &Table| doc.get(key).and_then(Value::as_array).map_or(0, Vec::len);
        let mut chunk = len(doc).div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < len(doc) {
                let mut candidate = doc.clone();
                let items = candidate
                    .get_mut(key)
                    .and_then(Value::as_array_mut)
                    .expect("counted above");
                items.drain(i..(i + chunk).min(items.len()));
                if items.is_empty() {
                    candidate.remove(key);
                }
                if !self.attempt(doc, candidate) {
                    i += chunk;
                }
            }
            if chunk == 1 || self.spent() {
                return;
            }
            chunk = chunk.div_ceil(2);
        }
    }

    /// The fewest nodes that still fail, by bisection (a guess: failing is not
    /// monotonic in the node count, but usually close to it).
    fn fewer_nodes(&mut self, doc: &mut Table) {
        let Some(nodes) = doc.get("nodes").and_then(Value::as_integer) else {
            return;
        };
        let (mut lo, mut hi) = (1, nodes);
        while lo < hi && !self.spent() {
            let mid = lo + (hi - lo) / 2;
            let mut candidate = doc.clone();
            candidate.insert("nodes".into(), Value::Integer(mid));
            if self.attempt(doc, candidate) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
    }

    /// A shorter run: bisect the duration between the last step and the current end.
    fn shorter_run(&mut self, doc: &mut Table) {
        let Some(end) = doc.get("duration").and_then(ms_of) else {
            return;
        };
        let last_step = doc
            .get("step")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("at").and_then(ms_of))
            .max()
            .unwrap_or(0);
        let (mut lo, mut hi) = (last_step + 1, end);
        while lo < hi && !self.spent() {
            let mid = lo + (hi - lo) / 2;
            let mut candidate = doc.clone();
            candidate.insert("duration".into(), Value::String(time_text(mid)));
            if self.attempt(doc, candidate) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
    }

    /// Each step's and expectation's node selectors, narrowed: one node, then half.
    fn narrower_selectors(&mut self, doc: &mut Table) {
        for table in ["step", "expect"] {
            for i in 0..array_len(doc, table) {
                for key in ["nodes", "node", "from", "to", "keep"] {
                    let Some(selector) = field(doc, table, i, key).and_then(selector_of) else {
                        continue;
                    };
                    for narrower in narrower(&selector, nodes_of(doc)) {
                        let mut candidate = doc.clone();
                        set_field(&mut candidate, table, i, key, selector_value(&narrower));
                        if self.attempt(doc, candidate) {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// A repeated multicast step with fewer repetitions (halving).
    fn fewer_multicasts(&mut self, doc: &mut Table) {
        for i in 0..array_len(doc, "step") {
            while let Some(count) = step_field(doc, i, "count").and_then(Value::as_integer) {
                if count <= 1 || self.spent() {
                    break;
                }
                let mut candidate = doc.clone();
                set_field(
                    &mut candidate,
                    "step",
                    i,
                    "count",
                    Value::Integer(count / 2),
                );
                if !self.attempt(doc, candidate) {
                    break;
                }
            }
        }
    }

    /// Each step as early as the one before it (steps stay in time order).
    fn earlier_steps(&mut self, doc: &mut Table) {
        for i in 1..array_len(doc, "step") {
            let (Some(prev), Some(at)) = (
                step_field(doc, i - 1, "at").and_then(ms_of),
                step_field(doc, i, "at").and_then(ms_of),
            ) else {
                continue;
            };
            if at > prev {
                let mut candidate = doc.clone();
                let earlier = Value::String(time_text(prev));
                set_field(&mut candidate, "step", i, "at", earlier);
                self.attempt(doc, candidate);
            }
        }
    }
}

/// A time as the file writes it (`"1500ms"`).
fn time_text(ms: u64) -> String {
    hawser_core::Duration::from_millis(ms).to_string()
}

fn array_len(doc: &Table, key: &str) -> usize {
    doc.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

fn nodes_of(doc: &Table) -> usize {
    doc.get("nodes")
        .and_then(Value::as_integer)
        .map_or(0, |n| n as usize)
}

/// `key` of the `i`th entry of the array of tables `table` (`"step"`, `"expect"`).
fn field<'a>(doc: &'a Table, table: &str, i: usize, key: &str) -> Option<&'a Value> {
    doc.get(table)?.as_array()?.get(i)?.get(key)
}

fn step_field<'a>(doc: &'a Table, i: usize, key: &str) -> Option<&'a Value> {
    field(doc, "step", i, key)
}

fn set_field(doc: &mut Table, table: &str, i: usize, key: &str, value: Value) {
    if let Some(step) = doc
        .get_mut(table)
        .and_then(Value::as_array_mut)
        .and_then(|steps| steps.get_mut(i))
        .and_then(Value::as_table_mut)
    {
        step.insert(key.into(), value);
    }
}

/// A time value of the file, in milliseconds (`None` if it is not a valid time).
fn ms_of(v: &Value) -> Option<u64> {
    file::parse_duration(v.as_str()?)
        .ok()
        .map(|d| d.as_millis())
}

fn selector_of(v: &Value) -> Option<Selector> {
    match v {
        Value::String(s) => Selector::parse(s).ok(),
        Value::Array(items) => {
            Selector::parse_list(items.iter().filter_map(Value::as_str).collect::<Vec<_>>()).ok()
        }
        _ => None,
    }
}

fn selector_value(s: &Selector) -> Value {
    match s {
        Selector::List(nodes) => Value::Array(
            nodes
                .iter()
                .map(|n| Value::String(format!("n{n}")))
                .collect(),
        ),
        other => Value::String(other.to_string().trim_matches('"').to_string()),
    }
}

/// Narrower selections to try instead of `s`, most aggressive first: its first node,
/// its last, its lower half, its upper half.
fn narrower(s: &Selector, nodes: usize) -> Vec<Selector> {
    let halves = |list: &[usize]| -> Vec<Selector> {
        let mid = list.len() / 2;
        let part = |p: &[usize]| match p {
            [one] => Selector::Node(*one),
            [first, .., last] if last - first + 1 == p.len() => Selector::Range(*first, *last),
            _ => Selector::List(p.to_vec()),
        };
        vec![
            Selector::Node(list[0]),
            Selector::Node(list[list.len() - 1]),
            part(&list[..mid]),
            part(&list[mid..]),
        ]
    };
    match s {
        Selector::All if nodes > 1 => halves(&(0..nodes).collect::<Vec<_>>()),
        Selector::Range(a, b) if b > a => halves(&(*a..=*b).collect::<Vec<_>>()),
        Selector::List(list) if list.len() > 1 => halves(list),
        Selector::RandomCount(n) if *n > 1 => vec![Selector::RandomCount(1)],
        Selector::RandomPercent(_) => vec![Selector::RandomCount(1)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::Action;

    const TEN_STEPS: &str = r#"
name = "t"
nodes = 12
duration = "60s"
contacts = "n0..n2"

[[step]]
at = "0s"
action = "start"

[[step]]
at = "5s"
action = "multicast"
node = "random:1"
topic = "t"
size = 10
count = 40
every = "100ms"

[[step]]
at = "10s"
action = "kill"
nodes = "n2..n7"

[[step]]
at = "12s"
action = "pause"
nodes = "n1"
duration = "1s"

[[step]]
at = "20s"
action = "restart"
nodes = "n2..n7"

[[expect]]
kind = "overlay-connected"
within = "10s"

[[expect]]
kind = "detected"
nodes = "n3"
after = "10s"
within = "1s"
"#;

    /// A stand-in for a run: "fails `detected`" whenever some kill step selects n3 and
    /// a `detected` expectation is there to fail.
    fn kills_n3(s: &Scenario) -> Result<Option<Failure>, String> {
        let detected = s.expects.iter().any(|e| e.kind.name() == "detected");
        let kills = s.steps.iter().any(|step| match &step.action {
            Action::Kill { nodes } => {
                nodes.check(s.nodes).is_ok()
                    && match nodes {
                        Selector::Node(3) => true,
                        Selector::Range(a, b) => (*a..=*b).contains(&3),
                        _ => false,
                    }
            }
            _ => false,
        });
        Ok((kills && detected).then(|| Failure::Expectation {
            kind: "detected".into(),
            vacuous: false,
            detail: "n3 not detected".into(),
        }))
    }

    #[test]
    fn shrinks_to_the_one_step_and_expectation_the_failure_needs() {
        let shrunk = shrink(TEN_STEPS, "t.toml", 7, 1_000, kills_n3).unwrap();
        assert_eq!(shrunk.before.steps, 5);
        assert_eq!(shrunk.before.ops, 40);
        let after = file::parse(&shrunk.text, "t.toml").unwrap();
        assert_eq!(after.seed, 7, "the seed is written into the file");
        assert_eq!(after.expects.len(), 1);
        assert_eq!(after.expects[0].kind.name(), "detected");
        assert_eq!(after.steps.len(), 1, "{}", shrunk.text);
        assert_eq!(
            after.steps[0].action,
            Action::Kill {
                nodes: Selector::Node(3)
            }
        );
        assert_eq!(after.nodes, 4, "n3 needs 4 nodes");
        // The expectation's own window (10 s + 1 s) bounds the run from below.
        assert_eq!(after.duration.as_millis(), 11_000, "{}", shrunk.text);
        assert_eq!(shrunk.after, Size::of(&after));
        assert!(!shrunk.budget_spent);
        assert_eq!(kills_n3(&after), Ok(Some(shrunk.failure)));
    }

    #[test]
    fn a_spent_budget_is_said_and_what_was_kept_still_fails() {
        let shrunk = shrink(TEN_STEPS, "t.toml", 7, 3, kills_n3).unwrap();
        assert!(shrunk.budget_spent);
        assert_eq!(shrunk.runs, 3);
        let after = file::parse(&shrunk.text, "t.toml").unwrap();
        assert!(kills_n3(&after).unwrap().is_some());
    }

    #[test]
    fn nothing_to_shrink_in_a_passing_or_refused_run() {
        let pass = |_: &Scenario| Ok(None);
        assert_eq!(
            shrink(TEN_STEPS, "t.toml", 1, 10, pass).unwrap_err(),
            ShrinkError::Passes
        );
        let refuse = |_: &Scenario| Err("no node ever started".to_string());
        assert!(matches!(
            shrink(TEN_STEPS, "t.toml", 1, 10, refuse),
            Err(ShrinkError::Refused(_))
        ));
        assert!(matches!(
            shrink("nodes = 0", "t.toml", 1, 10, kills_n3),
            Err(ShrinkError::Invalid(_))
        ));
    }

    #[test]
    fn a_panic_is_a_failure_and_keeps_its_message() {
        let failure = outcome::<String>(|| panic!("views overflowed")).unwrap();
        assert_eq!(failure, Some(Failure::Panic("views overflowed".into())));
        let formatted = outcome::<String>(|| panic!("n{} broke", 3)).unwrap();
        assert_eq!(formatted, Some(Failure::Panic("n3 broke".into())));
    }
}
