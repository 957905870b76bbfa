//! What the link layer reports, logged — the same for every protocol: links up and down,
//! failed dials, and refusals a remote party causes (a wrong cookie, an undecodable
//! frame, a duplicate name), the latter at a limited rate (see `lograte`). Failed dials
//! and links also feed `isolation`, so a node cut off from everyone says so once.

use hawser_core::wire::WireError;
use hawser_core::{LinkEvent, NodeId};
use tracing::{debug, error, info, warn};

use super::host::Host;
use super::node_task::Driver;
use crate::isolation::{self, Cause, Dial};
use crate::lograte::LineKind;
use crate::transport::Transport;

impl<T: Transport, H: Host> Driver<T, H> {
    /// Log what the link layer reports and remember where linked peers listen.
    pub(super) fn link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Up { peer, addr } => {
                info!(peer = %self.who(peer), addr = ?addr.as_str(), "link up");
                self.peers.insert(peer, addr);
                if self.isolation.linked().is_some() {
                    info!("linked to the cluster: no longer isolated");
                }
            }
            LinkEvent::Down { peer, reason } => {
                info!(peer = %self.who(peer), ?reason, "link down")
            }
            LinkEvent::ConnectFailed {
                addr,
                expected,
                error,
            } => debug!(addr = ?addr.as_str(), ?expected, ?error, "could not link"),
            LinkEvent::AuthFailure { conn, claimed } => {
                let outbound = self.remotes.get(&conn).is_some_and(|r| r.outbound);
                if let Some(suppressed) = self.admit(LineKind::AuthFailure) {
                    let remote = self.remote(conn);
                    let claimed = claimed.map(|id| self.who(id));
                    if outbound {
                        warn!(
                            ?remote,
                            ?claimed,
                            suppressed,
                            "the peer this node dialled failed its cookie proof (or TLS \
                             certificate): this node's cookie differs from that peer's; \
                             connection closed"
                        )
                    } else {
                        warn!(
                            ?remote,
                            ?claimed,
                            suppressed,
                            "a node that connected failed the cookie proof (or its TLS \
                             certificate): its cookie differs from this node's; connection \
                             refused"
                        )
                    }
                }
                if outbound {
                    self.dial_failed(Dial::CookieRefused);
                }
            }
            LinkEvent::DecodeError { conn, error } => {
                if let Some(suppressed) = self.admit(LineKind::DecodeError) {
                    let remote = self.remote(conn);
                    warn!(?remote, %error, suppressed, "undecodable frame; connection closed")
                }
            }
            LinkEvent::DuplicateRefused {
                conn,
                peer,
                addr,
                live_addr,
            } => {
                if let Some(suppressed) = self.admit(LineKind::DuplicateName) {
                    let remote = self.remote(conn);
                    warn!(
                        ?remote,
                        peer = %self.who(peer),
                        addr = ?addr.as_str(),
                        live_addr = ?live_addr.as_str(),
                        suppressed,
                        "a second node claims a linked node's name from another address; \
                         refused it (node names must be unique in a cluster)"
                    )
                }
            }
            LinkEvent::RefusedByPeer { peer, reason } => {
                if let Some(suppressed) = self.admit(LineKind::DuplicateName) {
                    let remote = self.peers.get(&peer).map(|a| a.to_string());
                    error!(
                        peer = %self.who(peer),
                        ?remote,
                        ?reason,
                        suppressed,
                        "a peer refused our link: another node with this node's name is \
                         live in the cluster (node names must be unique; is another agent \
                         running with the same --name?)"
                    )
                }
            }
            LinkEvent::Message { from, .. } => {
                debug!(from = %self.who(from), "message surfaced to the driver")
            }
        }
    }

    /// A linked peer sent a message its protocol could not decode; the node dropped the
    /// link.
    pub(super) fn bad_message(&mut self, from: NodeId, error: WireError) {
        if let Some(suppressed) = self.admit(LineKind::BadMessage) {
            let remote = self.peers.get(&from).map(|a| a.to_string());
            warn!(from = %self.who(from), ?remote, %error, suppressed, "undecodable message; link dropped")
        }
    }

    /// A dial failed: say so once if this node is now isolated (see `isolation`).
    pub(super) fn dial_failed(&mut self, dial: Dial) {
        let links = self.node.links().peers().count();
        match self.isolation.dial_failed(dial, links) {
            Some(Some(Cause::CookieRefused)) => error!(
                "this node's cookie differs from the cluster's: every contact it dialled \
                 refused its cookie proof, so it runs alone (check --cookie / --cookie-file \
                 against the other agents'); it keeps trying"
            ),
            Some(Some(Cause::NoAnswer)) => warn!(
                failed_dials = isolation::AFTER,
                "no contact answers: this agent runs isolated (is anyone listening at the \
                 --join addresses?); it keeps trying"
            ),
            Some(None) | None => {}
        }
    }
}
