//! The simulator's guarantees, shown with the heartbeat example protocol: determinism,
//! partitions (both kinds), kill/restart with persisted state, the cookie handshake, and
//! pauses.

#[path = "../examples/heartbeat/protocol.rs"]
mod protocol;

use hawser_core::{Cookie, Duration, Event, Instant, LinkEvent};
use hawser_sim::{Sim, SimConfig, Status};
use protocol::{Heartbeat, HeartbeatEvent};

/// `n` nodes on a ring, each dialling the next two: four heartbeat peers each.
fn ring(n: usize, seed: u64) -> Sim<Heartbeat> {
    let mut sim = Sim::new(n, SimConfig::new(seed), move |i, disk| {
        let peers = [1, 2]
            .iter()
            .map(|d| Sim::<Heartbeat>::addr((i + d) % n))
            .collect();
        Heartbeat::new(peers, disk)
    })
    .unwrap();
    (0..n).for_each(|i| sim.start(i));
    sim
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn hears(sim: &Sim<Heartbeat>, i: usize) -> usize {
    sim.node(i).map_or(0, |n| n.protocol().alive().len())
}

fn app_events(sim: &mut Sim<Heartbeat>) -> Vec<(usize, HeartbeatEvent)> {
    sim.drain_events()
        .filter_map(|(_, i, e)| match e {
            Event::App(a) => Some((i, a)),
            _ => None,
        })
        .collect()
}

#[test]
fn same_seed_same_trace_and_another_seed_another() {
    let run = |seed| {
        let mut sim = ring(20, seed);
        sim.run_until(at(5_000));
        sim.partition(&[(0..10).collect(), (10..20).collect()]);
        sim.run_until(at(10_000));
        sim.heal();
        sim.kill(3);
        sim.run_until(at(15_000));
        (sim.trace_hash(), sim.stats().events)
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a, b, "same seed, same trace");
    assert_ne!(a.0, c.0, "another seed, another trace");
    assert!(a.1 > 1_000, "the run did something: {} events", a.1);
}

#[test]
fn ring_links_up_within_a_second() {
    let mut sim = ring(10, 1);
    sim.run_until(at(1_000));
    assert!((0..10).all(|i| hears(&sim, i) == 4));
}

#[test]
fn partition_silences_across_the_cut_and_heal_restores() {
    let mut sim = ring(10, 2);
    sim.run_until(at(2_000));
    sim.partition(&[(0..5).collect(), (5..10).collect()]);
    sim.run_until(at(8_000));
    let silent: Vec<_> = app_events(&mut sim)
        .into_iter()
        .filter(|(_, e)| matches!(e, HeartbeatEvent::Silent { .. }))
        .collect();
    assert!(silent.iter().any(|(i, e)| *i == 4
        && *e
            == HeartbeatEvent::Silent {
                peer: Sim::<Heartbeat>::id(5)
            }));
    assert_eq!(
        hears(&sim, 2),
        4,
        "a node with no peer across the cut is untouched"
    );
    assert!(hears(&sim, 4) < 4);
    sim.heal();
    sim.run_until(at(20_000));
    assert!(
        (0..10).all(|i| hears(&sim, i) == 4),
        "everyone hears everyone after the heal"
    );
}

#[test]
fn oneway_partition_breaks_links_and_heal_restores() {
    let mut sim = ring(10, 3);
    sim.run_until(at(2_000));
    sim.partition_oneway(&[0], &(1..10).collect::<Vec<_>>());
    sim.run_until(at(10_000));
    // Node 0 still receives, but nobody hears it: its links break at the TCP timeout and
    // cannot be rebuilt (a connection needs both directions).
    assert_eq!(hears(&sim, 1), 3);
    assert_eq!(hears(&sim, 0), 0);
    sim.heal();
    sim.run_until(at(25_000));
    assert!((0..10).all(|i| hears(&sim, i) == 4));
}

#[test]
fn restart_recovers_persisted_state_and_peers_see_it() {
    let mut sim = ring(6, 4);
    sim.run_until(at(2_000));
    sim.kill(3);
    assert_eq!(sim.status(3), Status::Down);
    sim.run_until(at(4_000));
    assert!(
        hears(&sim, 1) < 4 && hears(&sim, 2) < 4,
        "peers of the dead node notice (resets)"
    );
    app_events(&mut sim);
    sim.start(3);
    sim.run_until(at(10_000));
    assert_eq!(
        sim.node(3).unwrap().protocol().incarnation(),
        2,
        "incarnation continues from disk"
    );
    let restarted = app_events(&mut sim)
        .into_iter()
        .filter(|(_, e)| {
            *e == HeartbeatEvent::Restarted {
                peer: Sim::<Heartbeat>::id(3),
                incarnation: 2,
            }
        })
        .count();
    assert_eq!(restarted, 4, "all four peers saw the new incarnation");
}

#[test]
fn a_kill_before_sync_loses_the_unsynced_write() {
    let mut sim = ring(3, 5);
    sim.run_until(at(1_000));
    sim.restart(0); // incarnation 2 is written...
    sim.kill(0); // ...and lost: the simulated fsync takes 1 ms and no time has passed.
    sim.start(0);
    sim.run_until(at(2_000));
    assert_eq!(sim.node(0).unwrap().protocol().incarnation(), 2);
}

#[test]
fn wrong_cookie_is_refused_by_the_real_handshake_and_mending_lets_back() {
    let mut sim = ring(6, 6);
    sim.run_until(at(2_000));
    sim.set_cookie(2, Cookie::new("not-the-cluster-cookie"));
    sim.run_until(at(10_000));
    assert_eq!(hears(&sim, 2), 0, "isolated: no link authenticates");
    let auth_failures: u64 = (0..6)
        .map(|i| sim.node(i).unwrap().stats().auth_failures)
        .sum();
    assert!(
        auth_failures > 0,
        "redials were refused by the cookie proof"
    );
    let refusals = sim
        .drain_events()
        .filter(|(_, _, e)| matches!(e, Event::Link(LinkEvent::AuthFailure { .. })))
        .count();
    assert!(refusals > 0, "refusals are surfaced as events");
    sim.set_cookie(2, None);
    sim.run_until(at(25_000));
    assert!(
        (0..6).all(|i| hears(&sim, i) == 4),
        "after mending, node 2 is back"
    );
}

#[test]
fn a_short_pause_is_invisible_and_a_long_one_is_noticed() {
    let mut sim = ring(6, 7);
    sim.run_until(at(2_000));
    app_events(&mut sim);
    sim.pause(1, Duration::from_millis(300));
    sim.run_until(at(4_000));
    assert!(
        app_events(&mut sim)
            .iter()
            .all(|(_, e)| !matches!(e, HeartbeatEvent::Silent { .. }))
    );
    sim.pause(1, Duration::from_secs(6));
    sim.run_until(at(9_000));
    assert_eq!(hears(&sim, 0), 3, "node 0 gave up on the paused node");
    sim.run_until(at(20_000));
    assert!(
        (0..6).all(|i| hears(&sim, i) == 4),
        "and relinked after it resumed"
    );
}
