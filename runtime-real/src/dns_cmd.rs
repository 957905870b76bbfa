//! `hawser dns ...`: the cluster zone's records through a running agent's admin API, and
//! questions to its DNS server.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Subcommand;
use hawser_runtime::client;
use hawser_runtime::dns::query;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::{ClientArgs, fail};

#[derive(Subcommand)]
pub enum DnsCommand {
    /// Add a record to the cluster zone (every node answers it at once): NAME TYPE VALUE,
    /// TYPE one of A, AAAA, CNAME, SRV (VALUE "PRIORITY WEIGHT PORT TARGET"), TXT.
    /// Names without a trailing dot are relative to the zone.
    Add {
        /// The record's name (relative to the zone unless it ends with a dot).
        name: String,
        /// A, AAAA, CNAME, SRV or TXT.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The record's data (an address, a name, "PRIORITY WEIGHT PORT TARGET", text).
        value: String,
        /// Seconds clients may cache it [default: 60].
        #[arg(long)]
        ttl: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a name's records: all of them, those of TYPE, or the one with VALUE.
    Rm {
        /// The name whose records to remove.
        name: String,
        /// Only the records of this type.
        #[arg(value_name = "TYPE")]
        kind: Option<String>,
        /// Only the record with this data.
        value: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the cluster zone: user records and reachable members.
    Records {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Ask a DNS server (by default the agent's own, found through its admin API).
    Query {
        /// The name to ask for (e.g. www.hawser).
        name: String,
        /// The question's type (A, AAAA, CNAME, SRV, TXT, ...).
        #[arg(value_name = "TYPE", default_value = "A")]
        qtype: String,
        /// The DNS server (ip:port) instead of the agent's.
        #[arg(long)]
        server: Option<SocketAddr>,
        /// Ask over TCP from the start.
        #[arg(long)]
        tcp: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub fn main(cmd: DnsCommand) -> ExitCode {
    let (DnsCommand::Add { client, .. }
    | DnsCommand::Rm { client, .. }
    | DnsCommand::Records { client }
    | DnsCommand::Query { client, .. }) = &cmd;
    if let Err(e) = client.use_token() {
        return fail(e);
    }
    match cmd {
        DnsCommand::Add {
            name,
            kind,
            value,
            ttl,
            client: c,
        } => {
            let mut body = json!({ "name": name, "type": kind, "value": value });
            if let Some(t) = ttl {
                body["ttl"] = json!(t);
            }
            write(&c, "/v1/dns/records", &body)
        }
        DnsCommand::Rm {
            name,
            kind,
            value,
            client: c,
        } => {
            let mut body = json!({ "name": name });
            if let Some(k) = kind {
                body["type"] = json!(k);
            }
            if let Some(v) = value {
                body["value"] = json!(v);
            }
            write(&c, "/v1/dns/records/remove", &body)
        }
        DnsCommand::Records { client: c } => match client::get_json(&c.admin, "/v1/dns/records") {
            Ok(doc) if c.json => {
                println!("{doc}");
                ExitCode::SUCCESS
            }
            Ok(doc) => {
                print!("{}", records_table(&doc["records"]));
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        DnsCommand::Query {
            name,
            qtype,
            server,
            tcp,
            client: c,
        } => {
            let qtype: RecordType = match qtype.to_ascii_uppercase().parse() {
                Ok(t) => t,
                Err(_) => return fail(format!("unknown record type {qtype:?}")),
            };
            let server = match server {
                Some(s) => s,
                None => match agent_dns(&c.admin) {
                    Ok(s) => s,
                    Err(e) => return fail(e),
                },
            };
            match query::ask(server, &name, qtype, tcp) {
                Ok(answer) => {
                    print!("{}", query::render(&answer, server));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

fn write(c: &ClientArgs, path: &str, body: &Value) -> ExitCode {
    match client::post_json(&c.admin, path, &body.to_string()) {
        Ok(doc) if c.json => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Ok(doc) => {
            if let Some(n) = doc["removed"].as_u64() {
                println!("removed {n} record(s); durable on {}", c.admin);
            } else {
                println!("durable on {}", c.admin);
            }
            print!("{}", records_table(&doc["records"]));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Where the agent at `admin` serves DNS.
fn agent_dns(admin: &str) -> Result<SocketAddr, String> {
    let me = client::get_json(admin, "/v1/self")?;
    let Some(addr) = me["dns"].as_str() else {
        return Err(format!(
            "the agent at {admin} serves no DNS (start it with --dns ADDR), or give --server"
        ));
    };
    addr.parse()
        .map_err(|_| format!("the agent reported a DNS address {addr:?} that does not parse"))
}

fn records_table(records: &Value) -> String {
    let rows: Vec<[String; 4]> = records
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    // Names and values were validated on the way in (no control characters).
                    let cell = |k: &str| {
                        r[k].as_str()
                            .map_or_else(|| r[k].to_string(), str::to_owned)
                    };
                    [cell("name"), cell("ttl"), cell("type"), cell("value")]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut widths = [4, 3, 4, 5];
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        format!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    let mut out = line(["NAME", "TTL", "TYPE", "VALUE"]);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
    }
    out
}
