//! The replicated store: every key's CRDT map, with a content hash per key so replicas
//! can find what differs without shipping values.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::crdt::{Actor, Error as CrdtError, Map, MapOp};
use crate::wire;

/// One key's value and the hash of its canonical bytes (equal maps, equal hashes).
#[derive(Clone, Debug)]
pub struct Entry {
    pub map: Map,
    pub hash: u64,
}

fn hash_of(key: &str, map: &Map) -> u64 {
    let mut h = Sha256::new();
    h.update((key.len() as u32).to_be_bytes());
    h.update(key.as_bytes());
    h.update(wire::encode(map));
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// What a local op did.
pub struct Applied {
    pub delta: Map,
    pub value: Map,
}

/// Keys are spread over this many buckets for anti-entropy.
pub const BUCKETS: usize = 256;

/// Which bucket a key's hash is folded into (FNV-1a of the key: cheap and stable).
pub fn bucket_of(key: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.as_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    (h as usize) % BUCKETS
}

pub struct Store {
    entries: BTreeMap<String, Entry>,
    /// XOR of the hashes of the keys in each bucket: two replicas whose bucket sums
    /// agree hold the same keys there with the same values (up to 64-bit collisions).
    buckets: Vec<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            entries: BTreeMap::new(),
            buckets: vec![0; BUCKETS],
        }
    }
}

impl Store {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys and entries in key order, from `prefix` on.
    pub fn scan<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        self.entries
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// The per-bucket digest sent to a neighbour to start anti-entropy.
    pub fn buckets(&self) -> &[u64] {
        &self.buckets
    }

    /// Every key (with its hash) in the given buckets.
    pub fn summaries(&self, buckets: &[bool]) -> Vec<(String, u64)> {
        self.entries
            .iter()
            .filter(|(k, _)| buckets[bucket_of(k)])
            .map(|(k, e)| (k.clone(), e.hash))
            .collect()
    }

    fn put(&mut self, key: &str, map: Map, hash: u64) {
        let b = bucket_of(key);
        if let Some(old) = self.entries.get(key) {
            self.buckets[b] ^= old.hash;
        }
        self.buckets[b] ^= hash;
        self.entries.insert(key.to_string(), Entry { map, hash });
    }

    /// Apply `op` as `actor`. The whole op applies or nothing does (the CRDT library
    /// applies to a copy); `max_value` bounds the encoded size of the result, unless the
    /// op shrinks it: merges of concurrent ops can take a value past the bound, and
    /// removing what made it so big must stay possible.
    pub fn apply(
        &mut self,
        key: &str,
        actor: Actor,
        op: &MapOp,
        max_value: usize,
    ) -> Result<Applied, StoreError> {
        let mut map = self
            .entries
            .get(key)
            .map(|e| e.map.clone())
            .unwrap_or_default();
        let before = wire::encode(&map).len();
        let delta = map.apply(actor, op).map_err(StoreError::Crdt)?;
        let size = wire::encode(&map).len();
        if size > max_value && size > before {
            return Err(StoreError::TooLarge {
                size,
                max: max_value,
            });
        }
        let hash = hash_of(key, &map);
        self.put(key, map.clone(), hash);
        Ok(Applied { delta, value: map })
    }

    /// Merge a remote delta or state into `key`. Returns the new value if it changed.
    pub fn merge(&mut self, key: &str, remote: &Map) -> Option<&Map> {
        let mut map = self
            .entries
            .get(key)
            .map(|e| e.map.clone())
            .unwrap_or_default();
        map.merge(remote);
        let hash = hash_of(key, &map);
        let before = self
            .entries
            .get(key)
            .map_or_else(|| hash_of(key, &Map::default()), |e| e.hash);
        if hash == before {
            return None;
        }
        self.put(key, map, hash);
        self.entries.get(key).map(|e| &e.map)
    }

    /// Put a recovered value back (at start).
    pub fn restore(&mut self, key: String, map: Map) {
        let hash = hash_of(&key, &map);
        self.put(&key, map, hash);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    Crdt(CrdtError),
    TooLarge { size: usize, max: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{FieldOp, SetOp, TypedOp};
    use crate::id::NodeId;

    fn set_op(op: SetOp) -> MapOp {
        MapOp::Update(vec![FieldOp::Update {
            name: "s".into(),
            op: TypedOp::Set(op),
        }])
    }

    /// Two replicas' adds, each under the limit, merge into a value over it. Every op
    /// that grows it is refused; one that shrinks it goes through (it used to get 413
    /// too, so only deleting the whole field was left).
    #[test]
    fn an_oversize_merged_value_can_still_shrink() {
        const MAX: usize = 4096;
        let items = |a: u64| {
            (0..150)
                .map(|i| format!("item-{a}-{i:04}"))
                .collect::<Vec<_>>()
        };
        let mut merged = Map::new();
        for a in [1, 2] {
            let mut m = Map::new();
            m.apply(Actor::new(NodeId(a), 1), &set_op(SetOp::AddAll(items(a))))
                .unwrap();
            assert!(wire::encode(&m).len() <= MAX);
            merged.merge(&m);
        }
        assert!(wire::encode(&merged).len() > MAX);
        let mut store = Store::default();
        store.merge("k", &merged);
        let me = Actor::new(NodeId(3), 1);
        let grow = store.apply("k", me, &set_op(SetOp::Add("more".into())), MAX);
        assert!(matches!(grow, Err(StoreError::TooLarge { .. })));
        let shrink = store.apply("k", me, &set_op(SetOp::RemoveAll(items(1))), MAX);
        assert!(shrink.is_ok(), "{:?}", shrink.err());
        assert!(wire::encode(&store.get("k").unwrap().map).len() <= MAX);
    }
}
