//! The nftables kernel backend: DNAT rules in a table of hawser's own.
//!
//! Built on the `nftables` crate (typed nftables JSON) and the `nft` program, rather
//! than nf_tables netlink spoken directly: nf_tables' netlink protocol is a bytecode of
//! expressions (payload loads, comparisons, numgen, map lookups into anonymous interval
//! sets) that `nft` compiles and decompiles, and re-implementing that compiler would be
//! most of this backend for no gain the tests could see. `nft` applies each batch as one
//! kernel transaction, so a reconcile is atomic. The price is a process per read and per
//! apply (see docs/benchmarks.md) and a dependency on the Debian `nftables` package.
//!
//! The table, `inet hawser`:
//!
//! ```text
//! table inet hawser {
//!   set vips4 { type ipv4_addr; }        # VIP addresses with a service, for masquerade
//!   set vips6 { type ipv6_addr; }
//!   chain services {                     # one rule per service, named by its comment
//!     ip daddr 11.1.2.3 tcp dport 80 dnat ip to numgen random mod 4 map
//!       { 0-2 : 198.18.1.2 . 8080, 3 : 198.18.2.2 . 8080, 4 : 198.18.3.2 . 8080 }
//!       comment "tcp://11.1.2.3:80"
//!   }
//!   chain prerouting  { type nat hook prerouting priority -100; jump services }
//!   chain output      { type nat hook output priority -100; jump services }
//!   chain postrouting { type nat hook postrouting priority 100;
//!                       ct original ip daddr @vips4 masquerade
//!                       ct original ip6 daddr @vips6 masquerade }
//! }
//! ```
//!
//! - Weights: a random number below the total weight picks a destination, each owning a
//!   range as long as its weight. A draining destination (weight 0) is kept in the map
//!   under a key at or above the total, which `numgen` never produces: it gets no new
//!   connections, open ones keep their conntrack NAT binding, and the rule still says
//!   the destination is there, so reading the rule back gives the state exactly.
//! - Prerouting catches connections from containers and namespaces behind the node,
//!   output those from the node itself; both need the VIP routed as a local address
//!   (see [`super::rtnl`]).
//! - Replies: every connection to a VIP is masqueraded on its way out, so the backend
//!   answers the node (which reverses both NATs) whatever its routes say about the VIP,
//!   which every node holds as a local address. Backends see the node's address, not
//!   the client's.
//! - Minimal change: a service whose destinations or weights change has its one rule
//!   replaced (deleted by handle and added again, in one transaction); nothing else in
//!   the table is touched.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};

use nftables::expr::{
    CT, CTDir, Expression, Map, NamedExpression, NgMode, Numgen, Payload, PayloadField, Range,
    SetItem,
};
use nftables::helper::{self, NftablesError};
use nftables::schema::{
    Chain, Element, NfCmd, NfListObject, NfObject, Nftables, Rule, Set, SetType, SetTypeValue,
    Table,
};
use nftables::stmt::{JumpTarget, Match, NAT, NATFamily, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::kernel::{Kernel, KernelError};
use super::rtnl::VipInterface;
use super::state::{Change, Dests, Programmed};
use super::vip::Service;
use crate::kernel::failed;

/// The table hawser owns (family `inet`).
pub const TABLE: &str = "hawser";
const SERVICES: &str = "services";
const SET4: &str = "vips4";
const SET6: &str = "vips6";

/// The nftables backend. Runs `nft` in the calling thread's network namespace.
pub struct Nft {
    program: String,
    addresses: VipInterface,
    /// What the last read found beyond the services (rule handles, damage to repair).
    last: Listing,
}

/// What a listing of the table held, besides the services themselves.
#[derive(Debug, Default)]
struct Listing {
    exists: bool,
    /// Chains, sets or hook rules missing or extra: rebuild the table.
    broken: bool,
    /// Each service's rule handle.
    handles: BTreeMap<Service, u32>,
    /// Rules in `services` that do not parse, or repeat a service: deleted.
    garbage: Vec<u32>,
    set_elements: BTreeSet<IpAddr>,
}

fn nft_error(e: NftablesError) -> String {
    match e {
        NftablesError::NftFailed { stderr, .. } => stderr.trim().to_owned(),
        other => other.to_string(),
    }
}

impl Nft {
    /// Check that `program` (usually `nft`) runs and may read the ruleset, and open the
    /// VIP interface `interface`.
    pub fn open(program: &str, interface: &str) -> Result<Nft, KernelError> {
        helper::get_current_ruleset_raw(Some(program), ["list", "tables"]).map_err(|e| {
            KernelError::Unsupported(format!(
                "--lb nftables needs the `{program}` program and the right to use it (as \
                 root; on Debian: apt-get install nftables): {}",
                nft_error(e)
            ))
        })?;
        Ok(Nft {
            program: program.to_owned(),
            addresses: VipInterface::open(interface)?,
            last: Listing::default(),
        })
    }

    fn list(&self) -> Result<Option<Nftables<'static>>, KernelError> {
        match helper::get_current_ruleset_raw(Some(&self.program), ["list", "table", "inet", TABLE])
        {
            Ok(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| KernelError::Unreadable(format!("nft -j list table: {e}"))),
            Err(NftablesError::NftFailed { stderr, .. })
                if stderr.contains("No such file or directory") =>
            {
                Ok(None)
            }
            Err(e) => Err(failed("nft list table inet hawser", nft_error(e))),
        }
    }

    /// Apply a batch with `nft -j -f -`: one transaction, all or nothing. (The crate's
    /// own helper leaves nft's error message on our stderr; this keeps it.)
    fn run(&self, commands: Vec<NfObject<'static>>) -> Result<(), KernelError> {
        let doc = Nftables {
            objects: commands.into(),
        };
        let json = serde_json::to_vec(&doc).map_err(|e| failed("encode an nft batch", e))?;
        let mut child = Command::new(&self.program)
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("run {}", self.program), e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let written = stdin.write_all(&json);
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|e| failed(format!("run {}", self.program), e))?;
        if !out.status.success() || written.is_err() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(failed("nft -j -f - (apply a batch)", stderr.trim()));
        }
        Ok(())
    }
}

impl Kernel for Nft {
    fn read(&mut self) -> Result<Programmed, KernelError> {
        let (services, listing) = match self.list()? {
            Some(doc) => parse_table(&doc),
            None => (
                BTreeMap::new(),
                Listing {
                    broken: true,
                    ..Listing::default()
                },
            ),
        };
        self.last = listing;
        let addresses = self.addresses.addresses()?;
        // What reading took is not what applying costs.
        self.addresses.take_messages();
        Ok(Programmed {
            addresses,
            services,
        })
    }

    fn apply(&mut self, current: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
        let mut target = current.clone();
        for c in changes {
            target.apply(c);
        }
        for c in changes {
            if let Change::AddAddress(ip) = c {
                self.addresses.add(*ip)?;
            }
        }
        let commands = commands(&self.last, &target, changes);
        let sent = commands.len();
        if !commands.is_empty() {
            self.run(commands)?;
        }
        for c in changes {
            if let Change::RemoveAddress(ip) = c {
                self.addresses.remove(*ip)?;
            }
        }
        Ok(sent + self.addresses.take_messages())
    }
}

fn cmd(c: NfCmd<'static>) -> NfObject<'static> {
    NfObject::CmdObject(c)
}

fn add_rule(service: Service, dests: &Dests) -> NfObject<'static> {
    cmd(NfCmd::Add(NfListObject::Rule(rule_object(service, dests))))
}

fn rule_object(service: Service, dests: &Dests) -> Rule<'static> {
    Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: SERVICES.into(),
        expr: render(service, dests).into(),
        handle: None,
        index: None,
        comment: Some(service.to_string().into()),
    }
}

fn delete_rule(handle: u32) -> NfObject<'static> {
    cmd(NfCmd::Delete(NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: SERVICES.into(),
        handle: Some(handle),
        ..Rule::default()
    })))
}

/// The batch that takes the table from what `last` read to `target`.
fn commands(last: &Listing, target: &Programmed, changes: &[Change]) -> Vec<NfObject<'static>> {
    let mut out = Vec::new();
    if last.broken {
        if last.exists {
            out.push(cmd(NfCmd::Delete(NfListObject::Table(table()))));
        }
        out.extend(skeleton().into_iter().map(|o| cmd(NfCmd::Add(o))));
    } else {
        out.extend(last.garbage.iter().map(|h| delete_rule(*h)));
    }
    let touched: BTreeSet<Service> = changes.iter().filter_map(Change::service).collect();
    for s in touched {
        let handle = last.handles.get(&s).copied().filter(|_| !last.broken);
        match (target.services.get(&s), handle) {
            // The crate's `replace` serialises without its `rule` key, which nft refuses;
            // a delete and an add in the same batch replace the rule as atomically.
            (Some(dests), Some(h)) => {
                out.push(delete_rule(h));
                out.push(add_rule(s, dests));
            }
            (Some(dests), None) => out.push(add_rule(s, dests)),
            (None, Some(h)) => out.push(delete_rule(h)),
            (None, None) => {}
        }
    }
    // The masquerade sets hold the addresses that have a service.
    let want: BTreeSet<IpAddr> = target.services.keys().map(|s| s.addr.ip()).collect();
    let have = if last.broken {
        BTreeSet::new()
    } else {
        last.set_elements.clone()
    };
    for (ips, add) in [
        (want.difference(&have), true),
        (have.difference(&want), false),
    ] {
        for ip in ips {
            let element = NfListObject::Element(Element {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: if ip.is_ipv4() { SET4 } else { SET6 }.into(),
                elem: vec![Expression::String(ip.to_string().into())].into(),
            });
            out.push(cmd(if add {
                NfCmd::Add(element)
            } else {
                NfCmd::Delete(element)
            }));
        }
    }
    out
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn base_chain(name: &'static str, hook: NfHook, prio: i32) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        _type: Some(NfChainType::NAT),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }
}

fn hook_rule(chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.into(),
        expr: expr.into(),
        ..Rule::default()
    })
}

/// `ct original ip daddr @set masquerade` (nft spells the family inside the key).
fn masquerade(key: &'static str, set: &'static str) -> Vec<Statement<'static>> {
    vec![
        eq(
            Expression::Named(NamedExpression::CT(CT {
                key: key.into(),
                family: None,
                dir: Some(CTDir::Original),
            })),
            Expression::String(format!("@{set}").into()),
        ),
        Statement::Masquerade(None),
    ]
}

/// The hook chain names, and how many rules each holds in a sound table.
const HOOKS: [(&str, usize); 3] = [("prerouting", 1), ("output", 1), ("postrouting", 2)];

/// Everything in the table but the services.
fn skeleton() -> Vec<NfListObject<'static>> {
    let set = |name: &'static str, t: SetType| {
        NfListObject::Set(Box::new(Set {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.into(),
            set_type: SetTypeValue::Single(t),
            ..Set::default()
        }))
    };
    let jump = || {
        vec![Statement::Jump(JumpTarget {
            target: SERVICES.into(),
        })]
    };
    vec![
        NfListObject::Table(table()),
        set(SET4, SetType::Ipv4Addr),
        set(SET6, SetType::Ipv6Addr),
        NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: SERVICES.into(),
            ..Chain::default()
        }),
        NfListObject::Chain(base_chain("prerouting", NfHook::Prerouting, -100)),
        NfListObject::Chain(base_chain("output", NfHook::Output, -100)),
        NfListObject::Chain(base_chain("postrouting", NfHook::Postrouting, 100)),
        hook_rule("prerouting", jump()),
        hook_rule("output", jump()),
        hook_rule("postrouting", masquerade("ip daddr", SET4)),
        hook_rule("postrouting", masquerade("ip6 daddr", SET6)),
    ]
}

/// The statements of a service's rule (see the module docs for the weights).
pub fn render(service: Service, dests: &Dests) -> Vec<Statement<'static>> {
    let v4 = service.addr.is_ipv4();
    let total: u32 = dests.values().sum();
    let modulus = total.max(1);
    let mut items = Vec::new();
    let (mut next, mut parked) = (0u32, modulus);
    for (addr, w) in dests {
        let key = if *w == 0 {
            parked += 1;
            Expression::Number(parked - 1)
        } else if *w == 1 {
            next += 1;
            Expression::Number(next - 1)
        } else {
            next += w;
            Expression::Range(Box::new(Range {
                range: [Expression::Number(next - w), Expression::Number(next - 1)],
            }))
        };
        let value = Expression::Named(NamedExpression::Concat(vec![
            Expression::String(addr.ip().to_string().into()),
            Expression::Number(u32::from(addr.port())),
        ]));
        items.push(SetItem::Mapping(key, value));
    }
    vec![
        eq(
            payload(if v4 { "ip" } else { "ip6" }, "daddr"),
            Expression::String(service.addr.ip().to_string().into()),
        ),
        eq(
            payload(service.proto.as_str(), "dport"),
            Expression::Number(u32::from(service.addr.port())),
        ),
        Statement::DNAT(Some(NAT {
            addr: Some(Expression::Named(NamedExpression::Map(Box::new(Map {
                key: Expression::Named(NamedExpression::Numgen(Numgen {
                    mode: NgMode::Random,
                    ng_mod: modulus,
                    offset: None,
                })),
                data: Expression::Named(NamedExpression::Set(items)),
            })))),
            family: Some(if v4 { NATFamily::IP } else { NATFamily::IP6 }),
            port: None,
            flags: None,
        })),
    ]
}

/// Read a service's rule back: its comment names the service, its DNAT map gives the
/// destinations. `None` for anything else (a rule written by someone else, or damaged):
/// such a rule is deleted and the service's rule written anew.
pub fn parse(rule: &Rule<'_>) -> Option<(Service, Dests)> {
    let vip: super::vip::Vip = rule.comment.as_ref()?.parse().ok()?;
    let super::vip::Host::Ip(ip) = vip.host else {
        return None;
    };
    let service = Service {
        proto: vip.proto,
        addr: SocketAddr::new(ip, vip.port),
    };
    // The rule must be exactly what `render` writes for it, apart from the map.
    let [daddr, dport, Statement::DNAT(Some(nat))] = &rule.expr[..] else {
        return None;
    };
    let expected = render(service, &Dests::new());
    if *daddr != expected[0] || *dport != expected[1] {
        return None;
    }
    let Some(Expression::Named(NamedExpression::Map(map))) = &nat.addr else {
        return None;
    };
    let Expression::Named(NamedExpression::Numgen(ng)) = &map.key else {
        return None;
    };
    let Expression::Named(NamedExpression::Set(items)) = &map.data else {
        return None;
    };
    let number = |e: &Expression<'_>| match e {
        Expression::Number(n) => Some(*n),
        _ => None,
    };
    let mut dests = Dests::new();
    let mut active = 0u32;
    for item in items {
        // The crate reads `[key, value]` pairs back as a two-item list.
        let (key, value) = match item {
            SetItem::Mapping(k, v) => (k, v),
            SetItem::Element(Expression::List(pair)) if pair.len() == 2 => (&pair[0], &pair[1]),
            _ => return None,
        };
        let (lo, hi) = match key {
            Expression::Number(n) => (*n, *n),
            Expression::Range(r) => (number(&r.range[0])?, number(&r.range[1])?),
            _ => return None,
        };
        let Expression::Named(NamedExpression::Concat(parts)) = value else {
            return None;
        };
        let [Expression::String(ip), port] = &parts[..] else {
            return None;
        };
        let addr = SocketAddr::new(
            ip.parse::<IpAddr>().ok()?,
            u16::try_from(number(port)?).ok()?,
        );
        let weight = if lo >= ng.ng_mod {
            0
        } else {
            let w = hi.checked_sub(lo)? + 1;
            active += w;
            w
        };
        if addr.is_ipv4() != service.addr.is_ipv4() || dests.insert(addr, weight).is_some() {
            return None;
        }
    }
    // Weights that do not cover the modulus exactly are not ours (or were edited).
    if active != ng.ng_mod && !(active == 0 && ng.ng_mod == 1) {
        return None;
    }
    Some((service, dests))
}

/// Split a listing of the table into the services and what else it holds.
fn parse_table(doc: &Nftables<'_>) -> (BTreeMap<Service, Dests>, Listing) {
    let mut listing = Listing::default();
    let mut services = BTreeMap::new();
    let mut chains = BTreeSet::new();
    let mut sets = BTreeSet::new();
    let mut hook_rules: BTreeMap<String, usize> = BTreeMap::new();
    for object in doc.objects.iter() {
        let NfObject::ListObject(o) = object else {
            continue;
        };
        match o {
            NfListObject::Table(_) => listing.exists = true,
            NfListObject::Chain(c) => {
                chains.insert(c.name.to_string());
            }
            NfListObject::Set(s) => {
                sets.insert(s.name.to_string());
                for e in s.elem.iter().flat_map(|e| e.iter()) {
                    match e {
                        Expression::String(ip) => match ip.parse() {
                            Ok(ip) => {
                                listing.set_elements.insert(ip);
                            }
                            Err(_) => listing.broken = true,
                        },
                        _ => listing.broken = true,
                    }
                }
            }
            NfListObject::Rule(r) if r.chain == SERVICES => match (parse(r), r.handle) {
                (Some((s, dests)), Some(h)) if !services.contains_key(&s) => {
                    services.insert(s, dests);
                    listing.handles.insert(s, h);
                }
                (_, Some(h)) => listing.garbage.push(h),
                (_, None) => listing.broken = true,
            },
            NfListObject::Rule(r) => *hook_rules.entry(r.chain.to_string()).or_default() += 1,
            _ => {}
        }
    }
    let sound = sets == BTreeSet::from([SET4.to_owned(), SET6.to_owned()])
        && chains.contains(SERVICES)
        && HOOKS
            .iter()
            .all(|(c, n)| chains.contains(*c) && hook_rules.get(*c) == Some(n))
        && chains.len() == HOOKS.len() + 1;
    if !sound {
        listing.broken = true;
    }
    if listing.broken {
        // The table is rebuilt: nothing in it counts as programmed.
        services.clear();
        listing.handles.clear();
    }
    (services, listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::vip::Proto;

    fn service(s: &str) -> Service {
        let (proto, addr) = s.split_once("://").unwrap();
        Service {
            proto: if proto == "tcp" {
                Proto::Tcp
            } else {
                Proto::Udp
            },
            addr: addr.parse().unwrap(),
        }
    }

    fn rule_json(s: Service, dests: &Dests, handle: u32) -> serde_json::Value {
        let mut v = serde_json::to_value(rule_object(s, dests)).unwrap();
        v["handle"] = handle.into();
        v
    }

    #[test]
    fn rules_read_back_as_written() {
        let s = service("tcp://11.1.2.3:80");
        let dests: Dests = [
            ("198.18.1.2:8080".parse().unwrap(), 3),
            ("198.18.2.2:8080".parse().unwrap(), 1),
            ("198.18.3.2:80".parse().unwrap(), 0),
            ("198.18.4.2:80".parse().unwrap(), 0),
        ]
        .into();
        let rule: Rule = serde_json::from_value(rule_json(s, &dests, 7)).unwrap();
        assert_eq!(parse(&rule), Some((s, dests)));
        let v6 = service("udp://[fd01:c::1]:53");
        let draining: Dests = [("[2001:db8::1]:53".parse().unwrap(), 0)].into();
        let rule: Rule = serde_json::from_value(rule_json(v6, &draining, 8)).unwrap();
        assert_eq!(parse(&rule), Some((v6, draining)));
    }

    /// What nft 1.0.6 printed for a rule this module wrote (`nft -j list table`): the
    /// listing adds `offset` to numgen and a handle.
    #[test]
    fn a_listing_from_nft_parses() {
        let json = r#"{"family":"inet","table":"hawser","chain":"services","handle":8,
            "comment":"tcp://11.1.2.3:80","expr":[
            {"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"11.1.2.3"}},
            {"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":80}},
            {"dnat":{"family":"ip","addr":{"map":{"key":{"numgen":{"mode":"random","mod":5,"offset":0}},
              "data":{"set":[[{"range":[0,2]},{"concat":["198.18.1.2",8080]}],
                             [{"range":[3,4]},{"concat":["198.18.2.2",8080]}],
                             [5,{"concat":["198.18.3.2",80]}]]}}}}}]}"#;
        let rule: Rule = serde_json::from_str(json).unwrap();
        let (s, dests) = parse(&rule).unwrap();
        assert_eq!(s, service("tcp://11.1.2.3:80"));
        assert_eq!(
            dests,
            [
                ("198.18.1.2:8080".parse().unwrap(), 3),
                ("198.18.2.2:8080".parse().unwrap(), 2),
                ("198.18.3.2:80".parse().unwrap(), 0),
            ]
            .into()
        );
    }

    #[test]
    fn foreign_or_edited_rules_do_not_parse() {
        let s = service("tcp://11.1.2.3:80");
        let dests: Dests = [("198.18.1.2:8080".parse().unwrap(), 2)].into();
        let mut v = rule_json(s, &dests, 7);
        v["comment"] = "a rule of someone else".into();
        assert!(parse(&serde_json::from_value(v).unwrap()).is_none());
        let mut v = rule_json(s, &dests, 7);
        v["comment"] = "tcp://11.1.2.3:81".into();
        assert!(
            parse(&serde_json::from_value(v).unwrap()).is_none(),
            "port does not match"
        );
        let mut v = rule_json(s, &dests, 7);
        v["expr"][2]["dnat"]["addr"]["map"]["key"]["numgen"]["mod"] = 3.into();
        assert!(
            parse(&serde_json::from_value(v).unwrap()).is_none(),
            "weights do not cover mod"
        );
    }

    #[test]
    fn one_changed_service_rewrites_one_rule() {
        let s = service("tcp://11.1.2.3:80");
        let d: SocketAddr = "198.18.1.2:8080".parse().unwrap();
        let mut current = Programmed::default();
        current.addresses.insert(s.addr.ip());
        current.services.insert(s, [(d, 1)].into());
        let last = Listing {
            exists: true,
            handles: [(s, 42)].into(),
            set_elements: [s.addr.ip()].into(),
            ..Listing::default()
        };
        let changes = vec![Change::SetWeight(s, d, 0)];
        let mut target = current.clone();
        target.apply(&changes[0]);
        let batch = commands(&last, &target, &changes);
        assert_eq!(
            batch.len(),
            2,
            "the service's rule is replaced, nothing else"
        );
        let json = serde_json::to_value(&batch).unwrap();
        assert_eq!(json[0]["delete"]["rule"]["handle"], 42);
        assert_eq!(json[1]["add"]["rule"]["comment"], "tcp://11.1.2.3:80");
        // Nothing to do: no command at all.
        assert!(commands(&last, &current, &[]).is_empty());
    }

    #[test]
    fn a_broken_table_is_rebuilt_whole() {
        let last = Listing {
            exists: true,
            broken: true,
            ..Listing::default()
        };
        let batch = commands(&last, &Programmed::default(), &[]);
        let json = serde_json::to_string(&batch).unwrap();
        assert!(json.starts_with(r#"[{"delete":{"table""#), "{json}");
        assert_eq!(batch.len(), 1 + skeleton().len());
    }
}
