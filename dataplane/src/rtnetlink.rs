//! What the rtnetlink backends share (the load balancer's VIP interface and the
//! overlay's VXLAN devices), over neli 0.7: opening the socket, one request and its
//! answers, attributes, and the errno of a refusal, so that a backend can tell "already
//! gone" from a real failure.

use std::net::IpAddr;

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{Ifa, IfaF, Ifla, RtAddrFamily, RtScope, RtaType, Rtm};
use neli::consts::socket::NlFamily;
use neli::err::RouterError;
use neli::nl::NlPayload;
use neli::router::synchronous::NlRouter;
use neli::rtnl::{Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, Rtattr, RtattrBuilder};
use neli::types::{Buffer, RtBuffer};
use neli::utils::Groups;
use neli::{FromBytesWithInput, Size, ToBytes};

use crate::kernel::{KernelError, failed};

/// A netlink request that failed: the errno the kernel answered with, if it did.
pub(crate) struct NlFail {
    pub(crate) errno: Option<i32>,
    message: String,
}

impl NlFail {
    /// Whether the kernel refused because the thing is not there: what a removal
    /// treats as done.
    pub(crate) fn is_gone(&self) -> bool {
        matches!(
            self.errno,
            Some(libc::ENOENT | libc::ESRCH | libc::ENODEV | libc::EADDRNOTAVAIL)
        )
    }
}

impl<T: std::fmt::Debug, P: std::fmt::Debug> From<RouterError<T, P>> for NlFail {
    fn from(e: RouterError<T, P>) -> NlFail {
        match &e {
            // neli's own text for this case is a debug dump of the whole answer; the
            // errno's text says what went wrong. (The kernel's extended ACK message
            // would say more, but neli 0.7.5 drops it when it types an error:
            // `Nlmsgerr::to_typed` rebuilds the error without `ext_ack`.)
            RouterError::Nlmsgerr(m) => NlFail {
                errno: Some(-*m.error()),
                message: m.to_string(),
            },
            _ => NlFail {
                errno: None,
                message: e.to_string(),
            },
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

/// Open rtnetlink in the calling thread's network namespace.
pub(crate) fn connect() -> Result<NlRouter, KernelError> {
    NlRouter::connect(NlFamily::Route, None, Groups::empty())
        .map(|(router, _)| router)
        .map_err(|e| KernelError::Unsupported(format!("cannot open rtnetlink: {e}")))
}

/// Send one request and read each answer's payload with `read` (an ACK has none).
/// Reading in place: neli's answers give their payload by reference only, and not
/// every rtnetlink message type is `Clone`.
pub(crate) fn request<P, T>(
    router: &NlRouter,
    kind: Rtm,
    flags: NlmF,
    msg: P,
    mut read: impl FnMut(&P) -> T,
) -> Result<Vec<T>, NlFail>
where
    P: Size + ToBytes + FromBytesWithInput<Input = usize> + std::fmt::Debug,
{
    let recv = router.send::<_, _, Rtm, P>(kind, flags, NlPayload::Payload(msg))?;
    let mut out = Vec::new();
    for m in recv {
        if let NlPayload::Payload(p) = m?.nl_payload() {
            out.push(read(p));
        }
    }
    Ok(out)
}

/// Send one request that changes something, and wait for the kernel's ACK.
pub(crate) fn ack<P>(router: &NlRouter, kind: Rtm, flags: NlmF, msg: P) -> Result<(), NlFail>
where
    P: Size + ToBytes + FromBytesWithInput<Input = usize> + std::fmt::Debug,
{
    request(router, kind, flags | NlmF::ACK, msg, |_| ()).map(drop)
}

/// One attribute, of any rtnetlink attribute type (`u16` for the ones neli has no
/// names for).
pub(crate) fn rtattr<T, P>(kind: T, payload: P) -> Result<Rtattr<T, Buffer>, KernelError>
where
    T: Size + RtaType,
    P: Size + ToBytes,
{
    RtattrBuilder::default()
        .rta_type(kind)
        .rta_payload(payload)
        .build()
        .map_err(|e| failed("build a netlink attribute", e))
}

/// An address as the kernel writes it: 4 or 16 bytes in network order.
pub(crate) fn ip_from(bytes: &[u8]) -> Result<IpAddr, KernelError> {
    match bytes.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(bytes).expect("4 bytes"))),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(bytes).expect("16 bytes"))),
        n => Err(KernelError::Unreadable(format!("an address of {n} bytes"))),
    }
}

/// An address's bytes in network order, as the kernel takes it.
pub(crate) fn ip_bytes(ip: IpAddr) -> Buffer {
    match ip {
        IpAddr::V4(v4) => Buffer::from(v4.octets().to_vec()),
        IpAddr::V6(v6) => Buffer::from(v6.octets().to_vec()),
    }
}

/// A link request naming the device (index 0: the kernel finds it by name).
pub(crate) fn link_by_name(
    name: &str,
    mut attrs: RtBuffer<Ifla, Buffer>,
) -> Result<IfinfomsgBuilder, KernelError> {
    attrs.push(rtattr(Ifla::Ifname, name)?);
    Ok(IfinfomsgBuilder::default()
        .ifi_family(RtAddrFamily::Unspecified)
        .rtattrs(attrs))
}

/// The index of interface `name`, or `None` if it does not exist.
pub(crate) fn ifindex(router: &NlRouter, name: &str) -> Result<Option<i32>, KernelError> {
    let msg: Ifinfomsg = link_by_name(name, RtBuffer::new())?
        .build()
        .map_err(|e| failed("build a link request", e))?;
    match request(router, Rtm::Getlink, NlmF::empty(), msg, |l| *l.ifi_index()) {
        Ok(links) => Ok(links.first().copied()),
        Err(e) if e.errno == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(failed(format!("look up interface {name}"), e)),
    }
}

/// A request for address `ip`/`len` on interface `index`.
pub(crate) fn address(index: i32, ip: IpAddr, len: u8) -> Result<Ifaddrmsg, KernelError> {
    let family = match ip {
        IpAddr::V4(_) => RtAddrFamily::Inet,
        IpAddr::V6(_) => RtAddrFamily::Inet6,
    };
    let mut attrs = RtBuffer::new();
    attrs.push(rtattr(Ifa::Local, ip_bytes(ip))?);
    attrs.push(rtattr(Ifa::Address, ip_bytes(ip))?);
    IfaddrmsgBuilder::default()
        .ifa_family(family)
        .ifa_prefixlen(len)
        // No duplicate address detection: hawser's addresses are hawser's to give, and
        // must be usable at once.
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
