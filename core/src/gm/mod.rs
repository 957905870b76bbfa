//! Global membership (Lashup's `lashup_gm`): every node holds every member's adjacency
//! — its membership active view — and so the whole overlay graph, from which routing
//! derives who is reachable, and multicast its trees.
//!
//! - **Versions.** A member's entry carries `(incarnation, counter)`. The incarnation is
//!   persisted (`gm/incarnation`) and bumped at every start, never read from a clock (a
//!   fresh disk starts from a random base below 2^31, so that a wiped node is not
//!   mistaken for its previous life); the
//!   counter is bumped at every change of the active view. If the cluster turns out to
//!   hold a version of our own entry at least as new as ours (the incarnation record was
//!   lost with a wiped disk, or before it was durable), we move past it at once.
//! - **Flood, pushed one hop and pulled after.** A new version of our entry is pushed
//!   to every neighbour (none of them can hold it yet). A node that takes an entry as
//!   news announces its version (`Have`) to its other neighbours; each asks (`Want`) for
//!   what is news to it, from one announcer only (see `pull`), and passes it on the same
//!   way. So an entry crosses into each node about once, and only the small
//!   announcements cross every link; an entry flood would send each entry over every
//!   link, nearly all of it to nodes that got it first by another path. That is the
//!   whole duplicate suppression: no TTL, so no diameter limit.
//! - **Link-level anti-entropy.** When two nodes become neighbours each sends a digest of
//!   its versions; each answers by announcing exactly the versions the other lacks,
//!   which it asks for, and which flood on as news. Two halves of a healed partition converge in one exchange over
//!   the first link between them. There is no periodic re-flood of whole tables.
//! - **Forgetting.** A member unreachable for `forget_after_ms` is dropped, with a
//!   tombstone (for as long again) so a neighbour that has not forgotten it yet cannot
//!   hand the same version back.
//! - **Suspicion.** An entry also lists the neighbours its owner's failure detector
//!   suspects; a node that has one of them as a neighbour checks it at once (the stack
//!   hands `GmEvent::Suspected` to membership), so a silent failure is known to all of
//!   its neighbours about as soon as to the first (see `GlobalMembership::suspect`).
//! - **De-partitioning.** See `probe`.
//! - **Leaving.** A node that leaves publishes a last version of its entry that says so
//!   (with no neighbours); an operator can publish one for a failed member
//!   (`force_leave`). Every node then shows the member `Left` rather than `Failed` (see
//!   `status`).
//!
//! Files: `config`, `message` (wire), `table` (entries and the graph), `status` (a
//! member's status, and the version that says "left"), `outbox` (paced announcements),
//! `pull` (asks out), `probe` (de-partitioning), `event` (events and counters).

mod config;
mod event;
mod message;
mod outbox;
mod probe;
mod pull;
mod status;
mod table;

use std::collections::{BTreeMap, BTreeSet};

pub use crate::wire::Bounded;
pub use config::{GmConfig, MAX_MEMBERS};
pub use event::{GmCounters, GmEvent};
pub use message::{Entry, GmMessage, MAX_DIGEST, MAX_ENTRIES, Version};
pub use status::{LEFT_COUNTER, Status, UnknownStatus};
pub use table::{Applied, Member, Table};

use outbox::{Flush, Outbox};
use probe::Prober;
use pull::Pulls;

use crate::id::{Addr, NodeId};
use crate::persist::Snapshot;
use crate::protocol::{Ctx, Layered, Protocol, TimerId};
use crate::routing::Routing;
use crate::time::{Duration, Instant};
use crate::wire::WireError;

/// Where the incarnation is persisted.
pub const INCARNATION_KEY: &[u8] = b"gm/incarnation";

#[derive(Debug)]
pub enum GmTimer {
    /// Settle the reachable set after a burst of edge removals.
    Recompute,
    /// Housekeeping: forget long-unreachable members, probe for a partition.
    Tick,
    /// Send the announcements that wait in a neighbour's lane (see `outbox`).
    Flush(NodeId),
}

type Cx<'a, 'b> = Ctx<'a, GmTimer, GmEvent>;

/// The empty set the accessors return before the node has started.
static NOBODY: BTreeSet<NodeId> = BTreeSet::new();

/// Global membership; see the module docs.
pub struct GlobalMembership {
    cfg: GmConfig,
    contacts: Vec<Addr>,
    /// The incarnation the last run persisted (0 if none).
    recovered: u64,
    /// The table, from start on (the node's own id is known only then).
    table: Option<Table>,
    version: Version,
    /// This node's active view, mirrored from membership's events.
    neighbors: BTreeSet<NodeId>,
    /// The neighbours our failure detector suspects (published in our entry).
    suspects: BTreeSet<NodeId>,
    /// The pending reachability search, and when it is due.
    recompute: Option<(TimerId, Instant)>,
    /// Since when this node has had no neighbour, having had some (see
    /// `GmConfig::isolation_grace_ms`).
    isolated_since: Option<Instant>,
    prober: Prober,
    /// A probe chosen by the last tick, for the stack to hand to membership.
    probe: Option<(NodeId, Addr)>,
    outbox: Outbox,
    pulls: Pulls,
    counters: GmCounters,
}

impl GlobalMembership {
    /// Global membership restarting from `recovered`. `contacts` are probed first when
    /// part of the cluster is unreachable.
    pub fn new(
        config: GmConfig,
        contacts: Vec<Addr>,
        recovered: &Snapshot,
    ) -> Result<GlobalMembership, String> {
        config.validate()?;
        let mut counters = GmCounters::default();
        let last = match recovered.get(INCARNATION_KEY) {
            None => 0,
            Some(bytes) => match <[u8; 8]>::try_from(bytes) {
                Ok(b) => u64::from_be_bytes(b),
                Err(_) => {
                    // The cluster will tell us the version it holds of us, and we will
                    // move past it (see the module docs).
                    counters.incarnation_restore_failed = 1;
                    0
                }
            },
        };
        Ok(GlobalMembership {
            cfg: config,
            contacts,
            recovered: last,
            table: None,
            version: Version::default(),
            neighbors: BTreeSet::new(),
            suspects: BTreeSet::new(),
            recompute: None,
            isolated_since: None,
            prober: Prober::default(),
            probe: None,
            outbox: Outbox::default(),
            pulls: Pulls::default(),
            counters,
        })
    }

    pub fn config(&self) -> &GmConfig {
        &self.cfg
    }
    pub fn counters(&self) -> &GmCounters {
        &self.counters
    }
    /// The version of this node's own entry.
    pub fn version(&self) -> Version {
        self.version
    }
    /// Routing over the graph (distances, paths, trees); `None` before start.
    pub fn routing(&self) -> Option<&Routing> {
        self.table.as_ref().map(Table::routing)
    }
    /// Whether `node` is reachable from this node over the graph.
    pub fn is_reachable(&self, node: NodeId) -> bool {
        self.routing().is_some_and(|r| r.is_reachable(node))
    }
    /// Nodes reachable from this node, itself included, in id order.
    pub fn reachable(&self) -> &BTreeSet<NodeId> {
        self.routing().map_or(&NOBODY, Routing::reachable)
    }
    /// Graph nodes not reachable from this node, in id order.
    pub fn unreachable(&self) -> Vec<NodeId> {
        self.routing().map_or_else(Vec::new, Routing::unreachable)
    }
    /// Every member whose entry we hold, in id order.
    pub fn members(&self) -> impl Iterator<Item = (NodeId, &Member)> + '_ {
        self.table.iter().flat_map(Table::members)
    }
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.table.as_ref()?.get(id)
    }
    /// A member's published neighbours, in id order.
    pub fn adjacency(&self, id: NodeId) -> Vec<NodeId> {
        self.routing()
            .map(|r| r.graph().neighbors(id).collect())
            .unwrap_or_default()
    }
    /// A fingerprint of the table: nodes with equal views hold equal graphs (so they
    /// derive equal trees).
    pub fn view(&self) -> u64 {
        self.table.as_ref().map_or(0, Table::view)
    }
    /// This node's neighbours, as membership last reported them.
    pub fn neighbors(&self) -> &BTreeSet<NodeId> {
        &self.neighbors
    }
    /// Heap bytes the table holds (estimate), for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.table.as_ref().map_or(0, Table::heap_bytes)
    }

    /// The probe the last housekeeping tick chose, if any (the stack hands it to
    /// membership, which owns the links).
    pub fn take_probe(&mut self) -> Option<(NodeId, Addr)> {
        self.probe.take()
    }
}

/// Global membership runs over membership's overlay: it publishes this node's adjacency,
/// which is the neighbours membership keeps.
impl Layered for GlobalMembership {
    /// Membership made `peer` a neighbour: publish the new adjacency, and swap digests.
    fn neighbor_up(&mut self, peer: NodeId, ctx: &mut Cx) {
        if self.table.is_some() && self.neighbors.insert(peer) {
            self.isolated_since = None;
            self.publish(ctx);
            self.send_digest(peer, ctx);
            self.settle(ctx);
        }
    }

    /// Membership dropped `peer`: publish the new adjacency, and ask another holder for
    /// what was asked of it.
    fn neighbor_down(&mut self, peer: NodeId, ctx: &mut Cx) {
        if self.table.is_some() && self.neighbors.remove(&peer) {
            if self.neighbors.is_empty() {
                self.isolated_since = Some(ctx.now());
            }
            self.suspects.remove(&peer);
            self.outbox.remove(peer);
            let asks = self.pulls.reassign(Some(peer), None, ctx.now());
            self.send_wants(asks, ctx);
            self.publish(ctx);
            self.settle(ctx);
        }
    }
}

impl GlobalMembership {
    /// Our failure detector started (`true`) or stopped suspecting neighbour `peer`:
    /// publish it, so the suspect's other neighbours check it at once (the stack hands
    /// them a `GmEvent::Suspected`). A silent failure is then known to all of its
    /// neighbours, and so unreachable everywhere, about as soon as the first of them
    /// notices, rather than after each one's own probing round.
    pub fn suspect(&mut self, peer: NodeId, on: bool, ctx: &mut Cx) {
        if self.table.is_none() || !self.neighbors.contains(&peer) {
            return;
        }
        let changed = if on {
            self.suspects.insert(peer)
        } else {
            self.suspects.remove(&peer)
        };
        if changed {
            self.publish(ctx);
        }
    }

    fn own_entry(&self, ctx: &Cx) -> Entry {
        Entry {
            id: ctx.id(),
            name: ctx.name().clone(),
            addr: ctx.addr().clone(),
            version: self.version,
            adjacency: Bounded(self.neighbors.iter().copied().collect()),
            suspects: Bounded(self.suspects.iter().copied().collect()),
        }
    }

    /// Leave the cluster, just before the node stops: push to every neighbour the last
    /// version of our entry, which says we left and lists no neighbours, so every node
    /// shows us `Left`, not `Failed`. Nothing is published after it.
    pub fn leave(&mut self, ctx: &mut Cx) {
        if self.table.is_none() || self.version.is_left() {
            return;
        }
        self.version = self.version.left();
        let entry = Entry {
            adjacency: Bounded(Vec::new()),
            suspects: Bounded(Vec::new()),
            ..self.own_entry(ctx)
        };
        self.push(entry, ctx);
    }

    /// Mark `member`, which this node cannot reach, as left: publish the last version of
    /// its entry (no neighbours, "left"), so every node shows it `Left` and forgets it
    /// after `forget_after_ms`. If the member is in fact alive behind a partition, it
    /// answers with a newer version when it hears of this one, and is alive again.
    pub fn force_leave(&mut self, member: NodeId, ctx: &mut Cx) -> Result<(), ForceLeaveError> {
        let t = self.table.as_ref().ok_or(ForceLeaveError::NotStarted)?;
        if member == ctx.id() {
            return Err(ForceLeaveError::Myself);
        }
        let entry = t.entry(member).ok_or(ForceLeaveError::Unknown)?;
        if entry.version.is_left() {
            return Ok(());
        }
        if self.is_reachable(member) {
            return Err(ForceLeaveError::Reachable);
        }
        let version = entry.version.left();
        let entry = Entry {
            version,
            adjacency: Bounded(Vec::new()),
            suspects: Bounded(Vec::new()),
            ..entry
        };
        if let Some(t) = self.table.as_mut() {
            t.apply(&entry, ctx.now(), usize::MAX);
        }
        self.announce(&[(member, version)], None, ctx);
        self.settle(ctx);
        Ok(())
    }

    /// A new version of our entry, pushed to every neighbour (none can hold it yet).
    /// Once we left, there is none.
    fn publish(&mut self, ctx: &mut Cx) {
        if self.version.is_left() {
            return;
        }
        self.version.counter += 1;
        let entry = self.own_entry(ctx);
        self.push(entry, ctx);
    }

    /// Apply our own `entry`, and push it to every neighbour.
    fn push(&mut self, entry: Entry, ctx: &mut Cx) {
        if let Some(t) = self.table.as_mut() {
            t.apply(&entry, ctx.now(), usize::MAX);
        }
        let bytes = GmMessage::Entries(Bounded(vec![entry])).encode();
        for &n in &self.neighbors {
            if ctx.send(n, &bytes).is_ok() {
                self.counters.entries_msgs_sent += 1;
                self.counters.entries_sent += 1;
            }
        }
    }

    /// Announce `versions` to every neighbour but `except`.
    fn announce(&mut self, versions: &[(NodeId, Version)], except: Option<NodeId>, ctx: &mut Cx) {
        if versions.is_empty() {
            return;
        }
        let targets: Vec<NodeId> = self
            .neighbors
            .iter()
            .copied()
            .filter(|n| Some(*n) != except)
            .collect();
        for n in targets {
            self.announce_to(n, versions, ctx);
        }
    }

    /// Queue `versions` for `peer`, and send what its lane allows now.
    fn announce_to(&mut self, peer: NodeId, versions: &[(NodeId, Version)], ctx: &mut Cx) {
        self.outbox
            .push(peer, versions, ctx.now(), self.cfg.batch_burst);
        self.flush_lane(peer, false, ctx);
    }

    /// Send `entries` to `peer` now (answers are not paced: asks are).
    fn send_entries(&mut self, peer: NodeId, entries: Vec<Entry>, ctx: &mut Cx) {
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let chunk: Vec<Entry> = entries.by_ref().take(MAX_ENTRIES).collect();
            let n = chunk.len() as u64;
            if ctx
                .send(peer, &GmMessage::Entries(Bounded(chunk)).encode())
                .is_ok()
            {
                self.counters.entries_msgs_sent += 1;
                self.counters.entries_sent += n;
            }
        }
    }

    /// Ask each neighbour for the members listed for it.
    fn send_wants(&mut self, asks: BTreeMap<NodeId, Vec<NodeId>>, ctx: &mut Cx) {
        for (peer, members) in asks {
            for chunk in members.chunks(MAX_DIGEST) {
                let msg = GmMessage::Want(Bounded(chunk.to_vec()));
                if ctx.send(peer, &msg.encode()).is_ok() {
                    self.counters.want_msgs_sent += 1;
                    self.counters.wants_sent += chunk.len() as u64;
                }
            }
        }
    }

    fn flush_lane(&mut self, peer: NodeId, timer_fired: bool, ctx: &mut Cx) {
        let pace = (
            Duration::from_millis(self.cfg.batch_ms),
            self.cfg.batch_burst,
        );
        match self.outbox.flush(peer, ctx.now(), pace, timer_fired) {
            Flush::Send(versions) => {
                for chunk in versions.chunks(MAX_DIGEST) {
                    let msg = GmMessage::Have(Bounded(chunk.to_vec()));
                    if ctx.send(peer, &msg.encode()).is_ok() {
                        self.counters.have_msgs_sent += 1;
                        self.counters.haves_sent += chunk.len() as u64;
                    }
                }
            }
            Flush::Arm(at) => {
                ctx.set_timer(at - ctx.now(), GmTimer::Flush(peer));
            }
            Flush::Wait => {}
        }
    }

    /// Our versions, in chunks covering consecutive id ranges that together cover all
    /// ids, so the peer can tell "you lack it" from "not in this chunk".
    fn send_digest(&mut self, peer: NodeId, ctx: &mut Cx) {
        let Some(t) = self.table.as_ref() else {
            return;
        };
        let all: Vec<(NodeId, Version)> = t.members().map(|(id, m)| (id, m.version)).collect();
        let chunks: Vec<&[(NodeId, Version)]> = all.chunks(MAX_DIGEST).collect();
        let mut from = NodeId(0);
        for (i, chunk) in chunks.iter().enumerate() {
            let to = match chunk.last() {
                Some(last) if i + 1 < chunks.len() => last.0,
                _ => NodeId(u64::MAX),
            };
            let msg = GmMessage::Digest {
                from,
                to,
                versions: Bounded(chunk.to_vec()),
            };
            if ctx.send(peer, &msg.encode()).is_ok() {
                self.counters.digest_msgs_sent += 1;
            }
            from = NodeId(to.0.saturating_add(1));
        }
    }

    /// Answer a digest chunk by announcing the versions in its range the peer lacks or
    /// has older: a node that links up with several neighbours at once (a joiner) then
    /// asks for each entry once, not once per neighbour.
    fn on_digest(
        &mut self,
        peer: NodeId,
        from: NodeId,
        to: NodeId,
        versions: Vec<(NodeId, Version)>,
        ctx: &mut Cx,
    ) {
        let Some(t) = self.table.as_ref() else {
            return;
        };
        if from > to {
            return;
        }
        let theirs: BTreeMap<NodeId, Version> = versions.into_iter().collect();
        let missing: Vec<(NodeId, Version)> = t
            .range(from..=to)
            .filter(|(id, m)| theirs.get(id).is_none_or(|v| *v < m.version))
            .map(|(id, m)| (id, m.version))
            .collect();
        self.announce_to(peer, &missing, ctx);
    }

    /// `peer` announced versions: ask it for those that are news and not asked for yet.
    fn on_have(&mut self, peer: NodeId, versions: Vec<(NodeId, Version)>, ctx: &mut Cx) {
        let Some(t) = self.table.as_ref() else {
            return;
        };
        let (me, now) = (ctx.id(), ctx.now());
        let mut ask = Vec::new();
        for (member, version) in versions {
            self.outbox.peer_has(peer, member, version);
            // Our own entry at our version may still differ (see `on_own_entry`).
            let news = if member == me {
                version >= self.version
            } else {
                t.is_news(member, version)
            };
            if news
                && self
                    .pulls
                    .offer(member, version, peer, now, self.cfg.max_members)
            {
                ask.push(member);
            }
        }
        if !ask.is_empty() {
            self.send_wants(BTreeMap::from([(peer, ask)]), ctx);
        }
    }

    /// `peer` asked for entries: send those we hold.
    fn on_want(&mut self, peer: NodeId, members: Vec<NodeId>, ctx: &mut Cx) {
        let Some(t) = self.table.as_ref() else {
            return;
        };
        let entries: Vec<Entry> = members.into_iter().filter_map(|m| t.entry(m)).collect();
        self.send_entries(peer, entries, ctx);
    }

    /// Apply entries from `peer`: news are announced on, and a peer behind on something
    /// we know better is told our version.
    fn on_entries(&mut self, peer: NodeId, entries: Vec<Entry>, ctx: &mut Cx) {
        let (me, now) = (ctx.id(), ctx.now());
        let mut news = Vec::new();
        let mut reply = Vec::new();
        let mut asks: BTreeMap<NodeId, Vec<NodeId>> = BTreeMap::new();
        for e in entries {
            // Whatever it is, the peer holds it: no need to announce it that version.
            self.outbox.peer_has(peer, e.id, e.version);
            if let Some(next) = self.pulls.got(e.id, e.version, now) {
                asks.entry(next).or_default().push(e.id);
            }
            if e.id == me {
                self.on_own_entry(peer, &e, ctx);
                continue;
            }
            let Some(t) = self.table.as_mut() else {
                return;
            };
            let applied = t.apply(&e, ctx.now(), self.cfg.max_members);
            if matches!(applied, Applied::Added | Applied::Newer { .. }) {
                let concerned = |s: &&NodeId| **s == me || self.neighbors.contains(s);
                for &s in e.suspects.0.iter().filter(concerned) {
                    ctx.emit(GmEvent::Suspected {
                        member: s,
                        by: e.id,
                    });
                }
            }
            match applied {
                Applied::Added => {
                    ctx.emit(GmEvent::Added {
                        member: e.id,
                        addr: e.addr.clone(),
                    });
                    news.push((e.id, e.version));
                }
                Applied::Newer { changed } => {
                    if changed {
                        ctx.emit(GmEvent::Changed { member: e.id });
                    }
                    news.push((e.id, e.version));
                }
                Applied::Stale => {
                    self.counters.entries_stale += 1;
                    if let Some(m) = t.get(e.id).filter(|m| m.version > e.version) {
                        reply.push((e.id, m.version));
                    }
                    continue;
                }
                Applied::Forgotten => {
                    self.counters.entries_stale += 1;
                    continue;
                }
                Applied::Full => {
                    self.counters.members_refused += 1;
                    continue;
                }
            }
            self.counters.entries_applied += 1;
        }
        self.announce(&news, Some(peer), ctx);
        if !reply.is_empty() {
            self.announce_to(peer, &reply, ctx);
        }
        self.send_wants(asks, ctx);
        self.settle(ctx);
    }

    /// Someone holds an entry of ours. Newer than ours (or as new but different): the
    /// version was used by an earlier run whose incarnation record we lost, so take a
    /// fresh incarnation past it. Older: hand the peer our current one.
    fn on_own_entry(&mut self, peer: NodeId, e: &Entry, ctx: &mut Cx) {
        let ours = self.own_entry(ctx);
        if e.version > ours.version || (e.version == ours.version && *e != ours) {
            self.counters.self_bumps += 1;
            self.version = Version {
                incarnation: e.version.incarnation.max(self.version.incarnation) + 1,
                counter: 0,
            };
            self.persist_incarnation(ctx);
            self.publish(ctx);
        } else if e.version < ours.version {
            self.send_entries(peer, vec![ours], ctx);
        }
    }

    fn persist_incarnation(&mut self, ctx: &mut Cx) {
        let bytes = self.version.incarnation.to_be_bytes().to_vec();
        ctx.persist(INCARNATION_KEY.to_vec(), Some(bytes));
    }

    /// Report reachability changes routing made, and arm the coalescing timer if a
    /// removal left the reachable set to settle.
    fn settle(&mut self, ctx: &mut Cx) {
        let Some(t) = self.table.as_mut() else {
            return;
        };
        let now = ctx.now();
        for (id, up) in t.routing_mut().take_changes() {
            t.mark(id, up, now);
            if up {
                self.prober.clear(id);
                ctx.emit(GmEvent::Reachable(id));
            } else {
                ctx.emit(GmEvent::Unreachable(id));
            }
        }
        if !t.routing().is_stale() {
            return;
        }
        // Alone, hold the view a while (see `isolation_grace_ms`); a neighbour back
        // brings a search held that way forward.
        let soon = now + Duration::from_millis(self.cfg.recompute_delay_ms);
        let due = self.grace_end().map_or(soon, |end| end.max(soon));
        match self.recompute {
            Some((_, at)) if at <= due => {}
            pending => {
                if let Some((timer, _)) = pending {
                    ctx.cancel_timer(timer);
                }
                let timer = ctx.set_timer(due - now, GmTimer::Recompute);
                self.recompute = Some((timer, due));
            }
        }
    }

    /// When a node that lost its last neighbour stops holding its view of the others.
    fn grace_end(&self) -> Option<Instant> {
        self.isolated_since
            .map(|since| since + Duration::from_millis(self.cfg.isolation_grace_ms))
    }

    fn on_tick(&mut self, ctx: &mut Cx) {
        let now = ctx.now();
        let forget = Duration::from_millis(self.cfg.forget_after_ms);
        let interval = Duration::from_millis(self.cfg.probe_interval_ms);
        if let Some(t) = self.table.as_mut() {
            if let Some(cutoff) = earlier(now, forget) {
                for id in t.unreachable_before(cutoff) {
                    t.forget(id, now + forget, now);
                    self.prober.clear(id);
                    ctx.emit(GmEvent::Forgotten(id));
                }
            }
            t.expire_tombstones(now);
            // Only members unreachable for a whole period: one just learned of, whose
            // neighbours' entries are still on their way, is not a partition.
            let settled = earlier(now, interval)
                .map(|before| t.unreachable_before(before))
                .unwrap_or_default();
            let candidates: Vec<(NodeId, Addr)> = settled
                .into_iter()
                .filter_map(|id| t.get(id).map(|m| (id, m.addr.clone())))
                .collect();
            let max = Duration::from_millis(self.cfg.probe_backoff_max_ms);
            self.probe =
                self.prober
                    .pick(ctx.rng(), now, &candidates, &self.contacts, interval, max);
            if self.probe.is_some() {
                self.counters.probes += 1;
            }
            // An ask unanswered for a whole period goes to another holder.
            let asks = self.pulls.reassign(None, earlier(now, interval), now);
            self.send_wants(asks, ctx);
        }
        self.settle(ctx);
        let after = ctx.rng().jitter(interval, interval / 2);
        ctx.set_timer(after, GmTimer::Tick);
    }
}

/// Why [`GlobalMembership::force_leave`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForceLeaveError {
    NotStarted,
    /// This node's table holds no such member.
    Unknown,
    /// The member is reachable: it is alive, and would answer at once.
    Reachable,
    /// This node itself (leave it instead).
    Myself,
}

impl std::fmt::Display for ForceLeaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ForceLeaveError::NotStarted => "the node has not started",
            ForceLeaveError::Unknown => "no such member",
            ForceLeaveError::Reachable => {
                "the member is reachable (alive): only a failed member can be forced to leave"
            }
            ForceLeaveError::Myself => "that is this node: use `hawser leave` instead",
        })
    }
}

impl std::error::Error for ForceLeaveError {}

/// `now - d`, if the clock has run that long.
fn earlier(now: Instant, d: Duration) -> Option<Instant> {
    now.as_nanos()
        .checked_sub(d.as_nanos())
        .map(Instant::from_nanos)
}

impl Protocol for GlobalMembership {
    type Timer = GmTimer;
    type Event = GmEvent;

    fn start(&mut self, ctx: &mut Cx) {
        self.version = Version {
            incarnation: match self.recovered {
                // A fresh or wiped disk: a random base, so a wiped node's versions, and
                // the multicast sequence numbers made from its incarnation, are not its
                // previous life's (found by the swarm, seed 208945: a wiped node's
                // first multicast was dropped as its old life's). Below 2^31, so the
                // 32 bits multicast keeps of it have room to grow.
                0 => 1 + ctx.rng().u64() % (1 << 31),
                last => last + 1,
            },
            counter: 0,
        };
        self.persist_incarnation(ctx);
        self.table = Some(Table::new(ctx.id()));
        self.publish(ctx);
        let interval = Duration::from_millis(self.cfg.probe_interval_ms);
        let after = ctx.rng().jitter(interval, interval / 2);
        ctx.set_timer(after, GmTimer::Tick);
    }

    fn message(&mut self, from: NodeId, body: &[u8], ctx: &mut Cx) -> Result<(), WireError> {
        match GmMessage::decode(body)? {
            GmMessage::Entries(entries) => self.on_entries(from, entries.0, ctx),
            GmMessage::Digest {
                from: lo,
                to,
                versions,
            } => self.on_digest(from, lo, to, versions.0, ctx),
            GmMessage::Have(versions) => self.on_have(from, versions.0, ctx),
            GmMessage::Want(members) => self.on_want(from, members.0, ctx),
        }
        Ok(())
    }

    fn message_kind(body: &[u8]) -> Option<&'static str> {
        GmMessage::decode(body).ok().map(|m| m.kind_name())
    }

    fn timer(&mut self, timer: GmTimer, ctx: &mut Cx) {
        match timer {
            GmTimer::Recompute => {
                self.recompute = None;
                if self.grace_end().is_some_and(|end| ctx.now() < end) {
                    // Armed before the last neighbour went: `settle` re-arms it for the
                    // end of the grace.
                    return self.settle(ctx);
                }
                if let Some(t) = self.table.as_mut() {
                    t.routing_mut().recompute();
                    self.counters.recomputes += 1;
                }
                self.settle(ctx);
            }
            GmTimer::Tick => self.on_tick(ctx),
            GmTimer::Flush(peer) => self.flush_lane(peer, true, ctx),
        }
    }
}
