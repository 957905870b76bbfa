//! The node task: the loop that owns the node, feeds it one input at a time and drains
//! what each input caused (see the module docs of `driver`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use hawser_core::{Addr, ConnId, Event, Instant, Node, NodeId, Record, Transmit};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tracing::debug;

use super::accept::accept_loop;
use super::config::DriverConfig;
use super::connections::{Conn, Remote, abort};
use super::handle::{Control, DriverError, DriverHandle};
use super::host::{self, Host, HostCx, View};
use super::input::{INPUT_QUEUE, Input};
use crate::isolation::{Cause, Dial, Isolation};
use crate::lograte::{LineKind, LogLimiter};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::transport::Transport;

/// A node, its host and its store, connected to the network by transport `T`. Made with
/// [`Driver::with_host`] (or, for hawser's stack, `Driver::new`), run with
/// [`Driver::run`], reached through the [`DriverHandle`] made with it.
pub struct Driver<T: Transport, H: Host = super::StackHost> {
    pub(super) node: Node<H::Protocol>,
    pub(super) host: H,
    pub(super) store: Arc<Store>,
    listener: Option<T::Listener>,
    pub(super) config: DriverConfig,
    pub(super) metrics: Arc<Metrics>,
    origin: tokio::time::Instant,
    pub(super) conns: BTreeMap<ConnId, Conn>,
    pub(super) peers: BTreeMap<NodeId, Addr>,
    slots: Arc<Semaphore>,
    pub(super) inputs: mpsc::Sender<Input<T::Stream>>,
    input_rx: Option<mpsc::Receiver<Input<T::Stream>>>,
    control_rx: Option<mpsc::Receiver<Control<H>>>,
    /// Records waiting for the next commit.
    pub(super) batch: Vec<Record>,
    pub(super) committing: bool,
    pub(super) writers: Vec<JoinHandle<()>>,
    /// Advertised addresses never to dial (`hawser demo` only; see
    /// [`DriverHandle::deny`]).
    pub(super) deny: BTreeSet<Addr>,
    /// Who is at the other end of each connection (the source address of an inbound
    /// one, the dialled address of an outbound one), to name in refusals.
    pub(super) remotes: BTreeMap<ConnId, Remote>,
    log: LogLimiter,
    /// Whether this node runs cut off from the cluster, and why.
    pub(super) isolation: Isolation,
}

impl<T: Transport, H: Host> Driver<T, H> {
    /// A driver for `node`, whose protocol's events and requests `host` handles. `store`
    /// is where `node` was recovered from; `listener` is where peers connect.
    pub fn with_host(
        node: Node<H::Protocol>,
        host: H,
        store: Arc<Store>,
        listener: T::Listener,
        config: DriverConfig,
        metrics: Arc<Metrics>,
    ) -> (Driver<T, H>, DriverHandle<H>) {
        let (inputs, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (control, control_rx) = mpsc::channel(64);
        let driver = Driver {
            node,
            host,
            store,
            listener: Some(listener),
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
            metrics,
            origin: tokio::time::Instant::now(),
            conns: BTreeMap::new(),
            peers: BTreeMap::new(),
            inputs,
            input_rx: Some(input_rx),
            control_rx: Some(control_rx),
            batch: Vec::new(),
            committing: false,
            writers: Vec::new(),
            deny: BTreeSet::new(),
            remotes: BTreeMap::new(),
            log: LogLimiter::default(),
            isolation: Isolation::default(),
        };
        (driver, DriverHandle { control })
    }

    /// **For `hawser demo` only**: the deny list of [`DriverHandle::deny`], set before
    /// the driver runs, so that not even its first dials reach those addresses.
    /// Crate-private, like it:
    ///
    /// ```compile_fail
    /// fn partition(d: &mut hawser_runtime::driver::Driver<hawser_runtime::transport::Tcp>) {
    ///     d.set_deny(std::collections::BTreeSet::new());
    /// }
    /// ```
    pub(crate) fn set_deny(&mut self, addrs: BTreeSet<Addr>) {
        self.deny = addrs;
    }

    /// The host, to configure it before the driver runs.
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    /// The monotonic clock as core's `Instant`: nanoseconds since the driver was made.
    pub(super) fn now(&self) -> Instant {
        Instant::from_nanos(self.origin.elapsed().as_nanos() as u64)
    }

    fn deadline(&self, t: Instant) -> tokio::time::Instant {
        self.origin + Duration::from_nanos(t.as_nanos())
    }

    /// Run until shut down through a [`DriverHandle`] (then `Ok`) or until the store
    /// fails (then `Err`: the node must not go on without durability).
    pub async fn run(mut self) -> Result<(), DriverError> {
        let mut input_rx = self.input_rx.take().expect("run is called once");
        let mut control_rx = self.control_rx.take().expect("run is called once");
        let accept = tokio::spawn(accept_loop::<T>(
            self.listener.take().expect("run is called once"),
            self.slots.clone(),
            self.config.max_pending_per_source,
            self.config.tls.clone(),
            self.inputs.clone(),
            self.metrics.clone(),
        ));
        let now = self.now();
        self.node.handle_start(now);
        let done = loop {
            self.drain()?;
            self.call_host(|host, cx| host.drained(cx));
            self.update_gauges();
            let wake = match self.node.poll_timeout() {
                Some(t) => self.deadline(t),
                None => tokio::time::Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                Some(control) = control_rx.recv() => match control {
                    Control::Shutdown(done) => break Some(done),
                    other => self.on_control(other),
                },
                Some(input) = input_rx.recv() => self.on_input(input)?,
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.node.handle_timeout(now);
                }
                else => break None,
            }
        };
        accept.abort();
        self.leave(&mut input_rx).await?;
        if let Some(done) = done {
            let _ = done.send(());
        }
        Ok(())
    }

    /// Call the host with a context over the node task's state.
    pub(super) fn call_host<R>(
        &mut self,
        f: impl FnOnce(&mut H, &mut HostCx<'_, H::Protocol>) -> R,
    ) -> R {
        let now = self.now();
        let elapsed = self.origin.elapsed();
        let mut cx = HostCx {
            node: &mut self.node,
            now,
            peers: &self.peers,
            isolated: self.isolation.state().map(Cause::as_str),
            metrics: &self.metrics,
            log: &mut self.log,
            elapsed,
            peer_name: H::peer_name,
        };
        f(&mut self.host, &mut cx)
    }

    fn on_control(&mut self, control: Control<H>) {
        let now = self.now();
        match control {
            Control::Inspect(f) => f(&View {
                node: &self.node,
                peers: &self.peers,
                now,
                isolated: self.isolation.state().map(Cause::as_str),
            }),
            Control::Command(f) => f(&mut self.node, now),
            Control::Request(request) => self.call_host(|host, cx| host.request(cx, request)),
            Control::Deny(addrs) => self.deny = addrs,
            Control::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    fn on_input(&mut self, input: Input<T::Stream>) -> Result<(), DriverError> {
        let now = self.now();
        match input {
            Input::Accepted(stream, inbound) => {
                self.metrics.connections_accepted.inc();
                let conn = self.node.handle_accept(now);
                let addr = inbound.from.to_string();
                self.remotes.insert(
                    conn,
                    Remote {
                        addr,
                        outbound: false,
                    },
                );
                if let Some(peer) = inbound.verified {
                    self.node.handle_transport_identity(conn, peer);
                }
                self.open(conn, stream, Some(inbound.slot), Some(inbound.pending));
            }
            Input::Connected(conn, stream, verified) => {
                if let Some(Conn::Dialing(_)) = self.conns.get(&conn) {
                    self.open(conn, stream, None, None);
                    if let Some(peer) = verified {
                        self.node.handle_transport_identity(conn, peer);
                    }
                    self.node.handle_connected(now, conn);
                }
                // Otherwise the node gave up on this dial meanwhile: drop the stream.
            }
            Input::TlsRefused { conn, remote, why } => {
                if let Some(suppressed) = self.admit(LineKind::AuthFailure) {
                    tracing::warn!(?remote, %why, suppressed, "peer's TLS certificate refused");
                }
                let conn = match conn {
                    Some(conn) if self.conns.remove(&conn).is_some() => conn,
                    Some(_) => return Ok(()),
                    None => {
                        let conn = self.node.handle_accept(now);
                        self.remotes.insert(
                            conn,
                            Remote {
                                addr: remote,
                                outbound: false,
                            },
                        );
                        conn
                    }
                };
                self.node.handle_transport_refused(now, conn);
            }
            Input::ConnectFailed(conn, error) => {
                if self.conns.remove(&conn).is_some() {
                    self.metrics.connect_failures.inc();
                    debug!(?conn, %error, "connect failed");
                    self.node.handle_closed(now, conn);
                    self.dial_failed(Dial::NoAnswer);
                }
            }
            Input::Frame(conn, frame) => {
                if self.conns.contains_key(&conn) {
                    self.node.handle_frame(now, conn, &frame);
                }
            }
            Input::Closed(conn) => {
                if let Some(c) = self.conns.remove(&conn) {
                    abort(&c);
                    self.node.handle_closed(now, conn);
                }
            }
            Input::WriteFailed(conn, error) => {
                if let Some(c) = self.conns.remove(&conn) {
                    self.metrics.write_failures.inc();
                    let remote = self.remote(conn);
                    debug!(?conn, remote, %error, "write failed; connection closed");
                    abort(&c);
                    self.node.handle_closed(now, conn);
                }
            }
            Input::Committed(result) => {
                self.committing = false;
                let (last, took, records) = result.map_err(DriverError::Store)?;
                self.persisted(last, took, records);
            }
        }
        Ok(())
    }

    /// Drain every output of the node; closing a slow peer is itself an input, so loop
    /// until nothing is left.
    pub(super) fn drain(&mut self) -> Result<(), DriverError> {
        loop {
            let mut overflowed = Vec::new();
            // Connections this drain sends to, in the order they were first sent to.
            let mut sending = Vec::new();
            while let Some(t) = self.node.poll_transmit() {
                match t {
                    Transmit::Connect { conn, addr } => self.dial(conn, addr),
                    Transmit::Send { conn, frame } => {
                        if let Some(Conn::Open(o)) = self.conns.get_mut(&conn) {
                            if o.outgoing.is_empty() {
                                sending.push(conn);
                            }
                            o.outgoing.extend_from_slice(&frame);
                        }
                    }
                    Transmit::Close { conn } => self.close(conn),
                }
            }
            for conn in sending {
                if let Some(Conn::Open(o)) = self.conns.get_mut(&conn)
                    && o.hand_over(self.config.send_queue_bytes).is_err()
                {
                    overflowed.push(conn);
                }
            }
            while let Some(event) = self.node.poll_event() {
                self.on_event(event);
            }
            // Closed connections' remotes were needed until their events were logged.
            if self.remotes.len() > self.conns.len() {
                let conns = &self.conns;
                self.remotes.retain(|c, _| conns.contains_key(c));
            }
            while let Some(record) = self.node.poll_persist() {
                self.batch.push(record);
            }
            if !self.committing && !self.batch.is_empty() {
                self.commit();
            }
            if overflowed.is_empty() {
                return Ok(());
            }
            let now = self.now();
            for conn in overflowed {
                if let Some(c) = self.conns.remove(&conn) {
                    self.too_slow(conn);
                    abort(&c);
                    self.node.handle_closed(now, conn);
                }
            }
        }
    }

    /// What the node reports: the link layer's events are the driver's to log, the
    /// protocol's the host's.
    fn on_event(&mut self, event: Event<<H::Protocol as hawser_core::Protocol>::Event>) {
        match event {
            Event::Link(event) => self.link_event(event),
            Event::BadMessage { from, error } => self.bad_message(from, error),
            Event::App(event) => self.call_host(|host, cx| host.event(cx, event)),
        }
        H::prune_peers(&self.node, &mut self.peers);
    }

    /// Whether a refusal line of `kind` may be written now (see [`LogLimiter`]); lines
    /// left out are counted in `log_lines_suppressed`.
    pub(super) fn admit(&mut self, kind: LineKind) -> Option<u64> {
        host::admit(&mut self.log, self.origin.elapsed(), &self.metrics, kind)
    }

    /// A peer as log lines name it (see [`Host::peer_name`]).
    pub(super) fn who(&self, id: NodeId) -> String {
        host::who(H::peer_name, &self.node, id)
    }

    /// The gauges of the transport; the host sets its protocol's in [`Host::drained`].
    fn update_gauges(&self) {
        self.metrics
            .links
            .set(self.node.links().peers().count() as i64);
        self.metrics.connections.set(self.conns.len() as i64);
    }

    /// Let the host act on the node so peers hear we leave (hawser's stack tells its
    /// neighbours, who drop us from both views and repair at once), close every
    /// connection once those messages are flushed, then make everything the node asked
    /// to persist durable.
    async fn leave(
        &mut self,
        input_rx: &mut mpsc::Receiver<Input<T::Stream>>,
    ) -> Result<(), DriverError> {
        tracing::info!("leaving: telling neighbours, closing links and flushing the store");
        let now = self.now();
        self.host.leave(&mut self.node, now);
        self.drain()?;
        for (_, c) in std::mem::take(&mut self.conns) {
            match c {
                Conn::Dialing(task) => task.abort(),
                Conn::Open(o) => o.reader.abort(),
            }
        }
        self.flush(input_rx).await?;
        // The host answers what the last batches made durable (callers are told the
        // truth rather than "stopped"); what else the node says now goes nowhere.
        while let Some(event) = self.node.poll_event() {
            if let Event::App(event) = event {
                self.host.last_event(event);
            }
        }
        let deadline = tokio::time::Instant::now() + self.config.write_timeout;
        for w in std::mem::take(&mut self.writers) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let _ = tokio::time::timeout(left, w).await;
        }
        Ok(())
    }
}
