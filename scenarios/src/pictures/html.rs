//! The run report: one self-contained HTML page (inline SVG and CSS, nothing fetched).

use std::fmt::Write;

use crate::report::Report;

use super::Recording;
use super::graph_snapshot::{GraphSnapshot, NodeStatus};
use super::svg::{LEFT, TimeScale, WIDTH, esc, line_chart, secs};
use super::timeline::Phase;

pub(crate) const PAGE: &str = include_str!("assets/page.html");
pub(crate) const CSS: &str = include_str!("assets/report.css");

/// Graphs with more links than this draw them as one path (no per-link elements), so a
/// 1,000-node report stays small.
const LINK_ELEMENTS_UP_TO: usize = 1500;

/// Fill the page template.
pub(crate) fn page(title: &str, body: &str) -> String {
    PAGE.replace("{{title}}", &esc(title))
        .replace("{{css}}", CSS)
        .replace("{{body}}", body)
}

/// The run report of `report`, drawn from `recording`; `replay` is the command that
/// reproduces the run.
pub fn render_run(report: &Report, recording: &Recording, replay: &str) -> String {
    let mut b = String::new();
    let verdict = if report.passed { "passed" } else { "failed" };
    let _ = write!(
        b,
        r#"<header><h1>scenario {}</h1><p class="verdict {verdict}" data-passed="{}">{} — seed {}, {} nodes, {} virtual in {:.2} s wall ({} events)</p><p>replay: <code class="replay">{}</code></p><p class="hash">trace hash <code>{}</code></p></header>"#,
        esc(&report.scenario),
        report.passed,
        verdict.to_uppercase(),
        report.seed,
        report.nodes,
        secs(report.virtual_ms),
        report.wall_ms as f64 / 1000.0,
        report.events,
        esc(replay),
        esc(&report.trace_hash),
    );
    let scale = TimeScale {
        end_ms: recording.end_ms,
    };
    timeline_section(&mut b, recording, scale);
    b.push_str("<section id=\"curves\"><h2>Curves</h2><p class=\"note\">Sampled every 100 ms of virtual time, where the expectations are checked; shaded: the steps that last (partitions, broken cookies, pauses, slow links, freezes).</p>\n");
    let mut charts: Vec<&str> = Vec::new();
    for c in &recording.series.curves {
        if !charts.contains(&c.chart) {
            charts.push(c.chart);
        }
    }
    for chart in charts {
        let curves: Vec<_> = recording
            .series
            .curves
            .iter()
            .filter(|c| c.chart == chart)
            .collect();
        line_chart(
            &mut b,
            chart,
            &recording.series.t_ms,
            &curves,
            scale,
            &recording.steps,
        );
    }
    b.push_str("</section>\n<section id=\"graphs\"><h2>Overlay graph</h2>");
    b.push_str(LEGEND);
    b.push_str(r#"<div class="graphs">"#);
    for snap in &recording.snapshots {
        graph(&mut b, snap);
    }
    b.push_str("</div></section>\n");
    expectations_section(&mut b, report);
    b.push_str("<section id=\"steps\"><h2>Steps</h2><pre>");
    for line in &report.timeline {
        let _ = writeln!(b, "{}", esc(line));
    }
    b.push_str("</pre></section>\n<section id=\"metrics\"><h2>Metrics</h2><table>");
    for (k, v) in &report.metrics {
        let _ = write!(b, "<tr><td>{}</td><td class=\"num\">{v}</td></tr>", esc(k));
    }
    b.push_str("</table></section>\n");
    page(&format!("{} seed {}", report.scenario, report.seed), &b)
}

const LEGEND: &str = concat!(
    r#"<p class="legend">"#,
    r#"<span class="dot live"></span>live <span class="dot isolated"></span>isolated (no overlay link) "#,
    r#"<span class="dot paused"></span>paused <span class="dot frozen"></span>frozen "#,
    r#"<span class="dot killed"></span>killed <span class="dot idle"></span>not started; "#,
    r#"each overlay component is its own cluster; <span class="cutkey"></span> a link the network "#,
    r#"no longer carries (partition or broken cookie) that the overlay still holds</p>"#
);

fn timeline_section(b: &mut String, rec: &Recording, scale: TimeScale) {
    const ROW: f64 = 24.0;
    let rows = 1 + rec.expectations.len();
    let height = 20.0 + rows as f64 * ROW + 24.0;
    let _ = write!(
        b,
        r#"<section id="timeline"><h2>Timeline</h2><svg class="timeline" viewBox="0 0 {WIDTH} {height}" data-steps="{}" data-expectations="{}">"#,
        rec.steps.len(),
        rec.expectations.len()
    );
    scale.bands(b, &rec.steps, 10.0, 10.0 + rows as f64 * ROW);
    let _ = write!(
        b,
        r#"<text class="row" x="{:.1}" y="{:.1}">steps</text>"#,
        LEFT - 6.0,
        10.0 + ROW * 0.65
    );
    for s in &rec.steps {
        let x = scale.x(s.at_ms);
        let _ = write!(
            b,
            r#"<g class="step {}" data-action="{}" data-at-ms="{}"><line x1="{x:.1}" y1="10" x2="{x:.1}" y2="{:.1}"/><circle cx="{x:.1}" cy="{:.1}" r="4"/><title>{}</title></g>"#,
            esc(s.action),
            esc(s.action),
            s.at_ms,
            10.0 + rows as f64 * ROW,
            10.0 + ROW / 2.0,
            esc(&s.text)
        );
    }
    for (k, e) in rec.expectations.iter().enumerate() {
        let y = 10.0 + (k + 1) as f64 * ROW + ROW / 2.0;
        let outcome = e.phases.last().map_or("unchecked", |(_, p)| p.name());
        let _ = write!(
            b,
            r#"<g class="expect" data-kind="{}" data-line="{}" data-outcome="{outcome}"><text class="row" x="{:.1}" y="{:.1}">{} (line {})</text><line class="window" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
            e.kind,
            e.line,
            LEFT - 6.0,
            y + 4.0,
            e.kind,
            e.line,
            scale.x(e.after_ms),
            scale.x(e.until_ms),
        );
        if e.window_end_ms > e.after_ms {
            let x = scale.x(e.window_end_ms);
            let _ = write!(
                b,
                r#"<line class="deadline" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"><title>must hold by {}</title></line>"#,
                y - 7.0,
                y + 7.0,
                secs(e.window_end_ms)
            );
        }
        for (j, &(at, phase)) in e.phases.iter().enumerate() {
            let to = e.phases.get(j + 1).map_or(e.until_ms, |&(t, _)| t);
            let (x0, x1) = (scale.x(at), scale.x(to.max(at)));
            match phase {
                Phase::Waiting | Phase::Holding => {
                    let _ = write!(
                        b,
                        r#"<rect class="phase {}" x="{x0:.1}" y="{:.1}" width="{:.1}" height="8"><title>{} from {}</title></rect>"#,
                        phase.name(),
                        y - 4.0,
                        (x1 - x0).max(1.0),
                        phase.name(),
                        secs(at)
                    );
                }
                Phase::Passed | Phase::Failed => {
                    let _ = write!(
                        b,
                        r#"<circle class="mark {}" cx="{x0:.1}" cy="{y:.1}" r="5"><title>{} at {}</title></circle>"#,
                        phase.name(),
                        phase.name(),
                        secs(at)
                    );
                }
            }
        }
        b.push_str("</g>");
    }
    scale.axis(b, 10.0 + rows as f64 * ROW);
    b.push_str("</svg><p class=\"legend\"><span class=\"key waiting\">waiting</span> <span class=\"key holding\">holding</span> <span class=\"key passed\">passed</span> <span class=\"key failed\">failed</span>; a tick marks the deadline to hold by; hover for details.</p></section>\n");
}

fn graph(b: &mut String, snap: &GraphSnapshot) {
    let l = &snap.layout;
    let live = snap.component.iter().flatten().count();
    let cut = snap.edges.iter().filter(|e| e.cut).count();
    let _ = write!(
        b,
        r#"<figure class="graph{}" data-snapshot="{}"><figcaption>{} — {}: {live} live nodes, {} overlay components, {} links ({cut} across a network cut)</figcaption><svg viewBox="0 0 {:.0} {:.0}" data-snapshot="{}" data-nodes="{}" data-live="{live}" data-edges="{}" data-cut="{cut}" data-components="{}">"#,
        if snap.status.len() > 200 { " wide" } else { "" },
        esc(&snap.label),
        esc(&snap.label),
        secs(snap.at_ms),
        snap.components(),
        snap.edges.len(),
        l.width,
        l.height,
        esc(&snap.label),
        snap.status.len(),
        snap.edges.len(),
        snap.components(),
    );
    for (k, c) in l.clusters.iter().enumerate() {
        let _ = write!(
            b,
            r#"<circle class="cluster" data-component="{k}" cx="{:.0}" cy="{:.0}" r="{:.0}"/>"#,
            c.x,
            c.y,
            c.r + l.node_r * 2.0
        );
        if c.nodes > 1 {
            let _ = write!(
                b,
                r#"<text class="clabel" x="{:.0}" y="{:.0}">{} nodes</text>"#,
                c.x,
                c.y - c.r - l.node_r * 2.0 - 3.0,
                c.nodes
            );
        }
    }
    let p = |i: usize| l.pos[i];
    if snap.edges.len() <= LINK_ELEMENTS_UP_TO {
        b.push_str(r#"<g class="edges">"#);
        for e in &snap.edges {
            let ((x1, y1), (x2, y2)) = (p(e.a), p(e.b));
            let _ = write!(
                b,
                r#"<line class="edge{}" data-a="{}" data-b="{}" x1="{x1:.0}" y1="{y1:.0}" x2="{x2:.0}" y2="{y2:.0}"/>"#,
                if e.cut { " cut" } else { "" },
                e.a,
                e.b
            );
        }
    } else {
        // Too many to draw one by one: two paths (carried and cut links).
        b.push_str(r#"<g class="edges aggregated">"#);
        for cut in [false, true] {
            let _ = write!(
                b,
                r#"<path class="edge{}" d=""#,
                if cut { " cut" } else { "" }
            );
            for e in snap.edges.iter().filter(|e| e.cut == cut) {
                let ((x1, y1), (x2, y2)) = (p(e.a), p(e.b));
                let _ = write!(b, "M{x1:.0} {y1:.0}L{x2:.0} {y2:.0}");
            }
            b.push_str(r#""/>"#);
        }
    }
    b.push_str("</g><g class=\"nodes\">");
    let small = snap.status.len() <= 200;
    for (i, s) in snap.status.iter().enumerate() {
        let (x, y) = p(i);
        let comp = snap.component[i].map_or(String::new(), |c| format!(r#" data-component="{c}""#));
        let _ = write!(
            b,
            r#"<circle class="node {}" data-node="{i}" data-status="{}"{comp} cx="{x:.0}" cy="{y:.0}" r="{}">"#,
            s.name(),
            s.name(),
            l.node_r
        );
        if small || *s != NodeStatus::Live {
            let _ = write!(b, "<title>n{i} {}</title>", s.name());
        }
        b.push_str("</circle>");
        if small {
            let _ = write!(
                b,
                r#"<text class="nlabel" x="{x:.0}" y="{:.0}">{i}</text>"#,
                y + 3.0
            );
        }
    }
    b.push_str("</g></svg></figure>\n");
}

fn expectations_section(b: &mut String, report: &Report) {
    b.push_str("<section id=\"expectations\"><h2>Expectations</h2><table class=\"expectations\"><tr><th>verdict</th><th>kind</th><th>line</th><th>at</th><th>detail</th></tr>");
    for e in &report.expectations {
        let when = e
            .at_ms
            .map_or("-".to_string(), |ms| format!("{:.3}s", ms as f64 / 1000.0));
        let _ = write!(
            b,
            r#"<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{when}</td><td>{}</td></tr>"#,
            if e.passed { "passed" } else { "failed" },
            if e.passed { "passed" } else { "FAILED" },
            esc(&e.kind),
            e.line,
            esc(&e.detail)
        );
    }
    b.push_str("</table></section>\n");
}
