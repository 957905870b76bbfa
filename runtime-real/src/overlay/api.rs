//! The overlay's admin API: `GET /v1/networks`, what a container runtime needs to attach
//! a container (this node's subnet and gateway) and what an operator needs to see
//! whether the overlay works (peers, and whether the kernel holds their entries).
//!
//! The answer (a contract; fields may be added):
//! ```json
//! {"networks": [{"name": "dcos", "subnet": "9.0.0.0/8", "subnet6": null,
//!   "vni": 1024, "port": 64000, "mtu": 1420, "slot": 17,
//!   "node_subnet": "9.0.17.0/24", "node_subnet6": null, "gateway": "9.0.17.1",
//!   "vtep": {"ip": "100.64.0.18", "mac": "ce:2d:f4:2d:0d:50", "device": "vtep1024",
//!            "programmed": true},
//!   "peers": [{"node": "n2", "node_id": "…", "underlay": "198.18.0.2",
//!              "node_subnet": "9.0.3.0/24", "node_subnet6": null,
//!              "vtep_ip": "100.64.0.4", "vtep_mac": "…", "programmed": true}],
//!   "waiting": {"unrecorded": 0, "stale": 0, "mac_clash": 0, "family": 0},
//!   "displaced": 0, "forgotten": 0}]}
//! ```
//! `node_subnet`, `gateway` and `vtep` are `null` while this node holds no subnet (it
//! has just started, or moved after a clash and waits for its new claim). A peer is
//! `programmed` when the kernel held its neighbour, forwarding entry and route after
//! the last successful reconcile pass (which re-reads the kernel).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hawser_dataplane::overlay::{Link, Member, VtepRecord, device_name};
use serde_json::{Value, json};

use super::follower::SharedOverlays;
use super::reconcile::OverlayStatus;
use crate::admin::{Admin, id_hex};

/// What the API reads of the overlay.
#[derive(Clone, Default)]
pub struct OverlayApi {
    /// `None` when the agent is part of no overlay network.
    pub overlays: Option<SharedOverlays>,
    pub status: Arc<OverlayStatus>,
}

pub async fn list(State(s): State<Admin>) -> Response {
    let Some(overlays) = s.overlay.overlays.clone() else {
        return axum::Json(json!({ "networks": [] })).into_response();
    };
    let status = s.overlay.status.clone();
    let answer = s
        .handle
        .inspect(move |view| {
            let gm = view.node.protocol().gm();
            let name = |id| {
                gm.member(id)
                    .map(|m| m.name.as_str().to_owned())
                    .unwrap_or_default()
            };
            let programmed = status.get();
            let o = overlays.lock();
            let networks: Vec<Value> = o
                .members()
                .iter()
                .map(|m| {
                    let device = device_name(m.network().vni);
                    let kernel = programmed.as_ref().and_then(|p| p.links.get(&device));
                    network(m, &device, kernel, &name)
                })
                .collect();
            json!({ "networks": networks })
        })
        .await;
    match answer {
        Some(body) => axum::Json(body).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error": "the agent is shutting down" })),
        )
            .into_response(),
    }
}

fn network(
    m: &Member,
    device: &str,
    kernel: Option<&Link>,
    name: &dyn Fn(hawser_core::NodeId) -> String,
) -> Value {
    let net = m.network();
    let d = m.desired();
    let alloc = m.allocation();
    let share = d.share;
    let vtep = d.state.links.get(device).map(|want| {
        let record_mac = want.device.mac;
        json!({
            "ip": share.map(|s| s.vtep_ip.to_string()),
            "mac": record_mac.to_string(),
            "device": device,
            "programmed": kernel.is_some_and(|k| k.device == want.device && k.up
                && want.addresses.is_subset(&k.addresses)),
        })
    });
    let peers: Vec<Value> = d
        .peers
        .iter()
        .map(|(id, r)| peer(*id, r, kernel, name))
        .collect();
    let s = &d.stats;
    json!({
        "name": net.name,
        "subnet": net.subnet.to_string(),
        "subnet6": net.subnet6.map(|p| p.to_string()),
        "vni": net.vni,
        "port": net.port,
        "mtu": net.mtu,
        "slot": share.map(|s| s.slot.0),
        "node_subnet": share.map(|s| s.subnet.to_string()),
        "node_subnet6": share.and_then(|s| s.subnet6).map(|p| p.to_string()),
        "gateway": share.and_then(|s| s.gateway()).map(|g| g.to_string()),
        "vtep": vtep,
        "peers": peers,
        "waiting": {"unrecorded": s.unrecorded, "stale": s.stale,
                    "mac_clash": s.mac_clash, "family": s.family},
        "displaced": alloc.displaced.len(),
        "forgotten": alloc.forgotten.len(),
    })
}

fn peer(
    id: hawser_core::NodeId,
    r: &VtepRecord,
    kernel: Option<&Link>,
    name: &dyn Fn(hawser_core::NodeId) -> String,
) -> Value {
    let vtep = std::net::IpAddr::from(r.vtep_ip);
    let programmed = kernel.is_some_and(|k| {
        k.neighbours.get(&vtep) == Some(&r.mac)
            && k.fdb.get(&r.mac) == Some(&r.underlay)
            && k.routes.get(&r.subnet) == Some(&vtep)
    });
    json!({
        "node": name(id),
        "node_id": id_hex(id),
        "underlay": r.underlay.to_string(),
        "node_subnet": r.subnet.to_string(),
        "node_subnet6": r.subnet6.map(|p| p.to_string()),
        "vtep_ip": r.vtep_ip.to_string(),
        "vtep_mac": r.mac.to_string(),
        "programmed": programmed,
    })
}
