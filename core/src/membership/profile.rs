//! Named detector profiles: one choice of how much an idle cluster may send against how
//! soon, and how surely, a silent failure is told from a pause.
//!
//! - `lan` (the default): each link exchanges about one ping per 1.7 s, whichever end's
//!   timer fires first (a message from a neighbour counts as its answer), and a
//!   neighbour that misses a ping is `suspect` for 2.5 s before it is evicted. A pause
//!   of up to 2 s is at most suspected; a silent failure is suspected within about a
//!   second and marked failed about 2.5–3.5 s after it. A crash whose connections reset
//!   (a kill, a reboot) is known at once either way.
//! - `quiet`: `lan`'s suspicion, but each node pings one neighbour per second or so —
//!   the one it heard from longest ago, and none if it heard from all of them within
//!   the second — so an idle node sends one ping a second whatever its view size; and
//!   shuffles every 30 s. Half `lan`'s idle bytes (1.6–1.75× serf's against 3.15×), but
//!   not the default: with passive views refreshed a third as often, the side of a
//!   partition whose nodes had known only the other side took more than 10 s to form
//!   its own overlay in 2 of 8 seeds (an 8-node 4/4 split; `lan`: 0 of 8).
//! - `fast`: the detector as it was before profiles (byte for byte: the same messages
//!   and the same random draws): every neighbour pinged from both ends every 400 ms,
//!   evicted after ~900 ms of silence. A silent failure is known everywhere within
//!   about 1.2 s, but a pause of a second or two is marked failed, and an idle agent
//!   sends ~8× the frames.
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
    Lan,
    Quiet,
    Fast,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Lan, Profile::Quiet, Profile::Fast];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Quiet => "quiet",
            Profile::Fast => "fast",
        }
    }

    /// The membership config of this profile.
    pub fn config(self) -> MembershipConfig {
        let lan = MembershipConfig::default();
        match self {
            Profile::Lan => lan,
            Profile::Quiet => MembershipConfig {
                ping_interval_ms: 1_000,
                rotate_pings: true,
                shuffle_period_ms: 30_000,
                ..lan
            },
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

/// A profile name that is neither `lan` nor `fast`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown profile {:?}: use lan, quiet or fast", self.0)
    }
}

impl std::error::Error for UnknownProfile {}

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Profile, UnknownProfile> {
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
                .contains("lan, quiet or fast")
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
