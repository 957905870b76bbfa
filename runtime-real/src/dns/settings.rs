//! `hawser agent`'s DNS settings: the `--dns*` flags and the `[dns]` table of the config
//! file, checked and turned into what the DNS service runs with.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use hawser_core::time::Duration as CoreDuration;
use hawser_dataplane::dns::{DnsConfig, ForwardZone};
use hickory_proto::rr::Name;
use serde::Deserialize;

use crate::config::{ConfigError, bad};

/// The DNS flags of `hawser agent` (each also in the `[dns]` table).
#[derive(Args, Debug, Default)]
pub struct DnsArgs {
    /// Serve DNS on this address, UDP and TCP (ip or ip:port; the port defaults to 53).
    /// Off unless given.
    #[arg(long = "dns", value_name = "ADDR")]
    pub dns_listen: Option<String>,
    /// Upstreams for names outside the cluster zone, comma-separated (ip or ip:port).
    #[arg(long = "dns-upstream", value_delimiter = ',', value_name = "ADDR,...")]
    pub dns_upstreams: Option<Vec<String>>,
    /// The cluster zone [default: hawser.].
    #[arg(long = "dns-zone", value_name = "ZONE")]
    pub dns_zone: Option<String>,
    /// Send a domain to its own upstreams: DOMAIN=ADDR[,ADDR...]; repeatable. The longest
    /// matching domain wins.
    #[arg(long = "dns-forward", value_name = "DOMAIN=ADDR,...")]
    pub dns_forward: Vec<String>,
}

impl DnsArgs {
    pub fn is_empty(&self) -> bool {
        self.dns_listen.is_none()
            && self.dns_upstreams.is_none()
            && self.dns_zone.is_none()
            && self.dns_forward.is_empty()
    }
}

/// The `[dns]` table: the flags' settings and the tuning knobs (times in milliseconds).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFile {
    listen: Option<String>,
    upstreams: Option<Vec<String>>,
    zone: Option<String>,
    #[serde(default)]
    forward: Vec<ForwardFile>,
    node_ttl: Option<u32>,
    negative_ttl: Option<u32>,
    hedge_initial_ms: Option<u64>,
    hedge_min_ms: Option<u64>,
    hedge_max_ms: Option<u64>,
    attempt_timeout_min_ms: Option<u64>,
    attempt_timeout_max_ms: Option<u64>,
    query_timeout_ms: Option<u64>,
    fail_threshold: Option<u32>,
    probe_interval_ms: Option<u64>,
    max_in_flight: Option<usize>,
    /// 0 turns the cache off.
    cache_entries: Option<usize>,
    cache_max_ttl: Option<u32>,
    udp_payload: Option<u16>,
    tcp_idle_ms: Option<u64>,
    max_tcp_connections: Option<usize>,
    /// UDP sockets (and tasks) on the address; default: one per core.
    shards: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardFile {
    domain: String,
    upstreams: Vec<String>,
}

/// What the agent's DNS service runs with.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    /// Where to serve; `None`: this agent serves no DNS (records can still be written).
    pub listen: Option<SocketAddr>,
    pub server: DnsConfig,
    /// A TCP client (or upstream connection) idle this long is closed.
    pub tcp_idle: Duration,
    pub max_tcp_connections: usize,
    pub shards: usize,
}

/// An address with an optional port (53 if absent).
fn parse_dns_addr(setting: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip = s.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            bad(
                setting,
                format!("{s:?} is not an ip or ip:port address (e.g. 1.1.1.1 or 127.0.0.1:5353)"),
            )
        })
}

fn parse_zone(setting: &str, s: &str) -> Result<Name, ConfigError> {
    let mut name = Name::from_ascii(s.trim())
        .map_err(|e| bad(setting, format!("{s:?} is not a domain name: {e}")))?;
    name.set_fqdn(true);
    if name.is_root() {
        return Err(bad(setting, "the root cannot be the cluster zone"));
    }
    Ok(name.to_lowercase())
}

fn addrs(setting: &str, list: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    list.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| parse_dns_addr(setting, s))
        .collect()
}

/// `DOMAIN=ADDR[,ADDR...]`.
fn parse_forward(s: &str) -> Result<ForwardZone, ConfigError> {
    let Some((domain, list)) = s.split_once('=') else {
        return Err(bad(
            "dns-forward",
            format!("{s:?}: expected DOMAIN=ADDR[,ADDR...]"),
        ));
    };
    let list: Vec<String> = list.split(',').map(str::to_owned).collect();
    Ok(ForwardZone {
        domain: parse_zone("dns-forward", domain)?,
        upstreams: addrs("dns-forward", &list)?,
    })
}

fn ms(v: Option<u64>, default: CoreDuration) -> CoreDuration {
    v.map_or(default, CoreDuration::from_millis)
}

impl DnsSettings {
    /// Merge the flags over the `[dns]` table and check the result.
    pub fn load(args: DnsArgs, file: DnsFile) -> Result<DnsSettings, ConfigError> {
        let d = DnsConfig::default();
        let listen = match args.dns_listen.or(file.listen) {
            Some(s) => Some(parse_dns_addr("dns", &s)?),
            None => None,
        };
        let zone = match args.dns_zone.or(file.zone) {
            Some(z) => parse_zone("dns.zone", &z)?,
            None => d.zone.clone(),
        };
        let upstreams = addrs(
            "dns.upstreams",
            &args.dns_upstreams.or(file.upstreams).unwrap_or_default(),
        )?;
        let mut forward_zones = Vec::new();
        for f in &file.forward {
            forward_zones.push(ForwardZone {
                domain: parse_zone("dns.forward", &f.domain)?,
                upstreams: addrs("dns.forward", &f.upstreams)?,
            });
        }
        for f in &args.dns_forward {
            forward_zones.push(parse_forward(f)?);
        }
        let server = DnsConfig {
            zone,
            upstreams,
            forward_zones,
            node_ttl: file.node_ttl.unwrap_or(d.node_ttl),
            negative_ttl: file.negative_ttl.unwrap_or(d.negative_ttl),
            hedge_initial: ms(file.hedge_initial_ms, d.hedge_initial),
            hedge_min: ms(file.hedge_min_ms, d.hedge_min),
            hedge_max: ms(file.hedge_max_ms, d.hedge_max),
            attempt_timeout_min: ms(file.attempt_timeout_min_ms, d.attempt_timeout_min),
            attempt_timeout_max: ms(file.attempt_timeout_max_ms, d.attempt_timeout_max),
            query_timeout: ms(file.query_timeout_ms, d.query_timeout),
            fail_threshold: file.fail_threshold.unwrap_or(d.fail_threshold),
            probe_interval: ms(file.probe_interval_ms, d.probe_interval),
            max_in_flight: file.max_in_flight.unwrap_or(d.max_in_flight),
            cache_entries: file.cache_entries.unwrap_or(d.cache_entries),
            cache_max_ttl: file.cache_max_ttl.unwrap_or(d.cache_max_ttl),
            udp_payload: file.udp_payload.unwrap_or(d.udp_payload),
        };
        server
            .validate()
            .map_err(|e| bad(&format!("dns.{}", e.setting), e.why))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = file.shards.unwrap_or(cores);
        if shards == 0 || shards > 64 {
            return Err(bad("dns.shards", "must be 1..=64"));
        }
        let max_tcp_connections = file.max_tcp_connections.unwrap_or(256);
        if max_tcp_connections == 0 {
            return Err(bad("dns.max_tcp_connections", "must be at least 1"));
        }
        let tcp_idle = Duration::from_millis(file.tcp_idle_ms.unwrap_or(10_000));
        if tcp_idle.is_zero() {
            return Err(bad("dns.tcp_idle_ms", "must be at least 1"));
        }
        if listen.is_none() && (!server.upstreams.is_empty() || !server.forward_zones.is_empty()) {
            return Err(bad(
                "dns",
                "upstreams are set but DNS is not served: add --dns ADDR (e.g. 127.0.0.1:53)",
            ));
        }
        Ok(DnsSettings {
            listen,
            server,
            tcp_idle,
            max_tcp_connections,
            shards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: DnsArgs, file: &str) -> Result<DnsSettings, String> {
        let file: DnsFile = toml::from_str(file).map_err(|e| e.to_string())?;
        DnsSettings::load(args, file).map_err(|e| e.to_string())
    }

    #[test]
    fn flags_and_file_make_one_setting() {
        let s = load(
            DnsArgs {
                dns_listen: Some("127.0.0.1".into()),
                dns_upstreams: Some(vec!["1.1.1.1".into(), "[2001:db8::1]:5353".into()]),
                dns_forward: vec!["corp.example=198.51.100.1,198.51.100.2:5353".into()],
                ..DnsArgs::default()
            },
            "zone = \"Cluster.Example\"\nhedge_min_ms = 3\nshards = 2\n\
             [[forward]]\ndomain = \"lab.example.\"\nupstreams = [\"203.0.113.1\"]\n",
        )
        .unwrap();
        assert_eq!(s.listen, Some("127.0.0.1:53".parse().unwrap()));
        assert_eq!(s.server.zone.to_ascii(), "cluster.example.");
        assert_eq!(s.server.upstreams[0], "1.1.1.1:53".parse().unwrap());
        assert_eq!(s.server.upstreams[1], "[2001:db8::1]:5353".parse().unwrap());
        assert_eq!(s.server.forward_zones.len(), 2);
        assert_eq!(s.server.forward_zones[1].upstreams.len(), 2);
        assert_eq!(s.server.hedge_min, CoreDuration::from_millis(3));
        assert_eq!(s.shards, 2);
    }

    #[test]
    fn bad_settings_are_named() {
        let e = load(
            DnsArgs {
                dns_listen: Some("localhost".into()),
                ..DnsArgs::default()
            },
            "",
        )
        .unwrap_err();
        assert!(e.contains("`dns`"), "{e}");
        let e = load(
            DnsArgs {
                dns_forward: vec!["nodomain".into()],
                dns_listen: Some("127.0.0.1".into()),
                ..DnsArgs::default()
            },
            "",
        )
        .unwrap_err();
        assert!(e.contains("dns-forward"), "{e}");
        let e = load(DnsArgs::default(), "hedge_min_ms = 500\n").unwrap_err();
        assert!(e.contains("dns.hedge_min_ms"), "{e}");
        let e = load(DnsArgs::default(), "upstreams = [\"1.1.1.1\"]\n").unwrap_err();
        assert!(e.contains("--dns ADDR"), "{e}");
        assert!(
            load(DnsArgs::default(), "colour = 1\n")
                .unwrap_err()
                .contains("colour")
        );
    }
}
