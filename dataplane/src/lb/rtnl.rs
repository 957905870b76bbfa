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
use neli::consts::rtnl::{Arphrd, Ifa, Iff, Ifla, IflaInfo, RtAddrFamily, RtScope, Rtm};
use neli::router::synchronous::NlRouter;
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg};
use neli::types::RtBuffer;

use super::kernel::KernelError;
use crate::kernel::failed;
use crate::rtnetlink::{
    NlFail, ack, address, connect, ifindex, ip_from, link_by_name, request, rtattr,
};

/// The default name of the VIP interface.
pub const DEFAULT_INTERFACE: &str = "hawser-vip";

const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;

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
        Ok(VipInterface {
            router: connect()?,
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

    /// The interface's index, or `None` if it does not exist.
    fn index(&mut self) -> Result<Option<i32>, KernelError> {
        self.messages += 1;
        ifindex(&self.router, &self.name)
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
            attrs.push(rtattr(Ifla::Linkinfo, info)?);
            link_by_name(&self.name, attrs)?
                .ifi_type(Arphrd::from(0))
                .ifi_flags(Iff::UP)
                .ifi_change(Iff::UP)
                .build()
                .map_err(|e| failed("build a link request", e))
        };
        let msg = build()?;
        self.messages += 1;
        ack(&self.router, Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, msg)
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
        let dump = request(
            &self.router,
            Rtm::Getaddr,
            NlmF::DUMP,
            msg,
            Ifaddrmsg::clone,
        )
        .map_err(|e| failed("dump addresses", e))?;
        let mut out = BTreeSet::new();
        for a in dump {
            if *a.ifa_index() as i32 != index {
                continue;
            }
            let handle = a.rtattrs().get_attr_handle();
            let Some(attr) = handle
                .get_attribute(Ifa::Local)
                .or_else(|| handle.get_attribute(Ifa::Address))
            else {
                continue;
            };
            let ip = ip_from(attr.rta_payload().as_ref())?;
            // The kernel's own link-local address is not ours to manage.
            if matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
                continue;
            }
            out.insert(ip);
        }
        Ok(out)
    }

    fn addr_op(&mut self, kind: Rtm, flags: NlmF, ip: IpAddr) -> Result<(), NlFail> {
        let index = self.ensure()?;
        let len = if ip.is_ipv6() { 128 } else { 32 };
        let msg = address(index, ip, len)?;
        self.messages += 1;
        ack(&self.router, kind, flags, msg)
    }

    /// Put `ip` on the interface (already there is fine).
    pub fn add(&mut self, ip: IpAddr) -> Result<(), KernelError> {
        self.addr_op(Rtm::Newaddr, NlmF::CREATE | NlmF::REPLACE, ip)
            .map_err(|e| failed(format!("add address {ip} to {}", self.name), e))
    }

    /// Take `ip` off the interface (already gone is fine).
    pub fn remove(&mut self, ip: IpAddr) -> Result<(), KernelError> {
        match self.addr_op(Rtm::Deladdr, NlmF::empty(), ip) {
            Err(e) if e.is_gone() => Ok(()),
            other => {
                other.map_err(|e| failed(format!("remove address {ip} from {}", self.name), e))
            }
        }
    }
}
