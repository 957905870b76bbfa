//! Addresses for named VIPs, and the names this node's kernel serves (for DNS).
//!
//! A named VIP (`tcp://web:80`) gets one address from each configured range (by default
//! 11.0.0.0/8 and fd01:c::/64, as dcos-net): the IPv4 one serves its IPv4 backends, the
//! IPv6 one its IPv6 backends. Every node computes the assignment itself, so it must be
//! the same everywhere: [`assign`] is a pure function of the *set* of names (and of the
//! addresses that IP VIPs already use). dcos-net probed for a free address in the order
//! each node first saw the names, so two nodes that saw two colliding names in opposite
//! orders gave them opposite addresses.
//!
//! How: names are taken in sorted order; each probes `hash(name, 0)`, `hash(name, 1)`,
//! ... within the range until it finds an address no earlier name and no IP VIP holds.
//! A name's address therefore changes only when a new name that sorts before it lands on
//! the same address (in an /8, about one new name in 16 million per existing name).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use crate::prefix::Prefix;
use crate::probe::first_free;

/// The ranges named VIPs take their addresses from. Either may be absent (that family
/// gets no named VIPs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameRanges {
    pub v4: Option<Prefix>,
    pub v6: Option<Prefix>,
}

impl Default for NameRanges {
    fn default() -> Self {
        NameRanges {
            v4: Some("11.0.0.0/8".parse().expect("a valid range")),
            v6: Some("fd01:c::/64".parse().expect("a valid range")),
        }
    }
}

/// The addresses of every name in `names` (v4 first, then v6), given the addresses IP
/// VIPs already hold (`taken`). A name that finds no free address (the range is full)
/// gets none in that family.
pub fn assign(
    names: &BTreeSet<String>,
    taken: &BTreeSet<IpAddr>,
    ranges: NameRanges,
) -> BTreeMap<String, Vec<IpAddr>> {
    let mut out: BTreeMap<String, Vec<IpAddr>> =
        names.iter().map(|n| (n.clone(), Vec::new())).collect();
    for range in [ranges.v4, ranges.v6].into_iter().flatten() {
        let mut used: BTreeSet<IpAddr> = taken
            .iter()
            .copied()
            .filter(|a| range.contains(*a))
            .collect();
        for name in names {
            if used.len() as u128 >= range.hosts() {
                break;
            }
            let found = first_free(name, range.hosts(), |k| {
                range.host(k).is_some_and(|a| !used.contains(&a))
            })
            .and_then(|k| range.host(k));
            if let Some(addr) = found {
                used.insert(addr);
                out.get_mut(name)
                    .expect("every name has an entry")
                    .push(addr);
            }
        }
    }
    out
}

/// The VIP names whose addresses this node's kernel has programmed, with those
/// addresses: what the DNS server answers for `<name>.vip.<zone>`. The load balancer's
/// reconciler updates it only after the kernel accepted the change, so a name never
/// resolves before its VIP routes (dcos-net's order). Cheap to clone; readers take a
/// read lock for the length of one lookup.
#[derive(Clone, Debug, Default)]
pub struct ProgrammedNames(Arc<RwLock<BTreeMap<String, Vec<IpAddr>>>>);

impl ProgrammedNames {
    pub fn new() -> ProgrammedNames {
        ProgrammedNames::default()
    }

    /// The addresses of `name` (lower case, as VIP names are), or none.
    pub fn get(&self, name: &str) -> Vec<IpAddr> {
        self.read().get(name).cloned().unwrap_or_default()
    }

    /// Every programmed name and its addresses.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<IpAddr>> {
        self.read().clone()
    }

    /// Replace the whole map (the reconciler, after a successful apply).
    pub fn set(&self, names: BTreeMap<String, Vec<IpAddr>>) {
        // A writer that panicked left a complete map behind (writes replace it whole).
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = names;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<IpAddr>>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// DNS serves `<name>.vip.<zone>` from what this node's kernel has programmed, so a name
/// never resolves before its VIP is routable here.
impl crate::dns::VipNames for ProgrammedNames {
    fn addresses(&self, name: &str) -> Vec<IpAddr> {
        self.get(name)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_name_gets_an_address_in_each_range() {
        let a = assign(
            &names(&["db", "web"]),
            &BTreeSet::new(),
            NameRanges::default(),
        );
        for addrs in a.values() {
            assert_eq!(addrs.len(), 2);
            assert!(NameRanges::default().v4.unwrap().contains(addrs[0]));
            assert!(NameRanges::default().v6.unwrap().contains(addrs[1]));
        }
        assert_ne!(a["db"], a["web"]);
    }

    #[test]
    fn a_full_range_leaves_the_last_names_without() {
        let tiny = NameRanges {
            v4: Some("198.18.0.0/30".parse().unwrap()),
            v6: None,
        };
        let a = assign(&names(&["a", "b", "c"]), &BTreeSet::new(), tiny);
        let given: BTreeSet<IpAddr> = a.values().flatten().copied().collect();
        assert_eq!(given.len(), 2, "{a:?}");
        assert!(a["c"].is_empty());
        let taken = ["198.18.0.1".parse().unwrap()].into();
        let a = assign(&names(&["a", "b"]), &taken, tiny);
        assert_eq!(a["a"], vec!["198.18.0.2".parse::<IpAddr>().unwrap()]);
        assert!(a["b"].is_empty());
    }

    #[test]
    fn programmed_names_are_read_by_name() {
        let p = ProgrammedNames::new();
        assert!(p.get("web").is_empty());
        let reader = p.clone();
        p.set([("web".to_string(), vec!["11.0.0.9".parse().unwrap()])].into());
        assert_eq!(
            reader.get("web"),
            vec!["11.0.0.9".parse::<IpAddr>().unwrap()]
        );
    }

    proptest! {
        /// Colliding names get the same addresses whatever order they are listed or
        /// learnt in: the assignment depends on the set alone. A 4-address range makes
        /// collisions the rule.
        #[test]
        fn the_assignment_is_a_function_of_the_set(
            list in proptest::collection::vec("[a-f]{1,3}", 1..6),
            extra in "[a-f]{1,3}",
        ) {
            let small = NameRanges { v4: Some("198.18.0.0/29".parse().unwrap()), v6: None };
            let set: BTreeSet<String> = list.iter().cloned().collect();
            let mut reversed = BTreeSet::new();
            for n in list.iter().rev() { reversed.insert(n.clone()); }
            let a = assign(&set, &BTreeSet::new(), small);
            prop_assert_eq!(&a, &assign(&reversed, &BTreeSet::new(), small));
            let given: Vec<IpAddr> = a.values().flatten().copied().collect();
            let distinct: BTreeSet<IpAddr> = given.iter().copied().collect();
            prop_assert_eq!(given.len(), distinct.len(), "an address given twice");
            // Adding a name never takes an address from a name that sorts before it.
            let mut more = set.clone();
            more.insert(extra.clone());
            let b = assign(&more, &BTreeSet::new(), small);
            for (name, addrs) in &a {
                if name < &extra {
                    prop_assert_eq!(addrs, &b[name]);
                }
            }
        }
    }
}
