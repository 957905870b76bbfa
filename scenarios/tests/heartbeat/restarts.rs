//! The heartbeat's own invariant, which no generic expectation can state: a restarted
//! node announces an incarnation its peers have not heard yet, so they can tell the new
//! life from the old one (the reason the protocol keeps an incarnation at all).

use hawser_scenarios::{Invariant, Verdict, Violation};
use hawser_sim::Sim;

use crate::protocol::{Heartbeat, HeartbeatEvent};

/// Each node's current life and what its earlier lives made known.
#[derive(Clone, Default)]
pub struct RestartsAnnounced {
    nodes: Vec<Lives>,
}

#[derive(Clone, Copy, Default)]
struct Lives {
    /// This life's incarnation, and whether a peer has heard it yet.
    current: Option<(u64, bool)>,
    /// The highest incarnation peers heard from an earlier life since the disk was
    /// last wiped (a wiped node starts over at 1 and cannot do better).
    heard_before: Option<u64>,
}

impl RestartsAnnounced {
    fn lives(&mut self, node: usize) -> &mut Lives {
        if self.nodes.len() <= node {
            self.nodes.resize(node + 1, Lives::default());
        }
        &mut self.nodes[node]
    }
}

impl Invariant<Heartbeat> for RestartsAnnounced {
    fn name(&self) -> &str {
        "restarts-announced"
    }

    fn started(&mut self, sim: &Sim<Heartbeat>, node: usize, wiped: bool) -> Verdict {
        let incarnation = sim
            .node(node)
            .expect("just started")
            .protocol()
            .incarnation();
        let lives = self.lives(node);
        if wiped {
            lives.heard_before = None;
        } else if let Some((previous, true)) = lives.current {
            lives.heard_before = lives.heard_before.max(Some(previous));
        }
        lives.current = Some((incarnation, false));
        match lives.heard_before {
            Some(heard) if incarnation <= heard => Err(Violation::new(format!(
                "n{node} restarted as incarnation {incarnation}, but its peers already heard \
                 incarnation {heard} from an earlier life: they cannot tell it restarted"
            ))),
            _ => Ok(()),
        }
    }

    fn event(&mut self, _: &Sim<Heartbeat>, _: usize, event: &HeartbeatEvent) -> Verdict {
        if let HeartbeatEvent::Alive { peer, incarnation }
        | HeartbeatEvent::Restarted { peer, incarnation } = *event
            && let Some((current, heard)) = &mut self.lives(peer.0 as usize).current
            && *current == incarnation
        {
            *heard = true;
        }
        Ok(())
    }
}
