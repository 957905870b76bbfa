//! The heartbeat protocol of `sim/examples/heartbeat` — the very file the simulator runs
//! — as a real process: TCP on the addresses given, real timers, and a redb store in
//! `--data-dir` that keeps the incarnation across restarts.
//!
//! ```text
//! cargo run --release -p hawser-runtime --example heartbeat_real -- \
//!     --listen 127.0.0.1:7101 --peer 127.0.0.1:7102 --peer 127.0.0.1:7103 --data-dir /tmp/hb1
//! ```
//!
//! Each event is one line on stdout (`alive`, `restarted`, `silent`); the driver's own
//! log (links up and down, refusals) goes to stderr (`RUST_LOG=warn` for less).
//! SIGINT or SIGTERM stops it gracefully.

mod node;

fn main() -> std::process::ExitCode {
    node::main()
}
