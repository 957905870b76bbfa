//! `hawser`: the node runtime and the simulator front end.

mod dns_cmd;
mod ops_cmd;
mod progress;
mod shrink_cmd;
mod sim_cmd;
mod swarm_cmd;
mod wait_cmd;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hawser_runtime::client;
use hawser_runtime::config::DEFAULT_ADMIN;

/// mimalloc: the simulator allocates for every frame and entry it moves, and glibc's
/// malloc was a tenth of a 1,000-node run (a quarter faster with this).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `hawser agent` turns transparent huge pages off for itself, before mimalloc's first
/// page (its constructor runs at priority 101, this one at 100). mimalloc asks for huge
/// pages on its arenas (`MADV_HUGEPAGE`), so every 2 MiB an idle agent touched was a
/// whole resident huge page: 100 agents on loopback held 6 MiB of anonymous memory each
/// for under 2 MiB of heap. The simulator, whose heap is large and busy, keeps them. A
/// kernel that refuses the call only costs the agent memory.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static AGENT_WITHOUT_HUGE_PAGES: extern "C" fn(libc::c_int, *const *const libc::c_char) =
    agent_without_huge_pages;

#[cfg(target_os = "linux")]
extern "C" fn agent_without_huge_pages(argc: libc::c_int, argv: *const *const libc::c_char) {
    // SAFETY: glibc calls `.init_array` functions with the program's argc and argv, as
    // main gets them: argv holds argc valid C strings.
    let agent = argc > 1 && unsafe { std::ffi::CStr::from_ptr(*argv.add(1)) } == c"agent";
    if agent {
        // SAFETY: PR_SET_THP_DISABLE sets a flag of this process and reads no memory.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[derive(Parser)]
#[command(
    name = "hawser",
    version,
    about = "hawser: a simulation-first cluster control plane"
)]
pub(crate) struct Cli {
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
    /// List the members a running agent knows, sorted by name, with their status (alive,
    /// suspect, failed, left) and how long ago it began. Failed and left members are
    /// reaped after the agent's --reap-after (default 24h).
    Members {
        /// Only members with these statuses, comma-separated (e.g. failed,left).
        #[arg(long, value_name = "STATUS,...")]
        status: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// This node: name, id, addresses, version, uptime, view sizes, member and key
    /// counts, and whether it is isolated.
    Info(ClientArgs),
    /// Make a running agent leave the cluster gracefully and stop, as SIGTERM does: every
    /// node shows it `left`, its neighbours repair at once, its store is flushed.
    Leave(ClientArgs),
    /// Mark a failed member as left on every node, so it is reaped like one that left
    /// (a member that is in fact alive refutes it when it hears of it).
    ForceLeave {
        /// The failed member: its name or its 16-hex-digit id.
        node: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Multicast PAYLOAD under TOPIC to every node reachable from the agent; each logs
    /// its delivery.
    #[command(visible_alias = "multicast")]
    Event {
        /// The topic (not `hawser/kv`, the KV's own).
        topic: String,
        /// The payload, as given (bytes, not parsed).
        payload: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stream a running agent's log lines at LEVEL and above until stopped (its own
    /// stderr keeps the level RUST_LOG gave it).
    Monitor {
        /// error, warn, info, debug or trace.
        #[arg(long, default_value = "info")]
        level: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a shell completion script: `hawser completion bash > /etc/bash_completion.d/hawser`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print this program's version (an agent's is in `hawser info`).
    Version,
    /// Show a running agent's overlay: its active and passive views.
    Overlay(ClientArgs),
    /// Show the shortest path over the overlay from a running agent to NODE (a member's
    /// name or 16-hex-digit id).
    Route {
        /// The member to route to: its name or its 16-hex-digit id.
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
    /// Print a key's value (`{}` for a key never written or deleted).
    Get {
        /// The key (any string; `/` is fine).
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Apply an op to a key; prints the new value once the op is durable.
    #[command(after_long_help = OP_GRAMMAR)]
    Op {
        /// The key (any string; `/` is fine).
        key: String,
        /// The op, as JSON (the grammar is below, in --help).
        op: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List keys (under PREFIX) and their values.
    List {
        /// Only keys that start with this.
        #[arg(default_value = "")]
        prefix: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a key: remove every field this agent holds of it, once durable. An update
    /// made at the same time on a node that had not yet seen the delete survives it (the
    /// key then holds only that update): observed-remove, as for a field.
    Delete {
        /// The key (any string; `/` is fine).
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the keys (under PREFIX), then every change as it happens, until stopped.
    Watch {
        /// Only keys that start with this.
        #[arg(default_value = "")]
        prefix: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `hawser kv op --help`: the op grammar (core's `crdt::json`), with examples.
const OP_GRAMMAR: &str = "\
A key's value is a map of typed fields; an op updates or removes some of them, atomically:
  {\"update\": [FIELD_OP, ...]}                       (at least one)
FIELD_OP is one of
  {\"field\": NAME, \"type\": TYPE, \"op\": OP}         (creates the field if needed)
  {\"remove\": {\"field\": NAME, \"type\": TYPE}}       (the field must exist)
TYPE and its OPs:
  counter   {\"increment\": N}  {\"decrement\": N}       N an integer, 1 to 2^64-1
  set       {\"add\": S}  {\"add_all\": [S, ...]}  {\"remove\": S}  {\"remove_all\": [S, ...]}
  register  {\"assign\": S}  {\"assign\": S, \"timestamp\": T}   the greatest timestamp wins
  flag      \"enable\"  \"disable\"                       enable wins over a concurrent disable
  map       a nested op: {\"update\": [FIELD_OP, ...]}
A field is named by its name and type together: number:counter and number:set are two fields.
Examples:
  hawser kv op erlang_users '{\"update\":[{\"field\":\"number\",\"type\":\"counter\",\"op\":{\"increment\":5}}]}'
  hawser kv op web '{\"update\":[{\"field\":\"hosts\",\"type\":\"set\",\"op\":{\"add\":\"10.0.0.7\"}}]}'
  hawser kv op web '{\"update\":[{\"remove\":{\"field\":\"hosts\",\"type\":\"set\"}}]}'
Remove a whole key with `hawser kv delete KEY`.";

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
        /// The VIP: tcp://ip:port, udp://[ip6]:port or tcp://name:port.
        vip: String,
        /// The backend's ip:port.
        #[arg(long)]
        backend: String,
        /// Its share of new connections (0 drains it).
        #[arg(long, default_value_t = 1)]
        weight: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Withdraw a backend this node published for VIP.
    Rm {
        /// The VIP, as it was published.
        vip: String,
        /// The backend's ip:port.
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
pub(crate) fn show(
    args: &ClientArgs,
    path: &str,
    table: fn(&serde_json::Value) -> String,
) -> ExitCode {
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
        | KvCommand::Delete { client, .. }
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
        KvCommand::Delete { key, client: c } => {
            match client::send_json(&c.admin, "DELETE", &client::kv_path(&key), "") {
                Ok(v) if c.json => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Ok(_) => {
                    println!(
                        "{} deleted (durable on {})",
                        client::printable(&key),
                        c.admin
                    );
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
                            "-- {} under {:?}; watching for changes (Ctrl-C to stop)",
                            client::count(m.data["keys"].as_u64().unwrap_or(0), "key", "keys"),
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
        Command::Members { status, client } => {
            let path = match status {
                Some(s) => format!("/v1/members?status={}", client::encode(&s)),
                None => "/v1/members".into(),
            };
            show(&client, &path, client::members_table)
        }
        Command::Info(c) => ops_cmd::info(&c),
        Command::Leave(c) => ops_cmd::leave(&c),
        Command::ForceLeave { node, client } => ops_cmd::force_leave(&node, &client),
        Command::Event {
            topic,
            payload,
            client,
        } => ops_cmd::event(&topic, &payload, &client),
        Command::Monitor { level, client } => ops_cmd::monitor(&level, &client),
        Command::Completion { shell } => ops_cmd::completion(shell),
        Command::Version => ops_cmd::version(),
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
        Command::Wait(args) => wait_cmd::main(args),
        #[cfg(not(madsim))]
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
