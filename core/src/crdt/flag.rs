//! Flags: a boolean where concurrent enable and disable resolve one fixed way.
//!
//! Every enable or disable is a write tagged with a dot that replaces the writes it saw, so
//! after a merge the live writes are exactly the latest concurrent ones. Enable-wins reads
//! `true` if any of them enables; disable-wins reads `true` only if none disables. The
//! state and merge are the same for both; only the read differs, so the policy is a type
//! parameter (`DISABLE_WINS`) and not data that two replicas could disagree on.
//!
//! A disable is a write too (rather than just dropping the seen enables, as riak_dt's
//! flag does) so that it means "this field was updated" inside a map: a disable racing a
//! field removal keeps the field, as any other update would, reading `false`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::map::FieldKey;
use super::store::{Crdt, DotStore, merge_fun, restrict_fun};
use super::{CausalContext, Dot, Error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    Enable,
    Disable,
}

/// `DISABLE_WINS = false`: enable-wins (the map's `flag` type). `true`: disable-wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagStore<const DISABLE_WINS: bool> {
    writes: BTreeMap<Dot, bool>,
}

impl<const DW: bool> DotStore for FlagStore<DW> {
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
        FlagStore {
            writes: restrict_fun(&self.writes, dots),
        }
    }
}

impl<const DW: bool> Crdt for FlagStore<DW> {
    type Op = FlagOp;
    type Value = bool;

    fn apply(
        &mut self,
        op: &FlagOp,
        dot: Dot,
        removed: &mut BTreeSet<Dot>,
        _path: &mut Vec<FieldKey>,
    ) -> Result<(), Error> {
        removed.extend(self.writes.keys().copied());
        self.writes.clear();
        self.writes.insert(dot, *op == FlagOp::Enable);
        Ok(())
    }

    fn value(&self) -> bool {
        if DW {
            !self.writes.is_empty() && self.writes.values().all(|&on| on)
        } else {
            self.writes.values().any(|&on| on)
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Bool(self.value())
    }
}
