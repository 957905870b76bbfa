//! The admin API's DNS endpoints: the cluster zone as this node holds it, and the user
//! records in the KV.
//!
//! - `GET /v1/dns/records`: `{"zone", "serial", "records": [{"name", "type", "ttl",
//!   "value", "source"}]}`, `source` being `record` (a user record) or `member` (a
//!   reachable member's `<name>.node.<zone>`), in canonical name order.
//! - `POST /v1/dns/records` with `{"name", "type", "value", "ttl"?}`: add a record (a
//!   name relative to the zone or absolute inside it; TTL default 60 s); answers the
//!   name's records once the write is durable. The same record with another TTL is
//!   replaced; a CNAME beside other data is refused (409).
//! - `POST /v1/dns/records/remove` with `{"name", "type"?, "value"?}`: remove all of a
//!   name's records, those of one type, or one record; `{"removed": N}`, 404 if nothing
//!   matched.
//!
//! A write reads the name's value and applies an op computed from it; if the value
//! changed in between (a merge removed an element the op removes), it is retried.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hawser_core::crdt::{Map, MapOp};
use hawser_core::kv::KvError;
use hawser_dataplane::dns::Zone;
use hawser_dataplane::dns::records::{
    self, DEFAULT_TTL, Data, Filter, Kind, Record, RecordError, key_of, parse_owner, parse_ttl,
};
use hickory_proto::rr::Name;
use serde::Deserialize;
use serde_json::{Value, json};

use super::follower;
use crate::admin::{OpFailed, apply_op, error, stopping};
use crate::driver::DriverHandle;

/// What the DNS endpoints need.
#[derive(Clone)]
pub struct DnsApi {
    pub handle: DriverHandle,
    pub zone: Name,
    /// The TTL of member names (shown in the listing).
    pub node_ttl: u32,
    /// Where this agent serves DNS, if it does.
    pub serving: Option<SocketAddr>,
}

/// The routes, with their state, to merge into a router of any state.
pub fn router<S: Clone + Send + Sync + 'static>(state: DnsApi) -> Router<S> {
    Router::new()
        .route("/v1/dns/records", get(list).post(add))
        .route("/v1/dns/records/remove", post(remove))
        .with_state(state)
}

fn record_json(name: &Name, r: &Record, source: &str) -> Value {
    json!({
        "name": name.to_ascii(),
        "type": r.data.kind().as_str(),
        "ttl": r.ttl,
        "value": r.data.render(),
        "source": source,
    })
}

async fn list(State(s): State<DnsApi>) -> Response {
    let apex = s.zone.clone();
    let answer = s
        .handle
        .inspect(move |v| {
            let mut zone = Zone::new(apex, Vec::new(), 0, 0);
            follower::fill(&mut zone, v);
            zone
        })
        .await;
    let Some(zone) = answer else {
        return stopping();
    };
    let mut rows = Vec::new();
    for (name, ips) in zone.node_records() {
        for ip in ips {
            let data = match ip {
                std::net::IpAddr::V4(a) => Data::A(*a),
                std::net::IpAddr::V6(a) => Data::Aaaa(*a),
            };
            let ttl = s.node_ttl;
            rows.push((name.clone(), Record { data, ttl }, "member"));
        }
    }
    for (name, recs) in zone.user_records() {
        for r in recs {
            rows.push((name.clone(), r.clone(), "record"));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let records: Vec<Value> = rows
        .iter()
        .map(|(n, r, source)| record_json(n, r, source))
        .collect();
    axum::Json(json!({
        "zone": zone.apex().to_ascii(),
        "serial": zone.serial(),
        "records": records,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    value: String,
    ttl: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<String>,
}

fn bad_request(e: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, e.to_string())
}

/// Read `key`, compute an op from its value, apply it; again (twice at most) if the
/// value changed in between.
async fn update<T>(
    handle: &DriverHandle,
    key: String,
    mut plan: impl FnMut(Option<&Map>) -> Result<(MapOp, T), (StatusCode, String)>,
) -> Result<(Map, T), Response> {
    let mut tries = 0;
    loop {
        let k = key.clone();
        let current = handle
            .inspect(move |v| v.node.protocol().kv().get(&k).cloned())
            .await
            .ok_or_else(stopping)?;
        let (op, extra) = plan(current.as_ref()).map_err(|(status, why)| error(status, why))?;
        match apply_op(handle, key.clone(), op).await {
            Ok(value) => return Ok((value, extra)),
            Err(OpFailed::Refused(KvError::Op(_))) if tries < 2 => tries += 1,
            Err(e) => return Err(e.into_response()),
        }
    }
}

fn records_json(owner: &Name, value: &Map) -> Value {
    let (recs, _) = records::records_of(value);
    let list: Vec<Value> = recs
        .iter()
        .map(|r| record_json(owner, r, "record"))
        .collect();
    json!({ "name": owner.to_ascii(), "records": list })
}

async fn add(State(s): State<DnsApi>, body: Bytes) -> Response {
    let body: AddBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_request(format!(
                "expected {{\"name\", \"type\", \"value\", \"ttl\"?}}: {e}"
            ));
        }
    };
    let parsed = (|| -> Result<(Name, Record), RecordError> {
        let owner = parse_owner(&body.name, &s.zone)?;
        let data = Data::parse(Kind::parse(&body.kind)?, &body.value, &s.zone)?;
        let ttl = match body.ttl {
            Some(t) => parse_ttl(&t.to_string())?,
            None => DEFAULT_TTL,
        };
        Ok((owner, Record { data, ttl }))
    })();
    let (owner, record) = match parsed {
        Ok(p) => p,
        Err(e) => return bad_request(e),
    };
    let result = update(&s.handle, key_of(&owner), |current| {
        records::add_op(current, &record)
            .map(|op| (op, ()))
            .map_err(|e| (StatusCode::CONFLICT, e.to_string()))
    })
    .await;
    match result {
        Ok((value, ())) => axum::Json(records_json(&owner, &value)).into_response(),
        Err(r) => r,
    }
}

async fn remove(State(s): State<DnsApi>, body: Bytes) -> Response {
    let body: RemoveBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_request(format!("expected {{\"name\", \"type\"?, \"value\"?}}: {e}"));
        }
    };
    if body.kind.is_none() && body.value.is_some() {
        return bad_request("give the type along with the value");
    }
    let parsed = (|| -> Result<(Name, Filter), RecordError> {
        let owner = parse_owner(&body.name, &s.zone)?;
        let kind = body.kind.as_deref().map(Kind::parse).transpose()?;
        let data = match (kind, &body.value) {
            (Some(k), Some(v)) => Some(Data::parse(k, v, &s.zone)?),
            _ => None,
        };
        Ok((owner, Filter { kind, data }))
    })();
    let (owner, filter) = match parsed {
        Ok(p) => p,
        Err(e) => return bad_request(e),
    };
    let result = update(&s.handle, key_of(&owner), |current| {
        records::remove_op(current, &filter).ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("no matching record at {}", owner.to_ascii()),
            )
        })
    })
    .await;
    match result {
        Ok((value, removed)) => {
            let mut doc = records_json(&owner, &value);
            doc["removed"] = json!(removed);
            axum::Json(doc).into_response()
        }
        Err(r) => r,
    }
}
