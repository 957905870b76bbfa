use core::fmt;

/// Why a byte string is not a valid frame. Every decoder in hawser returns one of these
/// instead of panicking; the node counts it (`decode_errors`) and drops the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than a header, or than the header's declared length.
    Truncated { needed: usize, have: usize },
    /// The first two bytes are not `HW`: not a hawser peer at all.
    BadMagic([u8; 2]),
    /// A frame format this build does not speak.
    UnsupportedVersion(u8),
    /// A frame kind this build does not know.
    UnknownKind(u8),
    /// The header declares a payload larger than this node accepts.
    TooLarge { len: usize, max: usize },
    /// Bytes after the declared payload.
    TrailingBytes { extra: usize },
    /// The payload does not decode as the message its kind promises.
    Payload(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { needed, have } => {
                write!(f, "truncated frame: need {needed} bytes, have {have}")
            }
            WireError::BadMagic(m) => write!(f, "not a hawser frame (magic {m:02x?})"),
            WireError::UnsupportedVersion(v) => write!(f, "unsupported frame version {v}"),
            WireError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            WireError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            WireError::TrailingBytes { extra } => write!(f, "{extra} unexpected trailing bytes"),
            WireError::Payload(why) => write!(f, "malformed payload: {why}"),
        }
    }
}

impl std::error::Error for WireError {}
