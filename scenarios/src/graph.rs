//! Whole-cluster checks over the nodes' views.

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::{Duration, Instant, NodeId};

/// Active views of the live nodes an expectation is about.
pub type Views = BTreeMap<NodeId, Vec<NodeId>>;

/// How long one side may hold a link the other side does not: adding a neighbour is a
/// round trip, and both ends must agree by then (with margin for a dial in between).
pub const SYMMETRY_GRACE: Duration = Duration::from_secs(2);

/// Is the overlay among the nodes of `views` one connected component? Links count in
/// either direction (a link being added is one-sided for a round trip); links to nodes
/// outside `views` are ignored (they are dead or out of scope).
pub fn connected(views: &Views) -> Result<(), String> {
    let mut undirected: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
    for (node, view) in views {
        undirected.entry(*node).or_default();
        for peer in view.iter().filter(|p| views.contains_key(p)) {
            undirected.entry(*node).or_default().insert(*peer);
            undirected.entry(*peer).or_default().insert(*node);
        }
    }
    let Some(&start) = views.keys().next() else {
        return Ok(());
    };
    let mut seen = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        for peer in &undirected[&n] {
            if seen.insert(*peer) {
                stack.push(*peer);
            }
        }
    }
    if seen.len() == views.len() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} live nodes reachable from {start}",
            seen.len(),
            views.len()
        ))
    }
}

/// Remembers since when each one-sided link has been one-sided, across samples.
#[derive(Default)]
pub struct Symmetry {
    since: BTreeMap<(NodeId, NodeId), Instant>,
}

impl Symmetry {
    /// Record the one-sided links among `views` at `now` (links to nodes not in `views`
    /// are not judged: the other end is dead, and its eviction is the detector's job).
    pub fn observe(&mut self, now: Instant, views: &Views) {
        let mut current = BTreeMap::new();
        for (node, view) in views {
            for peer in view {
                if views.get(peer).is_some_and(|back| !back.contains(node)) {
                    let first = self.since.get(&(*node, *peer)).copied().unwrap_or(now);
                    current.insert((*node, *peer), first);
                }
            }
        }
        self.since = current;
    }

    /// A link among `scope` that has been one-sided for longer than the grace period.
    pub fn check(&self, now: Instant, scope: &Views) -> Result<(), String> {
        for (&(a, b), &first) in &self.since {
            if scope.contains_key(&a) && scope.contains_key(&b) && now - first > SYMMETRY_GRACE {
                return Err(format!(
                    "link {a}→{b} has been one-sided since {:?}",
                    first - Instant::ZERO
                ));
            }
        }
        Ok(())
    }
}

/// Connected, and no link one-sided for longer than the grace period.
pub fn overlay_connected(now: Instant, views: &Views, symmetry: &Symmetry) -> Result<(), String> {
    connected(views)?;
    symmetry.check(now, views)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(edges: &[(u64, &[u64])]) -> Views {
        edges
            .iter()
            .map(|(n, v)| (NodeId(*n), v.iter().map(|p| NodeId(*p)).collect()))
            .collect()
    }
    fn t(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn connectivity() {
        assert!(connected(&views(&[(0, &[1]), (1, &[0, 2]), (2, &[1])])).is_ok());
        assert!(
            connected(&views(&[(0, &[1]), (1, &[0]), (2, &[])]))
                .unwrap_err()
                .contains("2 of 3")
        );
        assert!(
            connected(&views(&[(0, &[9]), (1, &[])])).is_err(),
            "dead peers do not connect"
        );
        assert!(
            connected(&views(&[(0, &[1]), (1, &[])])).is_ok(),
            "a link being added counts"
        );
    }

    #[test]
    fn one_sided_links_are_tolerated_only_briefly() {
        let half = views(&[(0, &[1]), (1, &[])]);
        let mut s = Symmetry::default();
        s.observe(t(0), &half);
        s.observe(t(1000), &half);
        assert!(overlay_connected(t(1000), &half, &s).is_ok());
        s.observe(t(2500), &half);
        assert!(
            overlay_connected(t(2500), &half, &s)
                .unwrap_err()
                .contains("one-sided since 0ns")
        );
        let whole = views(&[(0, &[1]), (1, &[0])]);
        s.observe(t(2600), &whole);
        assert!(
            overlay_connected(t(2600), &whole, &s).is_ok(),
            "repaired links are forgotten"
        );
    }
}
