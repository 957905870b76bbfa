//! DNS records written on both sides of a partition, to the same name, are both answered
//! everywhere after the heal: hawser's full stack in the simulator, and each node's
//! cluster zone built from its own KV replica as the agent builds it. (Lashup kept a
//! zone in one last-writer-wins register: one side's records were lost at every heal.)

use hawser_core::Instant;
use hawser_core::stack::{Stack, StackConfig};
use hawser_core::time::Duration;
use hawser_dataplane::dns::message::Question;
use hawser_dataplane::dns::records::{self, Data, Kind, Record};
use hawser_dataplane::dns::{NoVips, Zone};
use hawser_sim::{Sim, SimConfig};
use hickory_proto::rr::{DNSClass, Name, RecordType};

const NODES: usize = 8;

fn apex() -> Name {
    Name::from_ascii("hawser.").unwrap()
}

/// Add an A record for `api` on node `i`, as `POST /v1/dns/records` does: read the
/// name's value, derive the op, apply it.
fn add(sim: &mut Sim<Stack>, i: usize, ip: &str) {
    let owner = records::parse_owner("api", &apex()).unwrap();
    let key = records::key_of(&owner);
    let record = Record {
        data: Data::parse(Kind::A, ip, &apex()).unwrap(),
        ttl: 30,
    };
    let current = sim.node(i).unwrap().protocol().kv().get(&key).cloned();
    let op = records::add_op(current.as_ref(), &record).unwrap();
    sim.command(i, |stack, ctx| stack.kv_op(ctx, &key, &op))
        .expect("node is up")
        .expect("op accepted");
}

/// What node `i`'s DNS server answers for api.hawser. A, sorted.
fn answers(sim: &Sim<Stack>, i: usize) -> Vec<String> {
    let mut zone = Zone::new(apex(), Vec::new(), 5, 2);
    for (key, value) in sim
        .node(i)
        .unwrap()
        .protocol()
        .kv()
        .scan(records::KEY_PREFIX)
    {
        if let Some(owner) = records::owner_of(key) {
            zone.set_records(owner, Some(value));
        }
    }
    let q = Question {
        name: Name::from_ascii("api.hawser.").unwrap(),
        qtype: RecordType::A,
        qclass: DNSClass::IN,
    };
    let mut ips: Vec<String> = zone
        .lookup(&q, 0, &NoVips)
        .answers
        .iter()
        .map(|r| r.data.to_string())
        .collect();
    ips.sort();
    ips
}

fn run(seed: u64) {
    let contacts: Vec<_> = (0..3).map(Sim::<Stack>::addr).collect();
    let mut sim = Sim::new(NODES, SimConfig::new(seed), move |_, snapshot| {
        Stack::new(StackConfig::default(), contacts.clone(), snapshot).unwrap()
    })
    .unwrap();
    for i in 0..NODES {
        sim.start(i);
    }
    let at = |s: u64| Instant::ZERO + Duration::from_secs(s);
    sim.run_until(at(5));
    let left: Vec<usize> = (0..NODES / 2).collect();
    let right: Vec<usize> = (NODES / 2..NODES).collect();
    sim.partition(&[left.clone(), right.clone()]);
    sim.run_until(at(10));
    add(&mut sim, 1, "198.18.5.1");
    add(&mut sim, 6, "198.18.5.2");
    sim.run_until(at(15));
    // Each side holds its own write only.
    for &i in &left {
        assert_eq!(answers(&sim, i), ["198.18.5.1"], "seed {seed}: node {i}");
    }
    for &i in &right {
        assert_eq!(answers(&sim, i), ["198.18.5.2"], "seed {seed}: node {i}");
    }
    sim.heal();
    sim.run_until(at(30));
    for i in 0..NODES {
        assert_eq!(
            answers(&sim, i),
            ["198.18.5.1", "198.18.5.2"],
            "seed {seed}: node {i} after the heal"
        );
    }
}

#[test]
fn records_added_on_both_sides_of_a_partition_are_both_answered_after_the_heal() {
    for seed in 1..=10 {
        run(seed);
    }
}
