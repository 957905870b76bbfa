//! The passive view, and the random sampling both views use.
//!
//! The active view lives with the failure detector's per-neighbour state in
//! [`Membership`](super::Membership); what is here is the larger, cheaper set of peers a
//! node knows of but is not linked to, used to repair the active view and fed by
//! forward-joins, shuffles and evictions.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::config::MAX_PASSIVE_VIEW;
use super::message::PeerAddr;
use crate::id::{Addr, NodeId};
use crate::rng::NodeRng;
use crate::time::{Duration, Instant};
use crate::wire::{self, Bounded, WireError};

/// Where the passive view is persisted.
pub const PASSIVE_KEY: &[u8] = b"hv/passive";

/// A known peer we are not linked to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassivePeer {
    pub addr: Addr,
    /// Consecutive failed attempts to make it a neighbour.
    pub failures: u32,
    /// Not tried again before this (exponential back-off after failures).
    pub retry_at: Instant,
}

/// At most `cap` peers, never ourselves (the caller keeps active members out).
pub struct PassiveView {
    cap: usize,
    peers: BTreeMap<NodeId, PassivePeer>,
    /// Changed since last persisted.
    dirty: bool,
}

impl PassiveView {
    pub fn new(cap: usize) -> PassiveView {
        PassiveView {
            cap,
            peers: BTreeMap::new(),
            dirty: false,
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }
    pub fn contains(&self, id: NodeId) -> bool {
        self.peers.contains_key(&id)
    }
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.keys().copied()
    }

    /// Add or refresh `id`. When full, make room by dropping one of `evict_first` if any
    /// is present (the peers we just handed to someone else in a shuffle, as HyParView
    /// prescribes), else a random peer.
    pub fn insert(&mut self, rng: &mut NodeRng, id: NodeId, addr: Addr, evict_first: &[NodeId]) {
        if let Some(p) = self.peers.get_mut(&id) {
            if p.addr != addr {
                // Same node at a new address (it moved): what we knew of the old one
                // says nothing about the new.
                *p = PassivePeer {
                    addr,
                    failures: 0,
                    retry_at: Instant::ZERO,
                };
                self.dirty = true;
            }
            return;
        }
        if self.peers.len() >= self.cap {
            let victim = evict_first
                .iter()
                .copied()
                .find(|v| self.peers.contains_key(v))
                .or_else(|| pick(rng, &self.ids().collect::<Vec<_>>()));
            if let Some(v) = victim {
                self.peers.remove(&v);
            }
        }
        self.peers.insert(
            id,
            PassivePeer {
                addr,
                failures: 0,
                retry_at: Instant::ZERO,
            },
        );
        self.dirty = true;
    }

    pub fn remove(&mut self, id: NodeId) -> Option<PassivePeer> {
        let p = self.peers.remove(&id);
        self.dirty |= p.is_some();
        p
    }

    /// An attempt to reach `id` failed: back off exponentially from `base` up to `max`.
    /// The peer stays: it may be behind a partition that heals.
    pub fn failed(&mut self, id: NodeId, now: Instant, base: Duration, max: Duration) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.failures = p.failures.saturating_add(1);
            let backoff = base.saturating_mul(1u64 << (p.failures - 1).min(32));
            p.retry_at = now + backoff.min(max);
        }
    }

    /// A random peer that is not backing off and passes `usable`.
    pub fn candidate(
        &self,
        rng: &mut NodeRng,
        now: Instant,
        usable: impl Fn(NodeId) -> bool,
    ) -> Option<(NodeId, Addr)> {
        let ready: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(id, p)| p.retry_at <= now && usable(**id))
            .map(|(id, _)| *id)
            .collect();
        let id = pick(rng, &ready)?;
        Some((id, self.peers[&id].addr.clone()))
    }

    /// Up to `k` random peers.
    pub fn sample(&self, rng: &mut NodeRng, k: usize) -> Vec<PeerAddr> {
        let all: Vec<PeerAddr> = self
            .peers
            .iter()
            .map(|(id, p)| PeerAddr {
                id: *id,
                addr: p.addr.clone(),
            })
            .collect();
        sample(rng, all, k)
    }

    /// The bytes to persist if the view changed since the last call.
    pub fn take_dirty(&mut self) -> Option<Vec<u8>> {
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        let peers: Vec<PeerAddr> = self
            .peers
            .iter()
            .map(|(id, p)| PeerAddr {
                id: *id,
                addr: p.addr.clone(),
            })
            .collect();
        Some(wire::encode(&peers))
    }

    /// Rebuild from persisted bytes, keeping at most `cap` peers. Bytes that do not decode are an error for the caller to report; they are not trusted
    /// any more than a peer's message would be.
    pub fn restore(cap: usize, bytes: &[u8]) -> Result<PassiveView, WireError> {
        let Persisted(peers) = wire::decode(bytes)?;
        let mut view = PassiveView::new(cap);
        for p in peers.into_iter().take(cap) {
            view.peers.insert(
                p.id,
                PassivePeer {
                    addr: p.addr,
                    failures: 0,
                    retry_at: Instant::ZERO,
                },
            );
        }
        Ok(view)
    }
}

/// The persisted form: a bounded list of peers.
#[derive(Serialize)]
struct Persisted(Vec<PeerAddr>);

impl<'de> Deserialize<'de> for Persisted {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Persisted, D::Error> {
        Bounded::<PeerAddr, MAX_PASSIVE_VIEW>::deserialize(d).map(|b| Persisted(b.0))
    }
}

/// A uniformly random element of `items`.
pub fn pick<T: Clone>(rng: &mut NodeRng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[rng.index(items.len())].clone())
}

/// `k` distinct random elements of `items` (all of them, shuffled, if fewer).
pub fn sample<T>(rng: &mut NodeRng, mut items: Vec<T>, k: usize) -> Vec<T> {
    let k = k.min(items.len());
    // Partial Fisher–Yates: the first k slots end up a uniform sample.
    for i in 0..k {
        let j = i + rng.index(items.len() - i);
        items.swap(i, j);
    }
    items.truncate(k);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u64) -> Addr {
        Addr::new(format!("n{i}")).unwrap()
    }

    #[test]
    fn bounded_and_prefers_evicting_what_was_sent() {
        let mut rng = NodeRng::from_seed(1);
        let mut v = PassiveView::new(3);
        for i in 0..3 {
            v.insert(&mut rng, NodeId(i), addr(i), &[]);
        }
        v.insert(&mut rng, NodeId(9), addr(9), &[NodeId(7), NodeId(1)]);
        assert_eq!(
            v.ids().collect::<Vec<_>>(),
            [NodeId(0), NodeId(2), NodeId(9)]
        );
        v.insert(&mut rng, NodeId(10), addr(10), &[]);
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn failures_back_off_and_cap() {
        let mut rng = NodeRng::from_seed(1);
        let mut v = PassiveView::new(3);
        v.insert(&mut rng, NodeId(1), addr(1), &[]);
        let (base, max) = (Duration::from_millis(100), Duration::from_millis(300));
        let t = Instant::ZERO + Duration::from_secs(1);
        v.failed(NodeId(1), t, base, max);
        assert_eq!(v.peers[&NodeId(1)].retry_at, t + base);
        assert!(v.candidate(&mut rng, t, |_| true).is_none());
        for _ in 0..40 {
            v.failed(NodeId(1), t, base, max);
        }
        assert_eq!(v.peers[&NodeId(1)].retry_at, t + max);
        assert!(v.candidate(&mut rng, t + max, |_| true).is_some());
    }

    #[test]
    fn persists_and_restores() {
        let mut rng = NodeRng::from_seed(1);
        let mut v = PassiveView::new(5);
        for i in 0..5 {
            v.insert(&mut rng, NodeId(i), addr(i), &[]);
        }
        let bytes = v.take_dirty().unwrap();
        assert!(v.take_dirty().is_none());
        let r = PassiveView::restore(3, &bytes).unwrap();
        assert_eq!(r.len(), 3);
        assert!(PassiveView::restore(3, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn sample_is_distinct_and_bounded() {
        let mut rng = NodeRng::from_seed(3);
        let s = sample(&mut rng, (0..10).collect(), 4);
        assert_eq!(s.len(), 4);
        let mut d = s.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 4);
        assert_eq!(sample(&mut rng, vec![1, 2], 5).len(), 2);
    }
}
