//! `hawser sim shrink`: cut a failing run down to a minimal scenario file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hawser_scenarios::shrink::{self, Failure, Shrunk};
use hawser_scenarios::{Options, file, run_stack};

/// Candidate runs when `--budget` is not given: enough for a few passes over a
/// catalogue-sized file (each pass costs about log2 of each dimension plus the steps).
pub const DEFAULT_BUDGET: usize = 500;

/// Shrinks `path` run with `seed` (the file's own without it) and writes the minimal
/// scenario to `out` (default `NAME.SEED.min.toml` in the current directory).
pub fn main(path: &Path, seed: Option<u64>, out: Option<PathBuf>, budget: usize) -> ExitCode {
    match shrink_file(path, seed, out, budget) {
        Ok((shrunk, out)) => {
            println!("before: {}", shrunk.before);
            println!("after:  {}", shrunk.after);
            println!("fails:  {}", shrunk.failure);
            println!("runs:   {}", shrunk.runs);
            if shrunk.budget_spent {
                println!(
                    "the budget of {budget} runs was spent before a pass changed nothing: \
                     a smaller scenario may exist (raise --budget)"
                );
            }
            println!("wrote {}", out.display());
            println!("replay: hawser sim run {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn shrink_file(
    path: &Path,
    seed: Option<u64>,
    out: Option<PathBuf>,
    budget: usize,
) -> Result<(Shrunk, PathBuf), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    let scenario = file::parse(&text, &name).map_err(|e| e.to_string())?;
    let seed = seed.unwrap_or(scenario.seed);
    let out = out.unwrap_or_else(|| format!("{}.{seed}.min.toml", scenario.name).into());
    let shrunk = quietly(|| {
        let mut runs = 0;
        shrink::shrink(&text, &name, seed, budget, |s| {
            runs += 1;
            if runs % 25 == 0 {
                eprintln!("shrink: {runs} runs...");
            }
            run_quiet(s)
        })
    })
    .map_err(|e| e.to_string())?;
    write_shrunk(
        &out,
        &format!("`hawser sim shrink {name} --seed {seed}`"),
        &shrunk,
    )?;
    Ok((shrunk, out))
}

/// One run to its failure, if any (a panic counts; see [`shrink::outcome`]).
pub fn run_quiet(s: &file::Scenario) -> Result<Option<Failure>, String> {
    shrink::outcome(|| run_stack(s, Options::default())).map_err(String::from)
}

/// Runs `f` with panics caught silently: a panicking candidate is an outcome the
/// shrinker weighs, not something to print a backtrace for every time.
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = f();
    std::panic::set_hook(hook);
    r
}

/// Writes the minimal scenario to `out` under a comment header saying what it was shrunk
/// by (`by`), from what size, and how it fails (on one line).
pub fn write_shrunk(out: &Path, by: &str, shrunk: &Shrunk) -> Result<(), String> {
    let header = format!(
        "# Shrunk by {by} from {}.\n# {}\n",
        shrunk.before,
        shrunk.failure.to_string().replace('\n', " ")
    );
    std::fs::write(out, header + &shrunk.text)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))
}
