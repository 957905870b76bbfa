//! The heartbeat example (`sim/examples/heartbeat/protocol.rs`) as a scenario target:
//! what a user writes so that scenario files, the swarm and the shrinker can run their
//! protocol. Every node heartbeats the scenario's `contacts` (but itself): `contacts =
//! "all"` is a full mesh, `"n0..n2"` a star around three hubs.
//!
//! `[config]` takes the protocol's settings: `period` and `silence` (times, like
//! `"500ms"`), and `planted_bug = "incarnation-not-bumped"` (see [`PlantedBug`]).

use hawser_core::{Addr, Duration, NodeId, Snapshot};
use hawser_scenarios::Target;
use hawser_scenarios::file::{ExpectKind, parse_duration};

use crate::protocol::{Heartbeat, HeartbeatEvent, PlantedBug, Settings};

/// The settings a scenario's `[config]` asks for, or what is wrong with it.
fn settings(config: &toml::Table) -> Result<Settings, String> {
    let mut settings = Settings::default();
    for (key, value) in config {
        let text = value
            .as_str()
            .ok_or_else(|| format!("{key}: a string, not {}", value.type_str()))?;
        match key.as_str() {
            "period" => {
                settings.period = parse_duration(text).map_err(|e| format!("{key}: {e}"))?
            }
            "silence" => {
                settings.silence = parse_duration(text).map_err(|e| format!("{key}: {e}"))?
            }
            "planted_bug" => match text {
                "incarnation-not-bumped" => {
                    settings.planted_bug = Some(PlantedBug::IncarnationNotBumped)
                }
                other => return Err(format!("planted_bug: no bug is called {other:?}")),
            },
            other => {
                return Err(format!(
                    "unknown field {other:?}: the heartbeat takes period, silence and planted_bug"
                ));
            }
        }
    }
    if settings.period == Duration::ZERO || settings.silence <= settings.period {
        return Err("the silence must be longer than a beat period, and the period above 0".into());
    }
    Ok(settings)
}

impl Target for Heartbeat {
    fn check_config(config: &toml::Table) -> Result<(), String> {
        settings(config).map(|_| ())
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

    fn check_views(&self, me: NodeId) -> Result<(), String> {
        match self.alive().contains(&me) {
            true => Err("hears itself".into()),
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
