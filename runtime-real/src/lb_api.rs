//! The load balancer's admin API: `GET /v1/vips` lists every VIP with its backends, and
//! `POST` / `DELETE /v1/vips` publish and withdraw a backend of this node.
//!
//! `GET /v1/vips` answers (a contract; fields may be added):
//! ```json
//! {"lb": "nftables", "vips": [{"vip": "tcp://11.1.2.3:80", "address": "11.1.2.3:80",
//!   "addresses": ["11.1.2.3:80"], "backends": [{"node": "n1", "node_id": "…",
//!   "addr": "198.18.1.2:8080", "weight": 1, "reachable": true, "kernel_weight": 1}],
//!   "programmed": true, "kernel": [{"service": "tcp://11.1.2.3:80",
//!   "dests": [{"addr": "198.18.1.2:8080", "weight": 1}]}]}]}
//! ```
//! `programmed` says whether this node's kernel holds every service of the VIP exactly
//! as the VIP's backends and this node's reachability want it now. `kernel` is what this
//! node's kernel holds for the VIP's addresses, and `kernel_weight` a backend's weight
//! there (`null`: not in the kernel), both as of the last reconcile pass, which re-reads
//! the kernel (`null` and `[]` when the load balancer is off).
//!
//! Writes take `{"vip": "tcp://11.1.2.3:80", "backend": "198.18.1.2:8080", "weight": 1}`
//! (`weight` optional, default 1; ignored by `DELETE`) and answer once the KV op is
//! durable. A node publishes and withdraws only its own backends: the node in the
//! element is always the one that serves the request.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hawser_core::crdt::MapOp;
use hawser_core::kv::KvError;
use hawser_dataplane::lb::vip::{backend_addr, weight as parse_weight};
use hawser_dataplane::lb::{Backend, Catalog, Host, Service, Vip, desired, kv};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{Admin, id_hex};
use crate::driver::KvOpError;

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn stopping() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the agent is shutting down".into(),
    )
}

pub async fn list(State(s): State<Admin>) -> Response {
    let status = s.lb.clone();
    let answer = s
        .handle
        .inspect(move |v| {
            let mut catalog = Catalog::default();
            for (k, m) in v.node.protocol().kv().scan(kv::PREFIX) {
                catalog.update(k, Some(m));
            }
            let vips = catalog.vips();
            let gm = v.node.protocol().gm();
            let want = desired(&vips, |n| gm.is_reachable(n), status.ranges);
            let named = hawser_dataplane::lb::desired::addresses(vips.keys(), status.ranges);
            let programmed = status.programmed();
            let list: Vec<Value> = vips
                .iter()
                .map(|(vip, backends)| {
                    let ips = match &vip.host {
                        Host::Ip(ip) => vec![*ip],
                        Host::Name(n) => named.get(n).cloned().unwrap_or_default(),
                    };
                    let addresses: Vec<String> = ips
                        .iter()
                        .map(|ip| SocketAddr::new(*ip, vip.port).to_string())
                        .collect();
                    let services: Vec<Service> = ips
                        .iter()
                        .map(|ip| Service {
                            proto: vip.proto,
                            addr: SocketAddr::new(*ip, vip.port),
                        })
                        .filter(|s| want.state.services.contains_key(s))
                        .collect();
                    let is_programmed = !services.is_empty()
                        && programmed.as_ref().is_some_and(|p| {
                            services
                                .iter()
                                .all(|s| p.services.get(s) == want.state.services.get(s))
                        });
                    // What this node's kernel holds for the VIP's addresses, as of the
                    // last reconcile pass (each pass re-reads the kernel).
                    let held = |ip: &IpAddr| {
                        let s = Service {
                            proto: vip.proto,
                            addr: SocketAddr::new(*ip, vip.port),
                        };
                        programmed.as_ref()?.services.get(&s).map(|d| (s, d))
                    };
                    let kernel: Vec<Value> = ips
                        .iter()
                        .filter_map(held)
                        .map(|(s, dests)| {
                            json!({
                                "service": s.to_string(),
                                "dests": dests.iter().map(|(a, w)| json!({
                                    "addr": a.to_string(), "weight": w,
                                })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    let kernel_weight = |b: &Backend| {
                        let ip = ips.iter().find(|ip| ip.is_ipv4() == b.addr.is_ipv4())?;
                        held(ip)?.1.get(&b.addr).copied()
                    };
                    json!({
                        "vip": vip.to_string(),
                        "address": addresses.first(),
                        "addresses": addresses,
                        "backends": backends.iter().map(|b| json!({
                            "node": gm.member(b.node).map(|m| m.name.to_string()),
                            "node_id": id_hex(b.node),
                            "addr": b.addr.to_string(),
                            "weight": b.weight,
                            "reachable": gm.is_reachable(b.node),
                            "kernel_weight": kernel_weight(b),
                        })).collect::<Vec<_>>(),
                        "programmed": is_programmed,
                        "kernel": kernel,
                    })
                })
                .collect();
            json!({ "lb": format!("{:?}", status.backend).to_lowercase(), "vips": list })
        })
        .await;
    match answer {
        Some(body) => axum::Json(body).into_response(),
        None => stopping(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Write {
    vip: String,
    backend: String,
    weight: Option<Value>,
}

/// The request's VIP, backend address and weight, or why not.
fn parse(body: &[u8]) -> Result<(Vip, SocketAddr, u32), String> {
    let w: Write = serde_json::from_slice(body).map_err(|e| {
        format!(
            "expected {{\"vip\": \"tcp://11.1.2.3:80\", \"backend\": \"198.18.1.2:8080\", \
             \"weight\": 1}}: {e}"
        )
    })?;
    let vip: Vip = w.vip.parse().map_err(|e| format!("vip: {e}"))?;
    let addr = backend_addr(&w.backend).map_err(|e| format!("backend: {e}"))?;
    let weight = match w.weight {
        None | Some(Value::Null) => 1,
        Some(v) => parse_weight(&v.to_string()).map_err(|e| format!("weight: {e}"))?,
    };
    Ok((vip, addr, weight))
}

/// Build the op from the key's current value and apply it; once more if the value
/// changed in between so that the op no longer applies.
async fn write(
    s: &Admin,
    key: String,
    build: impl Fn(Option<&hawser_core::crdt::Map>, hawser_core::NodeId) -> Option<MapOp>
    + Clone
    + Send
    + 'static,
) -> Result<Option<()>, Response> {
    for attempt in 0..2 {
        let (k, b) = (key.clone(), build.clone());
        let Some(op) = s
            .handle
            .inspect(move |v| b(v.node.protocol().kv().get(&k), v.node.id()))
            .await
        else {
            return Err(stopping());
        };
        let Some(op) = op else {
            return Ok(None);
        };
        match s.handle.kv_op(key.clone(), op).await {
            Ok(_) => return Ok(Some(())),
            Err(KvOpError::Refused(KvError::Op(_))) if attempt == 0 => continue,
            Err(KvOpError::Refused(e @ KvError::Busy { .. })) => {
                return Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
            }
            Err(e) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        }
    }
    Err(error(
        StatusCode::CONFLICT,
        "the VIP changed twice while this request was applied; retry".into(),
    ))
}

fn refused(s: &Admin, why: String) -> Response {
    s.metrics.lb.api_refused.inc();
    error(StatusCode::BAD_REQUEST, why)
}

pub async fn add(State(s): State<Admin>, body: Bytes) -> Response {
    let (vip, addr, weight) = match parse(&body) {
        Ok(p) => p,
        Err(e) => return refused(&s, e),
    };
    let key = kv::key_of(&vip);
    let v = vip.clone();
    let build = move |value: Option<&hawser_core::crdt::Map>, node| {
        Some(kv::publish(value, &v, Backend { node, addr, weight }))
    };
    match write(&s, key.clone(), build).await {
        Ok(_) => axum::Json(json!({
            "vip": vip.to_string(), "backend": addr.to_string(), "weight": weight,
            "node": s.name, "key": key,
        }))
        .into_response(),
        Err(r) => r,
    }
}

pub async fn remove(State(s): State<Admin>, body: Bytes) -> Response {
    let (vip, addr, _) = match parse(&body) {
        Ok(p) => p,
        Err(e) => return refused(&s, e),
    };
    let key = kv::key_of(&vip);
    let v = vip.clone();
    let build =
        move |value: Option<&hawser_core::crdt::Map>, node| kv::withdraw(value, &v, node, addr);
    match write(&s, key, build).await {
        Ok(Some(())) => axum::Json(json!({
            "vip": vip.to_string(), "backend": addr.to_string(), "removed": true,
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("{} has not published backend {addr} for {vip}", s.name),
        ),
        Err(r) => r,
    }
}
