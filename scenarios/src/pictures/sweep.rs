//! The sweep report: how each metric is spread over the seeds, and the failing seeds with
//! their replay commands and links to their own run reports.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::Report;

use super::html::page;
use super::svg::{esc, histogram, short};

/// A failing seed as the sweep report lists it.
#[derive(Clone, Debug)]
pub struct SweepFailure {
    pub seed: u64,
    /// The failed expectations, as the text summary prints them.
    pub why: String,
    pub replay: String,
    /// The seed's run report, relative to the sweep report.
    pub report_href: Option<String>,
}

/// For most figures more is worse (latencies, traffic, evictions); for a minimum, less.
fn worse_is_lower(metric: &str) -> bool {
    metric.ends_with("_min")
}

/// The sweep report of `runs` (one report per seed, any order); `seeds` the range swept.
pub fn render_sweep(
    scenario: &str,
    seeds: (u64, u64),
    runs: &[Report],
    failures: &[SweepFailure],
) -> String {
    let mut b = String::new();
    let passed = runs.iter().filter(|r| r.passed).count();
    let _ = write!(
        b,
        r#"<header><h1>sweep {}</h1><p class="verdict {}" data-seeds="{}" data-failed="{}">{passed} of {} seeds passed (seeds {}..{})</p></header>"#,
        esc(scenario),
        if failures.is_empty() {
            "passed"
        } else {
            "failed"
        },
        runs.len(),
        failures.len(),
        runs.len(),
        seeds.0,
        seeds.1
    );
    b.push_str("<section id=\"failures\"><h2>Failing seeds</h2>");
    if failures.is_empty() {
        b.push_str("<p>none</p>");
    } else {
        b.push_str("<table class=\"failures\"><tr><th>seed</th><th>why</th><th>replay</th><th>run report</th></tr>");
        for f in failures {
            let link = f.report_href.as_ref().map_or(String::new(), |h| {
                format!(
                    r#"<a class="run-report" href="{}">seed {}</a>"#,
                    esc(h),
                    f.seed
                )
            });
            let _ = write!(
                b,
                r#"<tr class="failed" data-seed="{}"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{link}</td></tr>"#,
                f.seed,
                f.seed,
                esc(&f.why),
                esc(&f.replay)
            );
        }
        b.push_str("</table>");
    }
    b.push_str("</section>\n<section id=\"distributions\"><h2>Metrics across seeds</h2><p class=\"note\">One histogram per metric; blue: the median, dashed red: the worst seed (the highest value; the lowest for a minimum).</p><div class=\"metrics-grid\">");
    let mut by_metric: BTreeMap<&str, Vec<(f64, u64)>> = BTreeMap::new();
    for r in runs {
        for (k, v) in &r.metrics {
            by_metric.entry(k).or_default().push((*v, r.seed));
        }
    }
    for (metric, mut values) in by_metric {
        values.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (median, median_seed) = values[values.len() / 2];
        let (worst, worst_seed) = if worse_is_lower(metric) {
            values[0]
        } else {
            values[values.len() - 1]
        };
        let _ = write!(
            b,
            r#"<figure class="dist" data-metric="{}"><figcaption>{}</figcaption>"#,
            esc(metric),
            esc(metric)
        );
        let plain: Vec<f64> = values.iter().map(|(v, _)| *v).collect();
        histogram(&mut b, &plain, median, worst);
        let _ = write!(
            b,
            r#"<div class="legend">median {} (seed {median_seed}), worst {} (seed {worst_seed}), {} seeds</div></figure>"#,
            short(median),
            short(worst),
            values.len()
        );
    }
    b.push_str("</div></section>\n");
    page(&format!("sweep {scenario}"), &b)
}
