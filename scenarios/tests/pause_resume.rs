//! A node that freezes long enough for its neighbours to mark it failed, then resumes
//! (issue 23's "resume-alone glitch"): it finds every link closed, and must not show
//! the rest of the cluster unreachable while it rejoins — it is the one that was gone.
//! And a node that freezes for 2 s is only suspected, never marked failed.

use hawser_core::gm::{GmConfig, GmEvent};
use hawser_core::membership::{DownCause, MembershipEvent};
use hawser_core::stack::{Stack, StackConfig, StackEvent};
use hawser_core::{Duration, Event, Instant, NodeId};
use hawser_sim::{Sim, SimConfig};

const N: usize = 30;
const VICTIM: usize = 17;

/// What happened around a pause of `pause` at `VICTIM`, 20 s into a run of `N` nodes.
#[derive(Debug, Default)]
struct Seen {
    /// Others the victim reported unreachable after it resumed.
    victim_saw_unreachable: usize,
    /// Neighbours that evicted the victim (the failure detector's verdict).
    evicted_by: usize,
    /// Nodes that reported the victim unreachable.
    failed_at: usize,
    /// Suspicions of the victim published by its neighbours.
    suspected_by: usize,
    /// Neighbours the victim lost on resuming, by cause.
    victim_lost: std::collections::BTreeMap<String, usize>,
}

fn run(pause: Duration, gm: GmConfig) -> Seen {
    let contacts: Vec<_> = (0..3).map(Sim::<Stack>::addr).collect();
    let mut config = SimConfig::new(7);
    // Links slower than the 10 ms within which reachability is settled: the resumed
    // node's rejoin (a dial, a handshake, a neighbour request) takes longer than that,
    // as it does for a real process working through the backlog of its freeze.
    config.latency = (Duration::from_millis(10), Duration::from_millis(20));
    let stack = StackConfig {
        gm,
        ..StackConfig::default()
    };
    let mut sim = Sim::new(N, config, move |_, disk| {
        Stack::new(stack.clone(), contacts.clone(), disk).expect("valid config")
    })
    .expect("valid sim");
    (0..N).for_each(|i| sim.start(i));
    let t0 = Instant::ZERO + Duration::from_secs(20);
    sim.run_until(t0);
    sim.drain_events().for_each(drop);
    sim.pause(VICTIM, pause);
    let resumed = t0 + pause;
    sim.run_until(resumed + Duration::from_secs(10));
    let victim = Sim::<Stack>::id(VICTIM);
    let mut seen = Seen::default();
    for (t, i, e) in sim.drain_events() {
        let Event::App(e) = e else { continue };
        match e {
            StackEvent::Gm(GmEvent::Unreachable(x)) if i == VICTIM && t >= resumed => {
                assert_ne!(x, victim);
                seen.victim_saw_unreachable += 1;
            }
            StackEvent::Gm(GmEvent::Unreachable(x)) if x == victim => seen.failed_at += 1,
            StackEvent::Membership(MembershipEvent::NeighborDown { peer, reason })
                if peer == victim && reason == DownCause::Evicted =>
            {
                seen.evicted_by += 1;
            }
            StackEvent::Membership(MembershipEvent::NeighborDown { reason, .. }) if i == VICTIM => {
                *seen.victim_lost.entry(format!("{reason:?}")).or_default() += 1;
            }
            StackEvent::Membership(MembershipEvent::Suspected(x)) if x == victim => {
                seen.suspected_by += 1;
            }
            _ => {}
        }
    }
    seen
}

fn id_of(i: usize) -> NodeId {
    Sim::<Stack>::id(i)
}

#[test]
fn a_node_resumed_alone_does_not_see_the_others_fail() {
    let seen = run(Duration::from_secs(6), GmConfig::default());
    // The pause was long enough to be a failure: its neighbours evicted it, everyone
    // considered it unreachable, and it came back to closed links.
    assert!(seen.evicted_by > 0, "{seen:?}");
    assert!(seen.failed_at >= N - 2, "{seen:?}");
    assert!(seen.victim_lost.contains_key("LinkLost"), "{seen:?}");
    assert_eq!(seen.victim_saw_unreachable, 0, "{seen:?}");
    // Without the grace, the same run shows the glitch: the test can fail.
    let without = run(
        Duration::from_secs(6),
        GmConfig {
            isolation_grace_ms: 0,
            ..GmConfig::default()
        },
    );
    assert!(
        without.victim_saw_unreachable >= N - 2,
        "{without:?} ({} should have seen the others unreachable)",
        id_of(VICTIM)
    );
}

#[test]
fn a_two_second_pause_is_suspected_not_failed() {
    let seen = run(Duration::from_secs(2), GmConfig::default());
    assert!(seen.suspected_by > 0, "{seen:?}");
    assert_eq!(seen.evicted_by, 0, "{seen:?}");
    assert_eq!(seen.failed_at, 0, "{seen:?}");
    assert_eq!(seen.victim_saw_unreachable, 0, "{seen:?}");
}
