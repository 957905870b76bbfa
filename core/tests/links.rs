//! The link layer between two real `Node`s, pumped by hand: handshake, sealing, the
//! cookie check, tampering, and the handshake timeout.

use hawser_core::link::RefuseReason;
use hawser_core::loopback;
use hawser_core::wire::WireError;
use hawser_core::{
    Addr, ConnId, ConnectError, Cookie, Ctx, Duration, Event, Identity, Instant, LinkConfig,
    LinkEvent, Name, Node, NodeId, Protocol, Transmit,
};

/// Records what reaches it; sends "hello" on every link-up.
#[derive(Default)]
struct Recorder {
    got: Vec<(NodeId, Vec<u8>)>,
}

impl Protocol for Recorder {
    type Timer = ();
    type Event = ();
    fn start(&mut self, _: &mut Ctx<'_, (), ()>) {}
    fn link_up(&mut self, peer: NodeId, _: &Addr, ctx: &mut Ctx<'_, (), ()>) {
        ctx.send(peer, b"hello").unwrap();
    }
    fn message(
        &mut self,
        from: NodeId,
        body: &[u8],
        _: &mut Ctx<'_, (), ()>,
    ) -> Result<(), WireError> {
        self.got.push((from, body.to_vec()));
        Ok(())
    }
    fn timer(&mut self, _: (), _: &mut Ctx<'_, (), ()>) {}
}

fn node(id: u64, cookie: &str) -> Node<Recorder> {
    node_at(id, &format!("n{id}"), cookie)
}

/// A node with id `id` that says it listens at `addr`.
fn node_at(id: u64, addr: &str, cookie: &str) -> Node<Recorder> {
    let identity = Identity {
        id: NodeId(id),
        name: Name::new(format!("n{id}")).unwrap(),
        addr: Addr::new(addr).unwrap(),
        cookie: Cookie::new(cookie).unwrap(),
    };
    let mut n = Node::new(LinkConfig::default(), identity, id, Recorder::default()).unwrap();
    n.handle_start(Instant::ZERO);
    n
}

/// Dial b from a and pump frames both ways until quiet. `tamper` may alter a→b frames.
fn pump(
    a: &mut Node<Recorder>,
    b: &mut Node<Recorder>,
    mut tamper: impl FnMut(&mut Vec<u8>),
) -> (ConnId, ConnId) {
    let (ca, cb) = loopback::connect(a, b, Addr::new("b").unwrap()).expect("a dials");
    loopback::pump(a, ca, b, cb, |way, frame| {
        if way == loopback::Way::AtoB {
            tamper(frame)
        }
    });
    (ca, cb)
}

fn link_events<P: Protocol>(n: &mut Node<P>) -> Vec<LinkEvent> {
    std::iter::from_fn(|| n.poll_event())
        .filter_map(|e| match e {
            Event::Link(l) => Some(l),
            _ => None,
        })
        .collect()
}

#[test]
fn same_cookie_links_and_messages_flow_both_ways() {
    let (mut a, mut b) = (node(1, "c"), node(2, "c"));
    pump(&mut a, &mut b, |_| {});
    assert!(a.links().is_linked(NodeId(2)) && b.links().is_linked(NodeId(1)));
    assert_eq!(a.protocol().got, vec![(NodeId(2), b"hello".to_vec())]);
    assert_eq!(b.protocol().got, vec![(NodeId(1), b"hello".to_vec())]);
    assert!(matches!(
        link_events(&mut b)[0],
        LinkEvent::Up {
            peer: NodeId(1),
            ..
        }
    ));
}

#[test]
fn wrong_cookie_is_refused_on_both_sides_and_counted() {
    let (mut a, mut b) = (node(1, "right"), node(2, "wrong"));
    pump(&mut a, &mut b, |_| {});
    assert_eq!(a.links().peers().count() + b.links().peers().count(), 0);
    assert_eq!((a.stats().auth_failures, b.stats().auth_failures), (1, 1));
    assert!(link_events(&mut a).contains(&LinkEvent::ConnectFailed {
        addr: Addr::new("b").unwrap(),
        expected: None,
        error: ConnectError::AuthFailed
    }));
    assert!(
        b.protocol().got.is_empty(),
        "nothing from an unauthenticated peer reaches the protocol"
    );
}

#[test]
fn a_tampered_data_frame_drops_the_link() {
    let (mut a, mut b) = (node(1, "c"), node(2, "c"));
    let mut count = 0;
    // Frames a→b: hello, proof, then the first data frame, whose last byte we flip.
    pump(&mut a, &mut b, |f| {
        count += 1;
        if count == 3 {
            *f.last_mut().unwrap() ^= 1;
        }
    });
    assert!(!b.links().is_linked(NodeId(1)));
    assert_eq!(b.stats().auth_failures, 1);
    assert!(b.protocol().got.is_empty());
}

#[test]
fn a_silent_connection_is_closed_at_the_handshake_timeout() {
    let mut b = node(2, "c");
    let conn = b.handle_accept(Instant::ZERO);
    let deadline = b.poll_timeout().expect("a deadline for the handshake");
    assert_eq!(deadline, Instant::ZERO + Duration::from_secs(5));
    b.handle_timeout(deadline);
    let closes: Vec<_> = std::iter::from_fn(|| b.poll_transmit())
        .filter(|t| matches!(t, Transmit::Close { conn: c } if *c == conn))
        .collect();
    assert_eq!(closes.len(), 1);
    assert_eq!(b.stats().handshake_timeouts, 1);
}

#[test]
fn garbage_on_a_connection_is_a_counted_decode_error() {
    let mut b = node(2, "c");
    let conn = b.handle_accept(Instant::ZERO);
    b.handle_frame(Instant::ZERO, conn, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(b.stats().decode_errors, 1);
    assert!(link_events(&mut b).iter().any(|e| matches!(
        e,
        LinkEvent::DecodeError {
            error: WireError::BadMagic(_),
            ..
        }
    )));
}

/// Dial from `a` and return its connection and the hello it sends.
fn dial(a: &mut Node<Recorder>) -> (ConnId, Vec<u8>) {
    a.command(Instant::ZERO, |_, ctx| {
        ctx.connect(Addr::new("victim").unwrap(), None)
    });
    let Some(Transmit::Connect { conn, .. }) = a.poll_transmit() else {
        panic!("a dials")
    };
    a.handle_connected(Instant::ZERO, conn);
    let Some(Transmit::Send { frame, .. }) = a.poll_transmit() else {
        panic!("a sends its hello")
    };
    (conn, frame)
}

/// Everything `victim` answers an inbound connection on which `hello` arrives.
fn provoke(victim: &mut Node<Recorder>, hello: &[u8]) -> Vec<Vec<u8>> {
    let conn = victim.handle_accept(Instant::ZERO);
    victim.handle_frame(Instant::ZERO, conn, hello);
    std::iter::from_fn(|| victim.poll_transmit())
        .filter_map(|t| match t {
            Transmit::Send { frame, .. } => Some(frame),
            _ => None,
        })
        .collect()
}

/// Offline, replay a capture against a fresh initiator holding `guess` and started from
/// the attacker's own RNG seed (so under any scheme whose hello does not depend on the
/// cookie, it sends the very hello that went over the wire): does the victim's answer
/// authenticate under that guess?
fn guess_confirmed(capture: &[Vec<u8>], guess: &str) -> bool {
    let mut replay = node(1, guess);
    let (conn, _) = dial(&mut replay);
    for frame in capture {
        replay.handle_frame(Instant::ZERO, conn, frame);
    }
    link_events(&mut replay)
        .iter()
        .any(|e| matches!(e, LinkEvent::Up { .. }))
}

/// Link v1's responder sent `HMAC(cookie, transcript)` to anyone who said hello, so one
/// connection gave a dictionary attack everything it needed. Now the answer to a hello
/// made without the cookie confirms no guess offline, not even the right one; only an
/// online guess that was right (the control) ever links.
#[test]
fn a_captured_handshake_gives_no_offline_check_of_a_guess() {
    const COOKIE: &str = "correct horse battery staple";
    let mut victim = node(2, COOKIE);
    let mut attacker = node(1, "first guess");
    let (_, hello) = dial(&mut attacker);
    let capture = provoke(&mut victim, &hello);
    assert_eq!(
        capture.len(),
        2,
        "the victim answers with its hello and a proof"
    );
    for guess in ["password", "first guess", COOKIE] {
        assert!(
            !guess_confirmed(&capture, guess),
            "the capture confirmed the guess {guess:?} offline"
        );
    }

    let mut lucky = node(1, COOKIE);
    let (_, hello) = dial(&mut lucky);
    let capture = provoke(&mut node(2, COOKIE), &hello);
    assert!(
        guess_confirmed(&capture, COOKIE),
        "the control: a right online guess links"
    );
}

#[test]
fn an_oversize_frame_before_authentication_is_refused() {
    let mut b = node(2, "c");
    let conn = b.handle_accept(Instant::ZERO);
    let big = hawser_core::wire::encode_frame(
        hawser_core::wire::FrameKind::Hello,
        &vec![0u8; hawser_core::link::MAX_HANDSHAKE_FRAME + 1],
    );
    b.handle_frame(Instant::ZERO, conn, &big);
    assert_eq!(b.stats().decode_errors, 1);
    assert!(link_events(&mut b).iter().any(|e| matches!(
        e,
        LinkEvent::DecodeError {
            error: WireError::TooLarge { .. },
            ..
        }
    )));
}

/// Two agents given one name share an id. The second to link with a node from another
/// address is refused and told why; the live link stays (before, the tie-break between
/// the two connections dropped one link or the other, and they took turns).
#[test]
fn a_second_node_with_a_linked_id_is_refused_and_told() {
    let mut b = node(2, "c");
    let mut first = node_at(1, "first", "c");
    let mut second = node_at(1, "second", "c");
    pump(&mut first, &mut b, |_| {});
    link_events(&mut b);
    pump(&mut second, &mut b, |_| {});
    assert_eq!(b.stats().duplicate_ids, 1);
    let events = link_events(&mut b);
    assert!(
        events.iter().any(|e| matches!(
            e,
            LinkEvent::DuplicateRefused { peer: NodeId(1), addr, live_addr, .. }
                if addr.as_str() == "second" && live_addr.as_str() == "first"
        )),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, LinkEvent::Down { .. })));
    assert_eq!(second.stats().refused_by_peer, 1);
    assert!(
        link_events(&mut second).contains(&LinkEvent::RefusedByPeer {
            peer: NodeId(2),
            reason: RefuseReason::DuplicateId
        })
    );
    assert!(!second.links().is_linked(NodeId(2)));
    assert!(b.links().is_linked(NodeId(1)) && first.links().is_linked(NodeId(2)));
    assert_eq!(b.protocol().got, vec![(NodeId(1), b"hello".to_vec())]);
}

/// With mutual TLS the transport names the peer before its hello: a hello claiming
/// another id, or credentials the transport refused, fail as a wrong cookie does.
#[test]
fn a_transport_identity_binds_the_hello_and_a_transport_refusal_counts() {
    let mut a = node(1, "c");
    let mut b = node(2, "c");
    let now = Instant::ZERO;
    a.command(now, |_, ctx| ctx.connect(Addr::new("b").unwrap(), None));
    let Some(Transmit::Connect { conn: ca, .. }) = a.poll_transmit() else {
        panic!("a dials")
    };
    let cb = b.handle_accept(now);
    b.handle_transport_identity(cb, NodeId(9));
    a.handle_connected(now, ca);
    while let Some(t) = a.poll_transmit() {
        if let Transmit::Send { frame, .. } = t {
            b.handle_frame(now, cb, &frame);
        }
    }
    assert_eq!(b.stats().auth_failures, 1);
    assert!(link_events(&mut b).contains(&LinkEvent::AuthFailure {
        conn: cb,
        claimed: Some(NodeId(1))
    }));

    let cb = b.handle_accept(now);
    b.handle_transport_refused(now, cb);
    assert_eq!(b.stats().auth_failures, 2);
    assert!(link_events(&mut b).contains(&LinkEvent::AuthFailure {
        conn: cb,
        claimed: None
    }));
}

/// Link v1 only authenticated its frames: the body crossed the wire as it was. Now no
/// frame after the handshake carries the message in the clear.
#[test]
fn data_frames_do_not_carry_the_plaintext() {
    let (mut a, mut b) = (node(1, "c"), node(2, "c"));
    let mut clear = 0;
    pump(&mut a, &mut b, |f| {
        clear += f.windows(5).filter(|w| w == b"hello").count();
    });
    assert_eq!(b.protocol().got, vec![(NodeId(1), b"hello".to_vec())]);
    assert_eq!(clear, 0, "a message crossed the wire in the clear");
}
