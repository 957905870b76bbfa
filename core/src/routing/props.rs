//! Routing checked against petgraph: a random sequence of graph changes and queries, and
//! after every step the incremental reachable set, the event stream, distances, paths
//! and trees all agree with petgraph's own searches over the same graph.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::algo::dijkstra;
use petgraph::graphmap::DiGraphMap;
use proptest::prelude::*;

use super::Routing;
use crate::id::NodeId;

const NODES: u64 = 12;
const ME: u64 = 0;

#[derive(Clone, Debug)]
enum Op {
    Add(u64),
    Remove(u64),
    Set(u64, Vec<u64>),
    Recompute,
    Query(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..NODES;
    prop_oneof![
        1 => id.clone().prop_map(Op::Add),
        2 => id.clone().prop_map(Op::Remove),
        6 => (id.clone(), proptest::collection::vec(0..NODES, 0..5)).prop_map(|(n, a)| Op::Set(n, a)),
        2 => Just(Op::Recompute),
        3 => (id.clone(), id).prop_map(|(a, b)| Op::Query(a, b)),
    ]
}

/// The model: present nodes and their adjacency, as petgraph sees it.
fn petgraph_of(model: &BTreeMap<u64, BTreeSet<u64>>) -> DiGraphMap<u64, ()> {
    let mut g = DiGraphMap::new();
    for (&n, adj) in model {
        g.add_node(n);
        for &t in adj {
            g.add_edge(n, t, ());
        }
    }
    g
}

/// Checks tree `k` from `root` against petgraph's distances: same node set, same
/// distances, and every parent is the lowest-ranked predecessor one hop closer.
fn check_tree(r: &Routing, g: &DiGraphMap<u64, ()>, root: u64, k: u8) -> Result<(), TestCaseError> {
    let truth = dijkstra(g, root, None, |_| 1u32);
    let tree = r.tree_k(NodeId(root), k);
    let Some(tree) = tree else {
        prop_assert!(!g.contains_node(root));
        return Ok(());
    };
    prop_assert_eq!(tree.len(), truth.len());
    for (&v, &d) in &truth {
        let hop = tree.hop(NodeId(v));
        prop_assert!(hop.is_some(), "{} missing from tree({})", v, root);
        let hop = hop.unwrap();
        prop_assert_eq!(hop.distance, d);
        let expected = g
            .neighbors_directed(v, petgraph::Direction::Incoming)
            .filter(|u| truth.get(u) == Some(&(d.wrapping_sub(1))))
            .min_by_key(|u| super::rank(k, NodeId(*u)));
        prop_assert_eq!(hop.parent, if d == 0 { None } else { expected.map(NodeId) });
    }
    Ok(())
}

/// `node`'s children in trees 0..3 from `root`, as multicast asks for them (one search,
/// stopped at `node`'s level), are its children in each whole tree.
fn check_children(r: &Routing, root: u64, node: u64) -> Result<(), TestCaseError> {
    let (root, node) = (NodeId(root), NodeId(node));
    let got = r.children(
        &r.packed(),
        &mut super::Bfs::default(),
        root,
        &[0, 1, 2],
        node,
    );
    let trees: Vec<_> = (0..3).map(|k| r.tree_k(root, k)).collect();
    match got {
        None => prop_assert!(
            trees
                .iter()
                .all(|t| t.as_ref().is_none_or(|t| !t.contains(node)))
        ),
        Some(children) => {
            for (k, tree) in trees.iter().enumerate() {
                let tree = tree.as_ref().expect("root in the graph");
                prop_assert_eq!(&children[k], &tree.children(node), "tree {}", k);
            }
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut r = Routing::new(NodeId(ME));
    let mut model: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::from([(ME, BTreeSet::new())]);
    let mut reported: BTreeSet<NodeId> = BTreeSet::from([NodeId(ME)]);
    for op in ops {
        match op {
            Op::Add(n) => {
                if let std::collections::btree_map::Entry::Vacant(e) = model.entry(n) {
                    e.insert(BTreeSet::new());
                    r.set_adjacency(NodeId(n), &[]);
                }
            }
            Op::Remove(n) => {
                if n != ME {
                    model.remove(&n);
                    r.remove(NodeId(n));
                }
            }
            Op::Set(n, adj) => {
                let ids: Vec<NodeId> = adj.iter().map(|&t| NodeId(t)).collect();
                model.insert(n, adj.into_iter().filter(|t| *t != n).collect());
                r.set_adjacency(NodeId(n), &ids);
            }
            Op::Recompute => r.recompute(),
            Op::Query(a, b) => {
                let g = petgraph_of(&model);
                let truth = g.contains_node(a).then(|| dijkstra(&g, a, None, |_| 1u32));
                let d = truth.as_ref().and_then(|t| t.get(&b).copied());
                prop_assert_eq!(r.distance(NodeId(a), NodeId(b)), d);
                prop_assert_eq!(r.distances(NodeId(a)).get(&NodeId(b)).copied(), d);
                match r.path(NodeId(a), NodeId(b)) {
                    None => prop_assert!(d.is_none()),
                    Some(p) => {
                        prop_assert_eq!(p.len() as u32, d.unwrap() + 1);
                        prop_assert_eq!(p.first(), Some(&NodeId(a)));
                        prop_assert_eq!(p.last(), Some(&NodeId(b)));
                        for w in p.windows(2) {
                            prop_assert!(g.contains_edge(w[0].0, w[1].0));
                        }
                    }
                }
                for k in 0..2 {
                    check_tree(&r, &g, a, k)?;
                }
                check_children(&r, a, b)?;
                let from_a = r.reachable_from(NodeId(a));
                let expected: BTreeSet<NodeId> = truth
                    .map(|t| t.keys().map(|&n| NodeId(n)).collect())
                    .unwrap_or_default();
                prop_assert_eq!(from_a, expected);
            }
        }
        // The event stream mirrors the set exactly: every change flips one node.
        for (n, up) in r.take_changes() {
            prop_assert!(
                if up {
                    reported.insert(n)
                } else {
                    reported.remove(&n)
                },
                "redundant event for {:?}",
                n
            );
        }
        prop_assert_eq!(&reported, r.reachable());
        let digest = r
            .reachable()
            .iter()
            .fold(0, |d, id| d ^ super::digest_of(*id));
        prop_assert_eq!(r.reachable_digest(), digest);
        // Without a pending removal the incremental set is exact.
        if !r.is_stale() {
            let g = petgraph_of(&model);
            let truth: BTreeSet<NodeId> = dijkstra(&g, ME, None, |_| 1u32)
                .keys()
                .map(|&n| NodeId(n))
                .collect();
            prop_assert_eq!(r.reachable(), &truth);
            let graph_nodes: BTreeSet<NodeId> = g.nodes().map(NodeId).collect();
            prop_assert_eq!(r.graph().nodes().collect::<BTreeSet<_>>(), graph_nodes);
        }
    }
    r.recompute();
    let g = petgraph_of(&model);
    for root in 0..NODES {
        check_tree(&r, &g, root, 0)?;
    }
    Ok(())
}

proptest! {
    // 10,000 cases of up to 40 steps each, every step checked (see `run`).
    #![proptest_config(ProptestConfig::with_cases(10_000))]
    #[test]
    fn routing_agrees_with_petgraph(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
