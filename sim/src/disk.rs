//! A simulated disk: what a node persisted survives a kill only once it was synced.
//!
//! It is written in batches, as the real driver writes its store: every record the node
//! handed over while no sync was running goes into the next sync, one atomic commit.
//! Faults act on the next sync (see [`DiskFault`]); a batch torn by a crash carries the
//! checksum of what should have been written, so a restart finds the damage and drops
//! the batch whole, as the real store (redb: checksummed, atomic commits) rolls back to
//! its last good commit. A damaged batch is never loaded.

use hawser_core::{Duration, PersistSeq, Record, Snapshot};

/// What goes wrong with a node's next sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// The sync reports an error: nothing of the batch is known to be durable (a failed
    /// fsync cannot be retried safely). The real driver stops the node ("store failure,
    /// stopping"), and so does the simulator's driver.
    Fail,
    /// The process dies in the middle of the sync: a prefix of the batch reaches the
    /// platter, perhaps with its last record damaged, or all of it (the sync completed
    /// but nobody heard).
    Tear,
}

/// A batch a crash interrupted, as it lies on the disk.
struct TornBatch {
    /// The records that reached the disk (possibly a damaged last one).
    written: Vec<Record>,
    /// How many records the whole batch had.
    of: usize,
    /// The checksum of the whole batch, written with its commit record.
    checksum: [u8; 32],
}

/// What a restart made of a torn batch (see [`Disk::recover`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovered {
    /// The batch had reached the disk whole: it is loaded.
    Whole { records: usize },
    /// The checksum did not match: the batch is dropped.
    Dropped { written: usize, of: usize },
}

#[derive(Default)]
pub(crate) struct Disk {
    /// What a restart will see.
    durable: Snapshot,
    /// Written but not yet synced, in order.
    pending: Vec<Record>,
    /// A sync is in flight covering records up to this sequence.
    pub(crate) syncing: Option<PersistSeq>,
    /// How long a sync takes here, if not the simulation's default.
    pub(crate) latency: Option<Duration>,
    /// What the next sync does instead of succeeding.
    pub(crate) fault: Option<DiskFault>,
    torn: Option<TornBatch>,
}

impl Disk {
    pub(crate) fn write(&mut self, record: Record) {
        self.pending.push(record);
    }

    pub(crate) fn last_pending(&self) -> Option<PersistSeq> {
        self.pending.last().map(|r| r.seq)
    }

    /// The records of the sync up to `upto`, taken off the pending list.
    fn batch(&mut self, upto: PersistSeq) -> Vec<Record> {
        let n = self.pending.partition_point(|r| r.seq <= upto);
        self.pending.drain(..n).collect()
    }

    /// Make every pending record up to `upto` durable.
    pub(crate) fn sync(&mut self, upto: PersistSeq) {
        for record in self.batch(upto) {
            self.durable.apply(&record);
        }
    }

    /// The sync up to `upto` failed: its records are not durable, and the node stops
    /// (see [`DiskFault::Fail`]), so nothing written after them is either.
    pub(crate) fn fail(&mut self, upto: PersistSeq) {
        self.batch(upto);
        self.pending.clear();
    }

    /// The sync up to `upto` is cut short by a crash: `reached` of its records reach the
    /// disk, the last of them `damaged` if so; what came after the batch is lost with
    /// the process. The crash itself is the caller's next step (a kill).
    pub(crate) fn tear(&mut self, upto: PersistSeq, reached: usize, damaged: bool) {
        let batch = self.batch(upto);
        self.pending.clear();
        let (checksum, of) = (checksum(&batch), batch.len());
        let mut written: Vec<Record> = batch.into_iter().take(reached).collect();
        if damaged && let Some(last) = written.last_mut() {
            match &mut last.value {
                Some(v) if !v.is_empty() => v[0] ^= 0xA5,
                Some(v) => v.push(0xA5),
                None => last.value = Some(vec![0xA5]),
            }
        }
        self.torn = Some(TornBatch {
            written,
            of,
            checksum,
        });
    }

    /// How many records the sync up to `upto` covers (what a tear draws from).
    pub(crate) fn batch_len(&self, upto: PersistSeq) -> usize {
        self.pending.partition_point(|r| r.seq <= upto)
    }

    /// The process died. With `lose_unsynced`, what was not synced is gone (the honest
    /// model of a crash); otherwise the OS flushed it. A torn batch stays for the
    /// restart to find.
    pub(crate) fn crash(&mut self, lose_unsynced: bool) {
        if !lose_unsynced {
            for record in self.pending.drain(..) {
                self.durable.apply(&record);
            }
        }
        self.pending.clear();
        self.syncing = None;
        self.fault = None;
    }

    /// At start: check a torn batch against its checksum, load it if it is whole, drop
    /// it otherwise.
    pub(crate) fn recover(&mut self) -> Option<Recovered> {
        let torn = self.torn.take()?;
        if checksum(&torn.written) == torn.checksum {
            for record in &torn.written {
                self.durable.apply(record);
            }
            Some(Recovered::Whole {
                records: torn.written.len(),
            })
        } else {
            Some(Recovered::Dropped {
                written: torn.written.len(),
                of: torn.of,
            })
        }
    }

    /// A new, empty disk (a replaced machine: a slow disk is replaced too).
    pub(crate) fn wipe(&mut self) {
        *self = Disk::default();
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.durable
    }
}

/// A batch's checksum: every record's sequence, key and value, length-prefixed.
fn checksum(records: &[Record]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&(records.len() as u64).to_le_bytes());
    for r in records {
        h.update(&r.seq.0.to_le_bytes());
        h.update(&(r.key.len() as u64).to_le_bytes());
        h.update(&r.key);
        match &r.value {
            Some(v) => {
                h.update(&[1]);
                h.update(&(v.len() as u64).to_le_bytes());
                h.update(v);
            }
            None => {
                h.update(&[0]);
            }
        }
    }
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, value: &[u8]) -> Record {
        Record {
            seq: PersistSeq(seq),
            key: format!("k{seq}").into_bytes(),
            value: Some(value.to_vec()),
        }
    }

    fn disk_with(n: u64) -> Disk {
        let mut d = Disk::default();
        d.write(rec(1, b"synced"));
        d.sync(PersistSeq(1));
        for s in 2..2 + n {
            d.write(rec(s, b"v"));
        }
        d
    }

    #[test]
    fn a_torn_prefix_is_dropped_whole() {
        let mut d = disk_with(3);
        d.tear(PersistSeq(4), 2, false);
        d.crash(true);
        assert_eq!(d.recover(), Some(Recovered::Dropped { written: 2, of: 3 }));
        assert_eq!(d.snapshot().0.len(), 1, "only the synced record");
        assert_eq!(d.recover(), None, "found once");
    }

    #[test]
    fn a_damaged_last_record_is_caught_even_when_every_record_reached_the_disk() {
        let mut d = disk_with(3);
        d.tear(PersistSeq(4), 3, true);
        d.crash(true);
        assert!(matches!(d.recover(), Some(Recovered::Dropped { .. })));
        assert_eq!(d.snapshot().get(b"k4"), None);
    }

    #[test]
    fn a_whole_batch_is_loaded_though_nobody_heard_of_its_sync() {
        let mut d = disk_with(3);
        d.tear(PersistSeq(4), 3, false);
        d.crash(true);
        assert_eq!(d.recover(), Some(Recovered::Whole { records: 3 }));
        assert_eq!(d.snapshot().get(b"k4"), Some(&b"v"[..]));
    }

    #[test]
    fn a_failed_sync_leaves_nothing_of_its_batch_nor_after_it() {
        let mut d = disk_with(2);
        d.write(rec(9, b"later"));
        d.fail(PersistSeq(3));
        // Even a crash that flushes what was written: the node stopped at the failure.
        d.crash(false);
        assert_eq!(d.snapshot().get(b"k2"), None);
        assert_eq!(d.snapshot().get(b"k9"), None);
        assert_eq!(d.snapshot().get(b"k1"), Some(&b"synced"[..]));
    }
}
