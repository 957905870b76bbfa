//! `hawser agent`: one node on the real network, with its store and its admin API.
//!
//! Start-up order is chosen so that every refusal happens before anything is visible to
//! the cluster: configuration, then the store (which locks the data directory), then the
//! listening sockets, and only then the node starts dialling.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use hawser_core::NodeId;
use hawser_dataplane::dns::Zone;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use crate::admin::{self, Admin, id_hex};
use crate::admin_guard::{GuardedListener, Policy};
use crate::config::{AgentArgs, AgentConfig, LogFormat, MINIMAL_COMMAND};
use crate::dns::api::DnsApi;
use crate::dns::follower::{SharedZone, ZoneFollower};
use crate::dns::metrics::DnsMetrics;
use crate::dns::service::DnsService;
use crate::dns::settings::DnsSettings;
use crate::driver::{Driver, NodeSpec, os_seed};
use crate::lb::{self, LbFollower, LbStatus};
use crate::metrics::Metrics;
use crate::monitor::MonitorLayer;
use crate::overlay;
use crate::overlay::api::OverlayApi;
use crate::overlay::follower::{self, OverlayFollower, SharedOverlays};
use crate::overlay::reconcile::OverlayStatus;
use crate::store::Store;
use crate::transport::{Tcp, Transport};
use hawser_dataplane::lb::ProgrammedNames;

/// Exit codes: 0 after a clean leave, 1 when something failed at run time, 2 when the
/// configuration was refused.
pub fn main(args: AgentArgs) -> ExitCode {
    if args.is_empty() {
        eprintln!(
            "hawser agent needs to know at least who it is, where to listen, where to keep \
             its state and the cluster cookie. The smallest working command is:\n\n    \
             {MINIMAL_COMMAND}\n\nAdd --join ADDR,... to join other agents, and see \
             `hawser agent --help` for the rest."
        );
        return ExitCode::from(2);
    }
    let config = match AgentConfig::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hawser agent: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    for warning in &config.warnings {
        warn!("{warning}");
    }
    // The load balancer's kernel backend is opened before anything starts, so that a
    // kernel without what --lb asked for is refused like a bad setting.
    let kernel = match crate::lb::open(&config.lb) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("hawser agent: {e}");
            return ExitCode::from(2);
        }
    };
    // The same for the overlay's rtnetlink: an agent that cannot program the overlay
    // it was asked for is refused.
    let overlay_kernel = if config.overlay.networks.is_empty() {
        None
    } else {
        match hawser_dataplane::overlay::Rtnl::open() {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("hawser agent: overlay: {e}");
                return ExitCode::from(2);
            }
        }
    };
    // One thread: the node is one task, and nothing else the agent runs on the runtime
    // computes for long (store commits and kernel calls go to blocking threads, DNS has
    // threads of its own). A worker per core bought no latency and cost each idle agent
    // cross-thread wake-ups on every timer and frame, and a heap and a stack per thread.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hawser agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, kernel, overlay_kernel)) {
        Ok(()) => ExitCode::SUCCESS,
        // Logging is up: the error is said once, as a log line (in --log-format).
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines to stderr (filtered by RUST_LOG, default info), and to `hawser monitor`
/// clients at the level each asks for (see `monitor`).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::prelude::*;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let stderr = match format {
        LogFormat::Text => stderr.boxed(),
        LogFormat::Json => stderr.json().boxed(),
    };
    let ours = tracing_subscriber::filter::filter_fn(|m| m.target().starts_with("hawser"));
    tracing_subscriber::registry()
        .with(stderr.with_filter(filter))
        .with(MonitorLayer.with_filter(ours))
        .init();
}

async fn run(
    config: AgentConfig,
    kernel: Option<Box<dyn hawser_dataplane::lb::Kernel>>,
    overlay_kernel: Option<hawser_dataplane::overlay::Rtnl>,
) -> Result<(), String> {
    let spec = config.node;
    let (store, snapshot) = Store::open(&config.data_dir, &spec.name).map_err(|e| e.to_string())?;
    let listener = Tcp::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen for peers on {}: {e}", config.listen))?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin)
        .await
        .map_err(|e| format!("cannot listen for the admin API on {}: {e}", config.admin))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| format!("admin socket: {e}"))?;
    let dns_metrics = DnsMetrics::new();
    let zone = dns_zone(&config.dns, &spec);
    // The named VIPs this kernel has programmed: the load balancer's reconciler fills it,
    // DNS serves it as `<name>.vip.<zone>`.
    let vip_names = ProgrammedNames::new();
    let dns = match config.dns.listen {
        Some(listen) => Some(
            DnsService::start(
                &config.dns,
                listen,
                zone.clone(),
                Arc::new(vip_names.clone()),
                dns_metrics.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // The only entropy the node ever reads.
    let seed = os_seed().map_err(|e| e.to_string())?;
    let node = spec.build(&snapshot, seed).map_err(|e| e.to_string())?;
    info!(
        name = %spec.name,
        id = %id_hex(NodeId::from_name(&spec.name)),
        listen = %config.listen,
        advertise = %spec.advertise,
        admin = %admin_addr,
        dns = %dns.as_ref().map_or("off".to_owned(), |d| d.addr.to_string()),
        store = %store.path().display(),
        recovered_keys = snapshot.0.len(),
        "agent starting"
    );
    let metrics = Metrics::new_with(|r| dns_metrics.register(r));
    let mut driver_config = config.driver;
    let (admin_cap, peer_cap) = fit_to_descriptors(
        config.admin_api.max_connections,
        driver_config.max_connections,
    );
    if (admin_cap, peer_cap)
        != (
            config.admin_api.max_connections,
            driver_config.max_connections,
        )
    {
        warn!(
            admin_connections = admin_cap,
            peer_connections = peer_cap,
            "few file descriptors (ulimit -n): connection caps lowered so peers keep a reserve"
        );
    }
    driver_config.max_connections = peer_cap;
    let (mut driver, handle) = Driver::<Tcp>::new(
        node,
        Arc::new(store),
        listener,
        driver_config,
        metrics.clone(),
    );
    driver.follow(Box::new(ZoneFollower {
        zone,
        metrics: dns_metrics,
    }));
    // The L4 load balancer: its follower derives the desired state in the driver task,
    // its reconciler programs the kernel and publishes `vip_names`.
    let lb_status = Arc::new(LbStatus::new(config.lb.backend, config.lb.ranges));
    if let Some(kernel) = kernel {
        let (follower, desired) = LbFollower::new(config.lb.ranges, metrics.clone());
        driver.follow(Box::new(follower));
        lb::spawn_reconciler(
            kernel,
            desired,
            config.lb.interval,
            vip_names.clone(),
            lb_status.clone(),
            metrics.clone(),
        );
        info!(backend = ?config.lb.backend, interface = %config.lb.interface, "load balancer on");
    }
    // The overlay networks: members in the driver task, their writes and a ticker as
    // tasks of their own.
    let overlay = if config.overlay.networks.is_empty() {
        OverlayApi::default()
    } else {
        let me = NodeId::from_name(&spec.name);
        let (overlays, writes, desired) = SharedOverlays::new(&config.overlay, me, metrics.clone());
        driver.follow(Box::new(OverlayFollower(overlays.clone())));
        follower::spawn_writer(handle.clone(), writes, metrics.clone());
        follower::spawn_ticker(handle.clone(), overlays.clone());
        let status = Arc::new(OverlayStatus::default());
        let kernel = overlay_kernel.expect("opened when networks are configured");
        overlay::reconcile::spawn(kernel, desired, status.clone(), metrics.clone());
        let names: Vec<&str> = config
            .overlay
            .networks
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        info!(networks = ?names, "overlay on");
        OverlayApi {
            overlays: Some(overlays),
            status,
        }
    };
    let mut driver = tokio::spawn(driver.run());
    let app = admin::router(Admin {
        handle: handle.clone(),
        metrics: metrics.clone(),
        name: spec.name.clone(),
        listen: config.listen,
        admin: admin_addr,
        started: std::time::Instant::now(),
        dns: DnsApi {
            handle: handle.clone(),
            zone: config.dns.server.zone.clone(),
            node_ttl: config.dns.server.node_ttl,
            serving: dns.as_ref().map(|d| d.addr),
        },
        lb: lb_status,
        overlay,
        policy: Policy {
            port: admin_addr.port(),
            hosts: config.admin_api.hosts,
            token: config.admin_api.token,
        },
    });
    let admin_listener = GuardedListener::new(
        admin_listener,
        admin_cap,
        config.admin_api.idle_timeout,
        metrics,
    );
    // The API outlives the driver by a moment, so that what it was serving ends cleanly:
    // ops waiting for the disk get their answer, watch streams their `end` event.
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(async move {
        axum::serve(admin_listener, app)
            .with_graceful_shutdown(async {
                let _ = api_stopped.await;
            })
            .await
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let result = tokio::select! {
        stopped = &mut driver => Some(stopped),
        _ = term.recv() => { info!("SIGTERM: leaving"); None }
        _ = tokio::signal::ctrl_c() => { info!("SIGINT: leaving"); None }
    };
    let result = match result {
        Some(stopped) => stopped,
        None => {
            handle.shutdown().await;
            driver.await
        }
    };
    drop(dns);
    let _ = stop_api.send(());
    if tokio::time::timeout(std::time::Duration::from_secs(2), &mut server)
        .await
        .is_err()
    {
        server.abort();
    }
    match result {
        Ok(Ok(())) => {
            info!("left the cluster; store flushed");
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the driver task failed: {e}")),
    }
}

/// The cluster zone this agent serves (and the admin API lists), empty until the driver
/// fills it. `ns.<zone>` is this node's DNS address, or its advertised one when DNS
/// listens on a wildcard address (or not at all).
fn dns_zone(dns: &DnsSettings, spec: &NodeSpec) -> SharedZone {
    let advertised = spec
        .advertise
        .as_str()
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip());
    let ns = dns
        .listen
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .or(advertised);
    let s = &dns.server;
    Arc::new(std::sync::RwLock::new(Zone::new(
        s.zone.clone(),
        ns.into_iter().collect(),
        s.node_ttl,
        s.negative_ttl,
    )))
}

/// The connection caps, lowered if the process may open few descriptors (`ulimit -n`):
/// the admin API may use at most an eighth of them, peers the rest less a margin for the
/// store, logs and dials. So idle admin clients cannot starve the peer port.
fn fit_to_descriptors(admin: usize, peers: usize) -> (usize, usize) {
    const MARGIN: usize = 32;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return (admin, peers);
    }
    let fds = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
    let admin = admin.min((fds / 8).max(1));
    let peers = peers.min(fds.saturating_sub(admin + MARGIN).max(1));
    (admin, peers)
}
