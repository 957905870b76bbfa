//! Network namespaces for tests: made by the test, torn down by a drop guard, so that a
//! failing test leaves nothing behind. Addresses come from 198.18.0.0/15 only.
//!
//! A test that needs a tool this machine lacks (`ip`, `nft`) or the right to make
//! namespaces does not pass quietly: [`require`] panics with what is missing and how
//! CI installs it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Panic, loudly, unless every program in `programs` runs and namespaces can be made.
pub fn require(programs: &[&str]) {
    for p in programs {
        let ok = Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            || Command::new(p)
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "THIS TEST DID NOT RUN: `{p}` is missing. It needs root, iproute2 and nftables \
             (apt-get install iproute2 nftables; .ci/run does this)."
        );
    }
}

/// Run a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A set of namespaces named `<prefix>-<name>`, deleted when dropped.
pub struct Namespaces {
    prefix: String,
    names: Vec<String>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Namespaces {
    /// A fresh, unique prefix per call (`hwt<pid>x<n>`), so tests can run in parallel.
    pub fn new(tag: &str) -> Namespaces {
        let prefix = format!(
            "hwt{}x{}{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Namespaces {
            prefix,
            names: Vec::new(),
        }
    }

    /// Create namespace `name` (with `lo` up) and return its full name.
    pub fn add(&mut self, name: &str) -> String {
        let full = format!("{}-{name}", self.prefix);
        sh(&["ip", "netns", "add", &full]);
        self.names.push(full.clone());
        sh(&["ip", "-n", &full, "link", "set", "lo", "up"]);
        full
    }

    /// Connect `a` and `b` with a veth pair, addresses `a_addr` and `b_addr` (CIDR).
    /// Returns the pair's interface names, `a`'s side first.
    pub fn link(&self, a: &str, a_addr: &str, b: &str, b_addr: &str) -> (String, String) {
        let (va, vb) = self.pair(a, b);
        sh(&["ip", "-n", a, "addr", "add", a_addr, "dev", &va]);
        sh(&["ip", "-n", b, "addr", "add", b_addr, "dev", &vb]);
        (va, vb)
    }

    /// `leaf` behind `router` on 198.18.`net`.0/24: the router is .1, the leaf .2 with its
    /// default route through the router. Returns the router's and the leaf's interfaces.
    pub fn leaf(&self, router: &str, leaf: &str, net: u8) -> (String, String) {
        let gw = format!("198.18.{net}.1");
        let sides = self.link(
            router,
            &format!("{gw}/24"),
            leaf,
            &format!("198.18.{net}.2/24"),
        );
        sh(&["ip", "-n", leaf, "route", "add", "default", "via", &gw]);
        sides
    }

    /// A veth pair between `a` and `b`, both sides up, no addresses.
    fn pair(&self, a: &str, b: &str) -> (String, String) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let (va, vb) = (format!("va{n}"), format!("vb{n}"));
        sh(&[
            "ip", "-n", a, "link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", b,
        ]);
        sh(&["ip", "-n", a, "link", "set", &va, "up"]);
        sh(&["ip", "-n", b, "link", "set", &vb, "up"]);
        (va, vb)
    }

    /// Create namespace `name` holding a bridge `br0`: a switch for [`Namespaces::plug`].
    pub fn switch(&mut self, name: &str) -> String {
        let sw = self.add(name);
        sh(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        sw
    }

    /// Connect `ns` to `switch`'s bridge with a veth pair, address `addr` (CIDR) on
    /// `ns`'s side. Returns `ns`'s interface (set it down to cut `ns` off).
    pub fn plug(&self, switch: &str, ns: &str, addr: &str) -> String {
        let (port, dev) = self.pair(switch, ns);
        sh(&["ip", "-n", switch, "link", "set", &port, "master", "br0"]);
        sh(&["ip", "-n", ns, "addr", "add", addr, "dev", &dev]);
        dev
    }

    /// Run `cmd` in namespace `ns`.
    pub fn exec(ns: &str, cmd: &[&str]) -> String {
        let mut args = vec!["ip", "netns", "exec", ns];
        args.extend_from_slice(cmd);
        sh(&args)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "delete", n]).status();
        }
    }
}

/// Run `f` on a new thread that lives in namespace `ns` (a thread's namespace is its
/// own; sockets it opens and programs it starts are in `ns`).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        enter(&path);
        f()
    })
}

fn enter(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}
