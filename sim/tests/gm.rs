//! Global membership, routing and multicast on hawser's `Stack` in the simulator: every
//! node learns the whole graph, a killed node is marked unreachable by every survivor,
//! a healed partition converges, and a multicast reaches every node exactly once.

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::crdt::MapOp;
use hawser_core::membership::MembershipEvent;
use hawser_core::membership::Profile;
use hawser_core::multicast::MulticastError;
use hawser_core::stack::{Stack, StackConfig, StackEvent};
use hawser_core::{Duration, Event, Instant, NodeId};
use hawser_sim::{Sim, SimConfig, Status};

fn cluster(n: usize, seed: u64) -> Sim<Stack> {
    cluster_on(n, seed, Profile::default())
}

/// A cluster whose detector runs `profile` (the timing tests below are about `fast`'s
/// sub-second detection and its 150 ms timeout floor; `lan` trades both for pauses).
fn cluster_on(n: usize, seed: u64, profile: Profile) -> Sim<Stack> {
    let contacts: Vec<_> = (0..3).map(Sim::<Stack>::addr).collect();
    let config = StackConfig {
        membership: profile.config(),
        ..StackConfig::default()
    };
    let mut sim = Sim::new(n, SimConfig::new(seed), move |_, disk| {
        Stack::new(config.clone(), contacts.clone(), disk).unwrap()
    })
    .unwrap();
    (0..n).for_each(|i| sim.start(i));
    sim
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn live(sim: &Sim<Stack>) -> Vec<usize> {
    (0..sim.len())
        .filter(|&i| sim.status(i) == Status::Up)
        .collect()
}

/// Each live node's reachable set equals `expected(i)`.
fn agrees(sim: &Sim<Stack>, expected: impl Fn(usize) -> BTreeSet<NodeId>) -> Result<(), String> {
    for i in live(sim) {
        let got = sim.node(i).unwrap().protocol().gm().reachable();
        let want = expected(i);
        if *got != want {
            return Err(format!(
                "node {i}: reachable {} of {}",
                got.len(),
                want.len()
            ));
        }
    }
    Ok(())
}

/// Every report since the last drain that node `victim` became unreachable: (who, when).
fn unreachable_reports(sim: &mut Sim<Stack>, victim: usize) -> Vec<(usize, Instant)> {
    let dead = Sim::<Stack>::id(victim);
    sim.drain_events()
        .filter_map(|(t, i, e)| match e {
            Event::App(StackEvent::Gm(hawser_core::gm::GmEvent::Unreachable(x))) if x == dead => {
                Some((i, t))
            }
            _ => None,
        })
        .collect()
}

/// Multicast copies sent by every node, summed.
fn copies_sent(sim: &Sim<Stack>) -> u64 {
    (0..sim.len())
        .filter_map(|i| sim.node(i))
        .map(|n| n.protocol().multicast_state().counters().copies_sent)
        .sum()
}

fn ids(nodes: impl IntoIterator<Item = usize>) -> BTreeSet<NodeId> {
    nodes.into_iter().map(Sim::<Stack>::id).collect()
}

#[test]
fn everyone_learns_the_graph_and_a_killed_node_is_unreachable_everywhere() {
    let mut sim = cluster(50, 1);
    sim.run_until(at(20_000));
    let all = ids(0..50);
    agrees(&sim, |_| all.clone()).unwrap();
    // Every node built the same graph: same fingerprint everywhere.
    let views: BTreeSet<u64> = (0..50)
        .map(|i| sim.node(i).unwrap().protocol().gm().view())
        .collect();
    assert_eq!(views.len(), 1, "all tables agree");
    // Entries are pulled from one announcer: each crosses into a node about once.
    let (sent, applied) = (0..50)
        .map(|i| sim.node(i).unwrap().protocol().gm().counters())
        .fold((0, 0), |(s, a), c| {
            (s + c.entries_sent, a + c.entries_applied)
        });
    assert!(
        sent * 10 <= applied * 11,
        "{sent} entries sent for {applied} taken as news"
    );
    // Routing over it: every node is within a few hops of every other.
    let gm = sim.node(7).unwrap().protocol().gm();
    let routing = gm.routing().unwrap();
    let tree = routing.tree(Sim::<Stack>::id(7)).unwrap();
    assert_eq!(tree.len(), 50);
    assert!(tree.iter().all(|(_, h)| h.distance <= 6));
    sim.drain_events().for_each(drop);

    let victim = 13;
    let first = sim
        .node(victim)
        .unwrap()
        .protocol()
        .gm()
        .version()
        .incarnation;
    let killed_at = sim.now();
    sim.kill(victim);
    sim.run_until(killed_at + Duration::from_secs(3));
    let mut detected: BTreeMap<usize, Instant> = BTreeMap::new();
    for (i, t) in unreachable_reports(&mut sim, victim) {
        assert!(
            detected.insert(i, t).is_none(),
            "node {i} reported it twice"
        );
    }
    assert_eq!(
        detected.len(),
        49,
        "every survivor marked it unreachable, once"
    );
    let worst = detected.values().max().unwrap().saturating_since(killed_at);
    assert!(worst < Duration::from_secs(1), "all knew within {worst:?}");
    let survivors = ids((0..50).filter(|&i| i != victim));
    agrees(&sim, |_| survivors.clone()).unwrap();

    // It comes back with a new incarnation and everyone sees it again.
    sim.start(victim);
    sim.run_until(sim.now() + Duration::from_secs(15));
    agrees(&sim, |_| all.clone()).unwrap();
    let v = sim.node(victim).unwrap().protocol().gm().version();
    assert_eq!(
        v.incarnation,
        first + 1,
        "the incarnation continued from disk"
    );
}

#[test]
fn a_silent_failure_is_checked_by_all_its_neighbours_at_once_and_known_everywhere_fast() {
    let mut sim = cluster_on(50, 3, Profile::Fast);
    sim.run_until(at(20_000));
    let victim = 21;
    let frozen_at = sim.now();
    sim.freeze(victim);
    sim.drain_events().for_each(drop);
    sim.run_until(frozen_at + Duration::from_secs(3));
    let mut known: BTreeMap<usize, Instant> = BTreeMap::new();
    for (i, t) in unreachable_reports(&mut sim, victim) {
        known.entry(i).or_insert(t);
    }
    let others: Vec<usize> = (0..50).filter(|&i| i != victim).collect();
    assert_eq!(known.len(), others.len(), "every other node knows");
    let worst = known.values().max().unwrap().saturating_since(frozen_at);
    // Its neighbours each ping it every 0.4–0.6 s; the first to suspect it (100 ms after
    // its ping) has the others check at once, so all of them evict it within about one
    // silence window (900 ms) of that. Lashup's goal is 1.5 s.
    assert!(
        worst < Duration::from_millis(1_500),
        "all knew within {worst:?}"
    );
    let early: u64 = others
        .iter()
        .map(|&i| {
            sim.node(i)
                .unwrap()
                .protocol()
                .membership()
                .counters()
                .early_pings
        })
        .sum();
    assert!(
        early > 0,
        "the first suspicion made other neighbours ping early"
    );
}

#[test]
fn a_link_that_turns_slow_is_learned_and_not_evicted_even_through_a_stall() {
    let mut sim = cluster_on(30, 5, Profile::Fast);
    sim.run_until(at(15_000));
    let slow = 11;
    let neighbours = sim
        .node(slow)
        .unwrap()
        .protocol()
        .membership()
        .active_view();
    // Every frame to or from it now takes 300 ms more: a round trip of ~600 ms, four
    // times the 150 ms timeout floor. Its late pongs are round-trip samples.
    sim.slow(
        slow,
        Duration::from_millis(300),
        Some(Duration::from_secs(20)),
    );
    sim.run_until(at(20_000));
    let learned = neighbours
        .iter()
        .filter_map(|p| {
            let i = (0..30).find(|&i| Sim::<Stack>::id(i) == *p)?;
            sim.node(i)?
                .protocol()
                .membership()
                .rtt(Sim::<Stack>::id(slow))
        })
        .min();
    assert!(
        learned.is_some_and(|r| r > Duration::from_millis(150)),
        "its neighbours learned a round trip past the 150 ms floor: {learned:?}"
    );
    // Now it also stalls for 300 ms: 900 ms without an answer, the whole silence window
    // at the old fast timeout, but well within the one it has learned.
    sim.pause(slow, Duration::from_millis(300));
    sim.run_until(at(25_000));
    let evicted = sim.drain_events().any(|(_, _, e)| {
        matches!(e, Event::App(StackEvent::Membership(MembershipEvent::NeighborDown { peer, reason }))
            if peer == Sim::<Stack>::id(slow) && reason.is_eviction())
    });
    assert!(!evicted, "slow is not dead");
}

#[test]
fn kv_deltas_travel_by_multicast_not_by_flood() {
    let mut sim = cluster(40, 4);
    sim.run_until(at(15_000));
    let before = copies_sent(&sim);
    let op =
        MapOp::from_json_str(r#"{"update":[{"field":"n","type":"counter","op":{"increment":5}}]}"#)
            .unwrap();
    sim.command(17, |s, ctx| s.kv_op(ctx, "k", &op))
        .unwrap()
        .unwrap();
    sim.run_until(at(16_000));
    for i in 0..40 {
        let kv = sim.node(i).unwrap().protocol().kv();
        assert!(kv.get("k").is_some(), "node {i} holds the write");
        assert_eq!(
            kv.counters().repaired_keys,
            0,
            "node {i}: no anti-entropy needed"
        );
    }
    // Two trees: about two copies per receiver (a flood sends one per link, ~7 a node).
    let sent = copies_sent(&sim) - before;
    assert!(sent <= 3 * 39, "{sent} copies for 39 receivers");
}

#[test]
fn a_partition_splits_the_graph_and_the_heal_converges() {
    let mut sim = cluster(40, 2);
    sim.run_until(at(15_000));
    let (a, b): (Vec<usize>, Vec<usize>) = (0..40).partition(|&i| i < 20);
    sim.partition(&[a.clone(), b.clone()]);
    sim.run_until(at(45_000));
    let (ia, ib) = (ids(a.clone()), ids(b.clone()));
    agrees(&sim, |i| if i < 20 { ia.clone() } else { ib.clone() }).unwrap();
    sim.heal();
    // The halves' overlays may share no link: de-partitioning probes find the way.
    let all = ids(0..40);
    let mut converged = None;
    for step in 0..300 {
        sim.run_until(at(45_000 + step * 100));
        if agrees(&sim, |_| all.clone()).is_ok() {
            converged = Some(step * 100);
            break;
        }
    }
    let ms = converged.expect("the halves found each other within 30 s");
    assert!(ms <= 15_000, "converged {ms} ms after the heal");
}

/// Lashup's README case (`scenarios/asymmetric.toml` runs it with checks on the sampling
/// clock): agents n3,n4 cannot reach n5..n7, everyone reaches the masters n0..n2. Every
/// node still counts every other reachable (through the masters), and every node's
/// graph shows the missing edges as missing.
#[test]
fn an_asymmetric_network_is_routed_around_and_its_missing_edges_are_visible() {
    let mut sim = cluster(8, 3);
    let (a, b) = (vec![3, 4], vec![5, 6, 7]);
    sim.partition(&[a.clone(), b.clone()]);
    sim.run_until(at(20_000));
    let all = ids(0..8);
    agrees(&sim, |_| all.clone()).unwrap();
    for i in live(&sim) {
        let gm = sim.node(i).unwrap().protocol().gm();
        for &x in &a {
            let adjacency = gm.adjacency(NodeId(x as u64));
            assert!(!adjacency.is_empty(), "n{i} knows n{x}'s links");
            for &y in &b {
                assert!(
                    !adjacency.contains(&NodeId(y as u64)),
                    "n{i} shows an edge n{x}-n{y} the network cannot carry"
                );
            }
        }
    }
}

#[test]
fn a_multicast_reaches_every_node_exactly_once() {
    let mut sim = cluster(40, 3);
    sim.run_until(at(15_000));
    sim.drain_events().for_each(drop);
    let mut sent = Vec::new();
    for (k, origin) in [0usize, 11, 27, 39].into_iter().enumerate() {
        let r = sim
            .command(origin, |s, ctx| {
                s.multicast(ctx, "test", vec![k as u8; 100])
            })
            .unwrap()
            .unwrap();
        sent.push(r);
    }
    let too_big = sim
        .command(5, |s, ctx| s.multicast(ctx, "test", vec![0; 1 << 21]))
        .unwrap();
    assert!(too_big.is_err(), "oversized payloads are refused");
    let reserved = sim
        .command(5, |s, ctx| {
            s.multicast(ctx, hawser_core::stack::KV_TOPIC, vec![1])
        })
        .unwrap();
    assert_eq!(
        reserved,
        Err(MulticastError::ReservedTopic),
        "the KV's topic is not the application's"
    );
    sim.run_until(at(17_000));
    let mut got: BTreeMap<(NodeId, u64), Vec<usize>> = BTreeMap::new();
    for (_, i, e) in sim.drain_events() {
        if let Event::App(StackEvent::Multicast(d)) = e {
            got.entry((d.origin, d.seq)).or_default().push(i);
        }
    }
    for (origin, seq) in sent {
        let mut receivers = got.remove(&(origin, seq)).unwrap_or_default();
        receivers.sort();
        let expected: Vec<usize> = (0..40).filter(|&i| Sim::<Stack>::id(i) != origin).collect();
        assert_eq!(receivers, expected, "exactly once at every other node");
    }
    let copies = copies_sent(&sim);
    assert!(
        copies <= 4 * 39 * 2,
        "at most k copies per delivery: {copies}"
    );
}
