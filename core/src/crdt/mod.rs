//! Conflict-free replicated data types with riak_dt's semantics, for the replicated KV.
//!
//! Types: [`Orswot`] (add-wins set), [`Counter`] (riak_dt's embedded PN counter),
//! [`LwwRegister`], [`EwFlag`] / [`DwFlag`] (enable-wins / disable-wins), and [`Map`],
//! whose fields are keyed `(name, type)` and hold any of these, maps included.
//!
//! # Shape
//!
//! Each type is a [`Causal`]: a dot store (content tagged with the dots of the writes that
//! put it there, see [`store`]) plus a [`CausalContext`] (every dot the replica has seen).
//! - [`Causal::apply`] runs an op as `actor`: it takes the actor's next dot, applies the op
//!   to a copy of the state, and only if every part of the op succeeds installs the copy.
//!   It returns the op's **delta**: a `Causal` of the same type holding only what the op
//!   wrote plus the dots it replaced or removed. Merging the delta into any replica has the
//!   same effect as merging the whole new state into it, so the KV ships deltas.
//! - [`Causal::merge`] is the join: commutative, associative, idempotent, for states and
//!   deltas alike, in any order, duplicated or not (the property tests in this module check
//!   this for every type, for maps nested three deep, and for deltas shuffled and repeated).
//! - Removals carry the dots they removed; a removal that arrives before the write it
//!   removes parks those dots in the context's dot cloud, and the write is dropped when it
//!   arrives. That is the deferral of removals whose context is not yet seen.
//!
//! # Canonical JSON
//!
//! Values (`to_json`): counter → integer (exact: a counter is the i128 sum of per-actor
//! u64 totals; beyond JSON's 64-bit integers, from below -2^63 or from 2^64 on, it is
//! written as a decimal string, so a reader never takes a clamped number for the value);
//! set → sorted array of strings; register → its
//! string, or `null` if never written; flag → bool; map → object keyed `"name:type"`, with
//! type one of `counter`, `set`, `register`, `flag`, `map`.
//!
//! Ops (parsed by [`MapOp::from_json_str`], total on any input, see [`json`]):
//! ```json
//! {"update":[{"field":"n","type":"counter","op":{"increment":5}},
//!            {"field":"s","type":"set","op":{"add_all":["a","b"]}},
//!            {"field":"m","type":"map","op":{"update":[
//!                {"field":"r","type":"register","op":{"assign":"x","timestamp":7}}]}},
//!            {"field":"f","type":"flag","op":"enable"},
//!            {"remove":{"field":"old","type":"set"}}]}
//! ```
//!
//! # Determinism and persistence
//!
//! Only `BTreeMap` / `BTreeSet`; every state is serde-serialisable (bincode for disk and
//! wire) and normalised, so equal states are equal values with equal bytes.

pub mod causal;
mod counter;
mod error;
mod flag;
pub mod json;
mod map;
mod orswot;
mod register;
pub mod store;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use causal::{Actor, CausalContext, Dot};
pub use counter::{CounterEntry, CounterOp, CounterStore};
pub use error::{Absent, Error, Precondition};
pub use flag::{FlagOp, FlagStore};
pub use json::{ParseError, ParseErrorKind};
pub use map::{FieldKey, FieldOp, FieldType, FieldValue, MapOp, MapStore, TypedOp};
pub use orswot::{OrswotStore, SetOp};
pub use register::{RegisterOp, RegisterStore, Stamped};
pub use store::{Crdt, DotStore};

/// How many maps may nest inside a top-level map. Bounds recursion when applying and
/// parsing ops that come from users or peers.
pub const MAX_DEPTH: usize = 16;

pub type Orswot = Causal<OrswotStore>;
pub type Counter = Causal<CounterStore>;
pub type LwwRegister = Causal<RegisterStore>;
pub type EwFlag = Causal<FlagStore<false>>;
pub type DwFlag = Causal<FlagStore<true>>;
pub type Map = Causal<MapStore>;

/// A replica of a causal CRDT, or a delta of one: a dot store and the dots seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Causal<S> {
    store: S,
    context: CausalContext,
}

impl<S: DotStore> Causal<S> {
    pub fn new() -> Causal<S> {
        Causal {
            store: S::default(),
            context: CausalContext::new(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Nothing stored and nothing seen.
    pub fn is_empty(&self) -> bool {
        self.store.is_bottom() && self.context.is_empty()
    }

    /// No content: never written, or everything in it removed (the context may still
    /// hold the dots seen, which is what keeps a removal from being undone by a late
    /// copy of what was removed).
    pub fn is_bottom(&self) -> bool {
        self.store.is_bottom()
    }

    /// Join `other` (a replica's state or a delta) into `self`.
    pub fn merge(&mut self, other: &Causal<S>) {
        self.store
            .merge(&other.store, &self.context, &other.context);
        self.context.merge(&other.context);
    }
}

impl<S: Crdt> Causal<S> {
    /// Apply `op` as `actor` and return its delta. On error `self` is untouched.
    ///
    /// The op runs on a copy of the store, which costs a clone of the value per op; that
    /// buys all-or-nothing ops without an undo log, and KV values are bounded in size.
    pub fn apply(&mut self, actor: Actor, op: &S::Op) -> Result<Causal<S>, Error> {
        let dot = self.context.next_dot(actor)?;
        let mut store = self.store.clone();
        let mut touched = BTreeSet::new();
        store.apply(op, dot, &mut touched, &mut Vec::new())?;
        touched.insert(dot);
        self.store = store;
        self.context.insert(dot);
        Ok(Causal {
            store: self.store.restrict(&touched),
            context: CausalContext::from_dots(touched),
        })
    }

    pub fn value(&self) -> S::Value {
        self.store.value()
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.store.to_json()
    }
}
