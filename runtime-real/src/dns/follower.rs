//! The cluster zone, kept equal to the node's KV records and membership: a driver
//! [`Follower`] that updates the shared zone in place after every drain that changed a
//! `dns/` key or membership. The DNS tasks read the zone per query, so the first query
//! after a change sees it; there is no cache in between.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use hawser_dataplane::dns::Zone;
use hawser_dataplane::dns::records::{KEY_PREFIX, owner_of};

use super::metrics::DnsMetrics;
use crate::driver::{Changes, Follower, View};

/// The zone as the DNS tasks and the admin API share it.
pub type SharedZone = Arc<RwLock<Zone>>;

pub struct ZoneFollower {
    pub zone: SharedZone,
    pub metrics: DnsMetrics,
}

impl Follower for ZoneFollower {
    fn update(&mut self, view: &View<'_>, changes: &Changes) {
        let mut zone = self.zone.write().unwrap_or_else(|e| e.into_inner());
        let skipped = zone.skipped;
        apply(&mut zone, view, changes);
        let (names, members) = zone.counts();
        self.metrics.zone_names.set(names as i64);
        self.metrics.zone_members.set(members as i64);
        self.metrics.zone_skipped.inc_by(zone.skipped - skipped);
    }
}

/// Bring `zone` up to date with what `changes` says changed.
fn apply(zone: &mut Zone, view: &View<'_>, changes: &Changes) {
    if changes.initial {
        fill(zone, view);
        return;
    }
    let kv = view.node.protocol().kv();
    for key in changes
        .keys
        .range(KEY_PREFIX.to_owned()..)
        .take_while(|k| k.starts_with(KEY_PREFIX))
    {
        if let Some(owner) = owner_of(key) {
            zone.set_records(owner, kv.get(key));
        }
    }
    if changes.membership {
        set_members(zone, view);
    }
}

/// Put everything the node holds into `zone`: every record key, every reachable member.
pub fn fill(zone: &mut Zone, view: &View<'_>) {
    for (key, value) in view.node.protocol().kv().scan(KEY_PREFIX) {
        if let Some(owner) = owner_of(key) {
            zone.set_records(owner, Some(value));
        }
    }
    set_members(zone, view);
}

/// The members reachable from this node (itself included), by name, with the IP of the
/// address they advertise.
fn set_members(zone: &mut Zone, view: &View<'_>) {
    let me = view.node.id();
    let gm = view.node.protocol().gm();
    let ip = |addr: &str| addr.parse::<SocketAddr>().ok().map(|a| a.ip());
    // Global membership holds this node's own entry from its start.
    let members: Vec<(&str, IpAddr)> = gm
        .members()
        .filter(|(id, _)| *id == me || gm.is_reachable(*id))
        .filter_map(|(_, m)| Some((m.name.as_str(), ip(m.addr.as_str())?)))
        .collect();
    zone.set_members(members);
}
