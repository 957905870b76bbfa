//! ORSWOT: observed-remove set without tombstones, add-wins.
//!
//! Each element carries the dots of the adds that keep it alive. A remove drops the dots it
//! observed and nothing else, so an add the remover had not seen keeps the element (add
//! wins), and nothing is left behind for removed elements: the causal context alone
//! remembers that their dots were seen.
//!
//! Elements are strings: they are what the KV's users store (names, addresses) and they
//! have one obvious canonical JSON form and byte order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::map::FieldKey;
use super::store::{Crdt, DotStore, collect_map, merge_map, restrict_map};
use super::{CausalContext, Dot, Error};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    Add(String),
    AddAll(Vec<String>),
    /// Fails with `Precondition(NotPresent)` if the element is absent.
    Remove(String),
    /// Fails with `Precondition(NotPresent)` if any element is absent; then none is removed.
    RemoveAll(Vec<String>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrswotStore {
    elements: BTreeMap<String, BTreeSet<Dot>>,
}

impl OrswotStore {
    pub fn contains(&self, element: &str) -> bool {
        self.elements.contains_key(element)
    }

    pub fn len(&self) -> usize {
        self.elements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.elements.keys().map(String::as_str)
    }

    /// Adding replaces the element's observed dots with the op's dot: the element's dots
    /// stay bounded by the number of concurrent adds, not the number of adds.
    fn add(&mut self, element: &str, dot: Dot, removed: &mut BTreeSet<Dot>) {
        let dots = self.elements.entry(element.to_owned()).or_default();
        removed.extend(dots.iter().copied());
        dots.clear();
        dots.insert(dot);
    }

    fn remove(
        &mut self,
        element: &str,
        removed: &mut BTreeSet<Dot>,
        path: &[FieldKey],
    ) -> Result<(), Error> {
        match self.elements.remove(element) {
            Some(dots) => {
                removed.extend(dots);
                Ok(())
            }
            None => Err(Error::not_present(path, Some(element))),
        }
    }
}

impl DotStore for OrswotStore {
    fn is_bottom(&self) -> bool {
        self.elements.is_empty()
    }

    fn merge(&mut self, other: &Self, ctx: &CausalContext, other_ctx: &CausalContext) {
        merge_map(&mut self.elements, &other.elements, ctx, other_ctx);
    }

    fn collect_dots(&self, out: &mut BTreeSet<Dot>) {
        collect_map(&self.elements, out);
    }

    fn restrict(&self, dots: &BTreeSet<Dot>) -> Self {
        OrswotStore {
            elements: restrict_map(&self.elements, dots),
        }
    }
}

impl Crdt for OrswotStore {
    type Op = SetOp;
    type Value = BTreeSet<String>;

    fn apply(
        &mut self,
        op: &SetOp,
        dot: Dot,
        removed: &mut BTreeSet<Dot>,
        path: &mut Vec<FieldKey>,
    ) -> Result<(), Error> {
        match op {
            SetOp::Add(e) => self.add(e, dot, removed),
            SetOp::AddAll(es) => {
                if es.is_empty() {
                    return Err(Error::EmptyOp);
                }
                for e in es {
                    self.add(e, dot, removed);
                }
            }
            SetOp::Remove(e) => self.remove(e, removed, path)?,
            SetOp::RemoveAll(es) => {
                if es.is_empty() {
                    return Err(Error::EmptyOp);
                }
                for e in es {
                    self.remove(e, removed, path)?;
                }
            }
        }
        Ok(())
    }

    fn value(&self) -> BTreeSet<String> {
        self.elements.keys().cloned().collect()
    }

    /// A sorted array of strings (byte order, which is `String`'s order).
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.elements
                .keys()
                .map(|e| serde_json::Value::String(e.clone()))
                .collect(),
        )
    }
}
