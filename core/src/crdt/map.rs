//! The map: fields named `(name, type)` holding any CRDT of this module, maps included.
//!
//! Semantics are riak_dt's map:
//! - **Fields are keyed by name and type.** `n:counter` and `n:set` are different fields,
//!   so two replicas can never disagree about what a field holds.
//! - **Observed-remove, reset-remove.** Removing a field drops every write inside it that
//!   the remover had seen. A write it had not seen (a concurrent update) survives the merge,
//!   and so does the field, holding only those unseen writes: an update wins over a
//!   concurrent removal but does not resurrect what was removed.
//! - **One dot per op, atomic.** Every field an op touches, at any depth, is tagged with
//!   the op's single dot, so concurrent removals see the op as one event; and the op is
//!   applied to a copy, so if any part fails (e.g. removing an absent element) nothing
//!   changes and the caller gets the error.
//! - **A field exists once updated.** Each field carries the dots of the updates that
//!   touched it, besides its content, so a set emptied by removes stays a field holding
//!   `[]` (as in riak_dt), and disappears only when the field itself is removed.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::counter::{CounterOp, CounterStore, counter_json};
use super::flag::{FlagOp, FlagStore};
use super::orswot::{OrswotStore, SetOp};
use super::register::{RegisterOp, RegisterStore};
use super::store::{Crdt, DotStore, merge_map, restrict_map};
use super::{CausalContext, Dot, Error, MAX_DEPTH};

mod decode;

/// The type half of a field's key. The JSON names are `counter`, `set`, `register`,
/// `flag` (enable-wins) and `map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FieldType {
    Counter,
    Set,
    Register,
    Flag,
    Map,
}

impl FieldType {
    pub const ALL: [FieldType; 5] = [
        FieldType::Counter,
        FieldType::Set,
        FieldType::Register,
        FieldType::Flag,
        FieldType::Map,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Counter => "counter",
            FieldType::Set => "set",
            FieldType::Register => "register",
            FieldType::Flag => "flag",
            FieldType::Map => "map",
        }
    }

    pub fn from_name(s: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field's full key. Displays as `name:type`, the key of the field in the JSON form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FieldKey {
    pub name: String,
    pub kind: FieldType,
}

impl FieldKey {
    pub fn new(name: impl Into<String>, kind: FieldType) -> FieldKey {
        FieldKey {
            name: name.into(),
            kind,
        }
    }
}

impl fmt::Display for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.kind)
    }
}

/// An op on a map: field updates and removals, applied in order, as one atomic op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOp {
    Update(Vec<FieldOp>),
}

impl MapOp {
    /// The op that removes every field of `map` (what a KV key's delete is): observed
    /// removal, so a concurrent update the remover has not seen survives the merge, and
    /// the field it wrote with it, holding only that update. `None` when there is no
    /// field to remove.
    pub fn clear(map: &MapStore) -> Option<MapOp> {
        let removals: Vec<FieldOp> = map.keys().into_iter().map(FieldOp::Remove).collect();
        (!removals.is_empty()).then_some(MapOp::Update(removals))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldOp {
    /// Apply `op` to field `name` of the op's type, creating the field if needed. The type
    /// comes from the op, so an op of the wrong type for a field cannot be expressed.
    Update { name: String, op: TypedOp },
    /// Remove the field; `Precondition(NotPresent)` if there is no such field.
    Remove(FieldKey),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypedOp {
    Counter(CounterOp),
    Set(SetOp),
    Register(RegisterOp),
    Flag(FlagOp),
    Map(MapOp),
}

impl TypedOp {
    pub fn kind(&self) -> FieldType {
        match self {
            TypedOp::Counter(_) => FieldType::Counter,
            TypedOp::Set(_) => FieldType::Set,
            TypedOp::Register(_) => FieldType::Register,
            TypedOp::Flag(_) => FieldType::Flag,
            TypedOp::Map(_) => FieldType::Map,
        }
    }
}

/// A field's value, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    Counter(i128),
    Set(BTreeSet<String>),
    Register(Option<String>),
    Flag(bool),
    Map(BTreeMap<FieldKey, FieldValue>),
}

impl FieldValue {
    /// The canonical JSON form (see the module docs of [`crdt`](super)).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            FieldValue::Counter(n) => counter_json(*n),
            FieldValue::Set(s) => Value::Array(s.iter().cloned().map(Value::String).collect()),
            FieldValue::Register(r) => r.clone().map_or(Value::Null, Value::String),
            FieldValue::Flag(b) => Value::Bool(*b),
            FieldValue::Map(m) => map_json(m.iter().map(|(k, v)| (k, v.to_json()))),
        }
    }
}

/// A JSON object keyed `name:type`, built in key order whatever serde_json's map does.
fn map_json<'a>(
    fields: impl Iterator<Item = (&'a FieldKey, serde_json::Value)>,
) -> serde_json::Value {
    let sorted: BTreeMap<String, serde_json::Value> =
        fields.map(|(k, v)| (k.to_string(), v)).collect();
    serde_json::Value::Object(sorted.into_iter().collect())
}

/// A field's content plus the dots of the updates that touched it (what keeps an emptied
/// field present, see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Field<S> {
    dots: BTreeSet<Dot>,
    store: S,
}

impl<S: DotStore> DotStore for Field<S> {
    fn is_bottom(&self) -> bool {
        self.dots.is_empty() && self.store.is_bottom()
    }

    fn merge(&mut self, other: &Self, ctx: &CausalContext, other_ctx: &CausalContext) {
        self.dots.merge(&other.dots, ctx, other_ctx);
        self.store.merge(&other.store, ctx, other_ctx);
    }

    fn collect_dots(&self, out: &mut BTreeSet<Dot>) {
        out.extend(self.dots.iter().copied());
        self.store.collect_dots(out);
    }

    fn restrict(&self, dots: &BTreeSet<Dot>) -> Self {
        Field {
            dots: self.dots.restrict(dots),
            store: self.store.restrict(dots),
        }
    }
}

/// The map's state. One collection per field type keeps a field's name, type and content
/// consistent by construction, even in state decoded from a peer. Its decoder
/// ([`decode`]) bounds the nesting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MapStore {
    counters: BTreeMap<String, Field<CounterStore>>,
    sets: BTreeMap<String, Field<OrswotStore>>,
    registers: BTreeMap<String, Field<RegisterStore>>,
    flags: BTreeMap<String, Field<FlagStore<false>>>,
    maps: BTreeMap<String, Field<MapStore>>,
}

impl MapStore {
    pub fn counter(&self, name: &str) -> Option<&CounterStore> {
        self.counters.get(name).map(|f| &f.store)
    }

    pub fn set(&self, name: &str) -> Option<&OrswotStore> {
        self.sets.get(name).map(|f| &f.store)
    }

    pub fn register(&self, name: &str) -> Option<&RegisterStore> {
        self.registers.get(name).map(|f| &f.store)
    }

    pub fn flag(&self, name: &str) -> Option<&FlagStore<false>> {
        self.flags.get(name).map(|f| &f.store)
    }

    pub fn map(&self, name: &str) -> Option<&MapStore> {
        self.maps.get(name).map(|f| &f.store)
    }

    pub fn contains(&self, key: &FieldKey) -> bool {
        let name = key.name.as_str();
        match key.kind {
            FieldType::Counter => self.counters.contains_key(name),
            FieldType::Set => self.sets.contains_key(name),
            FieldType::Register => self.registers.contains_key(name),
            FieldType::Flag => self.flags.contains_key(name),
            FieldType::Map => self.maps.contains_key(name),
        }
    }

    /// The keys of the present fields, in key order.
    pub fn keys(&self) -> BTreeSet<FieldKey> {
        fn names<S>(
            m: &BTreeMap<String, S>,
            kind: FieldType,
        ) -> impl Iterator<Item = FieldKey> + '_ {
            m.keys().map(move |n| FieldKey::new(n.clone(), kind))
        }
        names(&self.counters, FieldType::Counter)
            .chain(names(&self.sets, FieldType::Set))
            .chain(names(&self.registers, FieldType::Register))
            .chain(names(&self.flags, FieldType::Flag))
            .chain(names(&self.maps, FieldType::Map))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.counters.len()
            + self.sets.len()
            + self.registers.len()
            + self.flags.len()
            + self.maps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove_field(&mut self, key: &FieldKey, removed: &mut BTreeSet<Dot>) -> bool {
        fn take<S: DotStore>(
            fields: &mut BTreeMap<String, Field<S>>,
            name: &str,
            removed: &mut BTreeSet<Dot>,
        ) -> bool {
            match fields.remove(name) {
                Some(field) => {
                    field.collect_dots(removed);
                    true
                }
                None => false,
            }
        }
        let name = key.name.as_str();
        match key.kind {
            FieldType::Counter => take(&mut self.counters, name, removed),
            FieldType::Set => take(&mut self.sets, name, removed),
            FieldType::Register => take(&mut self.registers, name, removed),
            FieldType::Flag => take(&mut self.flags, name, removed),
            FieldType::Map => take(&mut self.maps, name, removed),
        }
    }
}

/// Update one field: the op's dot replaces the field's update dots, then the content
/// takes the op.
fn update_field<S: Crdt>(
    fields: &mut BTreeMap<String, Field<S>>,
    name: &str,
    kind: FieldType,
    op: &S::Op,
    dot: Dot,
    removed: &mut BTreeSet<Dot>,
    path: &mut Vec<FieldKey>,
) -> Result<(), Error> {
    let field = fields.entry(name.to_owned()).or_default();
    removed.extend(field.dots.iter().copied());
    field.dots.clear();
    field.dots.insert(dot);
    path.push(FieldKey::new(name, kind));
    let result = field.store.apply(op, dot, removed, path);
    path.pop();
    result
}

impl DotStore for MapStore {
    fn is_bottom(&self) -> bool {
        self.is_empty()
    }

    fn merge(&mut self, other: &Self, ctx: &CausalContext, other_ctx: &CausalContext) {
        merge_map(&mut self.counters, &other.counters, ctx, other_ctx);
        merge_map(&mut self.sets, &other.sets, ctx, other_ctx);
        merge_map(&mut self.registers, &other.registers, ctx, other_ctx);
        merge_map(&mut self.flags, &other.flags, ctx, other_ctx);
        merge_map(&mut self.maps, &other.maps, ctx, other_ctx);
    }

    fn collect_dots(&self, out: &mut BTreeSet<Dot>) {
        self.counters.values().for_each(|f| f.collect_dots(out));
        self.sets.values().for_each(|f| f.collect_dots(out));
        self.registers.values().for_each(|f| f.collect_dots(out));
        self.flags.values().for_each(|f| f.collect_dots(out));
        self.maps.values().for_each(|f| f.collect_dots(out));
    }

    fn restrict(&self, dots: &BTreeSet<Dot>) -> Self {
        MapStore {
            counters: restrict_map(&self.counters, dots),
            sets: restrict_map(&self.sets, dots),
            registers: restrict_map(&self.registers, dots),
            flags: restrict_map(&self.flags, dots),
            maps: restrict_map(&self.maps, dots),
        }
    }
}

impl Crdt for MapStore {
    type Op = MapOp;
    type Value = BTreeMap<FieldKey, FieldValue>;

    fn apply(
        &mut self,
        op: &MapOp,
        dot: Dot,
        removed: &mut BTreeSet<Dot>,
        path: &mut Vec<FieldKey>,
    ) -> Result<(), Error> {
        if path.len() > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        let MapOp::Update(ops) = op;
        if ops.is_empty() {
            return Err(Error::EmptyOp);
        }
        for field_op in ops {
            match field_op {
                FieldOp::Update { name, op } => {
                    let kind = op.kind();
                    match op {
                        TypedOp::Counter(o) => {
                            update_field(&mut self.counters, name, kind, o, dot, removed, path)
                        }
                        TypedOp::Set(o) => {
                            update_field(&mut self.sets, name, kind, o, dot, removed, path)
                        }
                        TypedOp::Register(o) => {
                            update_field(&mut self.registers, name, kind, o, dot, removed, path)
                        }
                        TypedOp::Flag(o) => {
                            update_field(&mut self.flags, name, kind, o, dot, removed, path)
                        }
                        TypedOp::Map(o) => {
                            update_field(&mut self.maps, name, kind, o, dot, removed, path)
                        }
                    }?;
                }
                FieldOp::Remove(key) => {
                    if !self.remove_field(key, removed) {
                        path.push(key.clone());
                        let err = Error::not_present(path, None);
                        path.pop();
                        return Err(err);
                    }
                }
            }
        }
        Ok(())
    }

    fn value(&self) -> BTreeMap<FieldKey, FieldValue> {
        fn add<S: Crdt>(
            out: &mut BTreeMap<FieldKey, FieldValue>,
            fields: &BTreeMap<String, Field<S>>,
            kind: FieldType,
            wrap: fn(S::Value) -> FieldValue,
        ) {
            for (name, f) in fields {
                out.insert(FieldKey::new(name.clone(), kind), wrap(f.store.value()));
            }
        }
        let mut out = BTreeMap::new();
        add(
            &mut out,
            &self.counters,
            FieldType::Counter,
            FieldValue::Counter,
        );
        add(&mut out, &self.sets, FieldType::Set, FieldValue::Set);
        add(
            &mut out,
            &self.registers,
            FieldType::Register,
            FieldValue::Register,
        );
        add(&mut out, &self.flags, FieldType::Flag, FieldValue::Flag);
        add(&mut out, &self.maps, FieldType::Map, FieldValue::Map);
        out
    }

    /// An object keyed `name:type`, values in their own canonical forms.
    fn to_json(&self) -> serde_json::Value {
        FieldValue::Map(self.value()).to_json()
    }
}
