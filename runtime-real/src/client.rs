//! The CLI side of the admin API: `hawser members`, `hawser overlay`.
//!
//! A GET over one plain HTTP/1.1 connection with std's blocking socket: the commands
//! make one request each, and an HTTP client library would be most of the binary's
//! start-up time for that.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// How long a client command waits for the agent.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `GET path` on the admin API at `admin` (host:port): the status and the body.
pub fn get(admin: &str, path: &str) -> Result<(u16, String), String> {
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
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| unreachable(&e))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| unreachable(&e))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading the answer from {admin}: {e}"))?;
    parse_response(&raw).ok_or_else(|| format!("{admin} did not answer with HTTP"))
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
    let (status, body) = get(admin, path)?;
    let value: Value = serde_json::from_str(&body)
        .map_err(|e| format!("{admin}{path} answered {status} with invalid JSON: {e}"))?;
    if status != 200 {
        let msg = value["error"].as_str().unwrap_or("no error message");
        return Err(format!("{admin}{path}: {status}: {msg}"));
    }
    Ok(value)
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
            rows.push(vec![view.to_owned(), cell(&p["id"]), cell(&p["addr"])]);
        }
    }
    format!(
        "overlay of {} ({}): {} active, {} passive\n{}",
        cell(&doc["self"]),
        cell(&doc["id"]),
        doc["active"].as_array().map_or(0, Vec::len),
        doc["passive"].as_array().map_or(0, Vec::len),
        table(&["VIEW", "ID", "ADDR"], &rows)
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
}
