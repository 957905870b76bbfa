use super::WireError;

/// The first two bytes of every frame.
pub const MAGIC: [u8; 2] = *b"HW";
/// The frame format this build speaks. Bumped only for incompatible header changes.
pub const FRAME_VERSION: u8 = 1;
/// Header: magic (2) + version (1) + kind (1) + payload length (4, big-endian).
pub const HEADER_LEN: usize = 8;
/// No configuration may set the frame limit below this: a handshake must always fit.
pub const MIN_MAX_FRAME: usize = 1024;

/// What a frame carries. The link layer owns `Hello`, `Proof` and `Refuse`; `Data`
/// carries a protocol message sealed with the link's session key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    Hello = 1,
    Proof = 2,
    Data = 3,
    /// Sent instead of data on a link the sender will not keep, sealed, with the reason
    /// (a [`RefuseReason`](crate::link::RefuseReason)), so the refused end can say why.
    Refuse = 4,
}

impl FrameKind {
    fn from_u8(b: u8) -> Result<FrameKind, WireError> {
        match b {
            1 => Ok(FrameKind::Hello),
            2 => Ok(FrameKind::Proof),
            3 => Ok(FrameKind::Data),
            4 => Ok(FrameKind::Refuse),
            other => Err(WireError::UnknownKind(other)),
        }
    }
}

/// A decoded frame, borrowing its payload from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: FrameKind,
    pub payload: &'a [u8],
}

/// Build a frame. The caller guarantees `payload.len()` is within its frame limit; the
/// length is checked again by the receiver, which is the side that must distrust it.
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("payloads are bounded far below 4 GiB");
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(FRAME_VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Validate a header and return the frame's kind and payload length. A stream driver
/// calls this on the first [`HEADER_LEN`] bytes to learn how much more to read — and
/// refuses an oversize frame before allocating for it.
pub fn decode_header(bytes: &[u8], max_payload: usize) -> Result<(FrameKind, usize), WireError> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(WireError::Truncated {
            needed: HEADER_LEN,
            have: bytes.len(),
        });
    };
    if header[..2] != MAGIC {
        return Err(WireError::BadMagic([header[0], header[1]]));
    }
    if header[2] != FRAME_VERSION {
        return Err(WireError::UnsupportedVersion(header[2]));
    }
    let kind = FrameKind::from_u8(header[3])?;
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > max_payload {
        return Err(WireError::TooLarge {
            len,
            max: max_payload,
        });
    }
    Ok((kind, len))
}

/// Decode exactly one frame from `bytes` (no more, no less).
pub fn decode_frame(bytes: &[u8], max_payload: usize) -> Result<Frame<'_>, WireError> {
    let (kind, len) = decode_header(bytes, max_payload)?;
    let body = &bytes[HEADER_LEN..];
    match body.len().cmp(&len) {
        core::cmp::Ordering::Less => Err(WireError::Truncated {
            needed: HEADER_LEN + len,
            have: bytes.len(),
        }),
        core::cmp::Ordering::Greater => Err(WireError::TrailingBytes {
            extra: body.len() - len,
        }),
        core::cmp::Ordering::Equal => Ok(Frame {
            kind,
            payload: body,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 16;

    #[test]
    fn round_trips() {
        let bytes = encode_frame(FrameKind::Data, b"hello");
        let frame = decode_frame(&bytes, MAX).unwrap();
        assert_eq!(
            frame,
            Frame {
                kind: FrameKind::Data,
                payload: b"hello"
            }
        );
    }

    #[test]
    fn refuses_oversize_before_reading_the_body() {
        let mut header = encode_frame(FrameKind::Data, &[]);
        header[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode_header(&header, MAX),
            Err(WireError::TooLarge {
                len: u32::MAX as usize,
                max: MAX
            })
        );
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(
            decode_frame(b"XX\x01\x03\0\0\0\0", MAX),
            Err(WireError::BadMagic(*b"XX"))
        );
        assert_eq!(
            decode_frame(b"HW\x09\x03\0\0\0\0", MAX),
            Err(WireError::UnsupportedVersion(9))
        );
        assert_eq!(
            decode_frame(b"HW\x01\x63\0\0\0\0", MAX),
            Err(WireError::UnknownKind(0x63))
        );
        assert_eq!(
            decode_frame(b"HW\x01\x03\0\0\0\x02a", MAX),
            Err(WireError::Truncated {
                needed: 10,
                have: 9
            })
        );
        assert_eq!(
            decode_frame(b"HW\x01\x03\0\0\0\0a", MAX),
            Err(WireError::TrailingBytes { extra: 1 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_frame(&bytes, MAX);
        }

        #[test]
        fn every_truncation_of_a_valid_frame_is_an_error(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = encode_frame(FrameKind::Hello, &payload);
            let cut = cut.index(bytes.len());
            prop_assert!(decode_frame(&bytes[..cut], MAX).is_err());
            prop_assert_eq!(decode_frame(&bytes, MAX).unwrap().payload, &payload[..]);
        }
    }
}
