//! An overlay network's settings, as the flag `--overlay` and the config file's
//! `[[overlay]]` tables give them, validated once at start so that a bad setting is
//! refused by name before anything touches the kernel or the KV.
//!
//! Flag syntax: `name=NAME,subnet=CIDR[,subnet6=CIDR][,prefix=24][,prefix6=80]
//! [,vni=1024][,port=64000][,mtu=1420][,vtep=CIDR]`. A config-file table goes through
//! the same [`Network::from_pairs`], so both spellings accept and refuse the same
//! things.

use std::fmt;
use std::str::FromStr;

use crate::prefix::{Prefix, PrefixError};

/// Each node's share of the IPv4 range, by default (dcos-overlay's).
pub const DEFAULT_PREFIX: u8 = 24;
/// Each node's share of the IPv6 range, by default (dcos-overlay's).
pub const DEFAULT_PREFIX6: u8 = 80;
pub const DEFAULT_VNI: u32 = 1024;
pub const DEFAULT_PORT: u16 = 64000;
/// 1500 on the underlay minus VXLAN's 50 bytes over IPv4 and some room for IPv6.
pub const DEFAULT_MTU: u16 = 1420;
/// The VTEP range by default. dcos-overlay used 44.128.0.0/20, which has been publicly
/// allocated since 2019; the shared address space of RFC 6598 is never routed on the
/// Internet and rarely used inside a data centre. Set `vtep=` if the underlay uses it.
pub const DEFAULT_VTEP: &str = "100.64.0.0/20";
/// VXLAN network identifiers are 24 bits.
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// Smallest MTU: what every IPv4 host must accept; IPv6 needs [`MIN_MTU6`].
pub const MIN_MTU: u16 = 576;
pub const MIN_MTU6: u16 = 1280;
/// Largest MTU: a jumbo frame.
pub const MAX_MTU: u16 = 9000;
/// Longest network name (it appears in KV keys and the API).
pub const MAX_NAME: usize = 32;

/// A setting, by the key it has in the flag and the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Name,
    Subnet,
    Subnet6,
    Prefix,
    Prefix6,
    Vni,
    Port,
    Mtu,
    Vtep,
}

impl Field {
    const ALL: [Field; 9] = [
        Field::Name,
        Field::Subnet,
        Field::Subnet6,
        Field::Prefix,
        Field::Prefix6,
        Field::Vni,
        Field::Port,
        Field::Mtu,
        Field::Vtep,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Subnet => "subnet",
            Field::Subnet6 => "subnet6",
            Field::Prefix => "prefix",
            Field::Prefix6 => "prefix6",
            Field::Vni => "vni",
            Field::Port => "port",
            Field::Mtu => "mtu",
            Field::Vtep => "vtep",
        }
    }

    fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == key)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why overlay settings were refused. Every variant names the setting at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// An item of the flag that is not `key=value`.
    Syntax(String),
    /// A key that is not a setting.
    UnknownField(String),
    /// A setting given twice.
    Duplicate(Field),
    /// A required setting (`name`, `subnet`) absent.
    Missing(Field),
    /// A value that does not parse or is out of bounds; `expected` says what would do.
    Invalid {
        field: Field,
        value: String,
        expected: &'static str,
    },
    /// A range that does not parse.
    Range { field: Field, error: PrefixError },
    /// A range of the wrong address family (`subnet` and `vtep` are IPv4, `subnet6`
    /// IPv6).
    Family { field: Field, range: Prefix },
    /// A node prefix (`prefix`, `prefix6`) that does not split its range into shares
    /// of at least 4 addresses.
    Split {
        field: Field,
        len: u8,
        range: Prefix,
    },
    /// Two ranges of one network that overlap.
    Overlap { field: Field, other: Field },
    /// Two networks that share a name or a VNI, or whose ranges (`field`) overlap.
    Clash {
        field: Field,
        first: String,
        second: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Syntax(item) => {
                write!(f, "overlay setting {item:?}: write key=value")
            }
            ConfigError::UnknownField(key) => write!(
                f,
                "overlay setting {key:?} is unknown: use name, subnet, subnet6, prefix, \
                 prefix6, vni, port, mtu or vtep"
            ),
            ConfigError::Duplicate(field) => write!(f, "overlay {field} is given twice"),
            ConfigError::Missing(field) => write!(f, "overlay {field} is required"),
            ConfigError::Invalid {
                field,
                value,
                expected,
            } => write!(f, "overlay {field} {value:?}: {expected}"),
            ConfigError::Range { field, error } => write!(f, "overlay {field}: {error}"),
            ConfigError::Family { field, range } => {
                let family = if *field == Field::Subnet6 { 6 } else { 4 };
                write!(f, "overlay {field} {range}: use an IPv{family} range")
            }
            ConfigError::Split { field, len, range } => write!(
                f,
                "overlay {field} {len}: each node's share of {range} must be a /{} to /{}",
                range.prefix_len(),
                if range.is_ipv4() { 30 } else { 126 }
            ),
            ConfigError::Overlap { field, other } => {
                write!(
                    f,
                    "overlay {field} overlaps its {other}: use separate ranges"
                )
            }
            ConfigError::Clash {
                field,
                first,
                second,
            } => write!(
                f,
                "overlay networks {first:?} and {second:?} have the same or overlapping {field}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One overlay network's validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// Lower-case letters, digits and '-', starting with a letter.
    pub name: String,
    /// The IPv4 address space the nodes' shares come from.
    pub subnet: Prefix,
    /// The IPv6 address space, if the network has one.
    pub subnet6: Option<Prefix>,
    /// The length of each node's IPv4 share.
    pub prefix: u8,
    /// The length of each node's IPv6 share.
    pub prefix6: u8,
    pub vni: u32,
    /// The VXLAN UDP port.
    pub port: u16,
    /// The MTU of the VXLAN device.
    pub mtu: u16,
    /// The range VTEP addresses (one per node, on the VXLAN device) come from.
    pub vtep: Prefix,
}

fn invalid(field: Field, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_owned(),
        expected,
    }
}

/// A decimal number within `lo..=hi` (no sign, no leading zero).
fn number<T: FromStr + PartialOrd>(
    field: Field,
    value: &str,
    lo: T,
    hi: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    let plain = value == "0" || (!value.starts_with('0') && !value.starts_with('+'));
    match value.parse::<T>() {
        Ok(n) if plain && n >= lo && n <= hi => Ok(n),
        _ => Err(invalid(field, value, expected)),
    }
}

fn name(value: &str) -> Result<String, ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            Field::Name,
            value,
            "use 1 to 32 lower-case letters, digits and '-', starting with a letter",
        ))
    }
}

fn range(field: Field, value: &str, v4: bool) -> Result<Prefix, ConfigError> {
    let range: Prefix = value
        .parse()
        .map_err(|error| ConfigError::Range { field, error })?;
    if range.is_ipv4() != v4 {
        return Err(ConfigError::Family { field, range });
    }
    Ok(range)
}

/// A node prefix, given or default, that splits `range` into shares.
fn split(field: Field, value: Option<&str>, default: u8, range: Prefix) -> Result<u8, ConfigError> {
    let len = match value {
        Some(v) => number(field, v, 1, 126, "use a prefix length")?,
        None => default,
    };
    if range.subnets(len) == 0 {
        return Err(ConfigError::Split { field, len, range });
    }
    Ok(len)
}

impl Network {
    /// Validate settings given as `(key, value)` pairs, each key at most once.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Network, ConfigError> {
        let mut given: [Option<&str>; Field::ALL.len()] = [None; Field::ALL.len()];
        for (key, value) in pairs {
            let field =
                Field::from_key(key).ok_or_else(|| ConfigError::UnknownField(key.to_owned()))?;
            let slot = &mut given[field as usize];
            if slot.replace(value).is_some() {
                return Err(ConfigError::Duplicate(field));
            }
        }
        let get = |field: Field| given[field as usize];
        let required = |field: Field| get(field).ok_or(ConfigError::Missing(field));

        let name = name(required(Field::Name)?)?;
        let subnet = range(Field::Subnet, required(Field::Subnet)?, true)?;
        let subnet6 = get(Field::Subnet6)
            .map(|v| range(Field::Subnet6, v, false))
            .transpose()?;
        let prefix = split(Field::Prefix, get(Field::Prefix), DEFAULT_PREFIX, subnet)?;
        let prefix6 = match subnet6 {
            Some(range) => split(Field::Prefix6, get(Field::Prefix6), DEFAULT_PREFIX6, range)?,
            None if get(Field::Prefix6).is_some() => {
                return Err(ConfigError::Missing(Field::Subnet6));
            }
            None => DEFAULT_PREFIX6,
        };
        let vni = match get(Field::Vni) {
            Some(v) => number(Field::Vni, v, 1, MAX_VNI, "use 1 to 16777215")?,
            None => DEFAULT_VNI,
        };
        let port = match get(Field::Port) {
            Some(v) => number(Field::Port, v, 1, u16::MAX, "use 1 to 65535")?,
            None => DEFAULT_PORT,
        };
        let (min_mtu, expected) = if subnet6.is_some() {
            (MIN_MTU6, "use 1280 to 9000 (an IPv6 network needs 1280)")
        } else {
            (MIN_MTU, "use 576 to 9000")
        };
        let mtu = match get(Field::Mtu) {
            Some(v) => number(Field::Mtu, v, min_mtu, MAX_MTU, expected)?,
            None => DEFAULT_MTU.max(min_mtu),
        };
        let vtep = range(Field::Vtep, get(Field::Vtep).unwrap_or(DEFAULT_VTEP), true)?;
        if vtep.overlaps(&subnet) {
            return Err(ConfigError::Overlap {
                field: Field::Vtep,
                other: Field::Subnet,
            });
        }
        Ok(Network {
            name,
            subnet,
            subnet6,
            prefix,
            prefix6,
            vni,
            port,
            mtu,
            vtep,
        })
    }
}

/// The flag's syntax: `key=value` items separated by commas.
impl FromStr for Network {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Network, ConfigError> {
        let pairs = s
            .split(',')
            .map(|item| {
                item.split_once('=')
                    .ok_or_else(|| ConfigError::Syntax(item.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Network::from_pairs(pairs)
    }
}

/// Check that several networks can live on one node: distinct names and VNIs (one
/// VXLAN device each), and ranges that no two of them share (a route or a VTEP address
/// would be ambiguous).
pub fn check_all(networks: &[Network]) -> Result<(), ConfigError> {
    for (i, a) in networks.iter().enumerate() {
        for b in &networks[i + 1..] {
            let ranges = |n: &Network| {
                [
                    (Field::Subnet, Some(n.subnet)),
                    (Field::Subnet6, n.subnet6),
                    (Field::Vtep, Some(n.vtep)),
                ]
            };
            let overlapping = ranges(a).into_iter().find_map(|(field, ra)| {
                let ra = ra?;
                ranges(b)
                    .into_iter()
                    .filter_map(|(_, rb)| rb)
                    .any(|rb| ra.overlaps(&rb))
                    .then_some(field)
            });
            let clash = if a.name == b.name {
                Some(Field::Name)
            } else if a.vni == b.vni {
                Some(Field::Vni)
            } else {
                overlapping
            };
            if let Some(field) = clash {
                return Err(ConfigError::Clash {
                    field,
                    first: a.name.clone(),
                    second: b.name.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Network, ConfigError> {
        s.parse()
    }

    #[test]
    fn defaults_fill_what_the_flag_leaves_out() {
        let n = parse("name=dcos,subnet=9.0.0.0/8").unwrap();
        assert_eq!(n.name, "dcos");
        assert_eq!(n.subnet.to_string(), "9.0.0.0/8");
        assert_eq!(n.subnet6, None);
        assert_eq!(
            (n.prefix, n.prefix6, n.vni, n.port, n.mtu),
            (24, 80, 1024, 64000, 1420)
        );
        assert_eq!(n.vtep.to_string(), DEFAULT_VTEP);
    }

    #[test]
    fn every_setting_is_read() {
        let n = parse(
            "name=t1,subnet=198.18.0.0/16,subnet6=fd01:b::/64,prefix=26,prefix6=96,\
             vni=7,port=4789,mtu=1400,vtep=198.19.0.0/24",
        )
        .unwrap();
        assert_eq!(n.subnet6.unwrap().to_string(), "fd01:b::/64");
        assert_eq!(
            (n.prefix, n.prefix6, n.vni, n.port, n.mtu),
            (26, 96, 7, 4789, 1400)
        );
        assert_eq!(n.vtep.to_string(), "198.19.0.0/24");
        // The config file's tables take the same path.
        let same = Network::from_pairs([
            ("vtep", "198.19.0.0/24"),
            ("name", "t1"),
            ("subnet", "198.18.0.0/16"),
            ("subnet6", "fd01:b::/64"),
            ("prefix", "26"),
            ("prefix6", "96"),
            ("vni", "7"),
            ("port", "4789"),
            ("mtu", "1400"),
        ])
        .unwrap();
        assert_eq!(same, n);
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let err = |s: &str| parse(s).unwrap_err();
        let base = "name=t,subnet=198.18.0.0/16";
        let field_of = |e: ConfigError| match e {
            ConfigError::Invalid { field, .. }
            | ConfigError::Range { field, .. }
            | ConfigError::Family { field, .. }
            | ConfigError::Split { field, .. }
            | ConfigError::Overlap { field, .. }
            | ConfigError::Duplicate(field)
            | ConfigError::Missing(field) => Some(field),
            _ => None,
        };
        for (extra, field) in [
            ("vni=0", Field::Vni),
            ("vni=16777216", Field::Vni),
            ("vni=x", Field::Vni),
            ("port=0", Field::Port),
            ("port=65536", Field::Port),
            ("port=064000", Field::Port),
            ("mtu=575", Field::Mtu),
            ("mtu=9001", Field::Mtu),
            ("subnet6=fd01:b::/64,mtu=1000", Field::Mtu),
            ("prefix=15", Field::Prefix),
            ("prefix=31", Field::Prefix),
            ("prefix=+24", Field::Prefix),
            ("prefix6=80", Field::Subnet6),
            ("subnet6=fd01:b::/64,prefix6=63", Field::Prefix6),
            ("subnet6=9.0.0.0/8", Field::Subnet6),
            ("vtep=fd01:a::/64", Field::Vtep),
            ("vtep=198.18.3.0/24", Field::Vtep),
            ("vtep=198.19.0.1/24", Field::Vtep),
            ("vni=5,vni=6", Field::Vni),
        ] {
            let e = err(&format!("{base},{extra}"));
            assert!(!e.to_string().is_empty());
            assert_eq!(field_of(e.clone()), Some(field), "{extra}: {e}");
        }
        assert_eq!(err("subnet=9.0.0.0/8"), ConfigError::Missing(Field::Name));
        assert_eq!(err("name=t"), ConfigError::Missing(Field::Subnet));
        assert!(matches!(
            err("name=T,subnet=9.0.0.0/8"),
            ConfigError::Invalid {
                field: Field::Name,
                ..
            }
        ));
        assert!(matches!(
            err("name=t,subnet=fd01::/64"),
            ConfigError::Family {
                field: Field::Subnet,
                ..
            }
        ));
        assert!(matches!(
            err("name=t,subnet=9.0.0.0/25"),
            ConfigError::Split {
                field: Field::Prefix,
                ..
            }
        ));
        assert_eq!(
            err(&format!("{base},colour=red")),
            ConfigError::UnknownField("colour".into())
        );
        assert_eq!(err(&format!("{base},,")), ConfigError::Syntax("".into()));
        assert_eq!(err(""), ConfigError::Syntax("".into()));
    }

    #[test]
    fn networks_on_one_node_must_not_clash() {
        let a = parse("name=a,subnet=198.18.0.0/16,vtep=198.19.0.0/24,vni=1").unwrap();
        let clash = |b: &str| {
            let b = parse(b).unwrap();
            match check_all(&[a.clone(), b]) {
                Err(ConfigError::Clash { field, .. }) => Some(field),
                _ => None,
            }
        };
        assert_eq!(
            clash("name=a,subnet=198.19.128.0/17,vtep=198.19.1.0/24,vni=2"),
            Some(Field::Name)
        );
        assert_eq!(
            clash("name=b,subnet=198.19.128.0/17,vtep=198.19.1.0/24,vni=1"),
            Some(Field::Vni)
        );
        assert_eq!(
            clash("name=b,subnet=198.18.128.0/17,vtep=198.19.1.0/24,vni=2"),
            Some(Field::Subnet)
        );
        assert_eq!(
            clash("name=b,subnet=198.19.128.0/17,vtep=198.19.0.0/25,vni=2"),
            Some(Field::Vtep)
        );
        assert_eq!(
            clash("name=b,subnet=198.19.128.0/17,vtep=198.19.1.0/24,vni=2"),
            None
        );
        assert_eq!(check_all(&[]), Ok(()));
    }
}
