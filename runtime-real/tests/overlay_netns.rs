//! The overlay network on real kernels: `hawser agent --overlay` in "host" namespaces
//! joined by a bridge (the underlay, 198.18.0.0/24), and "container" namespaces plugged
//! into each host's subnet by the shipped `examples/overlay/attach.sh`.
//!
//! - Three hosts, two containers each: every container reaches every other across
//!   hosts through VXLAN (the VXLAN devices' packet counters rise); an agent restarted
//!   changes nothing in its kernel (same device, same MAC, no change applied) while a
//!   stream of connections between the other two hosts' containers sees no failure;
//!   an agent stopped for good has its entries removed from the others' kernels after
//!   the forget time.
//! - Two hosts cut apart that hold the same subnet (forced through the KV): after the
//!   heal the lower id keeps it, the other moves, and their containers reach each other.
//!
//! Needs root, iproute2 and jq (the attach script reads the API with it); without them
//! it fails and says so.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Agent, at, get, json_in, metric_in, post, wait_for};
use hawser_tests::echo::server;
use hawser_tests::netns::{Namespaces, in_netns, require, sh};
use serde_json::Value;

const ADMIN: &str = "127.0.0.1:7601";
const NET: &str = "name=ovl,subnet=198.19.0.0/16,prefix=24";
const DEVICE: &str = "vtep1024";
/// Short, so the test sees a stopped host forgotten.
const FORGET_MS: &str = "6000";

/// This host's view of the network `ovl`.
fn network(host: &str) -> Value {
    json_in(host, ADMIN, "/v1/networks")["networks"][0].clone()
}

/// The same, `None` while the agent does not answer (starting, restarting).
fn try_network(host: &str) -> Option<Value> {
    let (status, body) = at(host, || get(ADMIN, "/v1/networks"))?;
    let doc: Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
    Some(doc["networks"][0].clone())
}

/// Whether `host` holds a subnet and its kernel holds its device and `peers` peers.
fn programmed(host: &str, peers: usize) -> bool {
    let Some(n) = try_network(host) else {
        return false;
    };
    let list = n["peers"].as_array().cloned().unwrap_or_default();
    n["vtep"]["programmed"] == true
        && list.len() == peers
        && list.iter().all(|p| p["programmed"] == true)
}

/// Hosts `h0`.. on one switch, each running an agent with the overlay on.
struct Cluster {
    ns: Namespaces,
    hosts: Vec<String>,
    links: Vec<String>,
    agents: Vec<Agent>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn new(tag: &str, n: usize) -> Cluster {
        require(&["ip", "jq"]);
        let mut ns = Namespaces::new(tag);
        let switch = ns.switch("sw");
        let dir = tempfile::tempdir().unwrap();
        let join: Vec<String> = (1..=n).map(|i| format!("198.18.0.{i}:7600")).collect();
        let (mut hosts, mut links, mut agents) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let host = ns.add(&format!("h{i}"));
            let ip = format!("198.18.0.{}", i + 1);
            links.push(ns.plug(&switch, &host, &format!("{ip}/24")));
            let mut a = Agent::new(dir.path(), &format!("h{i}"));
            a.listen = format!("{ip}:7600");
            a.admin = ADMIN.into();
            a.join = join.clone();
            a.extra = ["--overlay", NET, "--overlay-forget-ms", FORGET_MS]
                .map(String::from)
                .to_vec();
            a.spawn_in(&host);
            hosts.push(host);
            agents.push(a);
        }
        let c = Cluster {
            ns,
            hosts,
            links,
            agents,
            _dir: dir,
        };
        for i in 0..n {
            c.wait_api(i);
        }
        c
    }

    /// Wait until host `i`'s agent answers, failing with its log.
    fn wait_api(&self, i: usize) {
        let host = self.hosts[i].clone();
        let ok = std::panic::catch_unwind(|| {
            wait_for(&format!("h{i}'s admin API"), 30, || try_network(&host))
        });
        if ok.is_err() {
            panic!(
                "h{i} did not start\n--- log:\n{}",
                self.agents[i].log_tail()
            );
        }
    }

    /// Wait until host `i`'s kernel holds `peers` peers, failing with its log.
    fn wait_programmed(&self, i: usize, peers: usize, secs: u64) {
        let host = self.hosts[i].clone();
        let ok = std::panic::catch_unwind(|| {
            wait_for(&format!("h{i} to program {peers} peers"), secs, || {
                programmed(&host, peers).then_some(())
            })
        });
        if ok.is_err() {
            panic!(
                "h{i}: {:?}\n--- log:\n{}",
                try_network(&self.hosts[i]),
                self.agents[i].log_tail()
            );
        }
    }

    /// A container namespace on host `i`, attached by the example script as address
    /// `index` of the host's subnet, running an echo server that greets with its name:
    /// its name and address.
    fn container(&mut self, i: usize, index: u32) -> (String, String) {
        let ctr = self.ns.add(&format!("c{i}x{index}"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/overlay/attach.sh");
        let out = Command::new(script)
            .args(["ovl", &ctr, &index.to_string(), ADMIN])
            .env("HOST_NETNS", &self.hosts[i])
            .env("HAWSER", env!("CARGO_BIN_EXE_hawser"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "attach.sh: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // "<ns>: 198.19.7.2/24 via 198.19.7.1 on ovl"
        let text = String::from_utf8_lossy(&out.stdout);
        let addr = text.split_whitespace().nth(1).unwrap();
        let ip = addr.split('/').next().unwrap().to_owned();
        let listen: &'static str = Box::leak(format!("{ip}:7000").into_boxed_str());
        server(&ctr, listen, Box::leak(ctr.clone().into_boxed_str()));
        (ctr, ip)
    }

    /// A VXLAN device counter of host `i` (`tx_packets`, `rx_packets`).
    fn counter(&self, i: usize, name: &str) -> u64 {
        let path = format!("/sys/class/net/{DEVICE}/statistics/{name}");
        sh(&["ip", "netns", "exec", &self.hosts[i], "cat", &path])
            .trim()
            .parse()
            .unwrap()
    }

    /// Every host's view and kernel state, for a failure's message.
    fn dump(&self) -> String {
        let mut out = String::new();
        for (i, h) in self.hosts.iter().enumerate() {
            out += &format!("--- h{i}: {:?}\n", try_network(h));
            for cmd in [&["addr"][..], &["route"], &["neigh"]] {
                let mut args = vec!["ip", "-n", h];
                args.extend_from_slice(cmd);
                out += &sh(&args);
            }
            out += &sh(&["bridge", "-n", h, "fdb", "show", "dev", DEVICE]);
        }
        out
    }

    /// Host `i`'s VXLAN device: its index and MAC, from the kernel.
    fn device(&self, i: usize) -> (String, String) {
        let out = sh(&["ip", "-n", &self.hosts[i], "-o", "link", "show", DEVICE]);
        let index = out.split(':').next().unwrap().to_owned();
        let mac = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap()
            .to_owned();
        (index, mac)
    }
}

/// Connect from namespace `from` to the container at `ip`, greet and echo one line:
/// the name of the container that answered, or the error.
fn reach(from: &str, ip: &str) -> Result<String, String> {
    let addr: SocketAddr = format!("{ip}:7000").parse().unwrap();
    at(from, move || exchange(addr)).map_err(|e| format!("{ip}: {e}"))
}

fn exchange(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let (mut id, mut echo) = (String::new(), String::new());
    r.read_line(&mut id)?;
    s.write_all(b"hello\n")?;
    r.read_line(&mut echo)?;
    if echo != "hello\n" {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(id.trim().to_owned())
}

#[test]
fn three_hosts_carry_containers_over_vxlan_restart_without_a_blip_and_forget_a_stopped_host() {
    let mut c = Cluster::new("ov3", 3);
    for i in 0..3 {
        c.wait_programmed(i, 2, 30);
    }
    let mut containers = Vec::new();
    for i in 0..3 {
        for index in 1..=2 {
            let (ctr, ip) = c.container(i, index);
            containers.push((i, ctr, ip));
        }
    }
    let before: Vec<u64> = (0..3).map(|i| c.counter(i, "tx_packets")).collect();
    for (i, from, _) in &containers {
        for (j, to, ip) in &containers {
            let answer = reach(from, ip);
            assert_eq!(
                answer.as_deref(),
                Ok(to.as_str()),
                "h{i} {from} -> h{j} {ip}"
            );
        }
    }
    for (i, was) in before.iter().enumerate() {
        let now = c.counter(i, "tx_packets");
        // Each host's containers opened 4 cross-host connections of several packets.
        assert!(
            now >= was + 4 * 3,
            "h{i}: {DEVICE} sent {} packets",
            now - was
        );
    }

    // Restart h1 while h0's container talks to h2's, connection after connection.
    let (from, to_ip) = (containers[0].1.clone(), containers[4].2.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let (tried, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let probe = {
        let (stop, tried, failed) = (stop.clone(), tried.clone(), failed.clone());
        let addr: SocketAddr = format!("{to_ip}:7000").parse().unwrap();
        in_netns(&from, move || {
            while !stop.load(Ordering::Relaxed) {
                tried.fetch_add(1, Ordering::Relaxed);
                if exchange(addr).is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let device = c.device(1);
    let status = c.agents[1].terminate();
    assert!(status.success(), "h1 exited with {status}");
    c.agents[1].spawn_in(&c.hosts[1].clone());
    c.wait_api(1);
    wait_for("h1 to reconcile after its restart", 20, || {
        let (_, body) = at(&c.hosts[1], || get(ADMIN, "/metrics"))?;
        let passes = body
            .lines()
            .find_map(|l| l.strip_prefix("hawser_overlay_reconciles_total "))?;
        (passes.parse::<f64>().ok()? >= 1.0).then_some(())
    });
    c.wait_programmed(1, 2, 10);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    probe.join().unwrap();
    let (tried, failed) = (
        tried.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    assert!(tried > 20, "only {tried} probes");
    assert_eq!(
        failed, 0,
        "{failed} of {tried} connections failed across h1's restart"
    );
    assert_eq!(
        c.device(1),
        device,
        "h1's VXLAN device was recreated or its MAC reset"
    );
    let changes = metric_in(&c.hosts[1], ADMIN, "hawser_overlay_changes_applied_total");
    assert_eq!(changes, 0.0, "h1's restart changed its kernel");

    // Stop h2 for good: after the forget time its entries leave h0's and h1's kernels.
    let gone = network(&c.hosts[2]);
    let (subnet, vtep, mac) = (
        gone["node_subnet"].as_str().unwrap().to_owned(),
        gone["vtep"]["ip"].as_str().unwrap().to_owned(),
        gone["vtep"]["mac"].as_str().unwrap().to_owned(),
    );
    c.agents[2].terminate();
    for i in 0..2 {
        let host = c.hosts[i].clone();
        wait_for(&format!("h{i} to forget h2"), 30, || {
            let routes = sh(&["ip", "-n", &host, "route", "show", "dev", DEVICE]);
            let neigh = sh(&["ip", "-n", &host, "neigh", "show", "dev", DEVICE]);
            let fdb = sh(&["bridge", "-n", &host, "fdb", "show", "dev", DEVICE]);
            let left = routes.contains(&subnet) || neigh.contains(&vtep) || fdb.contains(&mac);
            (!left && programmed(&host, 1)).then_some(())
        });
    }
    // h0's and h1's containers still reach each other.
    assert_eq!(
        reach(&containers[0].1, &containers[2].2).as_deref(),
        Ok(containers[2].1.as_str())
    );
}

#[test]
fn a_subnet_held_on_both_sides_of_a_partition_is_settled_after_the_heal() {
    let mut c = Cluster::new("ovp", 2);
    // Cut h1 off before anything: each side claims alone.
    sh(&["ip", "-n", &c.hosts[1], "link", "set", &c.links[1], "down"]);
    let slot = |c: &Cluster, i: usize| network(&c.hosts[i])["slot"].as_u64();
    let s0 = wait_for("h0 to hold a slot", 20, || slot(&c, 0));
    wait_for("h1 to hold a slot", 20, || slot(&c, 1));
    // Force the clash: h1 claims h0's slot in its own field.
    let id1 = json_in(&c.hosts[1], ADMIN, "/v1/self")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id0 = json_in(&c.hosts[0], ADMIN, "/v1/self")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bucket = u64::from_str_radix(&id1, 16).unwrap() % 64;
    let own = slot(&c, 1).unwrap();
    let op = format!(
        r#"{{"update":[{{"field":"{id1}","type":"map","op":{{"update":[
            {{"field":"slots","type":"set","op":{{"remove_all":["{own}"]}}}},
            {{"field":"slots","type":"set","op":{{"add":"{s0}"}}}}]}}}}]}}"#
    );
    let path = format!("/v1/kv/overlay/ovl/{bucket:02x}");
    let answer = at(&c.hosts[1], move || post(ADMIN, &path, &op));
    assert_eq!(answer.as_ref().map(|a| a.0), Some(200), "{answer:?}");
    wait_for("h1 to hold h0's slot", 10, || {
        (slot(&c, 1) == Some(s0)).then_some(())
    });

    sh(&["ip", "-n", &c.hosts[1], "link", "set", &c.links[1], "up"]);
    for i in 0..2 {
        c.wait_programmed(i, 1, 30);
    }
    let (a, b) = (slot(&c, 0).unwrap(), slot(&c, 1).unwrap());
    assert_ne!(a, b, "both hold slot {a} after the heal");
    let lower = if id0 < id1 { a } else { b };
    assert_eq!(lower, s0, "the lower id keeps the contested slot");
    for i in 0..2 {
        let n = network(&c.hosts[i]);
        assert!(n["displaced"] == 0, "h{i}: {n}");
    }
    let (c0, ip0) = c.container(0, 1);
    let (c1, ip1) = c.container(1, 1);
    assert_eq!(reach(&c0, &ip1).as_deref(), Ok(c1.as_str()), "{}", c.dump());
    assert_eq!(reach(&c1, &ip0).as_deref(), Ok(c0.as_str()), "{}", c.dump());
}
