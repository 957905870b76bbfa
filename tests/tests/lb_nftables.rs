//! The nftables backend on a real kernel, in namespaces this test makes: a node (where
//! hawser's table and VIP interface live), a client behind it, and two backends behind
//! it, each running a TCP server that says who it is and then echoes.
//!
//! Needs root, iproute2 and nftables; without them it fails and says so.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;

use hawser_core::NodeId;
use hawser_dataplane::lb::nft::Nft;
use hawser_dataplane::lb::{Backend, Desired, NameRanges, Pass, Vip, desired};
use hawser_tests::echo::{ReconcilerThread, connect, server, spread, udp_server, udp_spread};
use hawser_tests::netns::{Namespaces, in_netns, require, sh};

const VIP: &str = "tcp://11.1.2.3:80";
const ADDR: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(11, 1, 2, 3)),
    80,
);
const B1: &str = "198.18.1.2:8080";
const B2: &str = "198.18.2.2:8080";

/// Backends of node 1 with their weights.
fn backends(list: &[(&str, u32)]) -> Vec<Backend> {
    list.iter()
        .map(|(a, w)| Backend {
            node: NodeId(1),
            addr: a.parse().unwrap(),
            weight: *w,
        })
        .collect()
}

fn want(list: &[(&str, u32)]) -> Desired {
    let vips = if list.is_empty() {
        BTreeMap::new()
    } else {
        [(VIP.parse::<Vip>().unwrap(), backends(list))].into()
    };
    desired(&vips, |_| true, NameRanges::default())
}

/// The namespaces `[node, client, b1, b2]`: `node` routes for the others, each on a
/// veth pair of its own (198.18.N.0/24, and 2001:db8:N::/64 too when `v6`; N = 0, 1, 2).
fn net(tag: &str, v6: bool) -> (Namespaces, [String; 4]) {
    require(&["ip", "nft"]);
    let mut ns = Namespaces::new(tag);
    let (node, client) = (ns.add("node"), ns.add("client"));
    let (b1, b2) = (ns.add("b1"), ns.add("b2"));
    for n in [&node, &client, &b1, &b2].into_iter().filter(|_| v6) {
        // No duplicate address detection: addresses are usable at once.
        Namespaces::exec(n, &["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
        Namespaces::exec(n, &["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    }
    for (leaf, n) in [(&client, 0), (&b1, 1), (&b2, 2)] {
        let (up, down) = ns.leaf(&node, leaf, n);
        if v6 {
            let gw = format!("2001:db8:{n}::1");
            let at = |ns: &str, addr: &str, dev: &str| {
                sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            };
            at(&node, &format!("{gw}/64"), &up);
            at(leaf, &format!("2001:db8:{n}::2/64"), &down);
            sh(&[
                "ip", "-n", leaf, "-6", "route", "add", "default", "via", &gw,
            ]);
        }
    }
    Namespaces::exec(&node, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    if v6 {
        Namespaces::exec(&node, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    }
    (ns, [node, client, b1, b2])
}

#[test]
fn nftables_balances_drains_removes_and_repairs() {
    let (_ns, [node, client, b1, b2]) = net("nft", false);
    server(&b1, B1, "b1");
    server(&b2, B2, "b2");
    let lb = ReconcilerThread::start(&node, || Nft::open("nft", "hawser-vip"));

    // Both backends, equal weights: 200 connections from behind the node reach both.
    let first = lb.pass(want(&[(B1, 1), (B2, 1)]));
    assert_eq!(first.changes.len(), 4, "{:?}", first.changes);
    let count = spread(&client, ADDR, 200);
    assert_eq!(count.get("failed"), None, "{count:?}");
    assert!(count["b1"] >= 60 && count["b2"] >= 60, "{count:?}");
    // Weights 3:1 (binomial, 200 draws: b1 under 120 has odds below 1 in 10^4).
    lb.pass(want(&[(B1, 3), (B2, 1)]));
    let count = spread(&client, ADDR, 200);
    assert!(count["b1"] >= 120 && count["b2"] >= 20, "{count:?}");
    // From the node itself (the output hook), too.
    let count = spread(&node, ADDR, 20);
    assert_eq!(count.values().sum::<usize>(), 20);
    assert_eq!(count.get("failed"), None, "{count:?}");

    // Drain b1: new connections all go to b2; an open connection to b1 keeps working.
    let mut open = in_netns(&client, || {
        loop {
            let (id, r) = connect(ADDR).unwrap();
            if id == "b1" {
                break r;
            }
        }
    })
    .join()
    .unwrap();
    let drain = lb.pass(want(&[(B1, 0), (B2, 1)]));
    assert_eq!(drain.changes.len(), 1, "one weight: {:?}", drain.changes);
    let count = spread(&client, ADDR, 100);
    assert_eq!(count.get("b2"), Some(&100), "{count:?}");
    open.get_mut().write_all(b"still there?\n").unwrap();
    let mut echo = String::new();
    open.read_line(&mut echo).unwrap();
    assert_eq!(echo, "still there?\n");

    // A restart over this state (a new reconciler) changes nothing and sends nothing.
    let restarted = ReconcilerThread::start(&node, || Nft::open("nft", "hawser-vip"));
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
        &[
            "nft", "delete", "rule", "inet", "hawser", "services", "handle", &handle,
        ],
    );
    assert_eq!(
        spread(&client, ADDR, 5).get("failed"),
        Some(&5),
        "the rule is gone"
    );
    let repair = lb.pass(want(&[(B1, 0), (B2, 1)]));
    assert_eq!(repair.changes.len(), 3, "{:?}", repair.changes);
    assert_eq!(spread(&client, ADDR, 20).get("b2"), Some(&20));
    // The whole table deleted by hand: rebuilt.
    Namespaces::exec(&node, &["nft", "delete", "table", "inet", "hawser"]);
    lb.pass(want(&[(B1, 0), (B2, 1)]));
    assert_eq!(spread(&client, ADDR, 20).get("b2"), Some(&20));

    // Remove the VIP: connections fail, and the table holds no service.
    let gone = lb.pass(want(&[]));
    assert_eq!(
        gone.changes.len(),
        2,
        "service and address: {:?}",
        gone.changes
    );
    assert_eq!(spread(&client, ADDR, 10).get("failed"), Some(&10));
    assert_eq!(spread(&node, ADDR, 10).get("failed"), Some(&10));
    let rules = Namespaces::exec(
        &node,
        &["nft", "list", "chain", "inet", "hawser", "services"],
    );
    assert!(!rules.contains("dnat"), "{rules}");
}

/// IPv6 and UDP: a TCP VIP on an IPv6 address (from 2001:db8::/32, the documentation
/// range) and a UDP VIP, both spread over two backends, from behind the node
/// (prerouting) and from the node itself (output); then removed.
#[test]
fn nftables_serves_ipv6_and_udp_vips() {
    let (_ns, [node, client, b1, b2]) = net("nft6", true);
    server(&b1, "[2001:db8:1::2]:8080", "b1");
    server(&b2, "[2001:db8:2::2]:8080", "b2");
    udp_server(&b1, "198.18.1.2:5353", "b1");
    udp_server(&b2, "198.18.2.2:5353", "b2");
    let lb = ReconcilerThread::start(&node, || Nft::open("nft", "hawser-vip"));

    let vips: BTreeMap<Vip, Vec<Backend>> = [
        (
            "tcp://[2001:db8:ff::1]:80".parse().unwrap(),
            backends(&[("[2001:db8:1::2]:8080", 1), ("[2001:db8:2::2]:8080", 1)]),
        ),
        (
            "udp://11.1.2.4:53".parse().unwrap(),
            backends(&[("198.18.1.2:5353", 1), ("198.18.2.2:5353", 1)]),
        ),
    ]
    .into();
    let pass = lb.pass(desired(&vips, |_| true, NameRanges::default()));
    assert_eq!(pass.changes.len(), 8, "{:?}", pass.changes);
    let v6: SocketAddr = "[2001:db8:ff::1]:80".parse().unwrap();
    let udp: SocketAddr = "11.1.2.4:53".parse().unwrap();
    for from in [&client, &node] {
        let count = spread(from, v6, 60);
        assert_eq!(count.get("failed"), None, "{from} tcp6: {count:?}");
        assert!(
            count.contains_key("b1") && count.contains_key("b2"),
            "{count:?}"
        );
        let count = udp_spread(from, udp, 60);
        assert_eq!(count.get("failed"), None, "{from} udp: {count:?}");
        assert!(
            count.contains_key("b1") && count.contains_key("b2"),
            "{count:?}"
        );
    }
    // Read back exactly: nothing to do.
    assert_eq!(
        lb.pass(desired(&vips, |_| true, NameRanges::default())),
        Pass::default()
    );
    let gone = lb.pass(desired(&BTreeMap::new(), |_| true, NameRanges::default()));
    assert_eq!(gone.changes.len(), 4, "{:?}", gone.changes);
    assert_eq!(spread(&client, v6, 5).get("failed"), Some(&5));
    assert_eq!(udp_spread(&client, udp, 5).get("failed"), Some(&5));
}
