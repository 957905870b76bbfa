//! Prometheus metrics of one agent.
//!
//! Core keeps its own running totals ([`hawser_core::Stats`], membership's
//! [`Counters`]); the driver copies them into these metrics after every input it feeds
//! the node (a handful of atomic operations), so `/metrics` never has to stop the
//! driver to read them. What only the driver sees (transport connections, send-queue
//! overflows, store sync latency) it counts here directly.

use std::sync::Arc;
use std::time::Duration;

use hawser_core::Stats;
use hawser_core::kv::KvCounters;
use hawser_core::membership::{Counters, Kind};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every metric the agent exports. Cheap to share: clone the `Arc`.
pub struct Metrics {
    registry: Registry,
    pub active_view: Gauge,
    pub passive_view: Gauge,
    pub links: Gauge,
    pub members: Gauge,
    pub reachable: Gauge,
    pub connections: Gauge,
    frames_in: Counter,
    frames_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    auth_failures: Counter,
    decode_errors: Counter,
    handshake_timeouts: Counter,
    duplicate_ids: Counter,
    refused_by_peer: Counter,
    evictions: Counter,
    messages_sent: Family<Labels, Counter>,
    messages_received: Family<Labels, Counter>,
    /// Each membership message kind's two counters in those families, looked up once:
    /// `sync_core` runs after every input, and a lookup builds the labels and locks.
    by_kind: Vec<(Kind, Counter, Counter)>,
    pub connections_accepted: Counter,
    pub connections_refused: Counter,
    pub pending_refused: Counter,
    pub admin_connections_refused: Counter,
    pub log_lines_suppressed: Counter,
    pub connect_failures: Counter,
    pub queue_drops: Counter,
    pub write_failures: Counter,
    pub store_records: Counter,
    store_sync: Histogram,
    kv_keys: Gauge,
    kv_waiting: Gauge,
    kv_ops: Counter,
    kv_ops_refused: Counter,
    kv_busy: Counter,
    kv_deltas_merged: Counter,
    kv_ae_rounds: Counter,
    kv_repaired_keys: Counter,
    kv_push_rounds: Counter,
    kv_bad_deltas: Counter,
    kv_undisseminated: Counter,
    /// The L4 load balancer's metrics.
    pub lb: LbMetrics,
    /// The overlay network's metrics.
    pub overlay: OverlayMetrics,
    kv_pieced_sent: Counter,
    kv_pieced_received: Counter,
    kv_unreplicable: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Metrics::new_with(|_| {})
    }

    /// The agent's metrics plus what `extra` registers (the dataplane's, under the same
    /// `hawser_` prefix).
    pub fn new_with(extra: impl FnOnce(&mut Registry)) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("hawser");
        let mut m = Metrics {
            active_view: Gauge::default(),
            passive_view: Gauge::default(),
            links: Gauge::default(),
            members: Gauge::default(),
            reachable: Gauge::default(),
            connections: Gauge::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            auth_failures: Counter::default(),
            decode_errors: Counter::default(),
            handshake_timeouts: Counter::default(),
            duplicate_ids: Counter::default(),
            refused_by_peer: Counter::default(),
            evictions: Counter::default(),
            messages_sent: Family::default(),
            messages_received: Family::default(),
            by_kind: Vec::new(),
            connections_accepted: Counter::default(),
            connections_refused: Counter::default(),
            pending_refused: Counter::default(),
            admin_connections_refused: Counter::default(),
            log_lines_suppressed: Counter::default(),
            connect_failures: Counter::default(),
            queue_drops: Counter::default(),
            write_failures: Counter::default(),
            store_records: Counter::default(),
            // 100 us .. ~3.3 s: an fsync on an SSD is well under a millisecond, on a
            // loaded disk it can take seconds.
            store_sync: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            kv_keys: Gauge::default(),
            kv_waiting: Gauge::default(),
            kv_ops: Counter::default(),
            kv_ops_refused: Counter::default(),
            kv_busy: Counter::default(),
            kv_deltas_merged: Counter::default(),
            kv_ae_rounds: Counter::default(),
            kv_repaired_keys: Counter::default(),
            kv_push_rounds: Counter::default(),
            kv_bad_deltas: Counter::default(),
            kv_undisseminated: Counter::default(),
            lb: LbMetrics::default(),
            overlay: OverlayMetrics::default(),
            kv_pieced_sent: Counter::default(),
            kv_pieced_received: Counter::default(),
            kv_unreplicable: Counter::default(),
            registry: Registry::default(),
        };
        m.by_kind = Kind::ALL
            .into_iter()
            .map(|kind| {
                let labels = vec![("kind".to_owned(), format!("{kind:?}"))];
                let sent = m.messages_sent.get_or_create(&labels).clone();
                let received = m.messages_received.get_or_create(&labels).clone();
                (kind, sent, received)
            })
            .collect();
        let r = &mut registry;
        r.register(
            "active_view",
            "Neighbours in the HyParView active view",
            m.active_view.clone(),
        );
        r.register(
            "passive_view",
            "Peers in the HyParView passive view",
            m.passive_view.clone(),
        );
        r.register("links", "Authenticated links to peers", m.links.clone());
        r.register(
            "members",
            "Members in the global membership table (this node included)",
            m.members.clone(),
        );
        r.register(
            "reachable",
            "Members reachable over the overlay graph (this node included)",
            m.reachable.clone(),
        );
        r.register(
            "connections",
            "Open transport connections (links and handshakes in progress)",
            m.connections.clone(),
        );
        r.register("frames_in", "Frames received", m.frames_in.clone());
        r.register("frames_out", "Frames sent", m.frames_out.clone());
        r.register("bytes_in", "Bytes received in frames", m.bytes_in.clone());
        r.register("bytes_out", "Bytes sent in frames", m.bytes_out.clone());
        r.register(
            "auth_failures",
            "Peers that failed the cookie proof or their TLS certificate, or sent a frame that did not open",
            m.auth_failures.clone(),
        );
        r.register(
            "decode_errors",
            "Frames or messages that did not decode (the connection was closed)",
            m.decode_errors.clone(),
        );
        r.register(
            "duplicate_ids",
            "Links refused because a node with the same name was linked from another address",
            m.duplicate_ids.clone(),
        );
        r.register(
            "refused_by_peer",
            "Links a peer refused after the handshake (another node has this node's name)",
            m.refused_by_peer.clone(),
        );
        r.register(
            "handshake_timeouts",
            "Connections closed because they did not authenticate in time",
            m.handshake_timeouts.clone(),
        );
        r.register(
            "evictions",
            "Neighbours the failure detector removed",
            m.evictions.clone(),
        );
        r.register(
            "messages_sent",
            "Membership messages sent, by kind",
            m.messages_sent.clone(),
        );
        r.register(
            "messages_received",
            "Membership messages received, by kind",
            m.messages_received.clone(),
        );
        r.register(
            "connections_accepted",
            "Inbound connections accepted",
            m.connections_accepted.clone(),
        );
        r.register(
            "connections_refused",
            "Inbound connections closed at once because max_connections were open",
            m.connections_refused.clone(),
        );
        r.register(
            "pending_refused",
            "Inbound connections closed at once because their source already had \
             max_pending_per_source connections in their handshake",
            m.pending_refused.clone(),
        );
        r.register(
            "admin_connections_refused",
            "Admin API connections closed at once because admin_api.max_connections were open",
            m.admin_connections_refused.clone(),
        );
        r.register(
            "log_lines_suppressed",
            "Refusal log lines left out by the per-kind rate limit (counted, not written)",
            m.log_lines_suppressed.clone(),
        );
        r.register(
            "connect_failures",
            "Outbound connections that failed or timed out",
            m.connect_failures.clone(),
        );
        r.register(
            "queue_drops",
            "Connections closed because the peer did not drain its send queue",
            m.queue_drops.clone(),
        );
        r.register(
            "write_failures",
            "Connections closed because a write to the peer failed (it had closed or reset \
             the connection) or timed out",
            m.write_failures.clone(),
        );
        r.register(
            "store_records",
            "Persistence records committed to the store",
            m.store_records.clone(),
        );
        r.register(
            "store_sync_seconds",
            "Time to commit and sync one batch of records",
            m.store_sync.clone(),
        );
        r.register("kv_keys", "Keys in the replicated KV", m.kv_keys.clone());
        r.register(
            "kv_waiting",
            "Local KV ops applied and waiting for their batch to be durable",
            m.kv_waiting.clone(),
        );
        r.register("kv_ops", "Local KV ops applied", m.kv_ops.clone());
        r.register(
            "kv_ops_refused",
            "Local KV ops refused (invalid key, too large, precondition, busy)",
            m.kv_ops_refused.clone(),
        );
        r.register(
            "kv_busy",
            "Local KV ops refused because too many awaited the disk",
            m.kv_busy.clone(),
        );
        r.register(
            "kv_deltas_merged",
            "Disseminated KV deltas received and merged",
            m.kv_deltas_merged.clone(),
        );
        r.register(
            "kv_ae_rounds",
            "KV anti-entropy rounds started",
            m.kv_ae_rounds.clone(),
        );
        r.register(
            "kv_repaired_keys",
            "Keys that KV anti-entropy changed here (what dissemination missed)",
            m.kv_repaired_keys.clone(),
        );
        r.register(
            "kv_push_rounds",
            "KV anti-entropy rounds started because a round repaired keys here",
            m.kv_push_rounds.clone(),
        );
        r.register(
            "kv_bad_deltas",
            "Disseminated KV deltas that did not decode (ignored)",
            m.kv_bad_deltas.clone(),
        );
        r.register(
            "kv_undisseminated",
            "Local KV deltas too large to multicast (anti-entropy carries them)",
            m.kv_undisseminated.clone(),
        );
        r.register(
            "kv_pieced_sent",
            "Values anti-entropy sent in pieces (larger than a frame)",
            m.kv_pieced_sent.clone(),
        );
        r.register(
            "kv_pieced_received",
            "Values received in pieces and merged",
            m.kv_pieced_received.clone(),
        );
        r.register(
            "kv_unreplicable",
            "Times anti-entropy could not send a value larger than max_repair_value",
            m.kv_unreplicable.clone(),
        );
        m.lb.register(r);
        m.overlay.register(r);
        extra(&mut registry);
        Arc::new(Metrics { registry, ..m })
    }

    /// Copy core's running totals.
    pub fn sync_core(&self, stats: &Stats, counters: &Counters) {
        set(&self.frames_in, stats.frames_in);
        set(&self.frames_out, stats.frames_out);
        set(&self.bytes_in, stats.bytes_in);
        set(&self.bytes_out, stats.bytes_out);
        set(&self.auth_failures, stats.auth_failures);
        set(&self.decode_errors, stats.decode_errors);
        set(&self.handshake_timeouts, stats.handshake_timeouts);
        set(&self.duplicate_ids, stats.duplicate_ids);
        set(&self.refused_by_peer, stats.refused_by_peer);
        set(&self.evictions, counters.evictions);
        for (kind, sent, received) in &self.by_kind {
            set(sent, counters.sent(*kind));
            set(received, counters.received(*kind));
        }
    }

    /// Copy the KV's running totals and sizes.
    pub fn sync_kv(&self, counters: &KvCounters, keys: usize, waiting: usize) {
        self.kv_keys.set(keys as i64);
        self.kv_waiting.set(waiting as i64);
        set(&self.kv_ops, counters.ops);
        set(&self.kv_ops_refused, counters.ops_refused);
        set(&self.kv_busy, counters.busy);
        set(&self.kv_deltas_merged, counters.deltas_merged);
        set(&self.kv_ae_rounds, counters.ae_rounds);
        set(&self.kv_repaired_keys, counters.repaired_keys);
        set(&self.kv_push_rounds, counters.push_rounds);
        set(&self.kv_bad_deltas, counters.bad_deltas);
        set(&self.kv_undisseminated, counters.undisseminated);
        set(&self.kv_pieced_sent, counters.pieced_sent);
        set(&self.kv_pieced_received, counters.pieced_received);
        set(&self.kv_unreplicable, counters.unreplicable);
    }

    pub fn observe_sync(&self, took: Duration) {
        self.store_sync.observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Counters only go up: add the difference to core's (monotonic) total.
fn set(counter: &Counter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

// ---- The L4 load balancer ----

/// The load balancer's metrics: what the desired state holds (set by the follower in the
/// driver task) and what the reconciler did (set by its task).
#[derive(Default)]
pub struct LbMetrics {
    pub vips: Gauge,
    pub backends: Gauge,
    pub unreachable_backends: Gauge,
    pub fail_open: Gauge,
    pub malformed: Gauge,
    pub api_refused: Counter,
    pub reconcile: ReconcileMetrics,
}

impl LbMetrics {
    fn register(&self, r: &mut Registry) {
        r.register("lb_vips", "VIPs in the KV", self.vips.clone());
        r.register(
            "lb_backends",
            "Backends published for all VIPs",
            self.backends.clone(),
        );
        r.register(
            "lb_unreachable_backends",
            "Backends left out because their node is unreachable from this one",
            self.unreachable_backends.clone(),
        );
        r.register(
            "lb_fail_open",
            "Services kept with all their backends although none is reachable",
            self.fail_open.clone(),
        );
        r.register(
            "lb_malformed",
            "VIP fields or backend elements in the KV that did not parse (ignored)",
            self.malformed.clone(),
        );
        r.register(
            "lb_api_refused",
            "VIP writes refused as malformed (bad VIP, backend or weight)",
            self.api_refused.clone(),
        );
        self.reconcile.register(
            r,
            "lb",
            "(address, service, destination, weight)",
            "(nft commands, netlink requests)",
        );
    }
}

// ---- The overlay network ----

/// The overlay's metrics: what the members decided (set in the driver task), the KV
/// writes they made and what the reconciler did.
#[derive(Default)]
pub struct OverlayMetrics {
    /// Overlay networks where this node holds a subnet.
    pub subnets_held: Gauge,
    /// Peers whose entries this node wants in its kernel, over all networks.
    pub peers: Gauge,
    /// Peers whose entries the kernel held after the last successful pass.
    pub peers_programmed: Gauge,
    /// Nodes left out because their record is missing, stale or clashes.
    pub peers_waiting: Gauge,
    /// Nodes that claim only slots a lower node holds (they move).
    pub displaced: Gauge,
    pub malformed: Gauge,
    pub kv_writes: Counter,
    pub kv_write_errors: Counter,
    pub reconcile: ReconcileMetrics,
}

impl OverlayMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "overlay_subnets_held",
            "Overlay networks in which this node holds a subnet",
            self.subnets_held.clone(),
        );
        r.register(
            "overlay_peers",
            "Peers this node wants programmed (neighbour, forwarding entry, route), all networks",
            self.peers.clone(),
        );
        r.register(
            "overlay_peers_programmed",
            "Peers whose entries the kernel held after the last successful reconcile pass",
            self.peers_programmed.clone(),
        );
        r.register(
            "overlay_peers_waiting",
            "Nodes holding a subnet but left out: no VTEP record yet, a stale one, or a MAC clash",
            self.peers_waiting.clone(),
        );
        r.register(
            "overlay_displaced",
            "Nodes whose claimed subnet a lower node holds (they move to another)",
            self.displaced.clone(),
        );
        r.register(
            "overlay_malformed",
            "Overlay KV fields or elements that did not parse (ignored)",
            self.malformed.clone(),
        );
        r.register(
            "overlay_kv_writes",
            "Claims, VTEP records and forgettings written to the KV",
            self.kv_writes.clone(),
        );
        r.register(
            "overlay_kv_write_errors",
            "Overlay KV writes refused or lost to a stopping driver (retried)",
            self.kv_write_errors.clone(),
        );
        self.reconcile.register(
            r,
            "overlay",
            "(device, address, neighbour, forwarding entry, route)",
            "(netlink requests)",
        );
    }
}

/// A kernel reconciler's passes (the load balancer's, the overlay's): one shape, each
/// registered under its own prefix.
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    passes: Counter,
    changes: Counter,
    messages: Counter,
    errors: Counter,
    seconds: Histogram,
}

impl Default for ReconcileMetrics {
    fn default() -> Self {
        ReconcileMetrics {
            passes: Counter::default(),
            changes: Counter::default(),
            messages: Counter::default(),
            errors: Counter::default(),
            // 100 us .. ~6.5 s: a pass over a few entries takes milliseconds, over
            // 10,000 VIPs or peers seconds.
            seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 17)),
        }
    }
}

impl ReconcileMetrics {
    fn register(&self, r: &mut Registry, prefix: &str, changes: &str, messages: &str) {
        r.register(
            format!("{prefix}_reconciles"),
            "Reconcile passes that completed",
            self.passes.clone(),
        );
        r.register(
            format!("{prefix}_changes_applied"),
            format!("Kernel changes applied {changes}"),
            self.changes.clone(),
        );
        r.register(
            format!("{prefix}_kernel_messages"),
            format!("Kernel messages sent to apply changes {messages}"),
            self.messages.clone(),
        );
        r.register(
            format!("{prefix}_kernel_errors"),
            "Reconcile passes the kernel refused or that failed (retried next pass)",
            self.errors.clone(),
        );
        r.register(
            format!("{prefix}_reconcile_seconds"),
            "Time of one reconcile pass: read the kernel, diff, apply",
            self.seconds.clone(),
        );
    }

    /// A pass that took `took` and applied `changes` in `messages` kernel messages.
    pub fn passed(&self, took: Duration, changes: usize, messages: usize) {
        self.seconds.observe(took.as_secs_f64());
        self.passes.inc();
        self.changes.inc_by(changes as u64);
        self.messages.inc_by(messages as u64);
    }

    /// A pass that failed after `took`.
    pub fn failed(&self, took: Duration) {
        self.seconds.observe(took.as_secs_f64());
        self.errors.inc();
    }
}
