//! The agent page (`/ui`) in a real browser: three agents on loopback, headless Chromium
//! driven over the DevTools protocol. The page must draw the graph the agents actually
//! form, and show a KV write made elsewhere in the cluster without a reload. A
//! screenshot and the rendered DOM are kept in the test's output directory
//! (`target/tmp/agent_ui/`); with `HAWSER_DOCS_SCREENSHOTS=1` the screenshot also
//! replaces `docs/agent-ui.png`. Every wait is bounded.

mod cdp;
mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use cdp::Browser;
use common::{Agent, get, incr, one_overlay, post, raw_http, wait_for};
use serde_json::Value;

/// Where this test's artifacts go (kept after the run).
fn output_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("agent_ui");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Three agents, n1 and n2 joining n0, with one overlay in which every agent reaches the
/// others.
fn three_agents(root: &std::path::Path) -> [Agent; 3] {
    let mut a = Agent::new(root, "n0");
    a.start();
    let mut b = Agent::new(root, "n1");
    let mut c = Agent::new(root, "n2");
    for x in [&mut b, &mut c] {
        x.join = vec![a.listen.clone()];
        x.start();
    }
    wait_for("one overlay of three, every member reachable", 60, || {
        let all = [&a, &b, &c];
        (one_overlay(&all) && all.iter().all(|x| x.json("/v1/self")["reachable"] == 3))
            .then_some(())
    });
    [a, b, c]
}

/// The links the agents' active views make, as unordered id pairs.
fn overlay_links(agents: &[Agent]) -> BTreeSet<(String, String)> {
    let mut links = BTreeSet::new();
    for x in agents {
        let me = x.id();
        for peer in x.active() {
            links.insert((me.clone().min(peer.clone()), me.clone().max(peer)));
        }
    }
    links
}

fn edge_set(edges: &Value) -> BTreeSet<(String, String)> {
    edges
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().into(), e[1].as_str().unwrap().into()))
        .collect()
}

#[test]
fn the_agent_page_draws_the_cluster_and_shows_kv_writes_live() {
    let started = Instant::now();
    let out = output_dir();
    // The browser first: without one the test fails at once, saying what to install.
    let mut browser = Browser::launch(&out.join("chromium.log"));
    let dir = tempfile::tempdir().unwrap();
    let agents = three_agents(dir.path());
    let [a, b, _c] = &agents;

    // The graph n0 holds must settle on the links the active views make, each listed by
    // both ends; that is what the page must draw.
    let links = wait_for("n0's graph to match the active views", 30, || {
        let links = overlay_links(&agents);
        let graph = a.json("/v1/graph");
        let edges: BTreeSet<(String, String)> = graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["mutual"] == true)
            .map(|e| {
                (
                    e["a"].as_str().unwrap().into(),
                    e["b"].as_str().unwrap().into(),
                )
            })
            .collect();
        (edges == links && graph["edges"].as_array().unwrap().len() == links.len()).then_some(links)
    });
    let ids: BTreeSet<String> = agents.iter().map(Agent::id).collect();

    // `/` redirects to the page.
    browser.navigate(&format!("http://{}/", a.admin));
    let path = browser.wait_for(
        "the page",
        20,
        "location.pathname === '/ui' && location.pathname",
    );
    assert_eq!(path, "/ui");
    let drawn = browser.wait_for(
        "the graph of three nodes",
        20,
        r#"(() => {
            const g = document.getElementById('graph');
            if (g.dataset.nodes !== '3') return null;
            return {
                nodes: [...g.querySelectorAll('g.node')].map(n => n.dataset.id),
                edges: [...g.querySelectorAll('line.edge')].map(e => [e.dataset.a, e.dataset.b]),
                data_nodes: Number(g.dataset.nodes),
                data_edges: Number(g.dataset.edges),
                self_nodes: g.querySelectorAll('g.node.self').length,
                members: document.querySelectorAll('#members tbody tr').length,
                tree: document.querySelectorAll('#tree li').length,
            };
        })()"#,
    );
    let nodes: BTreeSet<String> = drawn["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().into())
        .collect();
    assert_eq!(nodes, ids, "the drawn nodes are the agents: {drawn}");
    assert_eq!(
        edge_set(&drawn["edges"]),
        links,
        "the drawn edges are the overlay's links: {drawn}"
    );
    assert_eq!(drawn["data_nodes"], 3);
    assert_eq!(drawn["data_edges"], links.len());
    assert_eq!(drawn["self_nodes"], 1);
    assert_eq!(drawn["members"], 3);
    assert_eq!(
        drawn["tree"], 3,
        "the route tree reaches every agent: {drawn}"
    );
    // The figures come from /metrics: the members gauge reads 3 (the agent updates its
    // gauges on its own schedule, so this may take a refresh or two).
    browser.wait_for(
        "the members figure from /metrics reading 3",
        10,
        r#"document.querySelector('[data-metric="hawser_members"] b')?.textContent === '3'"#,
    );

    // A write made through n1's API shows on n0's page, over the KV watch, without a reload.
    browser.wait_for(
        "the KV watch to be live",
        20,
        "document.getElementById('kv-state').textContent.startsWith('live')",
    );
    browser.eval("window.hawserTestMark = 'same page'");
    let value = r#"(() => {
        const cell = document.querySelector('#kv tr[data-key="ui/visits"] td[data-value]');
        return cell && cell.textContent.includes('"number:counter":WANT') && cell.textContent;
    })()"#;
    for (add, total) in [(7, 7), (5, 12)] {
        let (status, body) = post(&b.admin, "/v1/kv/ui/visits", &incr(add)).unwrap();
        assert_eq!(status, 200, "{body}");
        let shown = browser.wait_for(
            &format!("ui/visits = {total}"),
            20,
            &value.replace("WANT", &total.to_string()),
        );
        assert_eq!(shown, format!(r#"{{"number:counter":{total}}}"#));
    }
    let same =
        browser.eval("[window.hawserTestMark, performance.getEntriesByType('navigation').length]");
    assert_eq!(
        same,
        serde_json::json!(["same page", 1]),
        "the page was not reloaded"
    );

    // A few more refreshes, so the rates from /metrics have two samples to differ.
    let seen = browser
        .eval("Number(document.body.dataset.refreshes)")
        .as_u64()
        .unwrap();
    browser.wait_for(
        "two more refreshes",
        10,
        &format!("Number(document.body.dataset.refreshes) >= {}", seen + 2),
    );
    let dom = browser.eval("document.documentElement.outerHTML");
    std::fs::write(out.join("agent-ui.html"), dom.as_str().unwrap()).unwrap();
    let png = browser.screenshot(1280);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a real screenshot"
    );
    std::fs::write(out.join("agent-ui.png"), &png).unwrap();
    if std::env::var_os("HAWSER_DOCS_SCREENSHOTS").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/agent-ui.png");
        std::fs::write(&docs, &png).unwrap();
    }
    eprintln!(
        "agent page: {} edges drawn, KV live; screenshot {} ({} bytes); {:.1} s",
        links.len(),
        out.join("agent-ui.png").display(),
        png.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The page and the graph endpoint without a browser: what is served, with which
/// headers, and that the admin guard still stands in front of them.
#[test]
fn the_page_is_served_behind_the_admin_guard() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "a");
    a.start();
    let head = |path: &str, host: &str| {
        raw_http(
            &a.admin,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .unwrap()
    };
    let headers_of = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(&a.admin).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            a.admin
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw.split_once("\r\n\r\n").unwrap().0.to_ascii_lowercase()
    };
    for (path, ct) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let headers = headers_of(path);
        assert!(headers.starts_with("http/1.1 200"), "{path}: {headers}");
        assert!(
            headers.contains(&format!("content-type: {ct}")),
            "{path}: {headers}"
        );
        assert!(
            headers.contains("cache-control: no-cache"),
            "{path}: {headers}"
        );
        assert!(headers.contains("etag: \""), "{path}: {headers}");
        assert!(
            headers.contains("content-security-policy: default-src 'none'"),
            "{path}"
        );
    }
    let root = headers_of("/");
    assert!(
        root.starts_with("http/1.1 303") && root.contains("location: /ui"),
        "{root}"
    );
    // A rebound name cannot read the page, as it cannot read the API.
    let (status, body) = head("/ui", "evil.example.com:80");
    assert_eq!(status, 403, "{body}");
    // The graph endpoint: this node alone, reachable at distance 0.
    let (status, body) = get(&a.admin, "/v1/graph").unwrap();
    assert_eq!(status, 200, "{body}");
    let graph: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(graph["self"], a.id());
    assert_eq!(graph["nodes"][0]["distance"], 0);
    assert_eq!(graph["edges"], serde_json::json!([]));
}
