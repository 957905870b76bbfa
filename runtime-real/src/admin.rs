//! The admin HTTP API: JSON views of the running node, and Prometheus metrics.
//!
//! Every answer is read from the node inside the driver task ([`DriverHandle::inspect`]),
//! between two inputs, so it is a consistent picture and the node needs no locks. Every
//! request passes [`admin_guard`](crate::admin_guard) first (Host, Origin, content type,
//! bearer token; JSON errors), whatever its endpoint.
//!
//! `/v1/members` is global membership's table: every member whose entry this node holds
//! (its name, address, status and since when, reachability and hop distance over the
//! overlay graph); it, `/v1/leave` and force-leave live in `members_api`.
//! `/v1/routes/{node}` is the shortest path over that graph from this node to another,
//! named by its name or its 16-hex-digit id.
//!
//! The KV: `GET /v1/kv?prefix=P[&after=K]` lists keys and values a page at a time (at
//! most [`LIST_PAGE_BYTES`] of values; `next` names the key to continue after), `GET
//! /v1/kv/{key}` reads one
//! (`{}` for a key never written), `POST /v1/kv/{key}` applies an op (the JSON of
//! `MapOp::from_json_str`) and answers with the key's new value only once the op is
//! durable, `DELETE /v1/kv/{key}` removes every field of the key (observed removal: an
//! update made concurrently elsewhere survives; a deleted key is no longer listed), and
//! `GET /v1/kv/watch?prefix=P` streams server-sent events: the keys under
//! the prefix (`snapshot`), `ready`, then a `change` per changed key. Values are the
//! canonical JSON of `Map::to_json`. A key is everything after `/v1/kv/`, percent-decoded,
//! so it may contain `/`; the one key that cannot be spelled plainly is `watch`, which
//! clients write as `%77atch`. `POST /v1/multicast/{topic}` sends the body to every
//! reachable node (each logs its delivery). `/v1/dns/*` is the cluster zone's records
//! (see `dns::api`). `GET /v1/graph` is the global graph and this node's route tree
//! (see `graph_view`); `/ui` is the page that draws all of this (see `ui`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant as StdInstant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hawser_core::crdt::{Map, MapOp};
use hawser_core::gm::GlobalMembership;
use hawser_core::kv::KvError;
use hawser_core::multicast::MulticastError;
use hawser_core::{Addr, NodeId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::admin_guard::{self, Policy};
use crate::dns::api::{self as dns_api, DnsApi};
use crate::driver::{DriverHandle, KvOpError, View, WatchError};
use crate::metrics::Metrics;

/// How long `POST /v1/kv/{key}` waits for its op to become durable before answering 504.
const DURABLE_WAIT: Duration = Duration::from_secs(30);

/// Bytes of value JSON one `GET /v1/kv` page carries at most (a value larger than this
/// fills a page alone): concurrent listings of a large store cost pages, not the store.
pub const LIST_PAGE_BYTES: usize = 1 << 20;

/// What the handlers share.
#[derive(Clone)]
pub struct Admin {
    pub handle: DriverHandle,
    pub metrics: Arc<Metrics>,
    pub name: String,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub started: StdInstant,
    /// The DNS records API (and where DNS is served, if it is).
    pub dns: DnsApi,
    /// The load balancer (its backend is `off` when not asked for).
    pub lb: Arc<crate::lb::LbStatus>,
    /// The overlay networks (none unless configured).
    pub overlay: crate::overlay::api::OverlayApi,
    /// Who may use the API (applied to every route).
    pub policy: Policy,
}

/// The endpoints, listed in 404 answers.
const ENDPOINTS: &[&str] = &[
    "GET /v1/self",
    "GET /v1/members?status=S,...",
    "POST /v1/members/{node}/force-leave",
    "POST /v1/leave",
    "GET /v1/monitor?level=L",
    "GET /v1/overlay",
    "GET /v1/routes/{node}",
    "GET /v1/graph",
    "GET /v1/kv?prefix=P&after=K",
    "GET /v1/kv/{key}",
    "POST /v1/kv/{key}",
    "DELETE /v1/kv/{key}",
    "GET /v1/kv/watch?prefix=P",
    "POST /v1/multicast/{topic}",
    "GET /v1/dns/records",
    "POST /v1/dns/records",
    "POST /v1/dns/records/remove",
    "GET /v1/vips",
    "POST|DELETE /v1/vips {vip, backend, weight}",
    "GET /v1/networks",
    "GET /metrics",
    "GET /ui (the agent page; / redirects there)",
    "(keys are percent-decoded; write the key `watch` as %77atch)",
];

pub fn router(state: Admin) -> Router {
    let policy = state.policy.clone();
    let routes = Router::new()
        .route("/v1/self", get(self_info))
        .route("/v1/members", get(crate::members_api::members))
        .route(
            "/v1/members/{node}/force-leave",
            post(crate::members_api::force_leave),
        )
        .route("/v1/leave", post(crate::members_api::leave))
        .route("/v1/monitor", get(crate::monitor::monitor))
        .route("/v1/overlay", get(overlay))
        .route("/v1/routes/{node}", get(route))
        .route("/v1/graph", get(crate::graph_view::get))
        .route("/v1/kv", get(kv_list))
        .route("/v1/kv/watch", get(kv_watch))
        .route(
            "/v1/kv/{*key}",
            get(kv_get).post(kv_write).delete(kv_delete),
        )
        .route("/v1/multicast/{topic}", post(multicast))
        .route(
            "/v1/vips",
            get(crate::lb_api::list)
                .post(crate::lb_api::add)
                .delete(crate::lb_api::remove),
        )
        .route("/v1/networks", get(crate::overlay::api::list))
        .route("/metrics", get(metrics))
        .merge(dns_api::router(state.dns.clone()))
        .merge(crate::ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    admin_guard::guard(routes, policy)
}

/// A node id as clients see it: 16 hex digits.
pub fn id_hex(id: NodeId) -> String {
    format!("{:016x}", id.0)
}

#[derive(Serialize)]
struct Peer {
    id: String,
    /// From global membership, once this node holds the peer's entry.
    name: Option<String>,
    addr: Option<String>,
}

fn peer(view: &View<'_>, id: NodeId) -> Peer {
    let member = view.node.protocol().gm().member(id);
    Peer {
        id: id_hex(id),
        name: member.map(|m| m.name.to_string()),
        addr: view
            .peers
            .get(&id)
            .or(member.map(|m| &m.addr))
            .map(Addr::to_string),
    }
}

/// The member `node` names: a member's name, or a 16-hex-digit id.
pub(crate) fn resolve(gm: &GlobalMembership, node: &str) -> Option<NodeId> {
    if let Some((id, _)) = gm.members().find(|(_, m)| m.name.as_str() == node) {
        return Some(id);
    }
    let id = NodeId(
        u64::from_str_radix(node, 16)
            .ok()
            .filter(|_| node.len() == 16)?,
    );
    gm.member(id).map(|_| id)
}

pub(crate) fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// The driver has stopped (the agent is shutting down).
pub(crate) fn stopping() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the agent is shutting down".into(),
    )
}

async fn self_info(State(s): State<Admin>) -> Response {
    let started = s.started;
    let (name, listen, admin, dns) = (s.name.clone(), s.listen, s.admin, s.dns.serving);
    let answer = s
        .handle
        .inspect(move |v| {
            let m = v.node.protocol().membership();
            let gm = v.node.protocol().gm();
            let mut by_status = serde_json::Map::new();
            for st in hawser_core::gm::Status::ALL {
                let n = gm.members().filter(|(_, x)| x.status == st).count();
                by_status.insert(st.as_str().into(), n.into());
            }
            json!({
                "name": name,
                "id": id_hex(v.node.id()),
                "addr": v.node.links().addr().to_string(),
                "listen": listen.to_string(),
                "admin": admin.to_string(),
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_secs": started.elapsed().as_secs(),
                "active_view": m.active_view().len(),
                "passive_view": m.passive_view().len(),
                "members": v.node.protocol().gm().members().count(),
                "reachable": v.node.protocol().gm().reachable().len(),
                "links": v.node.links().peers().count(),
                "dns": dns.map(|a| a.to_string()),
                "status": gm.member(v.node.id()).map(|x| x.status.as_str()),
                "incarnation": gm.version().incarnation,
                "members_by_status": by_status,
                "reap_after_secs": gm.config().forget_after_ms / 1000,
                "kv_keys": v.node.protocol().kv().scan("").filter(|(_, m)| !m.is_bottom()).count(),
                "isolated": v.isolated,
            })
        })
        .await;
    match answer {
        Some(body) => axum::Json(body).into_response(),
        None => stopping(),
    }
}

async fn overlay(State(s): State<Admin>) -> Response {
    let name = s.name.clone();
    let answer = s
        .handle
        .inspect(move |v| {
            let m = v.node.protocol().membership();
            let list =
                |ids: Vec<NodeId>| -> Vec<Peer> { ids.into_iter().map(|id| peer(v, id)).collect() };
            json!({
                "self": name,
                "id": id_hex(v.node.id()),
                "active": list(m.active_view()),
                "passive": list(m.passive_view()),
            })
        })
        .await;
    match answer {
        Some(body) => axum::Json(body).into_response(),
        None => stopping(),
    }
}

async fn route(State(s): State<Admin>, Path(node): Path<String>) -> Response {
    let answer = s
        .handle
        .inspect(move |v| {
            let Some(to) = resolve(v.node.protocol().gm(), &node) else {
                return Err(format!(
                    "no member named {node:?} (give a name or a 16-hex-digit id; \
                     `hawser members` lists them)"
                ));
            };
            let me = v.node.id();
            let path = v
                .node
                .protocol()
                .gm()
                .routing()
                .and_then(|r| r.path(me, to));
            Ok(json!({
                "from": peer(v, me),
                "to": peer(v, to),
                "reachable": path.is_some(),
                "hops": path.as_ref().map(|p| p.len() - 1),
                "path": path.map(|p| p.into_iter().map(|id| peer(v, id)).collect::<Vec<_>>()),
            }))
        })
        .await;
    match answer {
        Some(Ok(body)) => axum::Json(body).into_response(),
        Some(Err(e)) => error(StatusCode::NOT_FOUND, e),
        None => stopping(),
    }
}

#[derive(Deserialize)]
struct PrefixQuery {
    #[serde(default)]
    prefix: String,
    /// Continue a listing after this key (the previous page's `next`).
    after: Option<String>,
}

/// One page of the keys under `prefix` (after `after`) and their values, as the driver
/// holds them now, and the key to continue after if there are more.
async fn list_page(
    handle: &DriverHandle,
    prefix: String,
    after: Option<String>,
) -> Option<(Vec<(String, Value)>, Option<String>)> {
    handle
        .inspect(move |v| {
            let mut page = Vec::new();
            let mut bytes = 0;
            // A deleted key (no field left) is kept for its causal context, not listed.
            let keys = v.node.protocol().kv().scan(&prefix);
            let keys =
                keys.filter(|(k, m)| !m.is_bottom() && after.as_ref().is_none_or(|a| *k > a));
            for (k, m) in keys {
                if bytes >= LIST_PAGE_BYTES {
                    let next = page.last().map(|(k, _): &(String, Value)| k.clone());
                    return (page, next);
                }
                let value = m.to_json();
                bytes += k.len() + value.to_string().len();
                page.push((k.clone(), value));
            }
            (page, None)
        })
        .await
}

async fn kv_list(State(s): State<Admin>, Query(q): Query<PrefixQuery>) -> Response {
    let Some((page, next)) = list_page(&s.handle, q.prefix.clone(), q.after).await else {
        return stopping();
    };
    let count = page.len();
    let keys: serde_json::Map<String, Value> = page.into_iter().collect();
    axum::Json(json!({ "prefix": q.prefix, "count": count, "keys": keys, "next": next }))
        .into_response()
}

async fn kv_get(State(s): State<Admin>, Path(key): Path<String>) -> Response {
    let answer = s
        .handle
        .inspect(move |v| v.node.protocol().kv().get(&key).cloned())
        .await;
    match answer {
        // A key never written reads as the empty map, `{}`.
        Some(value) => axum::Json(value.unwrap_or_default().to_json()).into_response(),
        None => stopping(),
    }
}

async fn kv_write(State(s): State<Admin>, Path(key): Path<String>, body: Bytes) -> Response {
    let op = match MapOp::from_json_slice(&body) {
        Ok(op) => op,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match apply_op(&s.handle, key, op).await {
        Ok(value) => axum::Json(value.to_json()).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// `DELETE /v1/kv/{key}`: remove every field of the key (observed removal; see
/// `DriverHandle::kv_delete`), answered with the value after (`{}`) once durable.
async fn kv_delete(State(s): State<Admin>, Path(key): Path<String>) -> Response {
    match tokio::time::timeout(DURABLE_WAIT, s.handle.kv_delete(key)).await {
        Ok(Ok(value)) => axum::Json(value.to_json()).into_response(),
        Ok(Err(KvOpError::Refused(e))) => OpFailed::Refused(e).into_response(),
        Ok(Err(e @ KvOpError::Stopped)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the delete was applied here but was not durable within {} s; it is not \
                 acknowledged",
                DURABLE_WAIT.as_secs()
            ),
        ),
    }
}

/// Why [`apply_op`] has no value: a refusal of core's, or a failure of the agent's.
pub(crate) enum OpFailed {
    Refused(KvError),
    Other(Response),
}

impl IntoResponse for OpFailed {
    fn into_response(self) -> Response {
        match self {
            OpFailed::Refused(e) => {
                let status = match e {
                    KvError::InvalidKey(_) | KvError::Op(_) => StatusCode::BAD_REQUEST,
                    KvError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    KvError::Busy { .. } => {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [(header::RETRY_AFTER, "1")],
                            axum::Json(json!({ "error": e.to_string() })),
                        )
                            .into_response();
                    }
                    KvError::NotStarted => StatusCode::SERVICE_UNAVAILABLE,
                };
                error(status, e.to_string())
            }
            OpFailed::Other(r) => r,
        }
    }
}

/// Apply `op` to `key` and wait, up to [`DURABLE_WAIT`], until it is durable.
pub(crate) async fn apply_op(
    handle: &DriverHandle,
    key: String,
    op: MapOp,
) -> Result<Map, OpFailed> {
    match tokio::time::timeout(DURABLE_WAIT, handle.kv_op(key, op)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(KvOpError::Refused(e))) => Err(OpFailed::Refused(e)),
        Ok(Err(e @ KvOpError::Stopped)) => Err(OpFailed::Other(error(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        ))),
        Err(_) => Err(OpFailed::Other(error(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the op was applied here but was not durable within {} s (the disk is slow); \
                 it is not acknowledged",
                DURABLE_WAIT.as_secs()
            ),
        ))),
    }
}

/// The server-sent events of one watch: the snapshot, `ready`, then the changes; a last
/// `end` event says why the stream stops. Each event taken gives its bytes back to the
/// watch's budget (`queued`).
struct WatchStream {
    snapshot: VecDeque<Arc<str>>,
    ready: Option<SseEvent>,
    changes: mpsc::UnboundedReceiver<Arc<str>>,
    queued: Arc<AtomicUsize>,
    lagged: Arc<AtomicBool>,
    done: bool,
}

impl WatchStream {
    fn event(&self, kind: &'static str, json: &str) -> SseEvent {
        self.queued.fetch_sub(json.len(), Ordering::Relaxed);
        SseEvent::default().event(kind).data(json)
    }
}

impl futures_core::Stream for WatchStream {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(json) = self.snapshot.pop_front() {
            return Poll::Ready(Some(Ok(self.event("snapshot", &json))));
        }
        if let Some(ready) = self.ready.take() {
            return Poll::Ready(Some(Ok(ready)));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.changes.poll_recv(cx) {
            Poll::Ready(Some(json)) => Poll::Ready(Some(Ok(self.event("change", &json)))),
            Poll::Ready(None) => {
                self.done = true;
                let reason = if self.lagged.load(Ordering::Relaxed) {
                    "lagged: this client fell too far behind; watch again to resync"
                } else {
                    "the agent is shutting down"
                };
                let end = SseEvent::default()
                    .event("end")
                    .data(json!({ "reason": reason }).to_string());
                Poll::Ready(Some(Ok(end)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

async fn kv_watch(State(s): State<Admin>, Query(q): Query<PrefixQuery>) -> Response {
    let watch = match s.handle.watch(q.prefix.clone()).await {
        Ok(watch) => watch,
        Err(e @ WatchError::Stopped) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
        Err(e @ WatchError::TooMany { .. }) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        }
        Err(e @ WatchError::SnapshotTooLarge { .. }) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
        }
    };
    let ready = SseEvent::default()
        .event("ready")
        .data(json!({ "prefix": q.prefix, "keys": watch.snapshot.len() }).to_string());
    let stream = WatchStream {
        snapshot: watch.snapshot.into(),
        ready: Some(ready),
        changes: watch.changes,
        queued: watch.queued,
        lagged: watch.lagged,
        done: false,
    };
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn multicast(State(s): State<Admin>, Path(topic): Path<String>, body: Bytes) -> Response {
    let payload = body.to_vec();
    let t = topic.clone();
    let sent = s
        .handle
        .command(move |node, now| node.command(now, |st, c| st.multicast(c, &t, payload)))
        .await;
    match sent {
        Some(Ok((origin, seq))) => {
            axum::Json(json!({ "topic": topic, "origin": id_hex(origin), "seq": seq }))
                .into_response()
        }
        Some(Err(e)) => {
            let status = match e {
                MulticastError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                MulticastError::TopicTooLong { .. } | MulticastError::ReservedTopic => {
                    StatusCode::BAD_REQUEST
                }
                MulticastError::NotStarted | MulticastError::SequenceExhausted => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            error(status, e.to_string())
        }
        None => stopping(),
    }
}

async fn metrics(State(s): State<Admin>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": format!("no such endpoint: {method} {}", uri.path()),
            "endpoints": ENDPOINTS,
        })),
    )
        .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let allow = if path.starts_with("/v1/multicast/")
        || path == "/v1/dns/records/remove"
        || path == "/v1/leave"
        || (path.starts_with("/v1/members/") && path.ends_with("/force-leave"))
    {
        "POST"
    } else if path.starts_with("/v1/kv/") && path != "/v1/kv/watch" {
        "GET, POST, DELETE"
    } else if path == "/v1/dns/records" {
        "GET, POST"
    } else if path == "/v1/vips" {
        "GET, POST, DELETE"
    } else {
        "GET"
    };
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, allow)],
        axum::Json(json!({
            "error": format!("{method} is not allowed on {path}; use {allow}"),
        })),
    )
        .into_response()
}
