//! The one source of randomness a node has.
//!
//! Every random choice a protocol makes (nonces, jitter, peer sampling) is drawn from a
//! ChaCha stream seeded by the driver, so the simulator can replay a run bit for bit.
//! A real agent seeds it from the OS once, at start, with 32 bytes; that is the only
//! entropy it reads, and the link handshake's ephemeral keys are drawn from it too.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::time::Duration;

/// Derive an independent seed from `seed` and a `salt` (splitmix64), so one run seed
/// can feed many streams (each node, each restart, the network) that do not correlate.
pub fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a node's RNG starts from: a `u64` in the simulator and tests (a run seed mixed
/// per node), or a full 256-bit key from the OS in a real agent, whose ephemeral link
/// keys must not be guessable from a 64-bit seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RngSeed {
    U64(u64),
    Key([u8; 32]),
}

impl From<u64> for RngSeed {
    fn from(seed: u64) -> RngSeed {
        RngSeed::U64(seed)
    }
}

impl From<[u8; 32]> for RngSeed {
    fn from(key: [u8; 32]) -> RngSeed {
        RngSeed::Key(key)
    }
}

/// A node's deterministic random stream.
pub struct NodeRng(ChaCha8Rng);

impl NodeRng {
    pub fn from_seed(seed: impl Into<RngSeed>) -> NodeRng {
        NodeRng(match seed.into() {
            RngSeed::U64(seed) => ChaCha8Rng::seed_from_u64(seed),
            RngSeed::Key(key) => ChaCha8Rng::from_seed(key),
        })
    }

    /// A uniformly random integer in `[low, high)`; `low` when the range is empty.
    pub fn below(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            low
        } else {
            self.0.random_range(low..high)
        }
    }

    /// A uniformly random index into a collection of `len` items (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(0, len as u64) as usize
    }

    /// `base` plus a uniform jitter in `[0, spread)`. Protocols use this for every
    /// periodic timer, so that a thousand nodes started together do not fire together.
    pub fn jitter(&mut self, base: Duration, spread: Duration) -> Duration {
        base + Duration::from_nanos(self.below(0, spread.as_nanos()))
    }

    /// True with probability `p` (clamped to [0, 1]).
    pub fn chance(&mut self, p: f64) -> bool {
        self.0.random::<f64>() < p
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf)
    }

    /// Shuffle a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

/// The node's stream under the `rand_core` 0.6 traits, which the SPAKE2 crate takes its
/// ephemeral scalar from. ChaCha is a cryptographic generator; the marker says so.
pub(crate) struct CryptoRng06<'a>(pub &'a mut NodeRng);

impl rand_core_06::RngCore for CryptoRng06<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        self.0.0.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core_06::CryptoRng for CryptoRng06<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (NodeRng::from_seed(9), NodeRng::from_seed(9));
        let xs: Vec<u64> = (0..8).map(|_| a.u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(
            xs,
            (0..8)
                .map(|_| NodeRng::from_seed(10).u64())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn ranges_are_respected() {
        let mut r = NodeRng::from_seed(1);
        for _ in 0..1000 {
            let x = r.below(10, 20);
            assert!((10..20).contains(&x));
        }
        assert_eq!(r.below(5, 5), 5);
    }
}
