//! Routing cost on a HyParView-like graph (every node linked to 7 random others,
//! symmetric): the reachable set after one edge removal (nearly always repaired
//! locally), after a node is cut off (every neighbour drops it: a crash, and the full
//! search it takes), after one edge addition (incremental), and a full shortest-hop
//! tree (what multicast derives per origin and tree).
//!
//! `cargo bench -p hawser-core --bench routing`

use std::collections::BTreeSet;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hawser_core::NodeId;
use hawser_core::rng::NodeRng;
use hawser_core::routing::Routing;

/// `n` nodes, each with about `degree` symmetric random neighbours.
fn overlay(n: u64, degree: usize, seed: u64) -> Vec<BTreeSet<u64>> {
    let mut rng = NodeRng::from_seed(seed);
    let mut adj = vec![BTreeSet::new(); n as usize];
    for a in 0..n {
        while adj[a as usize].len() < degree {
            let b = rng.below(0, n);
            if b != a && adj[b as usize].len() < degree + 2 {
                adj[a as usize].insert(b);
                adj[b as usize].insert(a);
            } else if adj[b as usize].len() >= degree + 2 {
                // Saturated target: take any node with room instead.
                let b = (0..n).find(|&x| {
                    x != a && adj[x as usize].len() < degree && !adj[a as usize].contains(&x)
                });
                match b {
                    Some(b) => {
                        adj[a as usize].insert(b);
                        adj[b as usize].insert(a);
                    }
                    None => break,
                }
            }
        }
    }
    adj
}

fn routing_of(adj: &[BTreeSet<u64>]) -> Routing {
    let mut r = Routing::new(NodeId(0));
    for (i, a) in adj.iter().enumerate() {
        let ids: Vec<NodeId> = a.iter().map(|&x| NodeId(x)).collect();
        r.set_adjacency(NodeId(i as u64), &ids);
    }
    r
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing");
    for n in [1_000u64, 10_000] {
        let adj = overlay(n, 7, 1);
        let mut r = routing_of(&adj);
        assert_eq!(r.reachable().len(), n as usize);
        // One edge of a node far from us, removed and restored.
        let u = n / 2;
        let full: Vec<NodeId> = adj[u as usize].iter().map(|&x| NodeId(x)).collect();
        let cut = &full[1..];
        g.bench_with_input(BenchmarkId::new("edge_removed", n), &n, |b, _| {
            b.iter(|| {
                r.set_adjacency(NodeId(u), cut);
                r.recompute();
                r.set_adjacency(NodeId(u), &full);
                r.take_changes()
            })
        });
        // Every neighbour of `u` drops it (a crash), then takes it back.
        let dropping: Vec<(NodeId, Vec<NodeId>, Vec<NodeId>)> = adj[u as usize]
            .iter()
            .map(|&p| {
                let all: Vec<NodeId> = adj[p as usize].iter().map(|&x| NodeId(x)).collect();
                let without = all.iter().copied().filter(|x| x.0 != u).collect();
                (NodeId(p), without, all)
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("node_cut_off", n), &n, |b, _| {
            b.iter(|| {
                for (p, without, _) in &dropping {
                    r.set_adjacency(*p, without);
                }
                assert!(r.is_stale(), "a node cut off needs a search");
                r.recompute();
                for (p, _, all) in &dropping {
                    r.set_adjacency(*p, all);
                }
                r.take_changes()
            })
        });
        g.bench_with_input(BenchmarkId::new("edge_added_incremental", n), &n, |b, _| {
            b.iter(|| {
                r.set_adjacency(NodeId(u), &full);
                r.take_changes()
            })
        });
        g.bench_with_input(BenchmarkId::new("tree", n), &n, |b, _| {
            b.iter(|| r.tree(NodeId(u)).map(|t| t.len()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
