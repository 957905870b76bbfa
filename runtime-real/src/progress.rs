//! Progress of a batch of runs (a sweep's seeds, a swarm's runs) on stderr: a bar on a
//! terminal; otherwise (a pipe, a CI log) a line every twentieth of the runs — every
//! hundred when the total is not known — which a log keeps and a bar's redraws would
//! not. Either way it ends on a line of its own, before the summary goes to stdout.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

pub enum Progress {
    Bar(ProgressBar),
    Lines {
        name: String,
        unit: &'static str,
        total: Option<u64>,
        every: u64,
        done: AtomicU64,
        started: std::time::Instant,
    },
}

impl Progress {
    /// `total` runs of `unit` ("seeds", "runs"), or as many as a time limit allows.
    pub fn new(name: &str, total: Option<u64>, unit: &'static str) -> Progress {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            let (bar, template) = match total {
                Some(n) => (
                    ProgressBar::new(n),
                    format!("{{bar:40}} {{pos}}/{{len}} {unit}, {{msg}} [{{elapsed}}]"),
                ),
                None => (
                    ProgressBar::new_spinner(),
                    format!("{{spinner}} {{pos}} {unit}, {{msg}} [{{elapsed}}]"),
                ),
            };
            bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
            return Progress::Bar(bar);
        }
        Progress::Lines {
            name: name.to_owned(),
            unit,
            total,
            every: total.map_or(100, |n| n.div_ceil(20)),
            done: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// One more finished; `failed` have failed so far.
    pub fn done(&self, failed: usize) {
        match self {
            Progress::Bar(bar) => {
                bar.set_message(format!("{failed} failed"));
                bar.inc(1);
            }
            Progress::Lines {
                name,
                unit,
                total,
                every,
                done,
                started,
            } => {
                let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                if done % every == 0 || Some(done) == *total {
                    let of = total.map(|t| format!("/{t}")).unwrap_or_default();
                    eprintln!(
                        "{name}: {done}{of} {unit}, {failed} failed [{}s]",
                        started.elapsed().as_secs()
                    );
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
