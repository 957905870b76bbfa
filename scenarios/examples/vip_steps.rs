//! Prints the `kv-op` steps that publish load-balancer backends, for scenario files
//! (`scenarios/vip-*.toml` were made with it): VIPs `tcp://11.0.0.<v>:80`, each with
//! `--backends` backends on nodes drawn from `--nodes` by a fixed rule, one op per
//! backend from the node that runs it, `--every` apart from `--at`.
//!
//! ```sh
//! cargo run -p hawser-scenarios --example vip_steps -- --nodes 10 --vips 5 --backends 2 \
//!     --at 10s --every 100ms
//! ```

use hawser_core::NodeId;
use hawser_dataplane::lb::kv;
use hawser_dataplane::lb::vip::{Backend, Vip};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            let digits = v.trim_end_matches("ms").trim_end_matches('s');
            let n: u64 = digits.parse().expect("a number");
            if v.ends_with("ms") || !v.ends_with('s') {
                n
            } else {
                n * 1000
            }
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nodes = arg(&args, "--nodes", 10);
    let vips = arg(&args, "--vips", 5);
    let per_vip = arg(&args, "--backends", 2);
    let mut at = arg(&args, "--at", 10_000);
    let every = arg(&args, "--every", 100);
    for v in 0..vips {
        let vip: Vip = format!("tcp://11.0.{}.{}:80", v / 250, v % 250 + 1)
            .parse()
            .expect("a valid VIP");
        for b in 0..per_vip {
            // Spread over the nodes, consecutive backends on different nodes.
            let node = (v * 7 + b * (nodes / per_vip).max(1)) % nodes;
            let backend = Backend {
                node: NodeId(node),
                addr: format!("198.18.{}.{}:8080", node / 250, node % 250 + 1)
                    .parse()
                    .expect("a valid address"),
                weight: 1,
            };
            let op = kv::publish(None, &vip, backend).to_json();
            println!(
                "[[step]]\nat = \"{at}ms\"\naction = \"kv-op\"\nnode = \"n{node}\"\nkey = \"{}\"\nop = '{op}'\n",
                kv::key_of(&vip)
            );
            at += every;
        }
    }
}
