//! Last-writer-wins register with integer timestamps and a tie-break that cannot disagree.
//!
//! The value is the greatest `(timestamp, value)` pair among the writes still alive, values
//! compared by their UTF-8 bytes. riak_dt's register keeps whichever write a replica saw
//! first when timestamps are equal, so two replicas can read different values forever; a
//! total order on the pair gives the same answer locally and after any merge.
//!
//! Writes are tagged with dots (one per write, concurrent writes coexist until a later
//! write that saw them replaces them) so that the register behaves as a map field: a field
//! removal drops the writes it saw, and a concurrent write keeps the field alive.
//!
//! A write never lowers the value: assigning with a timestamp below the current one keeps
//! the current pair (as riak_dt does) while still refreshing the dot. Without an explicit
//! timestamp, an assign takes one above every write the replica holds, so a write that saw
//! another always wins over it, with no clock needed.
//!
//! Values are strings (JSON form: a JSON string). Structured values can be stored as their
//! own canonical JSON text, or as a nested map.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::map::FieldKey;
use super::store::{Crdt, DotStore, merge_fun, restrict_fun};
use super::{CausalContext, Dot, Error};

/// One write. Field order matters: the derived `Ord` compares timestamp, then value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamped {
    pub timestamp: u64,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// `timestamp: None` means "after everything this replica holds".
    Assign {
        value: String,
        timestamp: Option<u64>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterStore {
    writes: BTreeMap<Dot, Stamped>,
}

impl RegisterStore {
    /// The winning write, if any.
    pub fn winner(&self) -> Option<&Stamped> {
        self.writes.values().max()
    }
}

impl DotStore for RegisterStore {
    fn is_bottom(&self) -> bool {
        self.writes.is_empty()
    }

    fn merge(&mut self, other: &Self, ctx: &CausalContext, other_ctx: &CausalContext) {
        merge_fun(&mut self.writes, &other.writes, ctx, other_ctx);
    }

    fn collect_dots(&self, out: &mut BTreeSet<Dot>) {
        out.extend(self.writes.keys().copied());
    }

    fn restrict(&self, dots: &BTreeSet<Dot>) -> Self {
        RegisterStore {
            writes: restrict_fun(&self.writes, dots),
        }
    }
}

impl Crdt for RegisterStore {
    type Op = RegisterOp;
    type Value = Option<String>;

    fn apply(
        &mut self,
        op: &RegisterOp,
        dot: Dot,
        removed: &mut BTreeSet<Dot>,
        _path: &mut Vec<FieldKey>,
    ) -> Result<(), Error> {
        let RegisterOp::Assign { value, timestamp } = op;
        let current = self.winner().cloned();
        let timestamp = match (timestamp, &current) {
            (Some(t), _) => *t,
            (None, Some(c)) => c.timestamp.saturating_add(1),
            (None, None) => 0,
        };
        let written = Stamped {
            timestamp,
            value: value.clone(),
        };
        let kept = match current {
            Some(c) if c > written => c,
            _ => written,
        };
        removed.extend(self.writes.keys().copied());
        self.writes.clear();
        self.writes.insert(dot, kept);
        Ok(())
    }

    fn value(&self) -> Option<String> {
        self.winner().map(|w| w.value.clone())
    }

    /// The value as a JSON string; `null` for a register never written.
    fn to_json(&self) -> serde_json::Value {
        match self.winner() {
            Some(w) => serde_json::Value::String(w.value.clone()),
            None => serde_json::Value::Null,
        }
    }
}
