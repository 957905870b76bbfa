//! The admin HTTP API: JSON views of the running node, and Prometheus metrics.
//!
//! Every answer is read from the node inside the driver task ([`DriverHandle::inspect`]),
//! between two inputs, so it is a consistent picture and the node needs no locks. The
//! API has no authentication: it listens on loopback unless configured otherwise.
//!
//! `/v1/members` is global membership's table: every member whose adjacency entry this
//! node holds, with its reachability and hop distance over the overlay graph. Peer names
//! are not carried by the protocols (only ids and addresses are), so a peer's `name` is
//! `null`; this node's own is filled in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hawser_core::{Addr, NodeId};
use serde::Serialize;
use serde_json::{Value, json};

use crate::driver::{DriverHandle, View};
use crate::metrics::Metrics;

/// What the handlers share.
#[derive(Clone)]
pub struct Admin {
    pub handle: DriverHandle,
    pub metrics: Arc<Metrics>,
    pub name: String,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub started: StdInstant,
}

/// The endpoints, listed in 404 answers.
const ENDPOINTS: [&str; 4] = [
    "GET /v1/self",
    "GET /v1/members",
    "GET /v1/overlay",
    "GET /metrics",
];

pub fn router(state: Admin) -> Router {
    Router::new()
        .route("/v1/self", get(self_info))
        .route("/v1/members", get(members))
        .route("/v1/overlay", get(overlay))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// A node id as clients see it: 16 hex digits.
pub fn id_hex(id: NodeId) -> String {
    format!("{:016x}", id.0)
}

#[derive(Serialize)]
struct Peer {
    id: String,
    addr: Option<String>,
}

fn peer(view: &View<'_>, id: NodeId) -> Peer {
    Peer {
        id: id_hex(id),
        addr: view.peers.get(&id).map(Addr::to_string),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// The driver has stopped (the agent is shutting down).
fn stopping() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the agent is shutting down".into(),
    )
}

async fn self_info(State(s): State<Admin>) -> Response {
    let started = s.started;
    let (name, listen, admin) = (s.name.clone(), s.listen, s.admin);
    let answer = s
        .handle
        .inspect(move |v| {
            let m = v.node.protocol().membership();
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
            })
        })
        .await;
    match answer {
        Some(body) => axum::Json(body).into_response(),
        None => stopping(),
    }
}

async fn members(State(s): State<Admin>) -> Response {
    let name = s.name.clone();
    let answer = s
        .handle
        .inspect(move |v| {
            let gm = v.node.protocol().gm();
            let me = v.node.id();
            let distance = |id| gm.routing().and_then(|r| r.distance(me, id));
            let mut members = vec![json!({
                "name": name,
                "id": id_hex(me),
                "addr": v.node.links().addr().to_string(),
                "reachable": true,
                "distance": 0,
            })];
            for (id, member) in gm.members().filter(|(id, _)| *id != me) {
                members.push(json!({
                    "name": Value::Null,
                    "id": id_hex(id),
                    "addr": member.addr.to_string(),
                    "reachable": gm.is_reachable(id),
                    "distance": distance(id),
                }));
            }
            json!({
                "self": name,
                "source": "global membership",
                "members": members,
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
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET")],
        axum::Json(json!({
            "error": format!("{method} is not allowed on {}; use GET", uri.path()),
        })),
    )
        .into_response()
}
