//! Named detector profiles: one choice of how much an idle cluster may send against how
//! soon, and how surely, a silent failure is told from a pause.
//!
//! - `lan` (the default): each node pings one neighbour per second or so — the one it
//!   heard from longest ago, and none if it heard from all of them within the second
//!   (any message from a neighbour counts as its answer) — so an idle node sends one
//!   ping a second whatever its view size; a neighbour that misses a ping is `suspect`
//!   for 2.5 s before it is evicted; shuffles every 30 s. A pause of up to 2 s is at
//!   most suspected; a silent failure is suspected within a second or two and marked
//!   failed about 2.5 s after that. A crash whose connections reset (a kill, a reboot)
//!   is known at once either way. 1.5–1.75× serf's idle bytes on the wire. Passive
//!   views refreshed every 30 s alone left a partition's side without an overlay of its
//!   own for over 10 s now and then; a short active view now also refills its passive
//!   view from global membership's table (see `refill`), and that side re-forms as fast
//!   as with 10 s shuffles. (For one day this was `quiet`, next to a `lan` that pinged
//!   each link on its own ~1.7 s schedule and shuffled every 10 s, at 3.15× serf's
//!   bytes; `quiet` is still accepted, as `lan`.)
//! - `fast`: the detector as it was before profiles (the same messages and the same
//!   random draws, until a short active view learns peers from the member list): every
//!   neighbour pinged from both ends every 400 ms, evicted after ~900 ms of silence. A
//!   silent failure is known everywhere within about 1.2 s, but a pause of a second or
//!   two is marked failed, and an idle agent sends ~8× the frames.
//!
//! `docs/benchmarks.md` ("Detector profiles") has the measured trade-off.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::config::MembershipConfig;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    #[serde(alias = "quiet")]
    Lan,
    Fast,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Lan, Profile::Fast];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Fast => "fast",
        }
    }

    /// The membership config of this profile.
    pub fn config(self) -> MembershipConfig {
        let lan = MembershipConfig::default();
        match self {
            Profile::Lan => lan,
            Profile::Fast => MembershipConfig {
                ping_interval_ms: 400,
                traffic_is_liveness: false,
                rotate_pings: false,
                shuffle_period_ms: 10_000,
                ping_timeout_floor_ms: 100,
                ping_timeout_ceiling_ms: 5_000,
                suspicion_timeout_ms: 0,
                ..lan
            },
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name that is neither `lan` (or its former name `quiet`) nor `fast`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown profile {:?}: use lan or fast", self.0)
    }
}

impl std::error::Error for UnknownProfile {}

/// What `lan`'s settings were called while they were not yet the default (2026-12-04/05):
/// configs written then still load.
const QUIET: &str = "quiet";

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Profile, UnknownProfile> {
        if s == QUIET {
            return Ok(Profile::Lan);
        }
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

impl MembershipConfig {
    /// A config from a table of overrides (a scenario's `[config]`, an agent's
    /// `[membership]`: any self-describing map): the fields it names, on top of a
    /// profile's. The profile is `profile` if given (a command-line flag), else the
    /// table's own `profile` key, else `lan`. Unknown fields are refused by name; the
    /// result is not yet validated.
    pub fn from_overrides<'de, D: serde::Deserializer<'de>>(
        profile: Option<Profile>,
        overrides: D,
    ) -> Result<MembershipConfig, String> {
        use serde_json::{Map, Value};
        let mut over = Map::<String, Value>::deserialize(overrides).map_err(|e| e.to_string())?;
        let named = match over.remove("profile") {
            None => None,
            Some(Value::String(s)) => Some(s.parse::<Profile>().map_err(|e| e.to_string())?),
            Some(other) => return Err(format!("profile must be a string, not {other}")),
        };
        let base = profile.or(named).unwrap_or_default().config();
        let Ok(Value::Object(mut fields)) = serde_json::to_value(base) else {
            return Err("membership config does not serialize to a map".into());
        };
        fields.extend(over);
        serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn profiles_are_valid_and_named() {
        for p in Profile::ALL {
            p.config().validate().unwrap();
            assert_eq!(p.as_str().parse::<Profile>(), Ok(p));
        }
        assert_eq!(Profile::default().config(), MembershipConfig::default());
        assert!(
            "wan"
                .parse::<Profile>()
                .unwrap_err()
                .to_string()
                .contains("lan or fast")
        );
        assert_eq!(
            "quiet".parse::<Profile>(),
            Ok(Profile::Lan),
            "lan's former name"
        );
    }

    #[test]
    fn overrides_sit_on_the_named_profile() {
        let c =
            MembershipConfig::from_overrides(None, json!({"profile": "fast", "active_view": 5}))
                .unwrap();
        assert_eq!(c.ping_interval_ms, 400);
        assert_eq!(c.active_view, 5);
        let c = MembershipConfig::from_overrides(Some(Profile::Lan), json!({"profile": "fast"}))
            .unwrap();
        assert_eq!(c, Profile::Lan.config(), "the flag beats the table");
        let c = MembershipConfig::from_overrides(None, json!({})).unwrap();
        assert_eq!(c, MembershipConfig::default());
        let e = MembershipConfig::from_overrides(None, json!({"pingg": 1})).unwrap_err();
        assert!(e.contains("pingg"), "{e}");
        let e = MembershipConfig::from_overrides(None, json!({"profile": "wan"})).unwrap_err();
        assert!(e.contains("wan"), "{e}");
    }
}
