//! De-partitioning: which unreachable member to probe next, at a bounded rate.
//!
//! Two halves of a cluster that healed may share no overlay link: each refilled its
//! active views from its own side during the split, and nothing makes a full view dial
//! across. Each node therefore probes, at most once per housekeeping period, one member
//! its graph says is unreachable — contacts first, since every node knows them — and
//! asks membership to make it a neighbour. One link across is enough: the two ends
//! exchange table digests, and the flood carries the rest to both halves. Probes of the
//! same member back off exponentially, so a member that is really dead costs the cluster
//! a probe per node per `probe_backoff_max_ms`, not a dial storm.

use std::collections::BTreeMap;

use crate::id::{Addr, NodeId};
use crate::rng::NodeRng;
use crate::time::{Duration, Instant};

#[derive(Debug)]
struct Backoff {
    retry_at: Instant,
    next: Duration,
}

#[derive(Debug, Default)]
pub struct Prober {
    backoff: BTreeMap<NodeId, Backoff>,
}

impl Prober {
    /// Pick a member to probe among `unreachable` (id, address) pairs, preferring those
    /// at a contact address, and back off from it.
    pub fn pick(
        &mut self,
        rng: &mut NodeRng,
        now: Instant,
        unreachable: &[(NodeId, Addr)],
        contacts: &[Addr],
        base: Duration,
        max: Duration,
    ) -> Option<(NodeId, Addr)> {
        let ready: Vec<&(NodeId, Addr)> = unreachable
            .iter()
            .filter(|(id, _)| self.backoff.get(id).is_none_or(|b| b.retry_at <= now))
            .collect();
        let contacts_ready: Vec<&(NodeId, Addr)> = ready
            .iter()
            .copied()
            .filter(|(_, a)| contacts.contains(a))
            .collect();
        let pool = if contacts_ready.is_empty() {
            ready
        } else {
            contacts_ready
        };
        if pool.is_empty() {
            return None;
        }
        let (id, addr) = pool[rng.index(pool.len())].clone();
        let b = self.backoff.entry(id).or_insert(Backoff {
            retry_at: now,
            next: base,
        });
        b.retry_at = now + b.next;
        b.next = b.next.saturating_mul(2).min(max);
        Some((id, addr))
    }

    /// `id` is reachable again, or forgotten: its next probe starts afresh.
    pub fn clear(&mut self, id: NodeId) {
        self.backoff.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u64) -> Addr {
        Addr::new(format!("n{i}")).unwrap()
    }

    #[test]
    fn contacts_first_and_repeated_probes_back_off() {
        let mut p = Prober::default();
        let mut rng = NodeRng::from_seed(1);
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(3));
        let pool = [(NodeId(1), addr(1)), (NodeId(2), addr(2))];
        let t0 = Instant::ZERO;
        let first = p.pick(&mut rng, t0, &pool, &[addr(2)], base, max);
        assert_eq!(first, Some((NodeId(2), addr(2))));
        let second = p.pick(&mut rng, t0, &pool, &[addr(2)], base, max);
        assert_eq!(
            second,
            Some((NodeId(1), addr(1))),
            "the contact is backing off"
        );
        assert_eq!(p.pick(&mut rng, t0, &pool, &[], base, max), None);
        let t1 = t0 + base;
        assert!(p.pick(&mut rng, t1, &pool, &[], base, max).is_some());
        assert!(p.pick(&mut rng, t1, &pool, &[], base, max).is_some());
        assert_eq!(
            p.pick(&mut rng, t1, &pool, &[], base, max),
            None,
            "2 s back-off now"
        );
        p.clear(NodeId(1));
        assert_eq!(
            p.pick(&mut rng, t1, &pool, &[], base, max),
            Some((NodeId(1), addr(1)))
        );
    }
}
