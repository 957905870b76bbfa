//! The operator's commands besides the tables: `info`, `leave`, `force-leave`, `event`,
//! `monitor`, `completion` and `version`.

use std::process::ExitCode;

use clap::CommandFactory;
use hawser_runtime::client;

use crate::{ClientArgs, fail, show};

/// `hawser info`: this node (`GET /v1/self`), one `key: value` line each.
pub fn info(c: &ClientArgs) -> ExitCode {
    show(c, "/v1/self", client::info_text)
}

/// `hawser leave`: the agent leaves as on SIGTERM; returns once it has.
pub fn leave(c: &ClientArgs) -> ExitCode {
    if let Err(e) = c.use_token() {
        return fail(e);
    }
    match client::post_json(&c.admin, "/v1/leave", "{}") {
        Ok(v) if c.json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            println!(
                "{} left the cluster; its agent is stopping",
                client::printable(v["left"].as_str().unwrap_or("the agent"))
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `hawser force-leave NODE`: mark a failed member left on every node.
pub fn force_leave(node: &str, c: &ClientArgs) -> ExitCode {
    if let Err(e) = c.use_token() {
        return fail(e);
    }
    let path = format!("/v1/members/{}/force-leave", client::encode(node));
    match client::post_json(&c.admin, &path, "{}") {
        Ok(v) if c.json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            println!(
                "{} ({}) marked left; every node reaps it after the reap time",
                client::printable(node),
                client::printable(v["id"].as_str().unwrap_or("?"))
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `hawser event TOPIC PAYLOAD`: multicast to every reachable node.
pub fn event(topic: &str, payload: &str, c: &ClientArgs) -> ExitCode {
    if let Err(e) = c.use_token() {
        return fail(e);
    }
    let path = format!("/v1/multicast/{}", client::encode(topic));
    match client::post_json(&c.admin, &path, payload) {
        Ok(v) if c.json => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            println!(
                "sent {} on topic {:?} from {} as #{} (every reachable node logs its \
                 delivery)",
                client::count(payload.len() as u64, "byte", "bytes"),
                client::printable(topic),
                client::printable(v["origin"].as_str().unwrap_or("?")),
                v["seq"]
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `hawser monitor`: the agent's log lines at `level` and above, until stopped.
pub fn monitor(level: &str, c: &ClientArgs) -> ExitCode {
    if let Err(e) = c.use_token() {
        return fail(e);
    }
    let path = format!("/v1/monitor?level={}", client::encode(level));
    let result = client::watch(&c.admin, &path, |m| {
        match m.event.as_str() {
            "line" if c.json => println!("{}", m.data),
            "line" => println!("{}", client::log_line(&m.data)),
            "lagged" => eprintln!(
                "-- {} dropped: this terminal fell behind the agent",
                client::count(m.data["dropped"].as_u64().unwrap_or(0), "line", "lines")
            ),
            _ => {}
        }
        true
    });
    match result {
        Err(e) => fail(e),
        Ok(()) => fail("the agent closed the monitor stream (it stopped?)".into()),
    }
}

/// `hawser completion SHELL`: the completion script, on stdout.
pub fn completion(shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(shell, &mut cmd, "hawser", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `hawser version`: the CLI's version (an agent's is in `hawser info`).
pub fn version() -> ExitCode {
    println!("hawser {}", env!("CARGO_PKG_VERSION"));
    ExitCode::SUCCESS
}
