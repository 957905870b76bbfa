//! The data behind `--report` on a small partition-and-heal run, and the structure of the
//! page drawn from it (insta snapshot of a structural summary: section titles, charts and
//! their curves, the graph snapshots; nothing that varies with wall time).

use hawser_scenarios::file;
use hawser_scenarios::pictures::{self, NodeStatus, Recording};
use hawser_scenarios::{Options, Report};

/// Eight nodes, a KV write, a 4/4 partition from 10 s to 30 s, a heal, 45 s in all.
const SPLIT: &str = r#"
name = "split-8"
nodes = 8
duration = "45s"
seed = 3
contacts = "n0"

[[step]]
at = "0s"
action = "start"

[[step]]
at = "3s"
action = "kv-op"
node = "n1"
key = "k"
op = '{"update":[{"field":"number","type":"counter","op":{"increment":1}}]}'

[[step]]
at = "10s"
action = "partition"
groups = ["n0..n3", "n4..n7"]

[[step]]
at = "30s"
action = "heal"

[[expect]]
kind = "overlay-connected"
within = "10s"
until = "10s"

[[expect]]
kind = "overlay-connected"
nodes = "n0..n3"
after = "10s"
within = "15s"
until = "30s"

[[expect]]
kind = "overlay-connected"
after = "30s"
within = "10s"
"#;

fn recorded() -> (Report, Recording) {
    let scenario = file::parse(SPLIT, "split-8.toml").expect("valid scenario");
    pictures::run_stack_recorded(&scenario, Options::default(), &[]).expect("runs")
}

fn value_at(rec: &Recording, curve: &str, ms: u64) -> f64 {
    let k = rec
        .series
        .t_ms
        .iter()
        .position(|&t| t == ms)
        .unwrap_or_else(|| panic!("no sample at {ms} ms"));
    rec.series.curve(curve).expect("curve recorded").values[k]
}

#[test]
fn recording_changes_nothing_in_the_run() {
    let scenario = file::parse(SPLIT, "split-8.toml").unwrap();
    let plain = hawser_scenarios::run_stack(&scenario, Options::default()).unwrap();
    let (with, _) = recorded();
    assert_eq!(plain.trace_hash, with.trace_hash);
    assert_eq!(plain.events, with.events);
    assert_eq!(plain.metrics, with.metrics);
    assert!(plain.passed, "{}", plain.human());
}

#[test]
fn series_follow_the_partition() {
    let (_, rec) = recorded();
    // Sampled on the check clock: every 100 ms from 0 to the end.
    assert_eq!(rec.series.t_ms[0], 0);
    assert!(rec.series.t_ms.windows(2).all(|w| w[1] - w[0] == 100));
    assert_eq!(*rec.series.t_ms.last().unwrap(), 45_000);
    for c in &rec.series.curves {
        assert_eq!(c.values.len(), rec.series.t_ms.len(), "{}", c.name);
    }
    assert_eq!(value_at(&rec, "live nodes", 5_000), 8.0);
    // Just before the partition everyone reaches everyone; just before the heal each
    // side reaches its own 3 others: 8 * 3 of the 8 * 7 ordered pairs.
    let reach = "live pairs considered reachable";
    assert_eq!(value_at(&rec, reach, 9_900), 1.0);
    assert!((value_at(&rec, reach, 29_900) - 24.0 / 56.0).abs() < 1e-9);
    assert_eq!(value_at(&rec, reach, 44_900), 1.0);
    assert_eq!(value_at(&rec, "components", 9_900), 1.0);
    assert_eq!(value_at(&rec, "components", 29_900), 2.0);
    assert_eq!(value_at(&rec, "components", 44_900), 1.0);
    let min = value_at(&rec, "min", 9_900);
    let max = value_at(&rec, "max", 9_900);
    assert!(min >= 1.0 && min <= value_at(&rec, "median", 9_900) && max <= 7.0);
    // One KV op, applied at 3 s, everywhere by 10 s.
    assert_eq!(value_at(&rec, "applied (total)", 2_900), 0.0);
    assert_eq!(value_at(&rec, "applied (total)", 9_900), 1.0);
    assert_eq!(value_at(&rec, "in flight", 9_900), 0.0);
    assert_eq!(value_at(&rec, "oldest op not yet everywhere", 9_900), 0.0);
    // The partition makes each side report the other unreachable.
    let noticed: f64 = rec
        .series
        .curve("unreachable events")
        .unwrap()
        .values
        .iter()
        .sum();
    assert!(noticed >= 8.0 * 4.0, "{noticed} unreachable events");
    // An idle lan node sends ~3 frames a second, so a single 100 ms sample may hold
    // none: the curve as a whole must show the traffic.
    let msgs: f64 = rec.series.curve("messages").unwrap().values.iter().sum();
    assert!(msgs > 0.0, "traffic is counted");
}

#[test]
fn snapshots_before_during_and_after_the_partition() {
    let (_, rec) = recorded();
    let labels: Vec<(&str, u64)> = rec
        .snapshots
        .iter()
        .map(|s| (s.label.as_str(), s.at_ms))
        .collect();
    assert_eq!(
        labels,
        [("before", 10_000), ("during", 30_000), ("end", 45_000)]
    );
    let [before, during, end] = &rec.snapshots[..] else {
        unreachable!()
    };
    assert_eq!(before.components(), 1);
    assert_eq!(during.components(), 2);
    assert_eq!(end.components(), 1);
    let side = |i: usize| during.component[i];
    assert!((0..4).all(|i| side(i) == side(0)) && (4..8).all(|i| side(i) == side(4)));
    assert_ne!(side(0), side(4));
    assert!(
        during
            .edges
            .iter()
            .all(|e| !e.cut && (e.a < 4) == (e.b < 4))
    );
    assert!(during.status.iter().all(|s| *s == NodeStatus::Live));
    // Layout inputs: one cluster per component, holding its members.
    assert_eq!(during.layout.clusters.len(), 2);
    assert_eq!(during.layout.clusters[0].nodes, 4);
    for e in &rec.expectations {
        assert_eq!(
            e.phases.last().map(|p| p.1),
            Some(pictures::Phase::Passed),
            "{e:?}"
        );
    }
    let steps: Vec<(&str, u64, Option<u64>)> = rec
        .steps
        .iter()
        .map(|s| (s.action, s.at_ms, s.until_ms))
        .collect();
    assert_eq!(
        steps,
        [
            ("start", 0, None),
            ("kv-op", 3_000, None),
            ("partition", 10_000, Some(30_000)),
            ("heal", 30_000, None)
        ]
    );
}

/// The page's structure, one line per thing a reader finds on it.
fn structure(html: &str) -> String {
    let mut out = Vec::new();
    let count = |needle: &str| html.matches(needle).count();
    for part in html.split("<h2>").skip(1) {
        out.push(format!("section {}", &part[..part.find("</h2>").unwrap()]));
    }
    for part in html.split(r#"<figure class="chart" data-chart=""#).skip(1) {
        let title = &part[..part.find('"').unwrap()];
        let series = part.split(r#"data-series=""#).nth(1).unwrap();
        out.push(format!(
            "chart {title}: {}",
            &series[..series.find('"').unwrap()]
        ));
    }
    for part in html
        .split(r#"<svg viewBox="#)
        .skip(1)
        .map(|p| &p[..p.find('>').unwrap()])
        .filter(|tag| tag.contains("data-snapshot"))
    {
        let attr = |name: &str| {
            let v = part.split(&format!(r#"{name}=""#)).nth(1).unwrap();
            v[..v.find('"').unwrap()].to_string()
        };
        out.push(format!(
            "graph {}: {} nodes, {} components",
            attr("data-snapshot"),
            attr("data-nodes"),
            attr("data-components")
        ));
    }
    out.push(format!("timeline steps: {}", count(r#"<g class="step "#)));
    out.push(format!(
        "timeline expectations: {}",
        count(r#"<g class="expect""#)
    ));
    out.push(format!(
        "expectation rows: {}",
        count(r#"<tr class="passed">"#)
    ));
    out.push(format!("replay: {}", count(r#"<code class="replay">"#)));
    out.push(format!(
        "external references: {}",
        count("http://") + count("https://")
    ));
    out.join("\n")
}

#[test]
fn run_report_structure() {
    let (report, rec) = recorded();
    let html = pictures::render_run(&report, &rec, "hawser sim run split-8.toml --seed 3");
    insta::assert_snapshot!(structure(&html));
}

#[test]
fn sweep_report_structure() {
    let (report, _) = recorded();
    let mut other = report.clone();
    other.seed = 4;
    other.passed = false;
    let failure = pictures::SweepFailure {
        seed: 4,
        why: "overlay-connected (line 30): split".into(),
        replay: "hawser sim run split-8.toml --seed 4".into(),
        report_href: Some("sweep.d/split-8.4.html".into()),
    };
    let html = pictures::render_sweep("split-8", (3, 4), &[report.clone(), other], &[failure]);
    assert_eq!(
        html.matches(r#"<figure class="dist""#).count(),
        report.metrics.len()
    );
    assert!(html.contains(r#"<a class="run-report" href="sweep.d/split-8.4.html">"#));
    assert!(html.contains(r#"data-seeds="2" data-failed="1""#));
}
