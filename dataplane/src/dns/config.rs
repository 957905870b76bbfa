//! Settings of the DNS server, with defaults chosen for a server on every node that its
//! own processes use: answers from the cluster zone at once, and a dead upstream that
//! costs a client a few milliseconds at most.

use std::fmt;
use std::net::SocketAddr;

use hawser_core::time::Duration;
use hickory_proto::rr::Name;

/// Where names outside the cluster zone go: the upstreams for a domain (and everything
/// under it). The longest matching domain wins; the root holds the default upstreams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardZone {
    pub domain: Name,
    pub upstreams: Vec<SocketAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// The cluster zone this server is authoritative for (absolute, e.g. `hawser.`).
    pub zone: Name,
    /// Upstreams for everything outside the cluster zone and the forward zones.
    pub upstreams: Vec<SocketAddr>,
    /// Per-domain upstreams.
    pub forward_zones: Vec<ForwardZone>,
    /// TTL of `<node>.node.<zone>` answers. Short: membership changes in well under a
    /// second, and a client should not hold an unreachable node's address for long.
    pub node_ttl: u32,
    /// The SOA minimum: how long clients cache "no such name" in the zone. Short, so a
    /// name added a moment after a miss resolves at once (dcos-dns users waited 5 s).
    pub negative_ttl: u32,
    /// Hedge delay for an upstream whose latency is not known yet.
    pub hedge_initial: Duration,
    /// Bounds of the adaptive hedge delay (a multiple of the upstream's smoothed RTT).
    pub hedge_min: Duration,
    pub hedge_max: Duration,
    /// An attempt unanswered for 8 smoothed RTTs, within these bounds (the upper one
    /// while the RTT is not known), counts as a failure of its upstream.
    pub attempt_timeout_min: Duration,
    pub attempt_timeout_max: Duration,
    /// A client query with no good answer by then gets SERVFAIL.
    pub query_timeout: Duration,
    /// Failures in a row after which an upstream is taken out of rotation.
    pub fail_threshold: u32,
    /// While out of rotation, an upstream gets a copy of a live query at most this often;
    /// its first good answer brings it back.
    pub probe_interval: Duration,
    /// Forwarded queries in flight at once; beyond, clients get REFUSED.
    pub max_in_flight: usize,
    /// Forwarded answers cached (0 turns the cache off).
    pub cache_entries: usize,
    /// Longest time an answer stays cached, whatever its TTL.
    pub cache_max_ttl: u32,
    /// The EDNS payload size this server offers and honours over UDP.
    pub udp_payload: u16,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zone: Name::from_ascii("hawser.").expect("a valid name"),
            upstreams: Vec::new(),
            forward_zones: Vec::new(),
            node_ttl: 5,
            negative_ttl: 2,
            hedge_initial: Duration::from_millis(5),
            hedge_min: Duration::from_millis(2),
            hedge_max: Duration::from_millis(200),
            attempt_timeout_min: Duration::from_millis(200),
            attempt_timeout_max: Duration::from_millis(1500),
            query_timeout: Duration::from_millis(2500),
            fail_threshold: 3,
            probe_interval: Duration::from_millis(20),
            max_in_flight: 4096,
            cache_entries: 10_000,
            cache_max_ttl: 3600,
            udp_payload: 1232,
        }
    }
}

/// A refused setting, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfigError {
    pub setting: &'static str,
    pub why: String,
}

impl fmt::Display for DnsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dns.{}: {}", self.setting, self.why)
    }
}

impl std::error::Error for DnsConfigError {}

impl DnsConfig {
    pub fn validate(&self) -> Result<(), DnsConfigError> {
        let bad = |setting, why: String| Err(DnsConfigError { setting, why });
        if !self.zone.is_fqdn() || self.zone.is_root() {
            return bad(
                "zone",
                format!("{}: give a domain such as hawser.", self.zone),
            );
        }
        for f in &self.forward_zones {
            if f.upstreams.is_empty() {
                return bad("forward", format!("{} has no upstreams", f.domain));
            }
            if self.zone.zone_of(&f.domain) {
                return bad(
                    "forward",
                    format!("{} is inside the cluster zone {}", f.domain, self.zone),
                );
            }
        }
        if self.hedge_min > self.hedge_max {
            return bad("hedge_min_ms", "must not exceed hedge_max_ms".into());
        }
        if self.hedge_min == Duration::ZERO {
            return bad("hedge_min_ms", "must be at least 1".into());
        }
        if self.attempt_timeout_min > self.attempt_timeout_max
            || self.attempt_timeout_min == Duration::ZERO
        {
            return bad(
                "attempt_timeout_min_ms",
                "must be at least 1 and at most attempt_timeout_max_ms".into(),
            );
        }
        if self.query_timeout < self.hedge_max {
            return bad("query_timeout_ms", "must be at least hedge_max_ms".into());
        }
        if self.fail_threshold == 0 {
            return bad("fail_threshold", "must be at least 1".into());
        }
        if self.probe_interval == Duration::ZERO {
            return bad("probe_interval_ms", "must be at least 1".into());
        }
        if self.max_in_flight == 0 || self.max_in_flight > 1 << 16 {
            return bad("max_in_flight", "must be 1..=65536".into());
        }
        if self.udp_payload < 512 {
            return bad("udp_payload", "must be at least 512".into());
        }
        Ok(())
    }

    /// The upstreams for `name`: those of the longest forward zone holding it, else the
    /// default ones.
    pub fn upstreams_for(&self, name: &Name) -> &[SocketAddr] {
        self.forward_zones
            .iter()
            .filter(|f| f.domain.zone_of(name))
            .max_by_key(|f| f.domain.num_labels())
            .map_or(&self.upstreams, |f| &f.upstreams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn the_longest_forward_zone_wins() {
        let a: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:53".parse().unwrap();
        let c: SocketAddr = "127.0.0.3:53".parse().unwrap();
        let config = DnsConfig {
            upstreams: vec![a],
            forward_zones: vec![
                ForwardZone {
                    domain: name("corp.example."),
                    upstreams: vec![b],
                },
                ForwardZone {
                    domain: name("lab.corp.example."),
                    upstreams: vec![c],
                },
            ],
            ..DnsConfig::default()
        };
        config.validate().unwrap();
        assert_eq!(config.upstreams_for(&name("x.example.")), &[a]);
        assert_eq!(config.upstreams_for(&name("x.corp.example.")), &[b]);
        assert_eq!(config.upstreams_for(&name("CORP.example.")), &[b]);
        assert_eq!(config.upstreams_for(&name("x.lab.corp.example.")), &[c]);
        assert_eq!(config.upstreams_for(&name("xlab.corp.example.")), &[b]);
    }

    #[test]
    fn bad_settings_are_named() {
        let check = |c: DnsConfig| c.validate().unwrap_err().setting;
        assert_eq!(
            check(DnsConfig {
                zone: Name::root(),
                ..DnsConfig::default()
            }),
            "zone"
        );
        assert_eq!(
            check(DnsConfig {
                forward_zones: vec![ForwardZone {
                    domain: name("x.hawser."),
                    upstreams: vec!["127.0.0.1:53".parse().unwrap()],
                }],
                ..DnsConfig::default()
            }),
            "forward"
        );
        assert_eq!(
            check(DnsConfig {
                max_in_flight: 0,
                ..DnsConfig::default()
            }),
            "max_in_flight"
        );
    }
}
