//! The driver: one task that owns a core [`Node`] and connects it to the world.
//!
//! It is the sans-IO loop of DESIGN.md and nothing more: feed the node one input (an
//! accepted connection, a dial that succeeded or failed, a frame, a closed connection, a
//! batch that reached the disk, a deadline), then drain `poll_transmit`, `poll_event` and
//! `poll_persist`, and sleep until `poll_timeout` or the next input. Every protocol
//! decision is core's; the driver only moves bytes, records and time.
//!
//! Around the node task:
//! - an accept task hands it new connections (at most `max_connections` at once, and at
//!   most `max_pending_per_source` from one IP address still in their handshake; the rest
//!   are closed on arrival and counted);
//! - per connection, a reader task cuts the byte stream into frames, reading through a
//!   fixed 4 KiB buffer (the 8-byte header is checked against the frame limit before a
//!   byte of payload is taken from it — core's few-hundred-byte handshake limit for the
//!   handshake's frames — and the payload buffer grows only as bytes actually arrive)
//!   and a writer task writes what the node sends. What one drain of the node sends to
//!   a connection is handed to its writer as one buffer, written with one syscall (one
//!   TCP segment, not one per frame). The node never waits for a writer: each
//!   connection has a byte budget, and a peer that lets its queue overflow is
//!   disconnected and counted (`queue_drops`). A write that fails (the peer closed or
//!   reset the connection, or a write outlasted `write_timeout`) is another matter: the
//!   writer reports it with its error and the connection is closed and counted
//!   (`write_failures`); bytes the node sends to it meanwhile are dropped, since the
//!   connection is already gone;
//! - dials run in their own tasks, bounded by `connect_timeout`;
//! - a store commit runs on a blocking thread while the node keeps going; records that
//!   arrive meanwhile form the next batch (one sync per batch), and the node hears
//!   `handle_persisted` only once its batch is on disk.
//!
//! The dataplane follows the node from inside the driver task: a [`Follower`] is told,
//! after every drain that changed them, which KV keys changed and whether membership
//! did, and reads what it needs from the node right then. So whatever it derives (DNS
//! answers, VIP backends) is never older than the last input the node took.
//!
//! Other tasks reach the node through a [`DriverHandle`]: read it ([`DriverHandle::inspect`]),
//! act on it at the current time ([`DriverHandle::command`]), apply a KV op and wait for
//! its answer ([`DriverHandle::kv_op`]: the driver keeps the caller's reply channel under
//! the op's ticket and answers when core reports the op `Committed`, which it does only
//! once the batch holding it is synced), or follow the KV's changes
//! ([`DriverHandle::watch`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hawser_core::crdt::{Map, MapOp};
use hawser_core::gm::{GmConfig, GmEvent};
use hawser_core::id::MAX_NAME_LEN;
use hawser_core::kv::{KvError, KvEvent, Ticket};
use hawser_core::link::{HANDSHAKE_FRAMES, MAX_HANDSHAKE_FRAME};
use hawser_core::membership::{MembershipConfig, MembershipEvent};
use hawser_core::stack::{Stack, StackConfig, StackEvent};
use hawser_core::wire::{HEADER_LEN, decode_header};
use hawser_core::{
    Addr, ConnId, Cookie, Event, Identity, Instant, LinkConfig, LinkEvent, Name, Node, NodeId,
    PersistSeq, Record, RngSeed, Snapshot, Transmit,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle};
use tracing::{debug, error, info, warn};

use crate::isolation::{self, Cause, Dial, Isolation};
use crate::lograte::{LineKind, LogLimiter};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::tls::{PeerStream, Tls, TlsRefusal};
use crate::transport::Transport;

/// Limits of the driver. Defaults suit a cluster of hundreds of nodes on a LAN.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Largest frame accepted or sent (core's limit; the reader enforces it too).
    pub max_frame: usize,
    /// A dial that has not connected by then has failed.
    pub connect_timeout: Duration,
    /// A single write that has not completed by then closes the connection.
    pub write_timeout: Duration,
    /// Bytes queued for one connection beyond which the peer is judged too slow: the
    /// connection is closed and `queue_drops` counted.
    pub send_queue_bytes: usize,
    /// Transport connections open at once (inbound); more are closed on arrival.
    pub max_connections: usize,
    /// Inbound connections from one IP address that may be in their handshake at once;
    /// more are closed on arrival, so one source cannot hold every slot unauthenticated.
    pub max_pending_per_source: usize,
    /// KV watchers (`/v1/kv/watch` streams) at once; more are refused.
    pub max_watchers: usize,
    /// Bytes of changes queued for one watcher; a watcher that lets more pile up (a
    /// stalled client) is cut off with `lagged`.
    pub watch_queue_bytes: usize,
    /// Mutual TLS on every peer connection, if set (see [`crate::tls`]).
    pub tls: Option<Arc<Tls>>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_frame: LinkConfig::default().max_frame,
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
            send_queue_bytes: 16 << 20,
            max_connections: 1024,
            max_pending_per_source: 32,
            max_watchers: 64,
            watch_queue_bytes: 8 << 20,
            tls: None,
        }
    }
}

/// Everything that defines the node an agent runs: hawser's [`Stack`] over
/// authenticated links.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The node's name; its id is derived from it ([`NodeId::from_name`]).
    pub name: String,
    /// The address peers dial (carried in the link handshake).
    pub advertise: Addr,
    pub cookie: Cookie,
    /// Where to join (every node is given the same list; a contact skips itself).
    pub contacts: Vec<Addr>,
    pub membership: MembershipConfig,
    pub max_frame: usize,
    /// How long a failed or left member is kept before it is forgotten (global
    /// membership's `forget_after_ms`).
    pub reap_after: Duration,
}

impl NodeSpec {
    /// The node, rebuilt from what the store held. The RNG seed is the caller's: the
    /// agent draws it from the OS once ([`os_seed`]); a test may fix it.
    pub fn build(
        &self,
        recovered: &Snapshot,
        seed: impl Into<RngSeed>,
    ) -> Result<Node<Stack>, String> {
        let config = StackConfig {
            membership: self.membership.clone(),
            gm: GmConfig {
                forget_after_ms: u64::try_from(self.reap_after.as_millis()).unwrap_or(u64::MAX),
                ..GmConfig::default()
            },
            ..StackConfig::default()
        };
        let stack =
            Stack::new(config, self.contacts.clone(), recovered).map_err(|e| e.to_string())?;
        let name = Name::new(self.name.as_str())
            .ok_or_else(|| format!("name {:?}: use 1 to {MAX_NAME_LEN} bytes", self.name))?;
        let identity = Identity {
            id: NodeId::from_name(&self.name),
            name,
            addr: self.advertise.clone(),
            cookie: self.cookie.clone(),
        };
        let link = LinkConfig {
            max_frame: self.max_frame,
            ..LinkConfig::default()
        };
        Node::new(link, identity, seed, stack)
    }
}

/// 256 bits from the OS: the only entropy a real node reads. Its link handshakes draw
/// their ephemeral keys from the RNG this seeds, so it must not be a 64-bit seed.
pub fn os_seed() -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("cannot read OS randomness: {e}"))?;
    Ok(key)
}

/// What the driver can show of the node: read-only, inside the driver task.
pub struct View<'a> {
    pub node: &'a Node<Stack>,
    /// Where each peer we linked with said it listens (from its handshake).
    pub peers: &'a BTreeMap<NodeId, Addr>,
    /// The node's clock now (what its timers and "since" instants are measured on).
    pub now: Instant,
    /// Why this node runs cut off from the cluster, if it does (see `isolation`).
    pub isolated: Option<&'static str>,
}

type Inspector = Box<dyn FnOnce(&View<'_>) + Send>;
type Commander = Box<dyn FnOnce(&mut Node<Stack>, Instant) + Send>;
/// The answer to a KV op: the key's value once the op is durable, or why it was refused.
type KvReply = oneshot::Sender<Result<Map, KvError>>;

enum Control {
    Inspect(Inspector),
    Command(Commander),
    KvOp {
        key: String,
        /// `None`: delete the key (see [`DriverHandle::kv_delete`]).
        op: Option<MapOp>,
        reply: KvReply,
    },
    Watch {
        prefix: String,
        reply: oneshot::Sender<Result<Watch, WatchError>>,
    },
    Deny(BTreeSet<Addr>),
    Shutdown(oneshot::Sender<()>),
}

/// A subscription to the KV's changes under a prefix, from [`DriverHandle::watch`].
///
/// Its memory is bounded in bytes, not in changes (a hundred 300 KB values are few
/// changes): the snapshot and the changes queued for it together may hold at most
/// `watch_queue_bytes` of JSON. A snapshot over that is refused; a watcher whose queue
/// would go over it (a stalled client) is cut off, its stream ending with `lagged`.
pub struct Watch {
    /// Every key under the prefix, at the moment the watch began, as the JSON
    /// `{"key": .., "value": ..}`.
    pub snapshot: Vec<Arc<str>>,
    /// Then every change under the prefix, in order, in the same form. Ends when the
    /// driver stops, or when the client fell too far behind (then `lagged` is set).
    pub changes: mpsc::UnboundedReceiver<Arc<str>>,
    /// Bytes of `changes` not yet taken: subtract each change's length on taking it.
    pub queued: Arc<AtomicUsize>,
    pub lagged: Arc<AtomicBool>,
}

/// Why a watch was not started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// `max_watchers` streams are open.
    TooMany { max: usize },
    /// The prefix's keys come to more JSON than one watcher may hold.
    SnapshotTooLarge { bytes: usize, max: usize },
    /// The driver has stopped.
    Stopped,
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::TooMany { max } => write!(f, "{max} watch streams are open already"),
            WatchError::SnapshotTooLarge { bytes, max } => write!(
                f,
                "the keys under this prefix are {bytes} bytes of JSON, more than a watch \
                 may hold ({max}): watch a narrower prefix"
            ),
            WatchError::Stopped => f.write_str("the agent is shutting down"),
        }
    }
}

/// The JSON of one key's value, as watchers get it.
pub fn watch_json(key: &str, value: &Map) -> Arc<str> {
    serde_json::json!({ "key": key, "value": value.to_json() })
        .to_string()
        .into()
}

struct Watcher {
    prefix: String,
    changes: mpsc::UnboundedSender<Arc<str>>,
    queued: Arc<AtomicUsize>,
    lagged: Arc<AtomicBool>,
}

/// What changed in one drain of the node, as a [`Follower`] hears it.
#[derive(Debug, Default)]
pub struct Changes {
    /// The first call, at start: treat everything as changed.
    pub initial: bool,
    /// KV keys whose value changed (local ops and merges), in key order.
    pub keys: BTreeSet<String>,
    /// Global membership changed: a member added, changed, forgotten, or one that became
    /// reachable or unreachable.
    pub membership: bool,
}

/// Something that derives state from the node and must follow it closely (the DNS zone,
/// the load balancer's desired state). Runs inside the driver task, so it must be quick:
/// read what changed and hand any slow work (kernel calls) to a task of its own.
pub trait Follower: Send {
    fn update(&mut self, view: &View<'_>, changes: &Changes);
}

/// Why [`DriverHandle::kv_op`] has no value to give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOpError {
    /// Core refused the op; nothing was applied.
    Refused(KvError),
    /// The driver stopped before the op was known to be durable.
    Stopped,
}

impl std::fmt::Display for KvOpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvOpError::Refused(e) => e.fmt(f),
            KvOpError::Stopped => f.write_str(
                "the agent stopped before the op was known to be durable (it may or may not \
                 have reached the disk)",
            ),
        }
    }
}

/// A way to talk to a running driver from other tasks (the admin API, signal handlers).
#[derive(Clone)]
pub struct DriverHandle {
    control: mpsc::Sender<Control>,
}

impl DriverHandle {
    /// Run `f` on the node inside the driver task, between two inputs. `None` once the
    /// driver has stopped.
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&View<'_>) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let f: Inspector = Box::new(move |view| {
            let _ = tx.send(f(view));
        });
        self.control.send(Control::Inspect(f)).await.ok()?;
        rx.await.ok()
    }

    /// Run `f` on the node at the driver's current time, between two inputs (e.g.
    /// `node.command(now, ..)` to act through the stack, or `node.handle_cookie(now, ..)`).
    /// The driver drains what it caused right after. `None` once the driver has stopped.
    pub async fn command<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node<Stack>, Instant) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let f: Commander = Box::new(move |node, now| {
            let _ = tx.send(f(node, now));
        });
        self.control.send(Control::Command(f)).await.ok()?;
        rx.await.ok()
    }

    /// Apply `op` to `key` on this node and wait until it is durable: the answer is the
    /// key's value right after the op, and comes only once the batch holding the op has
    /// been synced to disk.
    pub async fn kv_op(&self, key: String, op: MapOp) -> Result<Map, KvOpError> {
        self.kv_control(key, Some(op)).await
    }

    /// Delete `key`: remove every field this node holds of it, as one op, and wait until
    /// that is durable (the answer is the value after, `{}`). Observed removal: an update
    /// made concurrently on a node that had not seen this delete survives it (see
    /// `MapOp::clear`). A key with no field is left as it is, and answered at once.
    pub async fn kv_delete(&self, key: String) -> Result<Map, KvOpError> {
        self.kv_control(key, None).await
    }

    /// An op (`None`: the delete) sent to the driver, and its answer awaited.
    async fn kv_control(&self, key: String, op: Option<MapOp>) -> Result<Map, KvOpError> {
        let (reply, rx) = oneshot::channel();
        self.control
            .send(Control::KvOp { key, op, reply })
            .await
            .map_err(|_| KvOpError::Stopped)?;
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(KvOpError::Refused(e)),
            Err(_) => Err(KvOpError::Stopped),
        }
    }

    /// Follow the keys under `prefix`: their values now, then every change.
    pub async fn watch(&self, prefix: String) -> Result<Watch, WatchError> {
        let (reply, rx) = oneshot::channel();
        self.control
            .send(Control::Watch { prefix, reply })
            .await
            .map_err(|_| WatchError::Stopped)?;
        rx.await.map_err(|_| WatchError::Stopped)?
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

    /// Leave: tell the neighbours, close every connection (peers drop us at once), flush the
    /// store, and return from [`Driver::run`]. Resolves when the driver has stopped.
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

/// Inputs from the driver's helper tasks.
enum Input<S> {
    Accepted(PeerStream<S>, Inbound),
    /// A dial connected (and passed TLS, naming the peer, if TLS is on).
    Connected(ConnId, PeerStream<S>, Option<NodeId>),
    /// A peer's TLS handshake failed: on a dial (`conn`), or on an accepted connection.
    TlsRefused {
        conn: Option<ConnId>,
        remote: String,
        why: TlsRefusal,
    },
    ConnectFailed(ConnId, io::Error),
    Frame(ConnId, Vec<u8>),
    Closed(ConnId),
    /// A write failed or timed out: the connection is unusable.
    WriteFailed(ConnId, io::Error),
    /// A batch is durable: its last sequence number, how long it took, its size.
    Committed(Result<(PersistSeq, Duration, usize), StoreError>),
}

/// An open connection's handles, as the node task holds them.
struct Open {
    /// Bytes to write, a drain's worth at a time; dropping it lets the writer flush and
    /// close.
    writer: mpsc::UnboundedSender<Vec<u8>>,
    /// Frames the current drain sends, not yet handed to the writer.
    outgoing: Vec<u8>,
    /// Bytes queued and not yet written (shared with the writer).
    queued: Arc<AtomicUsize>,
    reader: AbortHandle,
    writer_task: AbortHandle,
    /// Inbound connections hold one of `max_connections` slots until closed.
    _slot: Option<OwnedSemaphorePermit>,
}

/// What an accepted connection holds: one of `max_connections` slots until it closes,
/// and one of its source's pending-handshake slots until it has sent its handshake.
struct Inbound {
    from: std::net::SocketAddr,
    slot: OwnedSemaphorePermit,
    pending: PendingSlot,
    /// The node the peer's TLS certificate names (TLS only).
    verified: Option<NodeId>,
}

/// Handshakes in progress per source address, shared by the accept task and readers.
type PendingBySource = Arc<Mutex<BTreeMap<IpAddr, usize>>>;

/// One connection's place among its source's pending handshakes, given back on drop.
struct PendingSlot {
    by_source: PendingBySource,
    ip: IpAddr,
}

impl PendingSlot {
    /// A slot for `ip`, unless it already holds `max`.
    fn take(by_source: &PendingBySource, ip: IpAddr, max: usize) -> Option<PendingSlot> {
        let mut map = by_source
            .lock()
            .expect("never poisoned: no panics under the lock");
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PendingSlot {
            by_source: by_source.clone(),
            ip,
        })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut map = self.by_source.lock().expect("never poisoned");
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Open {
    /// Hand what this drain sent to the writer, as one buffer. `Err` if that would put
    /// more than `budget` bytes in its queue: the peer does not read what it is sent.
    /// A writer that has stopped (its write failed, and its `WriteFailed` is on the way
    /// to the node task) takes nothing: the bytes are dropped with the connection.
    fn hand_over(&mut self, budget: usize) -> Result<(), Overflow> {
        if self.outgoing.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.outgoing);
        let c = cost(&bytes);
        if self.queued.fetch_add(c, Ordering::Relaxed) + c > budget {
            return Err(Overflow);
        }
        if self.writer.send(bytes).is_err() {
            self.queued.fetch_sub(c, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// A send queue went over its byte budget.
struct Overflow;

enum Conn {
    Dialing(AbortHandle),
    Open(Open),
}

/// Memory a queued buffer costs: its bytes plus the queue node and vector header.
fn cost(bytes: &[u8]) -> usize {
    bytes.len() + 64
}

/// Inputs from helper tasks waiting at once before they wait on the node: this is what
/// makes a flood of frames slow its senders down (TCP backpressure) instead of growing.
const INPUT_QUEUE: usize = 1024;

pub struct Driver<T: Transport> {
    node: Node<Stack>,
    store: Arc<Store>,
    listener: Option<T::Listener>,
    config: DriverConfig,
    metrics: Arc<Metrics>,
    origin: tokio::time::Instant,
    conns: BTreeMap<ConnId, Conn>,
    peers: BTreeMap<NodeId, Addr>,
    slots: Arc<Semaphore>,
    inputs: mpsc::Sender<Input<T::Stream>>,
    input_rx: Option<mpsc::Receiver<Input<T::Stream>>>,
    control_rx: Option<mpsc::Receiver<Control>>,
    /// Records waiting for the next commit.
    batch: Vec<Record>,
    committing: bool,
    writers: Vec<JoinHandle<()>>,
    /// KV ops awaiting durability: the caller's reply channel, by key and ticket. (A
    /// ticket is a dot of the key's own causal context, so two keys' first ops can have
    /// the same ticket: only the pair names an op.)
    waiting: BTreeMap<(String, Ticket), KvReply>,
    watchers: Vec<Watcher>,
    /// Advertised addresses never to dial (`hawser demo` only; see
    /// [`DriverHandle::deny`]).
    deny: BTreeSet<Addr>,
    followers: Vec<Box<dyn Follower>>,
    /// What changed since the followers were last told.
    changes: Changes,
    /// Who is at the other end of each connection (the source address of an inbound
    /// one, the dialled address of an outbound one), to name in refusals.
    remotes: BTreeMap<ConnId, Remote>,
    log: LogLimiter,
    /// Whether this node runs cut off from the cluster, and why.
    isolation: Isolation,
}

/// The other end of a connection, for log lines.
struct Remote {
    addr: String,
    /// We dialled it (it is a contact or a member), rather than it us.
    outbound: bool,
}

impl<T: Transport> Driver<T> {
    pub fn new(
        node: Node<Stack>,
        store: Arc<Store>,
        listener: T::Listener,
        config: DriverConfig,
        metrics: Arc<Metrics>,
    ) -> (Driver<T>, DriverHandle) {
        let (inputs, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (control, control_rx) = mpsc::channel(64);
        let driver = Driver {
            node,
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
            waiting: BTreeMap::new(),
            watchers: Vec::new(),
            deny: BTreeSet::new(),
            followers: Vec::new(),
            changes: Changes {
                initial: true,
                ..Changes::default()
            },
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

    /// Have `follower` told of every change from the start (its first call has
    /// `initial` set, with the node as recovered from the store).
    pub fn follow(&mut self, follower: Box<dyn Follower>) {
        self.followers.push(follower);
    }

    /// The monotonic clock as core's `Instant`: nanoseconds since the driver was made.
    fn now(&self) -> Instant {
        Instant::from_nanos(self.origin.elapsed().as_nanos() as u64)
    }

    fn deadline(&self, t: Instant) -> tokio::time::Instant {
        self.origin + Duration::from_nanos(t.as_nanos())
    }

    /// Run until shut down through a [`DriverHandle`] (then `Ok`) or until the store
    /// fails (then `Err`: the agent must not go on without durability).
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
            self.tell_followers();
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

    fn on_control(&mut self, control: Control) {
        let now = self.now();
        match control {
            Control::Inspect(f) => f(&View {
                node: &self.node,
                peers: &self.peers,
                now,
                isolated: self.isolation.state().map(Cause::as_str),
            }),
            Control::Command(f) => f(&mut self.node, now),
            Control::KvOp { key, op, reply } => {
                let kv = self.node.protocol().kv();
                let Some(op) = op.or_else(|| MapOp::clear(kv.get(&key)?.store())) else {
                    // A delete of a key with no field: nothing to remove.
                    let _ = reply.send(Ok(kv.get(&key).cloned().unwrap_or_default()));
                    return;
                };
                match self.node.command(now, |s, c| s.kv_op(c, &key, &op)) {
                    // Answered from `on_event` when core reports it `Committed`: the
                    // event cannot have come out yet, since it needs `handle_persisted`.
                    Ok(ticket) => {
                        self.waiting.insert((key, ticket), reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Control::Watch { prefix, reply } => {
                let watch = self.start_watch(prefix);
                let _ = reply.send(watch);
            }
            Control::Deny(addrs) => self.deny = addrs,
            Control::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    /// Tell every follower what changed since the last time, if anything did.
    fn tell_followers(&mut self) {
        let c = &self.changes;
        if !c.initial && !c.membership && c.keys.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.changes);
        let view = View {
            node: &self.node,
            peers: &self.peers,
            now: self.now(),
            isolated: self.isolation.state().map(Cause::as_str),
        };
        for f in &mut self.followers {
            f.update(&view, &changes);
        }
    }

    /// Answer the op `ticket` names on `key`, if its caller is still waiting.
    fn answer(&mut self, key: String, ticket: Ticket, value: &Map) {
        if let Some(reply) = self.waiting.remove(&(key, ticket)) {
            let _ = reply.send(Ok(value.clone()));
        }
    }

    /// Hand a changed key to every watcher of a prefix it has; drop watchers that are
    /// gone or too far behind.
    /// A new watcher, unless there are too many or its snapshot alone is over budget.
    fn start_watch(&mut self, prefix: String) -> Result<Watch, WatchError> {
        self.watchers.retain(|w| !w.changes.is_closed());
        if self.watchers.len() >= self.config.max_watchers {
            return Err(WatchError::TooMany {
                max: self.config.max_watchers,
            });
        }
        let max = self.config.watch_queue_bytes;
        let mut snapshot = Vec::new();
        let mut bytes = 0;
        // Deleted keys (no field left) are not listed, as in `GET /v1/kv`.
        let keys = self.node.protocol().kv().scan(&prefix);
        for (key, value) in keys.filter(|(_, v)| !v.is_bottom()) {
            let json = watch_json(key, value);
            bytes += json.len();
            if bytes > max {
                return Err(WatchError::SnapshotTooLarge { bytes, max });
            }
            snapshot.push(json);
        }
        let (changes, rx) = mpsc::unbounded_channel();
        let (queued, lagged) = (Arc::new(AtomicUsize::new(bytes)), Arc::default());
        self.watchers.push(Watcher {
            prefix,
            changes,
            queued: queued.clone(),
            lagged: Arc::clone(&lagged),
        });
        Ok(Watch {
            snapshot,
            changes: rx,
            queued,
            lagged,
        })
    }

    fn notify(&mut self, key: &str, value: &Map) {
        let max = self.config.watch_queue_bytes;
        let mut json: Option<Arc<str>> = None;
        self.watchers.retain(|w| {
            if !key.starts_with(w.prefix.as_str()) {
                return !w.changes.is_closed();
            }
            let json = json.get_or_insert_with(|| watch_json(key, value));
            if w.queued.load(Ordering::Relaxed) + json.len() > max {
                w.lagged.store(true, Ordering::Relaxed);
                warn!(prefix = ?w.prefix, "a KV watcher fell behind; closing its stream");
                return false;
            }
            w.queued.fetch_add(json.len(), Ordering::Relaxed);
            w.changes.send(Arc::clone(json)).is_ok()
        });
    }

    /// Records up to `last` are durable: tell the node, and answer what that completes.
    fn persisted(&mut self, last: PersistSeq, took: Duration, records: usize) {
        self.metrics.observe_sync(took);
        self.metrics.store_records.inc_by(records as u64);
        let now = self.now();
        self.node.handle_persisted(now, last);
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
                    warn!(?remote, %why, suppressed, "peer's TLS certificate refused");
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
    fn drain(&mut self) -> Result<(), DriverError> {
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
                    Transmit::Close { conn } => match self.conns.remove(&conn) {
                        Some(Conn::Dialing(task)) => task.abort(),
                        // Dropping the sender lets the writer flush what is queued and
                        // close; nothing more will be read.
                        Some(Conn::Open(mut o)) => {
                            o.reader.abort();
                            if o.hand_over(self.config.send_queue_bytes).is_err() {
                                self.too_slow(conn);
                                o.writer_task.abort();
                            }
                        }
                        None => {}
                    },
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

    /// `conn`'s send queue went over `send_queue_bytes`: count it and say so.
    fn too_slow(&self, conn: ConnId) {
        self.metrics.queue_drops.inc();
        warn!(
            ?conn,
            remote = self.remote(conn),
            "peer does not drain its send queue; closing the connection"
        );
    }

    /// Start committing the current batch on a blocking thread.
    fn commit(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        let store = self.store.clone();
        let inputs = self.inputs.clone();
        self.committing = true;
        tokio::spawn(async move {
            #[cfg_attr(madsim, allow(deprecated))]
            let job = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let last = store
                    .commit(&batch)?
                    .expect("only non-empty batches commit");
                Ok((last, started.elapsed(), batch.len()))
            });
            let result = job.await.unwrap_or_else(|e| {
                Err(StoreError::Io {
                    path: Default::default(),
                    error: format!("the commit task died: {e}"),
                })
            });
            let _ = inputs.send(Input::Committed(result)).await;
        });
    }

    fn dial(&mut self, conn: ConnId, addr: Addr) {
        self.remotes.insert(
            conn,
            Remote {
                addr: addr.to_string(),
                outbound: true,
            },
        );
        let inputs = self.inputs.clone();
        let limit = self.config.connect_timeout;
        if self.deny.contains(&addr) {
            debug!(%addr, "not dialling a denied address (test/demo partition)");
            let task = tokio::spawn(async move {
                let refused = io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "address on the deny list (test/demo partition)",
                );
                let _ = inputs.send(Input::ConnectFailed(conn, refused)).await;
            });
            self.conns.insert(conn, Conn::Dialing(task.abort_handle()));
            return;
        }
        let tls = self.config.tls.clone();
        let task = tokio::spawn(async move {
            let input =
                match tokio::time::timeout(limit, T::connect(addr.as_str().to_owned())).await {
                    Ok(Ok(stream)) => match tls {
                        None => Input::Connected(conn, PeerStream::Plain(stream), None),
                        Some(tls) => match tls_handshake(tls.connect(stream)).await {
                            Ok((s, peer)) => {
                                Input::Connected(conn, PeerStream::Tls(Box::new(s)), Some(peer))
                            }
                            Err(why) => Input::TlsRefused {
                                conn: Some(conn),
                                remote: addr.to_string(),
                                why,
                            },
                        },
                    },
                    Ok(Err(e)) => Input::ConnectFailed(conn, e),
                    Err(_) => Input::ConnectFailed(
                        conn,
                        io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
                    ),
                };
            let _ = inputs.send(input).await;
        });
        self.conns.insert(conn, Conn::Dialing(task.abort_handle()));
    }

    /// Start the reader and writer of a connected stream.
    fn open(
        &mut self,
        conn: ConnId,
        stream: PeerStream<T::Stream>,
        slot: Option<OwnedSemaphorePermit>,
        pending: Option<PendingSlot>,
    ) {
        let (read, write) = tokio::io::split(stream);
        let (writer, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let reader = tokio::spawn(read_frames(
            read,
            conn,
            self.config.max_frame,
            pending,
            self.inputs.clone(),
        ));
        let writer_task = tokio::spawn(write_frames(
            write,
            conn,
            rx,
            queued.clone(),
            self.inputs.clone(),
            self.config.write_timeout,
        ));
        let writer_abort = writer_task.abort_handle();
        self.writers.retain(|w| !w.is_finished());
        self.writers.push(writer_task);
        self.conns.insert(
            conn,
            Conn::Open(Open {
                writer,
                outgoing: Vec::new(),
                queued,
                reader: reader.abort_handle(),
                writer_task: writer_abort,
                _slot: slot,
            }),
        );
    }

    /// Log what the node reports and remember where linked peers listen.
    fn on_event(&mut self, event: Event<StackEvent>) {
        match event {
            Event::Link(LinkEvent::Up { peer, addr }) => {
                info!(peer = %self.who(peer), addr = ?addr.as_str(), "link up");
                self.peers.insert(peer, addr);
                if self.isolation.linked().is_some() {
                    info!("linked to the cluster: no longer isolated");
                }
            }
            Event::Link(LinkEvent::Down { peer, reason }) => {
                info!(peer = %self.who(peer), ?reason, "link down")
            }
            Event::Link(LinkEvent::ConnectFailed {
                addr,
                expected,
                error,
            }) => debug!(addr = ?addr.as_str(), ?expected, ?error, "could not link"),
            Event::Link(LinkEvent::AuthFailure { conn, claimed }) => {
                let outbound = self.remotes.get(&conn).is_some_and(|r| r.outbound);
                if let Some(suppressed) = self.admit(LineKind::AuthFailure) {
                    let remote = self.remote(conn);
                    let claimed = claimed.map(|id| self.who(id));
                    if outbound {
                        warn!(
                            ?remote,
                            ?claimed,
                            suppressed,
                            "the peer this node dialled failed its cookie proof (or TLS \
                             certificate): this node's cookie differs from that peer's; \
                             connection closed"
                        )
                    } else {
                        warn!(
                            ?remote,
                            ?claimed,
                            suppressed,
                            "a node that connected failed the cookie proof (or its TLS \
                             certificate): its cookie differs from this node's; connection \
                             refused"
                        )
                    }
                }
                if outbound {
                    self.dial_failed(Dial::CookieRefused);
                }
            }
            Event::Link(LinkEvent::DecodeError { conn, error }) => {
                if let Some(suppressed) = self.admit(LineKind::DecodeError) {
                    let remote = self.remote(conn);
                    warn!(?remote, %error, suppressed, "undecodable frame; connection closed")
                }
            }
            Event::Link(LinkEvent::DuplicateRefused {
                conn,
                peer,
                addr,
                live_addr,
            }) => {
                if let Some(suppressed) = self.admit(LineKind::DuplicateName) {
                    let remote = self.remote(conn);
                    warn!(
                        ?remote,
                        peer = %self.who(peer),
                        addr = ?addr.as_str(),
                        live_addr = ?live_addr.as_str(),
                        suppressed,
                        "a second node claims a linked node's name from another address; \
                         refused it (node names must be unique in a cluster)"
                    )
                }
            }
            Event::Link(LinkEvent::RefusedByPeer { peer, reason }) => {
                if let Some(suppressed) = self.admit(LineKind::DuplicateName) {
                    let remote = self.peers.get(&peer).map(|a| a.to_string());
                    error!(
                        peer = %self.who(peer),
                        ?remote,
                        ?reason,
                        suppressed,
                        "a peer refused our link: another node with this node's name is \
                         live in the cluster (node names must be unique; is another agent \
                         running with the same --name?)"
                    )
                }
            }
            Event::Link(LinkEvent::Message { from, .. }) => {
                debug!(from = %self.who(from), "message surfaced to the driver")
            }
            Event::BadMessage { from, error } => {
                if let Some(suppressed) = self.admit(LineKind::BadMessage) {
                    let remote = self.peers.get(&from).map(|a| a.to_string());
                    warn!(from = %self.who(from), ?remote, %error, suppressed, "undecodable message; link dropped")
                }
            }
            Event::App(StackEvent::Membership(event)) => match event {
                MembershipEvent::NeighborUp(peer) => {
                    info!(peer = %self.who(peer), "membership: neighbour up")
                }
                MembershipEvent::NeighborDown { peer, reason } => {
                    info!(peer = %self.who(peer), ?reason, "membership: neighbour down")
                }
                MembershipEvent::Suspected(peer) => {
                    info!(peer = %self.who(peer), "membership: neighbour suspected")
                }
                MembershipEvent::Cleared(peer) => {
                    info!(peer = %self.who(peer), "membership: neighbour cleared")
                }
            },
            Event::App(StackEvent::Kv(KvEvent::Committed { ticket, key, value })) => {
                // The value changed when the op applied; watchers heard of it then.
                debug!(?key, "kv op durable");
                self.answer(key, ticket, &value);
            }
            Event::App(StackEvent::Kv(KvEvent::Unreplicable { key, size, max })) => {
                if let Some(suppressed) = self.admit(LineKind::Unreplicable) {
                    warn!(
                        ?key,
                        size,
                        max,
                        suppressed,
                        "a KV value is larger than anti-entropy carries: it cannot reach \
                         every node (remove what made it so large)"
                    )
                }
            }
            Event::App(StackEvent::Kv(KvEvent::Changed { key, value })) => {
                self.notify(&key, &value);
                if !self.followers.is_empty() {
                    self.changes.keys.insert(key);
                }
            }
            Event::App(StackEvent::Gm(event)) => {
                let member = match &event {
                    GmEvent::Added { member, .. }
                    | GmEvent::Changed { member }
                    | GmEvent::Suspected { member, .. } => *member,
                    GmEvent::Reachable(m) | GmEvent::Unreachable(m) | GmEvent::Forgotten(m) => *m,
                };
                debug!(member = %self.who(member), ?event, "global membership");
                self.changes.membership |= !matches!(event, GmEvent::Suspected { .. });
            }
            Event::App(StackEvent::Multicast(d)) => info!(
                origin = %self.who(d.origin),
                seq = d.seq,
                topic = ?d.topic,
                bytes = d.payload.len(),
                "multicast delivered"
            ),
            Event::App(event) => debug!(?event, "stack event"),
        }
        self.prune_peers();
    }

    /// Keep the address book to the peers the views still name, once it grows: a long
    /// churn must not grow it without bound.
    /// Whether a refusal line of `kind` may be written now (see [`LogLimiter`]); lines
    /// left out are counted in `log_lines_suppressed`.
    fn admit(&mut self, kind: LineKind) -> Option<u64> {
        let admitted = self.log.admit(kind, self.origin.elapsed());
        if admitted.is_none() {
            self.metrics.log_lines_suppressed.inc();
        }
        admitted
    }

    /// A peer as log lines name it: `name (id)`, or the id alone until global membership
    /// holds its entry (ids are spelled as everywhere: 16 hex digits).
    fn who(&self, id: NodeId) -> String {
        match self.node.protocol().gm().member(id) {
            Some(m) => format!("{} ({id})", m.name),
            None => id.to_string(),
        }
    }

    /// Who is at the other end of `conn`, for a log line.
    fn remote(&self, conn: ConnId) -> &str {
        self.remotes
            .get(&conn)
            .map_or("unknown", |r| r.addr.as_str())
    }

    /// A dial failed: say so once if this node is now isolated (see `isolation`).
    fn dial_failed(&mut self, dial: Dial) {
        let links = self.node.links().peers().count();
        match self.isolation.dial_failed(dial, links) {
            Some(Some(Cause::CookieRefused)) => error!(
                "this node's cookie differs from the cluster's: every contact it dialled \
                 refused its cookie proof, so it runs alone (check --cookie / --cookie-file \
                 against the other agents'); it keeps trying"
            ),
            Some(Some(Cause::NoAnswer)) => warn!(
                failed_dials = isolation::AFTER,
                "no contact answers: this agent runs isolated (is anyone listening at the \
                 --join addresses?); it keeps trying"
            ),
            Some(None) | None => {}
        }
    }

    fn prune_peers(&mut self) {
        let m = self.node.protocol().membership();
        let bound = 2 * (m.config().active_view + m.config().passive_view);
        if self.peers.len() > bound {
            let keep: std::collections::BTreeSet<NodeId> = m
                .active_view()
                .into_iter()
                .chain(m.passive_view())
                .collect();
            self.peers.retain(|id, _| keep.contains(id));
        }
    }

    fn update_gauges(&self) {
        let m = self.node.protocol().membership();
        self.metrics.active_view.set(m.active_view().len() as i64);
        self.metrics.passive_view.set(m.passive_view().len() as i64);
        self.metrics
            .links
            .set(self.node.links().peers().count() as i64);
        self.metrics.connections.set(self.conns.len() as i64);
        let gm = self.node.protocol().gm();
        self.metrics.members.set(gm.members().count() as i64);
        self.metrics.reachable.set(gm.reachable().len() as i64);
        self.metrics.sync_core(self.node.stats(), m.counters());
        let kv = self.node.protocol().kv();
        self.metrics
            .sync_kv(kv.counters(), kv.len(), self.waiting.len());
    }

    /// Tell the neighbours we leave (they drop us from both views and repair at once),
    /// close every connection once those messages are flushed, then make everything the
    /// node asked to persist durable.
    async fn leave(
        &mut self,
        input_rx: &mut mpsc::Receiver<Input<T::Stream>>,
    ) -> Result<(), DriverError> {
        info!("leaving: telling neighbours, closing links and flushing the store");
        let now = self.now();
        self.node.command(now, |s, c| s.leave(c));
        self.drain()?;
        for (_, c) in std::mem::take(&mut self.conns) {
            match c {
                Conn::Dialing(task) => task.abort(),
                Conn::Open(o) => o.reader.abort(),
            }
        }
        while self.committing {
            match input_rx.recv().await {
                Some(Input::Committed(result)) => {
                    self.committing = false;
                    let (last, took, records) = result.map_err(DriverError::Store)?;
                    self.persisted(last, took, records);
                }
                Some(_) => {}
                None => break,
            }
        }
        while let Some(record) = self.node.poll_persist() {
            self.batch.push(record);
        }
        let batch = std::mem::take(&mut self.batch);
        let started = std::time::Instant::now();
        if let Some(last) = self.store.commit(&batch).map_err(DriverError::Store)? {
            self.persisted(last, started.elapsed(), batch.len());
        }
        // Answer the ops that the last batches made durable (their callers are told the
        // truth rather than "stopped"); what else the node says now goes nowhere.
        while let Some(event) = self.node.poll_event() {
            if let Event::App(StackEvent::Kv(KvEvent::Committed { ticket, key, value })) = event {
                self.answer(key, ticket, &value);
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

fn abort(c: &Conn) {
    match c {
        Conn::Dialing(task) => task.abort(),
        Conn::Open(o) => {
            o.reader.abort();
            o.writer_task.abort();
        }
    }
}

/// A TLS handshake, bounded by the time a link handshake may take.
async fn tls_handshake<S>(
    handshake: impl Future<Output = Result<(tokio_rustls::TlsStream<S>, NodeId), TlsRefusal>>,
) -> Result<(tokio_rustls::TlsStream<S>, NodeId), TlsRefusal> {
    let limit = Duration::from_nanos(LinkConfig::default().handshake_timeout.as_nanos());
    tokio::time::timeout(limit, handshake)
        .await
        .unwrap_or(Err(TlsRefusal::Timeout))
}

async fn accept_loop<T: Transport>(
    listener: T::Listener,
    slots: Arc<Semaphore>,
    max_pending_per_source: usize,
    tls: Option<Arc<Tls>>,
    inputs: mpsc::Sender<Input<T::Stream>>,
    metrics: Arc<Metrics>,
) {
    let origin = tokio::time::Instant::now();
    let mut log = LogLimiter::default();
    let by_source = PendingBySource::default();
    let mut refuse = |kind: LineKind, from: std::net::SocketAddr, why: &str| match log
        .admit(kind, origin.elapsed())
    {
        Some(suppressed) => warn!(%from, suppressed, "{why}; closing a new connection at once"),
        None => {
            metrics.log_lines_suppressed.inc();
        }
    };
    loop {
        match T::accept(&listener).await {
            Ok((stream, from)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    metrics.connections_refused.inc();
                    refuse(LineKind::ConnectionRefused, from, "too many connections");
                    continue;
                };
                let Some(pending) =
                    PendingSlot::take(&by_source, from.ip(), max_pending_per_source)
                else {
                    metrics.pending_refused.inc();
                    refuse(
                        LineKind::PendingRefused,
                        from,
                        "too many handshakes from one source",
                    );
                    continue;
                };
                let mut inbound = Inbound {
                    from,
                    slot,
                    pending,
                    verified: None,
                };
                let Some(tls) = &tls else {
                    if inputs
                        .send(Input::Accepted(PeerStream::Plain(stream), inbound))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                };
                // The TLS handshake runs in its own task, holding the connection's slots,
                // so a slow one cannot stall the accepting of others.
                let (tls, inputs) = (tls.clone(), inputs.clone());
                tokio::spawn(async move {
                    let input = match tls_handshake(tls.accept(stream)).await {
                        Ok((s, peer)) => {
                            inbound.verified = Some(peer);
                            Input::Accepted(PeerStream::Tls(Box::new(s)), inbound)
                        }
                        Err(why) => Input::TlsRefused {
                            conn: None,
                            remote: from.to_string(),
                            why,
                        },
                    };
                    let _ = inputs.send(input).await;
                });
            }
            Err(e) => {
                // Out of file descriptors, usually: wait rather than spin.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What a reader asks the socket for at once: a frame's header and body, and the frames
/// behind it, in one read (rather than two or three reads a frame).
const READ_BUFFER: usize = 4 << 10;

/// Cut the stream into frames. A header that does not decode (wrong magic, oversize
/// length, ...) is handed to the node as it is: the node's decoder rejects it with the
/// same error, counts it and closes the connection. The handshake's frames may be no
/// larger than the handshake needs; an inbound connection's `pending` slot is given back
/// once they are read.
async fn read_frames<R: AsyncRead + Unpin, S>(
    read: R,
    conn: ConnId,
    max_frame: usize,
    mut pending: Option<PendingSlot>,
    inputs: mpsc::Sender<Input<S>>,
) {
    let mut read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
    let mut frames = 0u64;
    loop {
        if frames == HANDSHAKE_FRAMES {
            pending = None;
        }
        let limit = if frames < HANDSHAKE_FRAMES {
            MAX_HANDSHAKE_FRAME
        } else {
            max_frame
        };
        frames += 1;
        let mut header = [0u8; HEADER_LEN];
        if read.read_exact(&mut header).await.is_err() {
            break;
        }
        let len = match decode_header(&header, limit) {
            Ok((_, len)) => len,
            Err(_) => {
                let _ = inputs.send(Input::Frame(conn, header.to_vec())).await;
                return;
            }
        };
        // Grow with what arrives, not with what the header claims.
        let mut frame = Vec::with_capacity(HEADER_LEN + len.min(64 << 10));
        frame.extend_from_slice(&header);
        match (&mut read).take(len as u64).read_to_end(&mut frame).await {
            Ok(n) if n == len => {}
            _ => break,
        }
        if inputs.send(Input::Frame(conn, frame)).await.is_err() {
            return;
        }
    }
    drop(pending);
    let _ = inputs.send(Input::Closed(conn)).await;
}

/// Bytes one write of [`write_frames`] gathers at most from buffers waiting together.
const WRITE_GATHER: usize = 64 << 10;

/// Write what the node task hands over, each buffer (a drain's frames) with one write,
/// and buffers that wait together gathered into one (up to [`WRITE_GATHER`] bytes):
/// with `TCP_NODELAY` each write is a segment, so fewer writes are fewer packets (and
/// fewer syscalls). A write that fails or outlasts `write_timeout` ends the task with a
/// `WriteFailed` input.
async fn write_frames<W: AsyncWrite + Unpin, S>(
    mut write: W,
    conn: ConnId,
    mut buffers: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    inputs: mpsc::Sender<Input<S>>,
    write_timeout: Duration,
) {
    while let Some(mut bytes) = buffers.recv().await {
        let mut taken = cost(&bytes);
        while bytes.len() < WRITE_GATHER {
            match buffers.try_recv() {
                Ok(more) => {
                    taken += cost(&more);
                    bytes.extend_from_slice(&more);
                }
                Err(_) => break,
            }
        }
        // Flushed once per write: a stream may buffer writes until flushed (madsim's
        // simulated TCP does, and so does TLS).
        let written = tokio::time::timeout(write_timeout, async {
            write.write_all(&bytes).await?;
            write.flush().await
        })
        .await;
        queued.fetch_sub(taken, Ordering::Relaxed);
        let error = match written {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("a write took over {write_timeout:?}"),
            ),
        };
        let _ = inputs.send(Input::WriteFailed(conn, error)).await;
        return;
    }
    // The node closed the connection: everything queued is written; say goodbye.
    let _ = tokio::time::timeout(write_timeout, write.shutdown()).await;
}
