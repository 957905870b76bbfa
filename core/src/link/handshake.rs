//! The cryptography of a link: the cookie proof and the per-frame MAC.
//!
//! Modelled on Erlang's distribution handshake, made symmetric and bound to identities:
//!
//! 1. On connect, both ends send a [`Hello`] (link version, node id, listen address, a
//!    fresh 32-byte nonce).
//! 2. On receiving the peer's hello, each end sends a proof: HMAC-SHA256 keyed by the
//!    cookie over a role label and both hellos (initiator's first). The transcript binds
//!    both identities and both nonces, so a proof cannot be replayed on another link or
//!    reflected back at its sender.
//! 3. Each end checks the peer's proof in constant time. Then both derive one session key
//!    per direction from the cookie and the transcript; every data frame carries a 16-byte
//!    MAC over an implicit sequence number and the body. The transport is ordered, so a
//!    replayed, reordered, dropped or injected frame fails the MAC and the link is closed.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::Cookie;
use crate::id::{Addr, NodeId};

type HmacSha256 = Hmac<Sha256>;

/// Version of the link protocol (handshake and sealing). Peers must agree exactly.
pub const LINK_VERSION: u16 = 1;
/// Bytes of MAC appended to every data frame.
pub const TAG_LEN: usize = 16;
/// Bytes of a handshake proof.
pub const PROOF_LEN: usize = 32;

/// The first frame each end of a connection sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub node: NodeId,
    /// Where this node accepts links (so an inbound link can be dialled back later).
    pub addr: Addr,
    pub nonce: [u8; 32],
}

/// Which end of a connection a node is; part of every MAC so no message can be
/// reflected to its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Initiator => b"initiator",
            Role::Responder => b"responder",
        }
    }
}

/// Both hellos as they went over the wire, initiator's first.
pub struct Transcript<'a> {
    pub initiator_hello: &'a [u8],
    pub responder_hello: &'a [u8],
}

impl Transcript<'_> {
    fn mac(&self, cookie: &Cookie, label: &[u8], role: Role) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(cookie.as_bytes()).expect("HMAC accepts keys of any length");
        for part in [b"hawser/link/v1/".as_slice(), label, role.label()] {
            mac.update(part);
        }
        for hello in [self.initiator_hello, self.responder_hello] {
            mac.update(&(hello.len() as u32).to_be_bytes());
            mac.update(hello);
        }
        mac
    }

    /// The proof that the node in `role` holds `cookie`.
    pub fn proof(&self, cookie: &Cookie, role: Role) -> [u8; PROOF_LEN] {
        self.mac(cookie, b"proof", role)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Check the peer's proof in constant time.
    pub fn verify(&self, cookie: &Cookie, peer_role: Role, proof: &[u8]) -> bool {
        self.mac(cookie, b"proof", peer_role)
            .verify_slice(proof)
            .is_ok()
    }

    /// The session keys for the sealer (frames we send) and opener (frames we receive).
    pub fn session(&self, cookie: &Cookie, me: Role) -> (Sealer, Opener) {
        let key = |sender: Role| -> HmacSha256 {
            let k = self.mac(cookie, b"session", sender).finalize().into_bytes();
            HmacSha256::new_from_slice(&k).expect("HMAC accepts keys of any length")
        };
        let peer = match me {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        };
        (
            Sealer {
                key: key(me),
                seq: 0,
            },
            Opener {
                key: key(peer),
                seq: 0,
            },
        )
    }
}

fn tag(key: &HmacSha256, seq: u64, body: &[u8]) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(&seq.to_be_bytes());
    mac.update(body);
    mac
}

/// Appends a MAC to each outgoing frame body.
pub struct Sealer {
    key: HmacSha256,
    seq: u64,
}

impl Sealer {
    /// Seal the concatenation of `parts` (so a caller can prepend a header without
    /// copying the body first).
    pub fn seal(&mut self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = self.key.clone();
        mac.update(&self.seq.to_be_bytes());
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = Vec::with_capacity(len + TAG_LEN);
        for part in parts {
            mac.update(part);
            out.extend_from_slice(part);
        }
        self.seq += 1;
        out.extend_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        out
    }
}

/// Checks the MAC of each incoming frame, in order.
pub struct Opener {
    key: HmacSha256,
    seq: u64,
}

impl Opener {
    /// The body, or `None` if the MAC does not match (forged, replayed or reordered).
    pub fn open<'a>(&mut self, sealed: &'a [u8]) -> Option<&'a [u8]> {
        let split = sealed.len().checked_sub(TAG_LEN)?;
        let (body, t) = sealed.split_at(split);
        tag(&self.key, self.seq, body)
            .verify_truncated_left(t)
            .ok()?;
        self.seq += 1;
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript() -> (Vec<u8>, Vec<u8>) {
        (b"hello-from-a".to_vec(), b"hello-from-b".to_vec())
    }

    #[test]
    fn same_cookie_verifies_and_seals() {
        let cookie = Cookie::new("secret").unwrap();
        let (i, r) = transcript();
        let t = Transcript {
            initiator_hello: &i,
            responder_hello: &r,
        };
        let proof = t.proof(&cookie, Role::Initiator);
        assert!(t.verify(&cookie, Role::Initiator, &proof));
        assert!(
            !t.verify(&cookie, Role::Responder, &proof),
            "a proof cannot be reflected"
        );

        let (mut a_seal, mut a_open) = t.session(&cookie, Role::Initiator);
        let (mut b_seal, mut b_open) = t.session(&cookie, Role::Responder);
        let f1 = a_seal.seal(&[b"one"]);
        let f2 = a_seal.seal(&[b"two"]);
        assert_eq!(b_open.open(&f1), Some(&b"one"[..]));
        assert_eq!(b_open.open(&f1), None, "a replayed frame is refused");
        let back = b_seal.seal(&[b"pong"]);
        assert_eq!(a_open.open(&back), Some(&b"pong"[..]));
        let _ = f2;
    }

    #[test]
    fn wrong_cookie_fails_and_tampering_is_caught() {
        let (i, r) = transcript();
        let t = Transcript {
            initiator_hello: &i,
            responder_hello: &r,
        };
        let good = Cookie::new("secret").unwrap();
        let bad = Cookie::new("guess").unwrap();
        assert!(!t.verify(&good, Role::Initiator, &t.proof(&bad, Role::Initiator)));

        let (mut seal, _) = t.session(&good, Role::Initiator);
        let (_, mut open) = t.session(&good, Role::Responder);
        let mut frame = seal.seal(&[b"payload"]);
        frame[0] ^= 1;
        assert_eq!(open.open(&frame), None);
        assert_eq!(open.open(b"short"), None);
    }
}
