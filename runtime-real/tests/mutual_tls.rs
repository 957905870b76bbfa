//! Mutual TLS as the alternative to the cookie: agents with certificates from the
//! cluster's CA link; a certificate from another CA, an expired one, or none at all is
//! refused and counted as a wrong cookie is. Real agents on loopback, certificates made
//! by rcgen; every wait is bounded.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Agent, wait_for};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, date_time_ymd};

/// A CA: its certificate in PEM, and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(params, key),
    }
}

/// Certificate, key and CA files for a node called `name`, valid until `until` (a year).
fn files(dir: &Path, ca: &Ca, name: &str, until: i32) -> [PathBuf; 3] {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(until, 1, 1);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let paths = [
        dir.join(format!("{name}-{until}.crt")),
        dir.join(format!("{name}-{until}.key")),
        dir.join(format!("{name}-{until}-ca.crt")),
    ];
    std::fs::write(&paths[0], cert.pem()).unwrap();
    std::fs::write(&paths[1], key.serialize_pem()).unwrap();
    std::fs::write(&paths[2], &ca.pem).unwrap();
    paths
}

fn tls_agent(dir: &Path, name: &str, [cert, key, ca]: [PathBuf; 3]) -> Agent {
    let mut a = Agent::new(dir, name);
    a.cookie = String::new();
    for (flag, path) in [("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", ca)] {
        a.extra
            .extend([flag.to_string(), path.to_str().unwrap().to_string()]);
    }
    a
}

#[test]
fn agents_with_certificates_from_the_ca_link_without_a_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let mut a = tls_agent(dir.path(), "a", files(dir.path(), &ca, "a", 2100));
    a.start();
    let mut b = tls_agent(dir.path(), "b", files(dir.path(), &ca, "b", 2100));
    b.join = vec![a.listen.clone()];
    b.start();
    let b_id = b.id();
    for _ in 0..50 {
        if a.active().contains(&b_id) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        a.active().contains(&b_id),
        "a:\n{}\nb:\n{}",
        a.log_tail(),
        b.log_tail()
    );
    assert_eq!(a.metric("hawser_auth_failures_total"), 0.0);
}

/// Each of these dials the agent and is refused, counted in `hawser_auth_failures_total`
/// as a wrong cookie is: a certificate from another CA, an expired one from the right
/// CA, and a peer with no TLS at all.
#[test]
fn wrong_expired_or_missing_certificates_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (ca(), ca());
    let mut a = tls_agent(dir.path(), "a", files(dir.path(), &ours, "a", 2100));
    a.start();
    let b_cases = [
        (
            "other-ca",
            Some(files(dir.path(), &theirs, "other-ca", 2100)),
        ),
        ("expired", Some(files(dir.path(), &ours, "expired", 2001))),
        ("plain", None),
    ];
    let mut failures = 0.0;
    for (name, tls) in b_cases {
        let mut b = match tls {
            Some(files) => tls_agent(dir.path(), name, files),
            None => Agent::new(dir.path(), name),
        };
        b.join = vec![a.listen.clone()];
        b.start();
        wait_for(&format!("a to refuse {name}"), 10, || {
            (a.metric("hawser_auth_failures_total") > failures).then_some(())
        });
        failures = a.metric("hawser_auth_failures_total");
        std::thread::sleep(Duration::from_millis(300));
        assert!(a.active().is_empty(), "{name} linked with a");
    }
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("TLS certificate refused"), "{log}");
}

#[test]
fn a_certificate_for_another_name_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let mut a = tls_agent(
        dir.path(),
        "a",
        files(dir.path(), &ca, "someone-else", 2100),
    );
    a.spawn();
    let status = wait_for("the agent to exit", 10, || a.exited());
    assert_eq!(status.code(), Some(2));
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert!(log.contains("names \"someone-else\""), "{log}");
}

/// A member's certificate names it: a peer that presents a valid certificate for one
/// node and whose hello claims another node's id (which the cookie alone would let any
/// member do) is refused and counted as a wrong cookie is. The control, the same peer
/// claiming the name its certificate gives, links.
#[test]
fn a_valid_certificate_cannot_claim_another_node() {
    use hawser_core::{
        Addr, Cookie, Event, Identity, LinkConfig, LinkEvent, Name, Node, NodeId, Transmit,
    };
    use hawser_runtime::tls::Tls;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let mut a = tls_agent(dir.path(), "a", files(dir.path(), &ca, "a", 2100));
    a.start();
    let [cert, key, ca_file] = files(dir.path(), &ca, "rogue", 2100);
    let tls = Tls::load(&cert, &key, &ca_file).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Dial `a` through TLS with the rogue's certificate, say hello as `name`, and run
    // the link handshake until it links (true) or `a` closes the connection (false).
    let links_as = |name: &str| -> bool {
        let identity = Identity {
            id: NodeId::from_name(name),
            name: Name::new(name).unwrap(),
            addr: Addr::new("127.0.0.1:9").unwrap(),
            cookie: Cookie::new(tls.cookie()).unwrap(),
        };
        let mut node = Node::new(LinkConfig::default(), identity, 1, common::Quiet).unwrap();
        let now = hawser_core::Instant::ZERO;
        node.handle_start(now);
        node.command(now, |_, ctx| {
            ctx.connect(Addr::new(a.listen.as_str()).unwrap(), None)
        });
        let Some(Transmit::Connect { conn, .. }) = node.poll_transmit() else {
            panic!("the rogue dials")
        };
        runtime.block_on(async {
            let tcp = tokio::net::TcpStream::connect(&a.listen).await.unwrap();
            let (mut stream, peer) = tls.connect(tcp).await.unwrap();
            assert_eq!(peer, NodeId::from_name("a"), "a's certificate names it");
            node.handle_connected(now, conn);
            let read = async {
                loop {
                    while let Some(t) = node.poll_transmit() {
                        if let Transmit::Send { frame, .. } = t {
                            let _ = stream.write_all(&frame).await;
                        }
                    }
                    while let Some(e) = node.poll_event() {
                        if let Event::Link(LinkEvent::Up { .. }) = e {
                            return true;
                        }
                    }
                    let mut head = vec![0u8; hawser_core::wire::HEADER_LEN];
                    if stream.read_exact(&mut head).await.is_err() {
                        return false;
                    }
                    let (_, len) = hawser_core::wire::decode_header(&head, usize::MAX).unwrap();
                    let mut body = vec![0u8; len];
                    if stream.read_exact(&mut body).await.is_err() {
                        return false;
                    }
                    head.extend_from_slice(&body);
                    node.handle_frame(now, conn, &head);
                }
            };
            tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .expect("a answers or closes within 10 s")
        })
    };

    assert!(!links_as("b"), "a certificate for rogue linked as b");
    wait_for("a to count the refusal", 10, || {
        (a.metric("hawser_auth_failures_total") == 1.0).then_some(())
    });
    assert!(links_as("rogue"), "the control: rogue links as itself");
    assert_eq!(a.metric("hawser_auth_failures_total"), 1.0);
}
