//! Which entries this node has asked for, and of whom.
//!
//! A neighbour announces the versions it holds (`Have`); a version newer than ours is
//! asked for (`Want`) from the first neighbour that announced it, and only from that
//! one: the others that announce it meanwhile are remembered as holders, not asked. So
//! each new version crosses into a node about once, however many neighbours hold it.
//! At most one ask per member is out: versions announced while it is (a joining node's
//! view changes several times within milliseconds) are asked for together, once it is
//! answered, if the answer is not already that new.
//!
//! An ask is not lost quietly: if the neighbour asked drops out of the active view, or
//! has not answered by the next housekeeping pass, the next holder is asked. With no
//! holder left the want is dropped; whoever gets that version later announces it again,
//! and a new link starts with a digest exchange anyway.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::message::Version;
use crate::id::NodeId;
use crate::time::Instant;

#[derive(Debug)]
struct Want {
    /// The version last asked for, of whom, and when.
    asked_version: Version,
    asked: NodeId,
    at: Instant,
    /// The newest version announced, and the neighbours that announced it (other than
    /// `asked`, unless `asked` announced it after the ask), in arrival order.
    newest: Version,
    holders: Vec<NodeId>,
}

#[derive(Debug, Default)]
pub struct Pulls {
    /// Looked up for every announcement; the asks `reassign` makes are sorted, so the
    /// map's order never reaches a message.
    wanted: FxHashMap<NodeId, Want>,
}

impl Pulls {
    /// `peer` announced `member` at `version`, newer than what the table holds. True
    /// when `peer` should be asked for it now; false when an ask for the member is
    /// already out (the version waits for its answer), or when `limit` asks are out.
    pub fn offer(
        &mut self,
        member: NodeId,
        version: Version,
        peer: NodeId,
        now: Instant,
        limit: usize,
    ) -> bool {
        if let Some(w) = self.wanted.get_mut(&member) {
            if version > w.newest {
                w.newest = version;
                w.holders = vec![peer];
            } else if version == w.newest && peer != w.asked && !w.holders.contains(&peer) {
                w.holders.push(peer);
            }
            return false;
        }
        if self.wanted.len() >= limit {
            return false;
        }
        let want = Want {
            asked_version: version,
            asked: peer,
            at: now,
            newest: version,
            holders: Vec::new(),
        };
        self.wanted.insert(member, want);
        true
    }

    /// The table now holds `member` at `version`. If that answers the ask but a newer
    /// version was announced meanwhile, returns whom to ask for it now.
    pub fn got(&mut self, member: NodeId, version: Version, now: Instant) -> Option<NodeId> {
        let w = self.wanted.get_mut(&member)?;
        if version >= w.newest {
            self.wanted.remove(&member);
            return None;
        }
        if version < w.asked_version || w.holders.is_empty() {
            return None;
        }
        let next = w.holders.remove(0);
        w.asked = next;
        w.asked_version = w.newest;
        w.at = now;
        Some(next)
    }

    /// Move every ask out to `gone` (no longer a neighbour), and every ask made before
    /// `before`, to the next holder. Returns whom to ask for what, in id order.
    pub fn reassign(
        &mut self,
        gone: Option<NodeId>,
        before: Option<Instant>,
        now: Instant,
    ) -> BTreeMap<NodeId, Vec<NodeId>> {
        let mut asks: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        self.wanted.retain(|&member, w| {
            if let Some(g) = gone {
                w.holders.retain(|h| *h != g);
            }
            let late = before.is_some_and(|b| w.at <= b);
            if Some(w.asked) != gone && !late {
                return true;
            }
            if w.holders.is_empty() {
                return false;
            }
            let next = w.holders.remove(0);
            w.asked = next;
            w.asked_version = w.newest;
            w.at = now;
            asks.entry(next).or_default().push(member);
            true
        });
        asks.values_mut()
            .for_each(|members| members.sort_unstable());
        asks
    }

    /// Asks out.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.wanted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn v(counter: u64) -> Version {
        Version {
            incarnation: 1,
            counter,
        }
    }
    fn ms(n: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(n)
    }
    const M: NodeId = NodeId(7);
    const LIMIT: usize = 100;

    #[test]
    fn one_ask_out_per_member_and_what_was_announced_meanwhile_is_asked_after() {
        let mut p = Pulls::default();
        assert!(p.offer(M, v(2), NodeId(1), ms(0), LIMIT));
        assert!(!p.offer(M, v(2), NodeId(2), ms(1), LIMIT), "already asked");
        assert!(!p.offer(M, v(1), NodeId(3), ms(1), LIMIT), "older");
        assert!(
            !p.offer(M, v(3), NodeId(2), ms(2), LIMIT),
            "newer: waits for the answer"
        );
        assert!(!p.offer(M, v(4), NodeId(3), ms(2), LIMIT));
        assert_eq!(p.got(M, v(1), ms(3)), None, "not the answer");
        assert_eq!(
            p.got(M, v(2), ms(3)),
            Some(NodeId(3)),
            "answered, but v4 was announced meanwhile, by n3"
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p.got(M, v(5), ms(4)), None, "the answer is newer still");
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn a_lost_or_late_ask_goes_to_the_next_holder_and_is_dropped_without_one() {
        let mut p = Pulls::default();
        p.offer(M, v(2), NodeId(1), ms(0), LIMIT);
        p.offer(M, v(2), NodeId(2), ms(1), LIMIT);
        p.offer(NodeId(8), v(1), NodeId(1), ms(0), LIMIT);
        let asks = p.reassign(Some(NodeId(1)), None, ms(5));
        assert_eq!(asks, BTreeMap::from([(NodeId(2), vec![M])]));
        assert_eq!(p.len(), 1, "n8 had no other holder");
        assert!(
            p.reassign(None, Some(ms(4)), ms(6)).is_empty(),
            "not late yet"
        );
        assert!(p.reassign(None, Some(ms(5)), ms(2000)).is_empty());
        assert_eq!(p.len(), 0, "late, and no holder left");
    }

    #[test]
    fn asks_are_bounded() {
        let mut p = Pulls::default();
        assert!(p.offer(NodeId(1), v(1), NodeId(9), ms(0), 1));
        assert!(!p.offer(NodeId(2), v(1), NodeId(9), ms(0), 1));
        assert!(
            !p.offer(NodeId(1), v(2), NodeId(9), ms(0), 1),
            "a newer version of a wanted member waits for the answer"
        );
        assert_eq!(p.got(NodeId(1), v(1), ms(1)), Some(NodeId(9)));
    }
}
