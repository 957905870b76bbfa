//! A bounded cache of forwarded answers that honours their TTLs.
//!
//! - Positive answers live for the smallest TTL among their answer records; negative
//!   ones (NXDOMAIN, or NOERROR with no answer) for the smaller of the SOA's TTL and its
//!   MINIMUM field, when the authority section carries the SOA, and are not cached
//!   otherwise (RFC 2308 §5). Never longer than `cache_max_ttl`.
//! - Served answers count their TTLs down by the time they spent here.
//! - Truncated answers and errors are not cached.
//! - At most `cache_entries`; when full, the oldest insertion goes first.
//!
//! The map is keyed by the question (names compare case-insensitively) plus the DO and
//! CD bits, which change what an upstream returns.

use std::collections::{HashMap, VecDeque};

use hawser_core::time::Instant;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;

use super::message::Question;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub question: Question,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

#[derive(Debug)]
struct Entry {
    reply: Message,
    stored: Instant,
    ttl: u32,
    generation: u64,
}

#[derive(Debug)]
pub struct Cache {
    capacity: usize,
    max_ttl: u32,
    // Looked up, never iterated into an output: a hash map is fine here, and its
    // per-process random keys keep crafted names from colliding on purpose.
    entries: HashMap<Key, Entry>,
    /// Insertion order, for eviction; may hold stale (key, generation) pairs.
    order: VecDeque<(Key, u64)>,
    generation: u64,
}

impl Cache {
    pub fn new(capacity: usize, max_ttl: u32) -> Cache {
        Cache {
            capacity,
            max_ttl,
            entries: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// A fresh copy of the cached answer, its TTLs counted down, if one is still alive.
    pub fn get(&mut self, now: Instant, key: &Key) -> Option<Message> {
        let entry = self.entries.get(key)?;
        let age = now.saturating_since(entry.stored).as_millis() / 1000;
        if age >= u64::from(entry.ttl) {
            self.entries.remove(key);
            return None;
        }
        let mut reply = entry.reply.clone();
        let age = age as u32;
        for r in reply
            .answers
            .iter_mut()
            .chain(reply.authorities.iter_mut())
            .chain(reply.additionals.iter_mut())
        {
            r.ttl = r.ttl.saturating_sub(age);
        }
        Some(reply)
    }

    /// Keep `reply` for `key`, if it may be cached.
    pub fn insert(&mut self, now: Instant, key: Key, reply: &Message) {
        if self.capacity == 0 || reply.metadata.truncation {
            return;
        }
        let Some(ttl) = lifetime(reply) else {
            return;
        };
        let ttl = ttl.min(self.max_ttl);
        if ttl == 0 {
            return;
        }
        // A replacement frees its own place.
        self.entries.remove(&key);
        while self.entries.len() >= self.capacity {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&old)
                .is_some_and(|e| e.generation == generation)
            {
                self.entries.remove(&old);
            }
        }
        self.generation += 1;
        let mut stored = reply.clone();
        stored.metadata.id = 0;
        self.order.push_back((key.clone(), self.generation));
        self.entries.insert(
            key,
            Entry {
                reply: stored,
                stored: now,
                ttl,
                generation: self.generation,
            },
        );
        // Replacements leave stale pairs behind; keep the queue within twice the map.
        if self.order.len() > 2 * self.capacity.max(16) {
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).is_some_and(|e| e.generation == *g));
        }
    }
}

/// How long an answer may be cached (RFC 2308 for negative ones); `None` if never.
fn lifetime(reply: &Message) -> Option<u32> {
    match reply.metadata.response_code {
        ResponseCode::NoError if !reply.answers.is_empty() => {
            reply.answers.iter().map(|r| r.ttl).min()
        }
        ResponseCode::NoError | ResponseCode::NXDomain => {
            reply.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawser_core::time::Duration;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

    fn key(name: &str) -> Key {
        Key {
            question: Question {
                name: Name::from_ascii(name).unwrap(),
                qtype: RecordType::A,
                qclass: DNSClass::IN,
            },
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    fn positive(ttls: &[u32]) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        let n = Name::from_ascii("a.example.").unwrap();
        for &t in ttls {
            m.add_answer(Record::from_rdata(
                n.clone(),
                t,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        }
        m
    }

    fn negative(rcode: ResponseCode, soa_ttl: u32, minimum: u32) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        let n = Name::from_ascii("example.").unwrap();
        let soa = SOA::new(n.clone(), n.clone(), 1, 60, 60, 60, minimum);
        m.add_authority(Record::from_rdata(n, soa_ttl, RData::SOA(soa)));
        m
    }

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn answers_live_for_their_smallest_ttl_counted_down() {
        let mut c = Cache::new(10, 3600);
        c.insert(at(0), key("a.example."), &positive(&[30, 10]));
        let hit = c.get(at(4), &key("A.EXAMPLE.")).unwrap();
        assert_eq!(
            hit.answers.iter().map(|r| r.ttl).collect::<Vec<_>>(),
            [26, 6]
        );
        assert_eq!(hit.metadata.id, 0);
        assert!(c.get(at(10), &key("a.example.")).is_none());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn negative_answers_follow_rfc_2308() {
        let mut c = Cache::new(10, 3600);
        c.insert(
            at(0),
            key("n.example."),
            &negative(ResponseCode::NXDomain, 300, 5),
        );
        assert!(c.get(at(4), &key("n.example.")).is_some());
        assert!(c.get(at(5), &key("n.example.")).is_none());
        // No SOA: not cached. SERVFAIL: never. Truncated: never.
        let mut bare = negative(ResponseCode::NXDomain, 300, 5);
        bare.authorities.clear();
        c.insert(at(0), key("b.example."), &bare);
        c.insert(
            at(0),
            key("s.example."),
            &negative(ResponseCode::ServFail, 300, 300),
        );
        let mut tc = positive(&[30]);
        tc.metadata.truncation = true;
        c.insert(at(0), key("t.example."), &tc);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn the_cache_is_bounded_and_capped() {
        let mut c = Cache::new(3, 20);
        for i in 0..100 {
            c.insert(at(0), key(&format!("n{i}.example.")), &positive(&[3000]));
            // Replacing one key again and again must not grow anything either.
            c.insert(at(0), key("same.example."), &positive(&[3000]));
        }
        assert_eq!(c.len(), 3);
        assert!(c.order.len() <= 2 * 16);
        assert!(c.get(at(19), &key("same.example.")).is_some());
        assert!(c.get(at(20), &key("same.example.")).is_none());
        let mut off = Cache::new(0, 20);
        off.insert(at(0), key("a.example."), &positive(&[30]));
        assert_eq!(off.len(), 0);
    }
}
