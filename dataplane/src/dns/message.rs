//! DNS messages in and out: what a query must look like to be served, and the replies
//! this server writes (answers, errors, truncation to the client's size).
//!
//! A query is checked before hickory decodes it: at least a header, not a response, a
//! standard query, exactly one question. Only then is it decoded (so a datagram that
//! claims 65,535 questions costs nothing), and any decoding error (a truncated name, a
//! compression-pointer loop, two OPT records) becomes FORMERR with the query's ID.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

/// Bytes of a DNS header.
pub const HEADER: usize = 12;
/// The UDP size a client without EDNS can take (RFC 1035).
pub const CLASSIC_UDP: usize = 512;

/// An rcode as dig spells it (`NOERROR`, `NXDOMAIN`, ...), or its number.
pub fn rcode_name(rcode: u16) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        16 => "BADVERS".into(),
        n => n.to_string(),
    }
}

/// How a query arrived, and how its answer leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// The one question of a query.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
    pub qclass: DNSClass,
}

impl Question {
    /// The same question, case aside (answers are matched and cached this way).
    pub fn same(&self, other: &Question) -> bool {
        self.qtype == other.qtype && self.qclass == other.qclass && self.name == other.name
    }
}

/// A query this server will serve.
#[derive(Clone, Debug)]
pub struct Request {
    pub message: Message,
    pub question: Question,
}

impl Request {
    pub fn id(&self) -> u16 {
        self.message.metadata.id
    }

    /// The client set the DNSSEC OK bit.
    pub fn dnssec_ok(&self) -> bool {
        self.message
            .edns
            .as_ref()
            .is_some_and(|e| e.flags().dnssec_ok)
    }

    /// The largest reply the client takes over `transport`, within what we offer.
    pub fn limit(&self, transport: Transport, offered: u16) -> usize {
        match transport {
            Transport::Tcp => u16::MAX as usize,
            Transport::Udp => match &self.message.edns {
                Some(e) => (e.max_payload().min(offered) as usize).max(CLASSIC_UDP),
                None => CLASSIC_UDP,
            },
        }
    }
}

/// Why a datagram or TCP message was not served as a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Malformed {
    /// Shorter than a header: nothing to reply to (dropped).
    TooShort,
    /// A response, not a query (dropped: replying could start a loop).
    NotAQuery,
    /// An opcode other than QUERY (NOTIMP).
    Opcode,
    /// Not exactly one question (FORMERR).
    QuestionCount,
    /// Did not decode (FORMERR).
    Undecodable,
    /// EDNS version other than 0 (BADVERS).
    EdnsVersion,
}

impl Malformed {
    pub const ALL: [Malformed; 6] = [
        Malformed::TooShort,
        Malformed::NotAQuery,
        Malformed::Opcode,
        Malformed::QuestionCount,
        Malformed::Undecodable,
        Malformed::EdnsVersion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::TooShort => "too_short",
            Malformed::NotAQuery => "not_a_query",
            Malformed::Opcode => "opcode",
            Malformed::QuestionCount => "question_count",
            Malformed::Undecodable => "undecodable",
            Malformed::EdnsVersion => "edns_version",
        }
    }
}

/// A query that is not served: why, and the error reply to send, if any.
#[derive(Debug)]
pub struct Refusal {
    pub why: Malformed,
    pub reply: Option<Vec<u8>>,
}

/// Check and decode a query.
pub fn parse_request(bytes: &[u8], offered: u16) -> Result<Request, Refusal> {
    if bytes.len() < HEADER {
        return Err(Refusal {
            why: Malformed::TooShort,
            reply: None,
        });
    }
    if bytes[2] & 0x80 != 0 {
        return Err(Refusal {
            why: Malformed::NotAQuery,
            reply: None,
        });
    }
    let refuse = |why, rcode| {
        Err(Refusal {
            why,
            reply: Some(raw_error(bytes, rcode)),
        })
    };
    if (bytes[2] >> 3) & 0x0f != 0 {
        return refuse(Malformed::Opcode, ResponseCode::NotImp);
    }
    if u16::from_be_bytes([bytes[4], bytes[5]]) != 1 {
        return refuse(Malformed::QuestionCount, ResponseCode::FormErr);
    }
    let Ok(message) = Message::from_vec(bytes) else {
        return refuse(Malformed::Undecodable, ResponseCode::FormErr);
    };
    let Some(q) = message.queries.first() else {
        return refuse(Malformed::Undecodable, ResponseCode::FormErr);
    };
    let question = Question {
        name: q.name().clone(),
        qtype: q.query_type(),
        qclass: q.query_class(),
    };
    let request = Request { message, question };
    if request
        .message
        .edns
        .as_ref()
        .is_some_and(|e| e.version() != 0)
    {
        let reply = reply_to(&request, ResponseCode::BADVERS, offered);
        return Err(Refusal {
            why: Malformed::EdnsVersion,
            reply: Some(encode(&reply, u16::MAX as usize)),
        });
    }
    Ok(request)
}

/// An error reply built from a header alone (the rest may not decode): same ID, opcode
/// and RD, no question.
fn raw_error(query: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut reply = vec![0u8; HEADER];
    reply[0..2].copy_from_slice(&query[0..2]);
    // QR, the query's opcode and RD.
    reply[2] = 0x80 | (query[2] & 0x79);
    // RA, and the rcode's low bits.
    reply[3] = 0x80 | rcode.low();
    reply
}

/// The skeleton of a reply to `request`: its ID, opcode, RD and CD, the question, EDNS
/// if the client used it, RA set (this server resolves through its upstreams).
pub fn reply_to(request: &Request, rcode: ResponseCode, offered: u16) -> Message {
    let q = &request.message;
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.checking_disabled = q.metadata.checking_disabled;
    m.metadata.recursion_available = true;
    m.metadata.response_code = rcode;
    m.add_query(Query::query(
        request.question.name.clone(),
        request.question.qtype,
    ));
    if let Some(e) = &q.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(offered.max(CLASSIC_UDP as u16));
        edns.set_dnssec_ok(e.flags().dnssec_ok);
        m.set_edns(edns);
    }
    m
}

/// An answer from this server's own data.
pub fn answer(
    request: &Request,
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    offered: u16,
) -> Message {
    let mut m = reply_to(request, rcode, offered);
    m.metadata.authoritative = true;
    m.insert_answers(answers);
    m.insert_authorities(authorities);
    m
}

/// Encode a reply for a client that takes at most `limit` bytes; a larger one goes as
/// header, question and OPT with TC set, and the client asks again over TCP.
pub fn encode(reply: &Message, limit: usize) -> Vec<u8> {
    match reply.to_vec() {
        Ok(bytes) if bytes.len() <= limit => bytes,
        Ok(_) => truncated(reply),
        Err(_) => {
            let mut failed = Message::new(reply.metadata.id, MessageType::Response, OpCode::Query);
            failed.metadata = reply.metadata;
            failed.metadata.response_code = ResponseCode::ServFail;
            failed.add_queries(reply.queries.iter().cloned());
            failed.to_vec().unwrap_or_default()
        }
    }
}

fn truncated(reply: &Message) -> Vec<u8> {
    let mut m = Message::new(reply.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata = reply.metadata;
    m.metadata.truncation = true;
    m.add_queries(reply.queries.iter().cloned());
    if let Some(e) = &reply.edns {
        m.set_edns(e.clone());
    }
    m.to_vec().unwrap_or_default()
}

/// Put `id` in an encoded message's header.
pub fn set_id(bytes: &mut [u8], id: u16) {
    if bytes.len() >= 2 {
        bytes[0..2].copy_from_slice(&id.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn rcode(bytes: &[u8]) -> ResponseCode {
        Message::from_vec(bytes).unwrap().metadata.response_code
    }

    #[test]
    fn a_good_query_is_decoded_with_its_limit() {
        let r = parse_request(&query("a.example.", RecordType::A, None), 1232).unwrap();
        assert_eq!(r.id(), 0x1234);
        assert_eq!(r.question.qtype, RecordType::A);
        assert_eq!(r.limit(Transport::Udp, 1232), 512);
        assert_eq!(r.limit(Transport::Tcp, 1232), 65535);
        let r = parse_request(&query("a.example.", RecordType::A, Some(4096)), 1232).unwrap();
        assert_eq!(r.limit(Transport::Udp, 1232), 1232);
        let r = parse_request(&query("a.example.", RecordType::A, Some(100)), 1232).unwrap();
        assert_eq!(r.limit(Transport::Udp, 1232), 512);
    }

    #[test]
    fn bad_queries_get_the_right_refusal() {
        let good = query("a.example.", RecordType::A, None);
        let e = parse_request(&good[..5], 1232).unwrap_err();
        assert_eq!((e.why, e.reply.is_none()), (Malformed::TooShort, true));

        let mut response = good.clone();
        response[2] |= 0x80;
        assert_eq!(
            parse_request(&response, 1232).unwrap_err().why,
            Malformed::NotAQuery
        );

        let mut notify = good.clone();
        notify[2] |= 4 << 3;
        let e = parse_request(&notify, 1232).unwrap_err();
        assert_eq!(e.why, Malformed::Opcode);
        assert_eq!(rcode(&e.reply.unwrap()), ResponseCode::NotImp);

        let mut many = good.clone();
        many[4..6].copy_from_slice(&100u16.to_be_bytes());
        let e = parse_request(&many, 1232).unwrap_err();
        assert_eq!(e.why, Malformed::QuestionCount);
        let reply = e.reply.unwrap();
        assert_eq!(rcode(&reply), ResponseCode::FormErr);
        assert_eq!(&reply[0..2], &[0x12, 0x34]);

        let e = parse_request(&good[..good.len() - 3], 1232).unwrap_err();
        assert_eq!(e.why, Malformed::Undecodable);

        // A name whose compression pointer points at itself.
        let mut looped = good[..HEADER].to_vec();
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            parse_request(&looped, 1232).unwrap_err().why,
            Malformed::Undecodable
        );
    }

    #[test]
    fn edns_version_1_gets_badvers() {
        let mut m = Message::from_vec(&query("a.example.", RecordType::A, Some(1232))).unwrap();
        m.edns.as_mut().unwrap().set_version(1);
        let e = parse_request(&m.to_vec().unwrap(), 1232).unwrap_err();
        assert_eq!(e.why, Malformed::EdnsVersion);
        // 16 is BADVERS in an OPT's extended rcode (hickory reads it back as BADSIG).
        assert_eq!(u16::from(rcode(&e.reply.unwrap())), 16);
    }

    #[test]
    fn a_large_answer_is_truncated_for_udp() {
        let r = parse_request(&query("big.example.", RecordType::A, None), 1232).unwrap();
        let name = Name::from_ascii("big.example.").unwrap();
        let records = (0..100u8)
            .map(|i| {
                Record::from_rdata(
                    name.clone(),
                    60,
                    hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(198, 18, 0, i)),
                )
            })
            .collect();
        let m = answer(&r, ResponseCode::NoError, records, vec![], 1232);
        let small = Message::from_vec(&encode(&m, r.limit(Transport::Udp, 1232))).unwrap();
        assert!(small.metadata.truncation);
        assert!(small.answers.is_empty());
        assert_eq!(small.queries.len(), 1);
        let full = Message::from_vec(&encode(&m, r.limit(Transport::Tcp, 1232))).unwrap();
        assert!(!full.metadata.truncation);
        assert_eq!(full.answers.len(), 100);
    }
}
