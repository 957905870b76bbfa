//! `--trace`: the log names what the hash covers — decoded message kinds, senders and
//! receivers, connection events, timer wakes — and the scenario's steps, KV ops and their
//! acknowledgements, multicasts; and writing it changes nothing (the same hash).

use std::io::Write;
use std::sync::{Arc, Mutex};

use hawser_scenarios::{Options, file, run_stack};
use serde_json::Value;

const SCENARIO: &str = r#"
name = "trace-log"
nodes = 6
duration = "30s"
seed = 3
contacts = "n0..n1"

[[step]]
at = "0s"
action = "start"

[[step]]
at = "5s"
action = "kv-op"
node = "n1"
key = "k"
op = '{"update":[{"field":"number","type":"counter","op":{"increment":2}}]}'

[[step]]
at = "10s"
action = "partition"
groups = ["n0..n2", "n3..n5"]

[[step]]
at = "12s"
action = "multicast"
node = "n4"
topic = "t"
size = 64

[[step]]
at = "15s"
action = "heal"

[[step]]
at = "20s"
action = "kill"
nodes = "n5"

[[step]]
at = "24s"
action = "pause"
nodes = "n3"
duration = "1s"

[[step]]
at = "26s"
action = "break-cookie"
nodes = "n2"

[[step]]
at = "27s"
action = "slow-link"
nodes = "n1"
extra = "50ms"
duration = "1s"

[[expect]]
kind = "kv-converged"
key = "k"
value = '{"number:counter": 2}'
within = "15s"
"#;

/// A writer the test reads back after the run.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const S: u64 = 1_000_000_000;

/// The lines with this `event`.
fn events<'a>(log: &'a [Value], event: &str) -> Vec<&'a Value> {
    log.iter().filter(|l| l["event"] == event).collect()
}

fn id_of(name: &str) -> String {
    format!("{:016x}", name[1..].parse::<u64>().unwrap())
}

#[test]
fn the_log_names_everything_and_changes_nothing() {
    let scenario = file::parse(SCENARIO, "trace-log.toml").expect("valid scenario");
    let plain = run_stack(&scenario, Options::default()).expect("runs");
    let out = Shared::default();
    let options = Options {
        trace: Some(Box::new(out.clone())),
        ..Options::default()
    };
    let traced = run_stack(&scenario, options).expect("runs");
    assert_eq!(
        plain.trace_hash, traced.trace_hash,
        "the log changes the run"
    );
    assert_eq!(plain.events, traced.events);
    assert!(traced.passed, "{}", traced.human());

    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let log: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert!(log.len() > 1000, "{} lines", log.len());
    assert!(
        log.windows(2)
            .all(|w| w[0]["t_ns"].as_u64() <= w[1]["t_ns"].as_u64()),
        "lines in time order"
    );
    assert!(
        log.iter()
            .all(|l| l["t_ns"].is_u64() && l["event"].is_string())
    );

    // Every node starts at 0 s.
    let starts: Vec<&str> = events(&log, "start")
        .iter()
        .filter(|l| l["t_ns"] == 0)
        .map(|l| l["node"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ["n0", "n1", "n2", "n3", "n4", "n5"]);

    // Frames: sender and receiver named and identified, the kind decoded.
    let frames = events(&log, "frame");
    for f in &frames {
        let (from, to) = (f["from"].as_str().unwrap(), f["to"].as_str().unwrap());
        assert_ne!(from, to);
        assert_eq!(f["from_id"], id_of(from), "{f}");
        assert_eq!(f["to_id"], id_of(to), "{f}");
        assert!(f["len"].as_u64().unwrap() > 0);
    }
    let kinds: std::collections::BTreeSet<&str> =
        frames.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for kind in [
        "link.hello",
        "link.proof",
        "membership.join",
        "membership.ping",
        "membership.pong",
        "gm.entries",
        "kv.delta",
        "multicast.data",
    ] {
        assert!(kinds.contains(kind), "no {kind} frame in {kinds:?}");
    }
    // n1's op at 5 s travels as a kv.delta from n1; n4's multicast at 12 s as
    // multicast.data from n4, only within its side of the partition.
    assert!(frames.iter().any(|f| f["kind"] == "kv.delta"
        && f["from"] == "n1"
        && f["t_ns"].as_u64().unwrap() >= 5 * S));
    assert!(frames.iter().any(|f| f["kind"] == "multicast.data"
        && f["from"] == "n4"
        && (12 * S..13 * S).contains(&f["t_ns"].as_u64().unwrap())));

    // Connections: dialled, accepted, established, and closed, with why.
    for event in ["connect", "accept", "connected"] {
        let lines = events(&log, event);
        assert!(!lines.is_empty(), "no {event}");
        assert!(
            lines
                .iter()
                .all(|l| l["peer"].is_string() && l["conn"].is_u64())
        );
    }
    let closes = events(&log, "close");
    // The kill of n5 at 20 s: its peers' connections are reset.
    assert!(closes.iter().any(|c| c["peer"] == "n5"
        && c["reason"] == "reset"
        && c["t_ns"].as_u64().unwrap() > 20 * S));

    // Timer wakes name their node and the timers that fired.
    let wakes = events(&log, "wake");
    assert!(wakes.iter().any(|w| {
        w["timers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains("kind: Ping"))
    }));

    // The steps, at their instants.
    let at = |event: &str, t: u64| -> Vec<&Value> {
        events(&log, event)
            .into_iter()
            .filter(|l| l["t_ns"] == t)
            .collect()
    };
    let partition = at("partition", 10 * S);
    assert_eq!(partition.len(), 1);
    assert_eq!(
        partition[0]["groups"],
        serde_json::json!([["n0", "n1", "n2"], ["n3", "n4", "n5"]])
    );
    assert_eq!(at("heal", 15 * S).len(), 1);
    assert_eq!(at("kill", 20 * S)[0]["node"], "n5");
    assert_eq!(at("pause", 24 * S)[0]["node"], "n3");
    assert_eq!(at("pause", 24 * S)[0]["for_ns"], S);
    assert_eq!(at("resume", 25 * S)[0]["node"], "n3");
    assert_eq!(at("cookie", 26 * S)[0]["node"], "n2");
    assert_eq!(at("cookie", 26 * S)[0]["cookie"], "own");
    assert_eq!(at("slow", 27 * S)[0]["extra_ns"], 50_000_000);
    assert_eq!(at("slow-end", 28 * S)[0]["node"], "n1");

    // The KV op at 5 s, its ticket, and its acknowledgement on n1 once durable.
    let op = at("kv.op", 5 * S);
    assert_eq!(op.len(), 1);
    assert_eq!(op[0]["node"], "n1");
    assert_eq!(op[0]["key"], "k");
    assert_eq!(op[0]["op"]["update"][0]["op"]["increment"], 2);
    let ticket = op[0]["ticket"].as_str().expect("a ticket");
    let ack = events(&log, "kv.ack");
    assert!(
        ack.iter()
            .any(|a| a["node"] == "n1" && a["key"] == "k" && a["ticket"] == ticket),
        "no ack of {ticket}"
    );

    // The multicast at 12 s, delivered on its side of the partition.
    let send = at("multicast.send", 12 * S);
    assert_eq!(send[0]["node"], "n4");
    assert_eq!(send[0]["topic"], "t");
    assert_eq!(send[0]["size"], 64);
    let seq = &send[0]["seq"];
    let delivered: std::collections::BTreeSet<&str> = events(&log, "multicast.deliver")
        .iter()
        .filter(|d| d["origin"] == "n4" && &d["seq"] == seq && d["t_ns"].as_u64().unwrap() < 13 * S)
        .map(|d| d["node"].as_str().unwrap())
        .collect();
    assert_eq!(delivered, ["n3", "n5"].into(), "n4's side of the partition");
}
