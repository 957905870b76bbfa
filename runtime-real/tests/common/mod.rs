//! Agents as child processes on 127.0.0.1, for the integration tests.
//!
//! Every wait has a deadline and fails with what was last seen, so no test can hang; a
//! test's agents are killed when it ends (pass or fail), and each failure message ends
//! with the tail of the agent's log.

#![allow(dead_code)] // each test binary uses its own part of these helpers

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const COOKIE: &str = "test-cookie-of-24-bytes";

/// A loopback port held bound until [`Agent::spawn`] lets go of it, so that no other
/// test's `bind(0)` and no agent's outbound connection can take it in between: a port
/// taken that way made an agent exit with "Address already in use" on a loaded CI machine.
fn reserve_port() -> (u16, TcpListener) {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    (held.local_addr().unwrap().port(), held)
}

pub fn hawser() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hawser"))
}

/// One agent process and where to find it.
pub struct Agent {
    pub name: String,
    pub listen: String,
    pub admin: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub extra: Vec<String>,
    pub join: Vec<String>,
    pub cookie: String,
    /// A lower `ulimit -n` for the process.
    pub nofile: Option<u64>,
    pub child: Option<Child>,
    /// The sockets holding `listen` and `admin` until the first spawn.
    reserved: Vec<TcpListener>,
}

impl Agent {
    /// An agent named `name` keeping its state and log under `root`; not started.
    pub fn new(root: &Path, name: &str) -> Agent {
        let (listen, held_listen) = reserve_port();
        let (admin, held_admin) = reserve_port();
        Agent {
            name: name.into(),
            listen: format!("127.0.0.1:{listen}"),
            admin: format!("127.0.0.1:{admin}"),
            data_dir: root.join(name),
            log: root.join(format!("{name}.log")),
            extra: Vec::new(),
            join: Vec::new(),
            cookie: COOKIE.into(),
            nofile: None,
            child: None,
            reserved: vec![held_listen, held_admin],
        }
    }

    /// Give the agent a `--config` file with `text` in it (kept beside its data).
    pub fn with_config(&mut self, root: &Path, text: &str) {
        let file = root.join(format!("{}.toml", self.name));
        std::fs::write(&file, text).unwrap();
        self.extra
            .extend(["--config".into(), file.to_str().unwrap().into()]);
    }

    /// Open `n` connections to the peer port that say nothing, and wait until the agent
    /// has accepted them all.
    pub fn hold_silent(&self, n: usize) -> Vec<TcpStream> {
        let held: Vec<TcpStream> = (0..n)
            .map(|_| TcpStream::connect(&self.listen).unwrap())
            .collect();
        wait_for("the silent connections to be accepted", 5, || {
            (self.metric("hawser_connections_accepted_total") >= n as f64).then_some(())
        });
        held
    }

    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "agent",
            "--name",
            &self.name,
            "--listen",
            &self.listen,
            "--admin",
            &self.admin,
            "--data-dir",
            self.data_dir.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // An empty cookie: none given (mutual TLS).
        if !self.cookie.is_empty() {
            args.extend(["--cookie".to_string(), self.cookie.clone()]);
        }
        if !self.join.is_empty() {
            args.push("--join".into());
            args.push(self.join.join(","));
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Start the process (its stderr appended to the log) and wait for its admin API (up
    /// to 30 s: on a loaded 2-core machine a debug agent has been seen to need over 10).
    /// An agent that exits first fails the test at once, with its exit status and log.
    pub fn start(&mut self) {
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&self.admin, "/v1/self").is_none_or(|(s, _)| s != 200) {
            if let Some(status) = self.exited() {
                panic!(
                    "{} exited ({status}) before serving its admin API\n--- log of {}:\n{}",
                    self.name,
                    self.name,
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after 30 s waiting for {} to serve its admin API\n--- log of {}:\n{}",
                    self.name,
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start the process without waiting for anything.
    pub fn spawn(&mut self) {
        let mut command = hawser();
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        command.args(self.args());
        self.launch(command, "info,hawser_runtime=debug");
    }

    /// Run `command` as this agent: its ports let go, its stderr appended to the log.
    fn launch(&mut self, mut command: Command, log_filter: &str) {
        self.reserved.clear();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = command
            .env("RUST_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no goodbye, no flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, and the exit status (within 10 s).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                c.kill().unwrap();
                panic!("{} did not exit within 10 s of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Exit status, if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn json(&self, path: &str) -> Value {
        match get(&self.admin, path) {
            Some((200, body)) => serde_json::from_str(&body).unwrap(),
            other => panic!(
                "{} {path}: {other:?}\n--- log of {}:\n{}",
                self.admin,
                self.name,
                self.log_tail()
            ),
        }
    }

    pub fn id(&self) -> String {
        self.json("/v1/self")["id"].as_str().unwrap().to_owned()
    }

    /// Ids in this agent's active view.
    pub fn active(&self) -> Vec<String> {
        ids(&self.json("/v1/overlay")["active"])
    }

    pub fn passive(&self) -> Vec<String> {
        ids(&self.json("/v1/overlay")["passive"])
    }

    /// A Prometheus counter or gauge of this agent.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = get(&self.admin, "/metrics").expect("metrics");
        body.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(' ')?;
                (n == name).then(|| v.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no metric {name}"))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `GET path` on an admin API: status and body, `None` when it cannot be reached.
pub fn get(admin: &str, path: &str) -> Option<(u16, String)> {
    raw_http(
        admin,
        &format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"),
    )
}

/// Send `request` as is; status and body of the answer. An agent that refuses a request
/// before reading all of it closes with bytes unread, which resets the connection: what
/// arrived before the reset is the answer.
pub fn raw_http(admin: &str, request: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(admin).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let _ = s.write_all(request.as_bytes());
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while let Ok(n @ 1..) = s.read(&mut buf) {
        raw.extend_from_slice(&buf[..n]);
    }
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Agent `a` started, and agent `b` started joining it.
pub fn pair(root: &Path) -> (Agent, Agent) {
    let mut a = Agent::new(root, "a");
    a.start();
    let mut b = Agent::new(root, "b");
    b.join = vec![a.listen.clone()];
    b.start();
    (a, b)
}

/// Poll `probe` every 100 ms until it answers, for at most `secs` seconds.
pub fn wait_for<T>(what: &str, secs: u64, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the active views of `agents` form one connected overlay (every agent can
/// reach every other over active-view edges).
pub fn one_overlay(agents: &[&Agent]) -> bool {
    let ids: Vec<String> = agents.iter().map(|a| a.id()).collect();
    let views: Vec<Vec<String>> = agents.iter().map(|a| a.active()).collect();
    let mut seen = vec![false; agents.len()];
    let mut stack = vec![0];
    seen[0] = true;
    while let Some(i) = stack.pop() {
        for peer in &views[i] {
            if let Some(j) = ids.iter().position(|id| id == peer)
                && !seen[j]
            {
                seen[j] = true;
                stack.push(j);
            }
        }
    }
    seen.iter().all(|s| *s)
}

/// `POST path` with `body` on an admin API: status and body, `None` when it cannot be
/// reached.
pub fn post(admin: &str, path: &str, body: &str) -> Option<(u16, String)> {
    raw_http(
        admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The op that adds `n` to the counter field `number`.
pub fn incr(n: u64) -> String {
    format!(r#"{{"update":[{{"field":"number","type":"counter","op":{{"increment":{n}}}}}]}}"#)
}

/// Wait (at most `secs`) until every one of `agents` reads `expected` for `key`.
pub fn wait_for_value(agents: &[&Agent], key: &str, expected: &Value, secs: u64) {
    let path = format!("/v1/kv/{key}");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = agents.iter().map(|a| a.json(&path)).collect::<Vec<_>>();
        if last.iter().all(|v| v == expected) {
            return;
        }
        if Instant::now() > deadline {
            let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
            panic!(
                "timed out after {secs} s waiting for {names:?} to read {key} = {expected}; they read {last:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A peer that holds the cookie and speaks the link protocol through hawser-core's own
/// `Node`, but sends whatever bytes a test gives it: what an authenticated but buggy or
/// hostile node could do to an agent.
pub struct RoguePeer {
    stream: TcpStream,
    node: hawser_core::Node<Quiet>,
    conn: hawser_core::ConnId,
    pub agent: hawser_core::NodeId,
    started: Instant,
}

/// A protocol that does nothing: the rogue only sends what the test tells it to.
pub struct Quiet;

impl hawser_core::Protocol for Quiet {
    type Timer = ();
    type Event = ();
    fn start(&mut self, _: &mut hawser_core::Ctx<'_, (), ()>) {}
    fn message(
        &mut self,
        _: hawser_core::NodeId,
        _: &[u8],
        _: &mut hawser_core::Ctx<'_, (), ()>,
    ) -> Result<(), hawser_core::wire::WireError> {
        Ok(())
    }
    fn timer(&mut self, _: (), _: &mut hawser_core::Ctx<'_, (), ()>) {}
}

impl RoguePeer {
    /// Link to `agent` as a node named `name` (listening nowhere), within 10 s.
    pub fn link(agent: &Agent, name: &str) -> RoguePeer {
        use hawser_core::{Addr, Cookie, Identity, LinkConfig, Name, Node, NodeId, Transmit};
        let identity = Identity {
            id: NodeId::from_name(name),
            name: Name::new(name).unwrap(),
            addr: Addr::new("127.0.0.1:9").unwrap(),
            cookie: Cookie::new(agent.cookie.as_bytes()).unwrap(),
        };
        let mut node = Node::new(LinkConfig::default(), identity, 1, Quiet).unwrap();
        let started = Instant::now();
        node.handle_start(hawser_core::Instant::ZERO);
        node.command(hawser_core::Instant::ZERO, |_, ctx| {
            ctx.connect(Addr::new(agent.listen.as_str()).unwrap(), None)
        });
        let Some(Transmit::Connect { conn, .. }) = node.poll_transmit() else {
            panic!("the rogue dials")
        };
        let stream = TcpStream::connect(&agent.listen).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rogue = RoguePeer {
            stream,
            node,
            conn,
            agent: NodeId(0),
            started,
        };
        let now = rogue.now();
        rogue.node.handle_connected(now, conn);
        loop {
            rogue.flush();
            while let Some(e) = rogue.node.poll_event() {
                if let hawser_core::Event::Link(hawser_core::LinkEvent::Up { peer, .. }) = e {
                    rogue.agent = peer;
                    return rogue;
                }
            }
            rogue.read_frame().expect("the agent answers the handshake");
        }
    }

    fn now(&self) -> hawser_core::Instant {
        hawser_core::Instant::from_nanos(self.started.elapsed().as_nanos() as u64)
    }

    /// Write what the node queued.
    fn flush(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            if let hawser_core::Transmit::Send { frame, .. } = t {
                let _ = self.stream.write_all(&frame);
            }
        }
    }

    /// The next frame from the agent, or `None` once it closed the connection.
    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut frame = vec![0u8; hawser_core::wire::HEADER_LEN];
        self.stream.read_exact(&mut frame).ok()?;
        let (_, len) = hawser_core::wire::decode_header(&frame, usize::MAX).ok()?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).ok()?;
        frame.extend_from_slice(&body);
        let now = self.now();
        self.node.handle_frame(now, self.conn, &frame);
        Some(frame)
    }

    /// Send `body` as one sealed message (its first byte is the stack's channel).
    pub fn send(&mut self, body: &[u8]) {
        let (now, agent) = (self.now(), self.agent);
        self.node
            .command(now, |_, ctx| ctx.send(agent, body))
            .expect("linked");
        self.flush();
    }

    /// Read (and drop) what the agent sends until it closes the link, within 10 s.
    /// Returns whether it did.
    pub fn closed_by_agent(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.read_frame().is_none() {
                return true;
            }
        }
        false
    }
}

// ---- Agents in network namespaces (the dataplane's tests) ----

/// Run `f` in namespace `ns` and wait for it.
pub fn at<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    hawser_tests::netns::in_netns(ns, f).join().unwrap()
}

/// `GET path` on the admin API at `admin` inside namespace `ns`, as JSON (200 only).
pub fn json_in(ns: &str, admin: &str, path: &str) -> Value {
    let (admin, p) = (admin.to_owned(), path.to_owned());
    match at(ns, move || get(&admin, &p)) {
        Some((200, body)) => serde_json::from_str(&body).unwrap(),
        other => panic!("{ns} {path}: {other:?}"),
    }
}

/// A Prometheus counter or gauge of the agent at `admin` inside namespace `ns`.
pub fn metric_in(ns: &str, admin: &str, name: &str) -> f64 {
    let admin = admin.to_owned();
    let (_, body) = at(ns, move || get(&admin, "/metrics")).expect("metrics");
    body.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no metric {name}"))
}

impl Agent {
    /// Start the process inside namespace `ns` (`ip netns exec`), without waiting.
    pub fn spawn_in(&mut self, ns: &str) {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_hawser")])
            .args(self.args());
        self.launch(command, "info");
    }
}
