//! `hawser agent`'s overlay settings: the repeatable `--overlay` flag, the config file's
//! `[[overlay]]` tables and `overlay_forget_ms`, checked at start (by the dataplane's
//! own validation, so both spellings accept and refuse the same things).

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use hawser_dataplane::overlay::vtep::is_underlay;
use hawser_dataplane::overlay::{Network, check_all};

use crate::config::{ConfigError, bad};

/// How long a node may be gone before its subnet is freed, by default: global
/// membership's forget time (an hour), so a node rebooted or partitioned for less finds
/// its subnet, and its containers' routes, where it left them.
pub const DEFAULT_FORGET: Duration = Duration::from_secs(3600);

/// The overlay flags of `hawser agent`.
#[derive(Args, Debug, Default)]
pub struct OverlayArgs {
    /// Join an overlay network: `name=NAME,subnet=CIDR` and any of `prefix=24`,
    /// `vni=1024`, `port=64000`, `mtu=1420`, `vtep=CIDR`, `subnet6=CIDR`, `prefix6=80`,
    /// comma-separated; repeatable. Off unless given.
    #[arg(long = "overlay", value_name = "SETTINGS")]
    pub overlay: Vec<String>,
    /// Free the subnet of a node gone this long, in milliseconds [default: 3600000].
    #[arg(long = "overlay-forget-ms", value_name = "MS")]
    pub overlay_forget_ms: Option<u64>,
}

impl OverlayArgs {
    pub fn is_empty(&self) -> bool {
        self.overlay.is_empty() && self.overlay_forget_ms.is_none()
    }
}

/// One `[[overlay]]` table: the flag's keys, with numbers as numbers or strings.
pub type OverlayFile = toml::Table;

/// The overlay networks this agent is part of.
#[derive(Clone, Debug)]
pub struct OverlayConfig {
    /// Empty: no overlay (the default).
    pub networks: Vec<Network>,
    pub forget_after: Duration,
    /// This node's underlay address: the IP of its advertised address.
    pub underlay: IpAddr,
}

impl OverlayConfig {
    /// Flags' networks come first, then the file's; together they must be able to live
    /// on one node (distinct names, VNIs and ranges).
    pub fn load(
        args: OverlayArgs,
        tables: Vec<OverlayFile>,
        forget_ms: Option<u64>,
        advertise: IpAddr,
    ) -> Result<OverlayConfig, ConfigError> {
        let mut networks = Vec::new();
        for text in &args.overlay {
            networks.push(text.parse::<Network>().map_err(|e| bad("overlay", e))?);
        }
        for (i, table) in tables.iter().enumerate() {
            let setting = format!("overlay[{i}]");
            let mut pairs = Vec::new();
            for (key, value) in table {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    other => {
                        return Err(bad(
                            &setting,
                            format!("{key} = {other}: give a string or a number"),
                        ));
                    }
                };
                pairs.push((key.as_str(), text));
            }
            let net = Network::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                .map_err(|e| bad(&setting, e))?;
            networks.push(net);
        }
        check_all(&networks).map_err(|e| bad("overlay", e))?;
        if !networks.is_empty() && !is_underlay(advertise) {
            return Err(bad(
                "advertise",
                format!(
                    "{advertise} cannot carry an overlay: other nodes send VXLAN packets to \
                     the advertised address, so give one they can reach (not loopback)"
                ),
            ));
        }
        let forget_ms = args
            .overlay_forget_ms
            .or(forget_ms)
            .unwrap_or(DEFAULT_FORGET.as_millis() as u64);
        if !(1_000..=30 * 24 * 3_600_000).contains(&forget_ms) {
            return Err(bad(
                "overlay_forget_ms",
                format!("{forget_ms}: use 1000 (a second) to 2592000000 (30 days)"),
            ));
        }
        Ok(OverlayConfig {
            underlay: advertise,
            networks,
            forget_after: Duration::from_millis(forget_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1));

    fn load(flags: &[&str], file: &str) -> Result<OverlayConfig, String> {
        let tables: toml::Table = toml::from_str(file).unwrap();
        let tables = match tables.get("overlay") {
            Some(toml::Value::Array(a)) => {
                a.iter().map(|t| t.as_table().unwrap().clone()).collect()
            }
            _ => Vec::new(),
        };
        let args = OverlayArgs {
            overlay: flags.iter().map(|s| s.to_string()).collect(),
            overlay_forget_ms: None,
        };
        OverlayConfig::load(args, tables, None, HOST).map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default() {
        let c = load(&[], "").unwrap();
        assert!(c.networks.is_empty());
        assert_eq!(c.forget_after, DEFAULT_FORGET);
    }

    #[test]
    fn the_flag_and_the_table_say_the_same() {
        let flag = load(&["name=dcos,subnet=9.0.0.0/8,vni=1024,mtu=1400"], "").unwrap();
        let file = load(
            &[],
            "[[overlay]]\nname = \"dcos\"\nsubnet = \"9.0.0.0/8\"\nvni = 1024\nmtu = \"1400\"\n",
        )
        .unwrap();
        assert_eq!(flag.networks, file.networks);
        assert_eq!(flag.underlay, HOST);
        assert_eq!(flag.networks[0].mtu, 1400);
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let e = load(&["name=dcos,subnet=9.0.0.0/8,vni=0"], "").unwrap_err();
        assert!(e.contains("`overlay`") && e.contains("vni"), "{e}");
        let e = load(
            &[],
            "[[overlay]]\nname = \"x\"\nsubnet = \"9.0.0.0/8\"\nmtu = true\n",
        )
        .unwrap_err();
        assert!(e.contains("overlay[0]") && e.contains("mtu"), "{e}");
        let e = load(&[], "[[overlay]]\nname = \"x\"\n").unwrap_err();
        assert!(e.contains("overlay[0]") && e.contains("subnet"), "{e}");
        let e = load(
            &["name=a,subnet=9.0.0.0/8", "name=b,subnet=9.1.0.0/16,vni=7"],
            "",
        )
        .unwrap_err();
        assert!(e.contains("overlay"), "{e}");
        let args = OverlayArgs {
            overlay: vec![],
            overlay_forget_ms: Some(5),
        };
        let e = OverlayConfig::load(args, vec![], None, HOST)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlay_forget_ms"), "{e}");
        let args = OverlayArgs {
            overlay: vec!["name=a,subnet=9.0.0.0/8".into()],
            overlay_forget_ms: None,
        };
        let e = OverlayConfig::load(args, vec![], None, "127.0.0.1".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`advertise`") && e.contains("loopback"), "{e}");
    }
}
