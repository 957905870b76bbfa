//! `hawser monitor`: the agent's own log lines, streamed to operators as they happen.
//!
//! A tracing layer beside the stderr one (filtered to the agent's own crates, `hawser*`
//! targets) hands each event at or above the level a monitor asked for, to every monitor as
//! one JSON line: `{"unix_ms", "level", "target", "message", "fields": {..}}`. Each
//! monitor has a bounded queue ([`QUEUE`] lines): a client too slow to keep up loses
//! lines (counted, and told in a `lagged` event), never the agent's memory. Without a
//! monitor the layer does nothing but one atomic load per event. At most [`MAX_MONITORS`]
//! at once.
//!
//! `GET /v1/monitor?level=debug` streams server-sent events: `line` (the JSON above) and
//! `lagged` (`{"dropped": n}`), with keep-alives.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer};

use crate::admin::error;

/// Lines queued for one monitor at most.
pub const QUEUE: usize = 1_024;
/// Monitors at once at most.
pub const MAX_MONITORS: usize = 16;

struct Monitor {
    level: Level,
    lines: mpsc::Sender<Arc<str>>,
    dropped: Arc<AtomicU64>,
}

/// The monitors, shared by the layer and the API.
#[derive(Default)]
struct Hub {
    monitors: Mutex<Vec<Monitor>>,
    /// How many monitors there are: the layer's fast way out when there are none.
    count: AtomicUsize,
}

fn hub() -> &'static Hub {
    static HUB: OnceLock<Hub> = OnceLock::new();
    HUB.get_or_init(Hub::default)
}

/// The layer to install beside the stderr one (see `agent::init_logging`).
pub struct MonitorLayer;

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _: LayerContext<'_, S>) {
        let hub = hub();
        if hub.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let meta = event.metadata();
        let Ok(mut monitors) = hub.monitors.lock() else {
            return;
        };
        // `Level` orders TRACE as the greatest: a monitor at DEBUG takes INFO lines.
        if !monitors.iter().any(|m| *meta.level() <= m.level) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let line: Arc<str> = json!({
            "unix_ms": unix_ms,
            "level": meta.level().as_str(),
            "target": meta.target(),
            "message": fields.message,
            "fields": fields.others,
        })
        .to_string()
        .into();
        monitors.retain(|m| {
            if *meta.level() > m.level {
                return !m.lines.is_closed();
            }
            match m.lines.try_send(line.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    m.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        hub.count.store(monitors.len(), Ordering::Relaxed);
    }
}

/// An event's message and its other fields, as JSON.
#[derive(Default)]
struct Fields {
    message: String,
    others: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.others.insert(field.name().into(), Value::String(text));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.others.insert(field.name().into(), value.into());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.others.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.others.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.others.insert(field.name().into(), value.into());
    }
}

#[derive(Deserialize)]
pub struct LevelQuery {
    level: Option<String>,
}

/// `GET /v1/monitor?level=L`: this agent's log lines at L (default info) and above.
pub async fn monitor(Query(q): Query<LevelQuery>) -> Response {
    let text = q.level.unwrap_or_else(|| "info".into());
    let Ok(level) = text.parse::<Level>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown level {text:?}: use error, warn, info, debug or trace"),
        );
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    {
        let hub = hub();
        let Ok(mut monitors) = hub.monitors.lock() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "monitor lock".into());
        };
        monitors.retain(|m| !m.lines.is_closed());
        if monitors.len() >= MAX_MONITORS {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_MONITORS} monitors are already following this agent"),
            );
        }
        monitors.push(Monitor {
            level,
            lines: tx,
            dropped: dropped.clone(),
        });
        hub.count.store(monitors.len(), Ordering::Relaxed);
    }
    let stream = LineStream {
        lines: rx,
        dropped,
        told: 0,
    };
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct LineStream {
    lines: mpsc::Receiver<Arc<str>>,
    dropped: Arc<AtomicU64>,
    /// Lines dropped that the client has been told of.
    told: u64,
}

impl futures_core::Stream for LineStream {
    type Item = Result<SseEvent, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.told {
            let event = SseEvent::default()
                .event("lagged")
                .data(json!({ "dropped": dropped - self.told }).to_string());
            self.told = dropped;
            return Poll::Ready(Some(Ok(event)));
        }
        match self.lines.poll_recv(cx) {
            Poll::Ready(Some(line)) => {
                Poll::Ready(Some(Ok(SseEvent::default().event("line").data(&*line))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
