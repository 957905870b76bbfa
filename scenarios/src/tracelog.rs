//! What the runner adds to the simulator's trace log (`--trace`): the commands it gives
//! nodes — KV ops and multicasts — each with its outcome. The simulator logs the rest
//! (frames, connections, timers, faults) and the node events the target names
//! ([`Target::trace_event`]). Nothing here runs unless a log is written.

use hawser_core::kv::Ticket;
use hawser_core::{Ctx, NodeId};
use hawser_sim::{Sim, TraceField};

use crate::target::{Target, TargetError};

/// `sim.command(i, apply)` for a KV op on `key`, noted as a `kv.op` line with the op
/// (`op()`, called only when logging) and its ticket or why it was refused.
pub(crate) fn kv_op<T: Target>(
    sim: &mut Sim<T>,
    i: usize,
    key: &str,
    op: impl FnOnce() -> serde_json::Value,
    apply: impl FnOnce(&mut T, &mut Ctx<'_, T::Timer, T::Event>) -> Result<Ticket, TargetError>,
) -> Option<Result<Ticket, TargetError>> {
    let result = sim.command(i, apply);
    if sim.trace_logging() {
        let fields = [
            ("key", TraceField::Str(key.to_owned())),
            ("op", TraceField::Json(op())),
            outcome(&result, |t| {
                ("ticket", TraceField::Str(format!("{:?}", t.0)))
            }),
        ];
        sim.trace_note(i, "kv.op", &fields);
    }
    result
}

/// `sim.command(i, send)` for a multicast of `size` bytes on `topic`, noted as a
/// `multicast.send` line with its sequence number or why it was refused.
pub(crate) fn multicast<T: Target>(
    sim: &mut Sim<T>,
    i: usize,
    topic: &str,
    size: usize,
    send: impl FnOnce(&mut T, &mut Ctx<'_, T::Timer, T::Event>) -> Result<(NodeId, u64), TargetError>,
) -> Option<Result<(NodeId, u64), TargetError>> {
    let result = sim.command(i, send);
    if sim.trace_logging() {
        let fields = [
            ("topic", TraceField::Str(topic.to_owned())),
            ("size", TraceField::Num(size as u64)),
            outcome(&result, |&(_, seq)| ("seq", TraceField::Num(seq))),
        ];
        sim.trace_note(i, "multicast.send", &fields);
    }
    result
}

/// A command's outcome as a field: `ok`'s, or `refused` with why.
fn outcome<R>(
    result: &Option<Result<R, TargetError>>,
    ok: impl FnOnce(&R) -> (&'static str, TraceField),
) -> (&'static str, TraceField) {
    match result {
        Some(Ok(r)) => ok(r),
        Some(Err(why)) => ("refused", TraceField::Str(why.to_string())),
        None => ("refused", TraceField::Str("the node is not up".into())),
    }
}

/// A `kv-op` step's op as JSON (its text, if that is not JSON: the op is refused then).
pub(crate) fn op_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}
