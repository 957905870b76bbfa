//! TCP servers that say who they are, and clients that count who answered: how the
//! load-balancer tests see where connections went.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use hawser_dataplane::lb::{Desired, Kernel, KernelError, Pass, ProgrammedNames, Reconciler};

use crate::netns::in_netns;

/// A TCP server in `ns` at `addr` that greets each connection with `id` and echoes,
/// until the process ends (its listening socket keeps the namespace alive until then).
pub fn server(ns: &str, addr: &'static str, id: &'static str) {
    let (ready, bound) = mpsc::channel();
    in_netns(ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        ready.send(()).unwrap();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                if s.write_all(format!("{id}\n").as_bytes()).is_err() {
                    return;
                }
                let mut lines = BufReader::new(s.try_clone().unwrap()).lines();
                while let Some(Ok(line)) = lines.next() {
                    if s.write_all(format!("{line}\n").as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    bound.recv().unwrap();
}

/// A connection to the VIP and the id its backend greeted it with.
pub fn connect(vip: SocketAddr) -> std::io::Result<(String, BufReader<TcpStream>)> {
    let s = TcpStream::connect_timeout(&vip, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut r = BufReader::new(s);
    let mut id = String::new();
    r.read_line(&mut id)?;
    if id.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok((id.trim().to_owned(), r))
}

/// `n` connections from namespace `ns`: how many each backend took ("failed": none).
pub fn spread(ns: &str, vip: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    in_netns(ns, move || {
        let mut count = BTreeMap::new();
        for _ in 0..n {
            let id = connect(vip).map_or_else(|_| "failed".to_owned(), |(id, _)| id);
            *count.entry(id).or_insert(0) += 1;
        }
        count
    })
    .join()
    .unwrap()
}

/// A load-balancer reconciler on a thread of its own in namespace `ns`; each
/// [`ReconcilerThread::pass`] runs one pass there.
pub struct ReconcilerThread {
    tx: mpsc::Sender<(Desired, mpsc::Sender<Pass>)>,
}

impl ReconcilerThread {
    /// Open the kernel backend in `ns` with `open` (panicking if it cannot).
    pub fn start<K: Kernel + 'static>(
        ns: &str,
        open: impl FnOnce() -> Result<K, KernelError> + Send + 'static,
    ) -> ReconcilerThread {
        let (tx, rx) = mpsc::channel::<(Desired, mpsc::Sender<Pass>)>();
        in_netns(ns, move || {
            let mut r = Reconciler::new(open().unwrap(), ProgrammedNames::new());
            for (d, reply) in rx {
                reply.send(r.pass(&d).unwrap()).unwrap();
            }
        });
        ReconcilerThread { tx }
    }

    pub fn pass(&self, d: Desired) -> Pass {
        let (reply, rx) = mpsc::channel();
        self.tx.send((d, reply)).unwrap();
        rx.recv()
            .expect("the reconciler thread failed (see its panic above)")
    }
}

/// A UDP server in `ns` at `addr` that answers every datagram with `id`, until the
/// process ends.
pub fn udp_server(ns: &str, addr: &'static str, id: &'static str) {
    let (ready, bound) = mpsc::channel();
    in_netns(ns, move || {
        let s = std::net::UdpSocket::bind(addr).unwrap();
        ready.send(()).unwrap();
        let mut buf = [0u8; 512];
        while let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(id.as_bytes(), from);
        }
    });
    bound.recv().unwrap();
}

/// `n` datagrams to the VIP from namespace `ns`, each from a new socket (so a new flow
/// the load balancer places anew): how many each backend answered ("failed": none
/// within 500 ms).
pub fn udp_spread(ns: &str, vip: SocketAddr, n: usize) -> BTreeMap<String, usize> {
    in_netns(ns, move || {
        let mut count = BTreeMap::new();
        for _ in 0..n {
            let any: SocketAddr = if vip.is_ipv4() {
                "0.0.0.0:0".parse().unwrap()
            } else {
                "[::]:0".parse().unwrap()
            };
            let answer = (|| {
                let s = std::net::UdpSocket::bind(any)?;
                s.set_read_timeout(Some(Duration::from_millis(500)))?;
                s.send_to(b"who?", vip)?;
                let mut buf = [0u8; 64];
                let (len, _) = s.recv_from(&mut buf)?;
                Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..len]).into_owned())
            })();
            *count
                .entry(answer.unwrap_or_else(|_| "failed".to_owned()))
                .or_insert(0) += 1;
        }
        count
    })
    .join()
    .unwrap()
}
