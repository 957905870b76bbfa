//! Run your own [`Protocol`] for real: the protocol you test in the simulator, over TCP,
//! with real timers and a durable store, in a few lines.
//!
//! ```no_run
//! # use hawser_core::{Cookie, Ctx, NodeId, Protocol, Snapshot, wire::WireError};
//! # struct Quiet;
//! # impl Protocol for Quiet {
//! #     type Timer = ();
//! #     type Event = ();
//! #     fn start(&mut self, _: &mut Ctx<'_, (), ()>) {}
//! #     fn message(&mut self, _: NodeId, _: &[u8], _: &mut Ctx<'_, (), ()>) -> Result<(), WireError> {
//! #         Ok(())
//! #     }
//! #     fn timer(&mut self, _: (), _: &mut Ctx<'_, (), ()>) {}
//! # }
//! # fn my_protocol(_: &Snapshot) -> Quiet { Quiet }
//! # async fn example() -> Result<(), hawser_runtime::RunError> {
//! use hawser_runtime::RunConfig;
//!
//! let config = RunConfig::new(
//!     "n1",
//!     "127.0.0.1:7001".parse().unwrap(),
//!     Cookie::new(b"our cluster's secret".to_vec()).unwrap(),
//!     "/var/lib/my-protocol/n1",
//! );
//! // Build the protocol from what the store recovered; hear every event it emits;
//! // run until SIGINT or SIGTERM, then shut down gracefully.
//! hawser_runtime::run(config, |recovered| my_protocol(recovered), |event| println!("{event:?}"))
//!     .await
//! # }
//! ```
//!
//! Underneath it is the very driver `hawser agent` runs hawser's stack with (see
//! [`crate::driver`]): the same transport and its bounds (connection caps, send budgets,
//! frame limits, optional mutual TLS through [`DriverConfig::tls`]), the same timers,
//! and the same store — what the protocol persists is committed before
//! [`Protocol::persisted`] hears of it. The host here is the plainest one: every event
//! goes to your callback, which runs in the driver's task (so keep it quick: print it,
//! or send it down a channel). To reach the node while it runs, use the
//! [`DriverHandle`] of [`Running::handle`] (`inspect` to read the protocol, `command`
//! to act on it).

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hawser_core::{Addr, Cookie, LinkConfig, Protocol, Snapshot};
use tokio::task::JoinHandle;

use crate::driver::{
    Driver, DriverConfig, DriverError, DriverHandle, Host, HostCx, NodeError, RunnableProtocol,
    SeedError, build_node, os_seed,
};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::transport::{Tcp, Transport};

/// Where and as whom a node runs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The node's name, unique in the cluster; its id is derived from it
    /// ([`hawser_core::NodeId::from_name`]), and its store belongs to it.
    pub name: String,
    /// Where to accept peers' connections (port 0: any free port, see
    /// [`Running::local_addr`]).
    pub listen: SocketAddr,
    /// The address peers dial, carried in the link handshake; `None`: the address
    /// `listen` bound to.
    pub advertise: Option<Addr>,
    /// The cluster's secret: a peer that cannot prove it is refused.
    pub cookie: Cookie,
    /// The store's directory (created if missing; one node per directory).
    pub data_dir: PathBuf,
    pub link: LinkConfig,
    pub driver: DriverConfig,
}

impl RunConfig {
    /// A config with default link and driver settings, advertising what `listen` binds.
    pub fn new(
        name: impl Into<String>,
        listen: SocketAddr,
        cookie: Cookie,
        data_dir: impl Into<PathBuf>,
    ) -> RunConfig {
        RunConfig {
            name: name.into(),
            listen,
            advertise: None,
            cookie,
            data_dir: data_dir.into(),
            link: LinkConfig::default(),
            driver: DriverConfig::default(),
        }
    }
}

/// Why a node did not start, or stopped without being asked to.
#[derive(Debug)]
pub enum RunError {
    /// The store could not be opened (in use, corrupt, another node's, ...).
    Store(StoreError),
    /// `listen` could not be bound.
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// The address to advertise is not a valid address.
    Advertise { addr: String },
    /// The name or link settings are invalid.
    Node(NodeError),
    /// The OS would not give the node its random seed.
    Seed(SeedError),
    /// The driver stopped: its store failed.
    Driver(DriverError),
    /// The driver's task ended abnormally (it panicked, or the runtime shut down).
    Task(String),
    /// SIGINT or SIGTERM could not be watched.
    Signal(std::io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Store(e) => e.fmt(f),
            RunError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            RunError::Advertise { addr } => write!(
                f,
                "cannot advertise {addr:?}: give host:port, at most {} bytes",
                hawser_core::id::MAX_ADDR_LEN
            ),
            RunError::Node(e) => e.fmt(f),
            RunError::Seed(e) => e.fmt(f),
            RunError::Driver(e) => e.fmt(f),
            RunError::Task(e) => write!(f, "the driver task failed: {e}"),
            RunError::Signal(e) => write!(f, "cannot watch SIGINT/SIGTERM: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// The plainest [`Host`]: every event the protocol emits goes to a callback.
pub struct EventHost<P: Protocol> {
    on_event: Box<dyn FnMut(P::Event) + Send>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P: RunnableProtocol> Host for EventHost<P> {
    type Protocol = P;
    type Request = Infallible;

    fn event(&mut self, _cx: &mut HostCx<'_, P>, event: P::Event) {
        (self.on_event)(event)
    }

    fn request(&mut self, _cx: &mut HostCx<'_, P>, request: Infallible) {
        match request {}
    }
}

/// A node running in its own task, from [`start`].
pub struct Running<P: RunnableProtocol> {
    handle: DriverHandle<EventHost<P>>,
    local_addr: SocketAddr,
    task: JoinHandle<Result<(), DriverError>>,
}

impl<P: RunnableProtocol> Running<P> {
    /// Reach the node: `inspect` reads it (`view.node.protocol()`), `command` acts on
    /// it, `shutdown` stops it.
    pub fn handle(&self) -> &DriverHandle<EventHost<P>> {
        &self.handle
    }

    /// The address the node listens on (the port chosen, when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Shut down gracefully — close every connection (peers see the links go down at
    /// once) and make everything persisted durable — and wait until that is done.
    pub async fn shutdown(self) -> Result<(), RunError> {
        self.handle.shutdown().await;
        self.wait().await
    }

    /// Wait until the node stops: `Ok` once shut down through the handle, `Err` if its
    /// store failed.
    pub async fn wait(self) -> Result<(), RunError> {
        stopped(self.task.await)
    }

    /// Run until SIGINT or SIGTERM, then shut down gracefully; return early, with the
    /// error, if the store fails.
    pub async fn until_signal(mut self) -> Result<(), RunError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(RunError::Signal)?;
        tokio::select! {
            result = &mut self.task => return stopped(result),
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        self.shutdown().await
    }
}

/// How the driver's task ended, as the caller hears it.
fn stopped(
    result: Result<Result<(), DriverError>, tokio::task::JoinError>,
) -> Result<(), RunError> {
    match result {
        Ok(stopped) => stopped.map_err(RunError::Driver),
        Err(e) => Err(RunError::Task(e.to_string())),
    }
}

/// Open the store in `config.data_dir`, build the protocol from what it recovered
/// (`build`), bind `config.listen` and start the node in a task of its own. Every event
/// the protocol emits is passed to `on_event`, inside the driver's task.
pub async fn start<P: RunnableProtocol>(
    config: RunConfig,
    build: impl FnOnce(&Snapshot) -> P,
    on_event: impl FnMut(P::Event) + Send + 'static,
) -> Result<Running<P>, RunError> {
    let (store, recovered) =
        Store::open(&config.data_dir, &config.name).map_err(RunError::Store)?;
    let listener = Tcp::bind(config.listen)
        .await
        .map_err(|error| RunError::Bind {
            addr: config.listen,
            error,
        })?;
    let local_addr = Tcp::local_addr(&listener).map_err(|error| RunError::Bind {
        addr: config.listen,
        error,
    })?;
    let advertise = match config.advertise {
        Some(addr) => addr,
        None => {
            let addr = local_addr.to_string();
            Addr::new(addr.clone()).ok_or(RunError::Advertise { addr })?
        }
    };
    let link = LinkConfig {
        max_frame: config.driver.max_frame,
        ..config.link
    };
    let protocol = build(&recovered);
    let seed = os_seed().map_err(RunError::Seed)?;
    let node = build_node(&config.name, advertise, config.cookie, link, seed, protocol)
        .map_err(RunError::Node)?;
    let host = EventHost {
        on_event: Box::new(on_event),
        _protocol: PhantomData,
    };
    let (driver, handle) = Driver::<Tcp, _>::with_host(
        node,
        host,
        Arc::new(store),
        listener,
        config.driver,
        Metrics::new(),
    );
    Ok(Running {
        handle,
        local_addr,
        task: tokio::spawn(driver.run()),
    })
}

/// [`start`] the node, run it until SIGINT or SIGTERM, then shut it down gracefully.
/// Returns early, with the error, if the store fails.
pub async fn run<P: RunnableProtocol>(
    config: RunConfig,
    build: impl FnOnce(&Snapshot) -> P,
    on_event: impl FnMut(P::Event) + Send + 'static,
) -> Result<(), RunError> {
    start(config, build, on_event).await?.until_signal().await
}
