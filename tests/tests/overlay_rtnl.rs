//! The overlay's rtnetlink backend on a real kernel: two nodes in namespaces of their
//! own, joined by a veth pair as the underlay (198.18.0.0/24), each reconciled to the
//! desired state `overlay::desired` computes from a real network, allocation and VTEP
//! records. Containers are stood in for by a port-less bridge in each node holding the
//! first address of the node's subnets, and talk to each other over UDP through the
//! VXLAN devices, over IPv4 and IPv6.
//!
//! Needs root and iproute2 (`ip`, `bridge`); without them it fails and says so.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use hawser_core::NodeId;
use hawser_dataplane::overlay::rtnl::ROUTE_PROTO;
use hawser_dataplane::overlay::{
    Change, IfAddr, Kernel, KernelError, Mac, Network, Pass, Programmed, Reconciler, Rtnl, Slot,
};
use hawser_tests::netns::{Namespaces, in_netns, require, sh};
use hawser_tests::overlay::{network, underlay4, underlay6, want};

const DEV: &str = "vtep1024";

fn ip(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["ip", "-n", ns];
    all.extend_from_slice(args);
    sh(&all)
}

fn fdb(ns: &str) -> String {
    Namespaces::exec(ns, &["bridge", "fdb", "show", "dev", DEV])
}

fn counter(ns: &str, name: &str) -> u64 {
    let path = format!("/sys/class/net/{DEV}/statistics/{name}");
    Namespaces::exec(ns, &["cat", &path])
        .trim()
        .parse()
        .unwrap()
}

fn ifindex(ns: &str) -> String {
    Namespaces::exec(ns, &["cat", &format!("/sys/class/net/{DEV}/ifindex")])
}

/// A "container" in node `n`: a bridge without ports holding the first address of each
/// of the node's subnets. Returns those addresses.
fn container(net: &Network, ns: &str, n: u64) -> (IpAddr, IpAddr) {
    let share = net.share(Slot(n as u32)).unwrap();
    let v4 = share.subnet.host(0).unwrap();
    let sub6 = share.subnet6.unwrap();
    let v6 = sub6.host(0).unwrap();
    ip(ns, &["link", "add", "c0", "type", "bridge"]);
    let a4 = format!("{v4}/{}", share.subnet.prefix_len());
    let a6 = format!("{v6}/{}", sub6.prefix_len());
    ip(ns, &["addr", "add", &a4, "dev", "c0"]);
    ip(ns, &["addr", "add", &a6, "dev", "c0", "nodad"]);
    ip(ns, &["link", "set", "c0", "up"]);
    (v4, v6)
}

/// Whether a datagram from `from` in `a` reaches `to` in `b` and its echo comes back.
fn echo(a: &str, from: IpAddr, b: &str, to: IpAddr) -> bool {
    let dst = SocketAddr::new(to, 7000);
    let server = in_netns(b, move || {
        let s = UdpSocket::bind(dst).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((n, peer)) = s.recv_from(&mut buf) {
            s.send_to(&buf[..n], peer).unwrap();
        }
    });
    let client = in_netns(a, move || {
        let s = UdpSocket::bind(SocketAddr::new(from, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        // Until the server is bound: a datagram before that is refused or lost.
        for _ in 0..15 {
            let _ = s.send_to(b"hawser", dst);
            if let Ok((n, _)) = s.recv_from(&mut buf) {
                return &buf[..n] == b"hawser";
            }
        }
        false
    });
    let ok = client.join().unwrap();
    server.join().unwrap();
    ok
}

/// `state` with its device's MTU set to `mtu`.
fn mtu(mut state: Programmed, mtu: u16) -> Programmed {
    state.links.get_mut(DEV).unwrap().device.mtu = mtu;
    state
}

fn reconciler(ns: &str) -> Reconciler<Rtnl> {
    let kernel = in_netns(ns, Rtnl::open).join().unwrap();
    Reconciler::new(kernel.expect("rtnetlink in the namespace"))
}

#[test]
fn two_nodes_talk_over_vxlan_and_passes_repair_and_remove() {
    require(&["ip", "bridge"]);
    let mut ns = Namespaces::new("ovl");
    let (a, b) = (ns.add("a"), ns.add("b"));
    ns.link(&a, "198.18.0.1/24", &b, "198.18.0.2/24");
    let net = network();
    let (want_a, want_b) = (
        want(&net, 1, &[1, 2], underlay4),
        want(&net, 2, &[1, 2], underlay4),
    );
    let (mut ra, mut rb) = (reconciler(&a), reconciler(&b));

    let first = ra.pass(&want_a).unwrap();
    rb.pass(&want_b).unwrap();
    eprintln!(
        "first pass: {} changes, {} messages",
        first.changes.len(),
        first.messages
    );
    // A device, 2 addresses, up, 2 neighbours, 1 FDB entry, 2 routes.
    assert_eq!(first.changes.len(), 9, "{:?}", first.changes);
    // Creating a device also turns address generation off; the first address looks
    // up its index.
    assert_eq!(first.messages, 11);

    // What `ip` and `bridge` see.
    let (mac_a, mac_b) = (Mac::of_node(NodeId(1)), Mac::of_node(NodeId(2)));
    let link = ip(&a, &["-d", "link", "show", DEV]);
    for want in [
        "vxlan id 1024",
        "local 198.18.0.1",
        "dstport 64000",
        "nolearning",
        "mtu 1420",
        "addrgenmode none",
        &mac_a.to_string(),
    ] {
        assert!(link.contains(want), "no {want:?} in {link}");
    }
    let vtep_b = net.share(Slot(2)).unwrap().vtep_ip.to_string();
    let ll_b = mac_b.link_local().to_string();
    let neigh = ip(&a, &["neigh", "show", "dev", DEV]);
    for peer in [&vtep_b, &ll_b] {
        assert!(
            neigh.contains(&format!("{peer} lladdr {mac_b} PERMANENT")),
            "{neigh}"
        );
    }
    let f = fdb(&a);
    assert!(
        f.contains(&format!("{mac_b} dst 198.18.0.2 self permanent")),
        "{f}"
    );
    let routes = ip(&a, &["route", "show", "dev", DEV]);
    let proto = format!("proto {ROUTE_PROTO}");
    assert!(
        routes.contains(&format!("198.19.2.0/24 via {vtep_b} {proto}")),
        "{routes}"
    );
    let routes6 = ip(&a, &["-6", "route", "show", "dev", DEV]);
    assert!(
        routes6.contains(&format!("2001:db8:1:0:2::/80 via {ll_b} {proto}")),
        "{routes6}"
    );

    // Containers on the two nodes talk, through the VXLAN devices.
    let (c4_a, c6_a) = container(&net, &a, 1);
    let (c4_b, c6_b) = container(&net, &b, 2);
    let (tx, rx) = (counter(&a, "tx_packets"), counter(&a, "rx_packets"));
    assert!(echo(&a, c4_a, &b, c4_b), "IPv4 across the overlay");
    assert!(echo(&b, c6_b, &a, c6_a), "IPv6 across the overlay");
    assert!(counter(&a, "tx_packets") >= tx + 2);
    assert!(counter(&a, "rx_packets") >= rx + 2);

    // Idempotent: a second pass sends nothing.
    assert_eq!(ra.pass(&want_a).unwrap(), Pass::default());
    assert_eq!(rb.pass(&want_b).unwrap(), Pass::default());

    // Errors are typed and name the change; removing what is already gone is done.
    let mut raw = in_netns(&a, Rtnl::open).join().unwrap().unwrap();
    let current = raw.read().unwrap();
    assert_eq!(
        current, want_a,
        "a read gives back exactly what was desired"
    );
    let again = Change::AddLink(DEV.into(), want_a.links[DEV].device);
    match raw.apply(&current, std::slice::from_ref(&again)) {
        Err(KernelError::Failed { op, error }) => {
            eprintln!("refused: {op}: {error}");
            assert_eq!(op, again.to_string());
            assert!(error.contains("File exists"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    // A gateway off every connected range: the kernel refuses, and the error says so.
    let offlink = Change::SetRoute(
        DEV.into(),
        "198.19.98.0/24".parse().unwrap(),
        "203.0.113.1".parse().unwrap(),
    );
    let refused = raw.apply(&current, std::slice::from_ref(&offlink));
    eprintln!("refused: {refused:?}");
    assert!(
        matches!(&refused, Err(KernelError::Failed { error, .. }) if error.contains("unreachable"))
    );
    let nobody: IpAddr = "100.64.0.99".parse().unwrap();
    let gone = [
        Change::RemoveRoute(DEV.into(), "198.19.99.0/24".parse().unwrap()),
        Change::RemoveFdb(DEV.into(), Mac([2, 0, 0, 0, 0, 99])),
        Change::RemoveNeighbour(DEV.into(), nobody),
        Change::RemoveAddress(
            DEV.into(),
            IfAddr {
                ip: nobody,
                len: 20,
            },
        ),
        Change::RemoveLink("vtep99".into()),
    ];
    assert_eq!(raw.apply(&current, &gone), Ok(5));
    assert_eq!(raw.read().unwrap(), want_a);

    // Entries deleted by hand come back, on the same device.
    let index = ifindex(&a);
    ip(&a, &["route", "del", "198.19.2.0/24", "dev", DEV]);
    ip(&a, &["neigh", "del", &vtep_b, "dev", DEV]);
    Namespaces::exec(
        &a,
        &[
            "bridge",
            "fdb",
            "del",
            &mac_b.to_string(),
            "dev",
            DEV,
            "self",
        ],
    );
    let repair = ra.pass(&want_a).unwrap();
    assert_eq!(repair.changes.len(), 3, "{:?}", repair.changes);
    assert_eq!(repair.messages, 3);
    assert_eq!(
        ifindex(&a),
        index,
        "the device is never recreated to repair"
    );
    assert!(echo(&a, c4_a, &b, c4_b), "IPv4 after the repair");

    // A new MTU is a setting the diff recreates the device for; it comes back whole.
    let mtu_a = mtu(want_a, 1400);
    let pass = ra.pass(&mtu_a).unwrap();
    assert_eq!(pass.changes[0], Change::RemoveLink(DEV.into()));
    eprintln!(
        "recreate: {} changes, {} messages",
        pass.changes.len(),
        pass.messages
    );
    assert!(ip(&a, &["link", "show", DEV]).contains("mtu 1400"));
    assert_eq!(ra.pass(&mtu_a).unwrap(), Pass::default());
    assert!(echo(&a, c4_a, &b, c4_b), "IPv4 on the recreated device");

    // Node 2 leaves: its neighbours, FDB entry and routes go, and nothing else.
    let alone = mtu(want(&net, 1, &[1], underlay4), 1400);
    let index = ifindex(&a);
    let pass = ra.pass(&alone).unwrap();
    assert_eq!(pass.changes.len(), 5, "{:?}", pass.changes);
    assert_eq!(ifindex(&a), index);
    assert!(!ip(&a, &["neigh", "show", "dev", DEV]).contains("PERMANENT"));
    assert!(!fdb(&a).contains(&mac_b.to_string()));
    assert!(!ip(&a, &["route", "show", "dev", DEV]).contains("via"));
    assert!(!ip(&a, &["-6", "route", "show", "dev", DEV]).contains("via"));
    assert_eq!(ra.pass(&alone).unwrap(), Pass::default());

    // No network: the device goes.
    let pass = ra.pass(&Programmed::default()).unwrap();
    assert_eq!(pass.changes, vec![Change::RemoveLink(DEV.into())]);
    let gone = Command::new("ip")
        .args(["-n", &a, "link", "show", DEV])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "{DEV} still there");
    assert_eq!(ra.pass(&Programmed::default()).unwrap(), Pass::default());
}

/// VXLAN over an IPv6 underlay: the device's local address and the forwarding entries'
/// destinations are IPv6, and read back as programmed.
#[test]
fn an_ipv6_underlay_carries_the_overlay() {
    require(&["ip", "bridge"]);
    let mut ns = Namespaces::new("ovl6");
    let (a, b) = (ns.add("a"), ns.add("b"));
    let (va, vb) = ns.link(&a, "198.18.0.1/24", &b, "198.18.0.2/24");
    for (n, dev, node) in [(&a, &va, 1), (&b, &vb, 2)] {
        let addr = format!("{}/64", underlay6(node));
        ip(n, &["addr", "add", &addr, "dev", dev, "nodad"]);
    }
    let net = network();
    let (want_a, want_b) = (
        want(&net, 1, &[1, 2], underlay6),
        want(&net, 2, &[1, 2], underlay6),
    );
    let (mut ra, mut rb) = (reconciler(&a), reconciler(&b));
    assert_eq!(ra.pass(&want_a).unwrap().changes.len(), 9);
    assert_eq!(rb.pass(&want_b).unwrap().changes.len(), 9);
    assert!(ip(&a, &["-d", "link", "show", DEV]).contains("local 2001:db8:18::1"));
    let mac_b = Mac::of_node(NodeId(2));
    let f = fdb(&a);
    assert!(
        f.contains(&format!("{mac_b} dst 2001:db8:18::2 self permanent")),
        "{f}"
    );
    assert_eq!(ra.pass(&want_a).unwrap(), Pass::default());
    let (c4_a, _) = container(&net, &a, 1);
    let (c4_b, _) = container(&net, &b, 2);
    assert!(echo(&a, c4_a, &b, c4_b), "IPv4 over the IPv6 underlay");
}
