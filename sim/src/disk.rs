//! A simulated disk: what a node persisted survives a kill only once it was synced.

use hawser_core::{PersistSeq, Record, Snapshot};

#[derive(Default)]
pub(crate) struct Disk {
    /// What a restart will see.
    durable: Snapshot,
    /// Written but not yet synced, in order.
    pending: Vec<Record>,
    /// A sync is in flight covering records up to this sequence.
    pub(crate) syncing: Option<PersistSeq>,
}

impl Disk {
    pub(crate) fn write(&mut self, record: Record) {
        self.pending.push(record);
    }

    pub(crate) fn last_pending(&self) -> Option<PersistSeq> {
        self.pending.last().map(|r| r.seq)
    }

    /// Make every pending record up to `upto` durable.
    pub(crate) fn sync(&mut self, upto: PersistSeq) {
        let n = self.pending.partition_point(|r| r.seq <= upto);
        for record in self.pending.drain(..n) {
            self.durable.apply(&record);
        }
    }

    /// The process died. With `lose_unsynced`, what was not synced is gone (the honest
    /// model of a crash); otherwise the OS flushed it.
    pub(crate) fn crash(&mut self, lose_unsynced: bool) {
        if !lose_unsynced {
            for record in self.pending.drain(..) {
                self.durable.apply(&record);
            }
        }
        self.pending.clear();
        self.syncing = None;
    }

    pub(crate) fn wipe(&mut self) {
        *self = Disk::default();
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.durable
    }
}
