//! Authenticated links: the unit every protocol sees.
//!
//! The driver owns transport connections (TCP, or the simulator's model of it) and
//! reports what happens to them; [`Links`] runs the cookie handshake on each one, keeps at
//! most one established link per peer, seals and opens data frames, and tells the node
//! what the protocols need to know: link up, link down, connect failed, message.

mod cookie;
mod handshake;
mod table;

pub use cookie::Cookie;
pub use handshake::{Hello, LINK_VERSION, PROOF_LEN, Role, TAG_LEN};
pub use table::{
    ConnId, ConnectError, DownReason, LinkConfig, LinkEvent, Links, SendError, Transmit,
};
