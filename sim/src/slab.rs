//! A slab of connections: O(1) lookup by key, slots reused, and a generation in every key
//! so an event for a connection that is gone can never reach the one now in its slot.

use std::ops::Index;

pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
}

/// `generation << 32 | slot`.
fn split(key: u64) -> (u32, usize) {
    ((key >> 32) as u32, (key & 0xFFFF_FFFF) as usize)
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> u64 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.0 = entry.0.wrapping_add(1);
        entry.1 = Some(value);
        (u64::from(entry.0) << 32) | u64::from(slot)
    }

    pub(crate) fn get(&self, key: &u64) -> Option<&T> {
        let (generation, slot) = split(*key);
        match self.slots.get(slot) {
            Some((g, Some(v))) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: &u64) -> Option<&mut T> {
        let (generation, slot) = split(*key);
        match self.slots.get_mut(slot) {
            Some((g, Some(v))) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: &u64) -> Option<T> {
        let (generation, slot) = split(*key);
        match self.slots.get_mut(slot) {
            Some((g, v @ Some(_))) if *g == generation => {
                self.free.push(slot as u32);
                v.take()
            }
            _ => None,
        }
    }
}

impl<T> Index<&u64> for Slab<T> {
    type Output = T;
    fn index(&self, key: &u64) -> &T {
        self.get(key).expect("a live key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_miss_after_reuse() {
        let mut s = Slab::new();
        let a = s.insert("a");
        assert_eq!(s.remove(&a), Some("a"));
        let b = s.insert("b");
        assert_ne!(a, b, "the slot is reused under a new generation");
        assert_eq!(s.get(&a), None);
        assert_eq!(s[&b], "b");
    }
}
