//! `hawser agent` settings: flags, a TOML file with the same settings, and validation.
//!
//! Flags override the file. Everything is checked before the agent touches the network
//! or the disk, and a refusal names the setting and says what is wrong, so a typo costs
//! one read of one line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use hawser_core::membership::{MembershipConfig, Profile};
use hawser_core::{Addr, Cookie, LinkConfig};
use serde::Deserialize;

use crate::dns::settings::{DnsArgs, DnsFile, DnsSettings};
use crate::driver::{DriverConfig, NodeSpec};
use crate::overlay::settings::{OverlayArgs, OverlayConfig, OverlayFile};
use crate::tls::Tls;

/// Where the admin API listens unless told otherwise: loopback only, since it has no
/// authentication of its own.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:7601";

/// The smallest command that starts an agent, shown to someone who ran it without one.
pub const MINIMAL_COMMAND: &str = "hawser agent --name n1 --listen 127.0.0.1:7600 \
     --data-dir /tmp/hawser-n1 --cookie-file cookie   (make one: umask 077; hawser keygen > cookie)";

/// The shortest cookie accepted without `--allow-weak-cookie`, in bytes. The handshake
/// (SPAKE2) gives an attacker no offline test of a guess, but every connection is one
/// online guess: 16 bytes of anything but a word keep that hopeless. `hawser keygen`
/// prints 64 hex digits (256 bits).
pub const MIN_COOKIE_LEN: usize = 16;

/// How long a failed or left member is kept before it is reaped, unless `--reap-after`
/// says otherwise: a day, as serf does, so a member that failed overnight is still
/// listed (and probed for) in the morning.
pub const DEFAULT_REAP_AFTER: Duration = Duration::from_secs(86_400);

/// The longest `--reap-after` (global membership's bound on its timers).
const MAX_REAP_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// A duration as operators write it: a whole number and a unit, `s`, `m`, `h` or `d`
/// (`90s`, `30m`, `24h`, `7d`).
pub fn parse_duration(setting: &str, s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match n.parse::<u64>() {
        Ok(n) if unit_secs > 0 => Ok(Duration::from_secs(n.saturating_mul(unit_secs))),
        _ => Err(bad(
            setting,
            format!("{s:?}: give a whole number and a unit s, m, h or d (e.g. 24h)"),
        )),
    }
}

/// A new cluster cookie: 256 bits from the OS as 64 hex digits (`hawser keygen`).
pub fn keygen() -> Result<String, String> {
    Ok(crate::driver::os_seed()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

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
    /// A file holding the cluster cookie (surrounding whitespace ignored). `hawser
    /// keygen` makes one; keep it readable by its owner only.
    #[arg(long)]
    pub cookie_file: Option<PathBuf>,
    /// Accept a cookie shorter than 16 bytes (each connection is one online guess at it).
    #[arg(long)]
    pub allow_weak_cookie: bool,
    /// Mutual TLS between agents: this node's certificate chain (PEM), whose one DNS
    /// name is its --name. With --tls-key and --tls-ca; the cookie is then optional.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// This node's private key (PEM), for --tls-cert.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// The CA (PEM) every peer's certificate must chain to.
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Address of the admin HTTP API [default: 127.0.0.1:7601]. Anything but loopback
    /// needs --admin-token-file.
    #[arg(long)]
    pub admin: Option<String>,
    /// A file holding the admin API's bearer token (at least 16 bytes; `hawser keygen`
    /// makes one): every request must then carry `Authorization: Bearer TOKEN`.
    #[arg(long)]
    pub admin_token_file: Option<PathBuf>,
    /// Host names (besides IP addresses and localhost) that admin requests may give in
    /// their Host header, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub admin_host: Option<Vec<String>>,
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
    #[command(flatten)]
    pub overlay: OverlayArgs,
    /// How long a failed or left member stays in `hawser members` before it is reaped
    /// (forgotten), e.g. 30m, 24h, 7d [default: 24h]. Until then a failed member is
    /// still probed, in case it comes back.
    #[arg(long, value_name = "DURATION")]
    pub reap_after: Option<String>,
    /// Failure detector profile [default: lan]. lan: each node pings one neighbour
    /// (the one heard from longest ago) about once a second, and a silent neighbour is
    /// suspect for 2.5 s before it is marked failed (a pause of up to 2 s is only
    /// suspected). fast: every link pinged from both ends every 400 ms, a silent
    /// failure known within ~1.2 s, but a 1–2 s pause is marked failed and an idle
    /// agent sends several times the bytes. The config file's [membership] fields
    /// override the profile's (there, `profile = "fast"` also names it). `quiet` is
    /// accepted as lan's former name.
    #[arg(long, value_name = "lan|fast")]
    pub profile: Option<Profile>,
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
            && !self.allow_weak_cookie
            && self.tls_cert.is_none()
            && self.tls_key.is_none()
            && self.tls_ca.is_none()
            && self.admin.is_none()
            && self.admin_token_file.is_none()
            && self.admin_host.is_none()
            && self.config.is_none()
            && self.log_format.is_none()
            && self.dns.is_empty()
            && self.lb.is_none()
            && self.overlay.is_empty()
            && self.reap_after.is_none()
            && self.profile.is_none()
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
    allow_weak_cookie: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    admin: Option<String>,
    admin_token_file: Option<PathBuf>,
    admin_hosts: Option<Vec<String>>,
    log_format: Option<LogFormat>,
    /// Limits of the admin API.
    admin_api: Option<AdminApiFile>,
    /// Any `MembershipConfig` field, by name, and `profile` (see `--profile`).
    membership: Option<toml::Table>,
    transport: Option<TransportFile>,
    dns: Option<DnsFile>,
    lb: Option<LbFile>,
    /// `[[overlay]]` tables: one per overlay network.
    overlay: Option<Vec<OverlayFile>>,
    overlay_forget_ms: Option<u64>,
    reap_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransportFile {
    connect_timeout_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
    send_queue_bytes: Option<usize>,
    max_connections: Option<usize>,
    max_pending_per_source: Option<usize>,
    max_frame: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminApiFile {
    max_connections: Option<usize>,
    idle_timeout_ms: Option<u64>,
    max_watchers: Option<usize>,
    watch_queue_bytes: Option<usize>,
}

/// Who may use the admin API and how much of the agent it may hold.
#[derive(Clone, Debug)]
pub struct AdminApiConfig {
    /// The bearer token every request must carry (required off loopback).
    pub token: Option<String>,
    /// Host names a request's `Host` may give besides IP addresses and localhost.
    pub hosts: Vec<String>,
    /// Admin connections open at once (lowered at start if file descriptors are few).
    pub max_connections: usize,
    /// An admin connection with no byte either way for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for AdminApiConfig {
    fn default() -> Self {
        AdminApiConfig {
            token: None,
            hosts: Vec::new(),
            max_connections: 64,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A validated agent configuration.
#[derive(Debug)]
pub struct AgentConfig {
    pub node: NodeSpec,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin: SocketAddr,
    pub admin_api: AdminApiConfig,
    pub log_format: LogFormat,
    pub driver: DriverConfig,
    pub dns: DnsSettings,
    pub lb: LbConfig,
    pub overlay: OverlayConfig,
    /// Things that work but should not be so (a cookie file others can read), to log
    /// once logging is up.
    pub warnings: Vec<String>,
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

/// A warning when the cookie file at `path` can be read by its group or by others: the
/// cookie is the cluster's one secret.
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "cookie file {} has mode {:o}: users other than its owner can read the cluster \
             secret; chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

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
        let mut warnings = Vec::new();
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
            args.tls_ca.or(file.tls_ca),
        ) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(ca)) => {
                let tls = Tls::load(&cert, &key, &ca).map_err(|e| bad("tls_cert", e))?;
                if tls.name() != Some(name.as_str()) {
                    return Err(bad(
                        "tls_cert",
                        format!(
                            "{} names {:?}, not this node ({name:?}): a node's certificate \
                             must have its name as its one DNS name",
                            cert.display(),
                            tls.name().unwrap_or("no node")
                        ),
                    ));
                }
                Some(Arc::new(tls))
            }
            _ => {
                return Err(bad(
                    "tls_cert",
                    "mutual TLS needs all three of --tls-cert, --tls-key and --tls-ca",
                ));
            }
        };
        let allow_weak = args.allow_weak_cookie || file.allow_weak_cookie.unwrap_or(false);
        let (cookie, setting) = match (
            args.cookie.or(file.cookie),
            args.cookie_file.or(file.cookie_file),
        ) {
            (Some(_), Some(_)) => {
                return Err(bad("cookie", "give either cookie or cookie_file, not both"));
            }
            (None, None) => match &tls {
                // TLS authenticates; the link handshake's password comes from the CA.
                Some(tls) => (tls.cookie(), "cookie"),
                None => {
                    return Err(bad(
                        "cookie",
                        "required: --cookie STR or --cookie-file FILE (every node of a \
                         cluster needs the same one), or mutual TLS (--tls-cert, --tls-key, \
                         --tls-ca)",
                    ));
                }
            },
            (Some(c), None) => (c.into_bytes(), "cookie"),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| bad("cookie_file", format!("{}: {e}", path.display())))?;
                warnings.extend(readable_by_others(&path));
                (text.trim().as_bytes().to_vec(), "cookie_file")
            }
        };
        if cookie.len() < MIN_COOKIE_LEN && !allow_weak {
            return Err(bad(
                setting,
                format!(
                    "the cookie is {} bytes; at least {MIN_COOKIE_LEN} are required, since \
                     anyone who can reach the peer port may guess it once per connection. \
                     Make one with `hawser keygen`, or pass --allow-weak-cookie",
                    cookie.len()
                ),
            ));
        }
        let cookie = Cookie::new(cookie).ok_or_else(|| bad(setting, "must not be empty"))?;
        let admin = parse_admin(&args.admin.or(file.admin).unwrap_or(DEFAULT_ADMIN.into()))?;
        let token = match args.admin_token_file.or(file.admin_token_file) {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| bad("admin_token_file", format!("{}: {e}", path.display())))?;
                warnings.extend(readable_by_others(&path));
                let token = text.trim().to_owned();
                if token.len() < MIN_COOKIE_LEN || token.contains(char::is_whitespace) {
                    return Err(bad(
                        "admin_token_file",
                        format!(
                            "{}: the token must be at least {MIN_COOKIE_LEN} bytes with no \
                             spaces (make one with `hawser keygen`)",
                            path.display()
                        ),
                    ));
                }
                Some(token)
            }
        };
        if !admin.ip().is_loopback() && token.is_none() {
            return Err(bad(
                "admin",
                format!(
                    "{admin} is not a loopback address: whoever reaches it could read and \
                     write the cluster's data, so it needs --admin-token-file (a bearer \
                     token every request must carry)"
                ),
            ));
        }
        let admin_api = admin_api_config(
            file.admin_api.unwrap_or_default(),
            token,
            args.admin_host.or(file.admin_hosts).unwrap_or_default(),
        )?;
        let overrides = toml::Value::Table(file.membership.unwrap_or_default());
        let membership = MembershipConfig::from_overrides(args.profile, overrides)
            .map_err(|e| bad("membership", e))?;
        membership.validate().map_err(|e| bad("membership", e))?;
        let mut driver = driver_config(file.transport.unwrap_or_default())?;
        driver.tls = tls;
        driver.max_watchers = admin_api.1;
        driver.watch_queue_bytes = admin_api.2;
        let admin_api = admin_api.0;
        let dns = DnsSettings::load(args.dns, file.dns.unwrap_or_default())?;
        let lb = lb_config(args.lb, file.lb.unwrap_or_default())?;
        let reap_after = match args.reap_after.or(file.reap_after) {
            None => DEFAULT_REAP_AFTER,
            Some(text) => {
                let d = parse_duration("reap_after", &text)?;
                if d.is_zero() || d > MAX_REAP_AFTER {
                    return Err(bad("reap_after", format!("{text:?}: use 1s to 7d")));
                }
                d
            }
        };
        let overlay = OverlayConfig::load(
            args.overlay,
            file.overlay.unwrap_or_default(),
            file.overlay_forget_ms,
            advertise.ip(),
        )?;
        Ok(AgentConfig {
            node: NodeSpec {
                name,
                advertise: Addr::new(advertise.to_string()).expect("a socket address fits"),
                cookie,
                contacts,
                membership,
                max_frame: driver.max_frame,
                reap_after,
            },
            listen,
            data_dir,
            admin,
            admin_api,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            driver,
            dns,
            lb,
            overlay,
            warnings,
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

/// The admin API's settings, and the watch limits the driver enforces.
fn admin_api_config(
    f: AdminApiFile,
    token: Option<String>,
    hosts: Vec<String>,
) -> Result<(AdminApiConfig, usize, usize), ConfigError> {
    let d = AdminApiConfig::default();
    let dd = DriverConfig::default();
    let positive = |name: &str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(bad(
            &format!("admin_api.{name}"),
            "must be greater than zero",
        )),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    let config = AdminApiConfig {
        token,
        hosts: hosts.into_iter().map(|h| h.trim().to_owned()).collect(),
        max_connections: positive(
            "max_connections",
            f.max_connections.map(|n| n as u64),
            d.max_connections as u64,
        )? as usize,
        idle_timeout: Duration::from_millis(positive(
            "idle_timeout_ms",
            f.idle_timeout_ms,
            d.idle_timeout.as_millis() as u64,
        )?),
    };
    let max_watchers = positive(
        "max_watchers",
        f.max_watchers.map(|n| n as u64),
        dd.max_watchers as u64,
    )? as usize;
    let watch_queue_bytes = positive(
        "watch_queue_bytes",
        f.watch_queue_bytes.map(|n| n as u64),
        dd.watch_queue_bytes as u64,
    )? as usize;
    Ok((config, max_watchers, watch_queue_bytes))
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
        max_pending_per_source: match t.max_pending_per_source {
            Some(n) => positive("max_pending_per_source", n as u64)? as usize,
            None => d.max_pending_per_source,
        },
        max_frame: t.max_frame.unwrap_or(d.max_frame),
        ..d
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
            cookie: Some("a-cookie-of-16-bytes".into()),
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
    fn the_profile_comes_from_the_flag_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "name = \"n\"\nlisten = \"127.0.0.1:7700\"\ndata_dir = \"/tmp/y\"\n\
             cookie = \"a-cookie-of-16-bytes\"\n\
             [membership]\nprofile = \"fast\"\nactive_view = 5\n",
        )
        .unwrap();
        let load = |profile| {
            AgentConfig::load(AgentArgs {
                config: Some(path.clone()),
                profile,
                ..AgentArgs::default()
            })
            .unwrap()
            .node
            .membership
        };
        let fast = load(None);
        assert_eq!(
            fast.ping_interval_ms,
            Profile::Fast.config().ping_interval_ms
        );
        assert_eq!(fast.active_view, 5, "the file's fields sit on the profile");
        let lan = load(Some(Profile::Lan));
        assert_eq!(lan.ping_interval_ms, Profile::Lan.config().ping_interval_ms);
        assert_eq!(lan.active_view, 5);
        let mut default = AgentArgs::default();
        assert!(default.is_empty());
        default.profile = Some(Profile::Fast);
        assert!(!default.is_empty());
    }

    #[test]
    fn the_file_fills_in_and_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "name = \"from-file\"\nlisten = \"127.0.0.1:7700\"\ndata_dir = \"/tmp/y\"\n\
             cookie = \"a-cookie-of-16-bytes\"\njoin = [\"127.0.0.1:7701\"]\n\
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
    fn a_short_cookie_is_refused_unless_allowed() {
        let short = || AgentArgs {
            cookie: Some("s3cret".into()),
            ..args()
        };
        let e = err(short());
        assert!(
            e.contains("`cookie`") && e.contains("16") && e.contains("--allow-weak-cookie"),
            "{e}"
        );
        assert!(
            AgentConfig::load(AgentArgs {
                allow_weak_cookie: true,
                ..short()
            })
            .is_ok()
        );
    }

    #[test]
    fn a_cookie_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cookie");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let load = |mode: u32| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            AgentConfig::load(AgentArgs {
                cookie: None,
                cookie_file: Some(path.clone()),
                ..args()
            })
            .unwrap()
            .warnings
        };
        assert_eq!(load(0o600), Vec::<String>::new());
        let warnings = load(0o644);
        assert!(
            warnings.len() == 1 && warnings[0].contains("644") && warnings[0].contains("chmod 600"),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_admin_address_off_loopback_needs_a_token() {
        let e = err(AgentArgs {
            admin: Some("0.0.0.0:7601".into()),
            ..args()
        });
        assert!(
            e.contains("`admin`") && e.contains("--admin-token-file") && e.contains("loopback"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        let c = AgentConfig::load(AgentArgs {
            admin: Some("0.0.0.0:7601".into()),
            admin_token_file: Some(path),
            ..args()
        })
        .unwrap();
        assert_eq!(c.admin_api.token.as_deref(), Some("0123456789abcdef0123"));
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
