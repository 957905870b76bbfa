//! The wire format: every byte a node sends or receives goes through here.
//!
//! A frame is an 8-byte header — magic `HW`, format version, kind, payload length (u32,
//! big-endian) — and then the payload. One function, [`decode_frame`], turns untrusted
//! bytes into a frame; it never panics and never allocates (the payload is borrowed), and
//! it refuses any frame longer than the configured maximum before a driver has read it,
//! so a hostile length prefix cannot make a node reserve memory.
//!
//! Payloads that carry structure are bincode ([`encode`], [`decode`]) with the same bound.

mod bounded;
mod error;
mod frame;

pub use bounded::Bounded;
pub use error::WireError;
pub use frame::{
    FRAME_VERSION, Frame, FrameKind, HEADER_LEN, MAGIC, MIN_MAX_FRAME, decode_frame, decode_header,
    encode_frame,
};

use serde::{Serialize, de::DeserializeOwned};

/// Encode a value with bincode's standard configuration (varint integers).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("serialising a plain in-memory value into a Vec cannot fail")
}

/// Decode a value from untrusted bytes: bounded by the input length (bincode never
/// allocates more than the bytes could describe, with the limit below as a hard cap), and
/// every byte must be used — trailing garbage is an error, not silently ignored.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    const LIMIT: usize = 64 << 20;
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (value, used) = bincode::serde::decode_from_slice(bytes, config)
        .map_err(|e| WireError::Payload(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}
