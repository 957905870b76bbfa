//! What one membership change costs global membership: N nodes on the full stack join
//! (10 ms apart) and settle, then one node is killed; every message and entry global
//! membership sends in the next 5 s (its neighbours' new adjacency, flooded, and the
//! repairs that follow) is counted, per node. Also reported: the join storm's totals.
//!
//! `cargo run --release -p hawser-sim --example gm_change -- 300` (N, default 300)

use hawser_core::gm::GmCounters;
use hawser_core::stack::{Stack, StackConfig};
use hawser_core::{Duration, Instant};
use hawser_sim::{Sim, SimConfig, Status};

/// Global membership's messages sent, entries sent and entries applied (news), summed
/// over the running nodes.
fn totals(sim: &Sim<Stack>) -> [u64; 3] {
    (0..sim.len())
        .filter(|&i| sim.status(i) == Status::Up)
        .map(|i| sim.node(i).expect("up").protocol().gm().counters())
        .fold([0; 3], |[m, e, a], c: &GmCounters| {
            [
                m + c.messages_sent(),
                e + c.entries_sent,
                a + c.entries_applied,
            ]
        })
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("N: a number of nodes"))
        .unwrap_or(300);
    let contacts: Vec<_> = (0..3).map(Sim::<Stack>::addr).collect();
    let mut sim = Sim::new(n, SimConfig::new(1), move |_, disk| {
        Stack::new(StackConfig::default(), contacts.clone(), disk).expect("valid config")
    })
    .expect("valid sim");
    let at = |ms: u64| Instant::ZERO + Duration::from_millis(ms);
    for i in 0..n {
        sim.run_until(at(10 * i as u64));
        sim.start(i);
    }
    let settled = 10 * n as u64 + 20_000;
    sim.run_until(at(settled));
    let join = totals(&sim);
    // The same 5 s without a change, for what a quiet cluster sends anyway.
    sim.run_until(at(settled + 5_000));
    let quiet = totals(&sim);
    let settled = settled + 5_000;
    let victim = n / 2;
    sim.kill(victim);
    // The victim's counters are gone with it; count the survivors' before and after.
    let before = totals(&sim);
    sim.run_until(at(settled + 5_000));
    let after = totals(&sim);
    let per = |x: u64| x as f64 / (n - 1) as f64;
    println!("{n} nodes, full stack, seed 1");
    println!(
        "join of all {n} (10 ms apart) and 20 s to settle: {:.0} gm messages and {:.0} entries per node",
        per(join[0]),
        per(join[1])
    );
    println!(
        "5 quiet seconds: {:.2} gm messages and {:.2} entries per node",
        per(quiet[0] - join[0]),
        per(quiet[1] - join[1])
    );
    // Each new version of an entry is news to every node once: applied entries per
    // node count the versions the change (and the repairs it set off) published.
    println!(
        "one kill, the 5 s after it: {:.1} entry versions published; per surviving node \
         {:.2} gm messages and {:.2} entries sent",
        per(after[2] - before[2]),
        per(after[0] - before[0]),
        per(after[1] - before[1])
    );
}
