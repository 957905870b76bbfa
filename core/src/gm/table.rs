//! The table every node holds: one entry per member (where it listens, which version of
//! its adjacency we have, since when it is unreachable, its status and since when), the
//! adjacency itself living only in the routing graph, so it is stored once.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use rustc_hash::FxHashMap;

use super::message::{Entry, Version};
use super::status::Status;
use crate::id::{Addr, Name, NodeId};
use crate::rng::mix_seed;
use crate::routing::Routing;
use crate::time::Instant;
use crate::wire::Bounded;

/// What the table knows of a member besides its adjacency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: Name,
    pub addr: Addr,
    pub version: Version,
    /// The neighbours it suspects, as of that version (usually none).
    pub suspects: Vec<NodeId>,
    /// When it stopped being reachable from this node, while it is not.
    pub unreachable_since: Option<Instant>,
    /// Its status as this node sees it (see `status`), and when that last changed.
    pub status: Status,
    pub status_since: Instant,
}

/// What [`Table::apply`] made of an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// A member we did not know.
    Added,
    /// A newer version; `changed` when its neighbours, name or address differ.
    Newer { changed: bool },
    /// A version we already have or have superseded.
    Stale,
    /// A version no newer than one we forgot.
    Forgotten,
    /// No room for another member.
    Full,
}

pub struct Table {
    /// Looked up for every entry, announcement and ask, so hashed; never iterated
    /// where the order could reach an output (`ids` gives the order).
    members: FxHashMap<NodeId, Member>,
    /// The members' ids, for whatever must go in id order (digests, listings, probes).
    ids: BTreeSet<NodeId>,
    routing: Routing,
    /// XOR of a hash of every `(id, version)` held: equal tables have equal views, so
    /// two nodes can tell cheaply whether they derive the same trees.
    view: u64,
    /// Forgotten members: entries no newer than the version are not taken back, until
    /// the instant (another `forget_after`) passes.
    tombstones: BTreeMap<NodeId, (Version, Instant)>,
    /// Who suspects whom: each suspect, and the members whose entries list it (no empty
    /// sets). Usually empty; it makes a member's `Suspect` status a lookup.
    suspected_by: BTreeMap<NodeId, BTreeSet<NodeId>>,
}

fn hash(id: NodeId, v: Version) -> u64 {
    mix_seed(mix_seed(id.0, v.incarnation), v.counter)
}

impl Table {
    pub fn new(me: NodeId) -> Table {
        Table {
            members: FxHashMap::default(),
            ids: BTreeSet::new(),
            routing: Routing::new(me),
            view: 0,
            tombstones: BTreeMap::new(),
            suspected_by: BTreeMap::new(),
        }
    }

    pub fn routing(&self) -> &Routing {
        &self.routing
    }
    pub fn routing_mut(&mut self) -> &mut Routing {
        &mut self.routing
    }
    /// Every member, in id order.
    pub fn members(&self) -> impl Iterator<Item = (NodeId, &Member)> + '_ {
        self.range(NodeId(0)..=NodeId(u64::MAX))
    }
    /// The members whose ids are in `ids`, in id order.
    pub fn range(
        &self,
        ids: RangeInclusive<NodeId>,
    ) -> impl Iterator<Item = (NodeId, &Member)> + '_ {
        self.ids.range(ids).map(|id| (*id, &self.members[id]))
    }
    pub fn get(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id)
    }
    pub fn view(&self) -> u64 {
        self.view
    }

    /// The entry for `id` as its owner published it.
    pub fn entry(&self, id: NodeId) -> Option<Entry> {
        let m = self.members.get(&id)?;
        Some(Entry {
            id,
            name: m.name.clone(),
            addr: m.addr.clone(),
            version: m.version,
            adjacency: Bounded(self.routing.graph().neighbors(id).collect()),
            suspects: Bounded(m.suspects.clone()),
        })
    }

    /// Whether `apply` would take `id`'s entry at `version` (the table holds an older
    /// one, or none and has not forgotten a newer one). Room is not checked.
    pub fn is_news(&self, id: NodeId, version: Version) -> bool {
        let forgotten = self.tombstones.get(&id).is_some_and(|(v, _)| version <= *v);
        !forgotten && self.members.get(&id).is_none_or(|m| m.version < version)
    }

    /// Take `entry` if it is newer than what we hold. A new member starts unreachable
    /// (as of `now`) until routing says otherwise.
    pub fn apply(&mut self, entry: &Entry, now: Instant, max_members: usize) -> Applied {
        if let Some((v, _)) = self.tombstones.get(&entry.id) {
            if entry.version <= *v {
                return Applied::Forgotten;
            }
            self.tombstones.remove(&entry.id);
        }
        let full = self.members.len() >= max_members;
        let mut dropped_suspects = Vec::new();
        let moved = match self.members.get_mut(&entry.id) {
            Some(m) if entry.version <= m.version => return Applied::Stale,
            Some(m) => {
                self.view ^= hash(entry.id, m.version) ^ hash(entry.id, entry.version);
                let moved = m.addr != entry.addr || m.name != entry.name;
                if moved {
                    m.name = entry.name.clone();
                    m.addr = entry.addr.clone();
                }
                m.version = entry.version;
                if m.suspects != entry.suspects.0 {
                    dropped_suspects = std::mem::replace(&mut m.suspects, entry.suspects.0.clone());
                }
                Some(moved)
            }
            None if full => return Applied::Full,
            None => {
                self.view ^= hash(entry.id, entry.version);
                let reachable = self.routing.is_reachable(entry.id);
                self.ids.insert(entry.id);
                self.members.insert(
                    entry.id,
                    Member {
                        name: entry.name.clone(),
                        addr: entry.addr.clone(),
                        version: entry.version,
                        suspects: entry.suspects.0.clone(),
                        unreachable_since: (!reachable).then_some(now),
                        status: Status::Alive,
                        status_since: now,
                    },
                );
                None
            }
        };
        let edges_changed = self.routing.set_adjacency(entry.id, &entry.adjacency.0);
        if !dropped_suspects.is_empty() || !entry.suspects.0.is_empty() {
            self.unsuspect(entry.id, &dropped_suspects, now);
            for &s in &entry.suspects.0 {
                self.suspected_by.entry(s).or_default().insert(entry.id);
                self.refresh(s, now);
            }
        }
        self.refresh(entry.id, now);
        match moved {
            None => Applied::Added,
            Some(moved) => Applied::Newer {
                changed: moved || edges_changed,
            },
        }
    }

    /// Record reachability transitions on members (`since` for the unreachable ones).
    pub fn mark(&mut self, id: NodeId, reachable: bool, now: Instant) {
        if let Some(m) = self.members.get_mut(&id) {
            m.unreachable_since = if reachable { None } else { Some(now) };
        }
        self.refresh(id, now);
    }

    /// Drop a member's entry, remembering its version until `until`.
    pub fn forget(&mut self, id: NodeId, until: Instant, now: Instant) {
        if let Some(m) = self.members.remove(&id) {
            self.ids.remove(&id);
            self.view ^= hash(id, m.version);
            self.routing.remove(id);
            self.tombstones.insert(id, (m.version, until));
            self.unsuspect(id, &m.suspects, now);
        }
    }

    /// `by` no longer suspects `suspects`.
    fn unsuspect(&mut self, by: NodeId, suspects: &[NodeId], now: Instant) {
        for s in suspects {
            if let Some(set) = self.suspected_by.get_mut(s) {
                set.remove(&by);
                if set.is_empty() {
                    self.suspected_by.remove(s);
                }
            }
            self.refresh(*s, now);
        }
    }

    /// Recompute `id`'s status; a change restarts its `status_since`.
    fn refresh(&mut self, id: NodeId, now: Instant) {
        let suspected = self.suspected_by.contains_key(&id);
        let Some(m) = self.members.get_mut(&id) else {
            return;
        };
        let status = if m.version.is_left() {
            Status::Left
        } else if m.unreachable_since.is_some() {
            Status::Failed
        } else if suspected {
            Status::Suspect
        } else {
            Status::Alive
        };
        if status != m.status {
            m.status = status;
            m.status_since = now;
        }
    }

    /// Tombstones whose time is up are dropped.
    pub fn expire_tombstones(&mut self, now: Instant) {
        self.tombstones.retain(|_, (_, until)| *until > now);
    }

    /// Members unreachable since at least `before`, in id order.
    pub fn unreachable_before(&self, before: Instant) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, m)| m.unreachable_since.is_some_and(|t| t <= before))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Heap bytes held (estimate), for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        // A hashed slot is the entry plus one control byte; a BTree node holds up to 11
        // ids plus edges, ~1.5x the payload.
        let member = size_of::<NodeId>() + size_of::<Member>() + 1;
        let ids = self.ids.len() * size_of::<NodeId>() * 3 / 2;
        let strings: usize = self
            .members
            .values()
            .map(|m| m.addr.as_str().len() + m.name.as_str().len())
            .sum();
        self.members.capacity() * member
            + ids
            + strings
            + self.routing.heap_bytes()
            + self.tombstones.len() * 48
            + self.suspected_by.len() * 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::gm::message::test_entry as entry;

    #[test]
    fn versions_order_updates_and_the_view_follows_the_table() {
        let now = Instant::ZERO;
        let mut t = Table::new(NodeId(1));
        assert_eq!(t.apply(&entry(2, 1, &[1]), now, 10), Applied::Added);
        assert_eq!(t.apply(&entry(2, 1, &[3]), now, 10), Applied::Stale);
        assert_eq!(
            t.apply(&entry(2, 2, &[1]), now, 10),
            Applied::Newer { changed: false }
        );
        assert_eq!(
            t.apply(&entry(2, 3, &[1, 3]), now, 10),
            Applied::Newer { changed: true }
        );
        let mut u = Table::new(NodeId(9));
        u.apply(&entry(2, 3, &[1, 3]), now, 10);
        assert_eq!(t.view(), u.view(), "same entries, same view");
        assert_eq!(t.entry(NodeId(2)), Some(entry(2, 3, &[1, 3])));
        assert_eq!(t.apply(&entry(4, 1, &[]), now, 1), Applied::Full);
    }

    #[test]
    fn forgotten_members_stay_forgotten_until_a_newer_version() {
        let now = Instant::ZERO;
        let mut t = Table::new(NodeId(1));
        t.apply(&entry(2, 1, &[]), now, 10);
        assert_eq!(t.unreachable_before(now), [NodeId(2)]);
        t.forget(NodeId(2), now, now);
        assert_eq!(t.view(), 0);
        assert!(!t.is_news(NodeId(2), entry(2, 1, &[]).version));
        assert!(t.is_news(NodeId(2), entry(2, 2, &[]).version));
        assert_eq!(t.apply(&entry(2, 1, &[]), now, 10), Applied::Forgotten);
        assert_eq!(t.apply(&entry(2, 2, &[]), now, 10), Applied::Added);
    }

    #[test]
    fn statuses_follow_suspicion_reachability_and_leaving() {
        let t0 = Instant::from_nanos(1_000);
        let t1 = Instant::from_nanos(2_000);
        let t2 = Instant::from_nanos(3_000);
        let mut t = Table::new(NodeId(1));
        let status = |t: &Table, i| {
            let m = t.get(NodeId(i)).unwrap();
            (m.status, m.status_since)
        };
        t.apply(&entry(1, 1, &[2, 3]), t0, 10);
        t.apply(&entry(2, 1, &[1]), t0, 10);
        t.apply(&entry(3, 1, &[1]), t0, 10);
        for (id, up) in t.routing_mut().take_changes() {
            t.mark(id, up, t0);
        }
        assert_eq!(status(&t, 2), (Status::Alive, t0));
        // 3 suspects 2: suspect until 3 stops saying so.
        let mut e = entry(3, 2, &[1]);
        e.suspects = Bounded(vec![NodeId(2)]);
        t.apply(&e, t1, 10);
        assert_eq!(status(&t, 2), (Status::Suspect, t1));
        t.apply(&entry(3, 3, &[1]), t2, 10);
        assert_eq!(status(&t, 2), (Status::Alive, t2));
        // Unreachable: failed, since then.
        t.mark(NodeId(2), false, t1);
        assert_eq!(status(&t, 2), (Status::Failed, t1));
        // Its last version says it left: left, whatever its reachability.
        let mut left = entry(3, 3, &[]);
        left.version = left.version.left();
        assert!(left.version.is_left() && left.version > entry(3, 3, &[]).version);
        t.apply(&left, t2, 10);
        assert_eq!(status(&t, 3), (Status::Left, t2));
        // Forgetting a suspecter clears its suspicions.
        let mut e = entry(2, 2, &[1]);
        e.suspects = Bounded(vec![NodeId(1)]);
        t.apply(&e, t2, 10);
        assert_eq!(status(&t, 1).0, Status::Suspect);
        t.forget(NodeId(2), t2, t2);
        assert_eq!(status(&t, 1).0, Status::Alive);
    }
}
