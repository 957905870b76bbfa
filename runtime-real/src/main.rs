//! `hawser`: the node runtime and the simulator front end.

mod sim_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Sim(cmd) => sim_cmd::main(cmd),
    }
}
