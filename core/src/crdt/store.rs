//! Dot stores: the payload half of a causal CRDT, and the one merge rule they all share.
//!
//! Every type here is a *dot store* (where each piece of content is tagged with the dot of
//! the write that put it there) paired with a [`CausalContext`] (every dot the replica has
//! seen) in [`Causal`](super::Causal). Merging two replicas keeps a tagged piece when both
//! hold it, or when one holds it and the other has never seen its dot; a piece one side
//! dropped after seeing it stays dropped. That single rule gives add-wins sets, observed
//! removal, reset-remove maps and out-of-order deltas, and it is a join (commutative,
//! associative, idempotent) applied pointwise to each dot, which is why the laws hold for
//! every composition, nested maps included.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use super::map::FieldKey;
use super::{CausalContext, Dot, Error};

/// The payload of a causal CRDT. Implementations must apply the merge rule above pointwise,
/// drop content that becomes empty (so equal states are equal values), and never panic.
pub trait DotStore: Clone + Default + PartialEq + fmt::Debug {
    /// Nothing stored: the state of a field that was never written or was removed.
    fn is_bottom(&self) -> bool;

    /// Join with `other`; `ctx` is what `self`'s replica has seen, `other_ctx` what
    /// `other`'s has seen (both before the merge).
    fn merge(&mut self, other: &Self, ctx: &CausalContext, other_ctx: &CausalContext);

    /// Every dot tagging content, into `out`.
    fn collect_dots(&self, out: &mut BTreeSet<Dot>);

    /// Only the content tagged with one of `dots`: with the context `dots`, that is
    /// everything a replica needs to learn about those dots, i.e. a delta.
    fn restrict(&self, dots: &BTreeSet<Dot>) -> Self;
}

/// A dot store with operations and a readable value.
pub trait Crdt: DotStore {
    type Op: Clone + fmt::Debug + PartialEq;
    type Value: Clone + fmt::Debug + PartialEq;

    /// Apply `op`, tagging what it writes with `dot`, and add to `removed` every dot whose
    /// content it dropped or replaced. `path` locates this store inside the enclosing map
    /// for error messages. On `Err` the store may be half-updated: the caller
    /// ([`Causal::apply`](super::Causal::apply)) works on a copy and throws it away.
    fn apply(
        &mut self,
        op: &Self::Op,
        dot: Dot,
        removed: &mut BTreeSet<Dot>,
        path: &mut Vec<FieldKey>,
    ) -> Result<(), Error>;

    fn value(&self) -> Self::Value;

    /// The canonical JSON form of the value (see the module docs).
    fn to_json(&self) -> serde_json::Value;
}

/// A set of dots, e.g. the adds that keep one set element alive.
impl DotStore for BTreeSet<Dot> {
    fn is_bottom(&self) -> bool {
        self.is_empty()
    }

    fn merge(&mut self, other: &Self, ctx: &CausalContext, other_ctx: &CausalContext) {
        self.retain(|d| other.contains(d) || !other_ctx.contains(d));
        for d in other {
            if !ctx.contains(d) {
                self.insert(*d);
            }
        }
    }

    fn collect_dots(&self, out: &mut BTreeSet<Dot>) {
        out.extend(self.iter().copied());
    }

    fn restrict(&self, dots: &BTreeSet<Dot>) -> Self {
        self.intersection(dots).copied().collect()
    }
}

/// Merge for a map from dots to values (counter entries, register writes, flag writes).
/// A dot names one write, so both sides hold the same value for it; taking the larger one
/// anyway keeps the merge commutative even for corrupted input.
pub(crate) fn merge_fun<V: Clone + Ord>(
    mine: &mut BTreeMap<Dot, V>,
    other: &BTreeMap<Dot, V>,
    ctx: &CausalContext,
    other_ctx: &CausalContext,
) {
    mine.retain(|d, _| other.contains_key(d) || !other_ctx.contains(d));
    for (d, v) in other {
        match mine.get_mut(d) {
            Some(x) => {
                if *v > *x {
                    *x = v.clone();
                }
            }
            None => {
                if !ctx.contains(d) {
                    mine.insert(*d, v.clone());
                }
            }
        }
    }
}

pub(crate) fn restrict_fun<V: Clone>(
    fun: &BTreeMap<Dot, V>,
    dots: &BTreeSet<Dot>,
) -> BTreeMap<Dot, V> {
    fun.iter()
        .filter(|(d, _)| dots.contains(d))
        .map(|(d, v)| (*d, v.clone()))
        .collect()
}

/// Merge for a map from keys to nested dot stores (set elements, map fields): merge per
/// key, a missing key being the empty store, and drop keys left empty.
pub(crate) fn merge_map<K: Ord + Clone, S: DotStore>(
    mine: &mut BTreeMap<K, S>,
    other: &BTreeMap<K, S>,
    ctx: &CausalContext,
    other_ctx: &CausalContext,
) {
    let empty = S::default();
    for (k, v) in mine.iter_mut() {
        v.merge(other.get(k).unwrap_or(&empty), ctx, other_ctx);
    }
    for (k, v) in other {
        if !mine.contains_key(k) {
            let mut fresh = S::default();
            fresh.merge(v, ctx, other_ctx);
            if !fresh.is_bottom() {
                mine.insert(k.clone(), fresh);
            }
        }
    }
    mine.retain(|_, v| !v.is_bottom());
}

pub(crate) fn restrict_map<K: Ord + Clone, S: DotStore>(
    map: &BTreeMap<K, S>,
    dots: &BTreeSet<Dot>,
) -> BTreeMap<K, S> {
    map.iter()
        .filter_map(|(k, v)| {
            let r = v.restrict(dots);
            (!r.is_bottom()).then(|| (k.clone(), r))
        })
        .collect()
}

pub(crate) fn collect_map<K, S: DotStore>(map: &BTreeMap<K, S>, out: &mut BTreeSet<Dot>) {
    for v in map.values() {
        v.collect_dots(out);
    }
}
