//! The DNS service's Prometheus metrics (`hawser_dns_*`).
//!
//! Each shard's server keeps plain running totals; the shard adds what changed since
//! its last look every [`SYNC`] (and RTTs as they come), so `/metrics` is at most that
//! old and the query path touches no shared counter.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hawser_dataplane::dns::message::rcode_name;
use hawser_dataplane::dns::{DnsCounters, DnsServer, Ignored, Malformed, Transport};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// How often a shard adds its totals to the metrics.
pub const SYNC: Duration = Duration::from_millis(500);

fn rtt_histogram() -> Histogram {
    // 50 us .. ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

#[derive(Clone)]
pub struct DnsMetrics {
    queries: Family<Labels, Counter>,
    malformed: Family<Labels, Counter>,
    overloaded: Counter,
    attempts: Family<Labels, Counter>,
    ignored: Family<Labels, Counter>,
    upstream_errors: Counter,
    rtt: Family<Labels, Histogram, fn() -> Histogram>,
    failures: Family<Labels, Counter>,
    in_rotation: Family<Labels, Gauge>,
    pub in_flight: Gauge,
    pub cached: Gauge,
    pub tcp_connections: Gauge,
    pub tcp_refused: Counter,
    tcp_closed: Family<Labels, Counter>,
    pub zone_names: Gauge,
    pub zone_members: Gauge,
    pub zone_skipped: Counter,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Why a TCP client connection was closed by the server.
#[derive(Clone, Copy, Debug)]
pub enum TcpClose {
    /// Nothing arrived within the idle time.
    Idle,
    /// A message shorter than a header or longer than a query can be.
    BadLength,
    /// The client sent part of a message and stalled.
    Stalled,
}

impl TcpClose {
    fn as_str(self) -> &'static str {
        match self {
            TcpClose::Idle => "idle",
            TcpClose::BadLength => "bad_length",
            TcpClose::Stalled => "stalled",
        }
    }
}

impl DnsMetrics {
    pub fn new() -> DnsMetrics {
        DnsMetrics {
            queries: Family::default(),
            malformed: Family::default(),
            overloaded: Counter::default(),
            attempts: Family::default(),
            ignored: Family::default(),
            upstream_errors: Counter::default(),
            rtt: Family::new_with_constructor(rtt_histogram),
            failures: Family::default(),
            in_rotation: Family::default(),
            in_flight: Gauge::default(),
            cached: Gauge::default(),
            tcp_connections: Gauge::default(),
            tcp_refused: Counter::default(),
            tcp_closed: Family::default(),
            zone_names: Gauge::default(),
            zone_members: Gauge::default(),
            zone_skipped: Counter::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("dns");
        r.register(
            "queries",
            "Queries answered, by transport, where the answer came from (local, forwarded, \
             cached, error) and rcode",
            self.queries.clone(),
        );
        r.register(
            "malformed",
            "Queries not served because they were malformed, by reason",
            self.malformed.clone(),
        );
        r.register(
            "overloaded",
            "Queries refused because max_in_flight queries were being forwarded",
            self.overloaded.clone(),
        );
        r.register(
            "upstream_attempts",
            "Queries sent upstream, by kind: first, hedge (the first was slow), retry \
             (after a failure), probe (of an upstream out of rotation), check (at start)",
            self.attempts.clone(),
        );
        r.register(
            "upstream_ignored",
            "Upstream replies ignored (forged, late or undecodable), by reason",
            self.ignored.clone(),
        );
        r.register(
            "upstream_errors",
            "Upstream replies with an error rcode (the query went on to the next upstream)",
            self.upstream_errors.clone(),
        );
        r.register(
            "upstream_rtt_seconds",
            "Time for an upstream to answer, by upstream",
            self.rtt.clone(),
        );
        r.register(
            "upstream_failures",
            "Attempts that timed out or lost their connection, by upstream",
            self.failures.clone(),
        );
        r.register(
            "upstream_in_rotation",
            "1 while the shard sends queries to the upstream, 0 while it only probes it",
            self.in_rotation.clone(),
        );
        r.register(
            "in_flight",
            "Queries being forwarded",
            self.in_flight.clone(),
        );
        r.register(
            "cache_entries",
            "Forwarded answers cached",
            self.cached.clone(),
        );
        r.register(
            "tcp_connections",
            "Open TCP client connections",
            self.tcp_connections.clone(),
        );
        r.register(
            "tcp_refused",
            "TCP client connections closed at once because max_tcp_connections were open",
            self.tcp_refused.clone(),
        );
        r.register(
            "tcp_closed",
            "TCP client connections the server closed, by reason",
            self.tcp_closed.clone(),
        );
        r.register(
            "zone_names",
            "User record names in the cluster zone",
            self.zone_names.clone(),
        );
        r.register(
            "zone_members",
            "Members answered under node.<zone> (the reachable ones)",
            self.zone_members.clone(),
        );
        r.register(
            "zone_skipped",
            "Stored records and member names the zone could not serve (malformed)",
            self.zone_skipped.clone(),
        );
    }

    pub fn tcp_closed(&self, why: TcpClose) {
        self.tcp_closed
            .get_or_create(&labels(&[("reason", why.as_str())]))
            .inc();
    }

    /// The RTT histogram of one upstream, to keep and observe into directly.
    pub fn rtt(&self, upstream: SocketAddr, transport: Transport) -> Histogram {
        self.rtt
            .get_or_create(&labels(&[
                ("upstream", &upstream.to_string()),
                ("transport", transport.as_str()),
            ]))
            .clone()
    }
}

impl Default for DnsMetrics {
    fn default() -> Self {
        DnsMetrics::new()
    }
}

/// What one shard has added to the metrics so far.
#[derive(Default)]
pub struct Synced {
    counters: DnsCounters,
    failures: BTreeMap<SocketAddr, u64>,
    in_flight: i64,
    cached: i64,
}

fn add<K: Ord + Clone>(
    now: &BTreeMap<K, u64>,
    before: &BTreeMap<K, u64>,
    mut inc: impl FnMut(&K, u64),
) {
    for (k, v) in now {
        let d = v - before.get(k).copied().unwrap_or(0);
        if d > 0 {
            inc(k, d);
        }
    }
}

impl Synced {
    /// Add to `m` what `server` counted since the last call, shard `shard`'s share.
    pub fn sync(&mut self, m: &DnsMetrics, server: &DnsServer, shard: usize) {
        let c = server.counters();
        let last = &self.counters;
        add(&c.answered, &last.answered, |(t, s, rcode), d| {
            let rcode = rcode_name(*rcode);
            m.queries
                .get_or_create(&labels(&[
                    ("transport", t.as_str()),
                    ("source", s.as_str()),
                    ("rcode", &rcode),
                ]))
                .inc_by(d);
        });
        add(&c.malformed, &last.malformed, |why: &Malformed, d| {
            m.malformed
                .get_or_create(&labels(&[("reason", why.as_str())]))
                .inc_by(d);
        });
        add(&c.ignored, &last.ignored, |why: &Ignored, d| {
            m.ignored
                .get_or_create(&labels(&[("reason", why.as_str())]))
                .inc_by(d);
        });
        for (kind, now, before) in [
            ("first", c.first_tries, last.first_tries),
            ("hedge", c.hedges, last.hedges),
            ("retry", c.retries, last.retries),
            ("probe", c.probes, last.probes),
            ("check", c.checks, last.checks),
        ] {
            if now > before {
                m.attempts
                    .get_or_create(&labels(&[("kind", kind)]))
                    .inc_by(now - before);
            }
        }
        m.overloaded.inc_by(c.overloaded - last.overloaded);
        m.upstream_errors
            .inc_by(c.upstream_errors - last.upstream_errors);
        for u in server.upstreams() {
            let before = self.failures.insert(u.addr, u.failures).unwrap_or(0);
            let addr = u.addr.to_string();
            if u.failures > before {
                m.failures
                    .get_or_create(&labels(&[("upstream", &addr)]))
                    .inc_by(u.failures - before);
            }
            m.in_rotation
                .get_or_create(&labels(&[
                    ("upstream", &addr),
                    ("shard", &shard.to_string()),
                ]))
                .set(i64::from(u.is_up()));
        }
        let in_flight = server.in_flight() as i64;
        m.in_flight.inc_by(in_flight - self.in_flight);
        self.in_flight = in_flight;
        let cached = server.cached() as i64;
        m.cached.inc_by(cached - self.cached);
        self.cached = cached;
        self.counters = c.clone();
    }
}
