//! After a partition heals, each side's writes reach every node of the other within a
//! few seconds — by rounds that repairs trigger, not by waiting for the periodic
//! anti-entropy round (here set to a minute, so that only triggered rounds can pass).

use hawser_scenarios::{Options, file, run_stack};

#[test]
fn writes_of_both_sides_spread_within_seconds_of_a_heal() {
    let text = r#"
name = "kv-heal"
nodes = 16
duration = "40s"
contacts = "n0..n2"

[config.kv]
ae_period_ms = 60000

[[step]]
at = "0s"
action = "start"

[[step]]
at = "10s"
action = "partition"
groups = ["n0..n7", "n8..n15"]

[[step]]
at = "20s"
action = "kv-op"
node = "n1"
key = "k"
op = '{"update":[{"field":"number","type":"counter","op":{"increment":3}}]}'

[[step]]
at = "21s"
action = "kv-op"
node = "n9"
key = "k"
op = '{"update":[{"field":"number","type":"counter","op":{"increment":4}}]}'

[[step]]
at = "22s"
action = "kv-op"
node = "n12"
key = "other"
op = '{"update":[{"field":"on","type":"flag","op":"enable"}]}'

[[step]]
at = "30s"
action = "heal"

[[expect]]
kind = "kv-converged"
key = "k"
value = '{"number:counter": 7}'
after = "30s"
within = "5s"

[[expect]]
kind = "kv-converged"
after = "30s"
within = "5s"
"#;
    let scenario = file::parse(text, "kv-heal.toml").expect("valid scenario");
    let report = run_stack(&scenario, Options::default()).expect("runnable");
    for e in &report.expectations {
        assert!(e.passed, "{}\n{}", e.detail, report.human());
    }
}
