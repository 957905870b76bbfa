//! How fast a silent failure is known, over many seeds: N nodes on the full stack (1–5 ms
//! links) settle for 20 s, then one node freezes (no reset, nothing in or out). For each
//! seed, the time until 90 % of the others consider it unreachable; printed sorted, so
//! the tail shows (the detect-1000 scenario's bar, Lashup's goal, is 1.5 s).
//!
//! `cargo run --release -p hawser-sim --example freeze_detect -- 50 60` (N, seeds); two
//! more arguments override the detector's `ping_interval_ms` and
//! `indirect_timeout_factor`, to weigh a change of defaults before making it.

use std::collections::BTreeMap;

use hawser_core::gm::GmEvent;
use hawser_core::stack::{Stack, StackConfig, StackEvent};
use hawser_core::{Duration, Event, Instant};
use hawser_sim::{Sim, SimConfig};

/// Milliseconds from the freeze until 90 % of the other `n - 1` nodes knew, if they did
/// within 4 s.
fn p90_ms(n: usize, seed: u64, stack: &StackConfig) -> Option<u64> {
    let contacts: Vec<_> = (0..3).map(Sim::<Stack>::addr).collect();
    let mut config = SimConfig::new(seed);
    config.latency = (Duration::from_millis(1), Duration::from_millis(5));
    let stack = stack.clone();
    let mut sim = Sim::new(n, config, move |_, disk| {
        Stack::new(stack.clone(), contacts.clone(), disk).expect("valid config")
    })
    .expect("valid sim");
    (0..n).for_each(|i| sim.start(i));
    sim.run_until(Instant::ZERO + Duration::from_secs(20));
    let victim = (seed as usize * 7) % n;
    let frozen_at = sim.now();
    sim.freeze(victim);
    sim.drain_events().for_each(drop);
    sim.run_until(frozen_at + Duration::from_secs(4));
    let dead = Sim::<Stack>::id(victim);
    let mut first: BTreeMap<usize, Instant> = BTreeMap::new();
    for (t, i, e) in sim.drain_events() {
        if let Event::App(StackEvent::Gm(GmEvent::Unreachable(x))) = e
            && x == dead
        {
            first.entry(i).or_insert(t);
        }
    }
    let mut ms: Vec<u64> = first
        .values()
        .map(|t| t.saturating_since(frozen_at).as_millis())
        .collect();
    ms.sort_unstable();
    let needed = (n - 1) * 9 / 10;
    ms.get(needed.checked_sub(1)?).copied()
}

fn main() {
    let arg = |k: usize, default: u64| {
        std::env::args()
            .nth(k)
            .map_or(default, |s| s.parse().expect("a number"))
    };
    let (n, seeds) = (arg(1, 50) as usize, arg(2, 60));
    let mut stack = StackConfig::default();
    let m = &mut stack.membership;
    m.ping_interval_ms = arg(3, m.ping_interval_ms);
    m.indirect_timeout_factor = arg(4, m.indirect_timeout_factor);
    let (interval, factor) = (m.ping_interval_ms, m.indirect_timeout_factor);
    let mut all: Vec<(u64, Option<u64>)> = (1..=seeds)
        .map(|seed| (seed, p90_ms(n, seed, &stack)))
        .collect();
    all.sort_unstable_by_key(|(_, v)| v.unwrap_or(u64::MAX));
    let over: Vec<String> = all
        .iter()
        .filter(|(_, v)| v.is_none_or(|ms| ms > 1_500))
        .map(|(seed, _)| seed.to_string())
        .collect();
    println!(
        "{n} nodes, {seeds} seeds, pings every {interval} ms, indirect factor {factor}: \
         ms until 90 % knew, sorted (none: not within 4 s)"
    );
    let shown: Vec<String> = all
        .iter()
        .map(|(_, v)| v.map_or("none".into(), |ms| ms.to_string()))
        .collect();
    println!("{}", shown.join(" "));
    println!(
        "over 1.5 s: {} of {seeds} (seeds: {})",
        over.len(),
        over.join(" ")
    );
}
