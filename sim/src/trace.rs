//! The trace: a hash over everything the simulator delivered, and optionally a JSON-lines
//! log of it — and of the faults and commands that caused it — for a human to read.
//!
//! The log is written line by line as the run goes (through whatever buffered writer the
//! caller gave), into one reused buffer: its memory does not grow with the run. Nothing
//! written to it is ever read back by the run, so logging cannot change what the run
//! does or its hash. The format is documented in `scenarios/README.md`.

use std::fmt::Write as _;
use std::io::Write;

use hawser_core::{Instant, NodeId};

pub(crate) struct Trace {
    hasher: blake3::Hasher,
    log: Option<Box<dyn Write>>,
    /// The line being built (reused: a line allocates nothing once it has grown).
    line: String,
}

impl Trace {
    pub(crate) fn new() -> Trace {
        Trace {
            hasher: blake3::Hasher::new(),
            log: None,
            line: String::new(),
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

    /// Start a log line `{"t_ns":…,"event":…`; the fields follow, and the line is written
    /// when the [`Line`] is dropped. `None` when there is no log: callers build nothing.
    pub(crate) fn line(&mut self, now: Instant, event: &str) -> Option<Line<'_>> {
        self.log.as_ref()?;
        self.line.clear();
        let _ = write!(self.line, "{{\"t_ns\":{},\"event\":", now.as_nanos());
        escape_into(&mut self.line, event);
        Some(Line { trace: self })
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

/// A value of a field a driver adds to the log with
/// [`Sim::trace_note`](crate::Sim::trace_note).
#[derive(Clone, Debug, PartialEq)]
pub enum TraceField {
    /// A node, written as its name and id: `"KEY":"n3","KEY_id":"0000000000000003"`.
    Node(usize),
    Str(String),
    Num(u64),
    /// Any JSON value, written as it is.
    Json(serde_json::Value),
}

/// One log line being built; written out (with its closing brace) when dropped. A failing
/// write must not change the run, so it closes the log instead of reporting.
pub(crate) struct Line<'a> {
    trace: &'a mut Trace,
}

impl Line<'_> {
    fn key(&mut self, key: &str) {
        self.trace.line.push(',');
        escape_into(&mut self.trace.line, key);
        self.trace.line.push(':');
    }

    /// `"KEY":"n3","KEY_id":"0000000000000003"`: node `i` as the scenario names it, and
    /// its id.
    pub(crate) fn node(mut self, key: &str, i: usize) -> Self {
        self.key(key);
        let _ = write!(self.trace.line, "\"n{i}\"");
        self.trace.line.push(',');
        let _ = write!(self.trace.line, "\"{key}_id\":\"{}\"", NodeId(i as u64));
        self
    }

    /// `"KEY":["n0","n1",…]`.
    pub(crate) fn nodes(mut self, key: &str, nodes: &[usize]) -> Self {
        self.key(key);
        self.trace.line.push('[');
        for (k, i) in nodes.iter().enumerate() {
            if k > 0 {
                self.trace.line.push(',');
            }
            let _ = write!(self.trace.line, "\"n{i}\"");
        }
        self.trace.line.push(']');
        self
    }

    pub(crate) fn num(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.trace.line, "{value}");
        self
    }

    pub(crate) fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        escape_into(&mut self.trace.line, value);
        self
    }

    /// `"KEY":["…","…"]`.
    pub(crate) fn strs<S: AsRef<str>>(mut self, key: &str, values: &[S]) -> Self {
        self.key(key);
        self.trace.line.push('[');
        for (k, v) in values.iter().enumerate() {
            if k > 0 {
                self.trace.line.push(',');
            }
            escape_into(&mut self.trace.line, v.as_ref());
        }
        self.trace.line.push(']');
        self
    }

    pub(crate) fn field(self, key: &str, value: &TraceField) -> Self {
        match value {
            TraceField::Node(i) => self.node(key, *i),
            TraceField::Str(s) => self.str(key, s),
            TraceField::Num(n) => self.num(key, *n),
            TraceField::Json(v) => {
                let mut line = self;
                line.key(key);
                let _ = write!(line.trace.line, "{v}");
                line
            }
        }
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        let trace = &mut *self.trace;
        trace.line.push_str("}\n");
        if let Some(w) = &mut trace.log
            && w.write_all(trace.line.as_bytes()).is_err()
        {
            trace.log = None;
        }
    }
}

/// `s` as a JSON string, quotes included.
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_json_with_fields_in_the_order_written() {
        let out = Shared::default();
        let mut trace = Trace::new();
        assert!(
            trace.line(Instant::ZERO, "nothing").is_none(),
            "no log, no line"
        );
        trace.set_log(Box::new(out.clone()));
        let at = Instant::ZERO + hawser_core::Duration::from_millis(1500);
        trace
            .line(at, "frame")
            .expect("logging")
            .node("from", 1)
            .node("to", 12)
            .str("kind", "membership.ping")
            .num("len", 42)
            .nodes("group", &[0, 3])
            .strs("timers", &["Kv(Greet(\"x\"))\n"])
            .field("json", &TraceField::Json(serde_json::json!({"a": [1]})));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "{\"t_ns\":1500000000,\"event\":\"frame\",\"from\":\"n1\",\
             \"from_id\":\"0000000000000001\",\"to\":\"n12\",\"to_id\":\"000000000000000c\",\
             \"kind\":\"membership.ping\",\"len\":42,\"group\":[\"n0\",\"n3\"],\
             \"timers\":[\"Kv(Greet(\\\"x\\\"))\\n\"],\"json\":{\"a\":[1]}}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["timers"][0], "Kv(Greet(\"x\"))\n");
    }
}
