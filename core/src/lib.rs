//! hawser-core: the sans-IO heart of hawser.
//!
//! Nothing in this crate reads a clock, a socket, a file or a global RNG. A driver (the
//! simulator in `hawser-sim`, or the tokio runtime) feeds a [`Node`] inputs through its
//! `handle_*` methods and drains its outputs through `poll_transmit`, `poll_timeout`,
//! `poll_event` and `poll_persist`. Same inputs in the same order give the same outputs,
//! byte for byte.
//!
//! To write a protocol of your own, implement [`Protocol`]; `hawser-sim`'s `heartbeat`
//! example is the guided tour.

pub mod crdt;
pub mod fuzzing;
pub mod gm;
pub mod id;
pub mod kv;
pub mod link;
pub mod loopback;
pub mod membership;
pub mod multicast;
mod node;
pub mod persist;
pub mod planted;
mod protocol;
pub mod rng;
pub mod routing;
pub mod stack;
mod stats;
pub mod time;
pub mod wire;

pub use id::{Addr, Name, NodeId};
pub use link::{
    ConnId, ConnectError, Cookie, DownReason, LinkConfig, LinkEvent, SendError, Transmit,
};
pub use node::{Event, Identity, Node, Observed};
pub use persist::{PersistSeq, Record, Snapshot};
pub use protocol::{Ctx, Layered, Protocol, TimerId};
pub use rng::{NodeRng, RngSeed};
pub use stats::Stats;
pub use time::{Duration, Instant};
