//! Picking a free index in a range from a key, the same way on every node.
//!
//! Used where nodes must choose without asking anyone: named VIPs' addresses
//! (`lb::names`) and nodes' overlay subnets (`overlay::alloc`). Keys start at
//! well-spread pseudo-random indexes, so two keys rarely want the same one, and a key's
//! choice depends only on the key and on which indexes are taken, never on the order
//! in which anything was learnt.

/// The `i`-th probe of `key`: FNV-1a (64-bit) over the key and the probe number, then
/// a SplitMix64 finaliser so that close keys spread over the whole range.
pub fn probe(key: &str, i: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(i.to_be_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// How many hashed probes before the linear scan: enough to find a free index with
/// overwhelming likelihood unless the range is nearly full.
const PROBES: u32 = 64;

/// The first index below `size` that `free` accepts, trying `key`'s probes first and
/// then every index in turn from the first probe on (which settles a nearly full
/// range). `None` if none is free (or `size` is 0).
pub fn first_free(key: &str, size: u128, free: impl Fn(u128) -> bool) -> Option<u128> {
    if size == 0 {
        return None;
    }
    let first = u128::from(probe(key, 0)) % size;
    (0..PROBES)
        .map(|i| u128::from(probe(key, i)) % size)
        .find(|&k| free(k))
        .or_else(|| (0..size).map(|k| (first + k) % size).find(|&k| free(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_range_has_nothing_free_and_a_nearly_full_one_is_scanned() {
        assert_eq!(first_free("a", 0, |_| true), None);
        assert_eq!(first_free("a", 100, |_| false), None);
        assert_eq!(first_free("a", 100_000, |k| k == 77), Some(77));
        let k = first_free("a", 1 << 20, |_| true).unwrap();
        assert_eq!(k, u128::from(probe("a", 0)) % (1 << 20));
        assert_ne!(
            first_free("a", 1 << 20, |_| true),
            first_free("b", 1 << 20, |_| true)
        );
    }
}
