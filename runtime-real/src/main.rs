//! `hawser`: the node runtime and the simulator front end.

mod dns_cmd;
mod sim_cmd;
mod wait_cmd;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hawser_runtime::client;
use hawser_runtime::config::DEFAULT_ADMIN;

/// mimalloc: the simulator allocates for every frame and entry it moves, and glibc's
/// malloc was a tenth of a 1,000-node run (a quarter faster with this).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Agent(Box<hawser_runtime::config::AgentArgs>),
    /// Print a new random cluster cookie (256 bits, 64 hex digits), for --cookie-file:
    /// `(umask 077; hawser keygen > cookie)`.
    Keygen,
    /// List the members a running agent knows (asks its admin API).
    Members(ClientArgs),
    /// Show a running agent's overlay: its active and passive views.
    Overlay(ClientArgs),
    /// Show the shortest path over the overlay from a running agent to NODE (a member's
    /// name or 16-hex-digit id).
    Route {
        node: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read, write and follow the replicated KV through a running agent.
    #[command(subcommand)]
    Kv(KvCommand),
    /// The cluster zone's records (add, rm, records) and questions to an agent's DNS
    /// server (query).
    #[command(subcommand)]
    Dns(dns_cmd::DnsCommand),
    /// Publish, withdraw and list load-balancer VIPs through a running agent.
    #[command(subcommand)]
    Vip(VipCommand),
    /// The VXLAN overlay networks this agent is part of (not `hawser overlay`, the
    /// membership overlay).
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Wait until an agent serves its admin API (exit 0), for scripts that start one in
    /// the background: `hawser agent ... & hawser wait --admin 127.0.0.1:7601`.
    Wait(wait_cmd::WaitArgs),
    /// Three agents in this process on loopback show the KV converging through
    /// failures: a partition, a write everyone sees, a broken cookie, writes in
    /// isolation, mend, convergence. Exits 0 only if every read matched.
    #[cfg(not(madsim))]
    Demo(hawser_runtime::demo::DemoArgs),
}

#[derive(Subcommand)]
enum KvCommand {
    /// Print a key's value (`{}` for a key never written).
    Get {
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Apply an op to a key; prints the new value once the op is durable. Example:
    /// hawser kv op erlang_users '{"update":[{"field":"number","type":"counter","op":{"increment":5}}]}'
    Op {
        key: String,
        /// The op, as JSON.
        op: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List keys (under PREFIX) and their values.
    List {
        #[arg(default_value = "")]
        prefix: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the keys (under PREFIX), then every change as it happens, until stopped.
    Watch {
        #[arg(default_value = "")]
        prefix: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Each network, this node's subnet, gateway and VTEP, and its peers with whether
    /// this node's kernel holds their entries (PROGRAMMED).
    List(ClientArgs),
}

#[derive(Subcommand)]
enum VipCommand {
    /// Publish a backend of this node for VIP (tcp://ip:port, udp://[ip6]:port or
    /// tcp://name:port). Publishing it again with another weight replaces the weight;
    /// weight 0 drains it (open connections stay, no new ones). Example:
    /// hawser vip add tcp://11.1.2.3:80 --backend 198.18.1.2:8080 --weight 1
    Add {
        vip: String,
        /// The backend's ip:port.
        #[arg(long)]
        backend: String,
        #[arg(long, default_value_t = 1)]
        weight: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Withdraw a backend this node published for VIP.
    Rm {
        vip: String,
        #[arg(long)]
        backend: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Every VIP, its backends, whether each is reachable, the weight this node's
    /// kernel holds for it (KERNEL; `-`: none), and whether the kernel holds the VIP
    /// as wanted (PROGRAMMED).
    List(ClientArgs),
}

fn vip(cmd: VipCommand) -> ExitCode {
    let (method, vip, backend, weight, c) = match cmd {
        VipCommand::List(c) => return show(&c, "/v1/vips", client::vips_table),
        VipCommand::Add {
            vip,
            backend,
            weight,
            client,
        } => ("POST", vip, backend, Some(weight), client),
        VipCommand::Rm {
            vip,
            backend,
            client,
        } => ("DELETE", vip, backend, None, client),
    };
    if let Err(e) = c.use_token() {
        return fail(e);
    }
    let body = serde_json::json!({ "vip": vip, "backend": backend, "weight": weight });
    match client::send_json(&c.admin, method, "/v1/vips", &body.to_string()) {
        Ok(v) if c.json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(_) if method == "POST" => {
            println!(
                "{vip}: backend {backend} published (durable on {})",
                c.admin
            );
            ExitCode::SUCCESS
        }
        Ok(_) => {
            println!(
                "{vip}: backend {backend} withdrawn (durable on {})",
                c.admin
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

#[derive(Args)]
pub(crate) struct ClientArgs {
    /// The agent's admin API (host:port).
    #[arg(long, default_value = DEFAULT_ADMIN)]
    pub(crate) admin: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// A file holding the admin API's bearer token (the agent's --admin-token-file); or
    /// set HAWSER_ADMIN_TOKEN.
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
}

impl ClientArgs {
    /// Read the token file, if one was given, for every request that follows.
    pub(crate) fn use_token(&self) -> Result<(), String> {
        if let Some(path) = &self.token_file {
            let token = std::fs::read_to_string(path)
                .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
            client::set_token(token.trim().to_owned());
        }
        Ok(())
    }
}

/// Fetch `path` and print it as JSON or through `table`.
fn show(args: &ClientArgs, path: &str, table: fn(&serde_json::Value) -> String) -> ExitCode {
    if let Err(e) = args.use_token() {
        return fail(e);
    }
    print_doc(args, client::get_json(&args.admin, path), table)
}

/// Print a fetched document as JSON or through `table`.
fn print_doc(
    args: &ClientArgs,
    doc: Result<serde_json::Value, String>,
    table: fn(&serde_json::Value) -> String,
) -> ExitCode {
    match doc {
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

pub(crate) fn fail(e: String) -> ExitCode {
    eprintln!("hawser: {e}");
    ExitCode::FAILURE
}

fn kv(cmd: KvCommand) -> ExitCode {
    let args = match &cmd {
        KvCommand::Get { client, .. }
        | KvCommand::Op { client, .. }
        | KvCommand::List { client, .. }
        | KvCommand::Watch { client, .. } => client,
    };
    if let Err(e) = args.use_token() {
        return fail(e);
    }
    match cmd {
        KvCommand::Get { key, client: c } => {
            match client::get_json(&c.admin, &client::kv_path(&key)) {
                Ok(v) if c.json => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Ok(v) => {
                    println!("{} = {v}", client::printable(&key));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KvCommand::Op { key, op, client: c } => {
            // Refuse a malformed op here, with the same message the agent would give.
            if let Err(e) = hawser_core::crdt::MapOp::from_json_str(&op) {
                return fail(e.to_string());
            }
            match client::post_json(&c.admin, &client::kv_path(&key), &op) {
                Ok(v) if c.json => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Ok(v) => {
                    println!("{} = {v} (durable on {})", client::printable(&key), c.admin);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KvCommand::List { prefix, client: c } => {
            print_doc(&c, client::kv_list(&c.admin, &prefix), client::kv_table)
        }
        KvCommand::Watch { prefix, client: c } => {
            let path = format!("/v1/kv/watch?prefix={}", client::encode(&prefix));
            let mut ended = None;
            let result = client::watch(&c.admin, &path, |m| {
                if c.json {
                    let mut line = serde_json::json!({ "event": m.event });
                    if let (Some(obj), Some(data)) = (line.as_object_mut(), m.data.as_object()) {
                        obj.extend(data.clone());
                    }
                    println!("{line}");
                } else {
                    match m.event.as_str() {
                        "snapshot" | "change" => {
                            println!("{} = {}", cell(&m.data["key"]), m.data["value"])
                        }
                        "ready" => eprintln!(
                            "-- {} keys under {:?}; watching for changes (Ctrl-C to stop)",
                            m.data["keys"],
                            client::printable(&prefix)
                        ),
                        _ => {}
                    }
                }
                if m.event == "end" {
                    ended = Some(m.data["reason"].as_str().unwrap_or("").to_owned());
                }
                true
            });
            match (result, ended) {
                (Err(e), _) => fail(e),
                (Ok(()), Some(reason)) => fail(format!("the watch ended: {reason}")),
                (Ok(()), None) => fail("the agent closed the watch stream".into()),
            }
        }
    }
}

fn cell(v: &serde_json::Value) -> String {
    client::printable(&v.as_str().map_or_else(|| v.to_string(), str::to_owned))
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Sim(cmd) => sim_cmd::main(cmd),
        #[cfg(not(madsim))]
        Command::Agent(args) => hawser_runtime::agent::main(*args),
        Command::Keygen => match hawser_runtime::config::keygen() {
            Ok(key) => {
                println!("{key}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hawser keygen: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Members(args) => show(&args, "/v1/members", client::members_table),
        Command::Overlay(args) => show(&args, "/v1/overlay", client::overlay_table),
        Command::Route { node, client } => show(
            &client,
            &format!("/v1/routes/{}", client::encode(&node)),
            client::route_table,
        ),
        Command::Kv(cmd) => kv(cmd),
        Command::Dns(cmd) => dns_cmd::main(cmd),
        Command::Vip(cmd) => vip(cmd),
        Command::Network(NetworkCommand::List(c)) => {
            show(&c, "/v1/networks", client::networks_table)
        }
        #[cfg(not(madsim))]
        Command::Wait(args) => wait_cmd::main(args),
        Command::Demo(args) => hawser_runtime::demo::main(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks its argument definitions (unique names, ...) only when a command is
    /// built: build them all here rather than at a user's first run.
    #[test]
    fn the_cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
