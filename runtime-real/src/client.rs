//! The CLI side of the admin API: `hawser members`, `hawser overlay`, `hawser route`,
//! `hawser kv ...`.
//!
//! HTTP is ureq's (blocking, small, no TLS: the admin API is plain HTTP); percent-encoding
//! is the `percent-encoding` crate's. `hawser kv watch` reads the server-sent events of
//! its one request line by line as they arrive. Everything the agent sends that reaches
//! the terminal (keys, names, values) goes through [`printable`] first, so a key cannot
//! move the cursor or rewrite the screen.

use std::io::{BufRead, BufReader};
use std::sync::OnceLock;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// How long a client command waits for the agent.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long `hawser kv op` waits: the agent answers once the op is durable, and gives up
/// itself after 30 s.
const OP_TIMEOUT: Duration = Duration::from_secs(35);
/// A watch stream sends a keep-alive every 15 s; silence for this long means the agent
/// is gone.
const WATCH_SILENCE: Duration = Duration::from_secs(60);
/// The largest answer read (a `GET /v1/kv` page is at most about 1 MiB of values, but
/// one value may be larger).
const MAX_ANSWER: u64 = 256 << 20;

/// The admin API's bearer token, once set by the command line (`--token-file`).
static TOKEN: OnceLock<String> = OnceLock::new();

/// Send `Authorization: Bearer TOKEN` with every request from now on. The token is
/// otherwise taken from `HAWSER_ADMIN_TOKEN`, if set.
pub fn set_token(token: String) {
    let _ = TOKEN.set(token);
}

fn token() -> Option<String> {
    TOKEN
        .get()
        .cloned()
        .or_else(|| std::env::var("HAWSER_ADMIN_TOKEN").ok())
}

fn agent(timeout: Option<Duration>, per_read: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(TIMEOUT))
        .timeout_global(timeout)
        .timeout_per_read(per_read)
        .build()
        .into()
}

fn unreachable(admin: &str, e: impl std::fmt::Display) -> String {
    format!(
        "cannot reach the agent's admin API at {admin}: {e} (is the agent running? see --admin)"
    )
}

/// Send one request; the answer, whatever its status.
fn send(
    admin: &str,
    method: &str,
    path: &str,
    body: &[u8],
    accept: &str,
    agent: ureq::Agent,
) -> Result<ureq::http::Response<ureq::Body>, String> {
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{admin}{path}"))
        .header("Accept", accept);
    if let Some(token) = token() {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if method != "GET" {
        request = request.header("Content-Type", "application/json");
    }
    let request = request
        .body(body.to_vec())
        .map_err(|e| format!("bad request to {admin}{path}: {e}"))?;
    agent.run(request).map_err(|e| unreachable(admin, e))
}

/// `METHOD path` with `body` on the admin API at `admin` (host:port): the status and
/// the body of the answer.
pub fn request(
    admin: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String), String> {
    let mut answer = send(
        admin,
        method,
        path,
        body,
        "application/json",
        agent(Some(timeout), None),
    )?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .lossy_utf8(true)
        .read_to_string()
        .map_err(|e| format!("reading the answer from {admin}: {e}"))?;
    Ok((status, body))
}

/// `GET path` on the admin API at `admin` (host:port): the status and the body.
pub fn get(admin: &str, path: &str) -> Result<(u16, String), String> {
    request(admin, "GET", path, b"", TIMEOUT)
}

/// What a path segment keeps as it is: `A-Z a-z 0-9 - . _ ~`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A KV key as a path segment of `/v1/kv/`: every byte but the unreserved ones
/// percent-encoded, and `watch` spelled `%77atch` (plain `watch` is the watch endpoint).
pub fn kv_path(key: &str) -> String {
    if key == "watch" {
        return "/v1/kv/%77atch".into();
    }
    format!("/v1/kv/{}", encode(key))
}

/// Percent-encode everything outside `A-Z a-z 0-9 - . _ ~`.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// GET a JSON document, turning an error status into an error message.
pub fn get_json(admin: &str, path: &str) -> Result<Value, String> {
    json_answer(admin, "GET", path, get(admin, path)?)
}

/// Every key under `prefix` and its value: the pages of `GET /v1/kv`, followed to the
/// end and merged into one document (`prefix`, `count`, `keys`).
pub fn kv_list(admin: &str, prefix: &str) -> Result<Value, String> {
    let mut keys = serde_json::Map::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/kv?prefix={}", encode(prefix));
        if let Some(a) = &after {
            path.push_str(&format!("&after={}", encode(a)));
        }
        let mut page = get_json(admin, &path)?;
        if let Some(page_keys) = page["keys"].as_object_mut() {
            keys.append(page_keys);
        }
        match page["next"].as_str() {
            Some(next) if Some(next) != after.as_deref() => after = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(serde_json::json!({ "prefix": prefix, "count": keys.len(), "keys": keys }))
}

/// POST `body` and read the JSON answer (`hawser kv op`: it comes once the op is
/// durable).
pub fn post_json(admin: &str, path: &str, body: &str) -> Result<Value, String> {
    send_json(admin, "POST", path, body)
}

/// `method` (POST, DELETE) `body` on `path` and read the JSON answer, which comes once
/// the write is durable.
pub fn send_json(admin: &str, method: &str, path: &str, body: &str) -> Result<Value, String> {
    let answer = request(admin, method, path, body.as_bytes(), OP_TIMEOUT)?;
    json_answer(admin, method, path, answer)
}

fn json_answer(
    admin: &str,
    method: &str,
    path: &str,
    (status, body): (u16, String),
) -> Result<Value, String> {
    let value: Value = serde_json::from_str(&body).map_err(|e| {
        format!(
            "{method} {admin}{path} answered {status} with invalid JSON: {e}: {}",
            printable(&body.chars().take(200).collect::<String>())
        )
    })?;
    if status != 200 {
        let msg = value["error"].as_str().unwrap_or("no error message");
        return Err(format!(
            "{method} {admin}{path}: {status}: {}",
            printable(msg)
        ));
    }
    Ok(value)
}

/// `s` safe to print on a terminal: control characters (C0, DEL, C1 — the escape
/// sequences that move the cursor, change colours or set the window title) are written
/// as `\u{..}` escapes, and so are backslashes, so the escaping cannot be forged.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// One server-sent event: its `event` name and its `data` (parsed JSON).
#[derive(Debug, PartialEq)]
pub struct SseMessage {
    pub event: String,
    pub data: Value,
}

/// Cuts a server-sent event stream into messages (comments, used as keep-alives, are
/// skipped).
#[derive(Default)]
struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
}

impl SseParser {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseMessage>) {
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&self.line)
                .trim_end_matches('\r')
                .to_owned();
            self.line.clear();
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    let data = std::mem::take(&mut self.data);
                    out.push(SseMessage {
                        event: std::mem::take(&mut self.event),
                        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    });
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                self.event = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }
}

/// `GET path` as a server-sent event stream: `on_event` gets each message as it
/// arrives, until it returns `false` or the stream ends. Returns when the stream ends
/// (`Ok`) or fails.
pub fn watch(
    admin: &str,
    path: &str,
    mut on_event: impl FnMut(SseMessage) -> bool,
) -> Result<(), String> {
    let answer = send(
        admin,
        "GET",
        path,
        b"",
        "text/event-stream",
        agent(None, Some(WATCH_SILENCE)),
    )?;
    let status = answer.status().as_u16();
    let mut body = answer.into_body();
    if status != 200 {
        let text = body
            .with_config()
            .limit(1 << 20)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        return Err(format!("GET {admin}{path}: {status}: {}", printable(&msg)));
    }
    let mut reader = BufReader::new(body.into_reader());
    let mut parser = SseParser::default();
    let mut messages = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("watch stream from {admin} broke: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        parser.feed(&line, &mut messages);
        for m in messages.drain(..) {
            if !on_event(m) {
                return Ok(());
            }
        }
    }
}

/// A table cell: strings as they are (made printable), `-` for unknown, other JSON as
/// JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => printable(s),
        other => printable(&other.to_string()),
    }
}

/// Left-aligned columns, two spaces apart. Padding is written out, not formatted with a
/// width: `format!`'s widths stop at 65,535 and a longer value panicked.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let len = |c: &str| c.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| len(h)).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(len(c));
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            line.extend(std::iter::repeat_n(' ', w - len(c)));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `hawser kv list`: keys and values, as a table.
pub fn kv_table(doc: &Value) -> String {
    let rows: Vec<Vec<String>> = doc["keys"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| vec![printable(k), printable(&v.to_string())])
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} under prefix {:?}:\n{}",
        count(rows.len() as u64, "key", "keys"),
        printable(doc["prefix"].as_str().unwrap_or("")),
        table(&["KEY", "VALUE"], &rows)
    )
}

/// `hawser members`: every member the agent knows, as a table (sorted by the agent).
pub fn members_table(doc: &Value) -> String {
    let rows: Vec<Vec<String>> = doc["members"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let mut row: Vec<String> = ["name", "id", "addr", "status"]
                .iter()
                .map(|k| cell(&m[*k]))
                .collect();
            row.push(m["since_secs"].as_u64().map_or("-".into(), duration));
            row.push(cell(&m["distance"]));
            row
        })
        .collect();
    let reap = doc["reap_after_secs"].as_u64().map_or(String::new(), |s| {
        format!("; failed and left reaped after {}", duration(s))
    });
    format!(
        "members known to {} ({}{reap}):\n{}",
        cell(&doc["self"]),
        cell(&doc["source"]),
        table(
            &["NAME", "ID", "ADDR", "STATUS", "SINCE", "DISTANCE"],
            &rows
        )
    )
}

/// A whole number of seconds as operators read it: `42s`, `5m`, `3h`, `2d`.
pub fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3_600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// `hawser info`: the agent's `/v1/self`, a `key: value` line per field, nested
/// objects flattened to `key.field`.
pub fn info_text(doc: &Value) -> String {
    fn lines(prefix: &str, v: &Value, out: &mut String) {
        match v.as_object() {
            Some(o) => {
                for (k, v) in o {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    lines(&key, v, out);
                }
            }
            None => out.push_str(&format!("{}: {}\n", printable(prefix), cell(v))),
        }
    }
    let mut out = String::new();
    lines("", doc, &mut out);
    out
}

/// `hawser monitor`: one of the agent's log lines (`GET /v1/monitor`'s JSON) as text:
/// `LEVEL target: message field=value ...`.
pub fn log_line(line: &Value) -> String {
    let mut out = format!(
        "{:>5} {}: {}",
        cell(&line["level"]),
        cell(&line["target"]),
        cell(&line["message"])
    );
    if let Some(fields) = line["fields"].as_object() {
        for (k, v) in fields {
            out.push_str(&format!(" {}={}", printable(k), cell(v)));
        }
    }
    out
}

/// English counts: `1 key`, `2 keys`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `hawser overlay`: the active and passive views, as a table.
pub fn overlay_table(doc: &Value) -> String {
    let mut rows = Vec::new();
    for view in ["active", "passive"] {
        for p in doc[view].as_array().map(Vec::as_slice).unwrap_or_default() {
            rows.push(vec![
                view.to_owned(),
                cell(&p["name"]),
                cell(&p["id"]),
                cell(&p["addr"]),
            ]);
        }
    }
    format!(
        "overlay of {} ({}): {} active, {} passive\n{}",
        cell(&doc["self"]),
        cell(&doc["id"]),
        doc["active"].as_array().map_or(0, Vec::len),
        doc["passive"].as_array().map_or(0, Vec::len),
        table(&["VIEW", "NAME", "ID", "ADDR"], &rows)
    )
}

/// `hawser route`: the hops from the agent to a member, one line each.
pub fn route_table(doc: &Value) -> String {
    let label = |p: &Value| {
        let name = cell(&p["name"]);
        format!("{name} ({})", cell(&p["id"]))
    };
    let (from, to) = (label(&doc["from"]), label(&doc["to"]));
    let Some(path) = doc["path"].as_array() else {
        return format!("{to} is not reachable from {from}\n");
    };
    let rows: Vec<Vec<String>> = path
        .iter()
        .enumerate()
        .map(|(hop, p)| {
            vec![
                hop.to_string(),
                cell(&p["name"]),
                cell(&p["id"]),
                cell(&p["addr"]),
            ]
        })
        .collect();
    format!(
        "route from {from} to {to}: {}\n{}",
        count(path.len().saturating_sub(1) as u64, "hop", "hops"),
        table(&["HOP", "NAME", "ID", "ADDR"], &rows)
    )
}

/// `hawser vip list`: one row per backend of each VIP.
pub fn vips_table(doc: &Value) -> String {
    let mut rows = Vec::new();
    for v in doc["vips"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        for b in v["backends"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            rows.push(vec![
                cell(&v["vip"]),
                cell(&v["address"]),
                cell(&v["programmed"]),
                cell(&b["addr"]),
                cell(&b["weight"]),
                cell(&b["kernel_weight"]),
                if b["node"].is_null() {
                    cell(&b["node_id"])
                } else {
                    cell(&b["node"])
                },
                cell(&b["reachable"]),
            ]);
        }
    }
    format!(
        "{} (load balancer: {}):\n{}",
        count(
            doc["vips"].as_array().map_or(0, Vec::len) as u64,
            "VIP",
            "VIPs"
        ),
        cell(&doc["lb"]),
        table(
            &[
                "VIP",
                "ADDRESS",
                "PROGRAMMED",
                "BACKEND",
                "WEIGHT",
                "KERNEL",
                "NODE",
                "REACHABLE"
            ],
            &rows
        )
    )
}

/// `hawser network list`: a paragraph per network, its peers as a table.
pub fn networks_table(doc: &Value) -> String {
    let networks = doc["networks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if networks.is_empty() {
        return "this agent is part of no overlay network (start it with --overlay)\n".into();
    }
    let mut out = String::new();
    for n in networks {
        out.push_str(&format!(
            "{} {} vni {} port {} mtu {}\n",
            cell(&n["name"]),
            cell(&n["subnet"]),
            cell(&n["vni"]),
            cell(&n["port"]),
            cell(&n["mtu"])
        ));
        if n["node_subnet"].is_null() {
            out.push_str("  this node: no subnet yet (claiming one)\n");
        } else {
            let v = &n["vtep"];
            out.push_str(&format!(
                "  this node: {} gateway {}, vtep {} {} on {} (programmed: {})\n",
                cell(&n["node_subnet"]),
                cell(&n["gateway"]),
                cell(&v["ip"]),
                cell(&v["mac"]),
                cell(&v["device"]),
                cell(&v["programmed"])
            ));
        }
        let rows: Vec<Vec<String>> = n["peers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let node = if p["node"].as_str().is_some_and(|s| !s.is_empty()) {
                    cell(&p["node"])
                } else {
                    cell(&p["node_id"])
                };
                vec![
                    node,
                    cell(&p["underlay"]),
                    cell(&p["node_subnet"]),
                    cell(&p["vtep_ip"]),
                    cell(&p["vtep_mac"]),
                    cell(&p["programmed"]),
                ]
            })
            .collect();
        let w = &n["waiting"];
        out.push_str(&format!(
            "  {}; waiting: {} without a record, {} stale, {} MAC clashes\n",
            count(rows.len() as u64, "peer", "peers"),
            cell(&w["unrecorded"]),
            cell(&w["stale"]),
            cell(&w["mac_clash"])
        ));
        if !rows.is_empty() {
            let t = table(
                &["NODE", "UNDERLAY", "SUBNET", "VTEP", "MAC", "PROGRAMMED"],
                &rows,
            );
            for line in t.lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn networks_list_this_node_and_its_peers() {
        let doc = json!({"networks": [{
            "name": "dcos", "subnet": "9.0.0.0/8", "vni": 1024, "port": 64000, "mtu": 1420,
            "node_subnet": "9.0.17.0/24", "gateway": "9.0.17.1",
            "vtep": {"ip": "100.64.0.18", "mac": "0a:00:00:00:00:01", "device": "vtep1024",
                     "programmed": true},
            "peers": [{"node": "n2", "node_id": "02", "underlay": "198.18.0.2",
                       "node_subnet": "9.0.3.0/24", "vtep_ip": "100.64.0.4",
                       "vtep_mac": "0a:00:00:00:00:02", "programmed": false}],
            "waiting": {"unrecorded": 1, "stale": 0, "mac_clash": 0, "family": 0}}]});
        let t = networks_table(&doc);
        assert!(
            t.starts_with("dcos 9.0.0.0/8 vni 1024 port 64000 mtu 1420\n"),
            "{t}"
        );
        assert!(
            t.contains("this node: 9.0.17.0/24 gateway 9.0.17.1, vtep 100.64.0.18"),
            "{t}"
        );
        assert!(t.contains("1 peer; waiting: 1 without a record"), "{t}");
        assert!(
            t.contains("n2    198.18.0.2  9.0.3.0/24  100.64.0.4  0a:00:00:00:00:02  false"),
            "{t}"
        );
        let none = networks_table(&json!({"networks": []}));
        assert!(none.contains("no overlay network"), "{none}");
    }

    #[test]
    fn a_value_longer_than_a_format_width_is_tabled() {
        let long = "x".repeat(70_000);
        let doc = json!({"prefix": "", "keys": {"k": long, "kk": 1}});
        let t = kv_table(&doc);
        assert!(
            t.lines().any(|l| l.len() > 70_000),
            "the value is printed whole"
        );
        assert!(t.contains("kk   1"), "{}", &t[..100]);
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(
            printable("a\x1b[2Jb\nc\u{9b}d"),
            "a\\u{1b}[2Jb\\u{a}c\\u{9b}d"
        );
        assert_eq!(printable("back\\slash"), "back\\\\slash");
        let doc = json!({"prefix": "", "keys": {"evil\x1b]0;pwned\x07": "v\x1b"}});
        assert!(!kv_table(&doc).contains('\x1b'));
    }

    #[test]
    fn keys_are_percent_encoded_and_watch_is_escaped() {
        assert_eq!(kv_path("erlang_users"), "/v1/kv/erlang_users");
        assert_eq!(kv_path("a/b c+é"), "/v1/kv/a%2Fb%20c%2B%C3%A9");
        assert_eq!(kv_path("watch"), "/v1/kv/%77atch");
        assert_eq!(kv_path("watchers"), "/v1/kv/watchers");
    }

    #[test]
    fn sse_is_cut_into_messages_across_reads() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.feed(b": keep-alive\n\nevent: change\ndata: {\"key\":", &mut out);
        assert!(out.is_empty());
        p.feed(b"\"k\"}\r\n\r\nevent: end\ndata: x\n\n", &mut out);
        assert_eq!(
            out,
            vec![
                SseMessage {
                    event: "change".into(),
                    data: json!({"key": "k"})
                },
                SseMessage {
                    event: "end".into(),
                    data: json!("x")
                },
            ]
        );
    }

    #[test]
    fn tables_align_and_show_unknowns_as_dashes() {
        let doc = json!({
            "self": "n1", "source": "views", "reap_after_secs": 86400, "members": [
                {"name": "n1", "id": "00aa", "addr": "127.0.0.1:1", "status": "alive",
                 "since_secs": 3700, "reachable": true, "distance": 0},
                {"name": null, "id": "00bb", "addr": "127.0.0.1:2", "status": "failed",
                 "since_secs": 5, "reachable": false, "distance": null},
            ]
        });
        let t = members_table(&doc);
        assert!(
            t.starts_with("members known to n1 (views; failed and left reaped after 24h):\n"),
            "{t}"
        );
        assert!(
            t.contains("NAME  ID    ADDR         STATUS  SINCE  DISTANCE"),
            "{t}"
        );
        assert!(
            t.contains("n1    00aa  127.0.0.1:1  alive   61m    0"),
            "{t}"
        );
        assert!(
            t.contains("-     00bb  127.0.0.1:2  failed  5s     -"),
            "{t}"
        );
    }

    #[test]
    fn counts_agree_with_their_nouns_and_durations_read_easily() {
        assert_eq!(count(1, "key", "keys"), "1 key");
        assert_eq!(count(0, "key", "keys"), "0 keys");
        assert_eq!(duration(119), "119s");
        assert_eq!(duration(7_199), "119m");
        assert_eq!(duration(86_400), "24h");
        assert_eq!(duration(7 * 86_400), "7d");
        let info = info_text(&json!({"name": "n1", "isolated": null, "kv": {"keys": 1}}));
        assert_eq!(info, "isolated: -\nkv.keys: 1\nname: n1\n");
    }

    #[test]
    fn vips_list_one_row_per_backend() {
        let doc = json!({"lb": "nftables", "vips": [{
            "vip": "tcp://web:80", "address": "11.4.5.6:80", "programmed": true,
            "backends": [
                {"node": "n1", "node_id": "01", "addr": "198.18.1.2:8080", "weight": 1,
                 "reachable": true, "kernel_weight": 1},
                {"node": null, "node_id": "02", "addr": "198.18.2.2:8080", "weight": 0,
                 "reachable": false, "kernel_weight": null}]}]});
        let t = vips_table(&doc);
        assert!(t.starts_with("1 VIP (load balancer: nftables):"), "{t}");
        assert!(
            t.contains(
                "tcp://web:80  11.4.5.6:80  true        198.18.1.2:8080  1       1       n1    true"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "tcp://web:80  11.4.5.6:80  true        198.18.2.2:8080  0       -       02    false"
            ),
            "{t}"
        );
    }

    #[test]
    fn routes_list_their_hops_or_say_unreachable() {
        let p = |n: &str, id: &str| json!({"name": n, "id": id, "addr": "127.0.0.1:1"});
        let doc = json!({
            "from": p("n1", "01"), "to": p("n3", "03"), "reachable": true, "hops": 2,
            "path": [p("n1", "01"), p("n2", "02"), p("n3", "03")],
        });
        let t = route_table(&doc);
        assert!(
            t.starts_with("route from n1 (01) to n3 (03): 2 hops\n"),
            "{t}"
        );
        let one = json!({"from": p("n1", "01"), "to": p("n2", "02"), "reachable": true,
                         "hops": 1, "path": [p("n1", "01"), p("n2", "02")]});
        assert!(
            route_table(&one).starts_with("route from n1 (01) to n2 (02): 1 hop\n"),
            "{t}"
        );
        assert!(t.contains("2    n3    03  127.0.0.1:1"), "{t}");
        let doc = json!({"from": p("n1", "01"), "to": p("n3", "03"), "reachable": false,
                         "hops": null, "path": null});
        assert_eq!(route_table(&doc), "n3 (03) is not reachable from n1 (01)\n");
    }
}
