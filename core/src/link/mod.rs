//! Authenticated links: the unit every protocol sees.
//!
//! The driver owns transport connections (TCP, or the simulator's model of it) and
//! reports what happens to them; [`Links`] runs the cookie handshake (a PAKE, see
//! `handshake`) on each one, keeps at most one established link per peer, encrypts and
//! decrypts data frames, and tells the node
//! what the protocols need to know: link up, link down, connect failed, message.

mod cookie;
mod handshake;
mod table;

pub use cookie::Cookie;
pub use handshake::{Hello, LINK_VERSION, PAKE_LEN, PROOF_LEN, Role, TAG_LEN};
pub use table::{
    ConnId, ConnectError, DownReason, HANDSHAKE_FRAMES, LinkConfig, LinkEvent, Links,
    MAX_HANDSHAKE_FRAME, RefuseReason, SendError, Transmit,
};
