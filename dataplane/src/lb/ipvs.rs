//! The IPVS kernel backend: virtual services over generic netlink (family `IPVS`), with
//! neli, the design card's netlink crate.
//!
//! Each service uses the `wlc` scheduler (weighted least connections) and masquerade
//! (NAT) forwarding to its destinations; a destination of weight 0 is quiesced (IPVS
//! sends it no new connections and keeps its open ones), which is exactly draining. The
//! VIP addresses go on hawser's interface ([`super::rtnl`]) so that traffic to them is
//! delivered locally, where IPVS takes it.
//!
//! Messages are encoded as `ipvsadm` (libipvs) encodes them, attribute for attribute:
//! the service nest carries family, protocol, a 16-byte address (IPv4 in the first four
//! bytes), the port in network order, scheduler name (NUL-terminated), flags and mask,
//! timeout and netmask; the destination nest carries family, address, port, forwarding
//! method, weight and both thresholds. Requests ask for an ack. The tests compare the
//! bytes with encodings written out by hand from the kernel's `ip_vs.h`.
//!
//! hawser owns every IPVS service in its network namespace (as dcos-l4lb did): a
//! service it did not want is removed. Do not run another IPVS user (kube-proxy in IPVS
//! mode, keepalived) in the same namespace.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, Nlattr, NlattrBuilder};
use neli::nl::NlPayload;
use neli::router::synchronous::NlRouter;
use neli::types::{Buffer, GenlBuffer};
use neli::utils::Groups;

use super::kernel::{Kernel, KernelError};
use super::rtnl::VipInterface;
use super::state::{Change, Dests, Programmed};
use super::vip::{Proto, Service};
use crate::kernel::failed;

/// The generic netlink family, and the protocol version ipvsadm speaks.
pub const FAMILY: &str = "IPVS";
pub const VERSION: u8 = 1;

/// `IPVS_CMD_*` (include/uapi/linux/ip_vs.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cmd {
    NewService = 1,
    SetService = 2,
    DelService = 3,
    GetService = 4,
    NewDest = 5,
    SetDest = 6,
    DelDest = 7,
    GetDest = 8,
}

/// `IPVS_CMD_ATTR_*`.
const CMD_ATTR_SERVICE: u16 = 1;
const CMD_ATTR_DEST: u16 = 2;
/// `IPVS_SVC_ATTR_*`.
const SVC_AF: u16 = 1;
const SVC_PROTOCOL: u16 = 2;
const SVC_ADDR: u16 = 3;
const SVC_PORT: u16 = 4;
const SVC_FWMARK: u16 = 5;
const SVC_SCHED_NAME: u16 = 6;
const SVC_FLAGS: u16 = 7;
const SVC_TIMEOUT: u16 = 8;
const SVC_NETMASK: u16 = 9;
/// `IPVS_DEST_ATTR_*`.
const DEST_ADDR: u16 = 1;
const DEST_PORT: u16 = 2;
const DEST_FWD_METHOD: u16 = 3;
const DEST_WEIGHT: u16 = 4;
const DEST_U_THRESH: u16 = 5;
const DEST_L_THRESH: u16 = 6;
const DEST_ADDR_FAMILY: u16 = 11;
/// `IP_VS_CONN_F_MASQ`: NAT forwarding.
const FWD_MASQ: u32 = 0;
const SCHEDULER: &str = "wlc";

type Message = Genlmsghdr<u8, u16>;
type Attr = Nlattr<u16, Buffer>;

fn family_of(ip: IpAddr) -> u16 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u16,
        IpAddr::V6(_) => libc::AF_INET6 as u16,
    }
}

/// `union nf_inet_addr`: 16 bytes whatever the family.
fn inet_addr(ip: IpAddr) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.copy_from_slice(&v6.octets()),
    }
    out
}

fn attr(kind: u16, payload: Vec<u8>) -> Result<Attr, KernelError> {
    NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(kind)
                .build()
                .map_err(|e| failed("build an IPVS attribute", e))?,
        )
        .nla_payload(Buffer::from(payload))
        .build()
        .map_err(|e| failed("build an IPVS attribute", e))
}

fn nest(kind: u16, inner: &[Attr]) -> Result<Attr, KernelError> {
    let mut outer = attr(kind, Vec::new())?;
    for a in inner {
        outer = outer
            .nest(a)
            .map_err(|e| failed("nest an IPVS attribute", e))?;
    }
    Ok(outer)
}

fn service_attr(s: Service) -> Result<Attr, KernelError> {
    let ip = s.addr.ip();
    let netmask: u32 = if ip.is_ipv4() { u32::MAX } else { 128 };
    // struct ip_vs_flags { __u32 flags; __u32 mask; }: no flags, all of them meant.
    let flags = [0u32.to_ne_bytes(), u32::MAX.to_ne_bytes()].concat();
    nest(
        CMD_ATTR_SERVICE,
        &[
            attr(SVC_AF, family_of(ip).to_ne_bytes().to_vec())?,
            attr(
                SVC_PROTOCOL,
                u16::from(s.proto.number()).to_ne_bytes().to_vec(),
            )?,
            attr(SVC_ADDR, inet_addr(ip))?,
            attr(SVC_PORT, s.addr.port().to_be_bytes().to_vec())?,
            attr(SVC_SCHED_NAME, format!("{SCHEDULER}\0").into_bytes())?,
            attr(SVC_FLAGS, flags)?,
            attr(SVC_TIMEOUT, 0u32.to_ne_bytes().to_vec())?,
            attr(SVC_NETMASK, netmask.to_ne_bytes().to_vec())?,
        ],
    )
}

fn dest_attr(d: SocketAddr, weight: u32) -> Result<Attr, KernelError> {
    nest(
        CMD_ATTR_DEST,
        &[
            attr(DEST_ADDR_FAMILY, family_of(d.ip()).to_ne_bytes().to_vec())?,
            attr(DEST_ADDR, inet_addr(d.ip()))?,
            attr(DEST_PORT, d.port().to_be_bytes().to_vec())?,
            attr(DEST_FWD_METHOD, FWD_MASQ.to_ne_bytes().to_vec())?,
            attr(DEST_WEIGHT, weight.to_ne_bytes().to_vec())?,
            attr(DEST_U_THRESH, 0u32.to_ne_bytes().to_vec())?,
            attr(DEST_L_THRESH, 0u32.to_ne_bytes().to_vec())?,
        ],
    )
}

fn message(cmd: Cmd, attrs: Vec<Attr>) -> Result<Message, KernelError> {
    GenlmsghdrBuilder::default()
        .cmd(cmd as u8)
        .version(VERSION)
        .attrs(attrs.into_iter().collect::<GenlBuffer<u16, Buffer>>())
        .build()
        .map_err(|e| failed("build an IPVS message", e))
}

/// The request a change needs (`None` for address changes, which are rtnetlink's).
pub fn request(change: &Change) -> Result<Option<Message>, KernelError> {
    let m = match change {
        Change::AddAddress(_) | Change::RemoveAddress(_) => return Ok(None),
        Change::AddService(s) => message(Cmd::NewService, vec![service_attr(*s)?])?,
        Change::RemoveService(s) => message(Cmd::DelService, vec![service_attr(*s)?])?,
        Change::AddDest(s, d, w) => {
            message(Cmd::NewDest, vec![service_attr(*s)?, dest_attr(*d, *w)?])?
        }
        Change::SetWeight(s, d, w) => {
            message(Cmd::SetDest, vec![service_attr(*s)?, dest_attr(*d, *w)?])?
        }
        Change::RemoveDest(s, d) => {
            message(Cmd::DelDest, vec![service_attr(*s)?, dest_attr(*d, 0)?])?
        }
    };
    Ok(Some(m))
}

/// The attributes nested in `a`.
fn nested(a: &Attr) -> Result<Vec<Attr>, KernelError> {
    let handle = a
        .get_attr_handle::<u16>()
        .map_err(|e| KernelError::Unreadable(format!("IPVS nested attribute: {e}")))?;
    Ok(handle.iter().cloned().collect())
}

fn find(attrs: &[Attr], kind: u16) -> Option<&[u8]> {
    attrs
        .iter()
        .find(|a| *a.nla_type().nla_type() == kind)
        .map(|a| a.nla_payload().as_ref())
}

fn u16_ne(b: Option<&[u8]>) -> Option<u16> {
    Some(u16::from_ne_bytes(b?.get(..2)?.try_into().ok()?))
}

fn u32_ne(b: Option<&[u8]>) -> Option<u32> {
    Some(u32::from_ne_bytes(b?.get(..4)?.try_into().ok()?))
}

fn port(b: Option<&[u8]>) -> Option<u16> {
    Some(u16::from_be_bytes(b?.get(..2)?.try_into().ok()?))
}

fn ip(family: u16, b: Option<&[u8]>) -> Option<IpAddr> {
    let b = b?;
    match i32::from(family) {
        libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(b.get(..4)?).ok()?,
        ))),
        libc::AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(b.get(..16)?).ok()?,
        ))),
        _ => None,
    }
}

/// A service from a `GET_SERVICE` dump message. `Ok(None)` for a service hawser cannot
/// express (firewall-mark based, or a protocol other than TCP and UDP).
pub fn parse_service(m: &Message) -> Result<Option<Service>, KernelError> {
    let unreadable = |what: &str| KernelError::Unreadable(format!("IPVS service: {what}"));
    let top: Vec<Attr> = m.attrs().iter().cloned().collect();
    let svc = top
        .iter()
        .find(|a| *a.nla_type().nla_type() == CMD_ATTR_SERVICE)
        .ok_or_else(|| unreadable("no service attribute"))?;
    let attrs = nested(svc)?;
    if find(&attrs, SVC_FWMARK).is_some() {
        return Ok(None);
    }
    let af = u16_ne(find(&attrs, SVC_AF)).ok_or_else(|| unreadable("no family"))?;
    let proto = match u16_ne(find(&attrs, SVC_PROTOCOL)) {
        Some(6) => Proto::Tcp,
        Some(17) => Proto::Udp,
        _ => return Ok(None),
    };
    let addr = ip(af, find(&attrs, SVC_ADDR)).ok_or_else(|| unreadable("no address"))?;
    let port = port(find(&attrs, SVC_PORT)).ok_or_else(|| unreadable("no port"))?;
    Ok(Some(Service {
        proto,
        addr: SocketAddr::new(addr, port),
    }))
}

/// A destination and its weight from a `GET_DEST` dump message.
pub fn parse_dest(m: &Message, service_family: u16) -> Result<(SocketAddr, u32), KernelError> {
    let unreadable = |what: &str| KernelError::Unreadable(format!("IPVS destination: {what}"));
    let top: Vec<Attr> = m.attrs().iter().cloned().collect();
    let dest = top
        .iter()
        .find(|a| *a.nla_type().nla_type() == CMD_ATTR_DEST)
        .ok_or_else(|| unreadable("no destination attribute"))?;
    let attrs = nested(dest)?;
    // Kernels before 4.4 send no family: a destination then has the service's.
    let af = u16_ne(find(&attrs, DEST_ADDR_FAMILY)).unwrap_or(service_family);
    let addr = ip(af, find(&attrs, DEST_ADDR)).ok_or_else(|| unreadable("no address"))?;
    let port = port(find(&attrs, DEST_PORT)).ok_or_else(|| unreadable("no port"))?;
    let weight = u32_ne(find(&attrs, DEST_WEIGHT)).ok_or_else(|| unreadable("no weight"))?;
    Ok((SocketAddr::new(addr, port), weight))
}

/// The IPVS backend.
pub struct Ipvs {
    router: NlRouter,
    family: u16,
    addresses: VipInterface,
}

impl Ipvs {
    /// Open generic netlink in the calling thread's namespace and find the IPVS family;
    /// a kernel without IPVS is refused here, with what to do about it.
    pub fn open(interface: &str) -> Result<Ipvs, KernelError> {
        let (router, _) = NlRouter::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| KernelError::Unsupported(format!("cannot open generic netlink: {e}")))?;
        let family = router.resolve_genl_family(FAMILY).map_err(|e| {
            let why = match e {
                neli::err::RouterError::Nlmsgerr(m) => {
                    std::io::Error::from_raw_os_error(-*m.error()).to_string()
                }
                other => other.to_string(),
            };
            KernelError::Unsupported(format!(
                "--lb ipvs needs IPVS in the kernel (modprobe ip_vs), and this kernel has no \
                 generic netlink family {FAMILY:?} ({why}); use --lb nftables instead"
            ))
        })?;
        Ok(Ipvs {
            router,
            family,
            addresses: VipInterface::open(interface)?,
        })
    }

    fn send(&self, flags: NlmF, m: Message) -> Result<Vec<Message>, KernelError> {
        let op = format!("IPVS command {}", m.cmd());
        let recv = self
            .router
            .send::<u16, Message, u16, Message>(self.family, flags, NlPayload::Payload(m))
            .map_err(|e| failed(&op, e))?;
        let mut out = Vec::new();
        for r in recv {
            let r = r.map_err(|e| failed(&op, e))?;
            if let NlPayload::Payload(p) = r.nl_payload() {
                out.push(p.clone());
            }
        }
        Ok(out)
    }
}

impl Kernel for Ipvs {
    fn read(&mut self) -> Result<Programmed, KernelError> {
        let mut services = BTreeMap::new();
        for m in self.send(NlmF::DUMP, message(Cmd::GetService, Vec::new())?)? {
            let Some(s) = parse_service(&m)? else {
                continue;
            };
            let mut dests = Dests::new();
            let ask = message(Cmd::GetDest, vec![service_attr(s)?])?;
            for d in self.send(NlmF::DUMP, ask)? {
                let (addr, weight) = parse_dest(&d, family_of(s.addr.ip()))?;
                dests.insert(addr, weight);
            }
            services.insert(s, dests);
        }
        let addresses = self.addresses.addresses()?;
        self.addresses.take_messages();
        Ok(Programmed {
            addresses,
            services,
        })
    }

    fn apply(&mut self, _current: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
        let mut sent = 0;
        for c in changes {
            match c {
                Change::AddAddress(ip) => self.addresses.add(*ip)?,
                Change::RemoveAddress(ip) => self.addresses.remove(*ip)?,
                _ => {
                    if let Some(m) = request(c)? {
                        self.send(NlmF::ACK, m)
                            .map_err(|e| failed(c.to_string(), e))?;
                        sent += 1;
                    }
                }
            }
        }
        Ok(sent + self.addresses.take_messages())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use neli::nl::{Nlmsghdr, NlmsghdrBuilder};
    use neli::{FromBytes, ToBytes};

    use super::*;

    /// The family id the kernel would have given IPVS (any value; it only fills the
    /// header), and a fixed sequence number, so the bytes are comparable.
    const FAMILY_ID: u16 = 0x24;

    fn encode(m: Message) -> Vec<u8> {
        let msg = NlmsghdrBuilder::default()
            .nl_type(FAMILY_ID)
            .nl_flags(NlmF::REQUEST | NlmF::ACK)
            .nl_seq(1)
            .nl_pid(0)
            .nl_payload(NlPayload::Payload(m))
            .build()
            .unwrap();
        let mut buf = Cursor::new(Vec::new());
        msg.to_bytes(&mut buf).unwrap();
        buf.into_inner()
    }

    fn svc() -> Service {
        Service {
            proto: Proto::Tcp,
            addr: "11.1.2.3:80".parse().unwrap(),
        }
    }

    /// The service nest for tcp://11.1.2.3:80 as libipvs writes it: 84 bytes.
    fn service_bytes() -> Vec<u8> {
        let mut b = vec![84, 0, 0x01, 0x80]; // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED
        b.extend([6, 0, 1, 0, 2, 0, 0, 0]); // AF = AF_INET (2), u16 + 2 bytes padding
        b.extend([6, 0, 2, 0, 6, 0, 0, 0]); // PROTOCOL = IPPROTO_TCP (6)
        b.extend([20, 0, 3, 0, 11, 1, 2, 3]); // ADDR: 16 bytes, IPv4 first
        b.extend([0; 12]);
        b.extend([6, 0, 4, 0, 0, 80, 0, 0]); // PORT, network order
        b.extend([8, 0, 6, 0, b'w', b'l', b'c', 0]); // SCHED_NAME "wlc\0"
        b.extend([12, 0, 7, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]); // FLAGS {0, ~0}
        b.extend([8, 0, 8, 0, 0, 0, 0, 0]); // TIMEOUT 0
        b.extend([8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff]); // NETMASK ~0
        b
    }

    fn header(len: u32, cmd: u8) -> Vec<u8> {
        let mut b = len.to_le_bytes().to_vec(); // nlmsg_len
        b.extend(FAMILY_ID.to_le_bytes()); // nlmsg_type: the family
        b.extend([0x05, 0x00]); // NLM_F_REQUEST | NLM_F_ACK
        b.extend(1u32.to_le_bytes()); // seq
        b.extend(0u32.to_le_bytes()); // pid
        b.extend([cmd, 1, 0, 0]); // genl: cmd, version 1, reserved
        b
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn new_service_is_encoded_as_ipvsadm_does() {
        let bytes = encode(request(&Change::AddService(svc())).unwrap().unwrap());
        let mut want = header(104, 1);
        want.extend(service_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn new_dest_is_encoded_as_ipvsadm_does() {
        let d: SocketAddr = "198.18.1.2:8080".parse().unwrap();
        let bytes = encode(request(&Change::AddDest(svc(), d, 3)).unwrap().unwrap());
        let mut dest = vec![72, 0, 0x02, 0x80]; // IPVS_CMD_ATTR_DEST | NLA_F_NESTED: 72 bytes
        dest.extend([6, 0, 11, 0, 2, 0, 0, 0]); // ADDR_FAMILY = AF_INET
        dest.extend([20, 0, 1, 0, 198, 18, 1, 2]); // ADDR
        dest.extend([0; 12]);
        dest.extend([6, 0, 2, 0, 0x1f, 0x90, 0, 0]); // PORT 8080, network order
        dest.extend([8, 0, 3, 0, 0, 0, 0, 0]); // FWD_METHOD = IP_VS_CONN_F_MASQ
        dest.extend([8, 0, 4, 0, 3, 0, 0, 0]); // WEIGHT 3
        dest.extend([8, 0, 5, 0, 0, 0, 0, 0]); // U_THRESH
        dest.extend([8, 0, 6, 0, 0, 0, 0, 0]); // L_THRESH
        let mut want = header(20 + 84 + 72, 5);
        want.extend(service_bytes());
        want.extend(dest);
        assert_eq!(bytes, want);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn every_change_has_its_command() {
        let d: SocketAddr = "198.18.1.2:8080".parse().unwrap();
        let cmd = |c: Change| encode(request(&c).unwrap().unwrap())[16];
        assert_eq!(cmd(Change::RemoveService(svc())), 3);
        assert_eq!(cmd(Change::SetWeight(svc(), d, 0)), 6);
        assert_eq!(cmd(Change::RemoveDest(svc(), d)), 7);
        assert!(request(&Change::AddAddress(d.ip())).unwrap().is_none());
    }

    /// A dump answer as the kernel's ip_vs_genl_fill_service / _fill_dest write them
    /// (with stats nests and, for IPv6, a 16-byte address), parsed back.
    #[test]
    #[cfg(target_endian = "little")]
    fn dumps_parse() {
        let v6 = Service {
            proto: Proto::Udp,
            addr: "[fd01:c::1]:53".parse().unwrap(),
        };
        let mut svc = vec![0, 0, 0x01, 0x80];
        svc.extend([6, 0, 1, 0, 10, 0, 0, 0]); // AF_INET6
        svc.extend([6, 0, 2, 0, 17, 0, 0, 0]); // UDP
        svc.extend([20, 0, 3, 0]);
        svc.extend("fd01:c::1".parse::<Ipv6Addr>().unwrap().octets());
        svc.extend([6, 0, 4, 0, 0, 53, 0, 0]);
        svc.extend([8, 0, 6, 0, b'w', b'l', b'c', 0]);
        svc.extend([12, 0, 10, 0x80, 8, 0, 1, 0, 7, 0, 0, 0]); // STATS { CONNS 7 }
        let len = svc.len() as u16;
        svc[..2].copy_from_slice(&len.to_le_bytes());
        let mut raw = header(20 + u32::from(len), Cmd::NewService as u8);
        raw.extend(&svc);
        let m = Nlmsghdr::<u16, Message>::from_bytes(&mut Cursor::new(&raw[..])).unwrap();
        let NlPayload::Payload(p) = m.nl_payload() else {
            panic!("no payload")
        };
        assert_eq!(parse_service(p).unwrap(), Some(v6));
        // The kernel itself nests with nla_nest_start_noflag: no NLA_F_NESTED bit.
        let mut noflag = raw.clone();
        assert_eq!(noflag[23], 0x80, "the service nest's type, high byte");
        noflag[23] = 0x00;
        let m = Nlmsghdr::<u16, Message>::from_bytes(&mut Cursor::new(&noflag[..])).unwrap();
        let NlPayload::Payload(p) = m.nl_payload() else {
            panic!("no payload")
        };
        assert_eq!(parse_service(p).unwrap(), Some(v6));

        let mut dest = vec![0, 0, 0x02, 0x80];
        dest.extend([20, 0, 1, 0]);
        dest.extend("2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        dest.extend([6, 0, 2, 0, 0, 53, 0, 0]);
        dest.extend([8, 0, 3, 0, 0, 0, 0, 0]);
        dest.extend([8, 0, 4, 0, 0, 0, 0, 0]); // weight 0: quiesced
        dest.extend([8, 0, 7, 0, 2, 0, 0, 0]); // ACTIVE_CONNS 2
        let len = dest.len() as u16;
        dest[..2].copy_from_slice(&len.to_le_bytes());
        let mut raw = header(20 + u32::from(len), Cmd::NewDest as u8);
        raw.extend(&dest);
        let m = Nlmsghdr::<u16, Message>::from_bytes(&mut Cursor::new(&raw[..])).unwrap();
        let NlPayload::Payload(p) = m.nl_payload() else {
            panic!("no payload")
        };
        // No ADDR_FAMILY (an old kernel): the service's family applies.
        let (addr, weight) = parse_dest(p, libc::AF_INET6 as u16).unwrap();
        assert_eq!(addr, "[2001:db8::1]:53".parse().unwrap());
        assert_eq!(weight, 0);
        // A destination without its weight is an error, not a panic or a guess.
        let mut no_weight = vec![0, 0, 0x02, 0x80];
        no_weight.extend([6, 0, 11, 0, 2, 0, 0, 0]);
        no_weight.extend([20, 0, 1, 0, 198, 18, 1, 2]);
        no_weight.extend([0; 12]);
        no_weight.extend([6, 0, 2, 0, 0, 53, 0, 0]);
        let len = no_weight.len() as u16;
        no_weight[..2].copy_from_slice(&len.to_le_bytes());
        let mut raw = header(20 + u32::from(len), Cmd::NewDest as u8);
        raw.extend(&no_weight);
        let m = Nlmsghdr::<u16, Message>::from_bytes(&mut Cursor::new(&raw[..])).unwrap();
        let NlPayload::Payload(p) = m.nl_payload() else {
            panic!("no payload")
        };
        assert!(matches!(parse_dest(p, 2), Err(KernelError::Unreadable(_))));
    }
}
