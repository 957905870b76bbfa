//! Three `hawser agent --lb nftables` processes, each in a network namespace of its own
//! with its own nftables, on one bridge: n1 and n2 each publish a backend they run;
//! every node's kernel routes the VIP to both within a second; n2 is cut off and n0 and
//! n1 stop sending it new connections; healed, they send it some again; a rule deleted by hand is put
//! back within the reconcile interval; and n0, killed and restarted over the kernel
//! state it left, changes nothing. A named VIP is answered by the agent's DNS as
//! `<name>.vip.hawser.` once its kernel routes it, and no longer once withdrawn.
//!
//! Needs root, iproute2 and nftables; without them it fails and says so.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Agent, at, get, json_in as json, metric_in as metric, raw_http, wait_for};
use hawser_runtime::dns::query::ask;
use hawser_tests::echo::{server, spread};
use hawser_tests::netns::{Namespaces, require, sh};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const VIP: &str = "tcp://11.1.2.3:80";
const VIP_ADDR: &str = "11.1.2.3:80";

/// The `services` chain of a namespace's hawser table, with handles.
fn services(ns: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "-a", "list", "chain", "inet", "hawser",
        ])
        .arg("services")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn vip_add(ns: &str, admin: &str, backend: &str) {
    vip_write(ns, admin, "POST", VIP, backend);
}

/// Publish (`POST`) or withdraw (`DELETE`) this node's `backend` of `vip`.
fn vip_write(ns: &str, admin: &str, method: &str, vip: &str, backend: &str) {
    let body = format!(r#"{{"vip":"{vip}","backend":"{backend}"}}"#);
    let request = format!(
        "{method} /v1/vips HTTP/1.1\r\nHost: {admin}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let admin = admin.to_owned();
    let answer = at(ns, move || raw_http(&admin, &request));
    assert_eq!(answer.as_ref().map(|a| a.0), Some(200), "{answer:?}");
}

#[test]
fn three_agents_route_a_vip_through_partition_heal_drift_and_restart() {
    require(&["ip", "nft"]);
    let mut ns = Namespaces::new("lb3");
    let switch = ns.switch("sw");
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    let mut agents = Vec::new();
    let join: Vec<String> = (1..=3).map(|i| format!("198.18.0.{i}:7600")).collect();
    for i in 0..3 {
        let node = ns.add(&format!("n{i}"));
        let ip = format!("198.18.0.{}", i + 1);
        links.push(ns.plug(&switch, &node, &format!("{ip}/24")));
        let mut a = Agent::new(dir.path(), &format!("n{i}"));
        a.listen = format!("{ip}:7600");
        a.admin = "127.0.0.1:7601".into();
        a.join = join.clone();
        a.extra = vec!["--lb".into(), "nftables".into()];
        a.spawn_in(&node);
        nodes.push(node);
        agents.push(a);
    }
    server(&nodes[1], "198.18.0.2:8080", "b1");
    server(&nodes[2], "198.18.0.3:8080", "b2");
    let log = |i: usize| agents[i].log_tail();
    for (i, n) in nodes.iter().enumerate() {
        let n2 = n.clone();
        let waited = std::panic::catch_unwind(|| {
            wait_for(&format!("n{i} to see 3 reachable members"), 20, || {
                let m = json(&n2, "127.0.0.1:7601", "/v1/members");
                let up = m["members"]
                    .as_array()?
                    .iter()
                    .filter(|m| m["reachable"] == true);
                (up.count() == 3).then_some(())
            });
            // Past the settle time: the first pass has run.
            wait_for(&format!("n{i}'s first reconcile"), 10, || {
                (metric(&n2, "127.0.0.1:7601", "hawser_lb_reconciles_total") >= 1.0).then_some(())
            });
        });
        if waited.is_err() {
            panic!("--- log of n{i}:\n{}", log(i));
        }
    }

    // Publish: n1 and n2 each a backend of their own. n0's kernel holds both within a
    // second of the second write.
    vip_add(&nodes[1], "127.0.0.1:7601", "198.18.0.2:8080");
    vip_add(&nodes[2], "127.0.0.1:7601", "198.18.0.3:8080");
    let published = Instant::now();
    wait_for(
        "every node's kernel to route the VIP to both backends",
        5,
        || {
            nodes
                .iter()
                .map(|n| services(n))
                .all(|s| s.contains("198.18.0.2 . 8080") && s.contains("198.18.0.3 . 8080"))
                .then_some(())
        },
    );
    let took = published.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let vip: SocketAddr = VIP_ADDR.parse().unwrap();
    let count = spread(&nodes[0], vip, 40);
    assert!(
        count.contains_key("b1") && count.contains_key("b2"),
        "{count:?}"
    );
    let list = json(&nodes[0], "127.0.0.1:7601", "/v1/vips");
    assert_eq!(list["vips"][0]["vip"], VIP, "{list}");
    assert_eq!(list["vips"][0]["programmed"], true, "{list}");
    assert_eq!(list["vips"][0]["backends"].as_array().unwrap().len(), 2);
    // What n0's kernel holds: the service with both destinations.
    let kernel = &list["vips"][0]["kernel"];
    assert_eq!(kernel[0]["service"], VIP, "{list}");
    assert_eq!(kernel[0]["dests"].as_array().unwrap().len(), 2, "{list}");

    // Partition: n2 cut off. n0 stops sending it new connections.
    let n2_link = &links[2];
    sh(&["ip", "-n", &nodes[2], "link", "set", n2_link, "down"]);
    wait_for("n0 and n1 to leave n2's backend out", 15, || {
        nodes[..2]
            .iter()
            .all(|n| !services(n).contains("198.18.0.3"))
            .then_some(())
    });
    for n in &nodes[..2] {
        let count = spread(n, vip, 20);
        assert_eq!(count.get("b1"), Some(&20), "{n}: {count:?}");
    }
    let list = json(&nodes[0], "127.0.0.1:7601", "/v1/vips");
    let reachable: Vec<(String, bool)> = list["vips"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["addr"].as_str().unwrap().to_owned(),
                b["reachable"] == true,
            )
        })
        .collect();
    assert!(
        reachable.contains(&("198.18.0.2:8080".into(), true)),
        "{list}"
    );
    assert!(
        reachable.contains(&("198.18.0.3:8080".into(), false)),
        "{list}"
    );
    let cut = list["vips"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["addr"] == "198.18.0.3:8080")
        .unwrap();
    assert!(cut["kernel_weight"].is_null(), "not in n0's kernel: {list}");

    // Heal: back.
    sh(&["ip", "-n", &nodes[2], "link", "set", n2_link, "up"]);
    wait_for("n0 and n1 to route to n2's backend again", 20, || {
        nodes[..2]
            .iter()
            .all(|n| services(n).contains("198.18.0.3 . 8080"))
            .then_some(())
    });
    let count = spread(&nodes[0], vip, 40);
    assert!(
        count.contains_key("b1") && count.contains_key("b2"),
        "{count:?}"
    );

    // Drift: the rule deleted by hand is back within the interval (1 s).
    let rules = services(&nodes[0]);
    let line = rules.lines().find(|l| l.contains("dnat")).unwrap();
    let handle = line.rsplit("# handle ").next().unwrap().trim();
    Namespaces::exec(
        &nodes[0],
        &[
            "nft", "delete", "rule", "inet", "hawser", "services", "handle", handle,
        ],
    );
    let deleted = Instant::now();
    wait_for("n0 to put its rule back", 5, || {
        services(&nodes[0]).contains("dnat").then_some(())
    });
    assert!(
        deleted.elapsed() < Duration::from_millis(1500),
        "{:?}",
        deleted.elapsed()
    );

    // Restart: n0 killed and started again over what it left changes nothing.
    let before = services(&nodes[0]);
    agents[0].kill9();
    agents[0].spawn_in(&nodes[0]);
    wait_for("the restarted n0's reconcile passes", 20, || {
        at(&nodes[0], || get("127.0.0.1:7601", "/metrics"))?;
        (metric(&nodes[0], "127.0.0.1:7601", "hawser_lb_reconciles_total") >= 3.0).then_some(())
    });
    assert_eq!(
        metric(
            &nodes[0],
            "127.0.0.1:7601",
            "hawser_lb_changes_applied_total"
        ),
        0.0,
        "--- log of n0:\n{}",
        agents[0].log_tail()
    );
    assert_eq!(services(&nodes[0]), before, "same rules, same handles");
}

/// The A (or AAAA) addresses `name` has in the DNS server at `dns`, asked from `ns`, or
/// the answer's code when it is not NOERROR.
fn resolve(
    ns: &str,
    dns: SocketAddr,
    name: &'static str,
    qtype: RecordType,
) -> Result<Vec<String>, ResponseCode> {
    let answer = at(ns, move || ask(dns, name, qtype, false)).expect("the agent answers DNS");
    let m = answer.message;
    match m.metadata.response_code {
        ResponseCode::NoError => Ok(m.answers.iter().map(|r| r.data.to_string()).collect()),
        code => Err(code),
    }
}

#[test]
fn a_named_vip_resolves_once_routed_and_not_after_withdrawal() {
    require(&["ip", "nft"]);
    let mut ns = Namespaces::new("lbdns");
    let node = ns.add("n0");
    let back = ns.add("b");
    ns.link(&node, "198.18.2.1/24", &back, "198.18.2.2/24");
    server(&back, "198.18.2.2:8080", "b1");
    let dir = tempfile::tempdir().unwrap();
    let mut a = Agent::new(dir.path(), "n0");
    a.listen = "127.0.0.1:7600".into();
    a.admin = "127.0.0.1:7601".into();
    let dns: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    a.extra = vec![
        "--lb".into(),
        "nftables".into(),
        "--dns".into(),
        dns.to_string(),
    ];
    a.spawn_in(&node);
    let admin = "127.0.0.1:7601";
    let n = node.clone();
    wait_for("the first reconcile", 20, || {
        at(&n, || get("127.0.0.1:7601", "/metrics"))?;
        (metric(&n, admin, "hawser_lb_reconciles_total") >= 1.0).then_some(())
    });
    assert_eq!(
        resolve(&node, dns, "web.vip.hawser.", RecordType::A),
        Err(ResponseCode::NXDomain)
    );

    vip_write(&node, admin, "POST", "tcp://web:80", "198.18.2.2:8080");
    let address = wait_for("the named VIP to be programmed", 5, || {
        let list = json(&node, admin, "/v1/vips");
        let vip = &list["vips"][0];
        (vip["programmed"] == true).then(|| vip["address"].as_str().unwrap().to_owned())
    });
    let address: SocketAddr = address.parse().unwrap();
    // Programmed, so answered, with the address /v1/vips shows, and it routes.
    assert_eq!(
        resolve(&node, dns, "web.vip.hawser.", RecordType::A),
        Ok(vec![address.ip().to_string()]),
        "--- log:\n{}",
        a.log_tail()
    );
    assert_eq!(spread(&node, address, 5).get("b1"), Some(&5));

    vip_write(&node, admin, "DELETE", "tcp://web:80", "198.18.2.2:8080");
    wait_for("the withdrawn name to go from DNS", 5, || {
        (resolve(&node, dns, "web.vip.hawser.", RecordType::A) == Err(ResponseCode::NXDomain))
            .then_some(())
    });
}
