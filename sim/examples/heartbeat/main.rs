//! Run the heartbeat protocol on a simulated cluster through partitions, a one-way
//! partition and kill/restart, and print what the simulator achieved.
//!
//! ```text
//! cargo run --release -p hawser-sim --example heartbeat -- --nodes 1000
//! cargo run --release -p hawser-sim --example heartbeat -- --nodes 10000 --seconds 30 --seed 7
//! ```

mod protocol;

use std::time::Instant as WallClock;

use hawser_core::{Duration, Event, Instant};
use hawser_sim::{Sim, SimConfig};
use protocol::{Heartbeat, HeartbeatEvent};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v:?}"))
        })
        .unwrap_or(default)
}

fn main() {
    let n = arg("--nodes", 1000) as usize;
    let seconds = arg("--seconds", 60);
    let seed = arg("--seed", 1);
    let at = |frac: u64| Instant::ZERO + Duration::from_millis(seconds * 1000 * frac / 100);

    // Each node dials the next two on a ring: every node has four heartbeat links.
    let mut sim = Sim::new(n, SimConfig::new(seed), move |i, disk| {
        let peers = [1, 2]
            .iter()
            .map(|d| Sim::<Heartbeat>::addr((i + d) % n))
            .collect();
        Heartbeat::new(peers, disk)
    })
    .expect("valid config");

    let wall = WallClock::now();
    for i in 0..n {
        sim.start(i);
    }
    let (lo, hi): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| i < n / 2);
    let tenth: Vec<usize> = (0..n / 10).collect();
    let rest: Vec<usize> = (n / 10..n).collect();
    let victims: Vec<usize> = (0..n).step_by(20).collect();

    sim.run_until(at(30));
    sim.partition(&[lo, hi]);
    sim.run_until(at(45));
    sim.heal();
    sim.run_until(at(55));
    sim.partition_oneway(&tenth, &rest);
    sim.run_until(at(70));
    sim.heal();
    sim.run_until(at(80));
    victims.iter().for_each(|&v| sim.kill(v));
    sim.run_until(at(85));
    victims.iter().for_each(|&v| sim.start(v));
    sim.run_until(at(100));
    let wall = wall.elapsed().as_secs_f64();

    let (mut alive, mut silent, mut restarted) = (0u64, 0u64, 0u64);
    for (_, _, e) in sim.drain_events() {
        match e {
            Event::App(HeartbeatEvent::Alive { .. }) => alive += 1,
            Event::App(HeartbeatEvent::Silent { .. }) => silent += 1,
            Event::App(HeartbeatEvent::Restarted { .. }) => restarted += 1,
            _ => {}
        }
    }
    let linked = (0..n)
        .filter(|&i| {
            sim.node(i)
                .is_some_and(|nd| nd.protocol().alive().len() == 4)
        })
        .count();
    let stats = sim.stats();
    let virt = sim.now().as_nanos() as f64 / 1e9;
    println!("heartbeat: {n} nodes, {virt:.0} virtual seconds, seed {seed}");
    println!("  events        {}", stats.events);
    println!("  frames        {} ({} bytes)", stats.frames, stats.bytes);
    println!("  wall time     {wall:.2} s");
    println!("  events/s      {:.0}", stats.events as f64 / wall);
    println!("  virtual s per wall s  {:.1}", virt / wall);
    println!("  alive/silent/restarted events  {alive}/{silent}/{restarted}");
    println!("  nodes hearing all 4 peers at the end  {linked}/{n}");
    let restarted_incarnation = victims
        .first()
        .and_then(|&v| sim.node(v))
        .map(|nd| nd.protocol().incarnation());
    println!("  incarnation of a restarted node  {restarted_incarnation:?}");
    println!("  trace hash    {}", sim.trace_hash());
}
