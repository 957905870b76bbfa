//! The trace: a hash over everything the simulator delivered, and optionally a JSON-lines
//! log of it. Two runs with the same hash did the same thing, event for event.

use std::io::Write;

use hawser_core::Instant;

pub(crate) struct Trace {
    hasher: blake3::Hasher,
    log: Option<Box<dyn Write>>,
}

impl Trace {
    pub(crate) fn new() -> Trace {
        Trace {
            hasher: blake3::Hasher::new(),
            log: None,
        }
    }

    pub(crate) fn set_log(&mut self, log: Box<dyn Write>) {
        self.log = Some(log);
    }

    pub(crate) fn logging(&self) -> bool {
        self.log.is_some()
    }

    /// Fold one event into the hash.
    pub(crate) fn record(&mut self, now: Instant, node: usize, tag: u8, data: &[u8]) {
        self.hasher.update(&now.as_nanos().to_le_bytes());
        self.hasher.update(&(node as u64).to_le_bytes());
        self.hasher.update(&[tag]);
        self.hasher.update(&(data.len() as u64).to_le_bytes());
        self.hasher.update(data);
    }

    /// Write one JSON line to the log, if there is one. A failing log write must not
    /// change the run, so errors are dropped here and the log is closed.
    pub(crate) fn log(&mut self, line: &serde_json::Value) {
        if let Some(w) = &mut self.log
            && writeln!(w, "{line}").is_err()
        {
            self.log = None;
        }
    }

    pub(crate) fn flush(&mut self) {
        if let Some(w) = &mut self.log {
            let _ = w.flush();
        }
    }

    /// The first 16 hex digits of the BLAKE3 hash so far.
    pub(crate) fn hash(&self) -> String {
        self.hasher.finalize().to_hex()[..16].to_string()
    }
}
