//! Reading a trace log back (`hawser sim trace`): the lines that match a filter, read and
//! written one at a time, so a log of any size is filtered in constant memory.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, Read, Write};

use serde::Deserialize;

/// The longest line read; a longer one is an error, not an allocation without end. (The
/// simulator's longest lines, a 10,000-node partition's, are about 100 kB.)
pub const MAX_LINE: usize = 16 << 20;

/// What lines to keep; `None` keeps all.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Lines about this node: it is the line's `node`, `peer`, `from` or `to`, named
    /// (`n3`) or by id (16 hex digits). Lines about the whole network (`partition`,
    /// `oneway`, `heal`) name no node and are kept.
    pub node: Option<String>,
    /// Lines whose `kind` (a frame's message kind) matches, or that have none and whose
    /// `event` matches.
    pub kind: Option<Glob>,
    /// Lines whose `event` matches.
    pub event: Option<Glob>,
    /// Lines at or after this virtual time (ns).
    pub from_ns: Option<u64>,
    /// Lines at or before this virtual time (ns).
    pub to_ns: Option<u64>,
}

/// A pattern where `*` stands for any run of characters (none included) and every other
/// character for itself: `kv.*`, `*.ping`, `close`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.to_owned())
    }

    pub fn matches(&self, text: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or("");
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let mut parts: Vec<&str> = parts.collect();
        let Some(last) = parts.pop() else {
            return rest.is_empty(); // no `*`: the whole text
        };
        for part in parts {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// The fields of a line a filter looks at (the others are skipped unread).
#[derive(Deserialize)]
struct Head<'a> {
    t_ns: u64,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    node: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    node_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    peer: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    peer_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    from_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    to_id: Option<Cow<'a, str>>,
}

impl Filter {
    fn keeps(&self, head: &Head) -> bool {
        if self.from_ns.is_some_and(|t| head.t_ns < t) || self.to_ns.is_some_and(|t| head.t_ns > t)
        {
            return false;
        }
        if let Some(g) = &self.event
            && !g.matches(&head.event)
        {
            return false;
        }
        if let Some(g) = &self.kind
            && !g.matches(head.kind.as_deref().unwrap_or(&head.event))
        {
            return false;
        }
        let Some(node) = &self.node else { return true };
        let named = [
            &head.node,
            &head.node_id,
            &head.peer,
            &head.peer_id,
            &head.from,
            &head.from_id,
            &head.to,
            &head.to_id,
        ];
        named.iter().all(|f| f.is_none()) || named.iter().any(|f| f.as_deref() == Some(node))
    }
}

/// Why a trace file could not be filtered. `line` counts from 1.
#[derive(Debug)]
pub enum TraceFileError {
    Read {
        line: u64,
        error: std::io::Error,
    },
    TooLong {
        line: u64,
    },
    /// Not a JSON object with a numeric `t_ns` and a string `event`.
    NotATraceLine {
        line: u64,
        error: serde_json::Error,
    },
    Write(std::io::Error),
}

impl fmt::Display for TraceFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceFileError::Read { line, error } => write!(f, "line {line}: cannot read: {error}"),
            TraceFileError::TooLong { line } => {
                write!(
                    f,
                    "line {line}: longer than {MAX_LINE} bytes: not a trace line"
                )
            }
            TraceFileError::NotATraceLine { line, error } => write!(
                f,
                "line {line}: not a trace line (a JSON object with \"t_ns\" and \"event\"): \
                 {error}"
            ),
            TraceFileError::Write(error) => write!(f, "cannot write: {error}"),
        }
    }
}

impl std::error::Error for TraceFileError {}

/// Copy the lines of `input` that `filter` keeps to `output`, as they are; returns how
/// many. Every line is checked, kept or not: a damaged file is an error wherever it is.
/// Blank lines are skipped.
pub fn filter(
    mut input: impl BufRead,
    mut output: impl Write,
    filter: &Filter,
) -> Result<u64, TraceFileError> {
    let mut buf = Vec::new();
    let (mut line, mut kept) = (0u64, 0u64);
    loop {
        buf.clear();
        line += 1;
        let read = input
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|error| TraceFileError::Read { line, error })?;
        if read == 0 {
            return Ok(kept);
        }
        if buf.len() > MAX_LINE {
            return Err(TraceFileError::TooLong { line });
        }
        let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let head: Head = serde_json::from_slice(text)
            .map_err(|error| TraceFileError::NotATraceLine { line, error })?;
        if filter.keeps(&head) {
            output
                .write_all(text)
                .and_then(|()| output.write_all(b"\n"))
                .map_err(TraceFileError::Write)?;
            kept += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        let g = Glob::new;
        assert!(g("kv.*").matches("kv.delta"));
        assert!(g("kv.*").matches("kv."));
        assert!(!g("kv.*").matches("gm.have"));
        assert!(g("*.ping").matches("membership.ping"));
        assert!(!g("*.ping").matches("membership.pong"));
        assert!(g("close").matches("close"));
        assert!(!g("close").matches("closed"));
        assert!(g("m*p*g").matches("membership.ping"));
        assert!(!g("a*a").matches("a"));
        assert!(g("*").matches(""));
    }

    const LOG: &str = r#"{"t_ns":1000,"event":"start","node":"n0","node_id":"0000000000000000","epoch":1}
{"t_ns":2000000000,"event":"frame","from":"n1","from_id":"0000000000000001","to":"n3","to_id":"0000000000000003","conn":7,"kind":"membership.ping","len":60}

{"t_ns":3000000000,"event":"partition","groups":[["n0"],["n1","n3"]]}
{"t_ns":4000000000,"event":"kv.op","node":"n3","node_id":"0000000000000003","key":"k","op":{},"ticket":"x"}
{"t_ns":5000000000,"event":"frame","from":"n3","from_id":"0000000000000003","to":"n0","to_id":"0000000000000000","conn":8,"kind":"kv.delta","len":99}
"#;

    fn run(f: Filter) -> Vec<u64> {
        let mut out = Vec::new();
        let n = filter(LOG.as_bytes(), &mut out, &f).unwrap();
        let times: Vec<u64> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["t_ns"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(times.len() as u64, n);
        times
    }

    #[test]
    fn filters_by_node_kind_event_and_time() {
        assert_eq!(run(Filter::default()).len(), 5);
        let node = |n: &str| Filter {
            node: Some(n.into()),
            ..Filter::default()
        };
        assert_eq!(
            run(node("n3")),
            [2000000000, 3000000000, 4000000000, 5000000000]
        );
        assert_eq!(run(node("0000000000000001")), [2000000000, 3000000000]);
        let kind = Filter {
            kind: Some(Glob::new("kv.*")),
            ..Filter::default()
        };
        assert_eq!(run(kind), [4000000000, 5000000000]);
        let event = Filter {
            event: Some(Glob::new("frame")),
            to_ns: Some(4000000000),
            ..Filter::default()
        };
        assert_eq!(run(event), [2000000000]);
        let window = Filter {
            from_ns: Some(2000000000),
            to_ns: Some(3000000000),
            ..Filter::default()
        };
        assert_eq!(run(window), [2000000000, 3000000000]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let bad = "{\"t_ns\":1,\"event\":\"start\"}\n{\"t_ns\":\"soon\",\"event\":\"x\"}\n";
        let e = filter(bad.as_bytes(), std::io::sink(), &Filter::default()).unwrap_err();
        assert!(
            matches!(e, TraceFileError::NotATraceLine { line: 2, .. }),
            "{e}"
        );
        let e = filter("not json\n".as_bytes(), std::io::sink(), &Filter::default()).unwrap_err();
        assert!(e.to_string().starts_with("line 1: not a trace line"), "{e}");
        let long = format!("{{\"t_ns\":1,\"event\":\"{}\"}}\n", "x".repeat(MAX_LINE));
        let e = filter(long.as_bytes(), std::io::sink(), &Filter::default()).unwrap_err();
        assert!(matches!(e, TraceFileError::TooLong { line: 1 }), "{e}");
    }
}
