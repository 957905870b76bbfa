//! The durable store: core's persistence records in an embedded ACID database (redb).
//!
//! Core hands the driver [`Record`]s; the driver groups whatever accumulated while the
//! previous commit was running into one batch, and [`Store::commit`] writes that batch in
//! a single transaction with one sync. Only after it returns does the driver report
//! `handle_persisted(seq)`: that is what makes "acknowledged" mean "on disk".
//!
//! One file, `hawser.redb`, in the data directory. redb holds an exclusive lock on it for
//! as long as the database is open, so a second agent pointed at the same directory is
//! refused (and the first is untouched). Every page is checksummed and the whole file is
//! verified on open: a damaged file is reported as corrupt instead of being trusted.

use std::fmt;
use std::path::{Path, PathBuf};

use hawser_core::{PersistSeq, Record, Snapshot};
use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
};

/// Core's key/value records, exactly as core named them.
const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
/// Bookkeeping of the store itself.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Which node this directory belongs to: a data directory is never silently reused by
/// another node name, whose identity (and so whose peers' view of it) would differ.
const META_NODE: &str = "node";

/// The database file inside the data directory.
pub const DB_FILE: &str = "hawser.redb";

/// Why the store cannot be used. Every message names the path and says what to do.
#[derive(Debug)]
pub enum StoreError {
    /// The data directory could not be created or is not a writable directory.
    DataDir { path: PathBuf, error: String },
    /// Another process (probably another agent) has this data directory open.
    Locked { path: PathBuf },
    /// The file is damaged or is not a hawser store.
    Corrupt { path: PathBuf, detail: String },
    /// The directory belongs to another node.
    WrongNode {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// Reading or writing failed.
    Io { path: PathBuf, error: String },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::DataDir { path, error } => write!(
                f,
                "data directory {}: {error} (data_dir must be a directory this user can write)",
                path.display()
            ),
            StoreError::Locked { path } => write!(
                f,
                "data directory {} is in use by another hawser agent (its store {} is locked); \
                 give each agent its own data_dir",
                path.parent().unwrap_or(path).display(),
                path.display()
            ),
            StoreError::Corrupt { path, detail } => write!(
                f,
                "store {} is corrupt: {detail}. Move the file aside to start this node with an \
                 empty state (it will rejoin through its contacts)",
                path.display()
            ),
            StoreError::WrongNode {
                path,
                found,
                expected,
            } => write!(
                f,
                "store {} belongs to node {found:?}, not {expected:?}; use another data_dir",
                path.display()
            ),
            StoreError::Io { path, error } => write!(f, "store {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {}

/// An open store, exclusively held by this process.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Open (or create) the store in `dir` for node `name`, and read back what it holds.
    pub fn open(dir: &Path, name: &str) -> Result<(Store, Snapshot), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::DataDir {
            path: dir.to_owned(),
            error: e.to_string(),
        })?;
        if !dir.is_dir() {
            return Err(StoreError::DataDir {
                path: dir.to_owned(),
                error: "not a directory".into(),
            });
        }
        let path = dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(16 << 20)
            .set_check_integrity_on_open(true)
            .create(&path)
            .map_err(|e| open_error(&path, e))?;
        let store = Store { db, path };
        store.claim(name)?;
        let snapshot = store.snapshot()?;
        Ok((store, snapshot))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record the owner on first use; refuse a directory that belongs to another name.
    fn claim(&self, name: &str) -> Result<(), StoreError> {
        let io = |e: &dyn fmt::Display| self.error(e);
        let tx = self.db.begin_write().map_err(|e| io(&e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| io(&e))?;
            let found = meta
                .get(META_NODE)
                .map_err(|e| io(&e))?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned());
            match found {
                Some(found) if found != name => {
                    return Err(StoreError::WrongNode {
                        path: self.path.clone(),
                        found,
                        expected: name.into(),
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert(META_NODE, name.as_bytes())
                        .map_err(|e| io(&e))?;
                }
            }
            tx.open_table(STATE).map_err(|e| io(&e))?;
        }
        tx.commit().map_err(|e| io(&e))
    }

    /// Every key's last committed value.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let io = |e: &dyn fmt::Display| self.error(e);
        let tx = self.db.begin_read().map_err(|e| io(&e))?;
        let table = tx.open_table(STATE).map_err(|e| io(&e))?;
        let mut snapshot = Snapshot::default();
        for row in table.iter().map_err(|e| io(&e))? {
            let (k, v) = row.map_err(|e| io(&e))?;
            snapshot.0.insert(k.value().to_vec(), v.value().to_vec());
        }
        Ok(snapshot)
    }

    /// Write `batch` in one transaction, synced to disk before this returns. Returns the
    /// highest sequence number written (`None` for an empty batch, which writes nothing).
    pub fn commit(&self, batch: &[Record]) -> Result<Option<PersistSeq>, StoreError> {
        let Some(last) = batch.iter().map(|r| r.seq).max() else {
            return Ok(None);
        };
        let io = |e: &dyn fmt::Display| self.error(e);
        let tx = self.db.begin_write().map_err(|e| io(&e))?;
        {
            let mut state = tx.open_table(STATE).map_err(|e| io(&e))?;
            for record in batch {
                match &record.value {
                    Some(v) => state.insert(record.key.as_slice(), v.as_slice()),
                    None => state.remove(record.key.as_slice()),
                }
                .map_err(|e| io(&e))?;
            }
        }
        tx.commit().map_err(|e| io(&e))?;
        Ok(Some(last))
    }

    fn error(&self, e: &dyn fmt::Display) -> StoreError {
        let detail = e.to_string();
        if detail.to_ascii_lowercase().contains("corrupt") {
            StoreError::Corrupt {
                path: self.path.clone(),
                detail,
            }
        } else {
            StoreError::Io {
                path: self.path.clone(),
                error: detail,
            }
        }
    }
}

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    let path = path.to_owned();
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked { path }
        }
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            StoreError::Corrupt { path, detail }
        }
        DatabaseError::Storage(StorageError::Io(error))
            if error.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            StoreError::DataDir {
                path: path.parent().unwrap_or(&path).to_owned(),
                error: error.to_string(),
            }
        }
        // redb's word for "this is not a redb file" (wrong magic number, ...).
        DatabaseError::Storage(StorageError::Io(error))
            if error.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::Corrupt {
                path,
                detail: error.to_string(),
            }
        }
        DatabaseError::UpgradeRequired(v) => StoreError::Corrupt {
            path,
            detail: format!("the file has redb format version {v}, which this build cannot read"),
        },
        DatabaseError::RepairAborted => StoreError::Corrupt {
            path,
            detail: "the file needed repair and the repair did not complete".into(),
        },
        other => StoreError::Io {
            path,
            error: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, key: &[u8], value: Option<&[u8]>) -> Record {
        Record {
            seq: PersistSeq(seq),
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn batches_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, snap) = Store::open(dir.path(), "n1").unwrap();
            assert!(snap.0.is_empty());
            let batch = [
                record(1, b"a", Some(b"1")),
                record(2, b"b", Some(b"2")),
                record(3, b"a", None),
            ];
            assert_eq!(store.commit(&batch).unwrap(), Some(PersistSeq(3)));
            assert_eq!(store.commit(&[]).unwrap(), None);
        }
        let (_store, snap) = Store::open(dir.path(), "n1").unwrap();
        assert_eq!(snap.get(b"b"), Some(&b"2"[..]));
        assert_eq!(snap.get(b"a"), None);
    }

    #[test]
    fn a_second_opener_is_refused_and_the_first_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = Store::open(dir.path(), "n1").unwrap();
        let err = Store::open(dir.path(), "n1").err().unwrap();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another hawser agent"));
        first.commit(&[record(1, b"k", Some(b"v"))]).unwrap();
    }

    #[test]
    fn another_node_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), "n1").unwrap());
        let err = Store::open(dir.path(), "n2").err().unwrap();
        assert!(err.to_string().contains("belongs to node \"n1\""), "{err}");
    }

    /// Flip every byte of `range` in a store that holds some data, and reopen it.
    fn damage(range: std::ops::Range<usize>) -> StoreError {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = Store::open(dir.path(), "n1").unwrap();
            let value = vec![7u8; 20_000];
            store.commit(&[record(1, b"k", Some(&value))]).unwrap();
        }
        let path = dir.path().join(DB_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let end = range.end.min(bytes.len());
        for b in &mut bytes[range.start..end] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bytes).unwrap();
        Store::open(dir.path(), "n1")
            .err()
            .expect("a damaged store must not open")
    }

    #[test]
    fn a_damaged_header_is_reported_as_corrupt() {
        let err = damage(0..512);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("is corrupt"), "{err}");
    }

    #[test]
    fn damaged_data_pages_are_reported_as_corrupt() {
        // Everything after the header: the checksums of the committed pages catch it.
        let err = damage(4096..usize::MAX);
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        let err = Store::open(&file, "n1").err().unwrap();
        assert!(matches!(err, StoreError::DataDir { .. }), "{err}");
        assert!(err.to_string().contains("data_dir must be a directory"));
    }
}
