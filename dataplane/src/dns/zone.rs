//! The cluster zone: what this node answers itself, from its own replica, with no
//! network hop and no cache in between (dcos-dns cached its zone and new names took 5 s).
//!
//! Names (the zone `hawser.` as an example):
//! - `hawser.`: SOA and NS; `ns.hawser.`: this node's DNS address;
//! - `<node>.node.hawser.`: A/AAAA of every *reachable* member's advertised address,
//!   from global membership (a member that becomes unreachable stops being answered with
//!   the membership change that says so);
//! - `<name>.vip.hawser.`: the load balancer's named VIPs, once this node's kernel
//!   routes them (see [`VipNames`]);
//! - anything else: the user records stored in the KV (see `records`).
//!
//! Answers follow CNAMEs inside the zone (CNAMEs first, in chain order), rotate the
//! final record set per query (round robin), and give NXDOMAIN with the SOA for a name
//! that does not exist, NOERROR with the SOA for one that exists without records of the
//! asked type (names with records below them exist). Wildcards are not supported.
//!
//! The zone is a plain structure the driver updates in place on every KV or membership
//! change (through the agent's follower, under a write lock) and the DNS tasks read per
//! query: the next query after a change sees it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hawser_core::crdt::Map;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record as Rr, RecordType};

use super::message::Question;
use super::records::{self, Data, Kind, Record};

/// Labels under the apex the zone answers itself; users cannot add records there.
pub const RESERVED: [&str; 3] = ["node", "vip", "ns"];

/// Longest chain of CNAMEs followed inside the zone.
const MAX_CHAIN: usize = 8;

/// The load balancer's named VIPs that this node's kernel routes: `<name>.vip.<zone>`.
pub trait VipNames: Send + Sync {
    /// The VIP addresses of `name` (the label under `vip.`), empty if none.
    fn addresses(&self, name: &str) -> Vec<IpAddr>;
}

/// No load balancer on this node: no VIP names.
pub struct NoVips;

impl VipNames for NoVips {
    fn addresses(&self, _: &str) -> Vec<IpAddr> {
        Vec::new()
    }
}

/// A user name's records, as served: one per data (the lowest TTL of duplicates), and a
/// CNAME alone (the lowest, if concurrent writes left several or left other records).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    records: Vec<Record>,
    /// Part of the SOA serial.
    hash: u64,
}

/// The answer to a question about the zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub rcode: ResponseCode,
    pub answers: Vec<Rr>,
    pub authorities: Vec<Rr>,
}

#[derive(Clone, Debug)]
pub struct Zone {
    apex: Name,
    ns: Name,
    nodes_suffix: Name,
    vips_suffix: Name,
    /// This node's DNS address, for `ns.<zone>`.
    ns_addrs: Vec<IpAddr>,
    node_ttl: u32,
    negative_ttl: u32,
    names: BTreeMap<Name, Entry>,
    /// `<node>.node.<zone>` → addresses of reachable members.
    nodes: BTreeMap<Name, Vec<IpAddr>>,
    names_hash: u64,
    nodes_hash: u64,
    /// Stored elements that did not parse, and members whose name is not a DNS label.
    pub skipped: u64,
}

fn child(label: &str, parent: &Name) -> Name {
    Name::from_ascii(label)
        .and_then(|l| l.append_domain(parent))
        .expect("a fixed label under a valid zone is a valid name")
}

fn hash(parts: &[&[u8]]) -> u64 {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

impl Zone {
    /// An empty zone at `apex` (absolute, lower case).
    pub fn new(apex: Name, ns_addrs: Vec<IpAddr>, node_ttl: u32, negative_ttl: u32) -> Zone {
        let apex = apex.to_lowercase();
        Zone {
            ns: child("ns", &apex),
            nodes_suffix: child("node", &apex),
            vips_suffix: child("vip", &apex),
            apex,
            ns_addrs,
            node_ttl,
            negative_ttl,
            names: BTreeMap::new(),
            nodes: BTreeMap::new(),
            names_hash: 0,
            nodes_hash: 0,
            skipped: 0,
        }
    }

    pub fn apex(&self) -> &Name {
        &self.apex
    }

    /// The SOA serial: a hash of the zone's content, so two nodes that hold the same
    /// records and members give the same serial.
    pub fn serial(&self) -> u32 {
        (self.names_hash ^ self.nodes_hash) as u32
    }

    /// Whether this server answers `name` itself.
    pub fn contains(&self, name: &Name) -> bool {
        self.apex.zone_of(name)
    }

    /// Take `owner`'s records from its KV value (`None`: no value).
    pub fn set_records(&mut self, owner: Name, value: Option<&Map>) {
        if let Some(old) = self.names.remove(&owner) {
            self.names_hash ^= old.hash;
        }
        let Some(value) = value else { return };
        if !self.contains(&owner) {
            return;
        }
        let (mut found, invalid) = records::records_of(value);
        self.skipped += invalid as u64;
        found.sort();
        // One record per data, with the lowest TTL (sorted by data, then TTL).
        found.dedup_by(|later, first| later.data == first.data);
        if let Some(cname) = found.iter().find(|r| r.data.kind() == Kind::Cname) {
            found = vec![cname.clone()];
        }
        if found.is_empty() {
            return;
        }
        let elements: Vec<String> = found.iter().map(Record::element).collect();
        let owner_text = owner.to_ascii();
        let mut parts: Vec<&[u8]> = vec![owner_text.as_bytes()];
        parts.extend(elements.iter().map(|e| e.as_bytes()));
        let h = hash(&parts);
        self.names_hash ^= h;
        self.names.insert(
            owner,
            Entry {
                records: found,
                hash: h,
            },
        );
    }

    /// Replace the member names with `members`: (name, advertised address) of every
    /// member reachable from this node, this node included.
    pub fn set_members<'a>(&mut self, members: impl IntoIterator<Item = (&'a str, IpAddr)>) {
        let mut nodes: BTreeMap<Name, Vec<IpAddr>> = BTreeMap::new();
        let mut skipped = 0;
        for (name, ip) in members {
            match Name::from_ascii(name).and_then(|n| n.append_domain(&self.nodes_suffix)) {
                Ok(n) if !name.ends_with('.') && !ip.is_unspecified() => {
                    nodes.entry(n.to_lowercase()).or_default().push(ip)
                }
                _ => skipped += 1,
            }
        }
        let mut acc = 0;
        for (n, ips) in &mut nodes {
            ips.sort();
            ips.dedup();
            let text: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
            let name = n.to_ascii();
            let mut parts: Vec<&[u8]> = vec![name.as_bytes()];
            parts.extend(text.iter().map(|t| t.as_bytes()));
            acc ^= hash(&parts);
        }
        self.skipped += skipped;
        self.nodes = nodes;
        self.nodes_hash = acc;
    }

    /// User names, and members answered under `node.`.
    pub fn counts(&self) -> (usize, usize) {
        (self.names.len(), self.nodes.len())
    }

    /// Every user name and its records, in canonical name order.
    pub fn user_records(&self) -> impl Iterator<Item = (&Name, &[Record])> {
        self.names.iter().map(|(n, e)| (n, e.records.as_slice()))
    }

    /// Every member name and its addresses.
    pub fn node_records(&self) -> impl Iterator<Item = (&Name, &[IpAddr])> {
        self.nodes.iter().map(|(n, a)| (n, a.as_slice()))
    }

    fn soa(&self) -> Rr {
        let soa = SOA::new(
            self.ns.clone(),
            child("hostmaster", &self.apex),
            self.serial(),
            3600,
            600,
            86400,
            self.negative_ttl,
        );
        Rr::from_rdata(self.apex.clone(), self.negative_ttl, RData::SOA(soa))
    }

    /// Answer `q` (a name inside the zone). `rotation` picks where the final record set
    /// starts (the caller passes a counter, for round robin).
    pub fn lookup(&self, q: &Question, rotation: usize, vips: &dyn VipNames) -> Lookup {
        let mut answers = Vec::new();
        let mut name = q.name.to_lowercase();
        if q.qclass != DNSClass::IN && q.qclass != DNSClass::ANY {
            return self.empty(ResponseCode::Refused, answers);
        }
        for _ in 0..MAX_CHAIN {
            if !self.contains(&name) {
                // A CNAME out of the zone: the client follows it.
                return self.done(answers);
            }
            let here = self.at(&name, vips);
            let set = here.records(&name, q.qtype, self);
            match set {
                Found::Records(mut set) => {
                    if !set.is_empty() {
                        let by = rotation % set.len();
                        set.rotate_left(by);
                    }
                    answers.extend(set);
                    return self.done(answers);
                }
                Found::Alias(target, record) => {
                    answers.push(*record);
                    name = target;
                }
                Found::Nothing if here.exists() => {
                    return self.empty(ResponseCode::NoError, answers);
                }
                Found::Nothing => return self.empty(ResponseCode::NXDomain, answers),
            }
        }
        // A chain too long (or a loop): what was followed, and the client stops there.
        self.done(answers)
    }

    fn done(&self, answers: Vec<Rr>) -> Lookup {
        Lookup {
            rcode: ResponseCode::NoError,
            answers,
            authorities: Vec::new(),
        }
    }

    fn empty(&self, rcode: ResponseCode, answers: Vec<Rr>) -> Lookup {
        Lookup {
            rcode,
            answers,
            authorities: vec![self.soa()],
        }
    }

    /// What the zone holds at `name`.
    fn at<'a>(&'a self, name: &Name, vips: &dyn VipNames) -> Here<'a> {
        if *name == self.apex {
            return Here::Apex;
        }
        if *name == self.ns {
            return Here::Addrs(self.ns_addrs.clone(), self.node_ttl);
        }
        if *name == self.nodes_suffix || *name == self.vips_suffix {
            return Here::Empty;
        }
        if self.nodes_suffix.zone_of(name) {
            return match self.nodes.get(name) {
                Some(ips) => Here::Addrs(ips.clone(), self.node_ttl),
                None => self.below(name, &self.nodes),
            };
        }
        if self.vips_suffix.zone_of(name) {
            let label_count = self.vips_suffix.num_labels() + 1;
            if name.num_labels() != label_count {
                return Here::Missing;
            }
            // VIP names are stored lower-case; DNS names match whatever their case.
            let label = name
                .iter()
                .next()
                .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase());
            let ips = label.map(|l| vips.addresses(&l)).unwrap_or_default();
            return if ips.is_empty() {
                Here::Missing
            } else {
                Here::Addrs(ips, self.node_ttl)
            };
        }
        match self.names.get(name) {
            Some(e) => Here::Records(&e.records),
            None => self.below(name, &self.names),
        }
    }

    /// A name with nothing of its own: it exists if some name below it does (the
    /// canonical order puts a name's descendants right after it).
    fn below<V>(&self, name: &Name, map: &BTreeMap<Name, V>) -> Here<'static> {
        match map.range(name.clone()..).next() {
            Some((n, _)) if name.zone_of(n) => Here::Empty,
            _ => Here::Missing,
        }
    }
}

enum Here<'a> {
    Apex,
    Addrs(Vec<IpAddr>, u32),
    Records(&'a [Record]),
    /// Exists, with no records (an empty non-terminal).
    Empty,
    Missing,
}

enum Found {
    Records(Vec<Rr>),
    /// A CNAME to follow, and its record.
    Alias(Name, Box<Rr>),
    Nothing,
}

impl Here<'_> {
    fn exists(&self) -> bool {
        !matches!(self, Here::Missing)
    }

    fn records(&self, name: &Name, qtype: RecordType, zone: &Zone) -> Found {
        let wants = |t: RecordType| qtype == t || qtype == RecordType::ANY;
        let rr = |ttl, data| Rr::from_rdata(name.clone(), ttl, data);
        let set: Vec<Rr> = match self {
            Here::Apex => {
                let mut set = Vec::new();
                if wants(RecordType::SOA) {
                    set.push(zone.soa());
                }
                if wants(RecordType::NS) {
                    set.push(rr(zone.node_ttl, RData::NS(NS(zone.ns.clone()))));
                }
                set
            }
            Here::Addrs(ips, ttl) => ips
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(a) if wants(RecordType::A) => Some(rr(*ttl, RData::A(A(*a)))),
                    IpAddr::V6(a) if wants(RecordType::AAAA) => {
                        Some(rr(*ttl, RData::AAAA(AAAA(*a))))
                    }
                    _ => None,
                })
                .collect(),
            Here::Records(records) => {
                if let [
                    cname @ Record {
                        data: Data::Cname(target),
                        ..
                    },
                ] = records
                {
                    let record = rr(cname.ttl, RData::CNAME(CNAME(target.clone())));
                    if qtype != RecordType::CNAME && qtype != RecordType::ANY {
                        return Found::Alias(target.clone(), Box::new(record));
                    }
                    return Found::Records(vec![record]);
                }
                records
                    .iter()
                    .filter(|r| wants(record_type(r.data.kind())))
                    .map(|r| rr(r.ttl, rdata(&r.data)))
                    .collect()
            }
            Here::Empty | Here::Missing => Vec::new(),
        };
        if set.is_empty() {
            Found::Nothing
        } else {
            Found::Records(set)
        }
    }
}

fn record_type(kind: Kind) -> RecordType {
    match kind {
        Kind::A => RecordType::A,
        Kind::Aaaa => RecordType::AAAA,
        Kind::Cname => RecordType::CNAME,
        Kind::Srv => RecordType::SRV,
        Kind::Txt => RecordType::TXT,
    }
}

/// A user record's data on the wire. TXT values longer than a character-string (255
/// bytes) go as several strings, which clients join.
fn rdata(data: &Data) -> RData {
    match data {
        Data::A(a) => RData::A(A(*a)),
        Data::Aaaa(a) => RData::AAAA(AAAA(*a)),
        Data::Cname(n) => RData::CNAME(CNAME(n.clone())),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, target.clone())),
        Data::Txt(t) => {
            let chunks: Vec<&[u8]> = t.as_bytes().chunks(255).collect();
            RData::TXT(TXT::from_bytes(if chunks.is_empty() {
                vec![b""]
            } else {
                chunks
            }))
        }
    }
}
