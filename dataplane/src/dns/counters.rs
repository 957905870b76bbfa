//! Running totals of the DNS server, for metrics. Plain numbers: the driver copies them
//! into its metrics after each batch of inputs.

use std::collections::BTreeMap;

use super::message::{Malformed, Transport};

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The cluster zone, from this node's replica.
    Local,
    /// An upstream.
    Forwarded,
    /// The cache of forwarded answers.
    Cached,
    /// This server refused or failed it (overload, no upstream, malformed).
    Error,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Local,
        Source::Forwarded,
        Source::Cached,
        Source::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Forwarded => "forwarded",
            Source::Cached => "cached",
            Source::Error => "error",
        }
    }
}

/// Why an upstream's datagram or message was not taken as an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ignored {
    /// Not from an upstream we asked.
    UnknownSource,
    /// No query in flight with that ID to that upstream (late, duplicate or forged).
    UnknownId,
    /// The right ID with another question, or not a response (forged).
    Mismatch,
    /// Did not decode.
    Undecodable,
}

impl Ignored {
    pub const ALL: [Ignored; 4] = [
        Ignored::UnknownSource,
        Ignored::UnknownId,
        Ignored::Mismatch,
        Ignored::Undecodable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::UnknownSource => "unknown_source",
            Ignored::UnknownId => "unknown_id",
            Ignored::Mismatch => "mismatch",
            Ignored::Undecodable => "undecodable",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsCounters {
    /// Queries answered, by transport, where the answer came from and its rcode.
    pub answered: BTreeMap<(Transport, Source, u16), u64>,
    /// Queries not served, by why.
    pub malformed: BTreeMap<Malformed, u64>,
    /// Queries refused because `max_in_flight` were being forwarded.
    pub overloaded: u64,
    /// Attempts sent to upstreams: first tries, hedges (the next upstream asked because
    /// the first was slow), retries after a failure, probes of an upstream out of
    /// rotation, health checks.
    pub first_tries: u64,
    pub hedges: u64,
    pub retries: u64,
    pub probes: u64,
    /// Health checks at start (see `Forwarder::check_all`).
    pub checks: u64,
    /// Upstream replies not taken, by why.
    pub ignored: BTreeMap<Ignored, u64>,
    /// Upstream replies with an rcode that sends the query on (SERVFAIL, REFUSED, ...).
    pub upstream_errors: u64,
}

impl DnsCounters {
    pub fn answer(&mut self, transport: Transport, source: Source, rcode: u16) {
        *self.answered.entry((transport, source, rcode)).or_default() += 1;
    }

    pub fn malformed(&mut self, why: Malformed) {
        *self.malformed.entry(why).or_default() += 1;
    }

    pub fn ignore(&mut self, why: Ignored) {
        *self.ignored.entry(why).or_default() += 1;
    }

    /// Answers from `source`, over both transports and every rcode.
    pub fn answered_from(&self, source: Source) -> u64 {
        self.answered
            .iter()
            .filter(|((_, s, _), _)| *s == source)
            .map(|(_, n)| n)
            .sum()
    }
}
