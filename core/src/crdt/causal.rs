//! Causality: who wrote ([`Actor`]), which write ([`Dot`]), and what a replica has seen
//! ([`CausalContext`]).

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::id::NodeId;

/// The writer of a dot: a node *in one life*.
///
/// A node that loses its disk forgets which dots it already issued. If it came back as the
/// same actor it would issue `(n1, 1)` again, and every replica that already holds the old
/// `(n1, 1)` would treat the new write as already seen and drop it (Lashup loses writes
/// exactly this way). The incarnation, bumped whenever a node starts without its durable
/// state, makes the new life a different actor whose dots cannot collide with the old ones.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub node: NodeId,
    pub incarnation: u64,
}

impl Actor {
    pub fn new(node: NodeId, incarnation: u64) -> Actor {
        Actor { node, incarnation }
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}.{}", self.node, self.incarnation)
    }
}

/// One write: the `counter`-th event issued by `actor` (counters start at 1).
///
/// Every op gets exactly one dot, shared by all the field updates it makes, so the op lives
/// or dies as a unit under concurrent removals.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub actor: Actor,
    pub counter: u64,
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}:{}", self.actor, self.counter)
    }
}

/// The set of dots a replica has seen: a version vector plus a "dot cloud" of dots seen out
/// of order.
///
/// The cloud is what lets deltas travel in any order. A removal delta carries the dots it
/// removed; if they have not arrived yet, they wait in the cloud, and when the write they
/// belong to does arrive it is recognised as already removed. That is how a removal whose
/// causal context is not yet seen is *deferred* without any special case (riak_dt keeps a
/// separate deferred-ops list for this, and Lashup's fork crashes on it). Contiguous cloud
/// dots fold into the vector, so the cloud stays empty once delivery catches up.
///
/// Kept normalised (no cloud dot covered by the vector, no zero entries), so two contexts
/// holding the same dots are equal as values and serialise to the same bytes.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalContext {
    vv: BTreeMap<Actor, u64>,
    cloud: BTreeSet<Dot>,
}

impl fmt::Debug for CausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("vv", &self.vv)
            .field("cloud", &self.cloud)
            .finish()
    }
}

impl CausalContext {
    pub fn new() -> CausalContext {
        CausalContext::default()
    }

    /// A context holding exactly `dots` (used for deltas, which name only what they touch).
    pub fn from_dots(dots: impl IntoIterator<Item = Dot>) -> CausalContext {
        let mut ctx = CausalContext {
            vv: BTreeMap::new(),
            cloud: dots.into_iter().collect(),
        };
        ctx.compact();
        ctx
    }

    pub fn contains(&self, dot: &Dot) -> bool {
        dot.counter <= self.vv.get(&dot.actor).copied().unwrap_or(0) || self.cloud.contains(dot)
    }

    pub fn insert(&mut self, dot: Dot) {
        if !self.contains(&dot) {
            self.cloud.insert(dot);
            self.compact();
        }
    }

    /// Union of the two dot sets.
    pub fn merge(&mut self, other: &CausalContext) {
        for (actor, &n) in &other.vv {
            let mine = self.vv.entry(*actor).or_insert(0);
            *mine = (*mine).max(n);
        }
        self.cloud.extend(other.cloud.iter().copied());
        self.compact();
    }

    /// True when every dot of `other` is in `self`.
    pub fn includes(&self, other: &CausalContext) -> bool {
        other
            .vv
            .iter()
            .all(|(a, &n)| self.vv.get(a).copied().unwrap_or(0) >= n)
            && other.cloud.iter().all(|d| self.contains(d))
    }

    /// The next dot for `actor`: above every dot of `actor` seen so far, cloud included, so a
    /// dot is never issued twice even if some of this actor's own dots came back out of order.
    pub fn next_dot(&self, actor: Actor) -> Result<Dot, Error> {
        let in_vv = self.vv.get(&actor).copied().unwrap_or(0);
        let in_cloud = self
            .cloud
            .range(dot_range(actor))
            .next_back()
            .map_or(0, |d| d.counter);
        let counter = in_vv
            .max(in_cloud)
            .checked_add(1)
            .ok_or(Error::DotsExhausted)?;
        Ok(Dot { actor, counter })
    }

    pub fn is_empty(&self) -> bool {
        self.vv.is_empty() && self.cloud.is_empty()
    }

    /// The contiguous part: for each actor, every dot up to this counter has been seen.
    pub fn version_vector(&self) -> &BTreeMap<Actor, u64> {
        &self.vv
    }

    /// Dots seen beyond the contiguous part (non-empty only while deliveries are missing).
    pub fn cloud(&self) -> &BTreeSet<Dot> {
        &self.cloud
    }

    /// Fold cloud dots that extend the vector into it and drop the ones it already covers.
    /// The cloud iterates in (actor, counter) order, so one pass folds whole runs.
    fn compact(&mut self) {
        let cloud = core::mem::take(&mut self.cloud);
        for dot in cloud {
            if dot.counter == 0 {
                continue;
            }
            let seen = self.vv.entry(dot.actor).or_insert(0);
            if seen.checked_add(1) == Some(dot.counter) {
                *seen = dot.counter;
            } else if dot.counter > *seen {
                self.cloud.insert(dot);
            }
        }
        self.vv.retain(|_, n| *n > 0);
    }
}

/// All possible dots of one actor, for range queries over dot-ordered collections.
pub(crate) fn dot_range(actor: Actor) -> core::ops::RangeInclusive<Dot> {
    Dot { actor, counter: 0 }..=Dot {
        actor,
        counter: u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u64) -> Actor {
        Actor::new(NodeId(n), 0)
    }
    fn d(n: u64, c: u64) -> Dot {
        Dot {
            actor: a(n),
            counter: c,
        }
    }

    #[test]
    fn cloud_folds_into_the_vector_when_the_gap_closes() {
        let mut ctx = CausalContext::from_dots([d(1, 2), d(1, 3)]);
        assert!(!ctx.contains(&d(1, 1)));
        assert_eq!(ctx.cloud().len(), 2);
        ctx.insert(d(1, 1));
        assert!(ctx.cloud().is_empty());
        assert_eq!(ctx.version_vector().get(&a(1)), Some(&3));
        assert_eq!(ctx.next_dot(a(1)).unwrap(), d(1, 4));
    }

    #[test]
    fn next_dot_is_above_the_cloud() {
        let ctx = CausalContext::from_dots([d(1, 5)]);
        assert_eq!(ctx.next_dot(a(1)).unwrap(), d(1, 6));
        assert_eq!(ctx.next_dot(a(2)).unwrap(), d(2, 1));
    }

    #[test]
    fn merge_is_union_and_normalised() {
        let mut x = CausalContext::from_dots([d(1, 1), d(2, 2)]);
        let y = CausalContext::from_dots([d(2, 1), d(1, 3)]);
        x.merge(&y);
        let z = CausalContext::from_dots([d(1, 1), d(1, 3), d(2, 1), d(2, 2)]);
        assert_eq!(x, z);
        assert!(x.includes(&y));
        assert!(!y.includes(&x));
    }

    #[test]
    fn exhausted_actor_is_an_error_not_a_wrap() {
        let ctx = CausalContext::from_dots([d(1, u64::MAX)]);
        assert_eq!(ctx.next_dot(a(1)), Err(Error::DotsExhausted));
    }
}
