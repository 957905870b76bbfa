//! The L4 load balancer's figures (issue 18), in network namespaces this bench makes
//! (root, iproute2 and nftables needed; addresses from 198.18.0.0/15 only):
//!
//! - `propagation`: ten `hawser agent --lb nftables`, one per namespace on a bridge;
//!   the time from a `POST /v1/vips` on n0 until every other node's kernel holds the
//!   VIP's rule (each node's `nft` polled in a thread of its own);
//! - `reconcile`: the nftables backend over 10,000 VIPs x 10 backends — a pass from
//!   scratch, a pass with nothing to do, a pass for one backend's weight — with the
//!   kernel messages each took, and what IPVS would send for the same changes;
//! - `connections`: connections per second from a client namespace to a backend
//!   behind a node, through a VIP and straight to the backend's address.
//!
//! `cargo bench -p hawser-runtime --bench lb [-- propagation|reconcile|connections]`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hawser_core::NodeId;
use hawser_dataplane::lb::nft::Nft;
use hawser_dataplane::lb::{Backend, Change, Desired, Kernel, NameRanges, Vip, desired, diff};
use hawser_tests::echo::{ReconcilerThread, connect, server};
use hawser_tests::netns::{Namespaces, in_netns, require};

fn at<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    in_netns(ns, f).join().unwrap()
}

fn http(ns: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:7601\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    at(ns, move || {
        let mut s = std::net::TcpStream::connect("127.0.0.1:7601").ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(request.as_bytes()).ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let status = raw.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, raw.split_once("\r\n\r\n")?.1.to_owned()))
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn propagation() {
    const NODES: usize = 10;
    const ADDS: usize = 20;
    let mut ns = Namespaces::new("bprop");
    let switch = ns.switch("sw");
    let dir = tempfile::tempdir().unwrap();
    let join: Vec<String> = (1..=3).map(|i| format!("198.18.0.{i}:7600")).collect();
    let mut nodes = Vec::new();
    let mut children = Vec::new();
    for i in 0..NODES {
        let node = ns.add(&format!("n{i}"));
        let ip = format!("198.18.0.{}", i + 1);
        ns.plug(&switch, &node, &format!("{ip}/24"));
        let data = dir.path().join(format!("n{i}"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &node,
                env!("CARGO_BIN_EXE_hawser"),
                "agent",
            ])
            .args([
                "--name",
                &format!("n{i}"),
                "--listen",
                &format!("{ip}:7600"),
            ])
            .args([
                "--join",
                &join.join(","),
                "--data-dir",
                data.to_str().unwrap(),
            ])
            .args([
                "--cookie",
                "bench-cookie-of-24-bytes",
                "--admin",
                "127.0.0.1:7601",
                "--lb",
                "nftables",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        children.push(child);
        nodes.push(node);
    }
    let started = Instant::now();
    for n in &nodes {
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "agents did not form"
            );
            let members = http(n, "GET", "/v1/members", "");
            let metrics = http(n, "GET", "/metrics", "");
            let reachable =
                members.is_some_and(|(_, b)| b.matches("\"reachable\":true").count() == NODES);
            let reconciled = metrics.is_some_and(|(_, b)| {
                b.lines()
                    .any(|l| l.starts_with("hawser_lb_reconciles_total ") && !l.ends_with(" 0"))
            });
            if reachable && reconciled {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut worst = Vec::new();
    for k in 0..ADDS {
        let vip_ip = format!("11.0.1.{}", k + 1);
        let body = format!(
            r#"{{"vip":"tcp://{vip_ip}:80","backend":"198.18.0.1:{}"}}"#,
            8000 + k
        );
        let t0 = Instant::now();
        let watchers: Vec<_> = nodes[1..]
            .iter()
            .map(|n| {
                let (n, needle) = (n.clone(), format!("ip daddr {vip_ip} "));
                std::thread::spawn(move || {
                    loop {
                        let out = Command::new("ip")
                            .args([
                                "netns", "exec", &n, "nft", "list", "chain", "inet", "hawser",
                                "services",
                            ])
                            .output()
                            .unwrap();
                        if String::from_utf8_lossy(&out.stdout).contains(&needle) {
                            return t0.elapsed();
                        }
                        assert!(
                            t0.elapsed() < Duration::from_secs(30),
                            "{n} never got {needle}"
                        );
                    }
                })
            })
            .collect();
        let answer = http(&nodes[0], "POST", "/v1/vips", &body);
        assert_eq!(answer.as_ref().map(|a| a.0), Some(200), "{answer:?}");
        let all = watchers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap();
        worst.push(all.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(200));
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    worst.sort_by(f64::total_cmp);
    println!(
        "propagation, {NODES} agents, {ADDS} VIPs added on n0: until all {} others' kernels \
         hold the rule: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        NODES - 1,
        percentile(&worst, 0.5),
        percentile(&worst, 0.9),
        worst[worst.len() - 1]
    );
}

/// 10,000 VIPs of 10 backends on 100 nodes, every backend weight `w` but one.
fn many(vips: usize, per: usize, one_weight: u32) -> Desired {
    let mut map: BTreeMap<Vip, Vec<Backend>> = BTreeMap::new();
    for v in 0..vips {
        let vip: Vip = format!("tcp://11.0.{}.{}:80", v / 250, v % 250 + 1)
            .parse()
            .unwrap();
        let backends = (0..per)
            .map(|b| Backend {
                node: NodeId(((v + b) % 100) as u64),
                addr: format!("198.18.{}.{}:{}", b, v % 250 + 1, 8000 + v / 250)
                    .parse()
                    .unwrap(),
                weight: if v == 0 && b == 0 { one_weight } else { 1 },
            })
            .collect();
        map.insert(vip, backends);
    }
    desired(&map, |_| true, NameRanges::default())
}

/// Netlink requests IPVS takes for `changes`: one per change (addresses over rtnetlink).
fn ipvs_messages(changes: &[Change]) -> usize {
    changes.len()
}

fn reconcile() {
    const VIPS: usize = 10_000;
    const PER: usize = 10;
    let mut ns = Namespaces::new("brec");
    let node = ns.add("node");
    let before = many(VIPS, PER, 1);
    let after = many(VIPS, PER, 0);
    let (b, a) = (before.clone(), after.clone());
    let rows = at(&node, move || {
        let mut nft = Nft::open("nft", "hawser-vip").unwrap();
        let mut rows = Vec::new();
        for (what, want) in [
            ("from scratch", &b),
            ("nothing to do", &b),
            ("one backend's weight", &a),
        ] {
            let t0 = Instant::now();
            let current = nft.read().unwrap();
            let read = t0.elapsed();
            let changes = diff(&current, &want.state);
            let messages = nft.apply(&current, &changes).unwrap();
            rows.push((
                what,
                t0.elapsed(),
                read,
                changes.len(),
                messages,
                ipvs_messages(&changes),
            ));
        }
        rows
    });
    println!("reconcile, nftables backend, {VIPS} VIPs x {PER} backends:");
    println!("  pass                  wall     of it reading  changes   nft+rtnl msgs  IPVS msgs");
    for (what, wall, read, changes, messages, ipvs) in rows {
        println!(
            "  {what:<20}  {:>6.0} ms  {:>6.0} ms     {changes:>7}   {messages:>12}  {ipvs:>9}",
            wall.as_secs_f64() * 1000.0,
            read.as_secs_f64() * 1000.0
        );
    }
}

fn connections() {
    const N: usize = 1000;
    const ROUNDS: usize = 7;
    let mut ns = Namespaces::new("bconn");
    let (node, client, backend) = (ns.add("node"), ns.add("client"), ns.add("b"));
    for (leaf, net) in [(&client, 0), (&backend, 1)] {
        ns.leaf(&node, leaf, net);
    }
    Namespaces::exec(&node, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    server(&backend, "198.18.1.2:8080", "b");
    let vip: Vip = "tcp://11.1.2.3:80".parse().unwrap();
    let one = [(
        vip,
        vec![Backend {
            node: NodeId(1),
            addr: "198.18.1.2:8080".parse().unwrap(),
            weight: 1,
        }],
    )];
    let lb = ReconcilerThread::start(&node, || Nft::open("nft", "hawser-vip"));
    lb.pass(desired(&one.into(), |_| true, NameRanges::default()));
    // Alternate the two paths over rounds (the machine is shared: a slow moment hits
    // both), and report each path's median round.
    let paths = [
        ("direct to the backend", "198.18.1.2:8080"),
        ("through the VIP", "11.1.2.3:80"),
    ];
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (k, (_, addr)) in paths.iter().enumerate() {
            let addr: SocketAddr = addr.parse().unwrap();
            rates[k].push(at(&client, move || {
                let t0 = Instant::now();
                for _ in 0..N {
                    // Connect, read the greeting, close.
                    connect(addr).unwrap();
                }
                N as f64 / t0.elapsed().as_secs_f64()
            }));
        }
    }
    for (k, (what, _)) in paths.iter().enumerate() {
        rates[k].sort_by(f64::total_cmp);
        println!(
            "connections, {what}: median {:.0} connections/s (rounds of {N} sequential \
             connections from one client; slowest {:.0}, fastest {:.0})",
            percentile(&rates[k], 0.5),
            rates[k][0],
            rates[k][ROUNDS - 1]
        );
    }
}

fn main() {
    require(&["ip", "nft"]);
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if run("propagation") {
        propagation();
    }
    if run("reconcile") {
        reconcile();
    }
    if run("connections") {
        connections();
    }
}
