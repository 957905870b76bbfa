use core::fmt;

/// The cluster's shared secret. Like Erlang's distribution cookie, a node proves it holds
/// the cookie without ever sending it; two nodes with different cookies cannot link.
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(Vec<u8>);

impl Cookie {
    /// `None` for an empty secret: an empty cookie would authenticate nothing.
    pub fn new(secret: impl Into<Vec<u8>>) -> Option<Cookie> {
        let secret = secret.into();
        (!secret.is_empty()).then_some(Cookie(secret))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Never print a secret, not even in a debug log.
impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(..)")
    }
}
