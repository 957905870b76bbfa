//! Exactly-once delivery in bounded memory: per origin, the state of its most recent
//! `window` messages, and a floor under which every message counts as seen. A copy that
//! arrives after its message fell below the floor is dropped — at worst a very late copy
//! is lost, never a message delivered twice.

use std::collections::BTreeMap;

use crate::id::NodeId;

/// Most origins tracked at once; copies from further origins are dropped (and counted)
/// until one is forgotten.
pub const MAX_ORIGINS: usize = 65_536;

/// What this node has done with one message.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MsgState {
    pub delivered: bool,
    /// Trees along which we forwarded it (bitmask).
    pub forwarded: u8,
    pub flooded: bool,
}

#[derive(Debug, Default)]
struct Window {
    floor: u64,
    recent: BTreeMap<u64, MsgState>,
}

#[derive(Debug)]
pub struct Seen {
    window: usize,
    origins: BTreeMap<NodeId, Window>,
}

impl Seen {
    pub fn new(window: usize) -> Seen {
        Seen {
            window,
            origins: BTreeMap::new(),
        }
    }

    /// The state of `(origin, seq)`, created if new; `None` when the message is below
    /// the floor (or no origin slot is left).
    pub fn get(&mut self, origin: NodeId, seq: u64) -> Option<&mut MsgState> {
        if !self.origins.contains_key(&origin) && self.origins.len() >= MAX_ORIGINS {
            return None;
        }
        let w = self.origins.entry(origin).or_default();
        if seq <= w.floor {
            return None;
        }
        if !w.recent.contains_key(&seq) && w.recent.len() >= self.window {
            if let Some((oldest, _)) = w.recent.pop_first() {
                w.floor = oldest;
            }
            if seq <= w.floor {
                return None;
            }
        }
        Some(w.recent.entry(seq).or_default())
    }

    /// An origin gone for good (global membership forgot it).
    pub fn forget(&mut self, origin: NodeId) {
        self.origins.remove(&origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_and_old_copies_are_refused() {
        let mut s = Seen::new(2);
        let o = NodeId(1);
        s.get(o, 5).unwrap().delivered = true;
        assert!(s.get(o, 5).unwrap().delivered);
        s.get(o, 6).unwrap();
        s.get(o, 9).unwrap();
        assert!(s.get(o, 5).is_none(), "5 fell below the floor");
        assert!(s.get(o, 4).is_none());
        assert!(s.get(o, 7).is_some(), "above the floor, still tracked");
        s.forget(o);
        assert!(!s.get(o, 5).unwrap().delivered);
    }
}
