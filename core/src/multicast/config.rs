//! Multicast's knobs, with documented defaults; [`MulticastConfig::validate`] names the
//! first bad field.

use std::fmt;

use serde::Deserialize;

use super::message::{MAX_PAYLOAD, MAX_TREES};

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MulticastConfig {
    /// Redundant trees each message travels (`k`). More trees survive more failures in
    /// flight and cost up to `k` copies per receiver. Default 2, at most 8.
    pub trees: u8,
    /// Largest payload `multicast` accepts; larger is refused with an error. Default
    /// 64 KiB, at most 1 MiB.
    pub max_payload: usize,
    /// Messages per origin whose duplicates are recognised. A copy older than the
    /// window is dropped, never delivered twice. Default 1,024.
    pub dedup_window: usize,
    /// How long (ms) this node keeps a message it sent or passed on, to flood it again
    /// if the link it went on goes down (see `repair`). Must outlast the detector's time
    /// to give up on a link. Default 10,000.
    pub repair_window_ms: u64,
    /// Most messages kept for repair; the oldest goes first. Worst-case memory is this
    /// times `max_payload`. 0 turns repair off. Default 128.
    pub repair_buffer: usize,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        MulticastConfig {
            trees: 2,
            max_payload: 64 << 10,
            dedup_window: 1_024,
            repair_window_ms: 10_000,
            repair_buffer: 128,
        }
    }
}

impl MulticastConfig {
    pub fn validate(&self) -> Result<(), MulticastConfigError> {
        let between = |field: &'static str, value: u64, min: u64, max: u64| {
            if value < min || value > max {
                Err(MulticastConfigError {
                    field,
                    value,
                    min,
                    max,
                })
            } else {
                Ok(())
            }
        };
        between("trees", self.trees.into(), 1, MAX_TREES.into())?;
        between(
            "max_payload",
            self.max_payload as u64,
            0,
            MAX_PAYLOAD as u64,
        )?;
        between("dedup_window", self.dedup_window as u64, 1, 65_536)?;
        between("repair_window_ms", self.repair_window_ms, 0, 600_000)?;
        between("repair_buffer", self.repair_buffer as u64, 0, 4_096)
    }
}

/// The first field of a [`MulticastConfig`] out of its range, with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MulticastConfigError {
    pub field: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl fmt::Display for MulticastConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let MulticastConfigError {
            field,
            value,
            min,
            max,
        } = self;
        write!(
            f,
            "multicast.{field} = {value}: must be between {min} and {max}"
        )
    }
}

impl std::error::Error for MulticastConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_field_out_of_range_is_named_with_its_value() {
        assert_eq!(MulticastConfig::default().validate(), Ok(()));
        let bad = MulticastConfig {
            trees: 9,
            dedup_window: 0,
            ..MulticastConfig::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(
            err,
            MulticastConfigError {
                field: "trees",
                value: 9,
                min: 1,
                max: 8
            }
        );
        assert_eq!(
            err.to_string(),
            "multicast.trees = 9: must be between 1 and 8"
        );
    }
}
