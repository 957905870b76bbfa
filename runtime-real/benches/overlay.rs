//! The overlay network's figures (issue 19), in network namespaces this bench makes
//! (root and iproute2 needed, jq for the container script; addresses from
//! 198.18.0.0/15, 2001:db8::/32 and 100.64.0.0/10 only):
//!
//! - `join`: three `hawser agent --overlay` hosts on a bridge, a container on each; a
//!   fourth host starts, its container is attached as soon as it holds a subnet, and
//!   the clock stops when the first host's container reaches it (repeated with a new
//!   host each round);
//! - `reconcile`: the rtnetlink backend over 1,000 peers: a pass from scratch, a pass
//!   with nothing to do, a pass for one peer joining and one leaving, with the netlink
//!   requests each took;
//! - `datapath`: round-trip time and TCP throughput between two containers over the
//!   VXLAN overlay and between their two hosts over the underlay, in one run (hawser
//!   is not on the data path: the difference is VXLAN's).
//!
//! `cargo bench -p hawser-runtime --bench overlay [-- join|reconcile|datapath]`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hawser_core::NodeId;
use hawser_dataplane::overlay::{Network, Programmed, Reconciler, Rtnl, Slot, desired};
use hawser_tests::netns::{Namespaces, in_netns, require, sh};
use hawser_tests::overlay::{underlay4, underlay6, want, world};

fn at<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    in_netns(ns, f).join().unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---- join ----

const ADMIN: &str = "127.0.0.1:7601";
const NET: &str = "name=ovl,subnet=198.19.0.0/16,prefix=24";

/// An agent with the overlay on, in host namespace `host` at `198.18.0.<n>`.
fn agent(host: &str, n: usize, dir: &Path) -> Child {
    let ip = format!("198.18.0.{n}");
    let log = std::fs::File::create(dir.join(format!("h{n}.log"))).unwrap();
    Command::new("ip")
        .args(["netns", "exec", host, env!("CARGO_BIN_EXE_hawser"), "agent"])
        .args([
            "--name",
            &format!("h{n}"),
            "--listen",
            &format!("{ip}:7600"),
        ])
        .args(["--admin", ADMIN, "--cookie", "bench-cookie-of-24-bytes"])
        .args(["--join", "198.18.0.1:7600,198.18.0.2:7600"])
        .args(["--data-dir", dir.join(format!("h{n}")).to_str().unwrap()])
        .args(["--overlay", NET])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Attach container namespace `ctr` to `host`'s subnet with the example script: its
/// address, or `None` while the host holds no subnet yet.
fn attach(host: &str, ctr: &str) -> Option<IpAddr> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/overlay/attach.sh");
    let out = Command::new(script)
        .args(["ovl", ctr, "1", ADMIN])
        .env("HOST_NETNS", host)
        .env("HAWSER", env!("CARGO_BIN_EXE_hawser"))
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let addr = text.split_whitespace().nth(1)?;
    addr.split('/').next()?.parse().ok()
}

/// A TCP server in `ns` on `ip:7000` that echoes lines (and swallows bulk data).
fn echo_server(ns: &str, ip: IpAddr) {
    let (ready, bound) = std::sync::mpsc::channel();
    in_netns(ns, move || {
        let l = TcpListener::bind(SocketAddr::new(ip, 7000)).unwrap();
        ready.send(()).unwrap();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_nodelay(true);
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = Vec::new();
                while r.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    if s.write_all(&line).is_err() {
                        break;
                    }
                    line.clear();
                }
            });
        }
    });
    bound.recv().unwrap();
}

fn reaches(from: &str, to: IpAddr) -> bool {
    at(from, move || {
        TcpStream::connect_timeout(&SocketAddr::new(to, 7000), Duration::from_millis(200)).is_ok()
    })
}

fn join() {
    const ROUNDS: usize = 5;
    require(&["ip", "jq"]);
    let mut ns = Namespaces::new("bjoin");
    let switch = ns.switch("sw");
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    let mut first = None;
    for n in 1..=3 {
        let host = ns.add(&format!("h{n}"));
        ns.plug(&switch, &host, &format!("198.18.0.{n}/24"));
        children.push(agent(&host, n, dir.path()));
        let ctr = ns.add(&format!("c{n}"));
        let ip = wait(30, || attach(&host, &ctr)).expect("the first hosts hold subnets");
        echo_server(&ctr, ip);
        first.get_or_insert(ctr);
    }
    let probe = first.unwrap();
    let (mut subnet, mut reach) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let n = 10 + round;
        let host = ns.add(&format!("h{n}"));
        let link = ns.plug(&switch, &host, &format!("198.18.0.{n}/24"));
        let ctr = ns.add(&format!("c{n}"));
        let t0 = Instant::now();
        let mut child = agent(&host, n, dir.path());
        let ip = wait(30, || attach(&host, &ctr)).expect("the new host holds a subnet");
        subnet.push(t0.elapsed().as_secs_f64());
        echo_server(&ctr, ip);
        wait(30, || reaches(&probe, ip).then_some(())).expect("h1's container reaches it");
        reach.push(t0.elapsed().as_secs_f64());
        let _ = child.kill();
        let _ = child.wait();
        sh(&["ip", "-n", &host, "link", "set", &link, "down"]);
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    subnet.sort_by(f64::total_cmp);
    reach.sort_by(f64::total_cmp);
    println!(
        "join: a new host's start -> it holds a subnet: median {:.2} s (max {:.2}); \
         -> another host's container reaches its container: median {:.2} s (max {:.2}), \
         {ROUNDS} rounds",
        percentile(&subnet, 0.5),
        subnet[ROUNDS - 1],
        percentile(&reach, 0.5),
        reach[ROUNDS - 1]
    );
}

/// Poll `f` every 20 ms for at most `secs` seconds.
fn wait<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

// ---- reconcile ----

fn reconcile() {
    const PEERS: u64 = 1000;
    require(&["ip"]);
    let mut ns = Namespaces::new("brec");
    let node = ns.add("n");
    // 2,048 slots of /26; IPv6 underlays, so that 1,000 peers fit in documentation space.
    let net: Network = "name=t,subnet=198.18.0.0/15,prefix=26".parse().unwrap();
    let all: Vec<u64> = (1..=PEERS + 2).collect();
    let state = |nodes: &[u64]| -> Programmed {
        let (alloc, entries) = world(&net, nodes, underlay6);
        desired(&net, NodeId(1), underlay6(1), &alloc, &entries).state
    };
    let full = state(&all[..=PEERS as usize]);
    let joined = state(&all);
    assert!(net.share(Slot(PEERS as u32 + 1)).is_some());
    let mut r = Reconciler::new(at(&node, Rtnl::open).expect("rtnetlink"));
    let node2 = node.clone();
    let rows = at(&node2, move || {
        let mut rows = Vec::new();
        for (what, want) in [
            ("from scratch", &full),
            ("nothing to do", &full),
            ("one peer joins", &joined),
            ("one peer leaves", &full),
        ] {
            let t = Instant::now();
            let pass = r.pass(want).expect("a pass");
            rows.push((what, t.elapsed(), pass.changes.len(), pass.messages));
        }
        rows
    });
    println!("reconcile: rtnetlink, {PEERS} peers (each read is 5 dumps, not counted)");
    for (what, took, changes, messages) in rows {
        println!(
            "  {what:16} {:>9.1} ms  {changes:>5} changes  {messages:>5} netlink requests",
            took.as_secs_f64() * 1e3
        );
    }
}

// ---- datapath ----

/// Round trips of 64-byte lines on one connection: (p50, p99) in microseconds.
fn rtt(from: &str, to: IpAddr) -> (f64, f64) {
    at(from, move || {
        let s = TcpStream::connect(SocketAddr::new(to, 7000)).unwrap();
        s.set_nodelay(true).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let line = [b'x'; 63].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        let mut got = Vec::new();
        let mut samples = Vec::new();
        for i in 0..5_200 {
            let t = Instant::now();
            w.write_all(&line).unwrap();
            got.clear();
            r.read_until(b'\n', &mut got).unwrap();
            if i >= 200 {
                samples.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        samples.sort_by(f64::total_cmp);
        (percentile(&samples, 0.5), percentile(&samples, 0.99))
    })
}

/// MB/s of one TCP stream of `MB` megabytes from `from` to a sink in `to_ns` at `to`.
fn throughput(from: &str, to_ns: &str, to: IpAddr) -> f64 {
    const MB: usize = 512;
    let (ready, bound) = std::sync::mpsc::channel();
    let sink = in_netns(to_ns, move || {
        let l = TcpListener::bind(SocketAddr::new(to, 7001)).unwrap();
        ready.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0;
        while let Ok(n @ 1..) = s.read(&mut buf) {
            total += n;
        }
        total
    });
    bound.recv().unwrap();
    let took = at(from, move || {
        let mut s = TcpStream::connect(SocketAddr::new(to, 7001)).unwrap();
        let chunk = vec![7u8; 1 << 16];
        let t = Instant::now();
        for _ in 0..MB * 16 {
            s.write_all(&chunk).unwrap();
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut end = [0u8; 1];
        let _ = s.read(&mut end);
        t.elapsed()
    });
    assert_eq!(sink.join().unwrap(), MB << 20);
    MB as f64 * 1.048_576 / took.as_secs_f64()
}

fn datapath() {
    require(&["ip"]);
    let mut ns = Namespaces::new("bdp");
    let net: Network = "name=t,subnet=198.19.0.0/16".parse().unwrap();
    let (h1, h2) = (ns.add("h1"), ns.add("h2"));
    ns.link(&h1, "198.18.0.1/24", &h2, "198.18.0.2/24");
    let mut containers = Vec::new();
    for (n, host) in [(1u64, &h1), (2, &h2)] {
        let want = want(&net, n, &[1, 2], underlay4);
        let mut r = Reconciler::new(at(host, Rtnl::open).expect("rtnetlink"));
        at(host, move || r.pass(&want).expect("a pass"));
        // A container behind a bridge holding the subnet's gateway, as attach.sh does.
        let share = net.share(Slot(n as u32)).unwrap();
        let (gw, len) = (share.gateway().unwrap(), share.subnet.prefix_len());
        let ip = share.subnet.host(1).unwrap();
        let ctr = ns.add(&format!("c{n}"));
        let gw_cidr = format!("{gw}/{len}");
        sh(&[
            "ip", "-n", host, "link", "add", "name", "hwbr", "mtu", "1420", "type", "bridge",
        ]);
        sh(&["ip", "-n", host, "addr", "add", &gw_cidr, "dev", "hwbr"]);
        sh(&["ip", "-n", host, "link", "set", "hwbr", "up"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            host,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        let peer = ["peer", "name", "eth0", "netns", &ctr, "mtu", "1420"];
        let mut add = vec![
            "ip", "-n", host, "link", "add", "v0", "mtu", "1420", "type", "veth",
        ];
        add.extend(peer);
        sh(&add);
        sh(&[
            "ip", "-n", host, "link", "set", "v0", "master", "hwbr", "up",
        ]);
        sh(&[
            "ip",
            "-n",
            &ctr,
            "addr",
            "add",
            &format!("{ip}/{len}"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &ctr, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            &ctr,
            "route",
            "add",
            "default",
            "via",
            &gw.to_string(),
        ]);
        containers.push((ctr, ip));
    }
    let (c1, c2) = (&containers[0], &containers[1]);
    echo_server(&c2.0, c2.1);
    let under: IpAddr = "198.18.0.2".parse().unwrap();
    echo_server(&h2, under);
    let over_rtt = rtt(&c1.0, c2.1);
    let under_rtt = rtt(&h1, under);
    let over_tp = throughput(&c1.0, &c2.0, c2.1);
    let under_tp = throughput(&h1, &h2, under);
    println!(
        "datapath: round trip p50/p99: container->container over VXLAN {:.1}/{:.1} us, \
         host->host {:.1}/{:.1} us; one TCP stream: {:.0} MB/s over VXLAN, {:.0} MB/s host->host",
        over_rtt.0, over_rtt.1, under_rtt.0, under_rtt.1, over_tp, under_tp
    );
}

fn main() {
    require(&["ip"]);
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if run("join") {
        join();
    }
    if run("reconcile") {
        reconcile();
    }
    if run("datapath") {
        datapath();
    }
}
