//! `hawser demo`: the replicated KV converging through a partition and a broken cookie,
//! on real agents. Three agents run in this process on loopback ports, each with its own
//! driver, TCP transport and redb store in a temporary directory, and the demo runs these
//! steps, reading every node back:
//!
//! 1. n1 and n2 cannot reach each other (a partition: each refuses to dial the other,
//!    through the driver's test/demo-only deny list); both link with n0.
//! 2. +5 on n1 (field `number`, a counter, key `erlang_users`): everyone reads 5.
//! 3. n0's cookie breaks: its links drop and no peer can authenticate with it, so every
//!    node is alone.
//! 4. +3 on n0, +7 on n1, +11 on n2: they read 8, 12 and 16.
//! 5. Mend: n0's cookie back, the partition lifted. Everyone reads 26.
//!
//! Every wait is bounded (`--timeout`); the demo exits 0 only if every read matched, and
//! 1 with what each node read otherwise.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hawser_core::crdt::MapOp;
use hawser_core::{Addr, Cookie, NodeId};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tracing_subscriber::EnvFilter;

use crate::driver::{Driver, DriverConfig, DriverError, DriverHandle, NodeSpec, os_seed};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::transport::{Tcp, Transport};

const KEY: &str = "erlang_users";
const COOKIE: &[u8] = b"hawser-demo-cookie";
const BROKEN: &[u8] = b"not-the-cluster-cookie";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seconds each step may take to reach what it expects before the demo fails.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// One agent of the demo: its driver task and the handle to it.
struct Agent {
    name: String,
    handle: DriverHandle,
    task: JoinHandle<Result<(), DriverError>>,
}

pub fn main(args: DemoArgs) -> ExitCode {
    // The narration goes to stdout; the agents' own logs only when asked for (RUST_LOG).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hawser demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(Duration::from_secs(args.timeout))) {
        Ok(()) => {
            println!("\nEvery read matched. The demo passed.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("\nFAILED: {e}");
            eprintln!("hawser demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn incr(n: u64) -> MapOp {
    let text =
        format!(r#"{{"update":[{{"field":"number","type":"counter","op":{{"increment":{n}}}}}]}}"#);
    MapOp::from_json_str(&text).expect("a valid op")
}

/// What a node holds for the demo's key, as JSON (`{}` before any write).
async fn read(agent: &Agent) -> Result<Value, String> {
    agent
        .handle
        .inspect(|v| {
            v.node
                .protocol()
                .kv()
                .get(KEY)
                .cloned()
                .unwrap_or_default()
                .to_json()
        })
        .await
        .ok_or_else(|| format!("{}'s driver has stopped", agent.name))
}

/// The counter in a value, for the narration (`-` when there is none).
fn number(v: &Value) -> String {
    v.get("number:counter")
        .map_or_else(|| "-".into(), Value::to_string)
}

/// Poll every 50 ms until `done` holds for what `probe` returns for every agent, for at
/// most `timeout`. The error says what each agent showed last.
async fn wait_until<T: std::fmt::Debug>(
    agents: &[&Agent],
    what: &str,
    timeout: Duration,
    probe: impl AsyncProbe<T>,
    done: impl Fn(usize, &T) -> bool,
) -> Result<(Vec<T>, Duration), String> {
    let started = Instant::now();
    loop {
        let mut seen = Vec::with_capacity(agents.len());
        for a in agents {
            seen.push(probe.probe(a).await?);
        }
        if seen.iter().enumerate().all(|(i, v)| done(i, v)) {
            return Ok((seen, started.elapsed()));
        }
        if started.elapsed() > timeout {
            let last: Vec<String> = agents
                .iter()
                .zip(&seen)
                .map(|(a, v)| format!("{} {v:?}", a.name))
                .collect();
            return Err(format!(
                "timed out after {} s waiting for {what}; last seen: {}",
                timeout.as_secs(),
                last.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Something to ask every agent (an async closure over a borrowed agent).
trait AsyncProbe<T> {
    async fn probe(&self, agent: &Agent) -> Result<T, String>;
}

/// The KV value of the demo's key.
struct KvValue;
impl AsyncProbe<Value> for KvValue {
    async fn probe(&self, agent: &Agent) -> Result<Value, String> {
        read(agent).await
    }
}

/// The peers an agent has authenticated links with.
struct Links;
impl AsyncProbe<BTreeSet<NodeId>> for Links {
    async fn probe(&self, agent: &Agent) -> Result<BTreeSet<NodeId>, String> {
        agent
            .handle
            .inspect(|v| v.node.links().peers().collect())
            .await
            .ok_or_else(|| format!("{}'s driver has stopped", agent.name))
    }
}

/// Wait until every agent reads `expected[i]`, and narrate the reads.
async fn expect_reads(
    agents: &[&Agent],
    expected: &[u64],
    timeout: Duration,
) -> Result<(), String> {
    let want: Vec<Value> = expected
        .iter()
        .map(|n| json!({ "number:counter": n }))
        .collect();
    let what = format!(
        "the reads {}",
        agents
            .iter()
            .zip(expected)
            .map(|(a, n)| format!("{} = {n}", a.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (seen, took) = wait_until(agents, &what, timeout, KvValue, |i, v| *v == want[i]).await?;
    for (a, v) in agents.iter().zip(&seen) {
        println!("    {} reads {KEY}.number = {}   ✓", a.name, number(v));
    }
    println!("    (all matched {} ms after the step)", took.as_millis());
    Ok(())
}

async fn op(agent: &Agent, n: u64) -> Result<u64, String> {
    let value = agent
        .handle
        .kv_op(KEY.into(), incr(n))
        .await
        .map_err(|e| format!("+{n} on {}: {e}", agent.name))?;
    let json = value.to_json();
    let total = json["number:counter"].as_u64().unwrap_or(0);
    println!(
        "    {}: +{n} acknowledged (durable on its disk); {} now holds {}",
        agent.name, agent.name, total
    );
    Ok(total)
}

async fn run(timeout: Duration) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("hawser-demo-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let cookie = Cookie::new(COOKIE.to_vec()).expect("a valid cookie");

    // Listen first, so every agent knows every address before any starts.
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let l = Tcp::bind("127.0.0.1:0".parse().expect("an address"))
            .await
            .map_err(|e| format!("cannot listen on a loopback port: {e}"))?;
        let addr = Tcp::local_addr(&l).map_err(|e| format!("listening socket: {e}"))?;
        listeners.push((l, Addr::new(addr.to_string()).expect("a valid address")));
    }
    let addrs: Vec<Addr> = listeners.iter().map(|(_, a)| a.clone()).collect();
    println!(
        "hawser demo: three real agents in this process; the KV converges through a partition and a broken cookie\n"
    );
    println!(
        "Three agents on loopback, each with its own store under {}:",
        dir.path().display()
    );
    for (i, a) in addrs.iter().enumerate() {
        println!("    n{i} listens on {a}");
    }

    println!("\n1. Partition n1 from n2: they refuse to dial each other; both join through n0.");
    let mut agents = Vec::new();
    for (i, (listener, addr)) in listeners.into_iter().enumerate() {
        let name = format!("n{i}");
        let (store, snapshot) =
            Store::open(&dir.path().join(&name), &name).map_err(|e| e.to_string())?;
        let spec = NodeSpec {
            name: name.clone(),
            advertise: addr.clone(),
            cookie: cookie.clone(),
            contacts: vec![addrs[0].clone()],
            membership: Default::default(),
            reap_after: crate::config::DEFAULT_REAP_AFTER,
            max_frame: DriverConfig::default().max_frame,
        };
        let seed = os_seed().map_err(|e| e.to_string())?;
        let node = spec.build(&snapshot, seed).map_err(|e| e.to_string())?;
        let (mut driver, handle) = Driver::<Tcp>::new(
            node,
            Arc::new(store),
            listener,
            DriverConfig::default(),
            Metrics::new(),
        );
        let deny = match i {
            1 => BTreeSet::from([addrs[2].clone()]),
            2 => BTreeSet::from([addrs[1].clone()]),
            _ => BTreeSet::new(),
        };
        driver.set_deny(deny);
        agents.push(Agent {
            name,
            handle,
            task: tokio::spawn(driver.run()),
        });
    }
    let result = script(&agents, &cookie, timeout).await;
    for a in &agents {
        a.handle.shutdown().await;
    }
    for a in agents {
        match a.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("{}: {e}", a.name)),
            Err(e) => return Err(format!("{}'s driver task failed: {e}", a.name)),
        }
    }
    result
}

async fn script(agents: &[Agent], cookie: &Cookie, timeout: Duration) -> Result<(), String> {
    let all: Vec<&Agent> = agents.iter().collect();
    let id = |i: usize| NodeId::from_name(&agents[i].name);
    let (_, took) = wait_until(
        &all,
        "n0 to link with n1 and n2 (and n1, n2 with n0)",
        timeout,
        Links,
        |i, peers| match i {
            0 => peers.contains(&id(1)) && peers.contains(&id(2)),
            _ => peers.contains(&id(0)) && !peers.contains(&id(3 - i)),
        },
    )
    .await?;
    println!(
        "    linked after {} ms: n1 — n0 — n2, and no link between n1 and n2",
        took.as_millis()
    );

    println!("\n2. +5 on n1 ({KEY}, field `number`, a counter). Everyone should read 5.");
    op(&agents[1], 5).await?;
    expect_reads(&all, &[5, 5, 5], timeout).await?;

    println!("\n3. Break n0's cookie: its links drop and nobody can authenticate with it.");
    let broken = Cookie::new(BROKEN.to_vec()).expect("a valid cookie");
    agents[0]
        .handle
        .command(move |node, now| node.handle_cookie(now, broken))
        .await
        .ok_or("n0's driver has stopped")?;
    let (_, took) = wait_until(
        &all,
        "every node to be alone (no links)",
        timeout,
        Links,
        |_, p| p.is_empty(),
    )
    .await?;
    println!("    every node is alone after {} ms", took.as_millis());

    println!("\n4. +3 on n0, +7 on n1, +11 on n2, each on its own. They should read 8, 12, 16.");
    let (a, b, c) = tokio::join!(op(&agents[0], 3), op(&agents[1], 7), op(&agents[2], 11));
    let totals = [a?, b?, c?];
    if totals != [8, 12, 16] {
        return Err(format!(
            "the ops answered {totals:?}, expected [8, 12, 16]: a write crossed the partition"
        ));
    }
    expect_reads(&all, &[8, 12, 16], timeout).await?;

    println!("\n5. Mend: n0's cookie back, the partition lifted. Everyone should read 26.");
    let cookie = cookie.clone();
    agents[0]
        .handle
        .command(move |node, now| node.handle_cookie(now, cookie))
        .await
        .ok_or("n0's driver has stopped")?;
    for a in &agents[1..] {
        a.handle
            .deny(BTreeSet::new())
            .await
            .ok_or_else(|| format!("{}'s driver has stopped", a.name))?;
    }
    expect_reads(&all, &[26, 26, 26], timeout).await?;
    let mut repaired = 0;
    for a in agents {
        repaired += a
            .handle
            .inspect(|v| v.node.protocol().kv().counters().repaired_keys)
            .await
            .unwrap_or(0);
    }
    println!("    anti-entropy repaired {repaired} key copies that the isolated writes had missed");
    Ok(())
}
