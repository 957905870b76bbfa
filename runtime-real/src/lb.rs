//! The L4 load balancer in the agent: a [`Follower`] that turns the KV's VIPs and this
//! node's reachability into the desired kernel state, and a reconciler task that brings
//! the kernel there.
//!
//! The follower runs inside the driver task after every drain that changed a VIP key or
//! global membership: it re-reads only the changed keys ([`Catalog`]), computes the
//! desired state (pure code in `hawser-dataplane`) and publishes it on a watch channel
//! if it differs. The reconciler task runs a pass (on a blocking thread: the kernel calls
//! block) whenever the desired state changes and every `lb.interval_ms` regardless, so
//! drift is repaired within an interval.
//!
//! After a start the first pass waits `SETTLE`: the KV recovered from disk may be stale
//! and membership has not formed yet, so every other node looks unreachable. Until then
//! the kernel keeps what the previous run left, which is what makes a restart change
//! nothing. The agent leaves the kernel as it is when it stops, for the same reason.

use std::sync::Arc;
use std::time::Duration;

use hawser_dataplane::lb::ipvs::Ipvs;
use hawser_dataplane::lb::kv::PREFIX;
use hawser_dataplane::lb::nft::Nft;
use hawser_dataplane::lb::{
    Catalog, Desired, Kernel, KernelError, NameRanges, Programmed, ProgrammedNames, Reconciler,
    desired,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{LbBackend, LbConfig};
use crate::driver::{Changes, Follower, View};
use crate::metrics::Metrics;
use crate::reconcile_loop::{self, LastPass, Schedule};

/// How long after a start the first reconcile pass waits (see the module docs).
pub const SETTLE: Duration = Duration::from_secs(2);

/// What the rest of the agent can see of the load balancer.
pub struct LbStatus {
    pub backend: LbBackend,
    programmed: LastPass<Programmed>,
    pub ranges: NameRanges,
}

impl LbStatus {
    pub fn new(backend: LbBackend, ranges: NameRanges) -> LbStatus {
        LbStatus {
            backend,
            programmed: LastPass::default(),
            ranges,
        }
    }

    /// What the kernel held after the last successful pass.
    pub fn programmed(&self) -> Option<Programmed> {
        self.programmed.get()
    }
}

/// Open the kernel backend `config` asks for, in this process's network namespace.
/// `Ok(None)` when the load balancer is off; an error the agent refuses to start with
/// when the kernel lacks what was asked for.
pub fn open(config: &LbConfig) -> Result<Option<Box<dyn Kernel>>, KernelError> {
    Ok(match config.backend {
        LbBackend::Off => None,
        LbBackend::Nftables => Some(Box::new(Nft::open(&config.nft, &config.interface)?)),
        LbBackend::Ipvs => Some(Box::new(Ipvs::open(&config.interface)?)),
    })
}

/// Derives the desired state from the node (see the module docs).
pub struct LbFollower {
    catalog: Catalog,
    ranges: NameRanges,
    desired: watch::Sender<Option<Arc<Desired>>>,
    metrics: Arc<Metrics>,
}

impl LbFollower {
    pub fn new(
        ranges: NameRanges,
        metrics: Arc<Metrics>,
    ) -> (LbFollower, watch::Receiver<Option<Arc<Desired>>>) {
        let (desired, rx) = watch::channel(None);
        let f = LbFollower {
            catalog: Catalog::default(),
            ranges,
            desired,
            metrics,
        };
        (f, rx)
    }
}

impl Follower for LbFollower {
    fn update(&mut self, view: &View<'_>, changes: &Changes) {
        let kv = view.node.protocol().kv();
        let mut vips_changed = changes.initial;
        if changes.initial {
            for (k, v) in kv.scan(PREFIX) {
                self.catalog.update(k, Some(v));
            }
        } else {
            let ours = changes
                .keys
                .range(PREFIX.to_owned()..)
                .take_while(|k| k.starts_with(PREFIX));
            for k in ours {
                self.catalog.update(k, kv.get(k));
                vips_changed = true;
            }
        }
        if !vips_changed && !changes.membership {
            return;
        }
        let gm = view.node.protocol().gm();
        let d = desired(&self.catalog.vips(), |n| gm.is_reachable(n), self.ranges);
        let m = &self.metrics.lb;
        m.vips.set(d.stats.vips as i64);
        m.backends.set(d.stats.backends as i64);
        m.unreachable_backends.set(d.stats.unreachable as i64);
        m.fail_open.set(d.stats.fail_open as i64);
        m.malformed.set(self.catalog.malformed() as i64);
        self.desired.send_if_modified(|current| {
            if current.as_deref() == Some(&d) {
                return false;
            }
            *current = Some(Arc::new(d));
            true
        });
    }
}

/// Run reconcile passes on `kernel` until the follower (the driver) goes away.
pub fn spawn_reconciler(
    kernel: Box<dyn Kernel>,
    desired: watch::Receiver<Option<Arc<Desired>>>,
    interval: Duration,
    names: ProgrammedNames,
    status: Arc<LbStatus>,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    let schedule = Schedule {
        name: "lb",
        settle: SETTLE,
        interval,
    };
    reconcile_loop::spawn(
        Reconciler::new(kernel, names),
        desired,
        schedule,
        metrics.lb.reconcile.clone(),
        move |r| status.programmed.set(r.programmed().clone()),
    )
}
