//! `hawser dns query`: ask a DNS server one question, as dig would: over UDP with EDNS,
//! again over TCP if the answer was truncated.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hawser_dataplane::dns::message::rcode_name;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// How long to wait for an answer, per try.
const WAIT: Duration = Duration::from_secs(2);

/// An answer and how it came.
pub struct Answer {
    pub message: Message,
    pub elapsed: Duration,
    /// Over TCP (after a truncated UDP answer, or because asked to).
    pub tcp: bool,
}

fn question(name: &str, qtype: RecordType) -> Result<Message, String> {
    let mut name = Name::from_ascii(name).map_err(|e| format!("invalid name {name:?}: {e}"))?;
    name.set_fqdn(true);
    let id = getrandom::u32().map_err(|e| format!("cannot read OS randomness: {e}"))? as u16;
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name, qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    Ok(m)
}

/// Ask `server` for `name`'s `qtype` records.
pub fn ask(server: SocketAddr, name: &str, qtype: RecordType, tcp: bool) -> Result<Answer, String> {
    let query = question(name, qtype)?;
    let bytes = query.to_vec().map_err(|e| e.to_string())?;
    let started = Instant::now();
    if !tcp {
        let reply = udp(server, &bytes, query.metadata.id)?;
        if !reply.metadata.truncation {
            return Ok(Answer {
                message: reply,
                elapsed: started.elapsed(),
                tcp: false,
            });
        }
    }
    let reply = over_tcp(server, &bytes)?;
    Ok(Answer {
        message: reply,
        elapsed: started.elapsed(),
        tcp: true,
    })
}

fn udp(server: SocketAddr, query: &[u8], id: u16) -> Result<Message, String> {
    let local = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    socket.connect(server).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..2 {
        socket
            .send(query)
            .map_err(|e| format!("cannot send to {server}: {e}"))?;
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => match Message::from_vec(&buf[..n]) {
                    Ok(m) if m.metadata.id == id => return Ok(m),
                    // Not ours (or garbage): keep waiting.
                    _ => continue,
                },
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(format!("no answer from {server}: {e}")),
            }
        }
    }
    Err(format!(
        "no answer from {server} within {} s (twice)",
        WAIT.as_secs()
    ))
}

fn over_tcp(server: SocketAddr, query: &[u8]) -> Result<Message, String> {
    let failed = |e: std::io::Error| format!("DNS over TCP to {server}: {e}");
    let mut stream = TcpStream::connect_timeout(&server, WAIT).map_err(failed)?;
    stream.set_read_timeout(Some(WAIT)).map_err(failed)?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(failed)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).map_err(failed)?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).map_err(failed)?;
    Message::from_vec(&body).map_err(|e| format!("{server} sent an undecodable answer: {e}"))
}

/// The answer as dig prints its sections.
pub fn render(a: &Answer, server: SocketAddr) -> String {
    let m = &a.message;
    let mut out = format!(
        ";; {} from {server} over {} in {:.2} ms{}{}\n",
        rcode_name(u16::from(m.metadata.response_code)),
        if a.tcp { "tcp" } else { "udp" },
        a.elapsed.as_secs_f64() * 1000.0,
        if m.metadata.authoritative {
            ", authoritative"
        } else {
            ""
        },
        if m.metadata.truncation {
            ", truncated"
        } else {
            ""
        },
    );
    for (title, records) in [
        ("ANSWER", &m.answers),
        ("AUTHORITY", &m.authorities),
        ("ADDITIONAL", &m.additionals),
    ] {
        if records.is_empty() {
            continue;
        }
        out.push_str(&format!(";; {title}\n"));
        for r in records.iter() {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                r.name,
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            ));
        }
    }
    out
}
