//! KV watches: a snapshot of the keys under a prefix, then every change, as JSON — what
//! `/v1/kv/watch` streams. Bounded in bytes per watcher, and in watchers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use hawser_core::crdt::Map;
use hawser_core::kv::Kv;
use tokio::sync::mpsc;
use tracing::warn;

/// A subscription to the KV's changes under a prefix, from [`DriverHandle::watch`].
///
/// Its memory is bounded in bytes, not in changes (a hundred 300 KB values are few
/// changes): the snapshot and the changes queued for it together may hold at most
/// `watch_queue_bytes` of JSON. A snapshot over that is refused; a watcher whose queue
/// would go over it (a stalled client) is cut off, its stream ending with `lagged`.
pub struct Watch {
    /// Every key under the prefix, at the moment the watch began, as the JSON
    /// `{"key": .., "value": ..}`.
    pub snapshot: Vec<Arc<str>>,
    /// Then every change under the prefix, in order, in the same form. Ends when the
    /// driver stops, or when the client fell too far behind (then `lagged` is set).
    pub changes: mpsc::UnboundedReceiver<Arc<str>>,
    /// Bytes of `changes` not yet taken: subtract each change's length on taking it.
    pub queued: Arc<AtomicUsize>,
    pub lagged: Arc<AtomicBool>,
}

/// Why a watch was not started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// `max_watchers` streams are open.
    TooMany { max: usize },
    /// The prefix's keys come to more JSON than one watcher may hold.
    SnapshotTooLarge { bytes: usize, max: usize },
    /// The driver has stopped.
    Stopped,
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::TooMany { max } => write!(f, "{max} watch streams are open already"),
            WatchError::SnapshotTooLarge { bytes, max } => write!(
                f,
                "the keys under this prefix are {bytes} bytes of JSON, more than a watch \
                 may hold ({max}): watch a narrower prefix"
            ),
            WatchError::Stopped => f.write_str("the agent is shutting down"),
        }
    }
}

/// The JSON of one key's value, as watchers get it.
pub fn watch_json(key: &str, value: &Map) -> Arc<str> {
    serde_json::json!({ "key": key, "value": value.to_json() })
        .to_string()
        .into()
}

struct Watcher {
    prefix: String,
    changes: mpsc::UnboundedSender<Arc<str>>,
    queued: Arc<AtomicUsize>,
    lagged: Arc<AtomicBool>,
}

/// The watchers of one node, and their bounds.
pub(super) struct Watchers {
    watchers: Vec<Watcher>,
    /// At most this many at once.
    max: usize,
    /// Bytes of JSON one watcher may hold queued (its snapshot included).
    queue_bytes: usize,
}

impl Watchers {
    pub(super) fn new(max: usize, queue_bytes: usize) -> Watchers {
        Watchers {
            watchers: Vec::new(),
            max,
            queue_bytes,
        }
    }

    /// A new watcher, unless there are too many or its snapshot alone is over budget.
    pub(super) fn start(&mut self, kv: &Kv, prefix: String) -> Result<Watch, WatchError> {
        self.watchers.retain(|w| !w.changes.is_closed());
        if self.watchers.len() >= self.max {
            return Err(WatchError::TooMany { max: self.max });
        }
        let max = self.queue_bytes;
        let mut snapshot = Vec::new();
        let mut bytes = 0;
        // Deleted keys (no field left) are not listed, as in `GET /v1/kv`.
        let keys = kv.scan(&prefix);
        for (key, value) in keys.filter(|(_, v)| !v.is_bottom()) {
            let json = watch_json(key, value);
            bytes += json.len();
            if bytes > max {
                return Err(WatchError::SnapshotTooLarge { bytes, max });
            }
            snapshot.push(json);
        }
        let (changes, rx) = mpsc::unbounded_channel();
        let (queued, lagged) = (Arc::new(AtomicUsize::new(bytes)), Arc::default());
        self.watchers.push(Watcher {
            prefix,
            changes,
            queued: queued.clone(),
            lagged: Arc::clone(&lagged),
        });
        Ok(Watch {
            snapshot,
            changes: rx,
            queued,
            lagged,
        })
    }

    /// Hand a changed key to every watcher of a prefix it has; drop watchers that are
    /// gone or too far behind.
    pub(super) fn notify(&mut self, key: &str, value: &Map) {
        let max = self.queue_bytes;
        let mut json: Option<Arc<str>> = None;
        self.watchers.retain(|w| {
            if !key.starts_with(w.prefix.as_str()) {
                return !w.changes.is_closed();
            }
            let json = json.get_or_insert_with(|| watch_json(key, value));
            if w.queued.load(Ordering::Relaxed) + json.len() > max {
                w.lagged.store(true, Ordering::Relaxed);
                warn!(prefix = ?w.prefix, "a KV watcher fell behind; closing its stream");
                return false;
            }
            w.queued.fetch_add(json.len(), Ordering::Relaxed);
            w.changes.send(Arc::clone(json)).is_ok()
        });
    }
}
