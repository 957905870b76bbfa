//! The only entropy a real node reads.

use std::fmt;

/// The OS would not give randomness (no `getrandom` syscall, no `/dev/urandom`).
#[derive(Debug)]
pub struct SeedError(getrandom::Error);

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read OS randomness: {}", self.0)
    }
}

impl std::error::Error for SeedError {}

/// 256 bits from the OS. A node's link handshakes draw their ephemeral keys from the RNG
/// this seeds, so it must not be a 64-bit seed.
pub fn os_seed() -> Result<[u8; 32], SeedError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(SeedError)?;
    Ok(key)
}
