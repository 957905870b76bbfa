//! Every knob of the membership protocol, in one struct with documented defaults.
//!
//! Durations are plain milliseconds (`*_ms`) so a scenario's `[config]` table in TOML can
//! override any field by name. [`MembershipConfig::validate`] rejects a bad value with the
//! field's name and the reason at construction, so no later code path has to cope with a
//! zero period or an inverted range (and none can panic on one).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::message::MAX_SAMPLE;
use crate::time::Duration;

/// Largest active view a node may be configured with. A bound, not a target: a HyParView
/// active view is a handful of live links, and every one of them is pinged.
pub const MAX_ACTIVE_VIEW: usize = 64;
/// Largest passive view (also the bound on the persisted view we accept back).
pub const MAX_PASSIVE_VIEW: usize = 1024;

/// The defaults are the `lan` profile's (see [`super::Profile`]): where `fast` differs,
/// a field's doc gives both.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MembershipConfig {
    /// Live, symmetric links kept (HyParView's fanout + 1). Default 7.
    pub active_view: usize,
    /// Known peers kept for repair. Default 42 (HyParView's 6× the active view).
    pub passive_view: usize,
    /// Active random walk length: hops a forward-join (and a shuffle) travels. Default 8.
    pub arwl: u8,
    /// Passive random walk length: the hop at which a forward-join leaves the joiner in
    /// the passive view of the node it passes. Default 5; at most `arwl`.
    pub prwl: u8,

    /// Uniform jitter on every periodic timer, as a percentage of its period: a timer of
    /// period `T` fires after `T + U[0, T·jitter_percent/100)`. Default 50. (Lashup's
    /// "T or 2T" keeps nodes started together in lock-step; a uniform spread does not.)
    pub jitter_percent: u64,

    /// Time between shuffles (before jitter). A shuffle walks up to `arwl` hops and is
    /// answered over a link of its own (a TCP and a cookie handshake): in an idle
    /// cluster it was a fifth of what a node sent. A passive view needs no fresher
    /// peers than that: forward-joins and every repair refresh it too, and a failed
    /// peer in it is backed off, not trusted; and a short active view refills it from
    /// global membership's table (`refill`), which does not wait for a shuffle. `lan`
    /// 30 s, `fast` 10 s.
    pub shuffle_period_ms: u64,
    /// Active-view members in a shuffle sample. Default 3.
    pub shuffle_active: usize,
    /// Passive-view members in a shuffle sample. Default 4.
    pub shuffle_passive: usize,

    /// How often a node checks whether its active view needs repair (and sweeps idle
    /// links, and persists a changed passive view). Default 500 ms.
    pub repair_period_ms: u64,
    /// Neighbour requests a node keeps in flight at once while its view is short.
    /// Default 2.
    pub repair_parallelism: usize,
    /// A neighbour (or join) request unanswered after this is given up, and its timer
    /// cancelled if the answer does come. Includes dialling. Default 2 s.
    pub neighbor_timeout_ms: u64,
    /// First back-off after a passive peer could not be reached; it doubles per failure
    /// up to `passive_retry_max_ms`. Failed peers stay in the passive view (they may be on
    /// the far side of a partition that will heal), they are just tried less often.
    /// Default 500 ms.
    pub passive_retry_base_ms: u64,
    /// Longest back-off between attempts at an unreachable passive peer. Bounds how long
    /// a healed partition waits to be noticed. Default 4 s.
    pub passive_retry_max_ms: u64,
    /// A link that no view and no pending exchange needs is closed after this long, so
    /// temporary links and links a peer opened and never used do not pile up. Default 5 s.
    pub idle_link_ms: u64,

    /// First wait between join attempts while isolated (no active neighbour); contacts are
    /// re-probed for as long as the node stays isolated. Default 1 s.
    pub join_retry_ms: u64,
    /// Join retries back off exponentially up to this. Default 8 s.
    pub join_retry_max_ms: u64,
    /// A contact adds at most this many joiners to its own active view in a burst...
    /// Default 4.
    pub join_burst: u32,
    /// ...and earns back one such slot per this interval. Joins over the limit are still
    /// forwarded (the joiner still gets its neighbours from the random walks); only the
    /// contact's own view is spared the churn. Default 250 ms.
    pub join_refill_ms: u64,

    /// Time between pings to each active neighbour (before jitter). A silent failure
    /// is first suspected by whichever neighbour pings next, so this bounds the tail of
    /// detection: with 1 s, a node with 4 or 5 neighbours went unpinged for 600+ ms after
    /// freezing in ~7 % of seeds, which put it past Lashup's 1.5 s goal; with 700 ms, 2 of
    /// 100 detect-1000 seeds still were. The silence window cannot give the time back
    /// (see `indirect_timeout_factor`). It is also nearly all an idle cluster sends: at
    /// 400 ms, 7 neighbours pinged both ways cost ~4 kB/s per agent on loopback.
    /// `lan` 1 s, but with `rotate_pings` that is one ping per node per interval, not
    /// per link (about one exchange per link per 4 s with 7 neighbours); `fast` 400 ms
    /// per link.
    pub ping_interval_ms: u64,
    /// A message heard from a neighbour (on any protocol) counts as its answer: the next
    /// ping to it waits a ping interval from the last message heard, so of the two ends
    /// of a link the one whose timer fires first pings and the other stays quiet; and a
    /// ping from a neighbour we suspect clears the suspicion (the suspect refutes it: a
    /// node that learns it is suspected pings its accuser). `lan` true, `fast` false.
    pub traffic_is_liveness: bool,
    /// SWIM's probe schedule instead of one ping schedule per link: each ping interval
    /// (jittered) the node pings one neighbour, the one heard from longest ago, and
    /// none if even that one was heard from within the interval. An idle node then
    /// sends one ping per interval whatever its view size, and a busy link is never
    /// pinged. A silent neighbour is still found about as soon: it goes stale for all
    /// of its neighbours at once, and each picks it within a tick or two, and the first
    /// suspicion has the others check it at once. A new neighbour is pinged at once
    /// either way (its first round trip sets the link's timeout). `lan` true, `fast`
    /// false.
    pub rotate_pings: bool,
    /// Ping timeout before any round trip has been measured (Lashup: 1 s). Default 1 s.
    pub ping_timeout_initial_ms: u64,
    /// Shortest ping timeout, however fast the link has been. Short, because a missed
    /// pong only starts the indirect phase (and publishes a suspicion, which has the
    /// suspect's other neighbours check it at once): what tolerates a slow peer is the
    /// whole silence window, this times `1 + indirect_timeout_factor`. A timeout makes
    /// the neighbour `suspect` cluster-wide (a flood of one entry version), so the floor
    /// also bounds how often a busy machine's scheduling delays are published as
    /// suspicions. `lan` 250 ms, `fast` 100 ms.
    pub ping_timeout_floor_ms: u64,
    /// Longest ping timeout, however slow the link has been. `lan` 1 s: with the
    /// suspicion phase a slow link needs no longer timeout (a missed ping only makes it
    /// suspect, and its answer clears that), and a longer one delays the suspicion of a
    /// silent node. `fast` 5 s.
    pub ping_timeout_ceiling_ms: u64,
    /// The timeout is the smoothed RTT plus this many mean deviations. Default 4.
    pub rtt_deviations: u64,
    /// Other neighbours asked to probe a silent one before it is evicted. Default 3.
    pub indirect_probes: usize,
    /// The indirect phase lasts this many direct timeouts. With the defaults a neighbour
    /// is evicted after 900 ms without an answer to a ping: that outlasts a stall of a
    /// few hundred ms and a link that turns 800 ms slow (with 700 ms, pause-no-false-positive
    /// evicts live nodes), and a silent failure is still known cluster-wide within about
    /// 1.2 s (Lashup's goal: 1.5 s). Default 8.
    pub indirect_timeout_factor: u64,
    /// Lifeguard's suspicion phase: a neighbour that missed a ping is evicted no sooner
    /// than this after that ping was sent, however short its timeout (the indirect
    /// phase is stretched to fill it). While it lasts the neighbour is `suspect`
    /// everywhere and every one of its neighbours probes it; an answer, or a ping from
    /// it, clears it. A node that froze for less than this is never marked failed, so
    /// it is what separates a pause from a crash: 2.5 s lets a 2 s pause (and the
    /// backlog the paused process works through when it resumes) be only suspected.
    /// 0 = the indirect phase alone decides. `lan` 2.5 s, `fast` 0 (evicted after
    /// 900 ms of silence on a fast link).
    pub suspicion_timeout_ms: u64,
    /// Consecutive rounds a neighbour may be reached only indirectly before the direct
    /// link is judged broken and replaced. Default 3.
    pub max_indirect_rescues: u32,
    /// Indirect probes this node relays for others at once; more are refused. Default 32.
    pub max_relays: usize,

    /// A timer firing this much after its due time means this node itself stalled
    /// (Lifeguard's local health): it does not blame neighbours for the silence it could
    /// not observe. Default 100 ms.
    pub late_timer_ms: u64,
    /// Cap on the local-health score; timeouts are multiplied by `1 + score`. Default 8.
    pub local_health_max: u32,
}

impl Default for MembershipConfig {
    /// The `lan` profile.
    fn default() -> Self {
        MembershipConfig {
            active_view: 7,
            passive_view: 42,
            arwl: 8,
            prwl: 5,
            jitter_percent: 50,
            shuffle_period_ms: 30_000,
            shuffle_active: 3,
            shuffle_passive: 4,
            repair_period_ms: 500,
            repair_parallelism: 2,
            neighbor_timeout_ms: 2_000,
            passive_retry_base_ms: 500,
            passive_retry_max_ms: 4_000,
            idle_link_ms: 5_000,
            join_retry_ms: 1_000,
            join_retry_max_ms: 8_000,
            join_burst: 4,
            join_refill_ms: 250,
            ping_interval_ms: 1_000,
            traffic_is_liveness: true,
            rotate_pings: true,
            ping_timeout_initial_ms: 1_000,
            ping_timeout_floor_ms: 250,
            ping_timeout_ceiling_ms: 1_000,
            rtt_deviations: 4,
            indirect_probes: 3,
            indirect_timeout_factor: 8,
            suspicion_timeout_ms: 2_500,
            max_indirect_rescues: 3,
            max_relays: 32,
            late_timer_ms: 100,
            local_health_max: 8,
        }
    }
}

/// A configuration [`MembershipConfig::validate`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "membership config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Longest period or timeout accepted: a day. Beyond that a value is a typo, and keeping
/// every product of two durations far from `u64` overflow keeps the arithmetic simple.
const MAX_MS: u64 = 86_400_000;

impl MembershipConfig {
    /// `Err` names the first bad field and says why.
    pub fn validate(&self) -> Result<(), String> {
        let between = |name: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err(format!("{name} = {v}: must be between {lo} and {hi}"))
            } else {
                Ok(())
            }
        };
        between(
            "active_view",
            self.active_view as u64,
            1,
            MAX_ACTIVE_VIEW as u64,
        )?;
        between(
            "passive_view",
            self.passive_view as u64,
            1,
            MAX_PASSIVE_VIEW as u64,
        )?;
        between("arwl", self.arwl.into(), 1, u8::MAX.into())?;
        between("prwl", self.prwl.into(), 0, self.arwl.into())?;
        between("jitter_percent", self.jitter_percent, 0, 100)?;
        for (name, v) in [
            ("shuffle_period_ms", self.shuffle_period_ms),
            ("repair_period_ms", self.repair_period_ms),
            ("neighbor_timeout_ms", self.neighbor_timeout_ms),
            ("passive_retry_base_ms", self.passive_retry_base_ms),
            ("idle_link_ms", self.idle_link_ms),
            ("join_retry_ms", self.join_retry_ms),
            ("join_refill_ms", self.join_refill_ms),
            ("ping_interval_ms", self.ping_interval_ms),
            ("ping_timeout_floor_ms", self.ping_timeout_floor_ms),
            ("late_timer_ms", self.late_timer_ms),
        ] {
            between(name, v, 1, MAX_MS)?;
        }
        between(
            "passive_retry_max_ms",
            self.passive_retry_max_ms,
            self.passive_retry_base_ms,
            MAX_MS,
        )?;
        between(
            "join_retry_max_ms",
            self.join_retry_max_ms,
            self.join_retry_ms,
            MAX_MS,
        )?;
        between(
            "ping_timeout_ceiling_ms",
            self.ping_timeout_ceiling_ms,
            self.ping_timeout_floor_ms,
            MAX_MS,
        )?;
        between(
            "ping_timeout_initial_ms",
            self.ping_timeout_initial_ms,
            self.ping_timeout_floor_ms,
            self.ping_timeout_ceiling_ms,
        )?;
        let sample = self.shuffle_active + self.shuffle_passive + 1;
        if sample > MAX_SAMPLE {
            return Err(format!(
                "shuffle_active + shuffle_passive = {}: a sample (with the sender) must fit \
                 in {MAX_SAMPLE} entries",
                sample - 1
            ));
        }
        between("repair_parallelism", self.repair_parallelism as u64, 1, 64)?;
        between("join_burst", self.join_burst.into(), 1, 1_000)?;
        between("rtt_deviations", self.rtt_deviations, 0, 64)?;
        between("indirect_probes", self.indirect_probes as u64, 0, 64)?;
        between(
            "indirect_timeout_factor",
            self.indirect_timeout_factor,
            1,
            64,
        )?;
        between(
            "max_indirect_rescues",
            self.max_indirect_rescues.into(),
            0,
            1_000,
        )?;
        between("max_relays", self.max_relays as u64, 0, 4_096)?;
        between("local_health_max", self.local_health_max.into(), 0, 64)?;
        between("suspicion_timeout_ms", self.suspicion_timeout_ms, 0, MAX_MS)?;
        Ok(())
    }

    /// `period` plus this config's uniform jitter, drawn from `rng`.
    pub(super) fn jittered(&self, rng: &mut crate::NodeRng, period_ms: u64) -> Duration {
        let period = Duration::from_millis(period_ms);
        let spread = Duration::from_nanos(period.as_nanos() / 100 * self.jitter_percent);
        rng.jitter(period, spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        MembershipConfig::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let bad = MembershipConfig {
            prwl: 9,
            ..MembershipConfig::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("prwl = 9"));
        let bad = MembershipConfig {
            ping_timeout_floor_ms: 0,
            ..MembershipConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("ping_timeout_floor_ms")
        );
        let bad = MembershipConfig {
            shuffle_passive: 100,
            ..MembershipConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("shuffle_passive"));
    }
}
