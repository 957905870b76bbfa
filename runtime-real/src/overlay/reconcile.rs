//! The overlay's reconciler in the agent: brings the kernel (over rtnetlink) to what the
//! members want, on every change and every second, and keeps what it last programmed
//! for the API.
//!
//! No settling wait, unlike the load balancer: a peer's entries do not depend on
//! reachability, and after a restart the first desired state comes from the KV the
//! agent recovered from disk, which holds every peer it had programmed, so the first
//! pass over the kernel the previous run left changes nothing. The agent leaves the
//! kernel as it is when it stops: containers keep talking while it is away.

use std::sync::Arc;
use std::time::Duration;

use hawser_dataplane::overlay::{Programmed, Reconciler, Rtnl};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::reconcile_loop::{self, LastPass, Schedule};

/// A pass at least this often, to repair drift (an entry deleted by hand).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the kernel held after the last successful pass, for the API.
pub type OverlayStatus = LastPass<Programmed>;

/// Run reconcile passes until the members (the driver) go away.
pub fn spawn(
    kernel: Rtnl,
    desired: watch::Receiver<Option<Arc<Programmed>>>,
    status: Arc<OverlayStatus>,
    metrics: Arc<Metrics>,
) {
    let schedule = Schedule {
        name: "overlay",
        settle: Duration::ZERO,
        interval: INTERVAL,
    };
    let m = metrics.clone();
    reconcile_loop::spawn(
        Reconciler::new(kernel),
        desired,
        schedule,
        metrics.overlay.reconcile.clone(),
        move |r: &Reconciler<Rtnl>| {
            let p = r.programmed();
            // One forwarding entry per peer on each network's device.
            let peers: usize = p.links.values().map(|l| l.fdb.len()).sum();
            m.overlay.peers_programmed.set(peers as i64);
            status.set(p.clone());
        },
    );
}
