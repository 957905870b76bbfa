//! VIP addresses on a local interface, over rtnetlink (neli).
//!
//! A packet reaches the NAT hooks (nftables' output and prerouting, IPVS's local input)
//! only if the kernel routes the VIP as a local address, so every VIP address is put on
//! an interface of hawser's own (`hawser-vip` by default) as a /32 or /128. The
//! interface is a `dummy` where the kernel has that driver, and otherwise a bridge with
//! no ports, which behaves the same for local addresses (the machines this was built on
//! have no dummy module). Every address on that interface is hawser's: one that is not
//! desired is removed.

use std::collections::BTreeSet;
use std::net::IpAddr;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Arphrd, IfaF, Iff, Ifla, IflaInfo, RtAddrFamily, RtScope, Rtm};
use neli::consts::socket::NlFamily;
use neli::err::RouterError;
use neli::nl::NlPayload;
use neli::router::synchronous::NlRouter;
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, RtattrBuilder};
use neli::types::{Buffer, RtBuffer};
use neli::utils::Groups;

use super::kernel::{KernelError, failed};

/// The default name of the VIP interface.
pub const DEFAULT_INTERFACE: &str = "hawser-vip";

const ENODEV: i32 = libc::ENODEV;
const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;

/// A netlink request that failed: the errno the kernel answered with, if it did.
struct NlFail {
    errno: Option<i32>,
    message: String,
}

impl<T: std::fmt::Debug, P: std::fmt::Debug> From<RouterError<T, P>> for NlFail {
    fn from(e: RouterError<T, P>) -> NlFail {
        let errno = match &e {
            RouterError::Nlmsgerr(m) => Some(-*m.error()),
            _ => None,
        };
        NlFail {
            errno,
            message: e.to_string(),
        }
    }
}

impl From<KernelError> for NlFail {
    fn from(e: KernelError) -> NlFail {
        NlFail {
            errno: None,
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for NlFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The VIP interface and its addresses.
pub struct VipInterface {
    router: NlRouter,
    name: String,
    /// Messages sent since the last [`VipInterface::take_messages`].
    messages: usize,
}

impl VipInterface {
    /// Open rtnetlink in the calling thread's network namespace.
    pub fn open(name: &str) -> Result<VipInterface, KernelError> {
        if name.is_empty() || name.len() > 15 {
            return Err(KernelError::Unsupported(format!(
                "interface name {name:?}: use 1 to 15 bytes"
            )));
        }
        let (router, _) = NlRouter::connect(NlFamily::Route, None, Groups::empty())
            .map_err(|e| KernelError::Unsupported(format!("cannot open rtnetlink: {e}")))?;
        Ok(VipInterface {
            router,
            name: name.to_owned(),
            messages: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many netlink requests were sent since the last call.
    pub fn take_messages(&mut self) -> usize {
        std::mem::take(&mut self.messages)
    }

    fn send(&mut self, kind: Rtm, flags: NlmF, msg: Ifinfomsg) -> Result<Vec<Ifinfomsg>, NlFail> {
        self.messages += 1;
        let recv =
            self.router
                .send::<_, _, Rtm, Ifinfomsg>(kind, flags, NlPayload::Payload(msg))?;
        let mut out = Vec::new();
        for m in recv {
            if let NlPayload::Payload(p) = m?.nl_payload() {
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    /// The interface's index, or `None` if it does not exist.
    fn index(&mut self) -> Result<Option<i32>, KernelError> {
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::Ifname, self.name.as_str())?);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .rtattrs(attrs)
            .build()
            .map_err(|e| failed("build a link request", e))?;
        match self.send(Rtm::Getlink, NlmF::empty(), msg) {
            Ok(links) => Ok(links.first().map(|l| *l.ifi_index())),
            Err(e) if e.errno == Some(ENODEV) => Ok(None),
            Err(e) => Err(failed(format!("look up interface {}", self.name), e)),
        }
    }

    /// The interface's index, creating it (up) if it does not exist.
    pub fn ensure(&mut self) -> Result<i32, KernelError> {
        if let Some(i) = self.index()? {
            return Ok(i);
        }
        match self.create("dummy") {
            Err(e) if e.errno == Some(EOPNOTSUPP) => self
                .create("bridge")
                .map_err(|e| failed(format!("create interface {} (bridge)", self.name), e))?,
            other => other.map_err(|e| failed(format!("create interface {}", self.name), e))?,
        }
        self.index()?.ok_or_else(|| {
            KernelError::Unreadable(format!(
                "interface {} missing right after creation",
                self.name
            ))
        })
    }

    fn create(&mut self, kind: &str) -> Result<(), NlFail> {
        let build = || -> Result<Ifinfomsg, KernelError> {
            let mut info = RtBuffer::new();
            info.push(rtattr(IflaInfo::Kind, kind)?);
            let mut attrs = RtBuffer::new();
            attrs.push(rtattr(Ifla::Ifname, self.name.as_str())?);
            attrs.push(rtattr(Ifla::Linkinfo, info)?);
            IfinfomsgBuilder::default()
                .ifi_family(RtAddrFamily::Unspecified)
                .ifi_type(Arphrd::from(0))
                .ifi_flags(Iff::UP)
                .ifi_change(Iff::UP)
                .rtattrs(attrs)
                .build()
                .map_err(|e| failed("build a link request", e))
        };
        let msg = build()?;
        self.send(Rtm::Newlink, NlmF::CREATE | NlmF::EXCL | NlmF::ACK, msg)
            .map(drop)
    }

    /// The addresses on the interface (creating it if it is missing: a deleted interface
    /// reads as holding nothing, and the next apply fills it again).
    pub fn addresses(&mut self) -> Result<BTreeSet<IpAddr>, KernelError> {
        let index = self.ensure()?;
        self.messages += 1;
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Unspecified)
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(0)
            .build()
            .map_err(|e| failed("build an address dump", e))?;
        let recv = self
            .router
            .send::<_, _, Rtm, Ifaddrmsg>(Rtm::Getaddr, NlmF::DUMP, NlPayload::Payload(msg))
            .map_err(|e| failed("dump addresses", e))?;
        let mut out = BTreeSet::new();
        for m in recv {
            let m = m.map_err(|e| failed("dump addresses", e))?;
            let NlPayload::Payload(a) = m.nl_payload() else {
                continue;
            };
            if *a.ifa_index() as i32 != index {
                continue;
            }
            let handle = a.rtattrs().get_attr_handle();
            let Some(attr) = handle
                .get_attribute(neli::consts::rtnl::Ifa::Local)
                .or_else(|| handle.get_attribute(neli::consts::rtnl::Ifa::Address))
            else {
                continue;
            };
            let bytes: &[u8] = attr.rta_payload().as_ref();
            let ip = match bytes.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(bytes).expect("4 bytes")),
                16 => IpAddr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes")),
                n => return Err(KernelError::Unreadable(format!("an address of {n} bytes"))),
            };
            // The kernel's own link-local address is not ours to manage.
            if matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
                continue;
            }
            out.insert(ip);
        }
        Ok(out)
    }

    fn addr_msg(&self, index: i32, ip: IpAddr) -> Result<Ifaddrmsg, KernelError> {
        let (family, len, octets) = match ip {
            IpAddr::V4(v4) => (RtAddrFamily::Inet, 32, v4.octets().to_vec()),
            IpAddr::V6(v6) => (RtAddrFamily::Inet6, 128, v6.octets().to_vec()),
        };
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(
            neli::consts::rtnl::Ifa::Local,
            Buffer::from(octets.clone()),
        )?);
        attrs.push(rtattr(
            neli::consts::rtnl::Ifa::Address,
            Buffer::from(octets),
        )?);
        IfaddrmsgBuilder::default()
            .ifa_family(family)
            .ifa_prefixlen(len)
            // No duplicate address detection: the address is ours on every node.
            .ifa_flags(if ip.is_ipv6() {
                IfaF::NODAD
            } else {
                IfaF::empty()
            })
            .ifa_scope(RtScope::Universe)
            .ifa_index(index as u32)
            .rtattrs(attrs)
            .build()
            .map_err(|e| failed("build an address request", e))
    }

    fn addr_op(&mut self, kind: Rtm, flags: NlmF, ip: IpAddr) -> Result<(), NlFail> {
        let index = self.ensure()?;
        let msg = self.addr_msg(index, ip)?;
        self.messages += 1;
        let recv = self.router.send::<_, _, Rtm, Ifaddrmsg>(
            kind,
            flags | NlmF::ACK,
            NlPayload::Payload(msg),
        )?;
        for m in recv {
            m?;
        }
        Ok(())
    }

    /// Put `ip` on the interface (already there is fine).
    pub fn add(&mut self, ip: IpAddr) -> Result<(), KernelError> {
        self.addr_op(Rtm::Newaddr, NlmF::CREATE | NlmF::REPLACE, ip)
            .map_err(|e| failed(format!("add address {ip} to {}", self.name), e))
    }

    /// Take `ip` off the interface (already gone is fine).
    pub fn remove(&mut self, ip: IpAddr) -> Result<(), KernelError> {
        match self.addr_op(Rtm::Deladdr, NlmF::empty(), ip) {
            Err(e) if matches!(e.errno, Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)) => Ok(()),
            other => {
                other.map_err(|e| failed(format!("remove address {ip} from {}", self.name), e))
            }
        }
    }
}

fn rtattr<T, P>(kind: T, payload: P) -> Result<neli::rtnl::Rtattr<T, Buffer>, KernelError>
where
    T: neli::Size + neli::consts::rtnl::RtaType,
    P: neli::Size + neli::ToBytes,
{
    RtattrBuilder::default()
        .rta_type(kind)
        .rta_payload(payload)
        .build()
        .map_err(|e| failed("build a netlink attribute", e))
}
