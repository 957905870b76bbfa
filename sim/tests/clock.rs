//! A node's own clock (`Sim::set_clock`): the `now` it is handed and the deadlines it
//! asks for run at its clock's rate, jump with its steps, and never go backwards.

use hawser_core::wire::WireError;
use hawser_core::{Ctx, Duration, Instant, Protocol};
use hawser_sim::{Sim, SimConfig};

/// Sets a one-second timer, again and again, and notes the `now` of every firing.
struct Ticker {
    seen: Vec<Instant>,
}

impl Protocol for Ticker {
    type Timer = ();
    type Event = ();

    fn start(&mut self, ctx: &mut Ctx<'_, (), ()>) {
        ctx.set_timer(Duration::from_secs(1), ());
    }
    fn message(
        &mut self,
        _: hawser_core::NodeId,
        _: &[u8],
        _: &mut Ctx<'_, (), ()>,
    ) -> Result<(), WireError> {
        Ok(())
    }
    fn timer(&mut self, _: (), ctx: &mut Ctx<'_, (), ()>) {
        self.seen.push(ctx.now());
        ctx.set_timer(Duration::from_secs(1), ());
    }
}

fn secs(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

fn ticks(sim: &Sim<Ticker>, i: usize) -> &[Instant] {
    &sim.node(i).expect("up").protocol().seen
}

#[test]
fn drift_runs_timers_fast_or_slow_and_a_step_fires_what_it_skips() {
    let mut sim = Sim::new(3, SimConfig::new(1), |_, _| Ticker { seen: Vec::new() }).unwrap();
    (0..3).for_each(|i| sim.start(i));
    sim.set_clock(1, 100_000, Duration::ZERO);
    sim.set_clock(2, -100_000, Duration::ZERO);
    // A tick fires at the first simulator nanosecond at which the node's clock has
    // reached the deadline, so a fast clock's ticks are late by a nanosecond or so.
    sim.run_until(secs(100) + Duration::from_millis(1));
    let counts: Vec<usize> = (0..3).map(|i| ticks(&sim, i).len()).collect();
    assert_eq!(counts[0], 100, "a true clock: one tick a second");
    assert_eq!(
        counts[1], 110,
        "10 % fast: 110 of its seconds in 100 true ones"
    );
    assert_eq!(counts[2], 90, "10 % slow");
    assert_eq!(sim.local(1), secs(110) + Duration::from_micros(1_100));
    for i in 0..3 {
        let t = ticks(&sim, i);
        let apart = |w: &[Instant]| w[1] - w[0];
        assert!(
            t.windows(2).all(|w| apart(w) >= Duration::from_secs(1)
                && apart(w) < Duration::from_secs(1) + Duration::from_micros(1)),
            "n{i} ticks 1 s apart on its own clock"
        );
    }

    sim.set_clock(0, 0, Duration::from_secs(5));
    sim.run_until(secs(101));
    let t = ticks(&sim, 0);
    assert_eq!(
        t.len(),
        101,
        "the step fires the one timer pending, late by its own clock"
    );
    let last = *t.last().unwrap();
    assert!(
        last >= secs(105) && last < secs(105) + Duration::from_millis(2),
        "at once, reading 5 s ahead: {last:?}"
    );
    assert!(t.windows(2).all(|w| w[1] > w[0]), "never backwards");
}
