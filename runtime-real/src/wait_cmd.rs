//! `hawser wait`: block until an agent serves its admin API, so a script can start an
//! agent in the background and use it on the next line without racing its start-up.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use hawser_runtime::client;
use hawser_runtime::config::DEFAULT_ADMIN;

#[derive(Args)]
pub struct WaitArgs {
    /// The agent's admin API (host:port).
    #[arg(long, default_value = DEFAULT_ADMIN)]
    admin: String,
    /// Give up after this many seconds (exit 1).
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// A file holding the admin API's bearer token (the agent's --admin-token-file); or
    /// set HAWSER_ADMIN_TOKEN.
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
}

/// How often the API is asked again while nothing answers.
const POLL: Duration = Duration::from_millis(100);

/// Exit 0 once `GET /v1/self` answers 200; 1 if nothing answered within the timeout; 2
/// if the agent answered but refused (a wrong or missing token) or the token file is
/// unreadable: waiting longer would not help.
pub fn main(args: WaitArgs) -> ExitCode {
    if let Some(path) = &args.token_file {
        match std::fs::read_to_string(path) {
            Ok(token) => client::set_token(token.trim().to_owned()),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let last = match client::get(&args.admin, "/v1/self") {
            Ok((200, _)) => return ExitCode::SUCCESS,
            Ok((status, body)) => {
                eprintln!(
                    "error: the agent at {} answered {status}: {}",
                    args.admin,
                    body.trim()
                );
                return ExitCode::from(2);
            }
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            eprintln!("error: not ready after {}s: {last}", args.timeout);
            return ExitCode::FAILURE;
        }
        std::thread::sleep(POLL);
    }
}
