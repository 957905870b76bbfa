//! CRDT throughput per type: `apply` (one op on a replica, returning its delta), merging
//! one op's delta into a replica (what the KV does for every disseminated change), and
//! merging a whole concurrent replica (what anti-entropy does for a differing key).
//!
//! Every type starts from a shared history written by three actors; replicas A and B then
//! make a few concurrent ops each. `apply` runs in steady state (the state does not grow:
//! re-adds, increments, assignments, flag flips), so each iteration costs the same. Merges
//! run on a fresh clone of replica A each iteration (the clone is not timed).
//!
//! `cargo bench -p hawser-core --bench crdt` (short warm-up and measurement, 50 samples and
//! no plots built in: about 30 s).

use std::hint::black_box;
use std::num::NonZeroU64;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hawser_core::NodeId;
use hawser_core::crdt::{
    Actor, Causal, CounterOp, Crdt, FieldKey, FieldOp, FieldType, FlagOp, MapOp, RegisterOp, SetOp,
    TypedOp,
};

fn actor(n: u64) -> Actor {
    Actor::new(NodeId(n), 1)
}

fn inc(n: u64) -> CounterOp {
    CounterOp::Increment(NonZeroU64::new(n).expect("non-zero"))
}

fn dec(n: u64) -> CounterOp {
    CounterOp::Decrement(NonZeroU64::new(n).expect("non-zero"))
}

fn assign(value: &str, timestamp: Option<u64>) -> RegisterOp {
    RegisterOp::Assign {
        value: value.to_string(),
        timestamp,
    }
}

fn element(i: usize) -> String {
    format!("element-{i:03}")
}

/// One type's workload.
struct Case<S: Crdt> {
    name: &'static str,
    /// Written round-robin by actors 1, 2 and 3; both replicas start from it.
    history: Vec<S::Op>,
    /// Made by replica A (actor 1) after the history, concurrently with `b`.
    a: Vec<S::Op>,
    /// Made by replica B (actor 2).
    b: Vec<S::Op>,
    /// Timed by `apply`, cycled through; must keep the state's size steady.
    steady: Vec<S::Op>,
}

fn bench_case<S: Crdt>(c: &mut Criterion, case: Case<S>) {
    let mut base = Causal::<S>::new();
    for (i, op) in case.history.iter().enumerate() {
        base.apply(actor(1 + i as u64 % 3), op).expect("history op");
    }
    let mut a = base.clone();
    for op in &case.a {
        a.apply(actor(1), op).expect("op of A");
    }
    let mut b = base.clone();
    let mut delta = None;
    for op in &case.b {
        delta = Some(b.apply(actor(2), op).expect("op of B"));
    }
    let delta = delta.expect("B makes at least one op");

    let mut g = c.benchmark_group(case.name);
    g.throughput(Throughput::Elements(1));

    let mut state = a.clone();
    let mut i = 0;
    g.bench_function("apply", |bench| {
        bench.iter(|| {
            let op = &case.steady[i % case.steady.len()];
            i += 1;
            state.apply(actor(1), black_box(op)).expect("steady op")
        })
    });
    g.bench_function("merge_delta", |bench| {
        bench.iter_batched_ref(
            || a.clone(),
            |x| x.merge(black_box(&delta)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("merge_state", |bench| {
        bench.iter_batched_ref(
            || a.clone(),
            |x| x.merge(black_box(&b)),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // The merges did what they should: both orders give the same replica.
    let (mut ab, mut ba) = (a.clone(), b.clone());
    ab.merge(&b);
    ba.merge(&a);
    assert_eq!(ab, ba, "{}: merge is commutative", case.name);
}

fn orswot() -> Case<hawser_core::crdt::OrswotStore> {
    Case {
        name: "orswot_100",
        history: (0..100).map(|i| SetOp::Add(element(i))).collect(),
        a: (0..5)
            .map(|i| SetOp::Add(format!("a-{i}")))
            .chain((0..5).map(|i| SetOp::Remove(element(i))))
            .collect(),
        b: (0..5)
            .map(|i| SetOp::Add(format!("b-{i}")))
            .chain((10..15).map(|i| SetOp::Remove(element(i))))
            .collect(),
        // Re-adds of elements A still holds: a new dot replaces the old one.
        steady: (20..100).map(|i| SetOp::Add(element(i))).collect(),
    }
}

fn counter() -> Case<hawser_core::crdt::CounterStore> {
    Case {
        name: "counter",
        history: (1..=30).map(inc).collect(),
        a: (1..=5).map(inc).collect(),
        b: (1..=5).map(dec).collect(),
        steady: vec![inc(1)],
    }
}

fn register() -> Case<hawser_core::crdt::RegisterStore> {
    Case {
        name: "lww_register",
        history: (1..=10)
            .map(|t| assign(&format!("value-{t}"), Some(t)))
            .collect(),
        a: vec![assign("from-a", None)],
        b: vec![assign("from-b", None)],
        steady: vec![assign("steady", None)],
    }
}

fn flag() -> Case<hawser_core::crdt::FlagStore<false>> {
    Case {
        name: "ew_flag",
        history: vec![FlagOp::Enable, FlagOp::Enable, FlagOp::Disable],
        a: vec![FlagOp::Disable],
        b: vec![FlagOp::Enable],
        steady: vec![FlagOp::Enable, FlagOp::Disable],
    }
}

fn update(name: &str, op: TypedOp) -> FieldOp {
    FieldOp::Update {
        name: name.to_string(),
        op,
    }
}

/// `op` applied `depth` maps further down (field `child` of type map at each level).
fn nest(depth: usize, mut op: MapOp) -> MapOp {
    for _ in 0..depth {
        op = MapOp::Update(vec![update("child", TypedOp::Map(op))]);
    }
    op
}

/// A map of four fields: counter `n`, set `s` (10 elements), register `r`, flag `f`,
/// `depth` maps below the top.
fn map(name: &'static str, depth: usize) -> Case<hawser_core::crdt::MapStore> {
    let at = |fields: Vec<FieldOp>| nest(depth, MapOp::Update(fields));
    Case {
        name,
        history: vec![
            at(vec![
                update("n", TypedOp::Counter(inc(1))),
                update(
                    "s",
                    TypedOp::Set(SetOp::AddAll((0..10).map(element).collect())),
                ),
                update("r", TypedOp::Register(assign("first", Some(1)))),
                update("f", TypedOp::Flag(FlagOp::Enable)),
            ]),
            at(vec![update("n", TypedOp::Counter(inc(2)))]),
            at(vec![
                update("n", TypedOp::Counter(inc(3))),
                update("r", TypedOp::Register(assign("third", None))),
            ]),
        ],
        a: vec![at(vec![
            update("n", TypedOp::Counter(inc(4))),
            update("s", TypedOp::Set(SetOp::Add("from-a".into()))),
        ])],
        b: vec![at(vec![
            update("r", TypedOp::Register(assign("from-b", None))),
            FieldOp::Remove(FieldKey::new("f", FieldType::Flag)),
        ])],
        steady: vec![at(vec![update("n", TypedOp::Counter(inc(1)))])],
    }
}

fn bench(c: &mut Criterion) {
    bench_case(c, orswot());
    bench_case(c, counter());
    bench_case(c, register());
    bench_case(c, flag());
    bench_case(c, map("map_4_fields", 0));
    bench_case(c, map("map_nested_3_deep", 3));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50)
        .nresamples(20_000)
        .without_plots();
    targets = bench
}
criterion_main!(benches);
