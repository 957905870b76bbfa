//! How long a KV op takes to be visible everywhere: from the `kv-op` step on its origin
//! to the moment the last live node holds it (checked by the op's dot whenever that
//! node's copy of the key changes); and, for `kv-op-visible`, whether each op reached
//! the nodes that kept reaching its origin by its own deadline.

use std::collections::{BTreeMap, BTreeSet};

use hawser_core::kv::Ticket;
use hawser_core::{Duration, Instant};

use crate::network::Components;
use crate::owed::{Owed, check_all};

struct InFlight {
    at: Instant,
    key: String,
    ticket: Ticket,
    waiting: BTreeSet<usize>,
}

/// One op as `kv-op-visible` judges it.
struct Judged {
    origin: usize,
    key: String,
    ticket: Ticket,
    owed: Owed,
}

#[derive(Default)]
pub(crate) struct KvTrack {
    /// Ops some live node does not hold yet (the latency figures).
    in_flight: Vec<InFlight>,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) last_op: Option<Instant>,
    /// Every op of the run, in order, for `kv-op-visible`...
    judged: Vec<Judged>,
    /// ...and, by key, those some node reaching its origin still owes: a change to a key
    /// looks only at these, not at every op of the run.
    owed_by_key: BTreeMap<String, Vec<usize>>,
}

impl KvTrack {
    /// An op on `key` was applied at `origin` at `at`; the other live nodes must all see
    /// it (its latency), and those reaching `origin` through `net` owe it by its deadline.
    pub(crate) fn op(
        &mut self,
        at: Instant,
        origin: usize,
        key: &str,
        ticket: Ticket,
        net: &Components,
    ) {
        self.last_op = Some(at);
        // Anti-entropy repairs what dissemination missed, so every node of the origin's
        // component owes the op, known to the origin or not.
        let owed = Owed::new(at, origin, net, |_| true);
        let live = (0..net.len())
            .filter(|&j| j != origin && net[j].is_some())
            .collect();
        if owed.pending() {
            let ops = self.owed_by_key.entry(key.to_string()).or_default();
            ops.push(self.judged.len());
        }
        self.judged.push(Judged {
            origin,
            key: key.to_string(),
            ticket,
            owed,
        });
        self.in_flight.push(InFlight {
            at,
            key: key.to_string(),
            ticket,
            waiting: live,
        });
        self.retire(at);
    }

    /// `node`'s copy of `key` changed at `at`; `seen` says whether it now holds an op.
    pub(crate) fn changed(
        &mut self,
        at: Instant,
        node: usize,
        key: &str,
        seen: impl Fn(Ticket) -> bool,
    ) {
        for f in self
            .in_flight
            .iter_mut()
            .filter(|f| f.key == key && f.waiting.contains(&node))
        {
            if seen(f.ticket) {
                f.waiting.remove(&node);
            }
        }
        if let Some(ops) = self.owed_by_key.get_mut(key) {
            let judged = &mut self.judged;
            ops.retain(|&k| {
                let op = &mut judged[k];
                if op.owed.owed_by(node) && seen(op.ticket) {
                    op.owed.delivered(at, node);
                }
                op.owed.pending()
            });
            if ops.is_empty() {
                self.owed_by_key.remove(key);
            }
        }
        self.retire(at);
    }

    /// The network changed at `now`: nodes that stopped reaching an op's origin no
    /// longer owe it.
    pub(crate) fn network_changed(&mut self, now: Instant, net: &Components) {
        let judged = &mut self.judged;
        self.owed_by_key.retain(|_, ops| {
            ops.retain(|&k| {
                judged[k].owed.network_changed(now, net);
                judged[k].owed.pending()
            });
            !ops.is_empty()
        });
    }

    /// Some node reaching an op's origin does not hold it yet.
    pub(crate) fn owed(&self) -> bool {
        !self.owed_by_key.is_empty()
    }

    /// `kv-op-visible` at `now`: every op applied in `[since, until)` whose deadline
    /// (`within` after it, or `until`) has come reached every node that kept reaching
    /// its origin. `Ok` says how many ops were judged (0: none was due yet).
    pub(crate) fn check(
        &self,
        since: Instant,
        until: Instant,
        within: Option<Duration>,
        now: Instant,
    ) -> Result<usize, String> {
        let events = self.judged.iter().map(|op| {
            let label = move || {
                format!(
                    "n{}'s op on {:?}, applied at {}",
                    op.origin,
                    op.key,
                    op.owed.at - Instant::ZERO
                )
            };
            (&op.owed, label)
        });
        check_all(events, since, until, within, now)
    }

    /// `node` is no longer live: nobody waits for it.
    pub(crate) fn gone(&mut self, at: Instant, node: usize) {
        for f in &mut self.in_flight {
            f.waiting.remove(&node);
        }
        self.retire(at);
    }

    fn retire(&mut self, now: Instant) {
        let latencies = &mut self.latencies;
        self.in_flight.retain(|f| {
            let done = f.waiting.is_empty();
            if done {
                latencies.push(now - f.at);
            }
            !done
        });
    }

    /// When the oldest op not yet visible everywhere was applied (the report's lag curve).
    pub(crate) fn oldest_in_flight(&self) -> Option<Instant> {
        self.in_flight.iter().map(|f| f.at).min()
    }

    /// Ops not yet visible everywhere.
    pub(crate) fn undelivered(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use hawser_core::NodeId;
    use hawser_core::crdt::causal::{Actor, Dot};

    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }
    fn ticket(counter: u64) -> Ticket {
        let actor = Actor {
            node: NodeId(7),
            incarnation: 1,
        };
        Ticket(Dot { actor, counter })
    }

    #[test]
    fn each_op_is_owed_by_its_origins_component_until_its_own_deadline() {
        // n0..n2 together, n3 cut off.
        let net: Components = vec![Some(0), Some(0), Some(0), Some(1)];
        let within = Some(Duration::from_millis(10));
        let mut kv = KvTrack::default();
        kv.op(t(0), 0, "k", ticket(1), &net);
        assert!(kv.owed());
        let holds = |c: u64| move |x: Ticket| x.0.counter <= c;
        kv.changed(t(3), 1, "k", holds(1));
        kv.changed(t(4), 2, "other", holds(1));
        assert_eq!(kv.check(t(0), t(1000), within, t(9)), Ok(0), "not due yet");
        let miss = kv.check(t(0), t(1000), within, t(10)).unwrap_err();
        assert!(
            miss.contains("n0's op on \"k\", applied at 0s, had not reached 1 node(s)")
                && miss.contains("n2 first"),
            "{miss}"
        );
        kv.changed(t(5), 2, "k", holds(1));
        assert_eq!(kv.check(t(0), t(1000), within, t(10)), Ok(1));
        assert!(!kv.owed(), "nobody owes it: the index is empty");
        // n3 owed nothing, but the latency figure waits for every live node.
        assert_eq!(kv.undelivered(), 1);

        // A second op on the same key: a node cut off before its deadline is released.
        kv.op(t(100), 1, "k", ticket(2), &net);
        kv.changed(t(101), 0, "k", holds(2));
        kv.network_changed(t(105), &vec![Some(0), Some(0), None, Some(1)]);
        assert!(!kv.owed());
        assert_eq!(kv.check(t(0), t(1000), within, t(200)), Ok(2));
    }
}
