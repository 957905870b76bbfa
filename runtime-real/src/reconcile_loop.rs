//! The task that drives a kernel reconciler (the load balancer's, the overlay's): a pass
//! whenever the desired state changes and every `interval` regardless, so drift (an
//! entry deleted by hand) is repaired within an interval.
//!
//! Passes run on a blocking thread (netlink and `nft` calls block). The desired state
//! is `None` until its follower first computed it: a kernel is never reconciled towards
//! a state nobody has decided yet (that would wipe what the previous run left).

use std::fmt::Display;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hawser_dataplane::kernel::{KernelError, Pass};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::metrics::ReconcileMetrics;

/// What a kernel held after its reconciler's last successful pass, for the API to
/// read; `None` before the first.
pub struct LastPass<T>(RwLock<Option<T>>);

impl<T> Default for LastPass<T> {
    fn default() -> Self {
        LastPass(RwLock::new(None))
    }
}

impl<T: Clone> LastPass<T> {
    pub fn get(&self) -> Option<T> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, value: T) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }
}

/// A reconciler of one kernel backend, as the loop sees it.
pub trait Reconcile: Send + 'static {
    /// What it brings the kernel to.
    type Want: Send + Sync + 'static;
    type Change: Display + Send + 'static;
    /// Bring the kernel to `want` (read it, diff, apply).
    fn pass(&mut self, want: &Self::Want) -> Result<Pass<Self::Change>, KernelError>;
}

impl<K: hawser_dataplane::lb::Kernel + 'static> Reconcile for hawser_dataplane::lb::Reconciler<K> {
    type Want = hawser_dataplane::lb::Desired;
    type Change = hawser_dataplane::lb::Change;
    fn pass(&mut self, want: &Self::Want) -> Result<Pass<Self::Change>, KernelError> {
        hawser_dataplane::lb::Reconciler::pass(self, want)
    }
}

impl<K: hawser_dataplane::overlay::Kernel + 'static> Reconcile
    for hawser_dataplane::overlay::Reconciler<K>
{
    type Want = hawser_dataplane::overlay::Programmed;
    type Change = hawser_dataplane::overlay::Change;
    fn pass(&mut self, want: &Self::Want) -> Result<Pass<Self::Change>, KernelError> {
        hawser_dataplane::overlay::Reconciler::pass(self, want)
    }
}

/// How the loop runs.
pub struct Schedule {
    /// What its log lines start with ("lb", "overlay").
    pub name: &'static str,
    /// How long the first pass waits after the start.
    pub settle: Duration,
    /// A pass at least this often.
    pub interval: Duration,
}

/// Run passes of `reconciler` until the follower (the driver) goes away; after each
/// successful pass, `done` sees the reconciler (to publish what the kernel now holds).
pub fn spawn<R: Reconcile>(
    reconciler: R,
    mut desired: watch::Receiver<Option<Arc<R::Want>>>,
    schedule: Schedule,
    metrics: ReconcileMetrics,
    done: impl Fn(&R) + Send + 'static,
) -> JoinHandle<()> {
    let name = schedule.name;
    tokio::spawn(async move {
        let mut reconciler = Some(reconciler);
        tokio::time::sleep(schedule.settle).await;
        loop {
            let want = desired.borrow_and_update().clone();
            if let Some(want) = want {
                let mut r = reconciler
                    .take()
                    .expect("the reconciler is back after each pass");
                let job = tokio::task::spawn_blocking(move || {
                    let started = Instant::now();
                    let result = r.pass(&want);
                    (r, result, started.elapsed())
                });
                let Ok((r, result, took)) = job.await else {
                    warn!("{name}: the reconcile task died; the kernel is no longer followed");
                    return;
                };
                match result {
                    Ok(pass) => {
                        metrics.passed(took, pass.changes.len(), pass.messages);
                        for c in &pass.changes {
                            info!(change = %c, "{name}: kernel changed");
                        }
                        done(&r);
                    }
                    Err(e) => {
                        metrics.failed(took);
                        warn!(error = %e, "{name}: reconcile failed; retrying next pass");
                    }
                }
                reconciler = Some(r);
            }
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(schedule.interval) => {}
            }
        }
    })
}
