//! `hawser sim run --report` and `hawser sim sweep --report` opened in a real browser:
//! headless Chromium renders each page, and the test reads the rendered DOM back (the
//! graph's nodes and links, the partition as two components, the sweep's links to the
//! failing seeds' reports). Screenshots are kept in the test's output directory; with
//! `HAWSER_DOCS_SCREENSHOTS=1` the run report's is copied to docs/report-run.png.

use std::path::{Path, PathBuf};
use std::process::Command;

mod cdp;
mod common; // cdp reads the DevTools endpoint with its HTTP client

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hawser(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hawser"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the binary runs")
}

fn browse(page: &Path, extra: &[&str]) -> std::process::Output {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let out = Command::new(cdp::chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--virtual-time-budget=2000",
        ])
        .args(extra)
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The DOM as the browser rendered it.
fn dom(page: &Path) -> String {
    String::from_utf8(browse(page, &["--dump-dom"]).stdout).expect("utf-8 DOM")
}

fn screenshot(page: &Path, png: &Path, size: &str) {
    let shot = format!("--screenshot={}", png.display());
    let window = format!("--window-size={size}");
    browse(page, &[shot.as_str(), window.as_str()]);
    let bytes = std::fs::read(png).expect("chromium wrote the screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "a real picture"
    );
}

/// The value of attribute `name` in the first tag of `html`.
fn attr<'a>(html: &'a str, name: &str) -> &'a str {
    let tag = &html[..html.find('>').unwrap()];
    let v = tag
        .split(&format!(" {name}=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in {tag}"));
    &v[..v.find('"').unwrap()]
}

/// The rendered SVG of one graph snapshot.
fn graph<'a>(dom: &'a str, label: &str) -> &'a str {
    let wanted = format!("data-snapshot=\"{label}\"");
    let start = dom
        .match_indices("<svg ")
        .map(|(i, _)| i)
        .find(|&i| dom[i..].split('>').next().unwrap().contains(&wanted))
        .unwrap_or_else(|| panic!("no {label} graph in the rendered page"));
    let rest = &dom[start..];
    &rest[..rest.find("</svg>").unwrap()]
}

#[test]
fn run_report_shows_the_partition_in_the_browser() {
    let dir = out_dir("report-run");
    let page = dir.join("lashup-partition.html");
    let out = hawser(&[
        "sim",
        "run",
        "scenarios/lashup-partition.toml",
        "--report",
        page.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing fetched"
    );

    let dom = dom(&page);
    assert!(dom.contains("scenario lashup-partition"));
    assert!(dom.contains("hawser sim run scenarios/lashup-partition.toml --seed 1"));
    for label in ["before", "during", "end"] {
        let svg = graph(&dom, label);
        let nodes = svg.matches("<circle class=\"node ").count();
        let edges = svg.matches("<line class=\"edge").count();
        assert_eq!(nodes, 10, "{label}: every node drawn");
        assert_eq!(attr(svg, "data-nodes"), "10");
        assert_eq!(
            attr(svg, "data-edges"),
            edges.to_string(),
            "{label}: every link drawn"
        );
        assert!(
            edges >= 9,
            "{label}: a connected overlay of 10 has at least 9 links"
        );
    }
    // Before the 6/4 split and at the end: one overlay; just before the heal: the two
    // sides, each its own component, no link across.
    assert_eq!(attr(graph(&dom, "before"), "data-components"), "1");
    assert_eq!(attr(graph(&dom, "end"), "data-components"), "1");
    let during = graph(&dom, "during");
    assert_eq!(attr(during, "data-components"), "2");
    let mut sides = [None, None];
    for (i, tag) in during.split("<circle class=\"node ").skip(1).enumerate() {
        let node: usize = attr(tag, "data-node").parse().unwrap();
        assert_eq!(node, i);
        let side = usize::from(node >= 6);
        let c = attr(tag, "data-component").to_string();
        assert_eq!(
            *sides[side].get_or_insert(c.clone()),
            c,
            "n{node} in its side's component"
        );
    }
    assert_ne!(sides[0], sides[1], "the two sides are two components");
    for line in during.split("<line class=\"edge").skip(1) {
        let (a, b): (usize, usize) = (
            attr(line, "data-a").parse().unwrap(),
            attr(line, "data-b").parse().unwrap(),
        );
        assert_eq!(
            a >= 6,
            b >= 6,
            "no overlay link across the partition: n{a}-n{b}"
        );
    }
    // The timeline shows the partition as a band and every expectation as passed.
    assert!(dom.contains("<rect class=\"band partition\""));
    assert_eq!(dom.matches("<g class=\"expect\"").count(), 5);
    assert_eq!(dom.matches("data-outcome=\"passed\"").count(), 5);

    let png = dir.join("report-run.png");
    screenshot(&page, &png, "1000,2600");
    if std::env::var_os("HAWSER_DOCS_SCREENSHOTS").is_some() {
        std::fs::copy(&png, repo().join("docs/report-run.png")).unwrap();
    }
}

#[test]
fn sweep_report_links_each_failing_seed() {
    let dir = out_dir("report-sweep");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/too-soon.toml");
    let page = dir.join("sweep.html");
    let out = hawser(&[
        "sim",
        "sweep",
        scenario.to_str().unwrap(),
        "--seeds",
        "1..3",
        "--report",
        page.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = dom(&page);
    assert!(dom.contains("0 of 3 seeds passed"));
    let links: Vec<&str> = dom
        .split("<a class=\"run-report\" href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert_eq!(
        links,
        [
            "sweep.d/too-soon.1.html",
            "sweep.d/too-soon.2.html",
            "sweep.d/too-soon.3.html"
        ]
    );
    for seed in 1..=3 {
        assert!(dom.contains(&format!(
            "hawser sim run {} --seed {seed}",
            scenario.display()
        )));
    }
    // Every metric's spread is drawn, with the median and the worst marked.
    let dists = dom.matches("<figure class=\"dist\"").count();
    assert!(dists >= 5, "{dists} metric histograms");
    assert_eq!(dom.matches("<line class=\"median\"").count(), dists);
    assert_eq!(dom.matches("<line class=\"worst\"").count(), dists);
    // A linked run report opens, and shows the run that failed.
    let linked = dir.join(links[1]);
    assert!(linked.exists(), "{} was written", linked.display());
    let linked = crate::dom(&linked);
    assert!(linked.contains("FAILED — seed 2"));
    screenshot(&page, &dir.join("report-sweep.png"), "1000,1400");
    if std::env::var_os("HAWSER_DOCS_SCREENSHOTS").is_some() {
        std::fs::copy(
            dir.join("report-sweep.png"),
            repo().join("docs/report-sweep.png"),
        )
        .unwrap();
    }
}
