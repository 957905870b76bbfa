//! The heartbeat node program, shared by the example's `main.rs` and by the test that
//! starts it as three processes (`tests/heartbeat_processes.rs`), so both run one code.

// The simulator's protocol file, unchanged; some of its accessors serve the simulator's
// example only.
#[allow(dead_code)]
#[path = "../../../sim/examples/heartbeat/protocol.rs"]
mod protocol;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hawser_core::{Addr, Cookie, NodeId};
use hawser_runtime::RunConfig;
use protocol::{Heartbeat, HeartbeatEvent};

/// Run the heartbeat protocol as a real node.
#[derive(Parser, Debug)]
#[command(name = "heartbeat")]
struct Args {
    /// Where to accept peers' connections.
    #[arg(long)]
    listen: SocketAddr,
    /// A peer to keep a heartbeat link with (its --listen address); repeat for each.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// The node's store (created if missing); its incarnation survives restarts there.
    #[arg(long)]
    data_dir: PathBuf,
    /// The node's name, unique among its peers (default: the --listen address).
    #[arg(long)]
    name: Option<String>,
    /// The secret every peer must share.
    #[arg(long, default_value = "heartbeat-example")]
    cookie: String,
}

/// One line per event, flushed as it is written (stdout is line-buffered).
fn print(event: HeartbeatEvent) {
    match event {
        HeartbeatEvent::Alive { peer, incarnation } => {
            println!("alive peer={peer} incarnation={incarnation}")
        }
        HeartbeatEvent::Restarted { peer, incarnation } => {
            println!("restarted peer={peer} incarnation={incarnation}")
        }
        HeartbeatEvent::Silent { peer } => println!("silent peer={peer}"),
    }
}

pub fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("heartbeat: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => {
            println!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("heartbeat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut peers = Vec::new();
    for p in &args.peers {
        peers.push(Addr::new(p.as_str()).ok_or_else(|| format!("--peer {p:?}: too long"))?);
    }
    let cookie = Cookie::new(args.cookie.into_bytes()).ok_or("--cookie: must not be empty")?;
    let name = args.name.unwrap_or_else(|| args.listen.to_string());
    let config = RunConfig::new(name.as_str(), args.listen, cookie, args.data_dir);
    let running = hawser_runtime::start(config, |disk| Heartbeat::new(peers, disk), print)
        .await
        .map_err(|e| e.to_string())?;
    let incarnation = running
        .handle()
        .inspect(|view| view.node.protocol().incarnation())
        .await
        .ok_or("the node stopped at once")?;
    println!(
        "started name={name} id={} incarnation={incarnation} listen={}",
        NodeId::from_name(&name),
        running.local_addr()
    );
    running.until_signal().await.map_err(|e| e.to_string())
}
