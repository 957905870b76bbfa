//! Decoding a [`MapStore`] with its nesting bounded.
//!
//! Ops and JSON are checked against [`MAX_DEPTH`] as they are parsed, but a peer's delta
//! or anti-entropy value arrives as a bincode-encoded store, and a derived decoder
//! recurses once per nested map with no limit: a few bytes per level, so a small value
//! could overflow the stack and abort the process. This decoder carries the depth down
//! (a [`DeserializeSeed`] per level) and refuses a store below `MAX_DEPTH` levels before
//! reading it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Field, MapStore};
use crate::crdt::MAX_DEPTH;

impl<'de> Deserialize<'de> for MapStore {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MapStore, D::Error> {
        StoreAt(0).deserialize(d)
    }
}

/// A store this many levels below the top-level map.
struct StoreAt(usize);

impl<'de> DeserializeSeed<'de> for StoreAt {
    type Value = MapStore;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<MapStore, D::Error> {
        if self.0 > MAX_DEPTH {
            return Err(de::Error::custom(format_args!(
                "maps nested deeper than {MAX_DEPTH}"
            )));
        }
        const FIELDS: &[&str] = &["counters", "sets", "registers", "flags", "maps"];
        d.deserialize_struct("MapStore", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for StoreAt {
    type Value = MapStore;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map store: counters, sets, registers, flags, maps")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MapStore, A::Error> {
        let missing = |i| de::Error::invalid_length(i, &"five collections");
        Ok(MapStore {
            counters: seq.next_element()?.ok_or_else(|| missing(0))?,
            sets: seq.next_element()?.ok_or_else(|| missing(1))?,
            registers: seq.next_element()?.ok_or_else(|| missing(2))?,
            flags: seq.next_element()?.ok_or_else(|| missing(3))?,
            maps: seq
                .next_element_seed(MapsAt(self.0 + 1))?
                .ok_or_else(|| missing(4))?,
        })
    }
}

/// A store's nested maps, whose own stores are this many levels down.
struct MapsAt(usize);

impl<'de> DeserializeSeed<'de> for MapsAt {
    type Value = BTreeMap<String, Field<MapStore>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapsAt {
    type Value = BTreeMap<String, Field<MapStore>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nested maps by name")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut maps = BTreeMap::new();
        while let Some(name) = access.next_key::<String>()? {
            let field = access.next_value_seed(FieldAt(self.0))?;
            maps.insert(name, field);
        }
        Ok(maps)
    }
}

/// One nested map field: its dots, and its store this many levels down.
struct FieldAt(usize);

impl<'de> DeserializeSeed<'de> for FieldAt {
    type Value = Field<MapStore>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_struct("Field", &["dots", "store"], self)
    }
}

impl<'de> Visitor<'de> for FieldAt {
    type Value = Field<MapStore>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map field: dots and a store")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let missing = |i| de::Error::invalid_length(i, &"dots and a store");
        Ok(Field {
            dots: seq.next_element()?.ok_or_else(|| missing(0))?,
            store: seq
                .next_element_seed(StoreAt(self.0))?
                .ok_or_else(|| missing(1))?,
        })
    }
}
