//! Scenario-style tests: one behaviour each, run fairly with zero latency.

use serde::Deserialize;
use serde::de::value::{Error as DeError, MapDeserializer};

use super::harness::{Net, id};
use crate::membership::{DownCause, Membership, MembershipConfig, MembershipEvent, Message};
use crate::persist::Snapshot;
use crate::time::Duration;
use crate::wire::WireError;

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

fn cluster(n: usize, seed: u64) -> Net {
    let mut net = Net::new(n, &[0, 1, 2], MembershipConfig::default(), seed);
    for i in 0..n {
        net.start(i);
    }
    net
}

#[test]
fn bootstrap_connects_symmetric_and_bounded() {
    for seed in 0..5 {
        let mut net = cluster(10, seed);
        net.run_fair(S(15));
        net.check_invariants();
        net.check_symmetric();
        assert!(net.connected(), "seed {seed}: overlay not connected");
        assert_eq!(
            net.evictions(),
            0,
            "seed {seed}: zero latency, yet evictions"
        );
        for i in net.live() {
            assert!(!net.m(i).active_view().is_empty(), "n{i} isolated");
        }
    }
}

#[test]
fn larger_cluster_fills_views_without_exceeding_them() {
    let mut net = cluster(40, 7);
    net.run_fair(S(30));
    net.check_invariants();
    net.check_symmetric();
    assert!(net.connected());
    let full = net
        .live()
        .iter()
        .filter(|i| net.m(**i).active_view().len() >= 4)
        .count();
    assert!(full >= 36, "only {full} of 40 nodes have 4+ neighbours");
    // Shuffles spread knowledge beyond the neighbours.
    let known = net
        .live()
        .iter()
        .map(|i| net.m(*i).passive_view().len())
        .min()
        .unwrap();
    assert!(known >= 5, "a passive view has only {known} peers");
}

#[test]
fn contacts_unreachable_at_first_are_reprobed() {
    let mut net = Net::new(8, &[0], MembershipConfig::default(), 3);
    for i in 1..8 {
        net.start(i);
    }
    net.run_fair(S(5));
    assert!(
        net.live()
            .iter()
            .all(|i| net.m(*i).active_view().is_empty())
    );
    net.start(0);
    net.run_fair(S(20));
    net.check_symmetric();
    assert!(net.connected());
}

#[test]
fn a_killed_neighbour_is_dropped_at_once_and_the_overlay_heals() {
    let mut net = cluster(12, 1);
    net.run_fair(S(15));
    let victim = 5;
    let neighbours = net.m(victim).active_view();
    net.kill(victim);
    for p in &neighbours {
        let i = (p.0 - 1000) as usize;
        assert!(
            !net.m(i).is_neighbor(id(victim)),
            "n{i} still has the dead node"
        );
        assert!(
            net.hosts[i]
                .events
                .contains(&MembershipEvent::NeighborDown {
                    peer: id(victim),
                    reason: DownCause::LinkLost,
                })
        );
        assert!(net.m(i).passive_view().contains(&id(victim)));
    }
    net.run_fair(S(10));
    net.check_invariants();
    net.check_symmetric();
    assert!(net.connected());
}

#[test]
fn a_leaving_node_is_forgotten_by_its_neighbours_and_the_overlay_heals() {
    let mut net = cluster(12, 1);
    net.run_fair(S(15));
    let leaver = 5;
    let neighbours = net.m(leaver).active_view();
    assert!(!neighbours.is_empty());
    net.leave(leaver);
    for p in &neighbours {
        let i = (p.0 - 1000) as usize;
        assert!(!net.m(i).is_neighbor(id(leaver)), "n{i} kept the leaver");
        assert!(
            !net.m(i).passive_view().contains(&id(leaver)),
            "n{i} would dial the leaver back"
        );
        assert!(
            net.hosts[i]
                .events
                .contains(&MembershipEvent::NeighborDown {
                    peer: id(leaver),
                    reason: DownCause::Left,
                })
        );
    }
    net.run_fair(S(10));
    assert_eq!(net.evictions(), 0, "a leave is not a failure");
    net.check_invariants();
    net.check_symmetric();
    assert!(net.connected());
}

#[test]
fn a_silent_neighbour_is_evicted_after_indirect_probes() {
    let mut net = cluster(10, 2);
    net.run_fair(S(15));
    let frozen = 4;
    let neighbours = net.m(frozen).active_view();
    net.paused.insert(frozen);
    net.run_fair(S(10));
    for p in &neighbours {
        let i = (p.0 - 1000) as usize;
        assert!(
            !net.m(i).is_neighbor(id(frozen)),
            "n{i} kept a silent neighbour"
        );
        let events = &net.hosts[i].events;
        let down = events.iter().position(|e| {
            *e == MembershipEvent::NeighborDown {
                peer: id(frozen),
                reason: DownCause::Evicted,
            }
        });
        let suspected = events
            .iter()
            .position(|e| *e == MembershipEvent::Suspected(id(frozen)));
        assert!(
            matches!((suspected, down), (Some(s), Some(d)) if s < d),
            "n{i} reports the suspicion, then the eviction"
        );
        let asked: u64 = net
            .m(i)
            .counters()
            .sent(crate::membership::Kind::ProbeRequest);
        assert!(
            asked > 0 || net.m(i).active_view().len() <= 1,
            "n{i} evicted without asking"
        );
    }
    assert!(net.evictions() >= neighbours.len() as u64);
}

#[test]
fn a_short_stall_evicts_nobody_and_the_stalled_node_blames_nobody() {
    for seed in 0..5 {
        let mut net = cluster(10, seed);
        net.run_fair(S(15));
        let stalled = 6;
        // Shorter than the ping timeout floor: the others must not evict it.
        net.paused.insert(stalled);
        net.run_fair(MS(300));
        net.resume(stalled);
        net.run_fair(S(5));
        assert_eq!(
            net.evictions(),
            0,
            "seed {seed}: a 300 ms stall cost a link"
        );
        // Whoever suspected it during the stall cleared it after.
        for host in &net.hosts {
            let count = |e: MembershipEvent| host.events.iter().filter(|x| **x == e).count();
            assert_eq!(
                count(MembershipEvent::Suspected(id(stalled))),
                count(MembershipEvent::Cleared(id(stalled))),
                "seed {seed}"
            );
        }

        // Far longer: the others may evict it, but it must not evict them for the
        // silence it slept through.
        net.paused.insert(stalled);
        net.run_fair(S(3));
        net.resume(stalled);
        assert_eq!(net.m(stalled).counters().evictions, 0, "seed {seed}");
        assert!(net.m(stalled).counters().late_timers > 0);
        assert!(net.m(stalled).local_health() > 0);
        net.run_fair(S(15));
        net.check_symmetric();
        assert!(net.connected(), "seed {seed}");
    }
}

#[test]
fn a_neighbour_heard_only_through_helpers_is_kept_then_its_link_replaced() {
    let mut net = cluster(10, 11);
    net.run_fair(S(15));
    let a = 3;
    let b = (net.m(a).active_view()[0].0 - 1000) as usize;
    assert!(net.m(a).active_view().len() >= 2, "n{a} needs helpers");
    net.blackhole(a, b);
    // One missed round: helpers reach b over their own links, so it stays.
    net.run_fair(S(4));
    let rescued = net.m(a).counters().rescued + net.m(b).counters().rescued;
    assert!(
        rescued > 0,
        "no indirect probe vouched for the silent neighbour"
    );
    assert!(net.hosts[a].events.iter().all(|e| !matches!(
        e,
        MembershipEvent::NeighborDown {
            reason: DownCause::Evicted,
            ..
        }
    )));
    // Round after round only through helpers: the link, not the peer, is bad.
    net.run_fair(S(30));
    let replaced = |i: usize, p: usize| {
        net.hosts[i]
            .events
            .contains(&MembershipEvent::NeighborDown {
                peer: id(p),
                reason: DownCause::LinkUnhealthy,
            })
    };
    assert!(replaced(a, b) || replaced(b, a));
    net.check_symmetric();
    assert!(net.connected());
}

#[test]
fn passive_view_is_persisted_and_a_restarted_node_rejoins_through_it() {
    let mut net = cluster(20, 4);
    net.run_fair(S(20));
    let r = 7;
    let disk = net.hosts[r].disk.clone();
    let persisted = disk.get(crate::membership::PASSIVE_KEY).expect("persisted");
    assert!(!persisted.is_empty());
    net.kill(r);
    net.run_fair(S(2));
    // No contacts this time: only the remembered passive view can bring it back.
    net.set_contacts(r, &[]);
    net.start(r);
    assert!(
        !net.m(r).passive_view().is_empty(),
        "passive view not reloaded"
    );
    net.run_fair(S(10));
    assert!(!net.m(r).active_view().is_empty());
    net.check_symmetric();
    assert!(net.connected());
}

#[test]
fn requests_are_answered_and_their_timers_cancelled() {
    let mut net = cluster(10, 5);
    net.run_fair(S(15));
    net.check_invariants();
    for i in net.live() {
        let m = net.m(i);
        assert!(
            m.pending.values().all(|p| p.request.is_none()),
            "n{i} still waits on a request"
        );
        assert!(m.relays.is_empty());
    }
}

#[test]
fn throttled_contact_still_gets_everyone_in() {
    let cfg = MembershipConfig {
        join_burst: 1,
        join_refill_ms: 10_000,
        ..MembershipConfig::default()
    };
    let mut net = Net::new(12, &[0], cfg, 9);
    for i in 0..12 {
        net.start(i);
    }
    net.run_fair(S(20));
    assert!(net.m(0).counters().joins_throttled > 0);
    net.check_symmetric();
    assert!(net.connected());
}

#[test]
fn temporary_links_are_closed() {
    let mut net = cluster(15, 6);
    net.run_fair(S(40));
    for i in net.live() {
        let linked = net.node(i).links().peers().count();
        let active = net.m(i).active_view().len();
        // Shuffle replies and probes open links for a moment; none outlive their use
        // by more than the idle timeout.
        assert!(
            linked <= active + 2,
            "n{i}: {linked} links for {active} neighbours"
        );
    }
}

#[test]
fn a_malformed_message_drops_the_link() {
    let mut net = cluster(5, 8);
    net.run_fair(S(10));
    let a = 0;
    let b = (net.m(a).active_view()[0].0 - 1000) as usize;
    assert!(net.inject(a, b, &[0xff, 0xff, 0xff]));
    assert!(!net.m(b).is_neighbor(id(a)));
    assert!(net.node(b).stats().decode_errors > 0);
    net.run_fair(S(10));
    net.check_symmetric();
}

#[test]
fn decoding_rejects_garbage_with_an_error() {
    assert!(matches!(Message::decode(&[]), Err(WireError::Payload(_))));
}

#[test]
fn bad_config_is_an_error_at_construction() {
    let cfg = MembershipConfig {
        active_view: 0,
        ..MembershipConfig::default()
    };
    let err = Membership::new(cfg, vec![], &Snapshot::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("active_view"), "{err}");
}

#[test]
fn corrupt_persisted_view_is_ignored_and_counted() {
    let mut snap = Snapshot::default();
    snap.0
        .insert(crate::membership::PASSIVE_KEY.to_vec(), vec![0xff; 7]);
    let m = Membership::new(MembershipConfig::default(), vec![], &snap).unwrap();
    assert!(m.passive_view().is_empty());
    assert_eq!(m.counters().passive_restore_failed, 1);
}

#[test]
fn config_overrides_by_field_name() {
    let fields = [("active_view", 5u64), ("ping_interval_ms", 250)];
    let cfg = MembershipConfig::deserialize(MapDeserializer::<_, DeError>::new(fields.into_iter()))
        .unwrap();
    assert_eq!(cfg.active_view, 5);
    assert_eq!(cfg.ping_interval_ms, 250);
    assert_eq!(cfg.passive_view, MembershipConfig::default().passive_view);
    let unknown = [("activ_view", 5u64)];
    assert!(
        MembershipConfig::deserialize(MapDeserializer::<_, DeError>::new(unknown.into_iter()))
            .is_err()
    );
}

/// Pings sent by all nodes over `window`, per link of the overlay (each link counted
/// once), per second.
fn pings_per_link_per_s(net: &mut Net, window: Duration) -> f64 {
    let pings = |net: &Net| -> u64 {
        net.live()
            .iter()
            .map(|&i| net.m(i).counters().sent(crate::membership::Kind::Ping))
            .sum()
    };
    let before = pings(net);
    net.run_fair(window);
    let links: usize = net
        .live()
        .iter()
        .map(|&i| net.m(i).active_view().len())
        .sum();
    (pings(net) - before) as f64 / (links as f64 / 2.0) / (window.as_millis() as f64 / 1e3)
}

#[test]
fn per_link_schedules_ping_an_idle_link_from_one_end_fast_from_both() {
    // Without `rotate_pings` (the `lan` profile before 2026-12-05; still a config),
    // each link has its own schedule, and one end's ping spares the other's.
    let per_link = MembershipConfig {
        rotate_pings: false,
        ping_interval_ms: 1_500,
        ..MembershipConfig::default()
    };
    let mut lan = Net::new(20, &[0, 1, 2], per_link, 3);
    (0..20).for_each(|i| lan.start(i));
    lan.run_fair(S(20));
    let lan_rate = pings_per_link_per_s(&mut lan, S(30));
    let spared: u64 = lan
        .live()
        .iter()
        .map(|&i| lan.m(i).counters().pings_spared)
        .sum();
    let mut fast = Net::new(20, &[0, 1, 2], crate::membership::Profile::Fast.config(), 3);
    (0..20).for_each(|i| fast.start(i));
    fast.run_fair(S(20));
    let fast_rate = pings_per_link_per_s(&mut fast, S(30));
    // Pings every 1.5–2.25 s, and one end's ping spares the other's; but each end
    // has measured its link (else its timeout would be the long initial one).
    assert!(spared > 0);
    for i in lan.live() {
        for p in lan.m(i).active_view() {
            assert!(lan.m(i).rtt(p).is_some(), "n{i} never measured {p}");
        }
    }
    assert!(
        (0.4..0.75).contains(&lan_rate),
        "per-link: {lan_rate:.2} pings per link per s"
    );
    // fast: both ends, every 400–600 ms.
    assert!(fast_rate > 3.0, "fast: {fast_rate:.2} pings per link per s");
    assert_eq!(lan.evictions() + fast.evictions(), 0);
}

#[test]
fn a_two_second_pause_is_suspected_and_cleared_under_lan_but_evicted_under_fast() {
    // Under lan a node pings one neighbour a tick, so a 2 s pause may pass before any
    // neighbour pings the paused node: not every seed sees a suspicion, but some must.
    let mut suspected = 0;
    for seed in 0..6 {
        for (profile, evicts) in [
            (crate::membership::Profile::Lan, false),
            (crate::membership::Profile::Fast, true),
        ] {
            let mut net = Net::new(10, &[0, 1, 2], profile.config(), seed);
            (0..10).for_each(|i| net.start(i));
            net.run_fair(S(15));
            let paused = 5;
            net.paused.insert(paused);
            net.run_fair(S(2));
            net.resume(paused);
            net.run_fair(S(5));
            assert_eq!(net.evictions() > 0, evicts, "seed {seed}, {profile}");
            if evicts {
                continue;
            }
            for host in &net.hosts {
                let count = |e: MembershipEvent| host.events.iter().filter(|x| **x == e).count();
                let s = count(MembershipEvent::Suspected(id(paused)));
                assert_eq!(
                    s,
                    count(MembershipEvent::Cleared(id(paused))),
                    "seed {seed}"
                );
                suspected += s;
            }
        }
    }
    assert!(suspected > 0, "no seed noticed the pause");
}

#[test]
fn lan_pings_one_neighbour_per_tick() {
    let mut lan = cluster(20, 3);
    lan.run_fair(S(20));
    let links: usize = lan
        .live()
        .iter()
        .map(|&i| lan.m(i).active_view().len())
        .sum();
    let rate = pings_per_link_per_s(&mut lan, S(30));
    // One ping per node per tick (1–1.5 s), to its stalest neighbour; so each link
    // about once per (view size / 2) ticks. And every end has measured its link (else
    // its timeout would be the long initial one).
    for i in lan.live() {
        for p in lan.m(i).active_view() {
            assert!(lan.m(i).rtt(p).is_some(), "n{i} never measured {p}");
        }
    }
    let per_node = rate * (links as f64 / 2.0) / 20.0;
    assert!(
        (0.6..=1.0).contains(&per_node),
        "lan: {per_node:.2} pings per node per s"
    );
    assert!(
        (0.1..0.4).contains(&rate),
        "lan: {rate:.2} pings per link per s"
    );
    assert_eq!(lan.evictions(), 0);
}

#[test]
fn a_node_that_knows_nobody_asks_for_the_member_list_and_joins_through_it() {
    let mut net = Net::new(7, &[0, 1, 2], MembershipConfig::default(), 2);
    (0..6).for_each(|i| net.start(i));
    net.run_fair(S(10));
    // n6 has no contact and no remembered peer: alone, it asks for the member list
    // (every repair period, for as long as its active view is short).
    let lone = 6;
    net.set_contacts(lone, &[]);
    net.start(lone);
    net.run_fair(S(1));
    assert!(net.m(lone).active_view().is_empty());
    assert!(net.m(lone).wants_peers());
    // Reachable members are taken first; the passive view has room for all of these.
    net.learn(lone, &[1, 3], &[4]);
    assert!(
        !net.m(lone).wants_peers(),
        "answered: no new ask this period"
    );
    assert_eq!(net.m(lone).counters().peers_learned, 3);
    net.run_fair(S(5));
    assert!(!net.m(lone).active_view().is_empty());
    net.check_symmetric();
    assert!(net.connected());
}
