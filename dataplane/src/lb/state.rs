//! What a kernel holds for the load balancer, the changes between two such states, and
//! the pure function that applies a change: the reconciler's whole vocabulary.
//!
//! Kernel backends read their state into a [`Programmed`], and apply [`Change`]s; the
//! diff is computed here, once, for all of them. Its contract (property-tested): for any
//! two states `a` and `b`, applying `diff(a, b)` to `a` in order gives `b`, and
//! `diff(a, a)` is empty.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::vip::Service;

/// A service's destinations and their weights (0: draining, no new connections).
pub type Dests = BTreeMap<SocketAddr, u32>;

/// The load balancer's state in a kernel: the VIP addresses made local (so that traffic
/// to them reaches the NAT hooks) and the virtual services with their destinations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Programmed {
    pub addresses: BTreeSet<IpAddr>,
    pub services: BTreeMap<Service, Dests>,
}

/// One minimal change to a kernel's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    AddAddress(IpAddr),
    RemoveAddress(IpAddr),
    /// A new service, with no destinations yet.
    AddService(Service),
    /// Remove a service and whatever destinations it has.
    RemoveService(Service),
    AddDest(Service, SocketAddr, u32),
    SetWeight(Service, SocketAddr, u32),
    RemoveDest(Service, SocketAddr),
}

impl Change {
    /// The service a change touches, if any.
    pub fn service(&self) -> Option<Service> {
        match self {
            Change::AddAddress(_) | Change::RemoveAddress(_) => None,
            Change::AddService(s)
            | Change::RemoveService(s)
            | Change::AddDest(s, ..)
            | Change::SetWeight(s, ..)
            | Change::RemoveDest(s, _) => Some(*s),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddAddress(a) => write!(f, "add address {a}"),
            Change::RemoveAddress(a) => write!(f, "remove address {a}"),
            Change::AddService(s) => write!(f, "add service {s}"),
            Change::RemoveService(s) => write!(f, "remove service {s}"),
            Change::AddDest(s, d, w) => write!(f, "add {d} (weight {w}) to {s}"),
            Change::SetWeight(s, d, w) => write!(f, "set weight of {d} in {s} to {w}"),
            Change::RemoveDest(s, d) => write!(f, "remove {d} from {s}"),
        }
    }
}

impl Programmed {
    /// Apply one change. Changes that do not fit the state (a destination of a missing
    /// service) are applied as far as they make sense, as a kernel would refuse them.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::AddAddress(a) => {
                self.addresses.insert(*a);
            }
            Change::RemoveAddress(a) => {
                self.addresses.remove(a);
            }
            Change::AddService(s) => {
                self.services.entry(*s).or_default();
            }
            Change::RemoveService(s) => {
                self.services.remove(s);
            }
            Change::AddDest(s, d, w) | Change::SetWeight(s, d, w) => {
                if let Some(dests) = self.services.get_mut(s) {
                    dests.insert(*d, *w);
                }
            }
            Change::RemoveDest(s, d) => {
                if let Some(dests) = self.services.get_mut(s) {
                    dests.remove(d);
                }
            }
        }
    }

    /// How many destinations in all.
    pub fn dests(&self) -> usize {
        self.services.values().map(BTreeMap::len).sum()
    }
}

/// The changes that turn `from` into `to`, fewest first-class operations: a service
/// present in both is edited destination by destination, never replaced. Order: new
/// addresses and services first (so traffic to a VIP never finds a service without its
/// address), then destinations, then removals.
pub fn diff(from: &Programmed, to: &Programmed) -> Vec<Change> {
    let mut changes = Vec::new();
    for a in to.addresses.difference(&from.addresses) {
        changes.push(Change::AddAddress(*a));
    }
    for (s, want) in &to.services {
        let have = match from.services.get(s) {
            Some(have) => have,
            None => {
                changes.push(Change::AddService(*s));
                changes.extend(want.iter().map(|(d, w)| Change::AddDest(*s, *d, *w)));
                continue;
            }
        };
        for (d, w) in want {
            match have.get(d) {
                None => changes.push(Change::AddDest(*s, *d, *w)),
                Some(old) if old != w => changes.push(Change::SetWeight(*s, *d, *w)),
                Some(_) => {}
            }
        }
        for d in have.keys().filter(|d| !want.contains_key(d)) {
            changes.push(Change::RemoveDest(*s, *d));
        }
    }
    for s in from
        .services
        .keys()
        .filter(|s| !to.services.contains_key(s))
    {
        changes.push(Change::RemoveService(*s));
    }
    for a in from.addresses.difference(&to.addresses) {
        changes.push(Change::RemoveAddress(*a));
    }
    changes
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::lb::vip::Proto;

    /// Small states over a few addresses, so that two random states overlap.
    pub(crate) fn programmed() -> impl Strategy<Value = Programmed> {
        let ip = (0u8..4).prop_map(|i| IpAddr::from([198, 18, 0, i]));
        let service = (any::<bool>(), 0u8..4, 1u16..3).prop_map(|(udp, i, port)| Service {
            proto: if udp { Proto::Udp } else { Proto::Tcp },
            addr: SocketAddr::from(([11, 0, 0, i], port)),
        });
        let dests = proptest::collection::btree_map(
            (0u8..5, 1u16..3).prop_map(|(i, p)| SocketAddr::from(([198, 18, 1, i], p))),
            0u32..4,
            0..4,
        );
        (
            proptest::collection::btree_set(ip, 0..4),
            proptest::collection::btree_map(service, dests, 0..5),
        )
            .prop_map(|(addresses, services)| Programmed {
                addresses,
                services,
            })
    }

    proptest! {
        /// Applying the diff gives the target; the diff of a state with itself is empty.
        #[test]
        fn the_diff_keeps_its_laws(a in programmed(), b in programmed()) {
            crate::diff_laws::check(&a, &b, diff, Programmed::apply)?;
        }

        /// Minimal: one change per destination or address that differs, one per service
        /// added or removed (plus its destinations when added).
        #[test]
        fn the_diff_is_minimal(a in programmed(), b in programmed()) {
            let changes = diff(&a, &b);
            let addresses = a.addresses.symmetric_difference(&b.addresses).count();
            let mut expected = addresses;
            for s in a.services.keys().chain(b.services.keys()).collect::<BTreeSet<_>>() {
                match (a.services.get(s), b.services.get(s)) {
                    (None, Some(want)) => expected += 1 + want.len(),
                    (Some(_), None) => expected += 1,
                    (Some(have), Some(want)) => {
                        expected += want.iter().filter(|(d, w)| have.get(d) != Some(w)).count();
                        expected += have.keys().filter(|d| !want.contains_key(d)).count();
                    }
                    (None, None) => unreachable!(),
                }
            }
            prop_assert_eq!(changes.len(), expected);
        }
    }

    #[test]
    fn a_weight_change_is_one_change() {
        let s = Service {
            proto: Proto::Tcp,
            addr: "11.1.2.3:80".parse().unwrap(),
        };
        let d: SocketAddr = "198.18.1.2:8080".parse().unwrap();
        let mut a = Programmed::default();
        a.services.insert(s, [(d, 1)].into());
        let mut b = a.clone();
        b.services.get_mut(&s).unwrap().insert(d, 0);
        assert_eq!(diff(&a, &b), vec![Change::SetWeight(s, d, 0)]);
        assert_eq!(
            Change::SetWeight(s, d, 0).to_string(),
            "set weight of 198.18.1.2:8080 in tcp://11.1.2.3:80 to 0"
        );
    }
}
