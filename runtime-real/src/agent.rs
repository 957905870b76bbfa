//! `hawser agent`: one node on the real network, with its store and its admin API.
//!
//! Start-up order is chosen so that every refusal happens before anything is visible to
//! the cluster: configuration, then the store (which locks the data directory), then the
//! listening sockets, and only then the node starts dialling.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use hawser_core::NodeId;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use crate::admin::{self, Admin, id_hex};
use crate::admin_guard::{GuardedListener, Policy};
use crate::config::{AgentArgs, AgentConfig, LogFormat, MINIMAL_COMMAND};
use crate::driver::{Driver, os_seed};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::transport::{Tcp, Transport};

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hawser agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("hawser agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(config: AgentConfig) -> Result<(), String> {
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
    // The only entropy the node ever reads.
    let seed = os_seed()?;
    let node = spec.build(&snapshot, seed)?;
    info!(
        name = %spec.name,
        id = %id_hex(NodeId::from_name(&spec.name)),
        listen = %config.listen,
        advertise = %spec.advertise,
        admin = %admin_addr,
        store = %store.path().display(),
        recovered_keys = snapshot.0.len(),
        "agent starting"
    );
    let metrics = Metrics::new();
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
    let (driver, handle) = Driver::<Tcp>::new(
        node,
        Arc::new(store),
        listener,
        driver_config,
        metrics.clone(),
    );
    let mut driver = tokio::spawn(driver.run());
    let app = admin::router(Admin {
        handle: handle.clone(),
        metrics: metrics.clone(),
        name: spec.name.clone(),
        listen: config.listen,
        admin: admin_addr,
        started: std::time::Instant::now(),
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
