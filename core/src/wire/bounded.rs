//! A sequence whose length is bounded while it is decoded: a forged length prefix is
//! refused before anything is allocated for it, and the `N+1`-th item before it is
//! stored. Every collection a protocol decodes from a peer is one (membership's shuffle
//! samples, global membership's entries and digests).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// At most `N` items of `T`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bounded<T, const N: usize>(pub Vec<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Bounded<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(BoundedVisitor::<T, N>(PhantomData))
            .map(Bounded)
    }
}

struct BoundedVisitor<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVisitor<T, N> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of at most {N} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        use serde::de::Error;
        let hint = seq.size_hint().unwrap_or(0);
        if hint > N {
            return Err(A::Error::invalid_length(hint, &self));
        }
        let mut items = Vec::with_capacity(hint);
        while let Some(item) = seq.next_element()? {
            if items.len() == N {
                return Err(A::Error::invalid_length(N + 1, &self));
            }
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    #[test]
    fn longer_than_the_bound_is_refused() {
        let ok: Bounded<u8, 3> = wire::decode(&wire::encode(&vec![1u8, 2, 3])).unwrap();
        assert_eq!(ok.0, [1, 2, 3]);
        assert!(wire::decode::<Bounded<u8, 3>>(&wire::encode(&vec![1u8, 2, 3, 4])).is_err());
        // A varint length of u64::MAX with no items behind it.
        let forged = [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(wire::decode::<Bounded<u8, 3>>(&forged).is_err());
    }
}
