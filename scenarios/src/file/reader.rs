//! Typed reads from the spanned TOML tree.
//!
//! The file is parsed into `toml::de::DeTable`, which keeps the byte span of every key
//! and value, and read by hand rather than through `#[derive(Deserialize)]`: that is what
//! lets every message point at the exact value at fault and list the valid choices for
//! the table it sits in (which depend on the step's `action` or the expectation's `kind`,
//! something serde's `deny_unknown_fields` cannot express).
//!
//! Every read that fails records a [`Problem`](super::Problem) and returns `None`, and
//! the caller carries on, so one run reports every mistake in the file. Invariant: a read
//! returns `None` only after recording a problem (or for an absent optional key).

use std::ops::Range;

use hawser_core::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration::{parse_duration, parse_latency};
use super::error::Problems;
use super::selector::Selector;

pub(super) type Value<'i> = Spanned<DeValue<'i>>;

pub(super) struct Reader<'t> {
    pub(super) problems: Problems<'t>,
    /// The scenario's node count once known, to check selectors against.
    pub(super) nodes: Option<usize>,
    /// The scenario's duration once known, to check the moments steps and expectations
    /// name against.
    pub(super) duration: Option<Duration>,
}

impl<'t> Reader<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Reader {
            problems: Problems::new(text),
            nodes: None,
            duration: None,
        }
    }

    /// Reports every key of `table` not in `allowed`, naming the valid ones. `place`
    /// completes "unknown key "x" ..." (e.g. `in [network]`, `for action "heal"`).
    pub(super) fn only_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], place: &str) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let valid = if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                };
                self.problems.at(
                    key.span(),
                    format!(
                        "unknown key {:?} {place}; valid keys: {valid}",
                        key.get_ref()
                    ),
                );
            }
        }
    }

    /// Reads an optional key: `None` if absent (or invalid, which is recorded).
    pub(super) fn optional<'v, 'i, T>(
        &mut self,
        table: &'v DeTable<'i>,
        key: &str,
        read: impl FnOnce(&mut Self, &'v Value<'i>, &str) -> Option<T>,
    ) -> Option<T> {
        let value = table.get(key)?;
        read(self, value, key)
    }

    /// Reads a key that must be present; `span` and `what` say where it was missing.
    pub(super) fn required<'v, 'i, T>(
        &mut self,
        table: &'v DeTable<'i>,
        span: Range<usize>,
        what: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &'v Value<'i>, &str) -> Option<T>,
    ) -> Option<T> {
        match table.get(key) {
            Some(value) => read(self, value, key),
            None => {
                self.problems
                    .at(span, format!("{what} is missing the required key {key:?}"));
                None
            }
        }
    }

    fn wrong_type(&mut self, value: &Value<'_>, key: &str, expected: &str) {
        let found = value.get_ref().type_str();
        let article = if found.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        self.problems.at(
            value.span(),
            format!("{key:?} must be {expected}, not {article} {found}"),
        );
    }

    pub(super) fn string<'v>(&mut self, value: &'v Value<'_>, key: &str) -> Option<&'v str> {
        let text = value.get_ref().as_str();
        if text.is_none() {
            self.wrong_type(value, key, "a string");
        }
        text
    }

    /// A string that must not be empty (names, keys, topics).
    pub(super) fn name(&mut self, value: &Value<'_>, key: &str) -> Option<String> {
        let text = self.string(value, key)?;
        if text.is_empty() {
            self.problems
                .at(value.span(), format!("{key:?} must not be empty"));
            return None;
        }
        Some(text.to_owned())
    }

    pub(super) fn time(&mut self, value: &Value<'_>, key: &str) -> Option<Duration> {
        let text = self.string(value, key)?;
        parse_duration(text)
            .map_err(|e| self.problems.at(value.span(), format!("{key:?}: {e}")))
            .ok()
    }

    /// A time of at least 1 ms: a period or a timeout, where zero would mean "never" or
    /// "always" rather than anything a scenario can mean.
    pub(super) fn time_at_least_1ms(&mut self, value: &Value<'_>, key: &str) -> Option<Duration> {
        let t = self.time(value, key)?;
        if t < Duration::from_millis(1) {
            self.problems
                .at(value.span(), format!("{key:?} must be at least 1ms"));
            return None;
        }
        Some(t)
    }

    /// A moment of the run (a step's `at`, an expectation's `after`): a time that must
    /// not lie beyond the scenario's `duration`.
    pub(super) fn moment(&mut self, value: &Value<'_>, key: &str) -> Option<Duration> {
        let t = self.time(value, key)?;
        self.check_moment(value.span(), key, t)
    }

    /// Checks that `t`, computed from the value at `span`, lies within the run.
    pub(super) fn check_moment(
        &mut self,
        span: Range<usize>,
        key: &str,
        t: Duration,
    ) -> Option<Duration> {
        match self.duration {
            Some(end) if t > end => {
                self.problems.at(
                    span,
                    format!("{key:?} is {t}, beyond the scenario's duration of {end}"),
                );
                None
            }
            _ => Some(t),
        }
    }

    pub(super) fn latency(&mut self, value: &Value<'_>, key: &str) -> Option<(Duration, Duration)> {
        let text = self.string(value, key)?;
        parse_latency(text)
            .map_err(|e| self.problems.at(value.span(), format!("{key:?}: {e}")))
            .ok()
    }

    pub(super) fn boolean(&mut self, value: &Value<'_>, key: &str) -> Option<bool> {
        let b = value.get_ref().as_bool();
        if b.is_none() {
            self.wrong_type(value, key, "true or false");
        }
        b
    }

    /// A whole number in `min..=max`.
    pub(super) fn integer(
        &mut self,
        value: &Value<'_>,
        key: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        self.whole(value, key, min.into(), max.into())
            .map(|n| n as u64)
    }

    /// A whole number in `min..=max` that may be negative.
    pub(super) fn signed(
        &mut self,
        value: &Value<'_>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        self.whole(value, key, min.into(), max.into())
            .map(|n| n as i64)
    }

    fn whole(&mut self, value: &Value<'_>, key: &str, min: i128, max: i128) -> Option<i128> {
        let expected = format!("a whole number from {min} to {max}");
        let Some(int) = value.get_ref().as_integer() else {
            self.wrong_type(value, key, &expected);
            return None;
        };
        match i128::from_str_radix(int.as_str(), int.radix()) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problems.at(
                    value.span(),
                    format!("{key:?} must be {expected}, not {int}"),
                );
                None
            }
        }
    }

    /// A count of things, as `usize`, in `min..=max`.
    pub(super) fn count(
        &mut self,
        value: &Value<'_>,
        key: &str,
        min: usize,
        max: usize,
    ) -> Option<usize> {
        self.integer(value, key, min as u64, max as u64)
            .map(|n| n as usize)
    }

    /// A fraction in `(0, 1]`; `1` may be written as an integer.
    pub(super) fn fraction(&mut self, value: &Value<'_>, key: &str) -> Option<f64> {
        let parsed = match value.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|i| i as f64),
            _ => {
                self.wrong_type(value, key, "a number");
                return None;
            }
        };
        match parsed {
            Some(f) if f > 0.0 && f <= 1.0 => Some(f),
            _ => {
                self.problems.at(
                    value.span(),
                    format!("{key:?} must be a fraction above 0 and at most 1 (e.g. 0.9)"),
                );
                None
            }
        }
    }

    /// A string holding JSON text: the text as written, once it is known to parse.
    pub(super) fn json(
        &mut self,
        value: &Value<'_>,
        key: &str,
    ) -> Option<(String, serde_json::Value)> {
        let text = self.string(value, key)?;
        match serde_json::from_str(text) {
            Ok(json) => Some((text.to_owned(), json)),
            Err(e) => {
                self.problems
                    .at(value.span(), format!("{key:?} must hold JSON text: {e}"));
                None
            }
        }
    }

    /// A node selector, checked against the node count when that is known.
    pub(super) fn selector(&mut self, value: &Value<'_>, key: &str) -> Option<Selector> {
        let parsed = match value.get_ref() {
            DeValue::String(text) => Selector::parse(text),
            DeValue::Array(entries) => {
                let mut names = Vec::with_capacity(entries.len());
                for entry in entries.iter() {
                    match entry.get_ref().as_str() {
                        Some(name) => names.push(name),
                        None => {
                            self.wrong_type(entry, key, "a list of node names such as \"n3\"");
                            return None;
                        }
                    }
                }
                Selector::parse_list(names)
            }
            _ => {
                self.wrong_type(
                    value,
                    key,
                    "a node selector (a string or a list of node names)",
                );
                return None;
            }
        };
        let checked = parsed.and_then(|s| match self.nodes {
            Some(nodes) => s.check(nodes).map(|()| s),
            None => Ok(s),
        });
        checked
            .map_err(|e| self.problems.at(value.span(), format!("{key:?}: {e}")))
            .ok()
    }

    /// A list of selectors (`partition`'s `groups`).
    pub(super) fn selectors(&mut self, value: &Value<'_>, key: &str) -> Option<Vec<Selector>> {
        let Some(groups) = value.get_ref().as_array() else {
            self.wrong_type(
                value,
                key,
                "a list of node selectors, e.g. [[\"n0\", \"n1\"], \"n2..n5\"]",
            );
            return None;
        };
        let read: Vec<_> = groups.iter().map(|g| self.selector(g, key)).collect();
        read.into_iter().collect()
    }

    pub(super) fn table<'v, 'i>(
        &mut self,
        value: &'v Value<'i>,
        key: &str,
    ) -> Option<&'v DeTable<'i>> {
        let table = value.get_ref().as_table();
        if table.is_none() {
            self.wrong_type(value, key, &format!("a table ([{key}])"));
        }
        table
    }

    /// An array of tables (`[[step]]`), each with its span (the `[[step]]` header).
    pub(super) fn tables<'v, 'i>(
        &mut self,
        value: &'v Value<'i>,
        key: &str,
    ) -> Vec<(&'v DeTable<'i>, Range<usize>)> {
        let expected = format!("a list of tables ([[{key}]] sections)");
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(value, key, &expected);
            return Vec::new();
        };
        let mut tables = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref().as_table() {
                Some(table) => tables.push((table, item.span())),
                None => self.wrong_type(item, key, &expected),
            }
        }
        tables
    }
}
