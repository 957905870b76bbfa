//! Real `hawser agent` processes on 127.0.0.1 (issue 6): how long N agents take to form
//! one overlay, what an idle agent costs (CPU, RSS), KV op latency and throughput on one
//! node (every answer waits for the op's batch to be synced to disk, so concurrency shows
//! the batching), how long the load takes to reach every agent, and how long until every
//! survivor knows of a kill -9.
//!
//! `cargo bench -p hawser-runtime --bench loopback -- --agents 10 [--json]`
//!
//! Figures: docs/benchmarks.md, "Real agents on loopback". Progress goes to stderr, the
//! report to stdout. Every wait has a deadline; on a timeout the harness prints what it
//! last saw and the tails of the agents' logs, then panics. Agents are killed when the
//! harness exits, panic included (Ctrl-C reaches them through the process group).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use hawser_runtime::client;
use serde::Serialize;

/// How often a wait asks the agents again.
const POLL: Duration = Duration::from_millis(50);
/// Quiet time after the overlay forms, before idle CPU is measured: the views keep
/// settling (shuffles, repairs) for a few seconds after everyone is reachable.
const SETTLE: Duration = Duration::from_secs(10);
/// Deadline for the overlay to form, for the load to reach everyone, for a kill to be
/// known by all.
const DEADLINE: Duration = Duration::from_secs(120);
/// How long the agents get to exit after SIGTERM before they are killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// Agents given as contacts to every agent.
const CONTACTS: usize = 3;
const COOKIE: &str = "bench-cookie-of-24-bytes";
/// Sequential ops made before the timed ones (the first op creates the key).
const WARM_UP_OPS: usize = 10;
/// Prefix of the keys the throughput clients write.
const LOAD_PREFIX: &str = "bench-load-";

#[derive(Parser)]
#[command(about = "hawser agents on loopback: overlay formation, idle cost, kv, kill -9")]
struct Args {
    /// Agents to start.
    #[arg(long, default_value_t = 10)]
    agents: usize,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Seconds over which idle CPU is measured.
    #[arg(long, default_value_t = 20)]
    cpu_secs: u64,
    /// Sequential ops timed for latency.
    #[arg(long, default_value_t = 500)]
    latency_ops: usize,
    /// Concurrent client threads for throughput.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds of concurrent load.
    #[arg(long, default_value_t = 5)]
    load_secs: u64,
    /// `cargo bench` passes `--bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One agent process. Killed (SIGKILL) when dropped, so none outlives the harness.
struct Agent {
    name: String,
    admin: String,
    log: PathBuf,
    child: Child,
}

impl Agent {
    /// Start `hawser agent` with its data dir and log under `root`; does not wait.
    fn spawn(root: &Path, name: &str, listen: &str, admin: &str, join: &str) -> Agent {
        let data_dir = root.join(name);
        let log_path = root.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("creating the agent's log");
        let child = Command::new(env!("CARGO_BIN_EXE_hawser"))
            .args([
                "agent", "--name", name, "--listen", listen, "--admin", admin,
            ])
            .args(["--join", join, "--cookie", COOKIE, "--data-dir"])
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning hawser agent");
        Agent {
            name: name.into(),
            admin: admin.into(),
            log: log_path,
            child,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics, with the log tail, if the process has exited: a dead agent would only
    /// show up later as a confusing timeout.
    fn check_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("waiting on an agent") {
            panic!(
                "{} exited unexpectedly ({status})\n{}",
                self.name,
                self.log_tail(30)
            );
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("--- last {lines} log lines of {}:\n{tail}", self.name)
    }

    /// Names of the members this agent lists as reachable (`None` while its API is not
    /// answering).
    fn reachable(&self) -> Option<Vec<String>> {
        let doc = client::get_json(&self.admin, "/v1/members").ok()?;
        Some(
            doc["members"]
                .as_array()?
                .iter()
                .filter(|m| m["reachable"] == true)
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// Prometheus samples without labels (counters, gauges, histogram sums and counts).
    fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, body) = client::get(&self.admin, "/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{} GET /metrics: {body}", self.name);
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.contains('{'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agents and their temporary directory (declared last: removed after they die).
struct Cluster {
    agents: Vec<Agent>,
    _root: tempfile::TempDir,
}

/// `n` distinct free loopback ports: every listener is held until all are chosen, so the
/// kernel cannot hand out one port twice.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Start `n` agents back to back, every one given the first [`CONTACTS`] as contacts.
fn start(n: usize) -> Cluster {
    let root = tempfile::tempdir().expect("temporary directory");
    let ports = free_ports(2 * n);
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let join: Vec<String> = ports[..2 * n.min(CONTACTS)]
        .iter()
        .step_by(2)
        .map(|p| addr(*p))
        .collect();
    let join = join.join(",");
    let agents = ports
        .chunks(2)
        .enumerate()
        .map(|(i, p)| {
            let name = format!("n{i}");
            Agent::spawn(root.path(), &name, &addr(p[0]), &addr(p[1]), &join)
        })
        .collect();
    Cluster {
        agents,
        _root: root,
    }
}

/// Poll every agent until one round finds every agent listing all the agents as
/// reachable. Returns (first round in which every admin API answered, that round) as
/// times since `start`.
fn wait_one_overlay(cluster: &mut Cluster, start: Instant) -> (Duration, Duration) {
    let n = cluster.agents.len();
    let mut apis_up = None;
    loop {
        let views: Vec<Option<Vec<String>>> = cluster.agents.iter().map(Agent::reachable).collect();
        if apis_up.is_none() && views.iter().all(Option::is_some) {
            apis_up = Some(start.elapsed());
        }
        if views
            .iter()
            .all(|v| v.as_ref().is_some_and(|v| v.len() == n))
        {
            return (apis_up.unwrap(), start.elapsed());
        }
        if start.elapsed() > DEADLINE {
            let seen: Vec<String> = cluster
                .agents
                .iter()
                .zip(&views)
                .map(|(a, v)| match v {
                    Some(v) => format!("{}: {}", a.name, v.len()),
                    None => format!("{}: no answer", a.name),
                })
                .collect();
            let worst = cluster
                .agents
                .iter()
                .zip(&views)
                .filter(|(_, v)| v.as_ref().is_none_or(|v| v.len() < n))
                .take(3)
                .map(|(a, _)| a.log_tail(30))
                .collect::<Vec<_>>();
            panic!(
                "no single overlay within {DEADLINE:?}; reachable members seen per agent: \
                 {seen:?}\n{}",
                worst.join("\n")
            );
        }
        cluster.agents.iter_mut().for_each(Agent::check_alive);
        std::thread::sleep(POLL);
    }
}

/// utime + stime of a process, in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Resident set size of a process, in KiB (`VmRSS` in `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Median, largest and sum of per-agent figures.
#[derive(Serialize)]
struct Spread {
    median: f64,
    max: f64,
    total: f64,
}

fn spread(mut v: Vec<f64>) -> Spread {
    v.sort_by(f64::total_cmp);
    Spread {
        median: v[v.len() / 2],
        max: *v.last().unwrap(),
        total: v.iter().sum(),
    }
}

/// CPU time of every agent so far (clock ticks), and when it was read.
struct CpuSample {
    ticks: Vec<u64>,
    at: Instant,
}

fn cpu_sample(agents: &[Agent]) -> CpuSample {
    CpuSample {
        ticks: agents.iter().map(|a| cpu_ticks(a.pid())).collect(),
        at: Instant::now(),
    }
}

/// Each agent's CPU between two samples, in percent of one core (the resolution is one
/// clock tick, 10 ms on Linux: 0.05% over 20 s).
fn cpu_percent(before: &CpuSample, after: &CpuSample) -> Vec<f64> {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let secs = (after.at - before.at).as_secs_f64();
    let ticks = before.ticks.iter().zip(&after.ticks);
    ticks
        .map(|(b, a)| (a - b) as f64 / tick / secs * 100.0)
        .collect()
}

/// Each agent's CPU over a window where the harness asks them nothing (percent of one
/// core), and its RSS at the end (MiB).
fn idle_cost(cluster: &Cluster, window: Duration) -> (Spread, Spread) {
    let before = cpu_sample(&cluster.agents);
    std::thread::sleep(window);
    let cpu = cpu_percent(&before, &cpu_sample(&cluster.agents));
    let rss = cluster
        .agents
        .iter()
        .map(|a| rss_kib(a.pid()) as f64 / 1024.0)
        .collect();
    (spread(cpu), spread(rss))
}

/// One KV phase (ops on one agent): what the clients saw, what that agent's store did,
/// and what it cost the other agents.
#[derive(Serialize)]
struct KvPhase {
    clients: usize,
    acked: usize,
    /// Ops answered with an error (503 busy, 504 not durable in time, ...).
    failed: usize,
    first_error: Option<String>,
    secs: f64,
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Store batches committed and synced by the agent during the phase.
    syncs: f64,
    sync_mean_ms: f64,
    ops_per_sync: f64,
    /// Store batches the other agents synced meanwhile (merging the disseminated ops):
    /// they share the disk and the cores.
    replica_syncs: f64,
    /// CPU of all agents together over the phase, in percent of one core.
    agents_cpu_percent: f64,
}

/// What each client thread saw: round trips of acknowledged ops, errors.
#[derive(Default)]
struct ClientLog {
    latencies: Vec<Duration>,
    failed: usize,
    first_error: Option<String>,
}

/// The op every client sends: add 1 to a counter.
const INCREMENT: &str = r#"{"update":[{"field":"number","type":"counter","op":{"increment":1}}]}"#;

/// POST an increment to `key`, timing the round trip (a new connection each time, as
/// `hawser kv op` makes).
fn timed_op(admin: &str, key: &str, log: &mut ClientLog) {
    let started = Instant::now();
    match client::post_json(admin, &client::kv_path(key), INCREMENT) {
        Ok(_) => log.latencies.push(started.elapsed()),
        Err(e) => {
            log.failed += 1;
            log.first_error.get_or_insert(e);
        }
    }
}

/// The value at quantile `q` (nearest rank) of sorted `v`, in ms.
fn quantile_ms(v: &[Duration], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
}

/// Run `clients` threads of `work` (ops on `agents[0]`), and put what they saw next to
/// that agent's store metrics (syncs, their time, its ops), the other agents' syncs and
/// everyone's CPU over the same span. Also returns when the last client finished.
fn kv_phase(
    agents: &[Agent],
    clients: usize,
    work: impl Fn(usize) -> ClientLog + Sync,
) -> (KvPhase, Instant) {
    let metrics_before: Vec<_> = agents.iter().map(Agent::metrics).collect();
    let cpu_before = cpu_sample(agents);
    let logs: Vec<ClientLog> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let work = &work;
                s.spawn(move || work(i))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let cpu_after = cpu_sample(agents);
    let secs = (cpu_after.at - cpu_before.at).as_secs_f64();
    let metrics_after: Vec<_> = agents.iter().map(Agent::metrics).collect();
    let (before, after) = (&metrics_before[0], &metrics_after[0]);
    let delta = |name: &str| after[name] - before[name];
    let sync_count = "hawser_store_sync_seconds_count";
    let replica_syncs = (metrics_before.iter().zip(&metrics_after))
        .skip(1)
        .map(|(b, a)| a[sync_count] - b[sync_count])
        .sum();
    let mut latencies: Vec<Duration> = logs.iter().flat_map(|l| l.latencies.clone()).collect();
    latencies.sort();
    assert!(
        !latencies.is_empty(),
        "no op acknowledged: {:?}",
        logs[0].first_error
    );
    let syncs = delta(sync_count);
    let phase = KvPhase {
        clients,
        acked: latencies.len(),
        failed: logs.iter().map(|l| l.failed).sum(),
        first_error: logs.into_iter().find_map(|l| l.first_error),
        secs,
        ops_per_s: latencies.len() as f64 / secs,
        p50_ms: quantile_ms(&latencies, 0.5),
        p99_ms: quantile_ms(&latencies, 0.99),
        syncs,
        sync_mean_ms: delta("hawser_store_sync_seconds_sum") / syncs * 1e3,
        ops_per_sync: delta("hawser_kv_ops_total") / syncs,
        replica_syncs,
        agents_cpu_percent: cpu_percent(&cpu_before, &cpu_after).iter().sum(),
    };
    (phase, cpu_after.at)
}

/// `ops` sequential increments of one key, after a few untimed ones.
fn kv_latency(agents: &[Agent], ops: usize) -> KvPhase {
    let agent = &agents[0];
    let mut warm_up = ClientLog::default();
    (0..WARM_UP_OPS).for_each(|_| timed_op(&agent.admin, "bench-latency", &mut warm_up));
    assert_eq!(
        warm_up.failed, 0,
        "warm-up op failed: {:?}",
        warm_up.first_error
    );
    let (phase, _) = kv_phase(agents, 1, |_| {
        let mut log = ClientLog::default();
        (0..ops).for_each(|_| timed_op(&agent.admin, "bench-latency", &mut log));
        log
    });
    phase
}

/// `clients` threads, each incrementing its own key back to back for `secs`; also when
/// the last of them finished.
fn kv_throughput(agents: &[Agent], clients: usize, secs: u64) -> (KvPhase, Instant) {
    let agent = &agents[0];
    let stop = Instant::now() + Duration::from_secs(secs);
    kv_phase(agents, clients, |i| {
        let key = format!("{LOAD_PREFIX}{i}");
        let mut log = ClientLog::default();
        while Instant::now() < stop {
            timed_op(&agent.admin, &key, &mut log);
        }
        log
    })
}

/// Wait until every agent holds the same values under [`LOAD_PREFIX`] as the agent the
/// load went to: time since `since` (the first check comes after the metrics are read, a
/// few tens of ms). This is also the quiet point before the kill.
fn wait_load_everywhere(cluster: &mut Cluster, since: Instant) -> Duration {
    let path = format!("/v1/kv?prefix={LOAD_PREFIX}");
    let want = client::get_json(&cluster.agents[0].admin, &path).expect("listing the load keys");
    loop {
        let behind: Vec<&str> = cluster
            .agents
            .iter()
            .filter(|a| client::get_json(&a.admin, &path).ok().as_ref() != Some(&want))
            .map(|a| a.name.as_str())
            .collect();
        if behind.is_empty() {
            return since.elapsed();
        }
        if since.elapsed() > DEADLINE {
            panic!("the load did not reach {behind:?} within {DEADLINE:?}; wanted {want}");
        }
        cluster.agents.iter_mut().for_each(Agent::check_alive);
        std::thread::sleep(POLL);
    }
}

/// When the survivors knew of the kill: first, median and last observer.
#[derive(Serialize)]
struct KillDetection {
    victim: String,
    observers: usize,
    first_s: f64,
    median_s: f64,
    all_s: f64,
}

/// kill -9 the last agent (not a contact) and poll the others until each lists it as
/// unreachable (or not at all). An agent is asked until it first does so: a killed
/// process does not come back, so what it knows then it keeps knowing.
fn kill_and_detect(cluster: &mut Cluster) -> KillDetection {
    let mut victim = cluster.agents.pop().expect("at least one agent");
    victim.child.kill().expect("kill -9");
    let killed = Instant::now();
    victim.child.wait().expect("reaping the killed agent");
    let mut pending: Vec<usize> = (0..cluster.agents.len()).collect();
    let mut noticed = Vec::new();
    while !pending.is_empty() {
        pending.retain(|&i| {
            let knows = cluster.agents[i]
                .reachable()
                .is_some_and(|r| !r.contains(&victim.name));
            if knows {
                noticed.push(killed.elapsed().as_secs_f64());
            }
            !knows
        });
        if killed.elapsed() > DEADLINE {
            let names: Vec<&str> = pending
                .iter()
                .map(|&i| cluster.agents[i].name.as_str())
                .collect();
            panic!(
                "{names:?} still list {} as reachable {DEADLINE:?} after its kill -9\n{}",
                victim.name,
                cluster.agents[pending[0]].log_tail(30)
            );
        }
        cluster.agents.iter_mut().for_each(Agent::check_alive);
        std::thread::sleep(POLL);
    }
    // Pushed in the order they were seen.
    KillDetection {
        victim: victim.name.clone(),
        observers: noticed.len(),
        first_s: noticed[0],
        median_s: noticed[noticed.len() / 2],
        all_s: *noticed.last().unwrap(),
    }
}

/// SIGTERM every agent and wait for all (killing the stragglers after [`EXIT_GRACE`]):
/// the number that exited with status 0.
fn stop(cluster: Cluster) -> usize {
    for a in &cluster.agents {
        unsafe { libc::kill(a.pid() as i32, libc::SIGTERM) };
    }
    let deadline = Instant::now() + EXIT_GRACE;
    let mut clean = 0;
    for mut a in cluster.agents {
        loop {
            match a.child.try_wait().expect("waiting on an agent") {
                Some(status) if status.success() => clean += 1,
                Some(status) => eprintln!("{} exited with {status}\n{}", a.name, a.log_tail(20)),
                None if Instant::now() > deadline => {
                    eprintln!("{} did not exit within {EXIT_GRACE:?} of SIGTERM", a.name);
                }
                None => {
                    std::thread::sleep(POLL);
                    continue;
                }
            }
            break;
        }
    }
    clean
}

#[derive(Serialize)]
struct Report {
    agents: usize,
    cores: usize,
    apis_up_s: f64,
    overlay_formed_s: f64,
    idle_cpu_secs: u64,
    cpu_percent: Spread,
    rss_mib: Spread,
    kv_latency: KvPhase,
    kv_throughput: KvPhase,
    load_everywhere_s: f64,
    kill: KillDetection,
    clean_exits: usize,
}

impl Report {
    /// The report as aligned lines for people.
    fn table(&self) -> String {
        let mut rows = vec![
            (
                "admin APIs all answering".to_owned(),
                format!("{:.2} s after the first spawn", self.apis_up_s),
            ),
            (
                "one overlay, all know all".to_owned(),
                format!("{:.2} s after the first spawn", self.overlay_formed_s),
            ),
            (
                "idle CPU per agent".to_owned(),
                format!(
                    "median {:.2}%, max {:.2}% of one core (all agents: {:.1}%; {} s window)",
                    self.cpu_percent.median,
                    self.cpu_percent.max,
                    self.cpu_percent.total,
                    self.idle_cpu_secs
                ),
            ),
            (
                "RSS per agent".to_owned(),
                format!(
                    "median {:.1} MiB, max {:.1} MiB (all agents: {:.0} MiB)",
                    self.rss_mib.median, self.rss_mib.max, self.rss_mib.total
                ),
            ),
        ];
        rows.extend(kv_rows("kv ops, 1 client, sequential", &self.kv_latency));
        let clients = format!("kv ops, {} clients", self.kv_throughput.clients);
        rows.extend(kv_rows(&clients, &self.kv_throughput));
        rows.extend([
            (
                "load held by every agent".to_owned(),
                format!("{:.2} s after the last ack", self.load_everywhere_s),
            ),
            (
                format!("kill -9 of {}", self.kill.victim),
                format!(
                    "known to all {} others after {:.2} s (first {:.2} s, median {:.2} s)",
                    self.kill.observers, self.kill.all_s, self.kill.first_s, self.kill.median_s
                ),
            ),
            (
                "clean exits on SIGTERM".to_owned(),
                format!("{} of {}", self.clean_exits, self.kill.observers),
            ),
        ]);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap();
        let mut out = format!(
            "{} hawser agents on 127.0.0.1, {} cores\n",
            self.agents, self.cores
        );
        for (k, v) in rows {
            out.push_str(&format!("  {k:<width$}  {v}\n"));
        }
        out
    }
}

/// Two lines for a KV phase: what the clients saw, then what the disks and cores did.
fn kv_rows(label: &str, p: &KvPhase) -> [(String, String); 2] {
    let failed = match &p.first_error {
        Some(e) => format!(", {} failed (first: {e})", p.failed),
        None => String::new(),
    };
    [
        (
            label.to_owned(),
            format!(
                "{:.0} ops/s, p50 {:.2} ms, p99 {:.2} ms ({} acked in {:.1} s{failed})",
                p.ops_per_s, p.p50_ms, p.p99_ms, p.acked, p.secs
            ),
        ),
        (
            String::new(),
            format!(
                "its store: {:.0} syncs, mean {:.2} ms, {:.1} ops/sync; other agents: {:.0} \
                 syncs; all agents' CPU: {:.0}% of one core",
                p.syncs, p.sync_mean_ms, p.ops_per_sync, p.replica_syncs, p.agents_cpu_percent
            ),
        ),
    ]
}

fn main() {
    let args = Args::parse();
    assert!(
        args.agents > CONTACTS,
        "--agents must exceed the {CONTACTS} contacts (the killed agent is not a contact)"
    );
    let started = Instant::now();
    let mut cluster = start(args.agents);
    eprintln!("started {} agents in {:?}", args.agents, started.elapsed());
    let (apis_up, formed) = wait_one_overlay(&mut cluster, started);
    eprintln!("one overlay after {formed:?}; settling for {SETTLE:?}");
    std::thread::sleep(SETTLE);
    let window = Duration::from_secs(args.cpu_secs);
    eprintln!("measuring idle CPU over {window:?}");
    let (cpu, rss) = idle_cost(&cluster, window);
    eprintln!("kv: {} sequential ops", args.latency_ops);
    let kv_latency = kv_latency(&cluster.agents, args.latency_ops);
    eprintln!("kv: {} clients for {} s", args.clients, args.load_secs);
    let (kv_throughput, load_ended) = kv_throughput(&cluster.agents, args.clients, args.load_secs);
    let load_everywhere = wait_load_everywhere(&mut cluster, load_ended);
    eprintln!("load held by every agent after {load_everywhere:?}; kill -9");
    let kill = kill_and_detect(&mut cluster);
    let clean_exits = stop(cluster);
    let report = Report {
        agents: args.agents,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        apis_up_s: apis_up.as_secs_f64(),
        overlay_formed_s: formed.as_secs_f64(),
        idle_cpu_secs: args.cpu_secs,
        cpu_percent: cpu,
        rss_mib: rss,
        kv_latency,
        kv_throughput,
        load_everywhere_s: load_everywhere.as_secs_f64(),
        kill,
        clean_exits,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    } else {
        print!("{}", report.table());
    }
}
