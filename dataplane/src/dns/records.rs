//! User records in the replicated KV: the key layout, the text form of a record, and the
//! ops that add and remove records.
//!
//! # Layout
//!
//! One KV key per owner name: `dns/<name>`, the name in lower case without its trailing
//! dot (`dns/web.hawser`, `dns/_http._tcp.web.hawser`). The key's value is a map with one
//! add-wins set, `rr:set`, whose elements are whole records in a canonical text form,
//! `TYPE TTL VALUE`:
//!
//! ```text
//! A 60 198.18.0.5
//! AAAA 60 2001:db8::5
//! CNAME 60 web.hawser.
//! SRV 60 10 5 8080 web.hawser.
//! TXT 60 "v=1; a \"quoted\" word"
//! ```
//!
//! Why a set of whole records, per name: two nodes that add records to one name during a
//! partition both keep theirs after the heal (each element is its own add-wins entry),
//! and a removal removes only the records the remover had seen. Lashup kept a whole zone
//! in one last-writer-wins register, and one side's writes were lost at every heal.
//!
//! The TTL is part of the element, so changing it is "remove the old element, add the
//! new one" in one atomic op. If concurrent writes leave the same record with two TTLs,
//! answers use the lower one.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use hawser_core::crdt::{FieldOp, Map, MapOp, SetOp, TypedOp};
use hickory_proto::rr::Name;

/// Every user record's key starts with this.
pub const KEY_PREFIX: &str = "dns/";
/// The set field that holds a name's records.
pub const FIELD: &str = "rr";
/// TTL of a record added without one.
pub const DEFAULT_TTL: u32 = 60;
/// Longest TTL accepted: a week (RFC 2181 allows 2^31-1, but a cluster name cached for
/// longer than a week outlives any reason to keep it).
pub const MAX_TTL: u32 = 7 * 24 * 3600;
/// Longest TXT value, in bytes (several 255-byte strings on the wire).
pub const MAX_TXT: usize = 1024;

/// The record types a user can store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    A,
    Aaaa,
    Cname,
    Srv,
    Txt,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::A, Kind::Aaaa, Kind::Cname, Kind::Srv, Kind::Txt];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::A => "A",
            Kind::Aaaa => "AAAA",
            Kind::Cname => "CNAME",
            Kind::Srv => "SRV",
            Kind::Txt => "TXT",
        }
    }

    /// Case-insensitive, as users type it.
    pub fn parse(s: &str) -> Result<Kind, RecordError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| RecordError::UnknownType(s.to_owned()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record's data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// An absolute name.
    Cname(Name),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Txt(String),
}

impl Data {
    pub fn kind(&self) -> Kind {
        match self {
            Data::A(_) => Kind::A,
            Data::Aaaa(_) => Kind::Aaaa,
            Data::Cname(_) => Kind::Cname,
            Data::Srv { .. } => Kind::Srv,
            Data::Txt(_) => Kind::Txt,
        }
    }

    /// Parse the VALUE a user gives for `kind`. Relative names (no trailing dot) are
    /// taken relative to `zone`.
    pub fn parse(kind: Kind, value: &str, zone: &Name) -> Result<Data, RecordError> {
        let bad = |why: &str| RecordError::BadValue {
            kind,
            value: value.to_owned(),
            why: why.to_owned(),
        };
        match kind {
            Kind::A => value
                .trim()
                .parse()
                .map(Data::A)
                .map_err(|_| bad("not an IPv4 address")),
            Kind::Aaaa => value
                .trim()
                .parse()
                .map(Data::Aaaa)
                .map_err(|_| bad("not an IPv6 address")),
            Kind::Cname => parse_name(value.trim(), zone).map(Data::Cname),
            Kind::Srv => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                let [priority, weight, port, target] = parts[..] else {
                    return Err(bad("expected PRIORITY WEIGHT PORT TARGET"));
                };
                let num = |s: &str, what: &str| {
                    s.parse::<u16>()
                        .map_err(|_| bad(&format!("{what} must be 0..=65535")))
                };
                Ok(Data::Srv {
                    priority: num(priority, "priority")?,
                    weight: num(weight, "weight")?,
                    port: num(port, "port")?,
                    target: parse_name(target, zone)?,
                })
            }
            Kind::Txt => {
                if value.len() > MAX_TXT {
                    return Err(bad(&format!("longer than {MAX_TXT} bytes")));
                }
                if value.chars().any(char::is_control) {
                    return Err(bad("control characters are not allowed"));
                }
                Ok(Data::Txt(value.to_owned()))
            }
        }
    }

    /// The VALUE in canonical form (absolute names, single spaces; TXT as a JSON string).
    pub fn render(&self) -> String {
        match self {
            Data::A(a) => a.to_string(),
            Data::Aaaa(a) => a.to_string(),
            Data::Cname(n) => n.to_ascii(),
            Data::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {}", target.to_ascii()),
            Data::Txt(t) => serde_json::Value::String(t.clone()).to_string(),
        }
    }
}

/// One user record: its data and TTL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub data: Data,
    pub ttl: u32,
}

impl Record {
    /// The record as stored: `TYPE TTL VALUE`.
    pub fn element(&self) -> String {
        format!("{} {} {}", self.data.kind(), self.ttl, self.data.render())
    }

    /// Read a stored element. Total: anything another node (or another version) wrote
    /// either parses or is an error the zone counts and skips.
    pub fn from_element(element: &str) -> Result<Record, RecordError> {
        let invalid = || RecordError::BadElement(element.to_owned());
        let mut parts = element.splitn(3, ' ');
        let (Some(kind), Some(ttl), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let kind = Kind::parse(kind).map_err(|_| invalid())?;
        let ttl = parse_ttl(ttl).map_err(|_| invalid())?;
        let data = match kind {
            Kind::Txt => Data::Txt(serde_json::from_str::<String>(value).map_err(|_| invalid())?),
            // Stored names are absolute: the root stands in for a zone that is never used.
            _ => Data::parse(kind, value, &Name::root()).map_err(|_| invalid())?,
        };
        let record = Record { data, ttl };
        // Only the canonical spelling is accepted, so one record has one element.
        if record.element() != element {
            return Err(invalid());
        }
        Ok(record)
    }
}

/// A TTL in seconds, 0..=[`MAX_TTL`].
pub fn parse_ttl(s: &str) -> Result<u32, RecordError> {
    match s.parse::<u32>() {
        Ok(t) if t <= MAX_TTL => Ok(t),
        _ => Err(RecordError::BadTtl(s.to_owned())),
    }
}

/// A domain name as a user types it: absolute with a trailing dot, or relative to `zone`.
pub fn parse_name(s: &str, zone: &Name) -> Result<Name, RecordError> {
    let bad = |why: &str| RecordError::BadName {
        name: s.to_owned(),
        why: why.to_owned(),
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*'))
    {
        return Err(bad(
            "use letters, digits, '-', '_' and '.' (IDNs in their xn-- form)",
        ));
    }
    let name = Name::from_ascii(s).map_err(|e| bad(&e.to_string()))?;
    let name = if name.is_fqdn() {
        name
    } else {
        name.append_domain(zone).map_err(|e| bad(&e.to_string()))?
    };
    if name.len() > 253 {
        return Err(bad("longer than 253 bytes"));
    }
    Ok(name.to_lowercase())
}

/// An owner name for a user record: inside `zone`, and not a name the zone itself owns
/// (the apex, `node.<zone>` and `vip.<zone>` and what is below them).
pub fn parse_owner(s: &str, zone: &Name) -> Result<Name, RecordError> {
    let name = parse_name(s, zone)?;
    if !zone.zone_of(&name) {
        return Err(RecordError::OutsideZone {
            name: name.to_ascii(),
            zone: zone.to_ascii(),
        });
    }
    if name == *zone {
        return Err(RecordError::Reserved(name.to_ascii()));
    }
    for sub in super::zone::RESERVED {
        let reserved = Name::from_ascii(sub)
            .and_then(|s| s.append_domain(zone))
            .expect("a reserved label under a valid zone is a valid name");
        if reserved.zone_of(&name) {
            return Err(RecordError::Reserved(name.to_ascii()));
        }
    }
    Ok(name)
}

/// The KV key of an owner name's records.
pub fn key_of(owner: &Name) -> String {
    let mut s = owner.to_lowercase().to_ascii();
    if s.ends_with('.') {
        s.pop();
    }
    format!("{KEY_PREFIX}{s}")
}

/// The owner name a KV key holds records for, if it is a record key.
pub fn owner_of(key: &str) -> Option<Name> {
    let name = key.strip_prefix(KEY_PREFIX)?;
    let name = Name::from_ascii(name).ok()?;
    let mut name = name.to_lowercase();
    name.set_fqdn(true);
    Some(name)
}

/// The records a stored value holds, in element order, and how many elements did not
/// parse (written by a newer version, or by hand through the raw KV API).
pub fn records_of(value: &Map) -> (Vec<Record>, usize) {
    let Some(set) = value.store().set(FIELD) else {
        return (Vec::new(), 0);
    };
    let mut records = Vec::with_capacity(set.len());
    let mut invalid = 0;
    for element in set.iter() {
        match Record::from_element(element) {
            Ok(r) => records.push(r),
            Err(_) => invalid += 1,
        }
    }
    (records, invalid)
}

/// The op that adds `record` to a name whose value is `current`: any element with the
/// same data and another TTL is replaced. Refused when it would put a CNAME beside other
/// data (RFC 1034: a CNAME owner has no other records).
pub fn add_op(current: Option<&Map>, record: &Record) -> Result<MapOp, RecordError> {
    let existing = current.map(|m| records_of(m).0).unwrap_or_default();
    let is_cname = record.data.kind() == Kind::Cname;
    if let Some(other) = existing
        .iter()
        .find(|r| (r.data.kind() == Kind::Cname) != is_cname)
    {
        return Err(RecordError::CnameConflict {
            adding: record.data.kind(),
            existing: other.data.kind(),
        });
    }
    if is_cname && existing.iter().any(|r| r.data != record.data) {
        return Err(RecordError::CnameConflict {
            adding: Kind::Cname,
            existing: Kind::Cname,
        });
    }
    let replaced: Vec<String> = existing
        .iter()
        .filter(|r| r.data == record.data && r.ttl != record.ttl)
        .map(Record::element)
        .collect();
    let mut ops = Vec::new();
    if !replaced.is_empty() {
        ops.push(set_op(SetOp::RemoveAll(replaced)));
    }
    ops.push(set_op(SetOp::Add(record.element())));
    Ok(MapOp::Update(ops))
}

/// Which records `dns rm` removes: all of a name's, those of one type, or one record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub kind: Option<Kind>,
    pub data: Option<Data>,
}

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        self.kind.is_none_or(|k| r.data.kind() == k)
            && self.data.as_ref().is_none_or(|d| r.data == *d)
    }
}

/// The op that removes the records `filter` selects from `current`, and how many it
/// removes; `None` when nothing matches. Elements that do not parse are removed along
/// with everything else when the filter selects all of a name's records.
pub fn remove_op(current: Option<&Map>, filter: &Filter) -> Option<(MapOp, usize)> {
    let set = current?.store().set(FIELD)?;
    let all = filter.kind.is_none() && filter.data.is_none();
    let doomed: Vec<String> = set
        .iter()
        .filter(|e| all || Record::from_element(e).is_ok_and(|r| filter.matches(&r)))
        .map(str::to_owned)
        .collect();
    if doomed.is_empty() {
        return None;
    }
    let n = doomed.len();
    Some((MapOp::Update(vec![set_op(SetOp::RemoveAll(doomed))]), n))
}

fn set_op(op: SetOp) -> FieldOp {
    FieldOp::Update {
        name: FIELD.to_owned(),
        op: TypedOp::Set(op),
    }
}

/// Why a record or name was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    UnknownType(String),
    BadValue {
        kind: Kind,
        value: String,
        why: String,
    },
    BadTtl(String),
    BadName {
        name: String,
        why: String,
    },
    OutsideZone {
        name: String,
        zone: String,
    },
    /// A name the zone answers itself.
    Reserved(String),
    CnameConflict {
        adding: Kind,
        existing: Kind,
    },
    /// A stored element that is not a record in canonical form.
    BadElement(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::UnknownType(t) => {
                write!(
                    f,
                    "unknown record type {t:?} (use A, AAAA, CNAME, SRV or TXT)"
                )
            }
            RecordError::BadValue { kind, value, why } => {
                write!(f, "invalid {kind} value {value:?}: {why}")
            }
            RecordError::BadTtl(t) => write!(f, "invalid TTL {t:?}: use 0..={MAX_TTL} seconds"),
            RecordError::BadName { name, why } => write!(f, "invalid name {name:?}: {why}"),
            RecordError::OutsideZone { name, zone } => {
                write!(f, "{name} is not in the cluster zone {zone}")
            }
            RecordError::Reserved(n) => write!(
                f,
                "{n} is answered by the zone itself (the apex, node.* and vip.*); \
                 choose another name"
            ),
            RecordError::CnameConflict { adding, existing } => {
                if adding == existing {
                    write!(f, "the name already has another CNAME; remove it first")
                } else {
                    write!(
                        f,
                        "cannot add {adding}: the name has {existing} records, and a name \
                         with a CNAME has no other records (remove them first)"
                    )
                }
            }
            RecordError::BadElement(e) => write!(f, "stored element {e:?} is not a record"),
        }
    }
}

impl std::error::Error for RecordError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        Name::from_ascii("hawser.").unwrap()
    }

    fn rec(kind: &str, value: &str, ttl: u32) -> Record {
        Record {
            data: Data::parse(Kind::parse(kind).unwrap(), value, &zone()).unwrap(),
            ttl,
        }
    }

    #[test]
    fn elements_round_trip_in_canonical_form() {
        for (kind, value, element) in [
            ("a", "198.18.0.5", "A 60 198.18.0.5"),
            ("AAAA", "2001:db8::5", "AAAA 60 2001:db8::5"),
            ("cname", "Web", "CNAME 60 web.hawser."),
            ("SRV", "10 5  8080 web", "SRV 60 10 5 8080 web.hawser."),
            ("TXT", "v=1 \"q\"", "TXT 60 \"v=1 \\\"q\\\"\""),
        ] {
            let r = rec(kind, value, 60);
            assert_eq!(r.element(), element);
            assert_eq!(Record::from_element(element).unwrap(), r);
        }
    }

    #[test]
    fn stored_elements_are_parsed_totally() {
        for bad in [
            "",
            "A",
            "A 60",
            "A x 1.2.3.4",
            "A 60 1.2.3",
            "MX 60 x.",
            "a 60 1.2.3.4",
            "A 060 1.2.3.4",
            "A 60  1.2.3.4",
            "TXT 60 unquoted",
            "CNAME 60 relative",
            "A 99999999 1.2.3.4",
        ] {
            assert!(Record::from_element(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn values_are_checked() {
        let z = zone();
        assert!(Data::parse(Kind::A, "::1", &z).is_err());
        assert!(Data::parse(Kind::Aaaa, "1.2.3.4", &z).is_err());
        assert!(Data::parse(Kind::Srv, "1 2 70000 x", &z).is_err());
        assert!(Data::parse(Kind::Srv, "1 2 3", &z).is_err());
        assert!(Data::parse(Kind::Cname, "bad name!", &z).is_err());
        assert!(Data::parse(Kind::Txt, "a\nb", &z).is_err());
        assert!(Data::parse(Kind::Txt, &"x".repeat(MAX_TXT + 1), &z).is_err());
        assert!(parse_ttl("604801").is_err());
        assert!(Kind::parse("MX").is_err());
    }

    #[test]
    fn owners_are_inside_the_zone_and_not_reserved() {
        let z = zone();
        assert_eq!(parse_owner("web", &z).unwrap().to_ascii(), "web.hawser.");
        assert_eq!(
            parse_owner("WEB.hawser.", &z).unwrap().to_ascii(),
            "web.hawser."
        );
        assert!(matches!(
            parse_owner("web.example.", &z),
            Err(RecordError::OutsideZone { .. })
        ));
        for reserved in ["hawser.", "node", "n1.node", "vip", "x.vip.hawser."] {
            assert!(
                matches!(parse_owner(reserved, &z), Err(RecordError::Reserved(_))),
                "{reserved}"
            );
        }
        let owner = parse_owner("_http._tcp.web", &z).unwrap();
        assert_eq!(key_of(&owner), "dns/_http._tcp.web.hawser");
        assert_eq!(owner_of(&key_of(&owner)).unwrap(), owner);
        assert_eq!(owner_of("kv/other"), None);
    }

    fn add(map: &mut Map, r: &Record, actor: u64) {
        let op = add_op(Some(map), r).unwrap();
        apply(map, &op, actor);
    }

    fn apply(map: &mut Map, op: &MapOp, actor: u64) {
        map.apply(
            hawser_core::crdt::Actor::new(hawser_core::NodeId(actor), 1),
            op,
        )
        .unwrap();
    }

    #[test]
    fn adds_replace_the_ttl_and_keep_cnames_alone() {
        let mut m = Map::new();
        add(&mut m, &rec("A", "198.18.0.1", 60), 1);
        add(&mut m, &rec("A", "198.18.0.1", 5), 1);
        add(&mut m, &rec("A", "198.18.0.2", 60), 1);
        let (records, invalid) = records_of(&m);
        assert_eq!(invalid, 0);
        assert_eq!(
            records,
            vec![rec("A", "198.18.0.1", 5), rec("A", "198.18.0.2", 60)]
        );
        assert!(matches!(
            add_op(Some(&m), &rec("CNAME", "other", 60)),
            Err(RecordError::CnameConflict { .. })
        ));
    }

    #[test]
    fn concurrent_adds_to_one_name_both_survive_and_removal_is_observed() {
        let (mut left, mut right) = (Map::new(), Map::new());
        apply(
            &mut left,
            &add_op(None, &rec("A", "198.18.0.1", 60)).unwrap(),
            1,
        );
        apply(
            &mut right,
            &add_op(None, &rec("A", "198.18.0.2", 60)).unwrap(),
            2,
        );
        // The right side removes all it has seen of the name, concurrently.
        let (rm, n) = remove_op(Some(&right), &Filter::default()).unwrap();
        assert_eq!(n, 1);
        apply(&mut right, &rm, 2);
        add(&mut right, &rec("A", "198.18.0.3", 60), 2);
        left.merge(&right);
        right.merge(&left);
        assert_eq!(left, right);
        assert_eq!(
            records_of(&left).0,
            vec![rec("A", "198.18.0.1", 60), rec("A", "198.18.0.3", 60)]
        );
    }

    #[test]
    fn removal_filters_by_type_and_value() {
        let mut m = Map::new();
        for r in [
            rec("A", "198.18.0.1", 60),
            rec("A", "198.18.0.2", 60),
            rec("TXT", "hi", 60),
        ] {
            add(&mut m, &r, 1);
        }
        let only = |kind, value: Option<&str>| Filter {
            kind: Some(kind),
            data: value.map(|v| Data::parse(kind, v, &zone()).unwrap()),
        };
        assert!(remove_op(Some(&m), &only(Kind::Aaaa, None)).is_none());
        let (op, n) = remove_op(Some(&m), &only(Kind::A, Some("198.18.0.2"))).unwrap();
        assert_eq!(n, 1);
        apply(&mut m, &op, 1);
        let (op, n) = remove_op(Some(&m), &only(Kind::A, None)).unwrap();
        assert_eq!(n, 1);
        apply(&mut m, &op, 1);
        assert_eq!(records_of(&m).0, vec![rec("TXT", "hi", 60)]);
    }
}
