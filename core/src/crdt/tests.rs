//! Semantics (examples) and laws (proptest) for every CRDT in this module.

use std::collections::BTreeSet;
use std::num::NonZeroU64;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::id::NodeId;

fn actor(n: u64) -> Actor {
    Actor::new(NodeId(n), 0)
}

fn amount(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).expect("test amounts are non-zero")
}

fn op(text: &str) -> MapOp {
    match MapOp::from_json_str(text) {
        Ok(op) => op,
        Err(e) => panic!("test op {text} does not parse: {e}"),
    }
}

fn merged<S: DotStore>(a: &Causal<S>, b: &Causal<S>) -> Causal<S> {
    let mut m = a.clone();
    m.merge(b);
    m
}

// ---------------------------------------------------------------------------------------
// Examples: the behaviours the KV and its scenarios rely on.
// ---------------------------------------------------------------------------------------

/// A key's delete (`MapOp::clear`) is observed removal: what the deleter had seen is
/// gone everywhere, an update it had not seen survives (holding only that update), and a
/// late copy of the deleted value does not bring it back.
#[test]
fn a_delete_removes_what_it_saw_and_a_concurrent_update_survives() {
    let (a, b) = (actor(1), actor(2));
    let mut ra = Map::new();
    ra.apply(
        a,
        &op(
            r#"{"update":[{"field":"n","type":"counter","op":{"increment":5}},
                          {"field":"s","type":"set","op":{"add":"x"}}]}"#,
        ),
    )
    .unwrap();
    let mut rb = ra.clone();
    let old = ra.clone();
    let clear = MapOp::clear(ra.store()).expect("two fields to remove");
    ra.apply(a, &clear).unwrap();
    assert!(ra.is_bottom(), "deleted: no field left");
    assert_eq!(ra.to_json(), json!({}));
    assert_eq!(MapOp::clear(ra.store()), None, "nothing left to delete");
    // Meanwhile b, which has not seen the delete, increments.
    rb.apply(
        b,
        &op(r#"{"update":[{"field":"n","type":"counter","op":{"increment":2}}]}"#),
    )
    .unwrap();
    let ab = merged(&ra, &rb);
    assert_eq!(ab, merged(&rb, &ra));
    assert_eq!(
        ab.to_json(),
        json!({"n:counter": 2}),
        "only the unseen update survives"
    );
    // A late copy of the value as it was before the delete changes nothing.
    assert_eq!(merged(&ra, &old), ra);
    assert!(merged(&ra, &old).is_bottom());
}

/// The seed talk's demo, at the CRDT level: 5 everywhere, then 3, 7 and 11 while split,
/// then 26 everywhere.
#[test]
fn seed_demo_counter_converges_to_26() {
    let (n0, n1, n2) = (actor(0), actor(1), actor(2));
    let incr = |n: u64| {
        op(&format!(
            r#"{{"update":[{{"field":"number","type":"counter","op":{{"increment":{n}}}}}]}}"#
        ))
    };
    let mut r1 = Map::new();
    let d = r1.apply(n1, &incr(5)).unwrap();
    let mut r0 = Map::new();
    let mut r2 = Map::new();
    r0.merge(&d);
    r2.merge(&d);
    for r in [&r0, &r1, &r2] {
        assert_eq!(r.to_json(), json!({"number:counter": 5}));
    }
    let d0 = r0.apply(n0, &incr(3)).unwrap();
    let d1 = r1.apply(n1, &incr(7)).unwrap();
    let d2 = r2.apply(n2, &incr(11)).unwrap();
    assert_eq!(r0.to_json(), json!({"number:counter": 8}));
    assert_eq!(r1.to_json(), json!({"number:counter": 12}));
    assert_eq!(r2.to_json(), json!({"number:counter": 16}));
    for d in [&d0, &d1, &d2] {
        r0.merge(d);
        r1.merge(d);
        r2.merge(d);
    }
    for r in [&r0, &r1, &r2] {
        assert_eq!(r.to_json(), json!({"number:counter": 26}));
    }
    assert_eq!(r0, r1);
    assert_eq!(r1, r2);
}

#[test]
fn set_add_wins_over_concurrent_remove() {
    let (a, b) = (actor(1), actor(2));
    let mut x = Orswot::new();
    x.apply(a, &SetOp::Add("e".into())).unwrap();
    let mut y = x.clone();
    x.apply(a, &SetOp::Remove("e".into())).unwrap();
    y.apply(b, &SetOp::Add("e".into())).unwrap();
    let m = merged(&x, &y);
    assert!(m.store().contains("e"));
    assert_eq!(m, merged(&y, &x));
    // A remove that saw both adds wins.
    let mut z = m.clone();
    z.apply(a, &SetOp::Remove("e".into())).unwrap();
    assert!(!merged(&z, &y).store().contains("e"));
}

#[test]
fn removing_an_absent_element_rejects_the_whole_op() {
    let mut m = Map::new();
    m.apply(
        actor(1),
        &op(r#"{"update":[{"field":"s","type":"set","op":{"add":"a"}}]}"#),
    )
    .unwrap();
    let before = m.clone();
    let bad = op(r#"{"update":[
        {"field":"n","type":"counter","op":{"increment":5}},
        {"field":"s","type":"set","op":{"add":"b"}},
        {"field":"s","type":"set","op":{"remove":"zzz"}}]}"#);
    let err = m.apply(actor(1), &bad).unwrap_err();
    assert_eq!(
        err,
        Error::Precondition(Precondition::NotPresent(Absent {
            path: vec![FieldKey::new("s", FieldType::Set)],
            element: Some("zzz".into()),
        }))
    );
    assert_eq!(
        m, before,
        "a rejected op must leave no trace, not even its dot"
    );
    assert_eq!(
        err.to_string(),
        "precondition failed: element \"zzz\" is not in set s:set"
    );
}

#[test]
fn removing_an_absent_field_is_not_present_with_its_path() {
    let mut m = Map::new();
    m.apply(actor(1), &op(r#"{"update":[{"field":"m","type":"map","op":{"update":[{"field":"c","type":"counter","op":{"increment":1}}]}}]}"#))
        .unwrap();
    let before = m.clone();
    let err = m
        .apply(actor(1), &op(r#"{"update":[{"field":"m","type":"map","op":{"update":[{"remove":{"field":"c","type":"set"}}]}}]}"#))
        .unwrap_err();
    assert_eq!(
        err,
        Error::Precondition(Precondition::NotPresent(Absent {
            path: vec![
                FieldKey::new("m", FieldType::Map),
                FieldKey::new("c", FieldType::Set)
            ],
            element: None,
        }))
    );
    assert_eq!(m, before);
    // The same name with the right type is a different field, and is there.
    m.apply(actor(1), &op(r#"{"update":[{"field":"m","type":"map","op":{"update":[{"remove":{"field":"c","type":"counter"}}]}}]}"#))
        .unwrap();
    assert_eq!(m.to_json(), json!({"m:map": {}}));
}

/// Reset-remove: after a field removal races an update, the field holds only what the
/// remover had not seen.
#[test]
fn field_removal_keeps_only_unseen_concurrent_writes() {
    let (a, b) = (actor(1), actor(2));
    let mut x = Map::new();
    x.apply(
        a,
        &op(
            r#"{"update":[{"field":"s","type":"set","op":{"add_all":["a","b"]}},
                                 {"field":"m","type":"map","op":{"update":[
                                     {"field":"r","type":"register","op":{"assign":"old"}},
                                     {"field":"t","type":"set","op":{"add":"kept?"}}]}}]}"#,
        ),
    )
    .unwrap();
    let mut y = x.clone();
    x.apply(a, &op(r#"{"update":[{"remove":{"field":"s","type":"set"}},{"remove":{"field":"m","type":"map"}}]}"#))
        .unwrap();
    y.apply(
        b,
        &op(r#"{"update":[{"field":"s","type":"set","op":{"add":"c"}},
                                 {"field":"m","type":"map","op":{"update":[
                                     {"field":"t","type":"set","op":{"add":"new"}}]}}]}"#),
    )
    .unwrap();
    let m = merged(&x, &y);
    assert_eq!(m, merged(&y, &x));
    assert_eq!(
        m.to_json(),
        json!({"s:set": ["c"], "m:map": {"t:set": ["new"]}})
    );
}

/// The documented granularity of counter reset-remove (riak_dt's embedded counter): the
/// concurrently updating actor's running total survives, other actors' seen ones do not.
#[test]
fn counter_reset_remove_is_per_actor() {
    let (a, b) = (actor(1), actor(2));
    let inc = |n: u64| {
        MapOp::Update(vec![FieldOp::Update {
            name: "n".into(),
            op: TypedOp::Counter(CounterOp::Increment(amount(n))),
        }])
    };
    let mut x = Map::new();
    x.apply(a, &inc(5)).unwrap();
    x.apply(b, &inc(3)).unwrap();
    let mut y = x.clone();
    x.apply(
        a,
        &op(r#"{"update":[{"remove":{"field":"n","type":"counter"}}]}"#),
    )
    .unwrap();
    y.apply(b, &inc(2)).unwrap();
    let m = merged(&x, &y);
    assert_eq!(m.to_json(), json!({"n:counter": 5}));
    // After the removal is seen, counting restarts from zero, and the old totals never
    // come back through a replica that missed the removal.
    let mut z = m.clone();
    z.apply(
        a,
        &op(r#"{"update":[{"remove":{"field":"n","type":"counter"}}]}"#),
    )
    .unwrap();
    z.apply(a, &inc(1)).unwrap();
    let stale = y.clone();
    assert_eq!(merged(&z, &stale).to_json(), json!({"n:counter": 1}));
}

#[test]
fn an_emptied_set_field_stays_until_removed() {
    let mut m = Map::new();
    m.apply(
        actor(1),
        &op(r#"{"update":[{"field":"s","type":"set","op":{"add":"a"}}]}"#),
    )
    .unwrap();
    m.apply(
        actor(1),
        &op(r#"{"update":[{"field":"s","type":"set","op":{"remove":"a"}}]}"#),
    )
    .unwrap();
    assert_eq!(m.to_json(), json!({"s:set": []}));
    m.apply(
        actor(1),
        &op(r#"{"update":[{"remove":{"field":"s","type":"set"}}]}"#),
    )
    .unwrap();
    assert_eq!(m.to_json(), json!({}));
}

/// A removal delivered before the write it removes: the removal waits in the context and
/// the write is dropped on arrival (riak_dt's deferred-remove path, which must not crash).
#[test]
fn removal_delivered_before_its_write_is_deferred() {
    let a = actor(1);
    let mut origin = Map::new();
    let add = origin
        .apply(a, &op(r#"{"update":[{"field":"m","type":"map","op":{"update":[{"field":"s","type":"set","op":{"add_all":["x","y"]}}]}}]}"#))
        .unwrap();
    let remove_x = origin
        .apply(a, &op(r#"{"update":[{"field":"m","type":"map","op":{"update":[{"field":"s","type":"set","op":{"remove":"x"}}]}}]}"#))
        .unwrap();
    let remove_m = origin
        .apply(
            a,
            &op(r#"{"update":[{"remove":{"field":"m","type":"map"}}]}"#),
        )
        .unwrap();
    let mut far = Map::new();
    far.merge(&remove_m);
    far.merge(&remove_x);
    assert_eq!(far.to_json(), json!({}));
    far.merge(&add);
    assert_eq!(far, origin);

    // With a gap in what has arrived, the removal's dots wait in the cloud.
    let mut set = Orswot::new();
    let add_x = set.apply(a, &SetOp::Add("x".into())).unwrap();
    let add_y = set.apply(a, &SetOp::Add("y".into())).unwrap();
    let del_x = set.apply(a, &SetOp::Remove("x".into())).unwrap();
    let mut far = Orswot::new();
    far.merge(&del_x);
    assert!(!far.context().cloud().is_empty(), "the removal is parked");
    far.merge(&add_x);
    assert!(!far.store().contains("x"));
    far.merge(&add_y);
    assert_eq!(far, set);
    assert!(
        far.context().cloud().is_empty(),
        "and folded away once delivery caught up"
    );

    let mut partial = Map::new();
    partial.merge(&remove_x);
    partial.merge(&add);
    assert_eq!(partial.to_json(), json!({"m:map": {"s:set": ["y"]}}));
}

#[test]
fn register_ties_break_the_same_way_locally_and_after_merge() {
    let (a, b) = (actor(1), actor(2));
    let assign = |v: &str, t: Option<u64>| RegisterOp::Assign {
        value: v.into(),
        timestamp: t,
    };
    let mut x = LwwRegister::new();
    let mut y = LwwRegister::new();
    x.apply(a, &assign("apple", Some(5))).unwrap();
    y.apply(b, &assign("banana", Some(5))).unwrap();
    assert_eq!(merged(&x, &y).value().as_deref(), Some("banana"));
    assert_eq!(merged(&y, &x).value().as_deref(), Some("banana"));
    // Locally: assigning the smaller value at the same timestamp keeps the larger.
    y.apply(b, &assign("apple", Some(5))).unwrap();
    assert_eq!(y.value().as_deref(), Some("banana"));
    // An older timestamp never wins; no timestamp means "after what I have seen".
    y.apply(b, &assign("cherry", Some(4))).unwrap();
    assert_eq!(y.value().as_deref(), Some("banana"));
    y.apply(b, &assign("aardvark", None)).unwrap();
    assert_eq!(y.value().as_deref(), Some("aardvark"));
    assert_eq!(y.to_json(), json!("aardvark"));
    assert_eq!(LwwRegister::new().to_json(), serde_json::Value::Null);
}

#[test]
fn flags_resolve_concurrent_enable_and_disable_by_policy() {
    let (a, b) = (actor(1), actor(2));
    let mut ew = EwFlag::new();
    ew.apply(a, &FlagOp::Enable).unwrap();
    let mut ew2 = ew.clone();
    ew.apply(a, &FlagOp::Disable).unwrap();
    ew2.apply(b, &FlagOp::Enable).unwrap();
    assert!(!ew.value());
    assert!(merged(&ew, &ew2).value(), "enable wins");

    let mut dw = DwFlag::new();
    assert!(!dw.value());
    dw.apply(a, &FlagOp::Enable).unwrap();
    assert!(dw.value());
    let mut dw2 = dw.clone();
    dw.apply(a, &FlagOp::Disable).unwrap();
    dw2.apply(b, &FlagOp::Enable).unwrap();
    assert!(!merged(&dw, &dw2).value(), "disable wins");
    let mut later = merged(&dw, &dw2);
    later.apply(b, &FlagOp::Enable).unwrap();
    assert!(later.value(), "an enable that saw the disable wins");
}

/// A node that lost its disk comes back as a new incarnation; its new writes must not be
/// mistaken for ones already seen.
#[test]
fn a_wiped_node_with_a_new_incarnation_is_not_ignored() {
    let before_wipe = Actor::new(NodeId(7), 0);
    let after_wipe = Actor::new(NodeId(7), 1);
    let incr = op(r#"{"update":[{"field":"n","type":"counter","op":{"increment":1}}]}"#);
    let mut survivor = Map::new();
    let mut wiped = Map::new();
    survivor.merge(&wiped.apply(before_wipe, &incr).unwrap());
    // Same actor after a wipe: dot 1 again, which the survivor has already seen, so one of
    // the two writes is lost (the Lashup bug).
    let mut reused = Map::new();
    let stale = reused
        .apply(
            before_wipe,
            &op(r#"{"update":[{"field":"n","type":"counter","op":{"increment":40}}]}"#),
        )
        .unwrap();
    assert_ne!(
        merged(&survivor, &stale).to_json(),
        json!({"n:counter": 41})
    );
    // New incarnation: counted.
    let mut fresh = Map::new();
    let d = fresh
        .apply(
            after_wipe,
            &op(r#"{"update":[{"field":"n","type":"counter","op":{"increment":40}}]}"#),
        )
        .unwrap();
    assert_eq!(merged(&survivor, &d).to_json(), json!({"n:counter": 41}));
}

/// All field updates of one op share one dot: the delta names exactly one new dot, and a
/// later removal of one of the fields leaves the others alone.
#[test]
fn one_op_one_dot() {
    let a = actor(1);
    let mut m = Map::new();
    let d = m
        .apply(a, &op(r#"{"update":[{"field":"n","type":"counter","op":{"increment":1}},
                                    {"field":"f","type":"flag","op":"enable"},
                                    {"field":"m","type":"map","op":{"update":[{"field":"s","type":"set","op":{"add":"x"}}]}}]}"#))
        .unwrap();
    assert_eq!(d.context().version_vector().get(&a), Some(&1));
    assert!(d.context().cloud().is_empty());
    assert_eq!(d, m, "the first op's delta is the whole state");
    let mut other = Map::new();
    other.merge(&d);
    other
        .apply(
            actor(2),
            &op(r#"{"update":[{"remove":{"field":"n","type":"counter"}}]}"#),
        )
        .unwrap();
    m.merge(&other);
    assert_eq!(
        m.to_json(),
        json!({"f:flag": true, "m:map": {"s:set": ["x"]}})
    );
}

#[test]
fn the_issue_example_parses_and_applies() {
    let parsed = op(
        r#"{"update":[{"field":"n","type":"counter","op":{"increment":5}},{"remove":{"field":"s","type":"set"}}]}"#,
    );
    assert_eq!(
        parsed,
        MapOp::Update(vec![
            FieldOp::Update {
                name: "n".into(),
                op: TypedOp::Counter(CounterOp::Increment(amount(5))),
            },
            FieldOp::Remove(FieldKey::new("s", FieldType::Set)),
        ])
    );
    let mut m = Map::new();
    assert!(matches!(
        m.apply(actor(1), &parsed),
        Err(Error::Precondition(Precondition::NotPresent(_)))
    ));
    m.apply(
        actor(1),
        &op(r#"{"update":[{"field":"s","type":"set","op":{"add":"x"}}]}"#),
    )
    .unwrap();
    m.apply(actor(1), &parsed).unwrap();
    assert_eq!(m.to_json(), json!({"n:counter": 5}));
}

#[test]
fn canonical_json_of_every_type_nested() {
    let mut m = Map::new();
    m.apply(
        actor(1),
        &op(r#"{"update":[
        {"field":"z","type":"counter","op":{"decrement":2}},
        {"field":"s","type":"set","op":{"add_all":["b","a","c"]}},
        {"field":"r","type":"register","op":{"assign":"v"}},
        {"field":"f","type":"flag","op":"disable"},
        {"field":"a:b","type":"map","op":{"update":[
            {"field":"m","type":"map","op":{"update":[
                {"field":"m","type":"map","op":{"update":[
                    {"field":"n","type":"counter","op":{"increment":9}}]}}]}}]}}]}"#),
    )
    .unwrap();
    let expected = json!({
        "a:b:map": {"m:map": {"m:map": {"n:counter": 9}}},
        "f:flag": false,
        "r:register": "v",
        "s:set": ["a", "b", "c"],
        "z:counter": -2,
    });
    assert_eq!(m.to_json(), expected);
    let text = serde_json::to_string(&m.to_json()).unwrap();
    assert!(text.starts_with(r#"{"a:b:map""#), "keys in order: {text}");
}

#[test]
fn states_roundtrip_through_bincode() {
    let mut m = Map::new();
    m.apply(actor(1), &op(r#"{"update":[{"field":"s","type":"set","op":{"add":"a"}},{"field":"m","type":"map","op":{"update":[{"field":"r","type":"register","op":{"assign":"v","timestamp":3}}]}}]}"#))
        .unwrap();
    let mut far = Map::new();
    far.merge(
        &m.apply(
            actor(2),
            &op(r#"{"update":[{"field":"c","type":"counter","op":{"increment":2}}]}"#),
        )
        .unwrap(),
    );
    for state in [&m, &far] {
        let cfg = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(state, cfg).unwrap();
        let (back, _): (Map, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(&back, state);
    }
}

#[test]
fn malformed_ops_are_typed_errors() {
    use ParseErrorKind as K;
    let cases: &[(&str, &str, ParseErrorKind)] = &[
        ("{", "", K::Syntax(String::new())),
        ("[]", "", K::Expected("a map op {\"update\": [...]}")),
        (r#"{"update":[]}"#, "/update", K::Empty),
        (r#"{"update":[],"x":1}"#, "", K::UnknownKey("x".into())),
        (
            r#"{"update":[{"field":"n","type":"counter","op":{"increment":0}}]}"#,
            "/update/0/op/increment",
            K::BadAmount,
        ),
        (
            r#"{"update":[{"field":"n","type":"counter","op":{"increment":-3}}]}"#,
            "/update/0/op/increment",
            K::BadAmount,
        ),
        (
            r#"{"update":[{"field":"n","type":"counter","op":{"increment":1.5}}]}"#,
            "/update/0/op/increment",
            K::BadAmount,
        ),
        (
            r#"{"update":[{"field":"n","type":"counter","op":{"add":"x"}}]}"#,
            "/update/0/op",
            K::WrongOpForType {
                kind: FieldType::Counter,
                op: "add".into(),
            },
        ),
        (
            r#"{"update":[{"field":"n","type":"set","op":{"increment":1}}]}"#,
            "/update/0/op",
            K::WrongOpForType {
                kind: FieldType::Set,
                op: "increment".into(),
            },
        ),
        (
            r#"{"update":[{"field":"n","type":"flag","op":"toggle"}]}"#,
            "/update/0/op",
            K::WrongOpForType {
                kind: FieldType::Flag,
                op: "toggle".into(),
            },
        ),
        (
            r#"{"update":[{"field":"n","type":"register","op":{"set":"v"}}]}"#,
            "/update/0/op",
            K::WrongOpForType {
                kind: FieldType::Register,
                op: "set".into(),
            },
        ),
        (
            r#"{"update":[{"field":"n","type":"register","op":{"assign":"v","timestamp":-1}}]}"#,
            "/update/0/op/timestamp",
            K::BadTimestamp,
        ),
        (
            r#"{"update":[{"field":"n","type":"register","op":{"assign":7}}]}"#,
            "/update/0/op/assign",
            K::Expected("a string"),
        ),
        (
            r#"{"update":[{"field":"n","type":"gauge","op":1}]}"#,
            "/update/0/type",
            K::UnknownType("gauge".into()),
        ),
        (
            r#"{"update":[{"field":"n","type":"set"}]}"#,
            "/update/0",
            K::MissingKey("op"),
        ),
        (
            r#"{"update":[{"field":5,"type":"set","op":{"add":"x"}}]}"#,
            "/update/0/field",
            K::Expected("a string"),
        ),
        (
            r#"{"update":[{"remove":{"field":"n","type":"set"},"field":"x"}]}"#,
            "/update/0",
            K::UnknownKey("field".into()),
        ),
        (
            r#"{"update":[{"field":"s","type":"set","op":{"add_all":["a",1]}}]}"#,
            "/update/0/op/add_all/1",
            K::Expected("a string"),
        ),
        (
            r#"{"update":[{"field":"s","type":"set","op":{"remove_all":[]}}]}"#,
            "/update/0/op/remove_all",
            K::Empty,
        ),
        (
            r#"{"update":[{"field":"s","type":"set","op":{"add":"a","remove":"b"}}]}"#,
            "/update/0/op",
            K::Expected("a set op {\"add\" | \"add_all\" | \"remove\" | \"remove_all\": ...}"),
        ),
        (
            r#"{"update":[{"field":"m","type":"map","op":{"update":[{"field":"a/b","type":"map","op":{"update":{}}}]}}]}"#,
            "/update/0/op/update/0/op/update",
            K::Expected("an array of field ops"),
        ),
    ];
    for (text, at, kind) in cases {
        let err = MapOp::from_json_str(text).unwrap_err();
        match (kind, &err.kind) {
            (K::Syntax(_), K::Syntax(_)) => {}
            _ => assert_eq!(&err.kind, kind, "for {text}"),
        }
        assert_eq!(err.at, *at, "for {text}");
        assert!(!err.to_string().is_empty());
    }
}

fn nested(depth: usize) -> MapOp {
    let mut op = MapOp::Update(vec![FieldOp::Update {
        name: "n".into(),
        op: TypedOp::Flag(FlagOp::Enable),
    }]);
    for _ in 0..depth {
        op = MapOp::Update(vec![FieldOp::Update {
            name: "m".into(),
            op: TypedOp::Map(op),
        }]);
    }
    op
}

#[test]
fn nesting_is_bounded_in_parse_and_apply() {
    let ok = nested(MAX_DEPTH);
    let deep = nested(MAX_DEPTH + 1);
    assert_eq!(MapOp::from_json(&ok.to_json()), Ok(ok.clone()));
    assert_eq!(
        MapOp::from_json(&deep.to_json()).unwrap_err().kind,
        ParseErrorKind::TooDeep
    );
    let mut m = Map::new();
    assert_eq!(m.apply(actor(1), &deep), Err(Error::TooDeep));
    assert!(m.is_empty());
    m.apply(actor(1), &ok).unwrap();
}

/// The encoding of a map whose maps nest `depth` levels (each level one field `m`),
/// written by hand so that no encoder recursion is needed to build a hostile one.
fn nested_map_bytes(depth: usize) -> Vec<u8> {
    let empty = crate::wire::encode(&Map::new());
    // An empty store is five empty collections; the context follows it.
    let (store, context) = empty.split_at(5);
    assert_eq!(store, [0; 5]);
    let mut bytes = Vec::new();
    for _ in 0..depth {
        // counters, sets, registers, flags: empty; maps: one entry "m" -> Field {
        // dots: empty, store: the next level }.
        bytes.extend_from_slice(&[0, 0, 0, 0, 1, 1, b'm', 0]);
    }
    bytes.extend_from_slice(store);
    bytes.extend_from_slice(context);
    bytes
}

/// A peer's delta or anti-entropy value is decoded, not parsed from JSON: its nesting is
/// bounded while decoding, so a small, deep value is an error instead of a stack
/// overflow that aborts the process.
#[test]
fn nesting_is_bounded_while_decoding() {
    let ok: Map = crate::wire::decode(&nested_map_bytes(MAX_DEPTH)).unwrap();
    assert_eq!(crate::wire::encode(&ok), nested_map_bytes(MAX_DEPTH));
    let err = crate::wire::decode::<Map>(&nested_map_bytes(MAX_DEPTH + 1)).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
    let hostile = nested_map_bytes(1_000_000);
    assert!(crate::wire::decode::<Map>(&hostile).is_err());
}

#[test]
fn empty_ops_are_refused() {
    let mut m = Map::new();
    assert_eq!(
        m.apply(actor(1), &MapOp::Update(vec![])),
        Err(Error::EmptyOp)
    );
    let mut s = Orswot::new();
    assert_eq!(
        s.apply(actor(1), &SetOp::AddAll(vec![])),
        Err(Error::EmptyOp)
    );
    assert_eq!(
        s.apply(actor(1), &SetOp::RemoveAll(vec![])),
        Err(Error::EmptyOp)
    );
    assert!(m.is_empty() && s.is_empty());
}

#[test]
fn counter_overflow_is_an_error() {
    let mut c = Counter::new();
    c.apply(actor(1), &CounterOp::Increment(amount(u64::MAX)))
        .unwrap();
    let before = c.clone();
    assert_eq!(
        c.apply(actor(1), &CounterOp::Increment(amount(1))),
        Err(Error::Overflow)
    );
    assert_eq!(c, before);
    // Other actors add on top; the value is exact (i128), and so is its JSON.
    c.apply(actor(2), &CounterOp::Increment(amount(u64::MAX)))
        .unwrap();
    assert_eq!(c.value(), 2 * i128::from(u64::MAX));
    assert_eq!(c.to_json(), json!("36893488147419103230"));
}

/// 2^63 added on two nodes is 2^64: one more than JSON's largest 64-bit integer. It used
/// to read 18446744073709551615 everywhere, a value nobody wrote.
#[test]
fn counter_json_is_exact_at_the_edges_of_64_bits() {
    let value = |ops: &[(u64, CounterOp)]| {
        let mut c = Counter::new();
        for (a, op) in ops {
            c.apply(actor(*a), op).unwrap();
        }
        c.to_json()
    };
    let inc = |n: u64| CounterOp::Increment(amount(n));
    let dec = |n: u64| CounterOp::Decrement(amount(n));
    assert_eq!(
        value(&[(1, inc(1 << 63)), (2, inc(1 << 63))]),
        json!("18446744073709551616")
    );
    assert_eq!(
        value(&[(1, inc(u64::MAX - 1)), (2, inc(1))]),
        json!(u64::MAX)
    );
    assert_eq!(value(&[(1, dec(1 << 63))]), json!(i64::MIN));
    assert_eq!(
        value(&[(1, dec(1 << 63)), (2, dec(1))]),
        json!("-9223372036854775809")
    );
}

// ---------------------------------------------------------------------------------------
// Laws, by proptest: random interleavings of ops at four replicas (three nodes, one of
// them also in a second incarnation) and full-state syncs between them.
// ---------------------------------------------------------------------------------------

const ACTORS: [Actor; 4] = [
    Actor {
        node: NodeId(1),
        incarnation: 0,
    },
    Actor {
        node: NodeId(2),
        incarnation: 0,
    },
    Actor {
        node: NodeId(3),
        incarnation: 0,
    },
    Actor {
        node: NodeId(1),
        incarnation: 1,
    },
];

#[derive(Clone, Debug)]
enum Step<O> {
    Op(usize, O),
    Sync { from: usize, to: usize },
}

fn steps<O: Clone + std::fmt::Debug>(
    op: impl Strategy<Value = O> + Clone,
    max: usize,
) -> impl Strategy<Value = Vec<Step<O>>> {
    let n = ACTORS.len();
    let step = prop_oneof![
        3 => (0..n, op).prop_map(|(r, o)| Step::Op(r, o)),
        1 => (0..n, 0..n).prop_map(|(from, to)| Step::Sync { from, to }),
    ];
    prop::collection::vec(step, 1..max)
}

struct Run<S> {
    replicas: Vec<Causal<S>>,
    deltas: Vec<Causal<S>>,
    rejected: usize,
}

/// Play the steps, checking at every op that a rejected op changes nothing and that its
/// delta is as good as the whole new state: `before ⊔ δ == after`, and for another
/// replica `t`, `(t ⊔ before) ⊔ δ == t ⊔ after`.
fn play<S: Crdt>(steps: &[Step<S::Op>]) -> Result<Run<S>, TestCaseError> {
    let mut run = Run {
        replicas: vec![Causal::<S>::new(); ACTORS.len()],
        deltas: Vec::new(),
        rejected: 0,
    };
    for step in steps {
        match step {
            Step::Op(r, op) => {
                let before = run.replicas[*r].clone();
                match run.replicas[*r].apply(ACTORS[*r], op) {
                    Ok(delta) => {
                        let after = &run.replicas[*r];
                        prop_assert_eq!(&merged(&before, &delta), after);
                        let t = &run.replicas[(r + 1) % ACTORS.len()];
                        prop_assert_eq!(merged(&merged(t, &before), &delta), merged(t, after));
                        run.deltas.push(delta);
                    }
                    Err(_) => {
                        prop_assert_eq!(&before, &run.replicas[*r]);
                        run.rejected += 1;
                    }
                }
            }
            Step::Sync { from, to } => {
                let src = run.replicas[*from].clone();
                run.replicas[*to].merge(&src);
            }
        }
    }
    Ok(run)
}

/// A deterministic shuffle (xorshift) so a proptest seed fixes a delivery order.
fn shuffled<T: Clone>(items: &[T], mut seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    seed |= 1;
    for i in (1..out.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    out
}

/// Merge is commutative, associative and idempotent over replicas and deltas; replicas
/// that exchange states converge; every delta delivered in any order, some twice, gives
/// the join of all replicas.
fn check_laws<S: Crdt>(run: &Run<S>, seed: u64) -> Result<(), TestCaseError> {
    let mut pool: Vec<Causal<S>> = run.replicas.clone();
    pool.extend(run.deltas.iter().cloned());
    pool.push(Causal::new());
    let pick = shuffled(&pool, seed);
    let (a, b, c) = (&pick[0], &pick[1 % pick.len()], &pick[2 % pick.len()]);
    prop_assert_eq!(merged(a, b), merged(b, a), "commutative");
    prop_assert_eq!(
        merged(&merged(a, b), c),
        merged(a, &merged(b, c)),
        "associative"
    );
    prop_assert_eq!(&merged(a, a), a, "idempotent");
    prop_assert_eq!(
        &merged(&merged(a, b), b),
        &merged(a, b),
        "idempotent after merge"
    );

    let mut all = Causal::<S>::new();
    for r in &run.replicas {
        all.merge(r);
    }
    for r in &run.replicas {
        prop_assert_eq!(&merged(r, &all), &all, "every replica is below the join");
    }
    let mut deliveries = shuffled(&run.deltas, seed.rotate_left(17));
    let again = shuffled(&run.deltas, seed.rotate_left(29));
    deliveries.extend(again.into_iter().take(run.deltas.len() / 2));
    let mut via_deltas = Causal::<S>::new();
    for d in &deliveries {
        via_deltas.merge(d);
    }
    prop_assert_eq!(&via_deltas, &all, "deltas in any order give the join");
    prop_assert!(
        via_deltas.context().cloud().is_empty(),
        "all dots delivered, none parked"
    );
    prop_assert_eq!(via_deltas.to_json(), all.to_json());
    Ok(())
}

const ELEMENTS: [&str; 3] = ["a", "b", "c"];
const NAMES: [&str; 2] = ["f", "g"];

fn element() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(&ELEMENTS[..]).prop_map(str::to_owned)
}

fn counter_op() -> impl Strategy<Value = CounterOp> + Clone {
    prop_oneof![
        (1..5u64).prop_map(|n| CounterOp::Increment(amount(n))),
        (1..5u64).prop_map(|n| CounterOp::Decrement(amount(n))),
    ]
}

fn set_op() -> impl Strategy<Value = SetOp> + Clone {
    prop_oneof![
        4 => element().prop_map(SetOp::Add),
        1 => prop::collection::vec(element(), 0..3).prop_map(SetOp::AddAll),
        2 => element().prop_map(SetOp::Remove),
        1 => prop::collection::vec(element(), 0..3).prop_map(SetOp::RemoveAll),
    ]
}

fn register_op() -> impl Strategy<Value = RegisterOp> + Clone {
    (
        prop::sample::select(&["x", "y", "z"][..]),
        prop::option::of(0..4u64),
    )
        .prop_map(|(v, timestamp)| RegisterOp::Assign {
            value: v.to_owned(),
            timestamp,
        })
}

fn flag_op() -> impl Strategy<Value = FlagOp> + Clone {
    prop_oneof![Just(FlagOp::Enable), Just(FlagOp::Disable)]
}

fn field_name() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(&NAMES[..]).prop_map(str::to_owned)
}

/// Map ops whose maps nest up to `depth` levels below the top. Weighted towards updates
/// so that most ops succeed and maps really do nest; removals of absent fields and
/// elements still make a good share of ops fail (and so test rejection).
fn map_op(depth: u32) -> BoxedStrategy<MapOp> {
    let update = |op: BoxedStrategy<TypedOp>| {
        (field_name(), op).prop_map(|(name, op)| FieldOp::Update { name, op })
    };
    let leaf = prop_oneof![
        3 => update(counter_op().prop_map(TypedOp::Counter).boxed()),
        3 => update(set_op().prop_map(TypedOp::Set).boxed()),
        2 => update(register_op().prop_map(TypedOp::Register).boxed()),
        2 => update(flag_op().prop_map(TypedOp::Flag).boxed()),
        1 => (field_name(), prop::sample::select(&FieldType::ALL[..]))
            .prop_map(|(n, k)| FieldOp::Remove(FieldKey::new(n, k))),
    ];
    let field_op = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![
            2 => leaf,
            1 => update(map_op(depth - 1).prop_map(TypedOp::Map).boxed()),
        ]
        .boxed()
    };
    prop::collection::vec(field_op, 1..4)
        .prop_map(MapOp::Update)
        .boxed()
}

fn map_depth(value: &std::collections::BTreeMap<FieldKey, FieldValue>) -> usize {
    value
        .values()
        .map(|v| match v {
            FieldValue::Map(m) => 1 + map_depth(m),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn counter_laws(steps in steps(counter_op(), 40), seed in any::<u64>()) {
        let run = play::<CounterStore>(&steps)?;
        check_laws(&run, seed)?;
        // A counter is the sum of every op, once every replica has seen every op.
        let mut all = Counter::new();
        for d in &run.deltas { all.merge(d); }
        let expected: i128 = steps.iter().map(|s| match s {
            Step::Op(_, CounterOp::Increment(n)) => i128::from(n.get()),
            Step::Op(_, CounterOp::Decrement(n)) => -i128::from(n.get()),
            Step::Sync { .. } => 0,
        }).sum();
        prop_assert_eq!(all.value(), expected);
    }

    #[test]
    fn orswot_laws(steps in steps(set_op(), 40), seed in any::<u64>()) {
        let run = play::<OrswotStore>(&steps)?;
        check_laws(&run, seed)?;
    }

    #[test]
    fn register_laws(steps in steps(register_op(), 40), seed in any::<u64>()) {
        let run = play::<RegisterStore>(&steps)?;
        check_laws(&run, seed)?;
    }

    #[test]
    fn ew_flag_laws(steps in steps(flag_op(), 30), seed in any::<u64>()) {
        let run = play::<FlagStore<false>>(&steps)?;
        check_laws(&run, seed)?;
    }

    #[test]
    fn dw_flag_laws(steps in steps(flag_op(), 30), seed in any::<u64>()) {
        let run = play::<FlagStore<true>>(&steps)?;
        check_laws(&run, seed)?;
    }

    #[test]
    fn map_laws_nested_three_deep(steps in steps(map_op(3), 40), seed in any::<u64>()) {
        let run = play::<MapStore>(&steps)?;
        check_laws(&run, seed)?;
        for r in &run.replicas {
            prop_assert!(map_depth(&r.value()) <= 4);
        }
    }

    /// Adds and enables commute with merge at the level of values, in maps nested up to
    /// three deep and with concurrent field removals around: applying at one replica then
    /// merging reads the same as merging then applying. (Counter increments inside maps do
    /// not commute with a concurrent removal of the counter field: the incrementing actor's
    /// running total survives it, see `counter_reset_remove_is_per_actor`.)
    #[test]
    fn additive_ops_commute_with_merge(
        history in steps(map_op(2), 20),
        extra in prop::collection::vec((field_name(), element()), 1..4),
        enable in field_name(),
    ) {
        let run = play::<MapStore>(&history)?;
        let ops: Vec<FieldOp> = extra.into_iter().flat_map(|(name, e)| {
            [
                FieldOp::Update { name: name.clone(), op: TypedOp::Set(SetOp::Add(e)) },
                FieldOp::Update { name, op: TypedOp::Map(MapOp::Update(vec![FieldOp::Update {
                    name: "inner".into(), op: TypedOp::Set(SetOp::Add("x".into())) }])) },
            ]
        }).chain([FieldOp::Update { name: enable, op: TypedOp::Flag(FlagOp::Enable) }]).collect();
        let op = MapOp::Update(ops);
        let (a, b) = (&run.replicas[0], &run.replicas[1]);
        let mut apply_then_merge = a.clone();
        apply_then_merge.apply(ACTORS[0], &op).unwrap();
        apply_then_merge.merge(b);
        let mut merge_then_apply = merged(a, b);
        merge_then_apply.apply(ACTORS[0], &op).unwrap();
        prop_assert_eq!(apply_then_merge.value(), merge_then_apply.value());
    }

    /// Counter ops commute with merge: a counter reads the sum of everything applied.
    #[test]
    fn counter_ops_commute_with_merge(history in steps(counter_op(), 30), op in counter_op(), r in 0..ACTORS.len()) {
        let run = play::<CounterStore>(&history)?;
        let (a, b) = (&run.replicas[r], &run.replicas[(r + 1) % ACTORS.len()]);
        let mut apply_then_merge = a.clone();
        apply_then_merge.apply(ACTORS[r], &op).unwrap();
        apply_then_merge.merge(b);
        let mut merge_then_apply = merged(a, b);
        merge_then_apply.apply(ACTORS[r], &op).unwrap();
        prop_assert_eq!(apply_then_merge.value(), merge_then_apply.value());
    }

    /// Ops render to JSON and parse back to themselves.
    #[test]
    fn op_json_roundtrips(op in map_op(3)) {
        let text = serde_json::to_string(&op.to_json()).unwrap();
        match MapOp::from_json_str(&text) {
            Ok(back) => prop_assert_eq!(back, op),
            // Only empty lists are refused; they are not ops.
            Err(e) => prop_assert_eq!(e.kind, ParseErrorKind::Empty),
        }
    }

    /// The parser is total: any text or bytes give an op or an error.
    #[test]
    fn parser_never_panics_on_text(text in ".{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = MapOp::from_json_str(&text);
        let _ = MapOp::from_json_slice(&bytes);
    }

    /// ...and any JSON value, including near-misses of valid ops.
    #[test]
    fn parser_never_panics_on_json(value in json_value(), valid in map_op(2), key in "[a-z_]{1,10}", pick in any::<u64>()) {
        let _ = MapOp::from_json(&value);
        // Splice the random value somewhere into a valid op.
        let mut op = valid.to_json();
        splice(&mut op, &key, value, pick);
        let _ = MapOp::from_json(&op);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(
            &[
                "update",
                "field",
                "type",
                "op",
                "remove",
                "counter",
                "set",
                "register",
                "flag",
                "map",
                "enable",
                "disable",
                "increment",
                "add",
                "assign",
            ][..]
        )
        .prop_map(|s| Value::String(s.to_owned())),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(
                    &[
                        "update",
                        "field",
                        "type",
                        "op",
                        "remove",
                        "increment",
                        "add_all",
                        "assign",
                        "timestamp",
                        "x"
                    ][..]
                )
                .prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replace some value inside `target` (chosen by `pick`) with `value`, or insert it under
/// `key` into an object.
fn splice(node: &mut serde_json::Value, key: &str, value: serde_json::Value, pick: u64) {
    use serde_json::Value;
    let descend = !pick.is_multiple_of(3);
    let i = (pick / 3) as usize;
    let child = match node {
        Value::Object(m) if descend && !m.is_empty() => {
            let len = m.len();
            m.values_mut().nth(i % len)
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let len = a.len();
            a.get_mut(i % len)
        }
        _ => None,
    };
    match child {
        Some(child) => splice(child, key, value, pick / 7),
        None => match node {
            Value::Object(m) if pick.is_multiple_of(2) => {
                m.insert(key.to_owned(), value);
            }
            _ => *node = value,
        },
    }
}

#[test]
fn bounded_state_one_counter_entry_per_actor() {
    let mut c = Counter::new();
    for _ in 0..100 {
        c.apply(actor(1), &CounterOp::Increment(amount(1))).unwrap();
        c.apply(actor(2), &CounterOp::Decrement(amount(1))).unwrap();
    }
    assert_eq!(c.store().entries().len(), 2);
    assert_eq!(c.value(), 0);
    let mut s = Orswot::new();
    for _ in 0..100 {
        s.apply(actor(1), &SetOp::Add("a".into())).unwrap();
    }
    let mut dots = BTreeSet::new();
    s.store().collect_dots(&mut dots);
    assert_eq!(dots.len(), 1);
}
