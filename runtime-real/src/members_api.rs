//! The cluster as an operator sees it: `GET /v1/members`, `POST /v1/leave` and
//! `POST /v1/members/{node}/force-leave`.
//!
//! `GET /v1/members[?status=failed,left]` answers (a contract; fields may be added):
//! ```json
//! {"self": "n1", "source": "global membership", "reap_after_secs": 86400,
//!  "members": [{"name": "n1", "id": "0480a93d2e9b094b", "addr": "127.0.0.1:7600",
//!    "status": "alive", "since_secs": 12, "reachable": true, "distance": 0}]}
//! ```
//! Rows are sorted by name (then id). `status` is `alive`, `suspect` (reachable, but a
//! neighbour's failure detector suspects it), `failed` (not reachable, and it did not
//! leave) or `left` (it left with SIGTERM or `hawser leave`, or was forced to); see
//! `hawser_core::gm::Status`. `since_secs` is how long ago this node saw that status
//! begin. Failed and left members are reaped `reap_after_secs` after they stopped being
//! reachable (`--reap-after`).
//!
//! `POST /v1/leave` makes the agent leave as SIGTERM does (every node marks it `left`,
//! its neighbours repair at once, its store is flushed) and exit 0; the answer comes
//! once it has left. `POST /v1/members/{node}/force-leave` marks a failed member `left`
//! on every node (refused, 409, for a member that is reachable); a member that is in
//! fact alive behind a partition answers it when it hears of it and is alive again.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hawser_core::gm::{ForceLeaveError, Status};
use hawser_core::{Instant, NodeId};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::admin::{Admin, error, id_hex, resolve, stopping};

#[derive(Deserialize)]
pub struct StatusQuery {
    /// Comma-separated statuses to keep (all when absent).
    status: Option<String>,
}

/// The statuses `filter` names (comma-separated), or why one is unknown.
fn parse_filter(filter: Option<&str>) -> Result<Vec<Status>, String> {
    match filter {
        None => Ok(Status::ALL.to_vec()),
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<Status>().map_err(|e| e.to_string()))
            .collect(),
    }
}

fn secs_since(now: Instant, then: Instant) -> u64 {
    now.saturating_since(then).as_millis() / 1000
}

pub async fn members(State(s): State<Admin>, Query(q): Query<StatusQuery>) -> Response {
    let keep = match parse_filter(q.status.as_deref()) {
        Ok(k) => k,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let name = s.name.clone();
    let answer = s
        .handle
        .inspect(move |v| {
            let gm = v.node.protocol().gm();
            let me = v.node.id();
            // One search for every member's distance, not one per member.
            let distances = gm.routing().map(|r| r.distances(me)).unwrap_or_default();
            let mut rows: Vec<(String, NodeId, Value)> = gm
                .members()
                .filter(|(_, m)| keep.contains(&m.status))
                .map(|(id, m)| {
                    let addr = if id == me {
                        v.node.links().addr().to_string()
                    } else {
                        m.addr.to_string()
                    };
                    let row = json!({
                        "name": m.name.as_str(),
                        "id": id_hex(id),
                        "addr": addr,
                        "status": m.status.as_str(),
                        "since_secs": secs_since(v.now, m.status_since),
                        "reachable": id == me || gm.is_reachable(id),
                        "distance": if id == me { Some(0) } else { distances.get(&id).copied() },
                    });
                    (m.name.to_string(), id, row)
                })
                .collect();
            rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            json!({
                "self": name,
                "source": "global membership",
                "reap_after_secs": gm.config().forget_after_ms / 1000,
                "members": rows.into_iter().map(|r| r.2).collect::<Vec<_>>(),
            })
        })
        .await;
    match answer {
        Some(body) => axum::Json(body).into_response(),
        None => stopping(),
    }
}

/// Leave the cluster and stop, as SIGTERM does; answered once the node has left.
pub async fn leave(State(s): State<Admin>) -> Response {
    info!("leave asked for through the admin API: leaving");
    s.handle.shutdown().await;
    axum::Json(json!({ "left": s.name })).into_response()
}

pub async fn force_leave(State(s): State<Admin>, Path(node): Path<String>) -> Response {
    let asked = node.clone();
    let answer = s
        .handle
        .command(move |n, now| {
            let id = resolve(n.protocol().gm(), &asked).ok_or(ForceLeaveError::Unknown)?;
            n.command(now, |st, c| st.force_leave(c, id)).map(|()| id)
        })
        .await;
    match answer {
        Some(Ok(id)) => {
            warn!(node = %node, id = %id_hex(id), "force-leave: marked left through the admin API");
            axum::Json(json!({ "node": node, "id": id_hex(id), "status": "left" })).into_response()
        }
        Some(Err(e)) => {
            let status = match e {
                ForceLeaveError::Unknown => StatusCode::NOT_FOUND,
                ForceLeaveError::NotStarted => StatusCode::SERVICE_UNAVAILABLE,
                ForceLeaveError::Reachable | ForceLeaveError::Myself => StatusCode::CONFLICT,
            };
            error(status, format!("{node}: {e}"))
        }
        None => stopping(),
    }
}
