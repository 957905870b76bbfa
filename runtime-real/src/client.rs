//! The CLI side of the admin API: `hawser members`, `hawser overlay`, `hawser route`,
//! `hawser kv ...`.
//!
//! One request over one plain HTTP/1.1 connection with std's blocking socket: the
//! commands make one request each, and an HTTP client library would be most of the
//! binary's start-up time for that. `hawser kv watch` reads the server-sent events of
//! its one request as they arrive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// How long a client command waits for the agent.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long `hawser kv op` waits: the agent answers once the op is durable, and gives up
/// itself after 30 s.
const OP_TIMEOUT: Duration = Duration::from_secs(35);
/// A watch stream sends a keep-alive every 15 s; silence for this long means the agent
/// is gone.
const WATCH_SILENCE: Duration = Duration::from_secs(60);

/// Open a connection to the admin API and send one request.
fn send(
    admin: &str,
    method: &str,
    path: &str,
    body: &[u8],
    accept: &str,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let unreachable = |e: &dyn std::fmt::Display| {
        format!(
            "cannot reach the agent's admin API at {admin}: {e} (is the agent running? see --admin)"
        )
    };
    let addr = admin
        .to_socket_addrs()
        .map_err(|e| unreachable(&e))?
        .next()
        .ok_or_else(|| unreachable(&"no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| unreachable(&e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| unreachable(&e))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nAccept: {accept}\r\nConnection: close\r\n"
    );
    if method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).map_err(|e| unreachable(&e))?;
    Ok(stream)
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
    let mut stream = send(admin, method, path, body, "application/json", timeout)?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading the answer from {admin}: {e}"))?;
    parse_response(&raw).ok_or_else(|| format!("{admin} did not answer with HTTP"))
}

/// `GET path` on the admin API at `admin` (host:port): the status and the body.
pub fn get(admin: &str, path: &str) -> Result<(u16, String), String> {
    request(admin, "GET", path, b"", TIMEOUT)
}

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
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Status and body of a complete HTTP/1.1 response (plain or chunked body).
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Some((status, String::from_utf8_lossy(body).into_owned()));
    }
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..end]).ok()?.trim(), 16).ok()?;
        body = &body[end + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
    Some((status, String::from_utf8_lossy(&out).into_owned()))
}

/// GET a JSON document, turning an error status into an error message.
pub fn get_json(admin: &str, path: &str) -> Result<Value, String> {
    json_answer(admin, "GET", path, get(admin, path)?)
}

/// POST `body` and read the JSON answer (`hawser kv op`: it comes once the op is
/// durable).
pub fn post_json(admin: &str, path: &str, body: &str) -> Result<Value, String> {
    let answer = request(admin, "POST", path, body.as_bytes(), OP_TIMEOUT)?;
    json_answer(admin, "POST", path, answer)
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
    let value: Value = serde_json::from_str(&body)
        .map_err(|e| format!("{method} {admin}{path} answered {status} with invalid JSON: {e}"))?;
    if status != 200 {
        let msg = value["error"].as_str().unwrap_or("no error message");
        return Err(format!("{method} {admin}{path}: {status}: {msg}"));
    }
    Ok(value)
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
    let stream = send(admin, "GET", path, b"", "text/event-stream", WATCH_SILENCE)?;
    let mut reader = BufReader::new(stream);
    let broken = |e: &dyn std::fmt::Display| format!("watch stream from {admin} broke: {e}");
    let mut head = String::new();
    let mut chunked = false;
    let mut status = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(|e| broken(&e))? == 0 {
            return Err(format!("{admin} closed the connection before answering"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if head.is_empty() {
            status = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
        }
        let lower = line.to_ascii_lowercase();
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        head.push_str(line);
    }
    if status != 200 {
        let mut body = Vec::new();
        let _ = reader.read_to_end(&mut body);
        let text = parse_response(&[head.as_bytes(), b"\r\n\r\n", &body].concat())
            .map(|(_, b)| b)
            .unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        return Err(format!("GET {admin}{path}: {status}: {msg}"));
    }
    let mut parser = SseParser::default();
    let mut messages = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let data: Vec<u8> = if chunked {
            let mut size = String::new();
            if reader.read_line(&mut size).map_err(|e| broken(&e))? == 0 {
                return Ok(());
            }
            let size =
                usize::from_str_radix(size.trim(), 16).map_err(|_| broken(&"bad chunk header"))?;
            if size == 0 {
                return Ok(());
            }
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).map_err(|e| broken(&e))?;
            chunk.truncate(size);
            chunk
        } else {
            let n = reader.read(&mut buf).map_err(|e| broken(&e))?;
            if n == 0 {
                return Ok(());
            }
            buf[..n].to_vec()
        };
        parser.feed(&data, &mut messages);
        for m in messages.drain(..) {
            if !on_event(m) {
                return Ok(());
            }
        }
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
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
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} keys under prefix {:?}:\n{}",
        rows.len(),
        doc["prefix"].as_str().unwrap_or(""),
        table(&["KEY", "VALUE"], &rows)
    )
}

/// `hawser members`: every member the agent knows, as a table.
pub fn members_table(doc: &Value) -> String {
    let rows: Vec<Vec<String>> = doc["members"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            ["name", "id", "addr", "reachable", "distance"]
                .iter()
                .map(|k| cell(&m[*k]))
                .collect()
        })
        .collect();
    format!(
        "members known to {} ({}):\n{}",
        cell(&doc["self"]),
        cell(&doc["source"]),
        table(&["NAME", "ID", "ADDR", "REACHABLE", "DISTANCE"], &rows)
    )
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
        "route from {from} to {to}: {} hops\n{}",
        path.len().saturating_sub(1),
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
        "{} VIPs (load balancer: {}):\n{}",
        doc["vips"].as_array().map_or(0, Vec::len),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_plain_and_chunked_bodies() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Some((200, "{}".into())));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((404, "abcde".into())));
        assert_eq!(parse_response(b"garbage"), None);
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
            "self": "n1", "source": "views", "members": [
                {"name": "n1", "id": "00aa", "addr": "127.0.0.1:1",
                 "reachable": true, "distance": 0},
                {"name": null, "id": "00bb", "addr": "127.0.0.1:2",
                 "reachable": false, "distance": null},
            ]
        });
        let t = members_table(&doc);
        assert!(
            t.contains("NAME  ID    ADDR         REACHABLE  DISTANCE"),
            "{t}"
        );
        assert!(t.contains("-     00bb  127.0.0.1:2  false      -"), "{t}");
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
        assert!(t.starts_with("1 VIPs (load balancer: nftables):"), "{t}");
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
        assert!(t.contains("2    n3    03  127.0.0.1:1"), "{t}");
        let doc = json!({"from": p("n1", "01"), "to": p("n3", "03"), "reachable": false,
                         "hops": null, "path": null});
        assert_eq!(route_table(&doc), "n3 (03) is not reachable from n1 (01)\n");
    }
}
