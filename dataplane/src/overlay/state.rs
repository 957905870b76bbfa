//! What a kernel holds for the overlay, the changes between two such states, and the
//! pure function that applies a change: the overlay reconciler's vocabulary.
//!
//! A kernel backend reads its state into a [`Programmed`] (only what hawser owns: its
//! VXLAN devices and, on them, the permanent neighbours, the FDB entries and the routes
//! it adds) and applies [`Change`]s. The diff's contract (property-tested): for any two
//! states `a` and `b`, applying `diff(a, b)` to `a` in order gives `b`; `diff(a, a)` is
//! empty; and a device whose settings are equal in both is never deleted, only edited
//! entry by entry. Recreating a device drops every neighbour on it (dcos-overlay's
//! MAC reset did that on every restart), so it happens only when a setting the kernel
//! cannot change in place differs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use super::vtep::Mac;
use crate::prefix::Prefix;

/// A VXLAN device's settings: what it is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Device {
    pub vni: u32,
    /// The UDP port VXLAN packets go to.
    pub port: u16,
    pub mtu: u16,
    pub mac: Mac,
    /// The underlay address VXLAN packets leave from.
    pub local: IpAddr,
}

/// An address on a device, with the length of its connected range
/// (`198.19.0.4/24`; host bits set, unlike a [`Prefix`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfAddr {
    pub ip: IpAddr,
    pub len: u8,
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.len)
    }
}

/// One VXLAN device and what hawser keeps on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub device: Device,
    pub up: bool,
    pub addresses: BTreeSet<IfAddr>,
    /// Permanent neighbour entries: a peer's VTEP address → its VTEP MAC.
    pub neighbours: BTreeMap<IpAddr, Mac>,
    /// Forwarding entries: a peer's VTEP MAC → its underlay address.
    pub fdb: BTreeMap<Mac, IpAddr>,
    /// Routes: a peer's subnet → via its VTEP address.
    pub routes: BTreeMap<Prefix, IpAddr>,
}

impl Link {
    /// A device just created: down, with nothing on it.
    pub fn new(device: Device) -> Link {
        Link {
            device,
            up: false,
            addresses: BTreeSet::new(),
            neighbours: BTreeMap::new(),
            fdb: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    }
}

/// The overlay's state in a kernel: hawser's VXLAN devices, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Programmed {
    pub links: BTreeMap<String, Link>,
}

/// One minimal change to a kernel's state; the first field names the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Create a device (down, with nothing on it).
    AddLink(String, Device),
    /// Delete a device, and with it everything on it.
    RemoveLink(String),
    SetUp(String, bool),
    AddAddress(String, IfAddr),
    RemoveAddress(String, IfAddr),
    /// Add or replace a neighbour entry.
    SetNeighbour(String, IpAddr, Mac),
    RemoveNeighbour(String, IpAddr),
    /// Add or replace a forwarding entry.
    SetFdb(String, Mac, IpAddr),
    RemoveFdb(String, Mac),
    /// Add or replace a route.
    SetRoute(String, Prefix, IpAddr),
    RemoveRoute(String, Prefix),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddLink(l, d) => write!(
                f,
                "create {l} (vni {}, port {}, mtu {}, mac {}, local {})",
                d.vni, d.port, d.mtu, d.mac, d.local
            ),
            Change::RemoveLink(l) => write!(f, "delete {l}"),
            Change::SetUp(l, up) => write!(f, "set {l} {}", if *up { "up" } else { "down" }),
            Change::AddAddress(l, a) => write!(f, "add address {a} to {l}"),
            Change::RemoveAddress(l, a) => write!(f, "remove address {a} from {l}"),
            Change::SetNeighbour(l, ip, mac) => write!(f, "neighbour {ip} is {mac} on {l}"),
            Change::RemoveNeighbour(l, ip) => write!(f, "remove neighbour {ip} from {l}"),
            Change::SetFdb(l, mac, dst) => write!(f, "forward {mac} to {dst} on {l}"),
            Change::RemoveFdb(l, mac) => write!(f, "remove forwarding of {mac} from {l}"),
            Change::SetRoute(l, to, via) => write!(f, "route {to} via {via} on {l}"),
            Change::RemoveRoute(l, to) => write!(f, "remove route {to} from {l}"),
        }
    }
}

impl Programmed {
    /// Apply one change. A change to a missing device is ignored, as a kernel would
    /// refuse it.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::AddLink(name, device) => {
                self.links.insert(name.clone(), Link::new(*device));
            }
            Change::RemoveLink(name) => {
                self.links.remove(name);
            }
            Change::SetUp(name, up) => self.edit(name, |l| l.up = *up),
            Change::AddAddress(name, a) => self.edit(name, |l| {
                l.addresses.insert(*a);
            }),
            Change::RemoveAddress(name, a) => self.edit(name, |l| {
                l.addresses.remove(a);
            }),
            Change::SetNeighbour(name, ip, mac) => self.edit(name, |l| {
                l.neighbours.insert(*ip, *mac);
            }),
            Change::RemoveNeighbour(name, ip) => self.edit(name, |l| {
                l.neighbours.remove(ip);
            }),
            Change::SetFdb(name, mac, dst) => self.edit(name, |l| {
                l.fdb.insert(*mac, *dst);
            }),
            Change::RemoveFdb(name, mac) => self.edit(name, |l| {
                l.fdb.remove(mac);
            }),
            Change::SetRoute(name, to, via) => self.edit(name, |l| {
                l.routes.insert(*to, *via);
            }),
            Change::RemoveRoute(name, to) => self.edit(name, |l| {
                l.routes.remove(to);
            }),
        }
    }

    fn edit(&mut self, name: &str, f: impl FnOnce(&mut Link)) {
        if let Some(link) = self.links.get_mut(name) {
            f(link);
        }
    }
}

/// The changes of one keyed table: a `set` for each entry missing or different in
/// `from`, a `remove` for each entry `to` lacks.
fn table<K: Ord + Copy, V: PartialEq + Copy>(
    from: &BTreeMap<K, V>,
    to: &BTreeMap<K, V>,
    set: impl Fn(K, V) -> Change,
    remove: impl Fn(K) -> Change,
    adds: &mut Vec<Change>,
    removals: &mut Vec<Change>,
) {
    for (k, v) in to {
        if from.get(k) != Some(v) {
            adds.push(set(*k, *v));
        }
    }
    for k in from.keys().filter(|k| !to.contains_key(k)) {
        removals.push(remove(*k));
    }
}

/// The changes that turn `from` into `to`. A device whose settings differ is deleted
/// and created again; any other device is edited entry by entry. Order: devices,
/// addresses, up, neighbours, forwarding entries and routes are added first (so a
/// route is never there before its next hop's entries), then routes, forwarding
/// entries, neighbours and addresses removed (the reverse), and devices deleted last.
pub fn diff(from: &Programmed, to: &Programmed) -> Vec<Change> {
    let mut adds = Vec::new();
    // Removals by kind, in the order they are sent.
    let (mut routes, mut fdb, mut neighbours, mut addresses) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, want) in &to.links {
        let have = match from.links.get(name) {
            Some(have) if have.device == want.device => have.clone(),
            recreate => {
                if recreate.is_some() {
                    adds.push(Change::RemoveLink(name.clone()));
                }
                adds.push(Change::AddLink(name.clone(), want.device));
                Link::new(want.device)
            }
        };
        let n = || name.clone();
        for a in want.addresses.difference(&have.addresses) {
            adds.push(Change::AddAddress(n(), *a));
        }
        for a in have.addresses.difference(&want.addresses) {
            addresses.push(Change::RemoveAddress(n(), *a));
        }
        if have.up != want.up {
            adds.push(Change::SetUp(n(), want.up));
        }
        table(
            &have.neighbours,
            &want.neighbours,
            |ip, mac| Change::SetNeighbour(n(), ip, mac),
            |ip| Change::RemoveNeighbour(n(), ip),
            &mut adds,
            &mut neighbours,
        );
        table(
            &have.fdb,
            &want.fdb,
            |mac, dst| Change::SetFdb(n(), mac, dst),
            |mac| Change::RemoveFdb(n(), mac),
            &mut adds,
            &mut fdb,
        );
        table(
            &have.routes,
            &want.routes,
            |to, via| Change::SetRoute(n(), to, via),
            |to| Change::RemoveRoute(n(), to),
            &mut adds,
            &mut routes,
        );
    }
    let gone = from.links.keys().filter(|n| !to.links.contains_key(*n));
    adds.into_iter()
        .chain(routes)
        .chain(fdb)
        .chain(neighbours)
        .chain(addresses)
        .chain(gone.map(|n| Change::RemoveLink(n.clone())))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    fn mac(i: u8) -> Mac {
        Mac([0x02, 0, 0, 0, 0, i])
    }

    fn device(vni: u32, mtu: u16) -> Device {
        Device {
            vni,
            port: 64000,
            mtu,
            mac: mac(0),
            local: IpAddr::from([198, 18, 0, 1]),
        }
    }

    /// Small states over a few names and entries, so that two random states overlap.
    pub(crate) fn programmed() -> impl Strategy<Value = Programmed> {
        let ip = |n: u8| (0u8..4).prop_map(move |i| IpAddr::from([198, 19, n, i]));
        let link = (
            (1u32..3, prop_oneof![Just(1400u16), Just(1420u16)]),
            any::<bool>(),
            proptest::collection::btree_set(
                (ip(0), 24u8..26).prop_map(|(ip, len)| IfAddr { ip, len }),
                0..3,
            ),
            proptest::collection::btree_map(ip(0), (1u8..4).prop_map(mac), 0..4),
            proptest::collection::btree_map((1u8..4).prop_map(mac), ip(1), 0..4),
            proptest::collection::btree_map(
                (0u8..4).prop_map(|i| Prefix::new(IpAddr::from([198, 18, i, 0]), 24).unwrap()),
                ip(0),
                0..4,
            ),
        )
            .prop_map(
                |((vni, mtu), up, addresses, neighbours, fdb, routes)| Link {
                    device: device(vni, mtu),
                    up,
                    addresses,
                    neighbours,
                    fdb,
                    routes,
                },
            );
        proptest::collection::btree_map(
            prop_oneof![Just("vtep1".to_string()), Just("vtep2".to_string())],
            link,
            0..3,
        )
        .prop_map(|links| Programmed { links })
    }

    proptest! {
        /// Applying the diff gives the target; the diff of a state with itself is empty.
        #[test]
        fn the_diff_keeps_its_laws(a in programmed(), b in programmed()) {
            crate::diff_laws::check(&a, &b, diff, Programmed::apply)?;
        }

        /// Minimal: a device with the same settings on both sides is never deleted, and
        /// each entry that differs costs one change.
        #[test]
        fn devices_are_recreated_only_when_their_settings_differ(
            a in programmed(),
            b in programmed(),
        ) {
            let changes = diff(&a, &b);
            for (name, want) in &b.links {
                let Some(have) = a.links.get(name) else { continue };
                let deleted = changes.contains(&Change::RemoveLink(name.clone()));
                prop_assert_eq!(deleted, have.device != want.device);
                if have.device == want.device {
                    let differ = want.neighbours.iter().filter(|(k, v)| have.neighbours.get(k) != Some(v)).count()
                        + have.neighbours.keys().filter(|k| !want.neighbours.contains_key(k)).count()
                        + want.fdb.iter().filter(|(k, v)| have.fdb.get(k) != Some(v)).count()
                        + have.fdb.keys().filter(|k| !want.fdb.contains_key(k)).count()
                        + want.routes.iter().filter(|(k, v)| have.routes.get(k) != Some(v)).count()
                        + have.routes.keys().filter(|k| !want.routes.contains_key(k)).count()
                        + have.addresses.symmetric_difference(&want.addresses).count()
                        + usize::from(have.up != want.up);
                    let mine = changes.iter().filter(|c| change_link(c) == name).count();
                    prop_assert_eq!(mine, differ);
                }
            }
        }
    }

    fn change_link(c: &Change) -> &str {
        match c {
            Change::AddLink(l, _)
            | Change::RemoveLink(l)
            | Change::SetUp(l, _)
            | Change::AddAddress(l, _)
            | Change::RemoveAddress(l, _)
            | Change::SetNeighbour(l, ..)
            | Change::RemoveNeighbour(l, _)
            | Change::SetFdb(l, ..)
            | Change::RemoveFdb(l, _)
            | Change::SetRoute(l, ..)
            | Change::RemoveRoute(l, _) => l,
        }
    }

    #[test]
    fn a_new_mtu_recreates_the_device_with_its_entries_and_routes_go_first() {
        let mut a = Programmed::default();
        let mut link = Link::new(device(1, 1420));
        link.up = true;
        link.neighbours
            .insert(IpAddr::from([198, 19, 0, 2]), mac(2));
        link.routes.insert(
            "198.18.2.0/24".parse().unwrap(),
            IpAddr::from([198, 19, 0, 2]),
        );
        a.links.insert("vtep1".into(), link.clone());
        let mut b = a.clone();
        b.links.get_mut("vtep1").unwrap().device.mtu = 1400;
        let changes = diff(&a, &b);
        assert_eq!(changes[0], Change::RemoveLink("vtep1".into()));
        assert_eq!(changes.len(), 5, "{changes:?}");
        // A departed peer: its route goes before its neighbour entry.
        let mut c = a.clone();
        let l = c.links.get_mut("vtep1").unwrap();
        l.routes.clear();
        l.neighbours.clear();
        let changes = diff(&a, &c);
        assert!(matches!(changes[0], Change::RemoveRoute(..)), "{changes:?}");
        assert!(matches!(changes[1], Change::RemoveNeighbour(..)));
        assert_eq!(
            changes[0].to_string(),
            "remove route 198.18.2.0/24 from vtep1"
        );
    }
}
