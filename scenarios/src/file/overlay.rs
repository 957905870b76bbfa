//! `[[overlay]]`: an overlay network every node takes part in, as the agent does with
//! its `--overlay` flag (issue 19). Its settings are the agent's, read by the agent's
//! own parser (`hawser_dataplane::overlay::Network::from_pairs`); `forget_after` is
//! the scenario's own.

use std::ops::Range;

use hawser_core::Duration;
use hawser_dataplane::overlay::{ConfigError, Network, check_all};
use toml::de::{DeTable, DeValue};

use super::reader::Reader;

/// One overlay network the runner keeps a member of on every running node.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlay {
    pub network: Network,
    /// How long a node may be unreachable before the members forget it (its slot is
    /// freed); `None`: global membership's own forget time (`[config.gm]`
    /// `forget_after_ms`).
    pub forget_after: Option<Duration>,
    /// Line of its `[[overlay]]` header.
    pub line: usize,
}

/// Reads one `[[overlay]]` table whose header is at `span`: every key but
/// `forget_after` is a network setting, its value a string or a whole number.
pub(super) fn read_overlay(
    r: &mut Reader<'_>,
    table: &DeTable<'_>,
    span: Range<usize>,
) -> Option<Overlay> {
    let line = r.problems.line_of(span.start);
    let forget_after = r.optional(table, "forget_after", Reader::time_at_least_1ms);
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in table.iter() {
        let key = key.get_ref().as_ref();
        if key == "forget_after" {
            continue;
        }
        let text = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => n.to_string(),
                Err(_) => i.as_str().to_owned(),
            },
            other => {
                r.problems.at(
                    value.span(),
                    format!(
                        "overlay setting {key:?} must be a string or a whole number, not {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        pairs.push((key.to_owned(), text));
    }
    let parsed = Network::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    match parsed {
        Ok(network) => Some(Overlay {
            network,
            forget_after,
            line,
        }),
        Err(e) => {
            let also = match e {
                ConfigError::UnknownField(_) => " (or forget_after, the scenario's own)",
                _ => "",
            };
            r.problems.at(span, format!("[[overlay]]: {e}{also}"));
            None
        }
    }
}

/// Several networks must be able to live on one node, as the agent requires.
pub(super) fn check_together(r: &mut Reader<'_>, overlays: &[Overlay], span: Range<usize>) {
    let networks: Vec<Network> = overlays.iter().map(|o| o.network.clone()).collect();
    if let Err(e) = check_all(&networks) {
        r.problems.at(span, format!("[[overlay]]: {e}"));
    }
}
