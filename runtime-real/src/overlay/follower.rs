//! The overlay's members inside the agent: one [`Member`] per network, fed the KV's
//! overlay keys and polled inside the driver task, their writes handed to a task that
//! applies them, and their kernel state to the reconciler.
//!
//! A member is polled after every drain that changed an overlay key or global
//! membership (the [`Follower`]), and every [`TICK`] regardless (the ticker): forgetting
//! a node is a matter of time passing, which no change announces. Both paths run the
//! same [`Overlays::poll`] on the same state, behind one mutex that only the driver
//! task and the API's readers take, briefly.
//!
//! Writes go through [`DriverHandle::kv_op`] like an API write, so they are durable
//! before they count; they travel on a bounded channel, and one that does not fit is
//! dropped: the member issues it again after its retry time if the KV still lacks it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hawser_dataplane::overlay::kv::PREFIX;
use hawser_dataplane::overlay::{Member, Programmed, Write};
use tokio::sync::{mpsc, watch};
use tracing::warn;

use super::settings::OverlayConfig;
use crate::driver::{Changes, DriverHandle, Follower, KvOpError, View};
use crate::metrics::Metrics;

/// How often members are polled when nothing changes.
pub const TICK: Duration = Duration::from_secs(1);
/// Writes waiting for the driver at most (a handful per poll is normal).
const WRITE_QUEUE: usize = 256;

/// Every network's member, and where their output goes.
pub struct Overlays {
    members: Vec<Member>,
    /// The members' clock's zero.
    epoch: Instant,
    writes: mpsc::Sender<Write>,
    /// `None` until the first poll.
    desired: watch::Sender<Option<Arc<Programmed>>>,
    metrics: Arc<Metrics>,
}

/// The overlays, shared by the driver task (follower, ticker) and the admin API.
#[derive(Clone)]
pub struct SharedOverlays(Arc<Mutex<Overlays>>);

impl SharedOverlays {
    /// The members of `config`'s networks, the receiving end of their writes and of
    /// their desired kernel state.
    pub fn new(
        config: &OverlayConfig,
        me: hawser_core::NodeId,
        metrics: Arc<Metrics>,
    ) -> (
        SharedOverlays,
        mpsc::Receiver<Write>,
        watch::Receiver<Option<Arc<Programmed>>>,
    ) {
        let underlay = config.underlay;
        let forget_ms = config.forget_after.as_millis() as u64;
        let members = config
            .networks
            .iter()
            .map(|n| Member::new(n.clone(), me, underlay, forget_ms))
            .collect();
        let (writes, write_rx) = mpsc::channel(WRITE_QUEUE);
        let (desired, desired_rx) = watch::channel(None);
        let shared = Overlays {
            members,
            epoch: Instant::now(),
            writes,
            desired,
            metrics,
        };
        (
            SharedOverlays(Arc::new(Mutex::new(shared))),
            write_rx,
            desired_rx,
        )
    }

    /// The overlays, for a quick look (a poisoned lock still holds sound state: every
    /// update is a whole poll).
    pub fn lock(&self) -> MutexGuard<'_, Overlays> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Overlays {
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Poll every member at the current time and hand out what they decided.
    fn poll(&mut self, view: &View<'_>) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let protocol = view.node.protocol();
        let (kv, gm) = (protocol.kv(), protocol.gm());
        let mut want = Programmed::default();
        let m = &self.metrics.overlay;
        let (mut held, mut peers, mut waiting, mut displaced, mut malformed) = (0, 0, 0, 0, 0);
        for member in &mut self.members {
            for write in member.poll(now_ms, |n| gm.is_reachable(n), |k| kv.get(k)) {
                if self.writes.try_send(write).is_err() {
                    m.kv_write_errors.inc();
                }
            }
            let d = member.desired();
            want.links
                .extend(d.state.links.iter().map(|(k, v)| (k.clone(), v.clone())));
            held += usize::from(d.share.is_some());
            peers += d.peers.len();
            waiting += d.stats.unrecorded + d.stats.stale + d.stats.mac_clash + d.stats.family;
            displaced += member.allocation().displaced.len();
            malformed += member.catalog().malformed();
        }
        m.subnets_held.set(held as i64);
        m.peers.set(peers as i64);
        m.peers_waiting.set(waiting as i64);
        m.displaced.set(displaced as i64);
        m.malformed.set(malformed as i64);
        self.desired.send_if_modified(|current| {
            if current.as_deref() == Some(&want) {
                return false;
            }
            *current = Some(Arc::new(want));
            true
        });
    }
}

/// Feeds the members the overlay keys that changed, and polls them.
pub struct OverlayFollower(pub SharedOverlays);

impl Follower for OverlayFollower {
    fn update(&mut self, view: &View<'_>, changes: &Changes) {
        let mut o = self.0.lock();
        let kv = view.node.protocol().kv();
        let mut ours = changes.initial || changes.membership;
        if changes.initial {
            for (k, v) in kv.scan(PREFIX) {
                for m in &mut o.members {
                    m.kv_changed(k, Some(v));
                }
            }
        } else {
            let changed = changes
                .keys
                .range(PREFIX.to_owned()..)
                .take_while(|k| k.starts_with(PREFIX));
            for k in changed {
                for m in &mut o.members {
                    m.kv_changed(k, kv.get(k));
                }
                ours = true;
            }
        }
        if ours {
            o.poll(view);
        }
    }
}

/// Poll the members every [`TICK`] until the driver stops.
pub fn spawn_ticker(handle: DriverHandle, overlays: SharedOverlays) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let o = overlays.clone();
            if handle
                .inspect(move |view| o.lock().poll(view))
                .await
                .is_none()
            {
                return;
            }
        }
    });
}

/// Apply the members' writes through the driver until it stops.
pub fn spawn_writer(
    handle: DriverHandle,
    mut writes: mpsc::Receiver<Write>,
    metrics: Arc<Metrics>,
) {
    tokio::spawn(async move {
        while let Some(w) = writes.recv().await {
            let m = &metrics.overlay;
            match handle.kv_op(w.key.clone(), w.op).await {
                Ok(_) => {
                    m.kv_writes.inc();
                }
                Err(KvOpError::Stopped) => return,
                Err(e) => {
                    m.kv_write_errors.inc();
                    warn!(key = %w.key, error = %e, "overlay: a KV write was refused");
                }
            }
        }
    });
}
