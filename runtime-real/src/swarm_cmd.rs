//! `hawser sim swarm`: many randomly drawn runs (see `hawser_scenarios::swarm`), each
//! failure written as a scenario file that replays it, and shrunk.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hawser_scenarios::file;
use hawser_scenarios::shrink::{self, Failure};
use hawser_scenarios::swarm::{Drawn, FaultClass, Swarm};

use crate::progress::Progress;
use crate::shrink_cmd::{DEFAULT_BUDGET, quietly, run_quiet, write_shrunk};

/// What `hawser sim swarm` was asked for.
pub struct Args {
    pub swarm: Swarm,
    /// Run seeds `first..first + runs`...
    pub first: u64,
    pub runs: Option<u64>,
    /// ...or as many as fit in this much wall time.
    pub time: Option<std::time::Duration>,
    pub jobs: usize,
    pub out: PathBuf,
    pub shrink: bool,
}

/// One failed run.
struct Found {
    drawn: Drawn,
    failure: Failure,
    file: PathBuf,
    /// The shrunk file and its size, or why it could not be shrunk.
    shrunk: Option<Result<(PathBuf, String), String>>,
}

pub fn main(args: Args) -> ExitCode {
    if let Err(e) = args.swarm.check() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let (mut found, errors, done) = quietly(|| run_all(&args, started));
    let ran_for = started.elapsed();
    if args.shrink {
        quietly(|| shrink_all(&mut found, &args.out));
    }
    report(&args, &found, &errors, done, ran_for)
}

/// Runs the swarm; returns the failures, the runs the runner refused (a bug in the
/// drawing: every drawn file must run), and the number of runs made.
fn run_all(args: &Args, started: Instant) -> (Vec<Found>, Vec<(u64, String)>, u64) {
    let last = args.runs.map(|n| args.first + n);
    let progress = Progress::new("swarm", args.runs, "runs");
    let next = AtomicU64::new(args.first);
    let made = AtomicU64::new(0);
    let found = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs {
            s.spawn(|| {
                loop {
                    if args.time.is_some_and(|t| started.elapsed() >= t) {
                        break;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if last.is_some_and(|l| seed >= l) {
                        break;
                    }
                    match run_one(&args.swarm, seed, &args.out) {
                        Ok(None) => {}
                        Ok(Some(f)) => found.lock().expect("no panics hold it").push(f),
                        Err(e) => errors.lock().expect("no panics hold it").push((seed, e)),
                    }
                    made.fetch_add(1, Ordering::Relaxed);
                    let failed = found.lock().expect("no panics hold it").len();
                    progress.done(failed);
                }
            });
        }
    });
    progress.finish();
    let mut found = found.into_inner().expect("threads joined");
    found.sort_by_key(|f| f.drawn.seed);
    let mut errors = errors.into_inner().expect("threads joined");
    errors.sort();
    (found, errors, made.into_inner())
}

/// Draws and runs `seed`; a failure is written to `out` as `swarm-SEED.toml`.
fn run_one(swarm: &Swarm, seed: u64, out: &Path) -> Result<Option<Found>, String> {
    let drawn = swarm.draw(seed).map_err(|e| e.to_string())?;
    let name = format!("swarm-{seed}.toml");
    let scenario = file::parse(&drawn.text, &name).map_err(|e| e.to_string())?;
    let Some(failure) = run_quiet(&scenario)? else {
        return Ok(None);
    };
    let file = out.join(&name);
    std::fs::write(&file, &drawn.text)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(Some(Found {
        drawn,
        failure,
        file,
        shrunk: None,
    }))
}

/// Shrinks every failure, in parallel, into `swarm-SEED.min.toml`.
fn shrink_all(found: &mut [Found], out: &Path) {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicU64::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(f) = found.get(i) else { break };
                    let r = shrink_one(f, out);
                    results.lock().expect("no panics hold it").push((i, r));
                }
            });
        }
    });
    for (i, r) in results.into_inner().expect("threads joined") {
        found[i].shrunk = Some(r);
    }
}

fn shrink_one(f: &Found, out: &Path) -> Result<(PathBuf, String), String> {
    let name = f.file.display().to_string();
    let seed = f.drawn.seed;
    let shrunk = shrink::shrink(&f.drawn.text, &name, seed, DEFAULT_BUDGET, run_quiet)
        .map_err(|e| e.to_string())?;
    let file = out.join(format!("swarm-{seed}.min.toml"));
    write_shrunk(&file, &format!("`hawser sim swarm` from {name}"), &shrunk)?;
    let spent = if shrunk.budget_spent {
        " (budget spent)"
    } else {
        ""
    };
    Ok((file, format!("{}{spent}", shrunk.after)))
}

fn report(
    args: &Args,
    found: &[Found],
    errors: &[(u64, String)],
    done: u64,
    took: std::time::Duration,
) -> ExitCode {
    let secs = took.as_secs_f64();
    println!(
        "swarm: {done} runs (seeds from {}), {} passed, {} failed, in {secs:.1}s ({:.1} runs/s)",
        args.first,
        done - found.len() as u64 - errors.len() as u64,
        found.len(),
        done as f64 / secs.max(1e-9),
    );
    for class in FaultClass::ALL {
        let failed = found
            .iter()
            .filter(|f| f.drawn.classes.contains(&class))
            .count();
        if failed > 0 {
            println!("  {failed} failures drew {class}");
        }
    }
    for f in found {
        let classes: Vec<&str> = f.drawn.classes.iter().map(|c| c.name()).collect();
        println!(
            "seed {} [{}]: {}",
            f.drawn.seed,
            classes.join(", "),
            f.failure
        );
        println!("  replay: hawser sim run {}", f.file.display());
        match &f.shrunk {
            Some(Ok((file, size))) => {
                println!("  shrunk to {size}: hawser sim run {}", file.display())
            }
            Some(Err(why)) => println!("  not shrunk: {why}"),
            None => {}
        }
    }
    for (seed, e) in errors {
        println!("seed {seed}: the drawn run could not run (a bug in the swarm): {e}");
    }
    if found.is_empty() && errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
