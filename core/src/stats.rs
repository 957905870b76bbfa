//! Counters a node keeps about itself. Every refusal and every drop is counted, so an
//! operator (and a scenario) can see what a node threw away and why.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Peers that failed the cookie proof or sent a frame with a bad MAC.
    pub auth_failures: u64,
    /// Frames that did not decode (link layer or protocol payload).
    pub decode_errors: u64,
    /// Connections closed because they did not authenticate in time.
    pub handshake_timeouts: u64,
    /// Messages a protocol tried to send to a peer it had no link to.
    pub send_without_link: u64,
    /// Links refused because another node with the same id was linked from another
    /// address (two agents with one name).
    pub duplicate_ids: u64,
    /// Links a peer refused right after the handshake (we are such a duplicate).
    pub refused_by_peer: u64,
}
