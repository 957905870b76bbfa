//! The nftables backend on a real kernel, in namespaces this test makes: a node (where
//! hawser's table and VIP interface live), a client behind it, and two backends behind
//! it, each running a TCP server that says who it is and then echoes.
//!
//! Needs root, iproute2 and nftables; without them it fails and says so.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use hawser_core::NodeId;
use hawser_dataplane::lb::nft::Nft;
use hawser_dataplane::lb::{
    Backend, Desired, NameRanges, Pass, ProgrammedNames, Reconciler, Vip, desired,
};
use hawser_tests::netns::{Namespaces, in_netns, require, sh};

const VIP: &str = "tcp://11.1.2.3:80";
const B1: &str = "198.18.1.2:8080";
const B2: &str = "198.18.2.2:8080";

/// A TCP server in `ns` at `addr` that greets each connection with `id` and echoes.
fn server(ns: &str, addr: &'static str, id: &'static str, stop: Arc<AtomicBool>) {
    let (ready, bound) = mpsc::channel();
    in_netns(ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        ready.send(()).unwrap();
        while !stop.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((mut s, _)) => {
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        s.write_all(format!("{id}\n").as_bytes()).unwrap();
                        let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
                        while let Some(Ok(line)) = lines.next() {
                            if s.write_all(format!("{line}\n").as_bytes()).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    bound.recv().unwrap();
}

/// A connection to the VIP and the id its backend greeted it with.
fn connect() -> std::io::Result<(String, BufReader<TcpStream>)> {
    let vip: SocketAddr = "11.1.2.3:80".parse().unwrap();
    let s = TcpStream::connect_timeout(&vip, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut r = BufReader::new(s);
    let mut id = String::new();
    r.read_line(&mut id)?;
    if id.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok((id.trim().to_owned(), r))
}

/// `n` connections from namespace `ns`: how many each backend took ("failed": none).
fn spread(ns: &str, n: usize) -> BTreeMap<String, usize> {
    in_netns(ns, move || {
        let mut count = BTreeMap::new();
        for _ in 0..n {
            let id = connect().map_or_else(|_| "failed".to_owned(), |(id, _)| id);
            *count.entry(id).or_insert(0) += 1;
        }
        count
    })
    .join()
    .unwrap()
}

fn want(backends: &[(&str, u32)]) -> Desired {
    let vip: Vip = VIP.parse().unwrap();
    let list = backends
        .iter()
        .map(|(a, w)| Backend {
            node: NodeId(1),
            addr: a.parse().unwrap(),
            weight: *w,
        })
        .collect();
    let vips = if backends.is_empty() {
        BTreeMap::new()
    } else {
        [(vip, list)].into()
    };
    desired(&vips, |_| true, NameRanges::default())
}

/// A reconciler on a thread of its own in the node's namespace.
struct Node {
    tx: mpsc::Sender<(Desired, mpsc::Sender<Pass>)>,
}

impl Node {
    fn start(ns: &str) -> Node {
        let (tx, rx) = mpsc::channel::<(Desired, mpsc::Sender<Pass>)>();
        in_netns(ns, move || {
            let nft = Nft::open("nft", "hawser-vip").unwrap();
            let mut r = Reconciler::new(nft, ProgrammedNames::new());
            for (d, reply) in rx {
                reply.send(r.pass(&d).unwrap()).unwrap();
            }
        });
        Node { tx }
    }

    fn pass(&self, d: Desired) -> Pass {
        let (reply, rx) = mpsc::channel();
        self.tx.send((d, reply)).unwrap();
        rx.recv().unwrap()
    }
}

#[test]
fn nftables_balances_drains_removes_and_repairs() {
    require(&["ip", "nft"]);
    let mut ns = Namespaces::new("nft");
    let (node, client) = (ns.add("node"), ns.add("client"));
    let (b1, b2) = (ns.add("b1"), ns.add("b2"));
    for (leaf, net) in [(&client, 0), (&b1, 1), (&b2, 2)] {
        let (gw, addr) = (format!("198.18.{net}.1"), format!("198.18.{net}.2/24"));
        ns.link(&node, &format!("{gw}/24"), leaf, &addr);
        sh(&["ip", "-n", leaf, "route", "add", "default", "via", &gw]);
    }
    Namespaces::exec(&node, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let stop = Arc::new(AtomicBool::new(false));
    server(&b1, B1, "b1", stop.clone());
    server(&b2, B2, "b2", stop.clone());
    let lb = Node::start(&node);

    // Both backends, equal weights: 200 connections from behind the node reach both.
    let first = lb.pass(want(&[(B1, 1), (B2, 1)]));
    assert_eq!(first.changes.len(), 4, "{:?}", first.changes);
    let count = spread(&client, 200);
    assert_eq!(count.get("failed"), None, "{count:?}");
    assert!(count["b1"] >= 60 && count["b2"] >= 60, "{count:?}");
    // Weights 3:1 (binomial, 200 draws: b1 under 120 has odds below 1 in 10^4).
    lb.pass(want(&[(B1, 3), (B2, 1)]));
    let count = spread(&client, 200);
    assert!(count["b1"] >= 120 && count["b2"] >= 20, "{count:?}");
    // From the node itself (the output hook), too.
    let count = spread(&node, 20);
    assert_eq!(count.values().sum::<usize>(), 20);
    assert_eq!(count.get("failed"), None, "{count:?}");

    // Drain b1: new connections all go to b2; an open connection to b1 keeps working.
    let mut open = in_netns(&client, || {
        loop {
            let (id, r) = connect().unwrap();
            if id == "b1" {
                break r;
            }
        }
    })
    .join()
    .unwrap();
    let drain = lb.pass(want(&[(B1, 0), (B2, 1)]));
    assert_eq!(drain.changes.len(), 1, "one weight: {:?}", drain.changes);
    let count = spread(&client, 100);
    assert_eq!(count.get("b2"), Some(&100), "{count:?}");
    open.get_mut().write_all(b"still there?\n").unwrap();
    let mut echo = String::new();
    open.read_line(&mut echo).unwrap();
    assert_eq!(echo, "still there?\n");

    // A restart over this state (a new reconciler) changes nothing and sends nothing.
    let restarted = Node::start(&node);
    assert_eq!(restarted.pass(want(&[(B1, 0), (B2, 1)])), Pass::default());

    // Drift: the service's rule deleted by hand; the next pass, re-reading the kernel,
    // puts it back.
    let listing = Namespaces::exec(
        &node,
        &["nft", "-a", "list", "chain", "inet", "hawser", "services"],
    );
    let line = listing.lines().find(|l| l.contains("dnat")).unwrap();
    let handle = line.rsplit("# handle ").next().unwrap().trim().to_owned();
    Namespaces::exec(
        &node,
        &["nft", "delete", "rule", "inet", "hawser", "services", "handle", &handle],
    );
    assert_eq!(spread(&client, 5).get("failed"), Some(&5), "the rule is gone");
    let repair = lb.pass(want(&[(B1, 0), (B2, 1)]));
    assert_eq!(repair.changes.len(), 3, "{:?}", repair.changes);
    assert_eq!(spread(&client, 20).get("b2"), Some(&20));
    // The whole table deleted by hand: rebuilt.
    Namespaces::exec(&node, &["nft", "delete", "table", "inet", "hawser"]);
    lb.pass(want(&[(B1, 0), (B2, 1)]));
    assert_eq!(spread(&client, 20).get("b2"), Some(&20));

    // Remove the VIP: connections fail, and the table holds no service.
    let gone = lb.pass(want(&[]));
    assert_eq!(gone.changes.len(), 2, "service and address: {:?}", gone.changes);
    assert_eq!(spread(&client, 10).get("failed"), Some(&10));
    assert_eq!(spread(&node, 10).get("failed"), Some(&10));
    let rules = Namespaces::exec(&node, &["nft", "list", "chain", "inet", "hawser", "services"]);
    assert!(!rules.contains("dnat"), "{rules}");
    stop.store(true, Ordering::SeqCst);
}
