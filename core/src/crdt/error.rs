//! Why an op was refused. Errors are values: applying an op never panics, and a refused op
//! leaves the replica exactly as it was (the whole op, not just the failing part).

use core::fmt;

use super::map::FieldKey;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The op is well formed but does not fit the current state (riak_dt's `precondition`).
    Precondition(Precondition),
    /// An op with nothing in it: a map update with no field ops, `add_all` / `remove_all`
    /// with no elements. Refused rather than spending a dot on nothing.
    EmptyOp,
    /// A counter contribution would pass `u64::MAX` for one actor.
    Overflow,
    /// Maps nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH); bounds recursion on
    /// hostile input.
    TooDeep,
    /// This actor has issued `u64::MAX` dots; it needs a new incarnation.
    DotsExhausted,
}

/// A state the op expected and did not find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Removing a set element or a map field that is not there.
    NotPresent(Absent),
}

/// What was missing, and where: `path` leads through map fields from the top; `element` is
/// the set element when a set removal failed (then `path` ends at the set's field), `None`
/// when the last field of `path` itself was missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Absent {
    pub path: Vec<FieldKey>,
    pub element: Option<String>,
}

impl fmt::Display for Absent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self
            .path
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join("/");
        match (&self.element, path.is_empty()) {
            (Some(e), true) => write!(f, "element {e:?} is not in the set"),
            (Some(e), false) => write!(f, "element {e:?} is not in set {path}"),
            (None, _) => write!(f, "field {path} is not in the map"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Precondition(Precondition::NotPresent(absent)) => {
                write!(f, "precondition failed: {absent}")
            }
            Error::EmptyOp => f.write_str("the op contains nothing to do"),
            Error::Overflow => f.write_str("counter overflow"),
            Error::TooDeep => write!(f, "maps nested deeper than {}", super::MAX_DEPTH),
            Error::DotsExhausted => {
                f.write_str("actor has no dots left; restart it as a new incarnation")
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    pub(crate) fn not_present(path: &[FieldKey], element: Option<&str>) -> Error {
        Error::Precondition(Precondition::NotPresent(Absent {
            path: path.to_vec(),
            element: element.map(str::to_owned),
        }))
    }
}
