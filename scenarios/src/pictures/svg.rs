//! Small SVG pieces shared by the run and sweep reports: text escaping, the time axis,
//! line charts and histograms. Plain strings: the pictures are simple, and a chart crate
//! (plotters) would bring fonts and a drawing backend for a few polylines.

use std::fmt::Write;

use super::series::Curve;
use super::timeline::StepMark;

/// Width of every time-based picture, and the left margin for row labels; all of them
/// share one time scale so a step lines up across the timeline and the curves.
pub(crate) const WIDTH: f64 = 960.0;
pub(crate) const LEFT: f64 = 190.0;
const RIGHT: f64 = 20.0;

/// Text for HTML or SVG content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds, as the report prints instants.
pub(crate) fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// A time scale from 0 to `end_ms` across the drawing width.
#[derive(Clone, Copy)]
pub(crate) struct TimeScale {
    pub(crate) end_ms: u64,
}

impl TimeScale {
    pub(crate) fn x(self, ms: u64) -> f64 {
        LEFT + (ms.min(self.end_ms) as f64 / self.end_ms.max(1) as f64) * (WIDTH - LEFT - RIGHT)
    }

    /// Tick marks and labels along y = `y`, about eight of them at round seconds.
    pub(crate) fn axis(self, out: &mut String, y: f64) {
        let end_s = self.end_ms as f64 / 1000.0;
        let raw = (end_s / 8.0).max(0.001);
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * magnitude);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{:.1}" y1="{y}" x2="{:.1}" y2="{y}"/>"#,
            self.x(0),
            self.x(self.end_ms)
        );
        let mut t = 0.0;
        while t <= end_s + 1e-9 {
            let x = self.x((t * 1000.0).round() as u64);
            let _ = write!(
                out,
                r#"<line class="tick" x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}"/><text class="tick" x="{x:.1}" y="{}">{}s</text>"#,
                y + 4.0,
                y + 15.0,
                trim(t)
            );
            t += step;
        }
    }

    /// The steps that last, as faint bands behind a picture from `top` to `bottom`.
    pub(crate) fn bands(self, out: &mut String, steps: &[StepMark], top: f64, bottom: f64) {
        for s in steps {
            if let Some(until) = s.until_ms {
                let (x0, x1) = (self.x(s.at_ms), self.x(until));
                let _ = write!(
                    out,
                    r#"<rect class="band {}" x="{x0:.1}" y="{top}" width="{:.1}" height="{}"><title>{}</title></rect>"#,
                    esc(s.action),
                    (x1 - x0).max(1.0),
                    bottom - top,
                    esc(&s.text)
                );
            }
        }
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A number short enough for an axis label.
pub(crate) fn short(x: f64) -> String {
    if x.abs() >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x.abs() >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else {
        trim((x * 100.0).round() / 100.0)
    }
}

/// One chart of `curves` over time (all on one y scale from 0), with the lasting steps
/// behind them.
pub(crate) fn line_chart(
    out: &mut String,
    title: &str,
    t_ms: &[u64],
    curves: &[&Curve],
    scale: TimeScale,
    steps: &[StepMark],
) {
    const H: f64 = 150.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 120.0;
    let max = curves
        .iter()
        .flat_map(|c| c.values.iter().copied())
        .fold(0.0, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let y = |v: f64| BOTTOM - (v / max) * (BOTTOM - TOP);
    let names: Vec<&str> = curves.iter().map(|c| c.name).collect();
    let _ = write!(
        out,
        r#"<figure class="chart" data-chart="{}"><figcaption>{}</figcaption><svg viewBox="0 0 {WIDTH} {H}" data-series="{}">"#,
        esc(title),
        esc(title),
        esc(&names.join("|"))
    );
    scale.bands(out, steps, TOP, BOTTOM);
    let _ = write!(
        out,
        r#"<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{:.1}" y2="{TOP}"/><text class="ylabel" x="{:.1}" y="{:.1}">{}</text><text class="ylabel" x="{:.1}" y="{BOTTOM}">0</text>"#,
        WIDTH - RIGHT,
        LEFT - 6.0,
        TOP + 4.0,
        short(max),
        LEFT - 6.0,
    );
    scale.axis(out, BOTTOM);
    for (k, c) in curves.iter().enumerate() {
        let _ = write!(
            out,
            r#"<polyline class="curve c{k}" data-series="{}" points=""#,
            esc(c.name)
        );
        let v = &c.values;
        for (j, (&t, &value)) in t_ms.iter().zip(v).enumerate() {
            // Inside a flat run only its ends are needed.
            let flat = j > 0 && j + 1 < v.len() && v[j - 1] == value && v[j + 1] == value;
            if !flat {
                let _ = write!(out, "{:.1},{:.1} ", scale.x(t), y(value));
            }
        }
        out.push_str(r#""/>"#);
    }
    out.push_str("</svg><div class=\"legend\">");
    for (k, c) in curves.iter().enumerate() {
        let last = c.values.last().copied().unwrap_or(0.0);
        let peak = c.values.iter().copied().fold(0.0, f64::max);
        let _ = write!(
            out,
            r#"<span class="key c{k}">{}</span> <small>(last {}, peak {})</small> "#,
            esc(c.name),
            short(last),
            short(peak)
        );
    }
    out.push_str("</div></figure>\n");
}

/// A histogram of `values` (one per seed), with the median and the worst marked.
pub(crate) fn histogram(out: &mut String, values: &[f64], median: f64, worst: f64) {
    const W: f64 = 420.0;
    const H: f64 = 110.0;
    const BINS: usize = 20;
    const BASE: f64 = 90.0;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let bin = |v: f64| {
        (((v - lo) / span) * BINS as f64)
            .floor()
            .min(BINS as f64 - 1.0) as usize
    };
    let mut counts = [0usize; BINS];
    values.iter().for_each(|&v| counts[bin(v)] += 1);
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let x = |v: f64| 10.0 + (v - lo) / span * (W - 20.0);
    let _ = write!(
        out,
        r#"<svg class="hist" viewBox="0 0 {W} {H}" data-values="{}">"#,
        values.len()
    );
    let bw = (W - 20.0) / BINS as f64;
    for (k, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let h = c as f64 / top * (BASE - 10.0);
        let _ = write!(
            out,
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{c} seeds</title></rect>"#,
            10.0 + k as f64 * bw + 0.5,
            BASE - h,
            bw - 1.0
        );
    }
    for (class, v) in [("median", median), ("worst", worst)] {
        let _ = write!(
            out,
            r#"<line class="{class}" data-value="{v}" x1="{:.1}" y1="4" x2="{:.1}" y2="{BASE}"/>"#,
            x(v),
            x(v)
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="10" y1="{BASE}" x2="{:.1}" y2="{BASE}"/><text class="tick" x="10" y="{:.1}" text-anchor="start">{}</text><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text></svg>"#,
        W - 10.0,
        BASE + 14.0,
        short(lo),
        W - 10.0,
        BASE + 14.0,
        short(hi)
    );
}
