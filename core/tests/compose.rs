//! Two protocols composed into one node through `Ctx::scope`: each keeps its own timer
//! and event types, timers come back to the right child, events come back to the parent.

use hawser_core::wire::WireError;
use hawser_core::{
    Addr, Cookie, Ctx, Duration, Event, Identity, Instant, LinkConfig, Name, Node, NodeId, Protocol,
};

/// A child that ticks every `period` and reports each tick; it cancels its first timer
/// and replaces it, to prove cancellation reaches through the parent.
struct Ticker {
    period: Duration,
    ticks: u32,
}

impl Ticker {
    fn start(&mut self, ctx: &mut Ctx<'_, u32, String>) {
        let first = ctx.set_timer(Duration::from_secs(999), 0);
        assert_eq!(
            ctx.cancel_timer(first),
            Some(0),
            "cancelled through the parent's queue"
        );
        ctx.set_timer(self.period, 1);
    }
    fn timer(&mut self, n: u32, ctx: &mut Ctx<'_, u32, String>) {
        self.ticks += 1;
        ctx.emit(format!("tick {n} at {:?}", ctx.now()));
        ctx.set_timer(self.period, n + 1);
    }
}

#[derive(Debug)]
enum Timer {
    Fast(u32),
    Slow(u32),
}

struct Pair {
    fast: Ticker,
    slow: Ticker,
}

impl Protocol for Pair {
    type Timer = Timer;
    type Event = String;

    fn start(&mut self, ctx: &mut Ctx<'_, Timer, String>) {
        let fast = |t| match t {
            Timer::Fast(n) => Some(n),
            _ => None,
        };
        let slow = |t| match t {
            Timer::Slow(n) => Some(n),
            _ => None,
        };
        ctx.scope(0, Timer::Fast, fast, |c| self.fast.start(c));
        ctx.scope(1, Timer::Slow, slow, |c| self.slow.start(c));
    }
    fn message(
        &mut self,
        _: NodeId,
        _: &[u8],
        _: &mut Ctx<'_, Timer, String>,
    ) -> Result<(), WireError> {
        Ok(())
    }
    fn timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Timer, String>) {
        let (_, events) = match timer {
            Timer::Fast(n) => ctx.scope(
                0,
                Timer::Fast,
                |t| {
                    if let Timer::Fast(n) = t {
                        Some(n)
                    } else {
                        None
                    }
                },
                |c| self.fast.timer(n, c),
            ),
            Timer::Slow(n) => ctx.scope(
                1,
                Timer::Slow,
                |t| {
                    if let Timer::Slow(n) = t {
                        Some(n)
                    } else {
                        None
                    }
                },
                |c| self.slow.timer(n, c),
            ),
        };
        for e in events {
            ctx.emit(e);
        }
    }
}

#[test]
fn children_keep_their_own_timers_and_events() {
    let identity = Identity {
        id: NodeId(1),
        name: Name::new("a").unwrap(),
        addr: Addr::new("a").unwrap(),
        cookie: Cookie::new("c").unwrap(),
    };
    let pair = Pair {
        fast: Ticker {
            period: Duration::from_millis(100),
            ticks: 0,
        },
        slow: Ticker {
            period: Duration::from_millis(250),
            ticks: 0,
        },
    };
    let mut node = Node::new(LinkConfig::default(), identity, 1, pair).unwrap();
    node.handle_start(Instant::ZERO);
    while let Some(t) = node.poll_timeout() {
        if t > Instant::ZERO + Duration::from_secs(1) {
            break;
        }
        node.handle_timeout(t);
    }
    assert_eq!(
        (node.protocol().fast.ticks, node.protocol().slow.ticks),
        (10, 4)
    );
    let events: Vec<String> = std::iter::from_fn(|| node.poll_event())
        .filter_map(|e| if let Event::App(s) = e { Some(s) } else { None })
        .collect();
    assert_eq!(events.len(), 14);
    assert_eq!(events[0], "tick 1 at 100ms");
    assert_eq!(events[1], "tick 2 at 200ms");
    assert_eq!(
        events[2], "tick 1 at 250ms",
        "events keep the order they happened in"
    );
}
