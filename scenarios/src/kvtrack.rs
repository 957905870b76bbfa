//! How long a KV op takes to be visible everywhere: from the `kv-op` step on its origin
//! to the moment the last live node holds it (checked by the op's dot whenever that
//! node's copy of the key changes).

use std::collections::BTreeSet;

use hawser_core::kv::Ticket;
use hawser_core::{Duration, Instant};

struct InFlight {
    at: Instant,
    key: String,
    ticket: Ticket,
    waiting: BTreeSet<usize>,
}

#[derive(Default)]
pub(crate) struct KvTrack {
    in_flight: Vec<InFlight>,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) last_op: Option<Instant>,
}

impl KvTrack {
    /// An op on `key` was applied at `origin`; `live` are the other nodes that must see it.
    pub(crate) fn op(&mut self, at: Instant, key: &str, ticket: Ticket, live: BTreeSet<usize>) {
        self.last_op = Some(at);
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
        self.retire(at);
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
