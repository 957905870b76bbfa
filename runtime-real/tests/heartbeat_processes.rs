//! The heartbeat example (`examples/heartbeat_real`, the simulator's protocol file) as three
//! real processes on loopback: heartbeats flow; one is killed with SIGKILL and the
//! others report it silent; it is restarted on the same data directory and comes back
//! with a higher incarnation (read back from its store); SIGTERM stops all three
//! gracefully.
//!
//! The processes are this test binary itself, started again in node mode (the
//! `HEARTBEAT_NODE` variable set): it compiles in the example's node program
//! (`examples/heartbeat_real/node.rs`), so what runs is the example's code, always built
//! fresh with the test — no stale example binary. Hence `harness = false`.

#[path = "../examples/heartbeat_real/node.rs"]
mod node;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hawser_core::NodeId;

/// Set in a child: run the node program instead of the test.
const NODE_ENV: &str = "HEARTBEAT_NODE";

fn main() -> ExitCode {
    if std::env::var_os(NODE_ENV).is_some() {
        return node::main();
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut cluster = Cluster::start(dir.path());
    cluster.run_scenario();
    println!("heartbeat_processes: ok");
    ExitCode::SUCCESS
}

const N: usize = 3;

/// A stdout line of node `i`, or the end of its output.
type Line = (usize, Option<String>);

struct Cluster<'a> {
    dir: &'a Path,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    lines: mpsc::Receiver<Line>,
    sender: mpsc::Sender<Line>,
    /// Every line seen, for the failure message.
    seen: Vec<String>,
    /// Lines seen that no expectation has matched yet.
    unmatched: Vec<(usize, String)>,
}

fn name(i: usize) -> String {
    format!("n{i}")
}

fn id(i: usize) -> NodeId {
    NodeId::from_name(&name(i))
}

/// Three free loopback ports (held together while chosen, so they differ).
fn free_ports() -> Vec<u16> {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("loopback must be available"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

impl<'a> Cluster<'a> {
    fn start(dir: &'a Path) -> Cluster<'a> {
        let (sender, lines) = mpsc::channel();
        let mut cluster = Cluster {
            dir,
            ports: free_ports(),
            children: (0..N).map(|_| None).collect(),
            lines,
            sender,
            seen: Vec::new(),
            unmatched: Vec::new(),
        };
        for i in 0..N {
            cluster.spawn(i);
        }
        cluster
    }

    /// Start node `i` (again) on its port and data directory, its stdout read line by
    /// line into the channel, its stderr (the driver's log) appended to `n<i>.log`.
    fn spawn(&mut self, i: usize) {
        let addr = |j: usize| format!("127.0.0.1:{}", self.ports[j]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", name(i))))
            .expect("a log file");
        let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
        cmd.env(NODE_ENV, "1")
            .env("RUST_LOG", "info")
            .args(["--name", &name(i), "--listen", &addr(i), "--data-dir"])
            .arg(self.dir.join(name(i)))
            .stdout(Stdio::piped())
            .stderr(log);
        for j in (0..N).filter(|&j| j != i) {
            cmd.args(["--peer", &addr(j)]);
        }
        let mut child = cmd.spawn().expect("cannot start a heartbeat node process");
        let stdout = child.stdout.take().expect("piped");
        let sender = self.sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send((i, Some(line))).is_err() {
                    return;
                }
            }
            let _ = sender.send((i, None));
        });
        self.children[i] = Some(child);
    }

    /// Wait up to `limit` until every one of `wanted` (node, line) was printed, in any
    /// order; panic (with every line and log seen) if not. Lines printed earlier and not
    /// yet matched count too: nodes race ahead of the phase the test is in.
    fn expect_all(&mut self, what: &str, limit: Duration, mut wanted: Vec<(usize, String)>) {
        self.unmatched
            .retain(|seen| match wanted.iter().position(|w| w == seen) {
                Some(k) => {
                    wanted.remove(k);
                    false
                }
                None => true,
            });
        let deadline = Instant::now() + limit;
        while !wanted.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((i, Some(line))) => {
                    self.seen.push(format!("n{i}: {line}"));
                    let seen = (i, line);
                    match wanted.iter().position(|w| *w == seen) {
                        Some(k) => drop(wanted.remove(k)),
                        None => self.unmatched.push(seen),
                    }
                }
                Ok((i, None)) => self.seen.push(format!("n{i}: <end of output>")),
                Err(_) => self.fail(&format!(
                    "{what}: not within {limit:?} (missing {wanted:?})"
                )),
            }
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let mut logs = String::new();
        for i in 0..N {
            let path = self.dir.join(format!("{}.log", name(i)));
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            logs += &format!("\n--- n{i}'s log (last lines, newest first):\n");
            logs += &tail.join("\n");
        }
        self.kill_all();
        panic!("{why}\nlines seen:\n{}\n{logs}", self.seen.join("\n"));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            // `Child::kill` is SIGKILL on Unix: no graceful anything.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill_all(&mut self) {
        (0..N).for_each(|i| self.kill(i));
    }

    /// SIGTERM every node and check each exits 0 (a graceful shutdown) within `limit`.
    fn terminate_all(&mut self, limit: Duration) {
        for child in self.children.iter().flatten() {
            let pid = libc::pid_t::try_from(child.id()).expect("a pid");
            // SAFETY: signalling a child we started and have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + limit;
        for i in 0..N {
            let Some(mut child) = self.children[i].take() else {
                continue;
            };
            let status = loop {
                match child.try_wait().expect("waitpid") {
                    Some(status) => break status,
                    None if Instant::now() > deadline => {
                        self.children[i] = Some(child);
                        self.fail(&format!("n{i} did not stop within {limit:?} of SIGTERM"));
                    }
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
            };
            if !status.success() {
                self.fail(&format!("n{i} exited with {status} after SIGTERM"));
            }
        }
    }

    fn run_scenario(&mut self) {
        let everyone = Duration::from_secs(20);
        let started: Vec<(usize, String)> = (0..N)
            .map(|i| {
                let line = format!(
                    "started name={} id={} incarnation=1 listen=127.0.0.1:{}",
                    name(i),
                    id(i),
                    self.ports[i]
                );
                (i, line)
            })
            .collect();
        self.expect_all("every node starts at incarnation 1", everyone, started);
        let alive =
            |i: usize, j: usize, inc: u64| (i, format!("alive peer={} incarnation={inc}", id(j)));
        let pairs: Vec<(usize, String)> = (0..N)
            .flat_map(|i| (0..N).filter(move |&j| j != i).map(move |j| alive(i, j, 1)))
            .collect();
        let t = Instant::now();
        self.expect_all("heartbeats flow between every pair", everyone, pairs);
        println!("heartbeats between every pair after {:?}", t.elapsed());

        // SIGKILL n2: its sockets are reset by the kernel; n0 and n1 see it silent.
        self.kill(2);
        let t = Instant::now();
        let silent = format!("silent peer={}", id(2));
        self.expect_all(
            "n0 and n1 report the killed n2 silent",
            Duration::from_secs(10),
            vec![(0, silent.clone()), (1, silent)],
        );
        println!("n2 killed: reported silent after {:?}", t.elapsed());

        // Restart n2 on the same data directory: its incarnation comes from the store.
        self.spawn(2);
        let t = Instant::now();
        let restarted = format!("restarted peer={} incarnation=2", id(2));
        self.expect_all(
            "n2 restarts at incarnation 2 and n0, n1 see it restarted",
            everyone,
            vec![
                (
                    2,
                    format!(
                        "started name=n2 id={} incarnation=2 listen=127.0.0.1:{}",
                        id(2),
                        self.ports[2]
                    ),
                ),
                (0, restarted.clone()),
                (1, restarted),
                alive(2, 0, 1),
                alive(2, 1, 1),
            ],
        );
        println!(
            "n2 restarted: seen at incarnation 2 after {:?}",
            t.elapsed()
        );

        self.terminate_all(Duration::from_secs(15));
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        self.kill_all();
    }
}
