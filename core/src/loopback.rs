//! Two nodes wired to each other in memory, every frame passed by hand at one instant:
//! for tests and benchmarks of the link layer or a protocol, with no driver, simulator
//! or clock.

use crate::id::{Addr, Name, NodeId};
use crate::link::{ConnId, Cookie, LinkConfig, Transmit};
use crate::node::{Identity, Node};
use crate::protocol::Protocol;
use crate::time::Instant;

/// Node `n{id}` at address `n{id}` running `protocol`, started at time zero. Every node
/// made here has the same cookie, so any two of them link.
pub fn node<P: Protocol>(id: u64, link: LinkConfig, protocol: P) -> Node<P> {
    let identity = Identity {
        id: NodeId(id),
        name: Name::new(format!("n{id}")).expect("a short name"),
        addr: Addr::new(format!("n{id}")).expect("a short address"),
        cookie: Cookie::new("loopback-cookie-0123456789").expect("a valid cookie"),
    };
    let mut n = Node::new(link, identity, id, protocol).expect("a valid link config");
    n.handle_start(Instant::ZERO);
    n
}

/// `a` dials `b`, which it knows as `addr`, and both ends take the connection; the
/// hellos are queued, not passed (see [`pump`]). Their connection ids, or `None` if `a`
/// made no dial (a transmit other than the dial was queued first, and is dropped).
pub fn connect<P: Protocol, Q: Protocol>(
    a: &mut Node<P>,
    b: &mut Node<Q>,
    addr: Addr,
) -> Option<(ConnId, ConnId)> {
    let now = Instant::ZERO;
    a.command(now, |_, ctx| ctx.connect(addr, None));
    let Some(Transmit::Connect { conn: ca, .. }) = a.poll_transmit() else {
        return None;
    };
    let cb = b.handle_accept(now);
    a.handle_connected(now, ca);
    Some((ca, cb))
}

/// Which way a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    AtoB,
    BtoA,
}

/// Pass frames between `a` (its end `ca`) and `b` (its end `cb`) until neither has one
/// to send; `each` sees every frame first and may alter it. Other transmits (dials,
/// closes) are dropped.
pub fn pump<P: Protocol, Q: Protocol>(
    a: &mut Node<P>,
    ca: ConnId,
    b: &mut Node<Q>,
    cb: ConnId,
    mut each: impl FnMut(Way, &mut Vec<u8>),
) {
    let now = Instant::ZERO;
    loop {
        let mut moved = false;
        while let Some(t) = a.poll_transmit() {
            if let Transmit::Send { mut frame, .. } = t {
                each(Way::AtoB, &mut frame);
                b.handle_frame(now, cb, &frame);
                moved = true;
            }
        }
        while let Some(t) = b.poll_transmit() {
            if let Transmit::Send { mut frame, .. } = t {
                each(Way::BtoA, &mut frame);
                a.handle_frame(now, ca, &frame);
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Ctx;
    use crate::wire::WireError;

    struct Quiet;

    impl Protocol for Quiet {
        type Timer = ();
        type Event = ();
        fn start(&mut self, _: &mut Ctx<'_, (), ()>) {}
        fn message(
            &mut self,
            _: NodeId,
            _: &[u8],
            _: &mut Ctx<'_, (), ()>,
        ) -> Result<(), WireError> {
            Ok(())
        }
        fn timer(&mut self, _: (), _: &mut Ctx<'_, (), ()>) {}
    }

    #[test]
    fn two_nodes_link_through_the_pump_and_every_frame_is_seen() {
        let (mut a, mut b) = (
            node(1, LinkConfig::default(), Quiet),
            node(2, LinkConfig::default(), Quiet),
        );
        let (ca, cb) = connect(&mut a, &mut b, Addr::new("n2").unwrap()).unwrap();
        let mut ways = Vec::new();
        pump(&mut a, ca, &mut b, cb, |way, _| ways.push(way));
        assert!(a.links().is_linked(NodeId(2)) && b.links().is_linked(NodeId(1)));
        assert!(ways.contains(&Way::AtoB) && ways.contains(&Way::BtoA));
    }
}
