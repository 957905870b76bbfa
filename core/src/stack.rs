//! hawser's node protocol: the protocols every hawser node runs, composed with
//! [`Ctx::scope`] into one [`Protocol`].
//!
//! Each sub-protocol has a channel byte that prefixes its messages. Membership owns the
//! links (it dials and hangs up); the protocols above it only send over the links it
//! keeps, and learn of neighbours from its events.

use crate::id::{Addr, NodeId};
use crate::link::{ConnectError, DownReason};
use crate::membership::{
    ConfigError, Membership, MembershipConfig, MembershipEvent, Timer as MembershipTimer,
};
use crate::persist::{PersistSeq, Snapshot};
use crate::protocol::{Ctx, Protocol};
use crate::wire::WireError;

/// Channel of membership messages.
const MEMBERSHIP: u8 = 0;

#[derive(Debug)]
pub enum StackTimer {
    Membership(MembershipTimer),
}

/// Everything the node tells its user, by protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackEvent {
    Membership(MembershipEvent),
}

/// Settings of every protocol in the stack.
#[derive(Clone, Debug, Default)]
pub struct StackConfig {
    pub membership: MembershipConfig,
}

pub struct Stack {
    membership: Membership,
}

type Cx<'a, 'b> = Ctx<'a, StackTimer, StackEvent>;

impl Stack {
    /// A node's protocols, rebuilt from what its disk held (`recovered`). `contacts` are
    /// the addresses it joins through.
    pub fn new(
        config: StackConfig,
        contacts: Vec<Addr>,
        recovered: &Snapshot,
    ) -> Result<Stack, ConfigError> {
        Ok(Stack {
            membership: Membership::new(config.membership, contacts, recovered)?,
        })
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Run `f` on membership in its own scope, and pass on what it reported.
    fn membership_scope<R>(
        &mut self,
        ctx: &mut Cx<'_, '_>,
        f: impl FnOnce(&mut Membership, &mut Ctx<'_, MembershipTimer, MembershipEvent>) -> R,
    ) -> R {
        let unwrap = |t| match t {
            StackTimer::Membership(t) => Some(t),
        };
        let (r, events) = ctx.scope(MEMBERSHIP, StackTimer::Membership, unwrap, |c| {
            f(&mut self.membership, c)
        });
        for e in events {
            ctx.emit(StackEvent::Membership(e));
        }
        r
    }
}

impl Protocol for Stack {
    type Timer = StackTimer;
    type Event = StackEvent;

    fn start(&mut self, ctx: &mut Cx<'_, '_>) {
        self.membership_scope(ctx, |m, c| m.start(c));
    }

    fn link_up(&mut self, peer: NodeId, addr: &Addr, ctx: &mut Cx<'_, '_>) {
        self.membership_scope(ctx, |m, c| m.link_up(peer, addr, c));
    }

    fn link_down(&mut self, peer: NodeId, reason: DownReason, ctx: &mut Cx<'_, '_>) {
        self.membership_scope(ctx, |m, c| m.link_down(peer, reason, c));
    }

    fn connect_failed(
        &mut self,
        addr: &Addr,
        expected: Option<NodeId>,
        error: ConnectError,
        ctx: &mut Cx<'_, '_>,
    ) {
        self.membership_scope(ctx, |m, c| m.connect_failed(addr, expected, error, c));
    }

    fn message(
        &mut self,
        from: NodeId,
        body: &[u8],
        ctx: &mut Cx<'_, '_>,
    ) -> Result<(), WireError> {
        match body.split_first() {
            Some((&MEMBERSHIP, rest)) => {
                self.membership_scope(ctx, |m, c| m.message(from, rest, c))
            }
            Some((other, _)) => Err(WireError::Payload(format!(
                "unknown protocol channel {other}"
            ))),
            None => Err(WireError::Payload("empty message".into())),
        }
    }

    fn timer(&mut self, timer: StackTimer, ctx: &mut Cx<'_, '_>) {
        match timer {
            StackTimer::Membership(t) => self.membership_scope(ctx, |m, c| m.timer(t, c)),
        }
    }

    fn persisted(&mut self, seq: PersistSeq, ctx: &mut Cx<'_, '_>) {
        self.membership_scope(ctx, |m, c| m.persisted(seq, c));
    }
}
