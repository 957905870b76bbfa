//! Node selectors: which nodes a step or an expectation is about.
//!
//! Written `"all"`, `"n3"`, `"n0..n9"` (both ends included), `["n1", "n4"]`,
//! `"random:10%"` or `"random:5"`. Random selections are drawn when the runner reaches
//! them, from the run's seeded RNG, so they differ between seeds and replay exactly.

use std::fmt;

/// A set of nodes, named by index (`n0` is index 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Every node of the scenario.
    All,
    /// One node.
    Node(usize),
    /// `first..=last`.
    Range(usize, usize),
    /// The listed nodes.
    List(Vec<usize>),
    /// This percentage of the nodes (1–100), rounded up so a non-zero percentage of a
    /// non-empty cluster always picks someone.
    RandomPercent(u32),
    /// This many distinct nodes.
    RandomCount(usize),
}

const FORMS: &str =
    "expected \"all\", \"n3\", \"n0..n9\", [\"n1\", \"n4\"], \"random:10%\" or \"random:5\"";

impl Selector {
    /// Parses the string forms (everything but the list form, which TOML gives as an
    /// array and [`Selector::parse_list`] reads).
    pub fn parse(text: &str) -> Result<Selector, String> {
        let invalid = |why: &str| format!("invalid node selector {text:?}: {why}");
        if text == "all" {
            return Ok(Selector::All);
        }
        if let Some(random) = text.strip_prefix("random:") {
            if let Some(percent) = random.strip_suffix('%') {
                return match digits(percent) {
                    Some(p @ 1..=100) => Ok(Selector::RandomPercent(p as u32)),
                    Some(_) => Err(invalid("a percentage must be from 1% to 100%")),
                    None => Err(invalid(FORMS)),
                };
            }
            return match digits(random) {
                Some(0) => Err(invalid("a random selection must pick at least one node")),
                Some(count) => Ok(Selector::RandomCount(count)),
                None => Err(invalid(FORMS)),
            };
        }
        if let Some((first, last)) = text.split_once("..") {
            let (Some(first), Some(last)) = (node_index(first), node_index(last)) else {
                return Err(invalid(FORMS));
            };
            if first > last {
                return Err(invalid("a range must go from the lower node to the higher"));
            }
            return Ok(Selector::Range(first, last));
        }
        node_index(text)
            .map(Selector::Node)
            .ok_or_else(|| invalid(FORMS))
    }

    /// Parses the list form from its entries, each `"nK"`.
    pub fn parse_list<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Selector, String> {
        let nodes = entries
            .into_iter()
            .map(|e| {
                node_index(e).ok_or_else(|| {
                    format!("invalid node {e:?} in a node list: expected a node such as \"n3\"")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(format!("an empty node list selects nothing; {FORMS}"));
        }
        Ok(Selector::List(nodes))
    }

    /// Checks the selector against a scenario of `nodes` nodes.
    pub fn check(&self, nodes: usize) -> Result<(), String> {
        let highest = match self {
            Selector::All | Selector::RandomPercent(_) => return Ok(()),
            Selector::Node(i) | Selector::Range(_, i) => *i,
            Selector::List(list) => list.iter().copied().max().unwrap_or(0),
            Selector::RandomCount(count) if *count > nodes => {
                return Err(format!(
                    "{self} picks {count} nodes, but the scenario has only {nodes}"
                ));
            }
            Selector::RandomCount(_) => return Ok(()),
        };
        if highest >= nodes {
            return Err(format!(
                "{self} names n{highest}, but the scenario has only {nodes} nodes (n0..n{})",
                nodes.saturating_sub(1)
            ));
        }
        Ok(())
    }

    /// True if the selector always names exactly one node (`"n3"`, `"random:1"`, ...), as
    /// the steps that act *from* one node (`kv-op`, `multicast`) require.
    pub fn is_single(&self) -> bool {
        match self {
            Selector::Node(_) | Selector::RandomCount(1) => true,
            Selector::Range(first, last) => first == last,
            Selector::List(list) => list.first().is_some_and(|f| list.iter().all(|n| n == f)),
            _ => false,
        }
    }

    /// The nodes named without randomness, or `None` for a random selection (whose
    /// members are known only when the runner draws them).
    pub fn fixed_members(&self, nodes: usize) -> Option<Vec<usize>> {
        match self {
            Selector::RandomPercent(_) | Selector::RandomCount(_) => None,
            fixed => Some(fixed.resolve(nodes, &mut |_| 0)),
        }
    }

    /// The selected nodes among `0..n`, sorted and without duplicates.
    ///
    /// `pick(k)` must return a uniformly drawn index in `0..k`; the runner passes its
    /// seeded RNG, so the same `pick` sequence always gives the same nodes. Random
    /// selections are drawn without replacement (a partial Fisher–Yates shuffle).
    /// Indices at or beyond `n` are left out rather than panicking; [`Selector::check`]
    /// is where they are reported.
    pub fn resolve(&self, n: usize, pick: &mut dyn FnMut(usize) -> usize) -> Vec<usize> {
        let mut out = match self {
            Selector::All => (0..n).collect(),
            Selector::Node(i) => vec![*i],
            Selector::Range(first, last) => (*first..=(*last).min(n.saturating_sub(1))).collect(),
            Selector::List(list) => list.clone(),
            Selector::RandomPercent(p) => sample(n, (n * *p as usize).div_ceil(100), pick),
            Selector::RandomCount(count) => sample(n, *count, pick),
        };
        out.retain(|i| *i < n);
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// `k` distinct indices from `0..n` (all of them if `k >= n`).
fn sample(n: usize, k: usize, pick: &mut dyn FnMut(usize) -> usize) -> Vec<usize> {
    let k = k.min(n);
    let mut pool: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let remaining = n - i;
        let drawn = pick(remaining);
        debug_assert!(drawn < remaining, "pick({remaining}) returned {drawn}");
        pool.swap(i, i + drawn % remaining);
    }
    pool.truncate(k);
    pool
}

/// `"n17"` → 17. Plain decimal digits only, so `"n+1"` or `"n 1"` are not nodes.
fn node_index(text: &str) -> Option<usize> {
    digits(text.strip_prefix('n')?)
}

fn digits(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The form a scenario file would use, so messages quote what the author wrote.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => write!(f, "\"all\""),
            Selector::Node(i) => write!(f, "\"n{i}\""),
            Selector::Range(first, last) => write!(f, "\"n{first}..n{last}\""),
            Selector::List(list) => {
                write!(f, "[")?;
                for (i, node) in list.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "\"n{node}\"")?;
                }
                write!(f, "]")
            }
            Selector::RandomPercent(p) => write!(f, "\"random:{p}%\""),
            Selector::RandomCount(count) => write!(f, "\"random:{count}\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic `pick` (an LCG), standing in for the runner's RNG.
    fn lcg(seed: u64) -> impl FnMut(usize) -> usize {
        let mut state = seed;
        move |k| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % k as u64) as usize
        }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(Selector::parse("all"), Ok(Selector::All));
        assert_eq!(Selector::parse("n3"), Ok(Selector::Node(3)));
        assert_eq!(Selector::parse("n0..n9"), Ok(Selector::Range(0, 9)));
        assert_eq!(
            Selector::parse("random:10%"),
            Ok(Selector::RandomPercent(10))
        );
        assert_eq!(Selector::parse("random:5"), Ok(Selector::RandomCount(5)));
        assert_eq!(
            Selector::parse_list(["n1", "n4"]),
            Ok(Selector::List(vec![1, 4]))
        );
    }

    #[test]
    fn rejects_malformed_selectors_listing_the_forms() {
        for bad in [
            "",
            "n",
            "x3",
            "n-1",
            "n+1",
            "3",
            "n1..",
            "n1..n2..n3",
            "random:",
            "random:x%",
            "ALL",
        ] {
            let err = Selector::parse(bad).unwrap_err();
            assert!(err.contains("\"n0..n9\""), "{bad}: {err}");
        }
        assert!(
            Selector::parse("n9..n0")
                .unwrap_err()
                .contains("lower node")
        );
        assert!(
            Selector::parse("random:0")
                .unwrap_err()
                .contains("at least one")
        );
        assert!(
            Selector::parse("random:0%")
                .unwrap_err()
                .contains("1% to 100%")
        );
        assert!(
            Selector::parse("random:101%")
                .unwrap_err()
                .contains("1% to 100%")
        );
        assert!(
            Selector::parse_list(["n1", "4"])
                .unwrap_err()
                .contains("invalid node \"4\"")
        );
        assert!(
            Selector::parse_list([])
                .unwrap_err()
                .contains("empty node list")
        );
    }

    #[test]
    fn checks_indices_against_the_node_count() {
        assert!(Selector::Node(99).check(100).is_ok());
        let err = Selector::Node(120).check(100).unwrap_err();
        assert_eq!(
            err,
            "\"n120\" names n120, but the scenario has only 100 nodes (n0..n99)"
        );
        assert!(Selector::Range(0, 100).check(100).is_err());
        assert!(Selector::List(vec![3, 100]).check(100).is_err());
        assert!(
            Selector::RandomCount(101)
                .check(100)
                .unwrap_err()
                .contains("picks 101")
        );
        assert!(Selector::RandomPercent(100).check(1).is_ok());
    }

    #[test]
    fn resolves_sorted_and_deduplicated() {
        let mut never = |_: usize| -> usize { unreachable!("no randomness needed") };
        assert_eq!(Selector::All.resolve(3, &mut never), vec![0, 1, 2]);
        assert_eq!(Selector::Range(2, 4).resolve(10, &mut never), vec![2, 3, 4]);
        assert_eq!(
            Selector::List(vec![4, 1, 4]).resolve(10, &mut never),
            vec![1, 4]
        );
        assert_eq!(
            Selector::Node(12).resolve(10, &mut never),
            Vec::<usize>::new()
        );
        assert_eq!(Selector::Range(8, 12).resolve(10, &mut never), vec![8, 9]);
    }

    #[test]
    fn random_selections_are_deterministic_distinct_and_sized() {
        for seed in 0..50 {
            let a = Selector::RandomCount(5).resolve(20, &mut lcg(seed));
            let b = Selector::RandomCount(5).resolve(20, &mut lcg(seed));
            assert_eq!(a, b);
            assert_eq!(a.len(), 5);
            assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|i| *i < 20));
        }
        let draws: std::collections::BTreeSet<_> = (0..50)
            .map(|s| Selector::RandomCount(5).resolve(20, &mut lcg(s)))
            .collect();
        assert!(
            draws.len() > 40,
            "different seeds should usually pick differently"
        );
        assert_eq!(
            Selector::RandomPercent(10).resolve(1000, &mut lcg(1)).len(),
            100
        );
        assert_eq!(Selector::RandomPercent(10).resolve(5, &mut lcg(1)).len(), 1);
        assert_eq!(
            Selector::RandomCount(50).resolve(3, &mut lcg(1)),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn resolve_follows_pick_exactly() {
        // Always picking the first remaining index selects the first k nodes.
        assert_eq!(
            Selector::RandomCount(3).resolve(10, &mut |_| 0),
            vec![0, 1, 2]
        );
        // Draw i swaps pool slot i with slot i + pick: [0..5] → [4,1,2,3,0] → [4,0,2,3,1].
        assert_eq!(
            Selector::RandomCount(2).resolve(5, &mut |k| k - 1),
            vec![0, 4]
        );
    }

    #[test]
    fn displays_as_written() {
        for text in ["all", "n3", "n0..n9", "random:10%", "random:5"] {
            assert_eq!(
                Selector::parse(text).unwrap().to_string(),
                format!("{text:?}")
            );
        }
        assert_eq!(Selector::List(vec![1, 4]).to_string(), "[\"n1\", \"n4\"]");
    }

    #[test]
    fn single_node_selectors() {
        assert!(Selector::Node(3).is_single());
        assert!(Selector::RandomCount(1).is_single());
        assert!(Selector::Range(2, 2).is_single());
        assert!(!Selector::RandomCount(2).is_single());
        assert!(!Selector::All.is_single());
        assert!(!Selector::List(vec![1, 2]).is_single());
    }
}
