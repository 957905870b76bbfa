//! Entry points for fuzzing, shared by the cargo-fuzz targets in `fuzz/` and by the
//! stable test that replays their corpus, so both exercise exactly the same code.
//!
//! Each function takes arbitrary bytes and must never panic; it asserts the properties a
//! decoder promises (round trips, no state from garbage).

use crate::link::{Cookie, LinkConfig, Transmit};
use crate::node::{Identity, Node};
use crate::protocol::{Ctx, Protocol};
use crate::time::Instant;
use crate::wire::{self, HEADER_LEN, WireError};
use crate::{Addr, Name, NodeId};

/// A protocol that does nothing: the fuzzer targets the layers beneath it.
struct Inert;

impl Protocol for Inert {
    type Timer = ();
    type Event = ();
    fn start(&mut self, _ctx: &mut Ctx<'_, (), ()>) {}
    fn message(
        &mut self,
        _from: NodeId,
        _body: &[u8],
        _ctx: &mut Ctx<'_, (), ()>,
    ) -> Result<(), WireError> {
        Ok(())
    }
    fn timer(&mut self, _timer: (), _ctx: &mut Ctx<'_, (), ()>) {}
}

/// Untrusted bytes as a frame, and as everything an unauthenticated peer can send on an
/// inbound connection: the frame decoder and the handshake must refuse it without
/// panicking, and a peer that does not hold the cookie must never become a link.
pub fn link_input(data: &[u8]) {
    const MAX: usize = 64 << 10;
    if let Ok(frame) = wire::decode_frame(data, MAX) {
        assert_eq!(
            wire::encode_frame(frame.kind, frame.payload),
            data,
            "frames round-trip"
        );
    }

    let identity = Identity {
        id: NodeId(1),
        name: Name::new("fuzz-target").expect("valid"),
        addr: Addr::new("fuzz-target").expect("valid"),
        cookie: Cookie::new("fuzz-cookie").expect("valid"),
    };
    let config = LinkConfig {
        max_frame: MAX,
        ..LinkConfig::default()
    };
    let mut node = Node::new(config, identity, 0, Inert).expect("valid config");
    let now = Instant::ZERO;
    node.handle_start(now);
    let conn = node.handle_accept(now);
    // Split the input as a stream driver would: header, then the declared length.
    let mut rest = data;
    while rest.len() >= HEADER_LEN {
        let len = match wire::decode_header(rest, MAX) {
            Ok((_, len)) => len,
            Err(_) => HEADER_LEN.min(rest.len()),
        };
        let take = (HEADER_LEN + len).min(rest.len());
        node.handle_frame(now, conn, &rest[..take]);
        rest = &rest[take..];
    }
    assert_eq!(node.links().peers().count(), 0, "no cookie, no link");
    while let Some(t) = node.poll_transmit() {
        if let Transmit::Send { frame, .. } = t {
            assert!(
                wire::decode_frame(&frame, MAX).is_ok(),
                "we only send valid frames"
            );
        }
    }
}

/// Untrusted bytes as a membership message (what an authenticated but buggy or hostile
/// peer could send): refused with an error, or decoded into a message that re-encodes
/// to something that decodes to the same message.
pub fn membership_message(data: &[u8]) {
    if let Ok(msg) = crate::membership::Message::decode(data) {
        let again =
            crate::membership::Message::decode(&msg.encode()).expect("our own encoding decodes");
        assert_eq!(again, msg);
    }
}

/// Untrusted bytes as a KV message from a peer: same promise.
pub fn kv_message(data: &[u8]) {
    const MAX_KEY: usize = 256;
    if let Ok(msg) = crate::kv::KvMessage::decode(data, MAX_KEY) {
        let again =
            crate::kv::KvMessage::decode(&msg.encode(), MAX_KEY).expect("our own encoding decodes");
        assert_eq!(again, msg);
    }
}

/// Untrusted bytes as a global-membership message from a peer: same promise.
pub fn gm_message(data: &[u8]) {
    if let Ok(msg) = crate::gm::GmMessage::decode(data) {
        let again = crate::gm::GmMessage::decode(&msg.encode()).expect("our own encoding decodes");
        assert_eq!(again, msg);
    }
}

/// Untrusted bytes as a multicast packet from a peer: same promise.
pub fn multicast_packet(data: &[u8]) {
    if let Ok(p) = crate::multicast::Packet::decode(data) {
        let again =
            crate::multicast::Packet::decode(&p.encode()).expect("our own encoding decodes");
        assert_eq!(again, p);
    }
}

/// Untrusted bytes as a KV value (a delta or an anti-entropy entry, nested to any
/// depth): refused with an error — never a stack overflow — or a value that re-encodes
/// to the same bytes' meaning, whose JSON form can be produced.
pub fn kv_value(data: &[u8]) {
    if let Ok(map) = wire::decode::<crate::crdt::Map>(data) {
        let again: crate::crdt::Map =
            wire::decode(&wire::encode(&map)).expect("our own encoding decodes");
        assert_eq!(again, map);
        let _ = map.to_json();
    }
}

/// Untrusted bytes as a KV op in JSON (what `POST /v1/kv/{key}` and scenario files
/// carry): a typed error, or an op whose JSON form parses back to the same op.
pub fn kv_op_json(data: &[u8]) {
    if let Ok(op) = crate::crdt::MapOp::from_json_slice(data) {
        let again = crate::crdt::MapOp::from_json(&op.to_json()).expect("our own JSON parses");
        assert_eq!(again, op);
    }
}
