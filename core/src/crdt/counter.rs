//! PN counter that survives being a map field: riak_dt's embedded counter (`emcntr`).
//!
//! A plain PN counter merges by taking each actor's maximum. Inside a map that breaks
//! removal: a field removed and re-added starts again from 0, and merging with a replica
//! that never saw the removal brings the old, larger totals back. Here each actor's
//! contribution is one entry tagged with a dot; an actor's new op replaces its entry (new
//! dot, updated totals), and a removal drops the entries whose dots it saw. So state stays
//! at one entry per actor, and a removed counter really is gone.
//!
//! Reset-remove granularity is the actor, as in riak_dt: when a field removal races an
//! increment by actor A, A's entry is one the remover never saw, so A's whole running
//! contribution survives, while every other actor's seen contribution is removed. Exact
//! per-increment reset would need one entry per increment forever.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use super::causal::dot_range;
use super::map::FieldKey;
use super::store::{Crdt, DotStore, merge_fun, restrict_fun};
use super::{CausalContext, Dot, Error};

/// One actor's running totals since its entry was last removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterEntry {
    pub inc: u64,
    pub dec: u64,
}

/// Amounts are non-zero by type: a zero increment would spend a dot and change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOp {
    Increment(NonZeroU64),
    Decrement(NonZeroU64),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterStore {
    entries: BTreeMap<Dot, CounterEntry>,
}

impl CounterStore {
    /// Per-dot entries (normally one per actor; two for one actor only while a replica has
    /// seen the actor's restart-from-zero but not yet the removal that caused it).
    pub fn entries(&self) -> &BTreeMap<Dot, CounterEntry> {
        &self.entries
    }
}

impl DotStore for CounterStore {
    fn is_bottom(&self) -> bool {
        self.entries.is_empty()
    }

    fn merge(&mut self, other: &Self, ctx: &CausalContext, other_ctx: &CausalContext) {
        merge_fun(&mut self.entries, &other.entries, ctx, other_ctx);
    }

    fn collect_dots(&self, out: &mut BTreeSet<Dot>) {
        out.extend(self.entries.keys().copied());
    }

    fn restrict(&self, dots: &BTreeSet<Dot>) -> Self {
        CounterStore {
            entries: restrict_fun(&self.entries, dots),
        }
    }
}

impl Crdt for CounterStore {
    type Op = CounterOp;
    /// i128: the sum of per-actor u64 totals cannot overflow it.
    type Value = i128;

    fn apply(
        &mut self,
        op: &CounterOp,
        dot: Dot,
        removed: &mut BTreeSet<Dot>,
        _path: &mut Vec<FieldKey>,
    ) -> Result<(), Error> {
        let mine: Vec<Dot> = self
            .entries
            .range(dot_range(dot.actor))
            .map(|(d, _)| *d)
            .collect();
        let mut total = CounterEntry::default();
        for d in &mine {
            let e = self.entries[d];
            total.inc = total.inc.checked_add(e.inc).ok_or(Error::Overflow)?;
            total.dec = total.dec.checked_add(e.dec).ok_or(Error::Overflow)?;
        }
        match op {
            CounterOp::Increment(n) => {
                total.inc = total.inc.checked_add(n.get()).ok_or(Error::Overflow)?
            }
            CounterOp::Decrement(n) => {
                total.dec = total.dec.checked_add(n.get()).ok_or(Error::Overflow)?
            }
        }
        for d in mine {
            self.entries.remove(&d);
            removed.insert(d);
        }
        self.entries.insert(dot, total);
        Ok(())
    }

    fn value(&self) -> i128 {
        self.entries
            .values()
            .map(|e| i128::from(e.inc) - i128::from(e.dec))
            .sum()
    }

    fn to_json(&self) -> serde_json::Value {
        counter_json(self.value())
    }
}

/// The exact value: a JSON integer where one of 64 bits holds it, a decimal string
/// beyond (reaching that takes several actors each counting past 2^63). A number pinned
/// at `u64::MAX` would look like a value no replica ever held.
pub(crate) fn counter_json(v: i128) -> serde_json::Value {
    if let Ok(n) = i64::try_from(v) {
        serde_json::Value::from(n)
    } else if let Ok(n) = u64::try_from(v) {
        serde_json::Value::from(n)
    } else {
        serde_json::Value::String(v.to_string())
    }
}
