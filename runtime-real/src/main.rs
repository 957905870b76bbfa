//! `hawser`: the node runtime and the simulator front end.

mod sim_cmd;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hawser_runtime::client;
use hawser_runtime::config::DEFAULT_ADMIN;

#[derive(Parser)]
#[command(
    name = "hawser",
    version,
    about = "hawser: a simulation-first cluster control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios in the deterministic simulator.
    #[command(subcommand)]
    Sim(sim_cmd::SimCommand),
    /// Run a node: join the cluster, keep state in --data-dir, serve the admin API.
    #[cfg(not(madsim))]
    Agent(hawser_runtime::config::AgentArgs),
    /// List the members a running agent knows (asks its admin API).
    Members(ClientArgs),
    /// Show a running agent's overlay: its active and passive views.
    Overlay(ClientArgs),
}

#[derive(Args)]
struct ClientArgs {
    /// The agent's admin API (host:port).
    #[arg(long, default_value = DEFAULT_ADMIN)]
    admin: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Fetch `path` and print it as JSON or through `table`.
fn show(args: &ClientArgs, path: &str, table: fn(&serde_json::Value) -> String) -> ExitCode {
    match client::get_json(&args.admin, path) {
        Ok(doc) if args.json => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Ok(doc) => {
            print!("{}", table(&doc));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hawser: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Sim(cmd) => sim_cmd::main(cmd),
        #[cfg(not(madsim))]
        Command::Agent(args) => hawser_runtime::agent::main(args),
        Command::Members(args) => show(&args, "/v1/members", client::members_table),
        Command::Overlay(args) => show(&args, "/v1/overlay", client::overlay_table),
    }
}
