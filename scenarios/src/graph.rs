//! Whole-cluster checks over the nodes' views.

use std::collections::BTreeMap;

use hawser_core::NodeId;

/// Is the overlay among `live` nodes one connected component with symmetric links?
/// `views` maps each live node to its active view. Links to nodes outside `live` are
/// ignored (they are dead or frozen and will be evicted in time).
pub fn overlay_connected(views: &BTreeMap<NodeId, Vec<NodeId>>) -> Result<(), String> {
    for (node, view) in views {
        for peer in view {
            if let Some(back) = views.get(peer) {
                if !back.contains(node) {
                    return Err(format!("link {node}→{peer} is not symmetric"));
                }
            }
        }
    }
    let Some(&start) = views.keys().next() else {
        return Ok(());
    };
    let mut seen = std::collections::BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        for peer in &views[&n] {
            if views.contains_key(peer) && seen.insert(*peer) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn views(edges: &[(u64, &[u64])]) -> BTreeMap<NodeId, Vec<NodeId>> {
        edges
            .iter()
            .map(|(n, v)| (NodeId(*n), v.iter().map(|p| NodeId(*p)).collect()))
            .collect()
    }

    #[test]
    fn connected_symmetric_and_not() {
        assert!(overlay_connected(&views(&[(0, &[1]), (1, &[0, 2]), (2, &[1])])).is_ok());
        assert!(
            overlay_connected(&views(&[(0, &[1]), (1, &[0]), (2, &[])]))
                .unwrap_err()
                .contains("2 of 3")
        );
        assert!(
            overlay_connected(&views(&[(0, &[1]), (1, &[])]))
                .unwrap_err()
                .contains("symmetric")
        );
        assert!(
            overlay_connected(&views(&[(0, &[9]), (1, &[])])).is_err(),
            "dead peers do not connect"
        );
    }
}
