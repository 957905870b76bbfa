//! A DNS upstream for the tests: a real UDP and TCP server on 127.0.0.1 (built on
//! hickory-proto) that can be told to answer, go silent, answer SERVFAIL, forge replies,
//! answer too large for UDP, or answer slowly. Every answer carries the upstream's own
//! address as its A record, with TTL 0 (never cached), so a test sees who answered.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One A record: this upstream's tag.
    Answer,
    /// Read and drop everything.
    Silent,
    ServFail,
    /// First a forged answer (6.6.6.6) with the right ID from another port and one with
    /// a wrong ID from this port, then the real answer 20 ms later.
    Spoof,
    /// 128 A records: truncated (TC, no records) over UDP, whole over TCP.
    Large,
    /// The real answer after this many milliseconds.
    Slow(u64),
}

pub const FORGED: Ipv4Addr = Ipv4Addr::new(6, 6, 6, 6);

struct Shared {
    mode: Mutex<Mode>,
    tag: Ipv4Addr,
    queries: AtomicUsize,
    stop: AtomicBool,
}

pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Upstream {
    /// An upstream on a free 127.0.0.1 port (UDP and TCP), answering with `tag`.
    pub fn start(tag: Ipv4Addr) -> Upstream {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Answer),
            tag,
            queries: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let s = shared.clone();
        let u = std::thread::spawn(move || serve_udp(udp, s));
        let s = shared.clone();
        let t = std::thread::spawn(move || serve_tcp(tcp, s));
        Upstream {
            addr,
            shared,
            threads: vec![u, t],
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Queries received so far (UDP and TCP).
    pub fn queries(&self) -> usize {
        self.shared.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The reply to `query` in `mode` (`None`: no reply).
fn reply(query: &Message, mode: Mode, tag: Ipv4Addr, tcp: bool) -> Option<Message> {
    let mut m = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_queries(query.queries.clone());
    m.edns = query.edns.clone();
    let name = query.queries.first()?.name().clone();
    let a = |ip: Ipv4Addr| Record::from_rdata(name.clone(), 0, RData::A(A(ip)));
    match mode {
        Mode::Silent => return None,
        Mode::ServFail => m.metadata.response_code = ResponseCode::ServFail,
        Mode::Large if !tcp => m.metadata.truncation = true,
        Mode::Large => {
            for i in 0..128u8 {
                m.add_answer(a(Ipv4Addr::new(198, 18, 9, i)));
            }
        }
        Mode::Answer | Mode::Spoof | Mode::Slow(_) => {
            m.add_answer(a(tag));
        }
    }
    Some(m)
}

fn serve_udp(socket: UdpSocket, s: Arc<Shared>) {
    let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = [0u8; 4096];
    while !s.stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        s.queries.fetch_add(1, Ordering::Relaxed);
        let mode = *s.mode.lock().unwrap();
        let Some(answer) = reply(&query, mode, s.tag, false) else {
            continue;
        };
        let bytes = answer.to_vec().unwrap();
        match mode {
            Mode::Spoof => {
                let mut forged = answer.clone();
                forged.answers[0] =
                    Record::from_rdata(forged.answers[0].name.clone(), 0, RData::A(A(FORGED)));
                let forged_bytes = forged.to_vec().unwrap();
                let _ = forger.send_to(&forged_bytes, from);
                let mut wrong_id = forged_bytes;
                wrong_id[0] ^= 0x5a;
                let _ = socket.send_to(&wrong_id, from);
                let socket = socket.try_clone().unwrap();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    let _ = socket.send_to(&bytes, from);
                });
            }
            Mode::Slow(ms) => {
                let socket = socket.try_clone().unwrap();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    let _ = socket.send_to(&bytes, from);
                });
            }
            _ => {
                let _ = socket.send_to(&bytes, from);
            }
        }
    }
}

fn serve_tcp(listener: TcpListener, s: Arc<Shared>) {
    while !s.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let s = s.clone();
                std::thread::spawn(move || serve_conn(stream, s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn serve_conn(mut stream: TcpStream, s: Arc<Shared>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while !s.stop.load(Ordering::Relaxed) {
        let mut len = [0u8; 2];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(_) => return,
        }
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut body).is_err() {
            return;
        }
        let Ok(query) = Message::from_vec(&body) else {
            return;
        };
        s.queries.fetch_add(1, Ordering::Relaxed);
        let mode = *s.mode.lock().unwrap();
        if let Mode::Slow(ms) = mode {
            std::thread::sleep(Duration::from_millis(ms));
        }
        if let Some(answer) = reply(&query, mode, s.tag, true) {
            let bytes = answer.to_vec().unwrap();
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            if stream.write_all(&framed).is_err() {
                return;
            }
        }
    }
}
