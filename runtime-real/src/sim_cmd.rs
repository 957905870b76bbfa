//! `hawser sim run`, `hawser sim sweep` and `hawser sim trace`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Subcommand;
use hawser_scenarios::{Options, Report, file, pictures};

use crate::progress::Progress;
use hawser_sim::tracefile;

#[derive(Subcommand)]
pub enum SimCommand {
    /// Run one scenario and report what happened.
    Run {
        /// The scenario file (TOML).
        file: PathBuf,
        /// Seed for this run (default: the file's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Override the number of nodes.
        #[arg(long)]
        nodes: Option<usize>,
        /// Print one JSON object instead of the human report.
        #[arg(long)]
        json: bool,
        /// Write the run's event log to this file, one JSON line per event: every
        /// frame (its message kind decoded), connection event, timer wake and fault, the
        /// scenario's steps, KV ops and their acknowledgements, multicasts (format:
        /// scenarios/README.md; filter it with `hawser sim trace`).
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Write a self-contained HTML report (timeline, curves, overlay graphs,
        /// expectations) to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// With --report: draw the overlay graph at these virtual times (e.g.
        /// `25s,55s`) and at the end, instead of before, during and after the first
        /// disruptive step.
        #[arg(long, value_delimiter = ',', value_parser = file::parse_duration)]
        graph_at: Vec<hawser_core::Duration>,
    },
    /// Run a scenario for many seeds and list the ones that fail.
    Sweep {
        file: PathBuf,
        /// Seeds to run: `A..B` or `A-B` (both inclusive), or `N` for seeds 1 to N.
        #[arg(long, value_parser = parse_seeds)]
        seeds: (u64, u64),
        /// Parallel runs (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        nodes: Option<usize>,
        /// Keep each seed's JSON report in this directory (`NAME.SEED.json`) as soon as
        /// it finishes; a seed whose report is already there is read back, not run
        /// again, so a sweep of long scenarios can be stopped and resumed.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write an HTML report of the sweep (each metric's spread over the seeds, the
        /// failing seeds) to this file, and each failing seed's run report beside it,
        /// in `FILE.d/` (minus the extension) as `NAME.SEED.html`.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Print the lines of a trace log (from `sim run --trace`) that match every filter
    /// given, as they are. Reads the file line by line, so a log of any size will do.
    Trace {
        /// The trace file (JSON lines).
        file: PathBuf,
        /// Only lines about this node (it is the sender, receiver, peer or node), by name
        /// (`n3`) or id (16 hex digits). Lines about the whole network (partition,
        /// oneway, heal) are kept.
        #[arg(long)]
        node: Option<String>,
        /// Only lines whose `kind` (a frame's message kind, e.g. `membership.ping`)
        /// matches this pattern, or that have no kind and whose `event` does (`kv.op`,
        /// `kv.ack`...). `*` stands for any characters: `--kind 'kv.*'`.
        #[arg(long)]
        kind: Option<String>,
        /// Only lines whose `event` matches this pattern (`frame`, `close`, `wake`...).
        #[arg(long)]
        event: Option<String>,
        /// Only lines at or after this virtual time (e.g. `10s`, `1500ms`).
        #[arg(long, value_parser = file::parse_duration)]
        from: Option<hawser_core::Duration>,
        /// Only lines at or before this virtual time.
        #[arg(long, value_parser = file::parse_duration)]
        to: Option<hawser_core::Duration>,
    },
    /// Cut a failing run down to a smaller scenario that fails the same expectation:
    /// fewer steps, nodes, ops and seconds, narrower selectors (delta debugging; each
    /// candidate is an ordinary deterministic run).
    Shrink {
        /// The scenario file (TOML) that fails.
        file: PathBuf,
        /// The failing seed (default: the file's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write the minimal scenario (default: `NAME.SEED.min.toml`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Most candidate runs to make.
        #[arg(long, default_value_t = crate::shrink_cmd::DEFAULT_BUDGET)]
        budget: usize,
    },
    /// Draw random runs — a subset of the fault classes, a schedule of them and a
    /// workload each, from its own seed — and check what must always hold (see
    /// scenarios/README.md, "Swarm testing"). Every failing run is written to --out as
    /// a scenario file that replays it, and shrunk beside it.
    Swarm {
        /// Nodes per run, drawn from A..B (both inclusive), or exactly N.
        #[arg(long, default_value = "5..20", value_parser = parse_node_range)]
        nodes: (usize, usize),
        /// Virtual time per run.
        #[arg(long, default_value = "2m", value_parser = file::parse_duration)]
        duration: hawser_core::Duration,
        /// How many runs (default 100 unless --time is given).
        #[arg(long, conflicts_with = "time")]
        runs: Option<u64>,
        /// Keep drawing runs for this much wall time (e.g. `10m`).
        #[arg(long, value_parser = file::parse_duration)]
        time: Option<hawser_core::Duration>,
        /// The first run's seed; run k has seed SEED + k, so any run replays alone.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Parallel runs (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Where failing runs' scenario files (and their shrunk versions) go.
        #[arg(long, default_value = "hawser-swarm")]
        out: PathBuf,
        /// Do not shrink the failing runs.
        #[arg(long)]
        no_shrink: bool,
        /// Fault classes no run draws, e.g. `--without flap,tail` (kill, wipe, freeze,
        /// partition, oneway, cookie, slow-link, pause, power-loss, flap, tail, clock, reset,
        /// disk-slow, disk-fail, disk-tear, bandwidth).
        #[arg(long, value_delimiter = ',')]
        without: Vec<hawser_scenarios::swarm::FaultClass>,
    },
}

/// `--nodes` of `sim swarm`: `A..B`, `A-B` or `N`.
fn parse_node_range(s: &str) -> Result<(usize, usize), String> {
    let number = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("{t:?} is not a node count"))
    };
    match s.split_once("..").or_else(|| s.split_once('-')) {
        Some((a, b)) => Ok((number(a)?, number(b)?)),
        None => number(s).map(|n| (n, n)),
    }
}

/// `--seeds`: `A..B`, `A-B` or `N` (= `1..N`).
fn parse_seeds(s: &str) -> Result<(u64, u64), String> {
    let Some((a, b)) = s.split_once("..").or_else(|| s.split_once('-')) else {
        let n: u64 = s.trim().parse().map_err(|_| {
            format!("{s:?} is not a seed range: expected A..B, A-B or N (seeds 1 to N)")
        })?;
        if n == 0 {
            return Err("0 seeds: N must be at least 1".into());
        }
        return Ok((1, n));
    };
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not a seed"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not a seed"))?;
    if a > b {
        return Err(format!("{a}..{b} is empty"));
    }
    Ok((a, b))
}

pub fn main(cmd: SimCommand) -> ExitCode {
    match cmd {
        SimCommand::Run {
            file,
            seed,
            nodes,
            json,
            trace,
            report,
            graph_at,
        } => run(
            &file,
            seed,
            nodes,
            json,
            trace,
            report.map(|r| (r, graph_at)),
        ),
        SimCommand::Sweep {
            file,
            seeds,
            jobs,
            nodes,
            out,
            report,
        } => sweep(&file, seeds, jobs, nodes, out.as_deref(), report.as_deref()),
        SimCommand::Shrink {
            file,
            seed,
            out,
            budget,
        } => crate::shrink_cmd::main(&file, seed, out, budget),
        SimCommand::Swarm {
            nodes,
            duration,
            runs,
            time,
            seed,
            jobs,
            out,
            no_shrink,
            without,
        } => crate::swarm_cmd::main(crate::swarm_cmd::Args {
            swarm: hawser_scenarios::swarm::Swarm {
                nodes,
                duration,
                without,
                ..Default::default()
            },
            first: seed,
            runs: runs.or(if time.is_some() { None } else { Some(100) }),
            time: time.map(|t| std::time::Duration::from_nanos(t.as_nanos())),
            jobs: jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
            out,
            shrink: !no_shrink,
        }),
        SimCommand::Trace {
            file,
            node,
            kind,
            event,
            from,
            to,
        } => {
            let filter = tracefile::Filter {
                node,
                kind: kind.as_deref().map(tracefile::Glob::new),
                event: event.as_deref().map(tracefile::Glob::new),
                from_ns: from.map(|d| d.as_nanos()),
                to_ns: to.map(|d| d.as_nanos()),
            };
            trace(&file, &filter)
        }
    }
}

/// `hawser sim trace`: the kept lines to stdout. A reader that stops early (`| head`)
/// is not an error.
fn trace(path: &Path, filter: &tracefile::Filter) -> ExitCode {
    let input = match std::fs::File::open(path) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = tracefile::filter(input, &mut out, filter)
        .and_then(|_| out.flush().map_err(tracefile::TraceFileError::Write));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(tracefile::TraceFileError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

fn load(path: &Path, seed: Option<u64>, nodes: Option<usize>) -> Result<file::Scenario, String> {
    let scenario = file::load(path).map_err(|e| e.to_string())?;
    scenario
        .with_overrides(seed, nodes)
        .map_err(|e| e.to_string())
}

/// The one command that reproduces a run.
fn replay_command(path: &Path, seed: u64, nodes: Option<usize>) -> String {
    let nodes = nodes.map(|n| format!(" --nodes {n}")).unwrap_or_default();
    format!("hawser sim run {} --seed {seed}{nodes}", path.display())
}

fn run_one(scenario: &file::Scenario, trace: Option<&Path>) -> Result<Report, String> {
    Ok(hawser_scenarios::run_stack(scenario, options(trace)?)?)
}

fn options(trace: Option<&Path>) -> Result<Options, String> {
    let mut options = Options::default();
    if let Some(path) = trace {
        let f = std::fs::File::create(path)
            .map_err(|e| format!("cannot write trace {}: {e}", path.display()))?;
        options.trace = Some(Box::new(std::io::BufWriter::new(f)));
    }
    Ok(options)
}

/// Run with the pictures recorded and write the HTML run report to `out`.
fn run_with_report(
    scenario: &file::Scenario,
    trace: Option<&Path>,
    out: &Path,
    graph_at: &[hawser_core::Duration],
    replay: &str,
) -> Result<Report, String> {
    let (report, recording) = pictures::run_stack_recorded(scenario, options(trace)?, graph_at)?;
    let html = pictures::render_run(&report, &recording, replay);
    std::fs::write(out, html).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(report)
}

fn run(
    path: &Path,
    seed: Option<u64>,
    nodes: Option<usize>,
    json: bool,
    trace: Option<PathBuf>,
    html: Option<(PathBuf, Vec<hawser_core::Duration>)>,
) -> ExitCode {
    let outcome = load(path, seed, nodes).and_then(|s| match &html {
        Some((out, at)) => {
            let replay = replay_command(path, s.seed, nodes);
            run_with_report(&s, trace.as_deref(), out, at, &replay)
        }
        None => run_one(&s, trace.as_deref()),
    });
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("reports serialise")
        );
    } else {
        print!("{}", report.human());
    }
    let _ = std::io::stdout().flush();
    if report.passed {
        ExitCode::SUCCESS
    } else {
        eprintln!("replay: {}", replay_command(path, report.seed, nodes));
        if trace.is_none() {
            eprintln!("        (add --trace FILE for a JSON-lines event trace)");
        }
        ExitCode::FAILURE
    }
}

/// A seed's report kept by an earlier `sweep --out`, or the run, kept there now.
fn run_or_reuse(scenario: &file::Scenario, out: Option<&Path>) -> Result<Report, String> {
    let Some(dir) = out else {
        return run_one(scenario, None);
    };
    let kept = dir.join(format!("{}.{}.json", scenario.name, scenario.seed));
    if let Ok(text) = std::fs::read_to_string(&kept) {
        return serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a report ({e}); delete it to re-run",
                kept.display()
            )
        });
    }
    let report = run_one(scenario, None)?;
    let text = serde_json::to_string(&report).expect("reports serialise");
    std::fs::write(&kept, text).map_err(|e| format!("cannot write {}: {e}", kept.display()))?;
    Ok(report)
}

fn sweep(
    path: &Path,
    (a, b): (u64, u64),
    jobs: Option<usize>,
    nodes: Option<usize>,
    out: Option<&Path>,
    html: Option<&Path>,
) -> ExitCode {
    let base = match load(path, None, nodes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = out
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let total = b - a + 1;
    let progress = Progress::new(&base.name, Some(total), "seeds");
    let next = AtomicU64::new(a);
    let failures = Mutex::new(Vec::new());
    let figures = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > b {
                        break;
                    }
                    let mut scenario = base.clone();
                    scenario.seed = seed;
                    let outcome = run_or_reuse(&scenario, out);
                    if let Ok(r) = &outcome {
                        if html.is_some() {
                            reports.lock().expect("no panics hold it").push(r.clone());
                        }
                        let mut m = r.metrics.clone();
                        m.insert("wall_ms".into(), r.wall_ms as f64);
                        figures.lock().expect("no panics hold it").push(m);
                    }
                    match outcome {
                        Ok(r) if r.passed => {}
                        Ok(r) => {
                            // The steps' notes (a refused op...) are often the cause.
                            let why: Vec<String> = r
                                .expectations
                                .iter()
                                .filter(|e| !e.passed)
                                .map(|e| format!("{} (line {}): {}", e.kind, e.line, e.detail))
                                .chain(r.notes.iter().map(|n| format!("note at {n}")))
                                .collect();
                            failures
                                .lock()
                                .expect("no panics hold it")
                                .push((seed, why.join("; ")));
                        }
                        Err(e) => errors.lock().expect("no panics hold it").push((seed, e)),
                    }
                    let failed = failures.lock().expect("no panics hold it").len();
                    progress.done(failed);
                }
            });
        }
    });
    progress.finish();
    let mut failures = failures.into_inner().expect("threads joined");
    let errors = errors.into_inner().expect("threads joined");
    if let Some((_, e)) = errors.first() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    failures.sort();
    println!(
        "{}: {} of {total} seeds passed",
        base.name,
        total - failures.len() as u64
    );
    print!(
        "{}",
        summary(&figures.into_inner().expect("threads joined"))
    );
    for (seed, why) in &failures {
        println!("  seed {seed}: {why}");
        println!("    replay: {}", replay_command(path, *seed, nodes));
    }
    if let Some(html) = html {
        let reports = reports.into_inner().expect("threads joined");
        let context = SweepContext {
            path,
            nodes,
            base: &base,
            seeds: (a, b),
        };
        if let Err(e) = sweep_report(html, &context, &reports, &failures) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        println!("report: {}", html.display());
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Median, best and worst of every metric over the runs of a sweep.
fn summary(runs: &[BTreeMap<String, f64>]) -> String {
    let mut by_metric: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for run in runs {
        for (k, v) in run {
            by_metric.entry(k).or_default().push(*v);
        }
    }
    let mut out = format!(
        "  {:<28} {:>12} {:>12} {:>12}\n",
        "metric", "median", "min", "max"
    );
    for (k, mut values) in by_metric {
        values.sort_by(f64::total_cmp);
        let median = values[values.len() / 2];
        let (min, max) = (values[0], values[values.len() - 1]);
        out += &format!("  {k:<28} {median:>12} {min:>12} {max:>12}\n");
    }
    out
}

/// What the sweep report needs to know about the sweep.
struct SweepContext<'a> {
    path: &'a Path,
    nodes: Option<usize>,
    base: &'a file::Scenario,
    seeds: (u64, u64),
}

/// Write the sweep report to `out`, and each failing seed's run report (run again, with
/// the pictures recorded: a seed replays exactly) in `out` minus its extension plus `.d`.
fn sweep_report(
    out: &Path,
    cx: &SweepContext,
    reports: &[Report],
    failures: &[(u64, String)],
) -> Result<(), String> {
    let dir = out.with_extension("d");
    if !failures.is_empty() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut listed = Vec::new();
    for (seed, why) in failures {
        let mut scenario = cx.base.clone();
        scenario.seed = *seed;
        let name = format!("{}.{seed}.html", scenario.name);
        let replay = replay_command(cx.path, *seed, cx.nodes);
        run_with_report(&scenario, None, &dir.join(&name), &[], &replay)?;
        listed.push(pictures::SweepFailure {
            seed: *seed,
            why: why.clone(),
            replay,
            report_href: Some(format!("{dir_name}/{name}")),
        });
    }
    let html = pictures::render_sweep(&cx.base.name, cx.seeds, reports, &listed);
    std::fs::write(out, html).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::parse_seeds;

    #[test]
    fn seeds_are_a_range_either_way_or_a_count() {
        assert_eq!(parse_seeds("1..5"), Ok((1, 5)));
        assert_eq!(parse_seeds("3-7"), Ok((3, 7)));
        assert_eq!(parse_seeds("5"), Ok((1, 5)));
        assert!(parse_seeds("0").is_err());
        assert!(parse_seeds("5..1").unwrap_err().contains("empty"));
        assert!(parse_seeds("x").unwrap_err().contains("A..B, A-B or N"));
    }
}
