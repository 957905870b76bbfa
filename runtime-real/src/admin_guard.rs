//! What every admin request and connection goes through, whatever the endpoint: so an
//! endpoint added later is guarded like the others.
//!
//! - **Host.** A web page can make a browser send requests to `127.0.0.1:7601`, and with
//!   DNS rebinding read the answers too; but the browser then says `Host: evil.example`.
//!   A request whose `Host` is not an IP address, `localhost` or a configured name, at
//!   the admin port, is refused (403).
//! - **Cross-origin writes.** A write (any method but GET/HEAD) with an `Origin` other
//!   than the `Host`, or that the browser marks `Sec-Fetch-Site: cross-site`, is refused
//!   (403); and a POST — the one write a page can send without a CORS preflight, which
//!   we never grant — must declare a JSON (or, for multicast, octet-stream) body (415).
//! - **Token.** With `--admin-token-file`, every request must carry
//!   `Authorization: Bearer TOKEN` (401 otherwise). An admin address that is not loopback
//!   requires one (see `config`).
//! - **JSON errors.** Any error answer that is not JSON (the body limit's 413, an
//!   extractor's 400) is rewritten as `{"error": reason}`. What hyper answers before
//!   there is a request to route (431 for an oversize header section, 400 for bytes that
//!   are not HTTP) never reaches the router: [`GuardedStream`] rewrites those on their
//!   way out ([`hyper_error_as_json`]).
//! - **Connections** ([`GuardedListener`]): at most `max_connections` at once (more are
//!   closed on arrival, counted), each closed after `idle_timeout` without a byte either
//!   way (a watch stream's keep-alives count).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tracing::warn;

use crate::lograte::{LineKind, LogLimiter};
use crate::metrics::Metrics;

/// Who may talk to the admin API, and how.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The admin port: a `Host` must name it.
    pub port: u16,
    /// Names besides IP addresses and `localhost` that a `Host` may give.
    pub hosts: Vec<String>,
    /// The bearer token every request must carry, if set.
    pub token: Option<String>,
}

/// Wrap `router` in the request checks and the JSON error bodies.
pub fn guard(router: Router, policy: Policy) -> Router {
    router
        .layer(middleware::from_fn_with_state(Arc::new(policy), check))
        .layer(middleware::from_fn(json_errors))
}

fn refuse(status: StatusCode, why: String) -> Response {
    (status, axum::Json(json!({ "error": why }))).into_response()
}

async fn check(State(policy): State<Arc<Policy>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !policy.host_allowed(host) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "Host {:?} is not this agent's admin address: use an IP address or localhost \
                 at port {} (or a name given with --admin-host)",
                host, policy.port
            ),
        );
    }
    if let Some(token) = &policy.token
        && !bearer_matches(headers, token)
    {
        let mut r = refuse(
            StatusCode::UNAUTHORIZED,
            "this admin API needs `Authorization: Bearer TOKEN` (the agent's \
             --admin-token-file; the CLI takes --token-file)"
                .into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
        return r;
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(why) = cross_origin(headers, host) {
            return refuse(StatusCode::FORBIDDEN, why);
        }
        if *req.method() == Method::POST && !body_type_allowed(headers) {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a write must have Content-Type: application/json (or \
                 application/octet-stream for a multicast payload)"
                    .into(),
            );
        }
    }
    next.run(req).await
}

impl Policy {
    fn host_allowed(&self, host: &str) -> bool {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(':') || name.starts_with('[') => {
                (name, port.parse::<u16>().ok())
            }
            _ => (host, Some(80)),
        };
        if port != Some(self.port) {
            return false;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Whether the request carries the token; compared as SHA-256 digests, so the time it
/// takes says nothing about how much of a guess was right.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
}

/// Why a write is cross-origin, if it is: an `Origin` whose host is not the `Host`, or
/// a browser's own `Sec-Fetch-Site` saying so.
fn cross_origin(headers: &HeaderMap, host: &str) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    if let Some(origin) = get("origin") {
        let authority = origin.split_once("://").map_or("", |(_, a)| a);
        if !authority.eq_ignore_ascii_case(host) {
            return Some(format!(
                "cross-origin write refused (Origin {origin:?}, Host {host:?})"
            ));
        }
    }
    match get("sec-fetch-site") {
        Some(site @ ("cross-site" | "same-site")) => Some(format!(
            "cross-origin write refused (Sec-Fetch-Site: {site})"
        )),
        _ => None,
    }
}

fn body_type_allowed(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("application/octet-stream")
}

/// Error answers that are not JSON become `{"error": reason}`: the text they carried,
/// or the status's reason phrase.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let reason = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    let body = Body::from(json!({ "error": reason }).to_string());
    Response::from_parts(parts, body)
}

/// The admin listener: a cap on open connections, and an idle timeout on each.
pub struct GuardedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
    log: Arc<Mutex<LogLimiter>>,
    origin: Instant,
}

impl GuardedListener {
    pub fn new(
        listener: TcpListener,
        max_connections: usize,
        idle_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> GuardedListener {
        GuardedListener {
            listener,
            slots: Arc::new(Semaphore::new(max_connections)),
            idle_timeout,
            metrics,
            log: Arc::default(),
            origin: Instant::now(),
        }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GuardedStream, SocketAddr) {
        loop {
            let (stream, from) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, usually: wait rather than spin.
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                self.metrics.admin_connections_refused.inc();
                let admitted = self
                    .log
                    .lock()
                    .expect("never poisoned")
                    .admit(LineKind::ConnectionRefused, self.origin.elapsed());
                match admitted {
                    Some(suppressed) => warn!(
                        %from,
                        suppressed,
                        "too many admin connections; closing a new one at once"
                    ),
                    None => {
                        self.metrics.log_lines_suppressed.inc();
                    }
                }
                continue;
            };
            let stream = GuardedStream {
                io: stream,
                _slot: slot,
                idle_timeout: self.idle_timeout,
                deadline: Box::pin(tokio::time::sleep(self.idle_timeout)),
                rewritten: Vec::new(),
                sent: 0,
            };
            return (stream, from);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// One admin connection: holds its slot, fails once idle for `idle_timeout`, and sends
/// hyper's own error answers as JSON.
pub struct GuardedStream {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle_timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// A rewritten answer, and how much of it has gone out.
    rewritten: Vec<u8>,
    sent: usize,
}

/// hyper answers a request it cannot parse itself — 431 for a header section over its
/// buffer, 400 for bytes that are not HTTP — with an empty body, then closes. Given the
/// bytes hyper writes, the same answer with a JSON body (`{"error": reason}`) if they
/// are such an answer: a 4xx or 5xx head with `content-length: 0` and no content type,
/// which nothing behind the router sends (every error there gets a JSON body).
pub fn hyper_error_as_json(out: &[u8]) -> Option<Vec<u8>> {
    let head = out.strip_suffix(b"\r\n\r\n")?;
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix("HTTP/1.1 ")?;
    let (code, phrase) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok()?;
    if !(400..600).contains(&code) {
        return None;
    }
    let headers: Vec<&str> = lines.collect();
    let named = |h: &str, name: &str| {
        h.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    };
    let empty = headers.iter().any(|h| {
        named(h, "content-length") && h.split_once(':').is_some_and(|(_, v)| v.trim() == "0")
    });
    if !empty || headers.iter().any(|h| named(h, "content-type")) {
        return None;
    }
    let reason = match code {
        431 => "the request's header section is larger than the admin API accepts".to_owned(),
        400 => "not a valid HTTP/1.1 request".to_owned(),
        _ => phrase.to_owned(),
    };
    let body = json!({ "error": reason }).to_string();
    let mut answer = format!("{status_line}\r\n");
    for h in headers.iter().filter(|h| !named(h, "content-length")) {
        answer.push_str(h);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    Some(answer.into_bytes())
}

impl GuardedStream {
    /// Write out what is left of a rewritten answer.
    fn send_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.rewritten.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.rewritten[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Bytes moved: push the deadline back. Nothing moved: fail if it has passed.
    fn idle<T>(&mut self, cx: &mut Context<'_>, done: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match done {
            Poll::Ready(r) => {
                let next = Instant::now() + self.idle_timeout;
                self.deadline.as_mut().reset(next);
                Poll::Ready(r)
            }
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "admin connection idle for too long",
                )))
            }
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let done = Pin::new(&mut self.io).poll_read(cx, buf);
        self.idle(cx, done)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let done = self.send_rewritten(cx);
        ready!(self.idle(cx, done))?;
        // hyper writes a whole answer head at once (the stream is not vectored, so it
        // flattens its buffers): an error answer of its own is recognised in one piece.
        if let Some(answer) = hyper_error_as_json(buf) {
            (self.rewritten, self.sent) = (answer, 0);
            let done = self.send_rewritten(cx);
            if let Poll::Ready(Err(e)) = self.idle(cx, done) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        let done = Pin::new(&mut self.io).poll_write(cx, buf);
        self.idle(cx, done)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let done = self.send_rewritten(cx);
        ready!(self.idle(cx, done))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let done = self.send_rewritten(cx);
        ready!(self.idle(cx, done))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_own_empty_error_answers_become_json() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                      content-length: 0\r\ndate: Fri, 04 Dec 2026 09:23:51 GMT\r\n\r\n";
        let answer = String::from_utf8(hyper_error_as_json(hyper).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("connection: close") && head.contains("date: Fri"));
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        let doc: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(doc["error"].as_str().unwrap().contains("header section"));

        for not_hypers in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"data: {\"key\":\"HTTP/1.1 400 \"}\r\n\r\n",
            b"",
        ] {
            assert_eq!(hyper_error_as_json(not_hypers), None, "{not_hypers:?}");
        }
    }

    #[test]
    fn hosts_are_ip_addresses_localhost_or_configured_names_at_the_port() {
        let p = Policy {
            port: 7601,
            hosts: vec!["hawser.internal".into()],
            token: None,
        };
        for ok in [
            "127.0.0.1:7601",
            "10.1.2.3:7601",
            "[::1]:7601",
            "localhost:7601",
            "hawser.internal:7601",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:7601",
            "127.0.0.1:80",
            "127.0.0.1",
            "",
            "localhost.evil.example:7601",
        ] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
    }
}
