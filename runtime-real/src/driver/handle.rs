//! How other tasks (the admin API, signal handlers, a user's code) reach the node: every
//! call is a message to the node task, run there between two inputs, so nothing outside
//! ever holds the node and the node never waits on anyone.

use std::collections::BTreeSet;

use hawser_core::{Addr, Instant, Node};
use tokio::sync::{mpsc, oneshot};

use super::host::{Host, View};
use super::stack::StackHost;
use crate::store::StoreError;

type Inspector<H> = Box<dyn FnOnce(&View<'_, <H as Host>::Protocol>) + Send>;
type Commander<H> = Box<dyn FnOnce(&mut Node<<H as Host>::Protocol>, Instant) + Send>;

/// What a [`DriverHandle`] sends the node task.
pub(super) enum Control<H: Host> {
    Inspect(Inspector<H>),
    Command(Commander<H>),
    Request(H::Request),
    Deny(BTreeSet<Addr>),
    Shutdown(oneshot::Sender<()>),
}

/// A way to talk to a running driver from other tasks.
pub struct DriverHandle<H: Host = StackHost> {
    pub(super) control: mpsc::Sender<Control<H>>,
}

impl<H: Host> Clone for DriverHandle<H> {
    fn clone(&self) -> Self {
        DriverHandle {
            control: self.control.clone(),
        }
    }
}

/// The driver has stopped: the request was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverStopped;

impl std::fmt::Display for DriverStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the driver has stopped")
    }
}

impl std::error::Error for DriverStopped {}

impl<H: Host> DriverHandle<H> {
    /// Run `f` on the node inside the driver task, between two inputs. `None` once the
    /// driver has stopped.
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_, H::Protocol>) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let f: Inspector<H> = Box::new(move |view| {
            let _ = tx.send(f(view));
        });
        self.control.send(Control::Inspect(f)).await.ok()?;
        rx.await.ok()
    }

    /// Run `f` on the node at the driver's current time, between two inputs (e.g.
    /// `node.command(now, ..)` to act through the protocol, or
    /// `node.handle_cookie(now, ..)`). The driver drains what it caused right after.
    /// `None` once the driver has stopped.
    pub async fn command<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node<H::Protocol>, Instant) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let f: Commander<H> = Box::new(move |node, now| {
            let _ = tx.send(f(node, now));
        });
        self.control.send(Control::Command(f)).await.ok()?;
        rx.await.ok()
    }

    /// Hand `request` to the host ([`Host::request`]); any answer travels in a channel
    /// the request carries.
    pub async fn request(&self, request: H::Request) -> Result<(), DriverStopped> {
        self.control
            .send(Control::Request(request))
            .await
            .map_err(|_| DriverStopped)
    }

    /// **For `hawser demo` only**: refuse to dial the peers advertising these addresses,
    /// replacing the previous list. Dials to them fail at once, as if refused. It only
    /// affects dials made from now on; links that exist stay up (drop them with
    /// `Node::handle_cookie`). Two nodes that deny each other never link, which is a
    /// partition between them in one process.
    ///
    /// Crate-private: no flag, config setting or endpoint of the agent reaches it
    /// (`tests/agent.rs` checks that), and code outside this crate cannot call it:
    ///
    /// ```compile_fail
    /// async fn partition(h: hawser_runtime::driver::DriverHandle) {
    ///     h.deny(std::collections::BTreeSet::new()).await;
    /// }
    /// ```
    pub(crate) async fn deny(&self, addrs: BTreeSet<Addr>) -> Option<()> {
        self.control.send(Control::Deny(addrs)).await.ok()
    }

    /// Leave: let the host act ([`Host::leave`]; hawser's stack tells its neighbours),
    /// close every connection (peers drop us at once), flush the store, and return from
    /// [`Driver::run`](super::Driver::run). Resolves when the driver has stopped.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Why the driver stopped without being asked to.
#[derive(Debug)]
pub enum DriverError {
    /// A batch could not be committed: the node cannot keep its promises any more.
    Store(StoreError),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::Store(e) => write!(f, "store failure, stopping: {e}"),
        }
    }
}

impl std::error::Error for DriverError {}
