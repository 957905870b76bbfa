//! The overlay's kernel backend over rtnetlink (neli): hawser's VXLAN devices, their
//! addresses, permanent neighbour entries, forwarding (FDB) entries and routes.
//!
//! What hawser owns, and so what a read reports:
//! - links of kind `vxlan` named `vtep…` ([`super::desired::device_name`]);
//! - every address on them: hawser creates them with IPv6 address generation off
//!   (`addrgenmode none`), so the kernel adds no link-local of its own and the one an
//!   IPv6 network needs is programmed like any other address;
//! - their `PERMANENT` neighbour and FDB entries (learning is off, so the kernel adds
//!   no FDB entry of its own; dynamic neighbours are the kernel's cache);
//! - routes in the main table out of them that carry [`ROUTE_PROTO`]: a route an
//!   operator adds by hand (another protocol) is left alone.
//!
//! Each [`Change`] is one request the kernel ACKs, except that creating a device also
//! turns address generation off, and the first request that needs a new device's index
//! looks it up. Removing what is already gone succeeds: a pass that failed half-way, or
//! an operator, may have removed it first.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use neli::consts::nl::NlmF;
use neli::consts::rtnl::{
    Ifa, Iff, Ifla, IflaInfo, Nda, Ntf, Nud, RtAddrFamily, RtScope, RtTable, Rta, Rtm, Rtn, Rtprot,
};
use neli::router::synchronous::NlRouter;
use neli::rtnl::{
    Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, Ndmsg, NdmsgBuilder, Rtmsg,
    RtmsgBuilder,
};
use neli::types::{Buffer, RtBuffer};
use neli::{FromBytesWithInput, Size, ToBytes};

use super::kernel::{Kernel, KernelError};
use super::state::{Change, Device, IfAddr, Link, Programmed};
use super::vtep::Mac;
use crate::kernel::failed;
use crate::prefix::Prefix;
use crate::rtnetlink::{
    NlFail, ack, address, connect, ifindex, ip_bytes, ip_from, link_by_name, request, rtattr,
};

// IFLA_VXLAN_* in include/uapi/linux/if_link.h; neli 0.7.5 names none of them.
const VXLAN_ID: u16 = 1;
const VXLAN_LOCAL: u16 = 4;
const VXLAN_LEARNING: u16 = 7;
const VXLAN_PORT: u16 = 15;
const VXLAN_LOCAL6: u16 = 17;
// IFLA_INET6_ADDR_GEN_MODE and IN6_ADDR_GEN_MODE_NONE, also in if_link.h.
const INET6_ADDR_GEN_MODE: u16 = 8;
const ADDR_GEN_MODE_NONE: u8 = 1;
/// The family of FDB requests (neli's `RtAddrFamily` has no name for it).
const AF_BRIDGE: u8 = libc::AF_BRIDGE as u8;

/// The routing protocol number hawser's routes carry (`ip route` shows `proto 72`).
/// rtnetlink.h leaves numbers above `RTPROT_STATIC` to routing daemons, and iproute2's
/// `rt_protos` assigns none to 72: the mark is how a read tells hawser's routes from an
/// operator's.
pub const ROUTE_PROTO: u8 = 72;

/// hawser's VXLAN devices are named `vtep<vni>`.
const NAME_PREFIX: &str = "vtep";

/// The overlay's kernel state over rtnetlink, in the network namespace of the thread
/// that opened it.
pub struct Rtnl {
    router: NlRouter,
    /// Interface indexes of hawser's devices by name, from the last read and from
    /// lookups after creation: every request but a link's names the device by index.
    index: BTreeMap<String, i32>,
    /// Requests sent since the last [`Kernel::apply`] began.
    sent: usize,
}

impl Rtnl {
    /// Open rtnetlink in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl, KernelError> {
        Ok(Rtnl {
            router: connect()?,
            index: BTreeMap::new(),
            sent: 0,
        })
    }

    /// A dump of every object of one kind; `read` keeps what hawser owns.
    fn dump<P, T>(
        &self,
        kind: Rtm,
        msg: P,
        what: &str,
        read: impl FnMut(&P) -> Result<Option<T>, KernelError>,
    ) -> Result<Vec<T>, KernelError>
    where
        P: Size + ToBytes + FromBytesWithInput<Input = usize> + std::fmt::Debug,
    {
        request(&self.router, kind, NlmF::DUMP, msg, read)
            .map_err(|e| failed(format!("dump {what}"), e))?
            .into_iter()
            .filter_map(Result::transpose)
            .collect()
    }

    /// hawser's devices, by interface index.
    fn links(&self) -> Result<BTreeMap<i32, (String, Link)>, KernelError> {
        let msg = built(
            IfinfomsgBuilder::default()
                .ifi_family(RtAddrFamily::Unspecified)
                .build(),
        )?;
        let links = self.dump(Rtm::Getlink, msg, "links", link_of)?;
        Ok(links.into_iter().map(|(i, n, l)| (i, (n, l))).collect())
    }

    /// The addresses on hawser's devices.
    fn addresses(&self, links: &mut BTreeMap<i32, (String, Link)>) -> Result<(), KernelError> {
        let msg = built(
            IfaddrmsgBuilder::default()
                .ifa_family(RtAddrFamily::Unspecified)
                .ifa_prefixlen(0)
                .ifa_scope(RtScope::Universe)
                .ifa_index(0)
                .build(),
        )?;
        let rows = self.dump(Rtm::Getaddr, msg, "addresses", |a: &Ifaddrmsg| {
            let index = *a.ifa_index() as i32;
            let h = a.rtattrs().get_attr_handle();
            let attr = h
                .get_attribute(Ifa::Local)
                .or_else(|| h.get_attribute(Ifa::Address));
            match attr {
                Some(attr) if links.contains_key(&index) => Ok(Some((
                    index,
                    IfAddr {
                        ip: ip_from(attr.rta_payload().as_ref())?,
                        len: *a.ifa_prefixlen(),
                    },
                ))),
                _ => Ok(None),
            }
        })?;
        for (index, addr) in rows {
            edit(links, index, |l| {
                l.addresses.insert(addr);
            });
        }
        Ok(())
    }

    /// Permanent entries of one neighbour table (`families`: inet and inet6 for the
    /// neighbours, bridge for the FDB) on hawser's devices: (index, address, MAC).
    fn neighbours(
        &self,
        family: u8,
        families: &[i32],
        links: &BTreeMap<i32, (String, Link)>,
    ) -> Result<Vec<(i32, IpAddr, Mac)>, KernelError> {
        let msg = built(
            NdmsgBuilder::default()
                .ndm_family(RtAddrFamily::from(family))
                .ndm_index(0)
                .ndm_state(Nud::empty())
                .ndm_type(Rtn::Unspec)
                .build(),
        )?;
        self.dump(Rtm::Getneigh, msg, "neighbours", |n: &Ndmsg| {
            let ours = families.contains(&i32::from(u8::from(*n.ndm_family())))
                && links.contains_key(n.ndm_index())
                && n.ndm_state().contains(Nud::PERMANENT);
            let h = n.rtattrs().get_attr_handle();
            let (Some(dst), Some(mac)) = (h.get_attribute(Nda::Dst), h.get_attribute(Nda::Lladdr))
            else {
                return Ok(None);
            };
            // The all-zero MAC is the kernel's default forwarding entry, not a peer's.
            match <[u8; 6]>::try_from(mac.rta_payload().as_ref()) {
                Ok(mac) if ours && mac != [0; 6] => Ok(Some((
                    *n.ndm_index(),
                    ip_from(dst.rta_payload().as_ref())?,
                    Mac(mac),
                ))),
                _ => Ok(None),
            }
        })
    }

    /// hawser's routes on its devices: (index, destination, gateway).
    fn routes(
        &self,
        links: &BTreeMap<i32, (String, Link)>,
    ) -> Result<Vec<(i32, Prefix, IpAddr)>, KernelError> {
        let (family, proto) = (RtAddrFamily::Unspecified, Rtprot::Unspec);
        let msg = route(family, 0, proto, RtScope::Universe, RtBuffer::new())?;
        self.dump(Rtm::Getroute, msg, "routes", |r: &Rtmsg| {
            let h = r.rtattrs().get_attr_handle();
            let table = match h.get_attribute(Rta::Table) {
                Some(t) => {
                    u32::from_ne_bytes(fixed(Some(t.rta_payload().as_ref()), "route table")?)
                }
                None => u32::from(u8::from(*r.rtm_table())),
            };
            let oif = match h.get_attribute(Rta::Oif) {
                Some(o) => {
                    i32::from_ne_bytes(fixed(Some(o.rta_payload().as_ref()), "route device")?)
                }
                None => 0,
            };
            let ours = u8::from(*r.rtm_protocol()) == ROUTE_PROTO
                && table == u32::from(u8::from(RtTable::Main))
                && links.contains_key(&oif);
            let Some(gateway) = h.get_attribute(Rta::Gateway).filter(|_| ours) else {
                return Ok(None);
            };
            let dst = match h.get_attribute(Rta::Dst) {
                Some(d) => ip_from(d.rta_payload().as_ref())?,
                None if u8::from(*r.rtm_family()) == libc::AF_INET6 as u8 => {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                }
                None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            let len = *r.rtm_dst_len();
            let to = Prefix::new(dst, len)
                .ok_or_else(|| KernelError::Unreadable(format!("a route to {dst}/{len}")))?;
            Ok(Some((oif, to, ip_from(gateway.rta_payload().as_ref())?)))
        })
    }

    fn ack<P>(&mut self, kind: Rtm, flags: NlmF, msg: P) -> Result<(), NlFail>
    where
        P: Size + ToBytes + FromBytesWithInput<Input = usize> + std::fmt::Debug,
    {
        self.sent += 1;
        ack(&self.router, kind, flags, msg)
    }

    /// The index of device `name`, or `None` if it does not exist.
    fn index_of(&mut self, name: &str) -> Result<Option<i32>, NlFail> {
        if let Some(i) = self.index.get(name) {
            return Ok(Some(*i));
        }
        self.sent += 1;
        let found = ifindex(&self.router, name)?;
        if let Some(i) = found {
            self.index.insert(name.to_owned(), i);
        }
        Ok(found)
    }

    /// The index of device `name`, which must exist to add something to it.
    fn need(&mut self, name: &str) -> Result<i32, NlFail> {
        self.index_of(name)?
            .ok_or_else(|| NlFail::from(failed(format!("look up {name}"), "no such device")))
    }

    /// Remove something from device `name` with `msg(index)`; a missing device, or
    /// the thing already gone, is success.
    fn remove<P>(
        &mut self,
        name: &str,
        kind: Rtm,
        msg: impl FnOnce(i32) -> Result<P, KernelError>,
    ) -> Result<(), NlFail>
    where
        P: Size + ToBytes + FromBytesWithInput<Input = usize> + std::fmt::Debug,
    {
        let Some(index) = self.index_of(name)? else {
            return Ok(());
        };
        gone_is_done(self.ack(kind, NlmF::empty(), msg(index)?))
    }

    fn add_link(&mut self, name: &str, d: &Device) -> Result<(), NlFail> {
        // The new device gets a new index, looked up when first needed.
        self.index.remove(name);
        let mut data = RtBuffer::new();
        data.push(rtattr(VXLAN_ID, d.vni)?);
        data.push(match d.local {
            IpAddr::V4(_) => rtattr(VXLAN_LOCAL, ip_bytes(d.local))?,
            IpAddr::V6(_) => rtattr(VXLAN_LOCAL6, ip_bytes(d.local))?,
        });
        // The port in network byte order, unlike every other number here.
        data.push(rtattr(
            VXLAN_PORT,
            Buffer::from(d.port.to_be_bytes().to_vec()),
        )?);
        // hawser programs every forwarding entry; a learned one could point a peer's
        // MAC at a spoofed underlay address.
        data.push(rtattr(VXLAN_LEARNING, 0u8)?);
        let mut info = RtBuffer::new();
        info.push(rtattr(IflaInfo::Kind, "vxlan")?);
        info.push(rtattr(IflaInfo::Data, data)?);
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::Mtu, u32::from(d.mtu))?);
        attrs.push(rtattr(Ifla::Address, Buffer::from(d.mac.0.to_vec()))?);
        attrs.push(rtattr(Ifla::Linkinfo, info)?);
        let msg: Ifinfomsg = built(link_by_name(name, attrs)?.build())?;
        self.ack(Rtm::Newlink, NlmF::CREATE | NlmF::EXCL, msg)?;
        // Address generation can only be set once the device exists (the kernel refuses
        // IFLA_AF_SPEC in the creating request).
        let mut inet6 = RtBuffer::new();
        inet6.push(rtattr(INET6_ADDR_GEN_MODE, ADDR_GEN_MODE_NONE)?);
        let mut af = RtBuffer::new();
        af.push(rtattr(libc::AF_INET6 as u16, inet6)?);
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::AfSpec, af)?);
        let msg: Ifinfomsg = built(link_by_name(name, attrs)?.build())?;
        match self.ack(Rtm::Setlink, NlmF::empty(), msg) {
            // A kernel without IPv6 makes no link-local address either.
            Err(e) if e.errno == Some(libc::EAFNOSUPPORT) => Ok(()),
            other => other,
        }
    }

    fn change(&mut self, change: &Change) -> Result<(), NlFail> {
        match change {
            Change::AddLink(name, device) => self.add_link(name, device),
            Change::RemoveLink(name) => {
                self.index.remove(name);
                let msg: Ifinfomsg = built(link_by_name(name, RtBuffer::new())?.build())?;
                gone_is_done(self.ack(Rtm::Dellink, NlmF::empty(), msg))
            }
            Change::SetUp(name, up) => {
                let flags = if *up { Iff::UP } else { Iff::empty() };
                let msg: Ifinfomsg = built(
                    link_by_name(name, RtBuffer::new())?
                        .ifi_flags(flags)
                        .ifi_change(Iff::UP)
                        .build(),
                )?;
                self.ack(Rtm::Setlink, NlmF::empty(), msg)
            }
            Change::AddAddress(name, a) => {
                let msg = address(self.need(name)?, a.ip, a.len)?;
                self.ack(Rtm::Newaddr, NlmF::CREATE | NlmF::REPLACE, msg)
            }
            Change::RemoveAddress(name, a) => {
                self.remove(name, Rtm::Deladdr, |i| address(i, a.ip, a.len))
            }
            Change::SetNeighbour(name, ip, mac) => {
                let msg = neighbour(family(*ip), self.need(name)?, Some(*ip), Some(*mac))?;
                self.ack(Rtm::Newneigh, NlmF::CREATE | NlmF::REPLACE, msg)
            }
            Change::RemoveNeighbour(name, ip) => self.remove(name, Rtm::Delneigh, |i| {
                neighbour(family(*ip), i, Some(*ip), None)
            }),
            Change::SetFdb(name, mac, dst) => {
                let msg = neighbour(AF_BRIDGE, self.need(name)?, Some(*dst), Some(*mac))?;
                self.ack(Rtm::Newneigh, NlmF::CREATE | NlmF::REPLACE, msg)
            }
            Change::RemoveFdb(name, mac) => self.remove(name, Rtm::Delneigh, |i| {
                neighbour(AF_BRIDGE, i, None, Some(*mac))
            }),
            Change::SetRoute(name, to, via) => {
                let msg = route_to(*to, self.need(name)?, Some(*via))?;
                self.ack(Rtm::Newroute, NlmF::CREATE | NlmF::REPLACE, msg)
            }
            Change::RemoveRoute(name, to) => {
                self.remove(name, Rtm::Delroute, |i| route_to(*to, i, None))
            }
        }
    }
}

impl Kernel for Rtnl {
    fn read(&mut self) -> Result<Programmed, KernelError> {
        let mut links = self.links()?;
        self.index = links.iter().map(|(i, (n, _))| (n.clone(), *i)).collect();
        self.addresses(&mut links)?;
        let inet = [libc::AF_INET, libc::AF_INET6];
        let unspec = libc::AF_UNSPEC as u8;
        for (index, ip, mac) in self.neighbours(unspec, &inet, &links)? {
            edit(&mut links, index, |l| {
                l.neighbours.insert(ip, mac);
            });
        }
        let bridge = [libc::AF_BRIDGE];
        for (index, dst, mac) in self.neighbours(AF_BRIDGE, &bridge, &links)? {
            edit(&mut links, index, |l| {
                l.fdb.insert(mac, dst);
            });
        }
        for (index, to, via) in self.routes(&links)? {
            edit(&mut links, index, |l| {
                l.routes.insert(to, via);
            });
        }
        Ok(Programmed {
            links: links.into_values().collect(),
        })
    }

    fn apply(&mut self, _current: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
        self.sent = 0;
        for c in changes {
            self.change(c).map_err(|e| failed(c.to_string(), e))?;
        }
        Ok(self.sent)
    }
}

/// A request's builder error: a bug here, reported as a failed request.
fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, KernelError> {
    r.map_err(|e| failed("build a netlink request", e))
}

fn gone_is_done(r: Result<(), NlFail>) -> Result<(), NlFail> {
    match r {
        Err(e) if e.is_gone() => Ok(()),
        other => other,
    }
}

fn edit(links: &mut BTreeMap<i32, (String, Link)>, index: i32, f: impl FnOnce(&mut Link)) {
    if let Some((_, link)) = links.get_mut(&index) {
        f(link);
    }
}

fn family(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// An attribute's payload as exactly `N` bytes.
fn fixed<const N: usize>(bytes: Option<&[u8]>, what: &str) -> Result<[u8; N], KernelError> {
    let bytes = bytes.ok_or_else(|| KernelError::Unreadable(format!("no {what}")))?;
    <[u8; N]>::try_from(bytes)
        .map_err(|_| KernelError::Unreadable(format!("{what} of {} bytes", bytes.len())))
}

/// A string attribute, without the kernel's terminating NUL.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes.strip_suffix(&[0]).unwrap_or(bytes)).into_owned()
}

/// One link of a dump, if it is one of hawser's VXLAN devices.
fn link_of(m: &Ifinfomsg) -> Result<Option<(i32, String, Link)>, KernelError> {
    let attrs = m.rtattrs().get_attr_handle();
    let name = match attrs.get_attribute(Ifla::Ifname) {
        Some(n) => text(n.rta_payload().as_ref()),
        None => return Ok(None),
    };
    if !name.starts_with(NAME_PREFIX) || attrs.get_attribute(Ifla::Linkinfo).is_none() {
        return Ok(None);
    }
    let unreadable = |what: &str, e: &dyn std::fmt::Display| {
        KernelError::Unreadable(format!("{name}: {what}: {e}"))
    };
    let info = attrs
        .get_nested_attributes::<IflaInfo>(Ifla::Linkinfo)
        .map_err(|e| unreadable("link info", &e))?;
    let kind = info
        .get_attribute(IflaInfo::Kind)
        .map(|k| text(k.rta_payload().as_ref()));
    if kind.as_deref() != Some("vxlan") {
        return Ok(None);
    }
    let data = info
        .get_nested_attributes::<u16>(IflaInfo::Data)
        .map_err(|e| unreadable("vxlan settings", &e))?;
    let get = |t: u16| data.get_attribute(t).map(|a| a.rta_payload().as_ref());
    let local = match get(VXLAN_LOCAL).or_else(|| get(VXLAN_LOCAL6)) {
        Some(b) => ip_from(b)?,
        // A device without a local address reads as 0.0.0.0, which no desired device
        // has: the diff recreates it.
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let mtu = u32::from_ne_bytes(fixed(
        attrs
            .get_attribute(Ifla::Mtu)
            .map(|a| a.rta_payload().as_ref()),
        "MTU",
    )?);
    let device = Device {
        vni: u32::from_ne_bytes(fixed(get(VXLAN_ID), "VNI")?),
        port: u16::from_be_bytes(fixed(get(VXLAN_PORT), "port")?),
        mtu: u16::try_from(mtu).map_err(|e| unreadable("MTU", &e))?,
        mac: Mac(fixed(
            attrs
                .get_attribute(Ifla::Address)
                .map(|a| a.rta_payload().as_ref()),
            "MAC",
        )?),
        local,
    };
    let mut link = Link::new(device);
    link.up = m.ifi_flags().contains(Iff::UP);
    Ok(Some((*m.ifi_index(), name, link)))
}

/// A neighbour request: permanent, on the device itself (`NTF_SELF`: for the FDB, the
/// VXLAN device's own table, as `bridge fdb … self` writes).
fn neighbour(
    family: u8,
    index: i32,
    ip: Option<IpAddr>,
    mac: Option<Mac>,
) -> Result<Ndmsg, KernelError> {
    let mut attrs = RtBuffer::new();
    if let Some(ip) = ip {
        attrs.push(rtattr(Nda::Dst, ip_bytes(ip))?);
    }
    if let Some(mac) = mac {
        attrs.push(rtattr(Nda::Lladdr, Buffer::from(mac.0.to_vec()))?);
    }
    let flags = if family == AF_BRIDGE {
        Ntf::SELF
    } else {
        Ntf::empty()
    };
    built(
        NdmsgBuilder::default()
            .ndm_family(RtAddrFamily::from(family))
            .ndm_index(index)
            .ndm_state(Nud::PERMANENT)
            .ndm_flags(flags)
            .ndm_type(Rtn::Unspec)
            .rtattrs(attrs)
            .build(),
    )
}

/// A route message.
fn route(
    family: RtAddrFamily,
    len: u8,
    proto: Rtprot,
    scope: RtScope,
    attrs: RtBuffer<Rta, Buffer>,
) -> Result<Rtmsg, KernelError> {
    built(
        RtmsgBuilder::default()
            .rtm_family(family)
            .rtm_dst_len(len)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(RtTable::Main)
            .rtm_protocol(proto)
            .rtm_scope(scope)
            .rtm_type(Rtn::Unicast)
            .rtattrs(attrs)
            .build(),
    )
}

/// A request for hawser's route to `to` out of device `index`: via `via` to set it,
/// without a gateway to remove it (scope "nowhere" then matches a route of any scope,
/// as `ip route del` does).
fn route_to(to: Prefix, index: i32, via: Option<IpAddr>) -> Result<Rtmsg, KernelError> {
    let mut attrs = RtBuffer::new();
    attrs.push(rtattr(Rta::Dst, ip_bytes(to.addr()))?);
    attrs.push(rtattr(Rta::Oif, index as u32)?);
    let scope = match via {
        Some(via) => {
            attrs.push(rtattr(Rta::Gateway, ip_bytes(via))?);
            RtScope::Universe
        }
        None => RtScope::Nowhere,
    };
    let family = RtAddrFamily::from(family(to.addr()));
    route(
        family,
        to.prefix_len(),
        Rtprot::from(ROUTE_PROTO),
        scope,
        attrs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link as a dump would carry it: `name`, of `kind`, with VXLAN attributes
    /// `vni` (raw bytes), port 64000 and local 198.18.0.1, and an MTU if given.
    fn dumped(name: &str, kind: &str, vni: &[u8], mtu: Option<u32>) -> Ifinfomsg {
        let mut data = RtBuffer::new();
        data.push(rtattr(VXLAN_ID, Buffer::from(vni.to_vec())).unwrap());
        data.push(rtattr(VXLAN_PORT, Buffer::from(vec![0xfa, 0x00])).unwrap());
        data.push(rtattr(VXLAN_LOCAL, Buffer::from(vec![198, 18, 0, 1])).unwrap());
        let mut info = RtBuffer::new();
        info.push(rtattr(IflaInfo::Kind, kind).unwrap());
        info.push(rtattr(IflaInfo::Data, data).unwrap());
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::Address, Buffer::from(vec![2, 0, 0, 0, 0, 7])).unwrap());
        if let Some(mtu) = mtu {
            attrs.push(rtattr(Ifla::Mtu, mtu).unwrap());
        }
        attrs.push(rtattr(Ifla::Linkinfo, info).unwrap());
        link_by_name(name, attrs)
            .unwrap()
            .ifi_index(7)
            .ifi_flags(Iff::UP)
            .build()
            .unwrap()
    }

    #[test]
    fn a_vxlan_link_reads_with_its_port_in_network_order() {
        let vni = 1024u32.to_ne_bytes();
        let (index, name, link) = link_of(&dumped("vtep1024", "vxlan", &vni, Some(1420)))
            .unwrap()
            .unwrap();
        assert_eq!((index, name.as_str()), (7, "vtep1024"));
        assert!(link.up);
        assert_eq!(
            link.device,
            Device {
                vni: 1024,
                port: 64000,
                mtu: 1420,
                mac: Mac([2, 0, 0, 0, 0, 7]),
                local: IpAddr::from([198, 18, 0, 1]),
            }
        );
    }

    #[test]
    fn other_links_are_not_hawsers_and_odd_answers_are_unreadable() {
        let vni = 1024u32.to_ne_bytes();
        assert_eq!(
            link_of(&dumped("eth0", "vxlan", &vni, Some(1420))),
            Ok(None)
        );
        assert_eq!(
            link_of(&dumped("vtep1", "bridge", &vni, Some(1420))),
            Ok(None)
        );
        for odd in [
            dumped("vtep1", "vxlan", &vni[..3], Some(1420)),
            dumped("vtep1", "vxlan", &vni, None),
            dumped("vtep1", "vxlan", &vni, Some(70_000)),
        ] {
            assert!(
                matches!(link_of(&odd), Err(KernelError::Unreadable(_))),
                "{:?}",
                link_of(&odd)
            );
        }
        // Link info whose one attribute claims more bytes than it has.
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::Linkinfo, Buffer::from(vec![200, 0, 1, 0, b'v'])).unwrap());
        let msg = link_by_name("vtep1", attrs).unwrap().build().unwrap();
        assert!(matches!(link_of(&msg), Err(KernelError::Unreadable(_))));
    }
}
