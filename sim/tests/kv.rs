//! The replicated KV on a small full mesh in the simulator. A test-only wrapper stands in
//! for the stack: every linked peer is a neighbour, and "multicast" is a send to every
//! linked peer (enough on a full mesh). Proves durability-before-answer, delta
//! dissemination, anti-entropy repair after a partition, restart and wipe.

use std::collections::BTreeMap;

use hawser_core::crdt::{Map, MapOp};
use hawser_core::kv::{Kv, KvConfig, KvError, KvEvent, KvTimer, Ticket};
use hawser_core::wire::WireError;
use hawser_core::{
    Addr, Ctx, Duration, Event, Instant, Layered, NodeId, PersistSeq, Protocol, Snapshot,
};
use hawser_sim::{Sim, SimConfig};
use serde_json::json;

const AE: u8 = 0;
const DELTA: u8 = 1;

struct KvMesh {
    kv: Kv,
    peers: Vec<Addr>,
}

#[derive(Debug)]
enum Timer {
    Kv(KvTimer),
    Redial,
}

type C<'a> = Ctx<'a, Timer, KvEvent>;

impl KvMesh {
    fn scoped<R>(
        &mut self,
        ctx: &mut C<'_>,
        f: impl FnOnce(&mut Kv, &mut Ctx<'_, KvTimer, KvEvent>) -> R,
    ) -> R {
        let unwrap = |t| match t {
            Timer::Kv(t) => Some(t),
            Timer::Redial => None,
        };
        let (r, events) = ctx.scope(AE, Timer::Kv, unwrap, |c| f(&mut self.kv, c));
        for e in events {
            if let KvEvent::Disseminate(bytes) = &e {
                let peers: Vec<NodeId> = ctx.linked_peers().collect();
                for p in peers {
                    let mut body = vec![DELTA];
                    body.extend_from_slice(bytes);
                    let _ = ctx.send(p, &body);
                }
            }
            ctx.emit(e);
        }
        r
    }
}

impl Protocol for KvMesh {
    type Timer = Timer;
    type Event = KvEvent;
    fn start(&mut self, ctx: &mut C<'_>) {
        self.scoped(ctx, |kv, c| kv.start(c));
        ctx.set_timer(Duration::ZERO, Timer::Redial);
    }
    fn link_up(&mut self, peer: NodeId, _: &Addr, ctx: &mut C<'_>) {
        self.scoped(ctx, |kv, c| kv.neighbor_up(peer, c));
    }
    fn link_down(&mut self, peer: NodeId, _: hawser_core::DownReason, ctx: &mut C<'_>) {
        self.scoped(ctx, |kv, c| kv.neighbor_down(peer, c));
    }
    fn message(&mut self, from: NodeId, body: &[u8], ctx: &mut C<'_>) -> Result<(), WireError> {
        match body.split_first() {
            Some((&AE, rest)) => self.scoped(ctx, |kv, c| kv.message(from, rest, c)),
            Some((&DELTA, rest)) => {
                self.scoped(ctx, |kv, c| kv.deliver(rest, c));
                Ok(())
            }
            _ => Err(WireError::Payload("bad channel".into())),
        }
    }
    fn timer(&mut self, timer: Timer, ctx: &mut C<'_>) {
        match timer {
            Timer::Kv(t) => self.scoped(ctx, |kv, c| kv.timer(t, c)),
            Timer::Redial => {
                let me = ctx.id();
                for (i, a) in self.peers.clone().into_iter().enumerate() {
                    let id = NodeId(i as u64);
                    if id != me && !ctx.is_linked(id) {
                        ctx.connect(a, Some(id));
                    }
                }
                ctx.set_timer(Duration::from_millis(500), Timer::Redial);
            }
        }
    }
    fn persisted(&mut self, seq: PersistSeq, ctx: &mut C<'_>) {
        self.scoped(ctx, |kv, c| kv.persisted(seq, c));
    }
}

fn mesh(n: usize, seed: u64) -> Sim<KvMesh> {
    let peers: Vec<Addr> = (0..n).map(Sim::<KvMesh>::addr).collect();
    let mut sim = Sim::new(n, SimConfig::new(seed), move |_, disk: &Snapshot| KvMesh {
        kv: Kv::new(KvConfig::default(), disk).unwrap(),
        peers: peers.clone(),
    })
    .unwrap();
    (0..n).for_each(|i| sim.start(i));
    sim.run_until(at(1_000));
    sim
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn op(sim: &mut Sim<KvMesh>, node: usize, key: &str, json: &str) -> Result<Ticket, KvError> {
    let op = MapOp::from_json_str(json).unwrap();
    sim.command(node, |p, ctx| p.scoped(ctx, |kv, c| kv.op(key, &op, c)))
        .expect("node is up")
}

fn value(sim: &Sim<KvMesh>, node: usize, key: &str) -> serde_json::Value {
    sim.node(node)
        .unwrap()
        .protocol()
        .kv
        .get(key)
        .cloned()
        .unwrap_or_default()
        .to_json()
}

fn incr(n: u64) -> String {
    format!(r#"{{"update":[{{"field":"number","type":"counter","op":{{"increment":{n}}}}}]}}"#)
}

#[test]
fn an_op_is_answered_once_durable_then_everyone_sees_it() {
    let mut sim = mesh(3, 1);
    sim.drain_events().for_each(drop);
    let ticket = op(&mut sim, 1, "erlang_users", &incr(5)).unwrap();
    let committed_now = sim
        .drain_events()
        .any(|(_, _, e)| matches!(e, Event::App(KvEvent::Committed { .. })));
    assert!(!committed_now, "not answered before the record is durable");
    sim.run_until(at(1_100));
    let committed: Vec<_> = sim
        .drain_events()
        .filter_map(|(_, i, e)| match e {
            Event::App(KvEvent::Committed { ticket, key, value }) => {
                Some((i, ticket, key, value.to_json()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        committed,
        vec![(
            1,
            ticket,
            "erlang_users".to_string(),
            json!({"number:counter": 5})
        )]
    );
    for i in 0..3 {
        assert_eq!(
            value(&sim, i, "erlang_users"),
            json!({"number:counter": 5}),
            "node {i}"
        );
    }
}

#[test]
fn the_seed_demo_partition_writes_and_heal_converge() {
    let mut sim = mesh(3, 2);
    sim.partition(&[vec![0, 1], vec![2]]);
    // Long enough for an anti-entropy round to hit the blackhole and break the links
    // across it (frames sent over a link that is still up would be delivered at the heal).
    sim.run_until(at(12_000));
    op(&mut sim, 0, "k", &incr(3)).unwrap();
    op(&mut sim, 1, "k", &incr(7)).unwrap();
    op(&mut sim, 2, "k", &incr(11)).unwrap();
    sim.run_until(at(13_000));
    assert_eq!(value(&sim, 0, "k"), json!({"number:counter": 10}));
    assert_eq!(value(&sim, 2, "k"), json!({"number:counter": 11}));
    sim.heal();
    sim.run_until(at(25_000));
    for i in 0..3 {
        assert_eq!(
            value(&sim, i, "k"),
            json!({"number:counter": 21}),
            "anti-entropy repaired node {i}"
        );
    }
    let repaired: u64 = (0..3)
        .map(|i| sim.node(i).unwrap().protocol().kv.counters().repaired_keys)
        .sum();
    assert!(
        repaired > 0,
        "the missed deltas came back through anti-entropy"
    );
}

#[test]
fn bad_ops_are_refused_whole_and_change_nothing() {
    let mut sim = mesh(2, 3);
    op(&mut sim, 0, "k", &incr(1)).unwrap();
    sim.run_until(at(2_000));
    let before = value(&sim, 0, "k");
    // A valid increment together with a removal of an absent set: the whole op is refused.
    let mixed = r#"{"update":[{"field":"number","type":"counter","op":{"increment":5}},{"remove":{"field":"nope","type":"set"}}]}"#;
    assert!(matches!(op(&mut sim, 0, "k", mixed), Err(KvError::Op(_))));
    assert_eq!(
        value(&sim, 0, "k"),
        before,
        "the valid half was not applied either"
    );
    assert!(matches!(
        op(&mut sim, 0, "", &incr(1)),
        Err(KvError::InvalidKey(_))
    ));
    assert!(matches!(
        op(&mut sim, 0, &"x".repeat(300), &incr(1)),
        Err(KvError::InvalidKey(_))
    ));
}

#[test]
fn an_acknowledged_write_survives_a_kill_and_a_wiped_node_recovers_and_writes() {
    let mut sim = mesh(3, 4);
    op(&mut sim, 0, "a", &incr(2)).unwrap();
    sim.run_until(at(1_100)); // durable and answered
    sim.kill(0);
    sim.start(0);
    assert_eq!(
        value(&sim, 0, "a"),
        json!({"number:counter": 2}),
        "recovered from disk at once"
    );

    sim.wipe(1);
    assert_eq!(value(&sim, 1, "a"), json!({}), "a wiped node starts empty");
    sim.run_until(at(10_000));
    assert_eq!(
        value(&sim, 1, "a"),
        json!({"number:counter": 2}),
        "the wiped node recovered the store"
    );
    op(&mut sim, 1, "a", &incr(10)).unwrap();
    sim.run_until(at(12_000));
    for i in 0..3 {
        assert_eq!(
            value(&sim, i, "a"),
            json!({"number:counter": 12}),
            "its new write counts on node {i}"
        );
    }
}

#[test]
fn busy_when_too_many_ops_await_the_disk() {
    let mut sim = Sim::new(1, SimConfig::new(5), |_, disk: &Snapshot| KvMesh {
        kv: Kv::new(
            KvConfig {
                max_pending: 3,
                ..KvConfig::default()
            },
            disk,
        )
        .unwrap(),
        peers: vec![],
    })
    .unwrap();
    sim.start(0);
    let results: Vec<_> = (0..4)
        .map(|i| op(&mut sim, 0, &format!("k{i}"), &incr(1)).is_ok())
        .collect();
    assert_eq!(results, [true, true, true, false]);
    assert!(matches!(
        op(&mut sim, 0, "k9", &incr(1)),
        Err(KvError::Busy { pending: 3 })
    ));
    sim.run_until(at(10));
    assert!(
        op(&mut sim, 0, "k9", &incr(1)).is_ok(),
        "accepted again once the disk caught up"
    );
    let keys: BTreeMap<_, _> = sim
        .node(0)
        .unwrap()
        .protocol()
        .kv
        .scan("k")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(keys.len(), 4);
    let _: Map = keys["k0"].clone();
}
