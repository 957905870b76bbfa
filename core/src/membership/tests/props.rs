//! Property tests: view invariants under arbitrary interleavings of deliveries, dials,
//! connection resets, timer firings, kills and restarts; symmetry once things settle.

use proptest::prelude::*;

use super::harness::{Action, Net};
use crate::membership::MembershipConfig;
use crate::time::Duration;

/// A small, fast-moving config so short runs exercise views filling and overflowing,
/// shuffles, evictions and repairs.
fn small() -> MembershipConfig {
    MembershipConfig {
        active_view: 3,
        passive_view: 5,
        arwl: 4,
        prwl: 2,
        shuffle_period_ms: 700,
        shuffle_active: 2,
        shuffle_passive: 2,
        ..MembershipConfig::default()
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Pick the `n`-th (mod count) enabled action, resets excluded.
    Next(u16),
    /// Reset the `n`-th (mod count) connection.
    Reset(u16),
    Kill(u8),
    Restart(u8),
    /// Stop node `n` processing anything until the matching `Resume`.
    Pause(u8),
    Resume(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        40 => any::<u16>().prop_map(Step::Next),
        1 => any::<u16>().prop_map(Step::Reset),
        1 => any::<u8>().prop_map(Step::Kill),
        1 => any::<u8>().prop_map(Step::Restart),
        1 => any::<u8>().prop_map(Step::Pause),
        1 => any::<u8>().prop_map(Step::Resume),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold_under_any_interleaving(
        n in 3usize..8,
        seed in any::<u64>(),
        steps in proptest::collection::vec(step(), 1..600),
    ) {
        let mut net = Net::new(n, &[0, 1], small(), seed);
        for i in 0..n {
            net.start(i);
        }
        for s in steps {
            match s {
                Step::Next(k) => {
                    let acts: Vec<Action> = net
                        .enabled()
                        .into_iter()
                        .filter(|a| !matches!(a, Action::Reset(_)))
                        .collect();
                    net.act(acts[k as usize % acts.len()]);
                }
                Step::Reset(k) => {
                    let acts: Vec<Action> = net
                        .enabled()
                        .into_iter()
                        .filter(|a| matches!(a, Action::Reset(_)))
                        .collect();
                    if !acts.is_empty() {
                        net.act(acts[k as usize % acts.len()]);
                    }
                }
                Step::Kill(i) => {
                    let i = i as usize % n;
                    if net.live().len() > 2 && net.hosts[i].node.is_some() {
                        net.kill(i);
                    }
                }
                Step::Restart(i) => {
                    let i = i as usize % n;
                    if net.hosts[i].node.is_none() {
                        net.start(i);
                    }
                }
                Step::Pause(i) => {
                    let i = i as usize % n;
                    if net.hosts[i].node.is_some() {
                        net.paused.insert(i);
                    }
                }
                Step::Resume(i) => {
                    let i = i as usize % n;
                    if net.paused.contains(&i) {
                        net.resume(i);
                    }
                }
            }
            net.check_invariants();
        }
        // Let it settle: everything delivered, every request answered or timed out.
        for i in net.paused.clone() {
            net.resume(i);
        }
        net.run_fair(Duration::from_secs(30));
        net.check_invariants();
        net.check_symmetric();
    }
}
