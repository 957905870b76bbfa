//! The heartbeat example (`sim/examples/heartbeat/protocol.rs`) as a scenario target:
//! what a user writes so that scenario files, the swarm and the shrinker can run their
//! protocol. Every node heartbeats the scenario's `contacts` (but itself): `contacts =
//! "all"` is a full mesh, `"n0..n2"` a star around three hubs.
//!
//! `[config]` takes the protocol's settings: `period` and `silence` (times, like
//! `"500ms"`), and `planted_bug = "incarnation-not-bumped"` (see [`PlantedBug`]).

use std::fmt;

use hawser_core::{Addr, Duration, NodeId, Snapshot};
use hawser_scenarios::file::{ExpectKind, parse_duration};
use hawser_scenarios::{Target, TargetError, Violation};

use crate::protocol::{Heartbeat, HeartbeatEvent, PlantedBug, Settings};

/// What is wrong with a scenario's `[config]` for the heartbeat.
#[derive(Debug)]
enum SettingsError {
    /// Every setting is a string; this one is not.
    NotAString {
        key: String,
        found: &'static str,
    },
    /// `period` or `silence` is not a time (the parser says why).
    BadTime {
        key: String,
        why: String,
    },
    UnknownBug(String),
    UnknownField(String),
    /// A silence no longer than a beat period (or a zero period) reports every peer.
    SilenceTooShort,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::NotAString { key, found } => write!(f, "{key}: a string, not {found}"),
            SettingsError::BadTime { key, why } => write!(f, "{key}: {why}"),
            SettingsError::UnknownBug(name) => write!(f, "planted_bug: no bug is called {name:?}"),
            SettingsError::UnknownField(name) => write!(
                f,
                "unknown field {name:?}: the heartbeat takes period, silence and planted_bug"
            ),
            SettingsError::SilenceTooShort => {
                f.write_str("the silence must be longer than a beat period, and the period above 0")
            }
        }
    }
}

impl std::error::Error for SettingsError {}

/// The settings a scenario's `[config]` asks for, or what is wrong with it.
fn settings(config: &toml::Table) -> Result<Settings, SettingsError> {
    let mut settings = Settings::default();
    for (key, value) in config {
        let text = value.as_str().ok_or_else(|| SettingsError::NotAString {
            key: key.clone(),
            found: value.type_str(),
        })?;
        let time = |text| {
            parse_duration(text).map_err(|why| SettingsError::BadTime {
                key: key.clone(),
                why,
            })
        };
        match key.as_str() {
            "period" => settings.period = time(text)?,
            "silence" => settings.silence = time(text)?,
            "planted_bug" => match text {
                "incarnation-not-bumped" => {
                    settings.planted_bug = Some(PlantedBug::IncarnationNotBumped)
                }
                other => return Err(SettingsError::UnknownBug(other.to_owned())),
            },
            other => return Err(SettingsError::UnknownField(other.to_owned())),
        }
    }
    if settings.period == Duration::ZERO || settings.silence <= settings.period {
        return Err(SettingsError::SilenceTooShort);
    }
    Ok(settings)
}

impl Target for Heartbeat {
    fn check_config(config: &toml::Table) -> Result<(), TargetError> {
        settings(config)
            .map(|_| ())
            .map_err(|e| TargetError::Config(Box::new(e)))
    }

    fn build(i: usize, config: &toml::Table, contacts: &[Addr], snapshot: &Snapshot) -> Self {
        let me = format!("n{i}");
        let peers = contacts.iter().filter(|a| a.as_str() != me).cloned();
        let settings = settings(config).expect("checked before the run");
        Heartbeat::with_settings(settings, peers.collect(), snapshot)
    }

    /// What "who hears whom" can answer. Not `no-false-positives`: a silence is judged
    /// at the next beat, so a peer cut off for two seconds may be reported silent just
    /// after the cut healed — expected of a heartbeat, not a false positive.
    fn supports(kind: ExpectKind) -> bool {
        matches!(
            kind,
            ExpectKind::OverlayConnected | ExpectKind::ViewsBounded | ExpectKind::Detected
        )
    }

    fn active_view(&self) -> Vec<NodeId> {
        self.alive().iter().copied().collect()
    }

    fn check_views(&self, me: NodeId) -> Result<(), Violation> {
        match self.alive().contains(&me) {
            true => Err(Violation::new("hears itself")),
            false => Ok(()),
        }
    }

    /// A peer reported silent (counted as an eviction in the report's metrics).
    fn evicted(event: &HeartbeatEvent) -> Option<NodeId> {
        match event {
            HeartbeatEvent::Silent { peer } => Some(*peer),
            _ => None,
        }
    }

    fn considers_unreachable(&self, peer: NodeId) -> bool {
        !self.alive().contains(&peer)
    }

    fn unreachable_event(event: &HeartbeatEvent) -> Option<NodeId> {
        Self::evicted(event)
    }
}
