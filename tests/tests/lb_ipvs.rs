//! The IPVS backend on a real kernel, where the kernel has IPVS. This is the one test
//! allowed to not run: on a kernel without IPVS (and no way to load it) it prints that
//! it did not run and why. What it would check is the encoding, which the unit tests in
//! `dataplane/src/lb/ipvs.rs` compare byte for byte on every machine.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use hawser_core::NodeId;
use hawser_dataplane::lb::ipvs::Ipvs;
use hawser_dataplane::lb::{Backend, KernelError, NameRanges, Vip, desired};
use hawser_tests::echo::{ReconcilerThread, server, spread};
use hawser_tests::netns::{Namespaces, in_netns, require};

#[test]
fn ipvs_balances_where_the_kernel_has_it() {
    require(&["ip"]);
    let _ = Command::new("modprobe").arg("ip_vs").status();
    let mut ns = Namespaces::new("ipvs");
    let node = ns.add("node");
    match in_netns(&node, || Ipvs::open("hawser-vip").map(drop))
        .join()
        .unwrap()
    {
        Err(KernelError::Unsupported(why)) => {
            eprintln!("lb_ipvs: DID NOT RUN: this kernel has no IPVS ({why})");
            return;
        }
        other => other.unwrap(),
    }
    let (b1, b2) = (ns.add("b1"), ns.add("b2"));
    for (leaf, net) in [(&b1, 1), (&b2, 2)] {
        ns.leaf(&node, leaf, net);
    }
    // IPVS in NAT mode needs conntrack for connections the node itself opens.
    Namespaces::exec(&node, &["sysctl", "-qw", "net.ipv4.vs.conntrack=1"]);
    server(&b1, "198.18.1.2:8080", "b1");
    server(&b2, "198.18.2.2:8080", "b2");
    let vip: Vip = "tcp://11.1.2.3:80".parse().unwrap();
    let backends = ["198.18.1.2:8080", "198.18.2.2:8080"].map(|a| Backend {
        node: NodeId(1),
        addr: a.parse().unwrap(),
        weight: 1,
    });
    let vips: BTreeMap<Vip, Vec<Backend>> = [(vip, backends.to_vec())].into();
    let want = desired(&vips, |_| true, NameRanges::default());
    let lb = ReconcilerThread::start(&node, || Ipvs::open("hawser-vip"));
    assert_eq!(lb.pass(want.clone()).changes.len(), 4);
    assert!(
        lb.pass(want).changes.is_empty(),
        "the kernel holds what was applied"
    );
    let addr: SocketAddr = "11.1.2.3:80".parse().unwrap();
    let count = spread(&node, addr, 50);
    assert!(
        count.contains_key("b1") && count.contains_key("b2"),
        "{count:?}"
    );
}
