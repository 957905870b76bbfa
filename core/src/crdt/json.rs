//! The JSON form of ops: a parser that is total (any input gives an op or a located, typed
//! error; it never panics and recursion is bounded by [`MAX_DEPTH`]) and the inverse
//! rendering, so `parse(render(op)) == op`.
//!
//! Grammar (every object must have exactly the keys shown; `?` marks an optional key):
//! - map op: `{"update": [FIELD_OP, ...]}` (non-empty)
//! - field op: `{"field": NAME, "type": TYPE, "op": OP}` or
//!   `{"remove": {"field": NAME, "type": TYPE}}`, TYPE one of `counter`, `set`,
//!   `register`, `flag`, `map`, and OP of that type:
//! - counter: `{"increment": N}` or `{"decrement": N}`, N an integer in 1..=2^64-1
//! - set: `{"add": S}`, `{"add_all": [S, ...]}`, `{"remove": S}`, `{"remove_all": [S, ...]}`
//! - register: `{"assign": S, "timestamp"?: T}`, T an integer in 0..=2^64-1
//! - flag: `"enable"` or `"disable"`
//! - map: a map op.

use core::fmt;
use std::num::NonZeroU64;

use serde_json::{Map as JsonObject, Value};

use super::{
    CounterOp, FieldKey, FieldOp, FieldType, FlagOp, MAX_DEPTH, MapOp, RegisterOp, SetOp, TypedOp,
};

/// Where parsing failed (a JSON Pointer into the input, `""` for the root) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub at: String,
    pub kind: ParseErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not JSON at all (serde_json's message).
    Syntax(String),
    /// The value has the wrong JSON shape; says what was expected.
    Expected(&'static str),
    /// A key this object may not have.
    UnknownKey(String),
    MissingKey(&'static str),
    /// `type` is not one of the five field types.
    UnknownType(String),
    /// An op that does not exist for the field's type (e.g. `add` on a counter).
    WrongOpForType {
        kind: FieldType,
        op: String,
    },
    /// A counter amount that is not an integer in 1..=2^64-1.
    BadAmount,
    /// A timestamp that is not an integer in 0..=2^64-1.
    BadTimestamp,
    /// An empty `update`, `add_all` or `remove_all` list.
    Empty,
    /// Maps nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.at.is_empty() { "/" } else { &self.at };
        write!(f, "invalid op at {at}: ")?;
        match &self.kind {
            ParseErrorKind::Syntax(m) => write!(f, "not JSON: {m}"),
            ParseErrorKind::Expected(what) => write!(f, "expected {what}"),
            ParseErrorKind::UnknownKey(k) => write!(f, "unexpected key {k:?}"),
            ParseErrorKind::MissingKey(k) => write!(f, "missing key {k:?}"),
            ParseErrorKind::UnknownType(t) => write!(
                f,
                "unknown field type {t:?} (expected counter, set, register, flag or map)"
            ),
            ParseErrorKind::WrongOpForType { kind, op } => {
                write!(f, "{op:?} is not an op on a {kind}")
            }
            ParseErrorKind::BadAmount => f.write_str("amount must be an integer from 1 to 2^64-1"),
            ParseErrorKind::BadTimestamp => {
                f.write_str("timestamp must be an integer from 0 to 2^64-1")
            }
            ParseErrorKind::Empty => f.write_str("list must not be empty"),
            ParseErrorKind::TooDeep => write!(f, "maps nested deeper than {MAX_DEPTH}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A JSON Pointer being built while descending (`/update/0/op`).
struct At<'a> {
    parent: Option<&'a At<'a>>,
    token: Token<'a>,
}

#[derive(Clone, Copy)]
enum Token<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    fn root() -> At<'static> {
        At {
            parent: None,
            token: Token::Root,
        }
    }

    fn key(&'a self, k: &'a str) -> At<'a> {
        At {
            parent: Some(self),
            token: Token::Key(k),
        }
    }

    fn index(&'a self, i: usize) -> At<'a> {
        At {
            parent: Some(self),
            token: Token::Index(i),
        }
    }

    fn render(&self, out: &mut String) {
        if let Some(p) = self.parent {
            p.render(out);
        }
        match self.token {
            Token::Root => {}
            Token::Key(k) => {
                out.push('/');
                out.push_str(&k.replace('~', "~0").replace('/', "~1"));
            }
            Token::Index(i) => {
                out.push('/');
                out.push_str(&i.to_string());
            }
        }
    }

    fn err(&self, kind: ParseErrorKind) -> ParseError {
        let mut at = String::new();
        self.render(&mut at);
        ParseError { at, kind }
    }
}

fn object<'v>(
    v: &'v Value,
    at: &At<'_>,
    what: &'static str,
) -> Result<&'v JsonObject<String, Value>, ParseError> {
    v.as_object()
        .ok_or_else(|| at.err(ParseErrorKind::Expected(what)))
}

/// Every key of `obj` must be in `allowed`; reports the first other one (in key order).
fn only_keys(
    obj: &JsonObject<String, Value>,
    allowed: &[&str],
    at: &At<'_>,
) -> Result<(), ParseError> {
    let mut extra: Vec<&String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    extra.sort();
    match extra.first() {
        Some(k) => Err(at.err(ParseErrorKind::UnknownKey((*k).clone()))),
        None => Ok(()),
    }
}

fn required<'v>(
    obj: &'v JsonObject<String, Value>,
    key: &'static str,
    at: &At<'_>,
) -> Result<&'v Value, ParseError> {
    obj.get(key)
        .ok_or_else(|| at.err(ParseErrorKind::MissingKey(key)))
}

fn string(v: &Value, at: &At<'_>) -> Result<String, ParseError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| at.err(ParseErrorKind::Expected("a string")))
}

fn strings(v: &Value, at: &At<'_>) -> Result<Vec<String>, ParseError> {
    let items = v
        .as_array()
        .ok_or_else(|| at.err(ParseErrorKind::Expected("an array of strings")))?;
    if items.is_empty() {
        return Err(at.err(ParseErrorKind::Empty));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string(item, &at.index(i)))
        .collect()
}

/// The single key of an op object like `{"increment": 5}`, and its value.
fn single<'v>(
    v: &'v Value,
    at: &At<'_>,
    what: &'static str,
) -> Result<(&'v str, &'v Value), ParseError> {
    let obj = object(v, at, what)?;
    let mut entries = obj.iter();
    match (entries.next(), entries.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => Err(at.err(ParseErrorKind::Expected(what))),
    }
}

impl MapOp {
    /// Parse an op from JSON text.
    pub fn from_json_str(text: &str) -> Result<MapOp, ParseError> {
        MapOp::from_json_slice(text.as_bytes())
    }

    /// Parse an op from bytes (invalid UTF-8 is a syntax error): the fuzzing entry point.
    /// serde_json bounds nesting at 128 levels, so hostile input cannot exhaust the stack.
    pub fn from_json_slice(bytes: &[u8]) -> Result<MapOp, ParseError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| ParseError {
            at: String::new(),
            kind: ParseErrorKind::Syntax(e.to_string()),
        })?;
        MapOp::from_json(&v)
    }

    pub fn from_json(v: &Value) -> Result<MapOp, ParseError> {
        parse_map_op(v, &At::root(), 0)
    }

    pub fn to_json(&self) -> Value {
        let MapOp::Update(ops) = self;
        let ops = ops
            .iter()
            .map(|op| match op {
                FieldOp::Update { name, op } => serde_json::json!({
                    "field": name,
                    "type": op.kind().as_str(),
                    "op": op.to_json(),
                }),
                FieldOp::Remove(key) => serde_json::json!({
                    "remove": {"field": key.name, "type": key.kind.as_str()}
                }),
            })
            .collect();
        serde_json::json!({ "update": Value::Array(ops) })
    }
}

fn parse_map_op(v: &Value, at: &At<'_>, depth: usize) -> Result<MapOp, ParseError> {
    const WHAT: &str = "a map op {\"update\": [...]}";
    if depth > MAX_DEPTH {
        return Err(at.err(ParseErrorKind::TooDeep));
    }
    let obj = object(v, at, WHAT)?;
    only_keys(obj, &["update"], at)?;
    let at = at.key("update");
    let list = required(obj, "update", &at)?
        .as_array()
        .ok_or_else(|| at.err(ParseErrorKind::Expected("an array of field ops")))?;
    if list.is_empty() {
        return Err(at.err(ParseErrorKind::Empty));
    }
    let ops = list
        .iter()
        .enumerate()
        .map(|(i, item)| parse_field_op(item, &at.index(i), depth))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MapOp::Update(ops))
}

fn parse_field_key(obj: &JsonObject<String, Value>, at: &At<'_>) -> Result<FieldKey, ParseError> {
    let name = string(required(obj, "field", at)?, &at.key("field"))?;
    let at_type = at.key("type");
    let kind_name = string(required(obj, "type", at)?, &at_type)?;
    let kind = FieldType::from_name(&kind_name)
        .ok_or_else(|| at_type.err(ParseErrorKind::UnknownType(kind_name)))?;
    Ok(FieldKey { name, kind })
}

fn parse_field_op(v: &Value, at: &At<'_>, depth: usize) -> Result<FieldOp, ParseError> {
    const WHAT: &str =
        "a field op {\"field\", \"type\", \"op\"} or {\"remove\": {\"field\", \"type\"}}";
    let obj = object(v, at, WHAT)?;
    if obj.contains_key("remove") {
        only_keys(obj, &["remove"], at)?;
        let at = at.key("remove");
        let inner = object(&obj["remove"], &at, "{\"field\": NAME, \"type\": TYPE}")?;
        only_keys(inner, &["field", "type"], &at)?;
        return Ok(FieldOp::Remove(parse_field_key(inner, &at)?));
    }
    only_keys(obj, &["field", "type", "op"], at)?;
    let key = parse_field_key(obj, at)?;
    let at_op = at.key("op");
    let op_json = required(obj, "op", at)?;
    let op = match key.kind {
        FieldType::Counter => TypedOp::Counter(parse_counter_op(op_json, &at_op)?),
        FieldType::Set => TypedOp::Set(parse_set_op(op_json, &at_op)?),
        FieldType::Register => TypedOp::Register(parse_register_op(op_json, &at_op)?),
        FieldType::Flag => TypedOp::Flag(parse_flag_op(op_json, &at_op)?),
        FieldType::Map => TypedOp::Map(parse_map_op(op_json, &at_op, depth + 1)?),
    };
    Ok(FieldOp::Update { name: key.name, op })
}

fn wrong_op(kind: FieldType, op: &str, at: &At<'_>) -> ParseError {
    at.err(ParseErrorKind::WrongOpForType {
        kind,
        op: op.to_owned(),
    })
}

fn parse_counter_op(v: &Value, at: &At<'_>) -> Result<CounterOp, ParseError> {
    let (name, arg) = single(
        v,
        at,
        "a counter op {\"increment\": N} or {\"decrement\": N}",
    )?;
    let amount = || {
        arg.as_u64()
            .and_then(NonZeroU64::new)
            .ok_or_else(|| at.key(name).err(ParseErrorKind::BadAmount))
    };
    match name {
        "increment" => Ok(CounterOp::Increment(amount()?)),
        "decrement" => Ok(CounterOp::Decrement(amount()?)),
        other => Err(wrong_op(FieldType::Counter, other, at)),
    }
}

fn parse_set_op(v: &Value, at: &At<'_>) -> Result<SetOp, ParseError> {
    let (name, arg) = single(
        v,
        at,
        "a set op {\"add\" | \"add_all\" | \"remove\" | \"remove_all\": ...}",
    )?;
    let at_arg = at.key(name);
    match name {
        "add" => Ok(SetOp::Add(string(arg, &at_arg)?)),
        "add_all" => Ok(SetOp::AddAll(strings(arg, &at_arg)?)),
        "remove" => Ok(SetOp::Remove(string(arg, &at_arg)?)),
        "remove_all" => Ok(SetOp::RemoveAll(strings(arg, &at_arg)?)),
        other => Err(wrong_op(FieldType::Set, other, at)),
    }
}

fn parse_register_op(v: &Value, at: &At<'_>) -> Result<RegisterOp, ParseError> {
    let obj = object(v, at, "a register op {\"assign\": S, \"timestamp\"?: T}")?;
    if !obj.contains_key("assign") {
        return match obj.keys().min() {
            Some(k) if k != "timestamp" => Err(wrong_op(FieldType::Register, k, at)),
            _ => Err(at.err(ParseErrorKind::MissingKey("assign"))),
        };
    }
    only_keys(obj, &["assign", "timestamp"], at)?;
    let value = string(&obj["assign"], &at.key("assign"))?;
    let timestamp = match obj.get("timestamp") {
        None => None,
        Some(t) => Some(
            t.as_u64()
                .ok_or_else(|| at.key("timestamp").err(ParseErrorKind::BadTimestamp))?,
        ),
    };
    Ok(RegisterOp::Assign { value, timestamp })
}

fn parse_flag_op(v: &Value, at: &At<'_>) -> Result<FlagOp, ParseError> {
    match v.as_str() {
        Some("enable") => Ok(FlagOp::Enable),
        Some("disable") => Ok(FlagOp::Disable),
        Some(other) => Err(wrong_op(FieldType::Flag, other, at)),
        None => Err(at.err(ParseErrorKind::Expected(
            "a flag op \"enable\" or \"disable\"",
        ))),
    }
}

impl TypedOp {
    pub fn to_json(&self) -> Value {
        match self {
            TypedOp::Counter(op) => op.to_json(),
            TypedOp::Set(op) => op.to_json(),
            TypedOp::Register(op) => op.to_json(),
            TypedOp::Flag(op) => op.to_json(),
            TypedOp::Map(op) => op.to_json(),
        }
    }
}

impl CounterOp {
    pub fn from_json(v: &Value) -> Result<CounterOp, ParseError> {
        parse_counter_op(v, &At::root())
    }

    pub fn to_json(&self) -> Value {
        match self {
            CounterOp::Increment(n) => serde_json::json!({ "increment": n.get() }),
            CounterOp::Decrement(n) => serde_json::json!({ "decrement": n.get() }),
        }
    }
}

impl SetOp {
    pub fn from_json(v: &Value) -> Result<SetOp, ParseError> {
        parse_set_op(v, &At::root())
    }

    pub fn to_json(&self) -> Value {
        match self {
            SetOp::Add(e) => serde_json::json!({ "add": e }),
            SetOp::AddAll(es) => serde_json::json!({ "add_all": es }),
            SetOp::Remove(e) => serde_json::json!({ "remove": e }),
            SetOp::RemoveAll(es) => serde_json::json!({ "remove_all": es }),
        }
    }
}

impl RegisterOp {
    pub fn from_json(v: &Value) -> Result<RegisterOp, ParseError> {
        parse_register_op(v, &At::root())
    }

    pub fn to_json(&self) -> Value {
        let RegisterOp::Assign { value, timestamp } = self;
        match timestamp {
            Some(t) => serde_json::json!({ "assign": value, "timestamp": t }),
            None => serde_json::json!({ "assign": value }),
        }
    }
}

impl FlagOp {
    pub fn from_json(v: &Value) -> Result<FlagOp, ParseError> {
        parse_flag_op(v, &At::root())
    }

    pub fn to_json(&self) -> Value {
        Value::String(
            match self {
                FlagOp::Enable => "enable",
                FlagOp::Disable => "disable",
            }
            .to_owned(),
        )
    }
}
