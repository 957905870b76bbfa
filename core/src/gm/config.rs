//! Global membership's knobs, with documented defaults, in milliseconds so a scenario's
//! TOML can set them by name; [`GmConfig::validate`] names the first bad field.

use serde::Deserialize;

/// Largest table a node may be configured to hold.
pub const MAX_MEMBERS: usize = 1 << 20;
const MAX_MS: u64 = 7 * 86_400_000;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GmConfig {
    /// A member unreachable for this long is forgotten (its entry dropped, and a newer
    /// version needed to bring it back). Default 1 h (Lashup: 24 h).
    pub forget_after_ms: u64,
    /// A burst of edge removals is settled by one reachability search this long after
    /// the first of them. Additions need no search and are never delayed. Default 10 ms.
    pub recompute_delay_ms: u64,
    /// A node that loses its last neighbour holds its view of the others this long
    /// before it settles reachability, and settles at once if it gets a neighbour back
    /// meanwhile. Alone it cannot tell who failed: a node that resumes from a freeze its
    /// neighbours took for a crash finds every link closed, and without this would show
    /// all the others unreachable until it rejoined (a few ms to a second later). A node
    /// really cut off from everyone shows them unreachable this much later. Default 2 s.
    pub isolation_grace_ms: u64,
    /// Most members a table holds; entries for more are refused (and counted), so a
    /// hostile peer cannot grow the table without bound. Default 65,536.
    pub max_members: usize,
    /// Housekeeping period: forgetting, and at most one de-partitioning probe per
    /// period while some member is unreachable. Jittered by up to half. Default 1 s.
    pub probe_interval_ms: u64,
    /// Probes of the same unreachable member back off, doubling from
    /// `probe_interval_ms` up to this, so a dead member costs the cluster little while
    /// a healed partition is still found within seconds. Default 60 s.
    pub probe_backoff_max_ms: u64,
    /// Announcements (`Have`) to a neighbour are paced: each link may send
    /// `batch_burst` messages at once, and earns one more every `batch_ms`; past that,
    /// announcements wait (the newest version of each member only) for the next one.
    /// Bounds a join storm to about one message per link per period without delaying a
    /// burst of a few changes (a crash changes the entries of each of the dead node's
    /// neighbours, all within milliseconds). Pushes of our own entry and answers to
    /// asks are not paced (asks follow announcements). 0 sends every announcement at
    /// once. Default 100 ms.
    pub batch_ms: u64,
    /// See `batch_ms`. Default 8 (one more than the default active view).
    pub batch_burst: u32,
}

impl Default for GmConfig {
    fn default() -> Self {
        GmConfig {
            forget_after_ms: 3_600_000,
            recompute_delay_ms: 10,
            isolation_grace_ms: 2_000,
            max_members: 65_536,
            probe_interval_ms: 1_000,
            probe_backoff_max_ms: 60_000,
            batch_ms: 100,
            batch_burst: 8,
        }
    }
}

impl GmConfig {
    /// `Err` names the first bad field and says why.
    pub fn validate(&self) -> Result<(), String> {
        let between = |name: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(format!("gm.{name} = {v}: must be between {lo} and {hi}"))
            } else {
                Ok(())
            }
        };
        between("forget_after_ms", self.forget_after_ms, 1, MAX_MS)?;
        between("recompute_delay_ms", self.recompute_delay_ms, 0, 60_000)?;
        between("isolation_grace_ms", self.isolation_grace_ms, 0, 60_000)?;
        between(
            "max_members",
            self.max_members as u64,
            1,
            MAX_MEMBERS as u64,
        )?;
        between("probe_interval_ms", self.probe_interval_ms, 1, MAX_MS)?;
        between("batch_ms", self.batch_ms, 0, 10_000)?;
        between("batch_burst", self.batch_burst.into(), 1, 1_024)?;
        between(
            "probe_backoff_max_ms",
            self.probe_backoff_max_ms,
            self.probe_interval_ms,
            MAX_MS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_errors_name_the_field() {
        GmConfig::default().validate().unwrap();
        let bad = GmConfig {
            probe_backoff_max_ms: 1,
            ..GmConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("probe_backoff_max_ms"));
    }
}
