//! A cold start: 80 `hawser agent` processes on 127.0.0.1 started at once, all joining the
//! same three contacts. In that storm peers close connections they no longer want
//! (HyParView's joins and shuffles, links made from both ends), so writes to a connection
//! the other end has just closed fail with EPIPE or ECONNRESET. That is a closed
//! connection, counted in `hawser_write_failures_total`; it must never be reported as a
//! peer that does not drain its send queue (`hawser_queue_drops_total`, a WARN line),
//! which is what every cold start of 100 agents used to log 4 to 77 times.

mod common;

use common::{Agent, wait_for};

const AGENTS: usize = 80;

#[test]
fn a_cold_start_of_eighty_agents_drops_no_send_queue() {
    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> = (0..AGENTS)
        .map(|i| Agent::new(dir.path(), &format!("c{i:02}")))
        .collect();
    let contacts: Vec<String> = agents[..3].iter().map(|a| a.listen.clone()).collect();
    for a in &mut agents {
        a.join = contacts.clone();
        a.spawn();
    }
    // 80 agents on two loaded cores: minutes, not seconds, at worst.
    wait_for("every agent to serve its admin API", 120, || {
        agents
            .iter()
            .all(|a| common::get(&a.admin, "/v1/self").is_some_and(|(s, _)| s == 200))
            .then_some(())
    });
    wait_for("every agent to see all 80 members reachable", 180, || {
        agents
            .iter()
            .all(|a| a.metric("hawser_reachable") == AGENTS as f64)
            .then_some(())
    });

    let drops: Vec<(String, f64)> = agents
        .iter()
        .map(|a| (a.name.clone(), a.metric("hawser_queue_drops_total")))
        .filter(|(_, n)| *n > 0.0)
        .collect();
    let warned: Vec<String> = agents
        .iter()
        .filter(|a| {
            std::fs::read_to_string(&a.log)
                .unwrap()
                .contains("does not drain its send queue")
        })
        .map(|a| a.name.clone())
        .collect();
    let write_failures: f64 = agents
        .iter()
        .map(|a| a.metric("hawser_write_failures_total"))
        .sum();
    assert!(
        drops.is_empty() && warned.is_empty(),
        "send queues reported overflowing in a cold start (agent, drops): {drops:?}; \
         agents that logged it: {warned:?}; write failures counted: {write_failures}"
    );
    eprintln!("cold start of {AGENTS}: no queue drops, {write_failures} write failures");
}
