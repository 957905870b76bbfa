//! `hawser agent` settings: flags, a TOML file with the same settings, and validation.
//!
//! Flags override the file. Everything is checked before the agent touches the network
//! or the disk, and a refusal names the setting and says what is wrong, so a typo costs
//! one read of one line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use hawser_core::membership::MembershipConfig;
use hawser_core::{Addr, Cookie, LinkConfig};
use serde::Deserialize;

use crate::dns::settings::{DnsArgs, DnsFile, DnsSettings};
use crate::driver::{DriverConfig, NodeSpec};

/// Where the admin API listens unless told otherwise: loopback only, since it has no
/// authentication of its own.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:7601";

/// The smallest command that starts an agent, shown to someone who ran it without one.
pub const MINIMAL_COMMAND: &str = "hawser agent --name n1 --listen 127.0.0.1:7600 \
     --data-dir /tmp/hawser-n1 --cookie s3cret";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `hawser agent` flags. Each one can also be set in the `--config` file under the same
/// name (with `_` for `-`).
#[derive(Args, Debug, Default)]
pub struct AgentArgs {
    /// This node's name, unique in the cluster (its id is derived from it).
    #[arg(long)]
    pub name: Option<String>,
    /// Address to accept peer links on (ip:port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Address peers should dial, when it is not the listen address (e.g. listening on
    /// 0.0.0.0).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Contacts to join through, comma-separated (ip:port, as they advertise). Give
    /// every node the same list.
    #[arg(long, value_delimiter = ',')]
    pub join: Option<Vec<String>>,
    /// Directory of this node's durable state (one agent per directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The cluster cookie (shared secret). Prefer --cookie-file: arguments are visible
    /// to other local users.
    #[arg(long, conflicts_with = "cookie_file")]
    pub cookie: Option<String>,
    /// A file holding the cluster cookie (surrounding whitespace ignored).
    #[arg(long)]
    pub cookie_file: Option<PathBuf>,
    /// Address of the admin HTTP API [default: 127.0.0.1:7601].
    #[arg(long)]
    pub admin: Option<String>,
    /// A TOML file with any of these settings; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log format on stderr (filter with RUST_LOG).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(flatten)]
    pub dns: DnsArgs,
    /// Program this node's kernel for the L4 load balancer [default: off]. More
    /// settings in the config file's `[lb]` table.
    #[arg(long, value_enum)]
    pub lb: Option<LbBackend>,
}

impl AgentArgs {
    /// No setting at all: the user probably wants to be told how to start.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.listen.is_none()
            && self.advertise.is_none()
            && self.join.is_none()
            && self.data_dir.is_none()
            && self.cookie.is_none()
            && self.cookie_file.is_none()
            && self.admin.is_none()
            && self.config.is_none()
            && self.log_format.is_none()
            && self.dns.is_empty()
            && self.lb.is_none()
    }
}

/// The config file: the flags' settings, plus tuning tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    name: Option<String>,
    listen: Option<String>,
    advertise: Option<String>,
    join: Option<Vec<String>>,
    data_dir: Option<PathBuf>,
    cookie: Option<String>,
    cookie_file: Option<PathBuf>,
    admin: Option<String>,
    log_format: Option<LogFormat>,
    /// Any `MembershipConfig` field, by name.
    membership: Option<MembershipConfig>,
    transport: Option<TransportFile>,
    dns: Option<DnsFile>,
    lb: Option<LbFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportFile {
    connect_timeout_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
    send_queue_bytes: Option<usize>,
    max_connections: Option<usize>,
    max_frame: Option<usize>,
}

/// A validated agent configuration.
#[derive(Debug)]
pub struct AgentConfig {
    pub node: NodeSpec,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin: SocketAddr,
    pub log_format: LogFormat,
    pub driver: DriverConfig,
    pub dns: DnsSettings,
    pub lb: LbConfig,
}

/// A refused configuration: the message names the setting.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn bad(setting: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("invalid setting `{setting}`: {why}"))
}

/// A socket address peers (or clients) can dial: ip:port with a real port.
fn parse_addr(setting: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    let addr: SocketAddr = s.parse().map_err(|_| {
        bad(
            setting,
            format!("{s:?} is not an ip:port address (e.g. 127.0.0.1:7600)"),
        )
    })?;
    if addr.port() == 0 {
        return Err(bad(setting, format!("{s:?}: port 0 is not a fixed port")));
    }
    Ok(addr)
}

impl AgentConfig {
    /// Merge the file named by `--config` (if any) under the flags, and validate.
    pub fn load(args: AgentArgs) -> Result<AgentConfig, ConfigError> {
        let file = match &args.config {
            None => FileConfig::default(),
            Some(path) => read_file(path)?,
        };
        let name = args
            .name
            .or(file.name)
            .ok_or_else(|| bad("name", "required (e.g. --name n1)"))?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad(
                "name",
                format!("{name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        let listen_s = args
            .listen
            .or(file.listen)
            .ok_or_else(|| bad("listen", "required (e.g. --listen 127.0.0.1:7600)"))?;
        let listen = parse_addr("listen", &listen_s)?;
        let advertise = match args.advertise.or(file.advertise) {
            Some(a) => parse_addr("advertise", &a)?,
            None => listen,
        };
        if advertise.ip().is_unspecified() {
            return Err(bad(
                "advertise",
                format!(
                    "{advertise} cannot be dialled by peers; when listening on {}, set \
                     --advertise to this host's address",
                    advertise.ip()
                ),
            ));
        }
        let mut contacts = Vec::new();
        for j in args.join.or(file.join).unwrap_or_default() {
            let j = j.trim();
            if j.is_empty() {
                continue;
            }
            let a = parse_addr("join", j)?;
            contacts.push(Addr::new(a.to_string()).expect("a socket address is a valid Addr"));
        }
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .ok_or_else(|| bad("data_dir", "required (e.g. --data-dir /var/lib/hawser)"))?;
        let cookie = match (
            args.cookie.or(file.cookie),
            args.cookie_file.or(file.cookie_file),
        ) {
            (Some(_), Some(_)) => {
                return Err(bad("cookie", "give either cookie or cookie_file, not both"));
            }
            (None, None) => {
                return Err(bad(
                    "cookie",
                    "required: --cookie STR or --cookie-file FILE (every node of a cluster \
                     needs the same one)",
                ));
            }
            (Some(c), None) => {
                Cookie::new(c.into_bytes()).ok_or_else(|| bad("cookie", "must not be empty"))?
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| bad("cookie_file", format!("{}: {e}", path.display())))?;
                Cookie::new(text.trim().as_bytes().to_vec())
                    .ok_or_else(|| bad("cookie_file", format!("{} is empty", path.display())))?
            }
        };
        let admin = parse_admin(&args.admin.or(file.admin).unwrap_or(DEFAULT_ADMIN.into()))?;
        let membership = file.membership.unwrap_or_default();
        membership.validate().map_err(|e| bad("membership", e))?;
        let driver = driver_config(file.transport.unwrap_or_default())?;
        let dns = DnsSettings::load(args.dns, file.dns.unwrap_or_default())?;
        let lb = lb_config(args.lb, file.lb.unwrap_or_default())?;
        Ok(AgentConfig {
            node: NodeSpec {
                name,
                advertise: Addr::new(advertise.to_string()).expect("a socket address fits"),
                cookie,
                contacts,
                membership,
                max_frame: driver.max_frame,
            },
            listen,
            data_dir,
            admin,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            driver,
            dns,
            lb,
        })
    }
}

/// The admin address may use port 0 (the agent logs the port it got).
fn parse_admin(s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        bad(
            "admin",
            format!("{s:?} is not an ip:port address (e.g. {DEFAULT_ADMIN})"),
        )
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad("config", format!("{}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| bad("config", format!("{}: {e}", path.display())))
}

fn driver_config(t: TransportFile) -> Result<DriverConfig, ConfigError> {
    let d = DriverConfig::default();
    let positive = |name: &str, v: u64| {
        if v == 0 {
            Err(bad(&format!("transport.{name}"), "must be greater than 0"))
        } else {
            Ok(v)
        }
    };
    let config = DriverConfig {
        connect_timeout: match t.connect_timeout_ms {
            Some(ms) => Duration::from_millis(positive("connect_timeout_ms", ms)?),
            None => d.connect_timeout,
        },
        write_timeout: match t.write_timeout_ms {
            Some(ms) => Duration::from_millis(positive("write_timeout_ms", ms)?),
            None => d.write_timeout,
        },
        send_queue_bytes: match t.send_queue_bytes {
            Some(b) => positive("send_queue_bytes", b as u64)? as usize,
            None => d.send_queue_bytes,
        },
        max_connections: match t.max_connections {
            Some(n) => positive("max_connections", n as u64)? as usize,
            None => d.max_connections,
        },
        max_frame: t.max_frame.unwrap_or(d.max_frame),
    };
    LinkConfig {
        max_frame: config.max_frame,
        ..LinkConfig::default()
    }
    .validate()
    .map_err(|e| bad("transport.max_frame", e))?;
    if config.send_queue_bytes < config.max_frame {
        return Err(bad(
            "transport.send_queue_bytes",
            format!(
                "{} is below max_frame ({}): one full frame must fit",
                config.send_queue_bytes, config.max_frame
            ),
        ));
    }
    Ok(config)
}

// ---- The L4 load balancer's settings (`--lb`, `[lb]`) ----

/// Which kernel backend programs the load balancer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LbBackend {
    /// No load balancer: VIPs can still be published and listed.
    #[default]
    Off,
    /// nftables DNAT rules (needs the `nft` program).
    Nftables,
    /// IPVS over generic netlink (needs IPVS in the kernel).
    Ipvs,
}

/// `[lb]` in the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LbFile {
    backend: Option<LbBackend>,
    /// Re-read and repair the kernel this often even when nothing changed.
    interval_ms: Option<u64>,
    /// The interface that holds the VIP addresses.
    interface: Option<String>,
    /// Where named VIPs take their addresses ("" for none in that family).
    range4: Option<String>,
    range6: Option<String>,
    /// The nft program (nftables backend).
    nft: Option<String>,
}

/// The load balancer's validated settings.
#[derive(Clone, Debug)]
pub struct LbConfig {
    pub backend: LbBackend,
    pub interval: Duration,
    pub interface: String,
    pub ranges: hawser_dataplane::lb::NameRanges,
    pub nft: String,
}

fn lb_config(flag: Option<LbBackend>, f: LbFile) -> Result<LbConfig, ConfigError> {
    let defaults = hawser_dataplane::lb::NameRanges::default();
    let range = |name: &str, s: Option<String>, default, v4: bool| match s.as_deref() {
        None => Ok(default),
        Some("") => Ok(None),
        Some(text) => match text.parse::<hawser_dataplane::lb::Prefix>() {
            Ok(p) if p.is_ipv4() == v4 => Ok(Some(p)),
            Ok(_) => Err(bad(
                name,
                format!("{text:?} is not an IPv{} range", if v4 { 4 } else { 6 }),
            )),
            Err(e) => Err(bad(name, e)),
        },
    };
    let interval_ms = f.interval_ms.unwrap_or(1000);
    if !(100..=600_000).contains(&interval_ms) {
        return Err(bad(
            "lb.interval_ms",
            format!("{interval_ms}: use 100 to 600000"),
        ));
    }
    let interface = f.interface.unwrap_or_else(|| "hawser-vip".into());
    if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
        return Err(bad(
            "lb.interface",
            format!("{interface:?}: use 1 to 15 characters, no '/' or spaces"),
        ));
    }
    Ok(LbConfig {
        backend: flag.or(f.backend).unwrap_or_default(),
        interval: Duration::from_millis(interval_ms),
        interface,
        ranges: hawser_dataplane::lb::NameRanges {
            v4: range("lb.range4", f.range4, defaults.v4, true)?,
            v6: range("lb.range6", f.range6, defaults.v6, false)?,
        },
        nft: f.nft.unwrap_or_else(|| "nft".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AgentArgs {
        AgentArgs {
            name: Some("n1".into()),
            listen: Some("127.0.0.1:7600".into()),
            data_dir: Some("/tmp/x".into()),
            cookie: Some("c".into()),
            ..AgentArgs::default()
        }
    }

    fn err(a: AgentArgs) -> String {
        AgentConfig::load(a).unwrap_err().to_string()
    }

    #[test]
    fn flags_alone_are_enough() {
        let c = AgentConfig::load(args()).unwrap();
        assert_eq!(c.node.advertise.as_str(), "127.0.0.1:7600");
        assert_eq!(c.admin.to_string(), DEFAULT_ADMIN);
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn errors_name_the_setting() {
        assert!(
            err(AgentArgs {
                name: None,
                ..args()
            })
            .contains("`name`")
        );
        let e = err(AgentArgs {
            listen: Some("localhost".into()),
            ..args()
        });
        assert!(e.contains("`listen`") && e.contains("ip:port"), "{e}");
        let e = err(AgentArgs {
            join: Some(vec!["127.0.0.1:0".into()]),
            ..args()
        });
        assert!(e.contains("`join`"), "{e}");
        let e = err(AgentArgs {
            listen: Some("0.0.0.0:7600".into()),
            ..args()
        });
        assert!(e.contains("`advertise`"), "{e}");
        let e = err(AgentArgs {
            cookie: None,
            ..args()
        });
        assert!(e.contains("`cookie`"), "{e}");
    }

    #[test]
    fn the_file_fills_in_and_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "name = \"from-file\"\nlisten = \"127.0.0.1:7700\"\ndata_dir = \"/tmp/y\"\n\
             cookie = \"c\"\njoin = [\"127.0.0.1:7701\"]\n\
             [membership]\nactive_view = 5\n[transport]\nmax_connections = 10\n",
        )
        .unwrap();
        let c = AgentConfig::load(AgentArgs {
            config: Some(path.clone()),
            name: Some("from-flag".into()),
            ..AgentArgs::default()
        })
        .unwrap();
        assert_eq!(c.node.name, "from-flag");
        assert_eq!(c.listen.to_string(), "127.0.0.1:7700");
        assert_eq!(c.node.contacts.len(), 1);
        assert_eq!(c.node.membership.active_view, 5);
        assert_eq!(c.driver.max_connections, 10);
    }

    #[test]
    fn bad_files_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            err(AgentArgs {
                config: Some(path.clone()),
                ..args()
            })
        };
        assert!(load("colour = \"blue\"\n").contains("colour"));
        assert!(load("[membership]\nactive_view = 0\n").contains("active_view"));
        assert!(load("[transport]\nmax_connections = 0\n").contains("transport.max_connections"));
        assert!(load("[lb]\nrange4 = \"fd01::/64\"\n").contains("lb.range4"));
        assert!(load("[lb]\nrange6 = \"x\"\n").contains("lb.range6"));
        assert!(load("[lb]\ninterval_ms = 5\n").contains("lb.interval_ms"));
        assert!(load("[lb]\nbackend = \"iptables\"\n").contains("iptables"));
    }

    #[test]
    fn the_load_balancer_is_off_unless_asked_for() {
        let c = AgentConfig::load(args()).unwrap();
        assert_eq!(c.lb.backend, LbBackend::Off);
        assert_eq!(c.lb.interface, "hawser-vip");
        let c = AgentConfig::load(AgentArgs {
            lb: Some(LbBackend::Nftables),
            ..args()
        })
        .unwrap();
        assert_eq!(c.lb.backend, LbBackend::Nftables);
    }
}
