//! Whole-file tests: the examples from the issues parse to the values they mean, every
//! class of mistake is reported with its line and the valid choices, and no input
//! panics the parser.

use super::*;
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ok(text: &str) -> Scenario {
    parse(text, "x.toml").unwrap_or_else(|e| panic!("should parse:\n{e}"))
}

fn err(text: &str) -> String {
    match parse(text, "x.toml") {
        Ok(s) => panic!("should not parse, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts the report has exactly one line and that it contains every fragment.
fn assert_one_error(text: &str, fragments: &[&str]) {
    let report = err(text);
    assert_eq!(report.lines().count(), 1, "{report}");
    for fragment in fragments {
        assert!(
            report.contains(fragment),
            "{fragment:?} missing from:\n{report}"
        );
    }
}

const HEADER: &str = "name = \"t\"\nnodes = 100\nduration = \"120s\"\n";

/// A minimal file (3 header lines) followed by `rest`, which thus starts on line 4.
fn with_header(rest: &str) -> String {
    format!("{HEADER}{rest}")
}

/// The example from the foundations issue, verbatim.
const ISSUE_EXAMPLE: &str = r#"name = "join-and-kill"
nodes = 100                 # nodes n0..n99
duration = "120s"           # virtual time
seed = 7                    # default; --seed overrides
contacts = "n0..n2"         # every node joins through these (default "n0")

[network]
latency = "1ms..5ms"        # uniform per-message latency ("2ms" for fixed)

[config]                    # protocol config overrides (names are core's config fields)
active_view = 6

[[step]]
at = "0s"
action = "start"            # all nodes (or nodes = "n0..n9"); each joins via the contacts
stagger = "20ms"

[[step]]
at = "60s"
action = "kill"             # also: restart, partition, partition-oneway, heal,
nodes = "random:10%"        #       break-cookie, mend-cookie, flap, slow-link, pause,
                            #       kv-op, multicast
[[expect]]
kind = "overlay-connected"  # also: membership-agrees, views-bounded, detected,
after = "60s"               #       no-false-positives, kv-converged, multicast-delivered
within = "30s"              # must hold by after+within, and keep holding to the end
"#;

#[test]
fn the_issue_example_parses_to_its_values() {
    let s = ok(ISSUE_EXAMPLE);
    let mut config = toml::Table::new();
    config.insert("active_view".into(), toml::Value::Integer(6));
    assert_eq!(
        s,
        Scenario {
            file: "x.toml".into(),
            name: "join-and-kill".into(),
            nodes: 100,
            duration: secs(120),
            seed: 7,
            contacts: Selector::Range(0, 2),
            stack: StackKind::Full,
            network: Network {
                latency: (ms(1), ms(5)),
                ..Network::default()
            },
            config,
            overlays: Vec::new(),
            steps: vec![
                Step {
                    at: Duration::ZERO,
                    action: Action::Start {
                        nodes: Selector::All,
                        stagger: ms(20)
                    },
                    line: 13,
                },
                Step {
                    at: secs(60),
                    action: Action::Kill {
                        nodes: Selector::RandomPercent(10)
                    },
                    line: 18,
                },
            ],
            expects: vec![Expect {
                kind: ExpectKind::OverlayConnected,
                nodes: None,
                after: secs(60),
                within: Some(secs(30)),
                until: None,
                key: None,
                value: None,
                fraction: None,
                line: 23,
            }],
        }
    );
}

#[test]
fn a_minimal_file_takes_the_documented_defaults() {
    let s = ok(HEADER);
    assert_eq!(s.seed, 0);
    assert_eq!(s.contacts, Selector::Node(0));
    assert_eq!(
        s.network,
        Network {
            latency: (ms(1), ms(5)),
            latency_tail: None,
            handshake_reset: 0,
            link_timeout: secs(3),
            connect_timeout: secs(1),
            sync_latency: ms(1),
            lose_unsynced: true,
        }
    );
    assert!(s.config.is_empty() && s.steps.is_empty() && s.expects.is_empty());
}

#[test]
fn every_network_key_is_read() {
    let s = ok(&with_header(
        "[network]\nlatency = \"2ms\"\nlink_timeout = \"5s\"\nconnect_timeout = \"250ms\"\n\
         sync_latency = \"0s\"\nlose_unsynced = false\nlatency_tail = 0.005\n\
         latency_tail_max = \"2s\"\nhandshake_reset = 0.25\n",
    ));
    assert_eq!(
        s.network,
        Network {
            latency: (ms(2), ms(2)),
            latency_tail: Some((5_000, secs(2))),
            handshake_reset: 250_000,
            link_timeout: secs(5),
            connect_timeout: ms(250),
            sync_latency: Duration::ZERO,
            lose_unsynced: false,
        }
    );
}

#[test]
fn every_action_parses_with_its_parameters() {
    let s = ok(&with_header(
        r#"
[[step]]
at = "0s"
action = "start"
nodes = "n0..n9"
[[step]]
at = "1s"
action = "kill"
nodes = ["n1", "n4"]
[[step]]
at = "2s"
action = "restart"
nodes = "n1"
[[step]]
at = "3s"
action = "freeze"
nodes = "random:5"
[[step]]
at = "4s"
action = "wipe"
nodes = "n2"
[[step]]
at = "4s"
action = "power-loss"
down = "1s"
[[step]]
at = "5s"
action = "partition"
groups = [["n0", "n1"], "n2..n5"]
keep = "n6"
[[step]]
at = "6s"
action = "partition-oneway"
from = "n1"
to = "all"
[[step]]
at = "7s"
action = "heal"
[[step]]
at = "8s"
action = "break-cookie"
nodes = "n0"
[[step]]
at = "9s"
action = "mend-cookie"
nodes = "n0"
[[step]]
at = "9s"
action = "flap"
nodes = "n3"
duration = "2s"
[[step]]
at = "10s"
action = "slow-link"
nodes = "n3"
extra = "200ms"
duration = "10s"
[[step]]
at = "11s"
action = "pause"
nodes = "random:1%"
duration = "300ms"
[[step]]
at = "12s"
action = "clock"
nodes = "n2"
drift_ppm = 200
[[step]]
at = "12s"
action = "bandwidth"
nodes = "n3"
bytes_per_sec = 20000
duration = "5s"
[[step]]
at = "12s"
action = "disk-slow"
nodes = "n3"
latency = "800ms"
[[step]]
at = "12s"
action = "disk-fail"
nodes = "n4"
[[step]]
at = "12s"
action = "disk-tear"
nodes = "n5"
[[step]]
at = "12s"
action = "kv-op"
node = "n1"
key = "erlang_users"
op = '{"update":[{"field":"number","type":"counter","op":{"increment":5}}]}'
[[step]]
at = "12s"
action = "multicast"
node = "random:1"
topic = "t"
size = 1024
count = 3
every = "1s"
"#,
    ));
    let actions: Vec<Action> = s.steps.iter().map(|s| s.action.clone()).collect();
    assert_eq!(
        actions,
        vec![
            Action::Start {
                nodes: Selector::Range(0, 9),
                stagger: Duration::ZERO
            },
            Action::Kill {
                nodes: Selector::List(vec![1, 4])
            },
            Action::Restart {
                nodes: Selector::Node(1)
            },
            Action::Freeze {
                nodes: Selector::RandomCount(5)
            },
            Action::Wipe {
                nodes: Selector::Node(2)
            },
            Action::PowerLoss {
                nodes: Selector::All,
                down: Duration::from_secs(1),
                stagger: Duration::from_millis(200),
            },
            Action::Partition {
                groups: vec![Selector::List(vec![0, 1]), Selector::Range(2, 5)],
                keep: Some(Selector::Node(6)),
            },
            Action::PartitionOneway {
                from: Selector::Node(1),
                to: Selector::All
            },
            Action::Heal,
            Action::BreakCookie {
                nodes: Selector::Node(0)
            },
            Action::MendCookie {
                nodes: Selector::Node(0)
            },
            Action::Flap {
                nodes: Selector::Node(3),
                period: Duration::from_millis(300),
                duration: Duration::from_secs(2),
            },
            Action::SlowLink {
                nodes: Selector::Node(3),
                extra: ms(200),
                duration: Some(secs(10))
            },
            Action::Pause {
                nodes: Selector::RandomPercent(1),
                duration: ms(300)
            },
            Action::Clock {
                nodes: Selector::Node(2),
                drift_ppm: 200,
                step: Duration::ZERO,
            },
            Action::Bandwidth {
                nodes: Selector::Node(3),
                bytes_per_sec: 20_000,
                duration: Some(secs(5)),
            },
            Action::DiskSlow {
                nodes: Selector::Node(3),
                latency: ms(800),
                duration: None,
            },
            Action::DiskFail {
                nodes: Selector::Node(4)
            },
            Action::DiskTear {
                nodes: Selector::Node(5)
            },
            Action::KvOp {
                node: Selector::Node(1),
                key: "erlang_users".into(),
                op: r#"{"update":[{"field":"number","type":"counter","op":{"increment":5}}]}"#
                    .into(),
            },
            Action::Multicast {
                node: Selector::RandomCount(1),
                topic: "t".into(),
                size: 1024,
                count: 3,
                every: Duration::from_secs(1),
            },
        ]
    );
    let names: Vec<&str> = actions.iter().map(Action::name).collect();
    assert_eq!(
        names,
        Action::NAMES,
        "the file above uses every action, in order"
    );
    assert_eq!(s.steps[1].line, 9);
    assert!(s.steps.windows(2).all(|w| w[0].at <= w[1].at));
}

/// The seed talk's demo from the KV issue: per-node values as `kv-converged` with `nodes`.
#[test]
fn the_seed_demo_expectations_parse() {
    let s = ok(r#"
name = "seed-demo"
nodes = 3
duration = "60s"

[[step]]
at = "0s"
action = "start"

[[step]]
at = "10s"
action = "partition"
groups = ["n1", "n2"]

[[step]]
at = "20s"
action = "break-cookie"
nodes = "n0"

[[expect]]
kind = "kv-converged"
nodes = "n1"
key = "erlang_users"
value = '{"number:counter": 12}'
after = "30s"
within = "5s"
until = "40s"
"#);
    let e = &s.expects[0];
    assert_eq!(e.kind, ExpectKind::KvConverged);
    assert_eq!(e.nodes, Some(Selector::Node(1)));
    assert_eq!(e.key.as_deref(), Some("erlang_users"));
    assert_eq!(e.value, Some(serde_json::json!({"number:counter": 12})));
    assert_eq!(
        (e.after, e.within, e.until),
        (secs(30), Some(secs(5)), Some(secs(40)))
    );
    assert_eq!(e.line, 20);
}

#[test]
fn every_expectation_kind_parses() {
    let mut text = HEADER.to_owned();
    for kind in ExpectKind::ALL {
        text += &format!("[[expect]]\nkind = \"{}\"\n", kind.name());
    }
    text += "[[expect]]\nkind = \"detected\"\nnodes = \"n5\"\nfraction = 0.9\nafter = \"1s\"\nwithin = \"1.5s\"\n";
    text += "[[expect]]\nkind = \"detected\"\nfraction = 1\n";
    let s = ok(&text);
    let n = ExpectKind::ALL.len();
    let kinds: Vec<ExpectKind> = s.expects.iter().map(|e| e.kind).take(n).collect();
    assert_eq!(kinds, ExpectKind::ALL);
    let detected = &s.expects[n];
    assert_eq!(detected.fraction, Some(0.9));
    assert_eq!(detected.within, Some(ms(1500)));
    assert_eq!(s.expects[n + 1].fraction, Some(1.0));
    for (i, kind) in ExpectKind::ALL.into_iter().enumerate() {
        assert_eq!(ExpectKind::from_name(kind.name()), Some(kind));
        assert_eq!(
            kind as usize, i,
            "ExpectKind::name indexes the table by discriminant"
        );
    }
}

#[test]
fn config_is_kept_free_form() {
    let s = ok(&with_header(
        "[config]\nactive_view = 7\nping = { floor = \"100ms\" }\nratio = 0.5\nnames = [\"a\"]\n",
    ));
    assert_eq!(s.config["active_view"].as_integer(), Some(7));
    assert_eq!(s.config["ping"]["floor"].as_str(), Some("100ms"));
    assert_eq!(s.config["ratio"].as_float(), Some(0.5));
    assert_eq!(s.config["names"].as_array().map(Vec::len), Some(1));
}

// ---- errors: every one names the file, the line, and for names, the valid choices ----

#[test]
fn toml_syntax_errors_carry_their_position() {
    assert_one_error(&with_header("a = \n"), &["x.toml:4:5: invalid TOML"]);
    assert_one_error(
        &with_header("nodes = 3\n"),
        &["x.toml:4:1: invalid TOML: duplicate key"],
    );
}

#[test]
fn unknown_top_level_keys_list_the_valid_ones() {
    assert_one_error(
        &with_header("steps = []\n"),
        &[
            "x.toml:4:1: unknown key \"steps\" at the top level",
            "valid keys: name, nodes, duration, seed, contacts, stack, network, config, overlay, step, expect",
        ],
    );
}

#[test]
fn the_stack_is_full_by_default_and_unknown_stacks_list_the_valid_ones() {
    assert_eq!(ok(&with_header("")).stack, StackKind::Full);
    assert_eq!(
        ok(&with_header("stack = \"membership\"\n")).stack,
        StackKind::Membership
    );
    assert_one_error(
        &with_header("stack = \"everything\"\n"),
        &["x.toml:4:9: unknown stack \"everything\"; valid stacks: full, membership"],
    );
}

#[test]
fn unknown_actions_list_the_valid_ones() {
    assert_one_error(
        &with_header("[[step]]\nat = \"0s\"\naction = \"restrat\"\n"),
        &[
            "x.toml:6:10: unknown action \"restrat\"; valid actions: start, kill, restart, freeze, \
             wipe, power-loss, partition, partition-oneway, heal, break-cookie, mend-cookie, flap, slow-link, pause, \
             clock, bandwidth, disk-slow, disk-fail, disk-tear, kv-op, multicast",
        ],
    );
}

#[test]
fn parameters_an_action_does_not_take_list_the_ones_it_does() {
    assert_one_error(
        &with_header("[[step]]\nat = \"0s\"\naction = \"heal\"\nnodes = \"n1\"\n"),
        &["x.toml:7:1: unknown key \"nodes\" for action \"heal\"; valid keys: at, action"],
    );
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"0s\"\naction = \"kill\"\nnodes = \"n1\"\nstagger = \"1s\"\n",
        ),
        &["x.toml:8:1: unknown key \"stagger\" for action \"kill\"; valid keys: at, action, nodes"],
    );
}

#[test]
fn unknown_expectation_kinds_and_keys_list_the_valid_ones() {
    assert_one_error(
        &with_header("[[expect]]\nkind = \"overlay-conected\"\n"),
        &[
            "x.toml:5:8: unknown expectation kind \"overlay-conected\"; valid kinds: overlay-connected, \
             membership-agrees, views-bounded, detected, no-false-positives, kv-converged, \
             multicast-delivered",
        ],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"views-bounded\"\nwithin = \"1s\"\n"),
        &[
            "x.toml:6:1: unknown key \"within\" for expectation \"views-bounded\"; valid keys: kind, nodes, after, until",
        ],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"overlay-connected\"\nfraction = 0.9\n"),
        &[
            "x.toml:6:1",
            "valid keys: kind, nodes, after, within, until",
        ],
    );
}

#[test]
fn unknown_network_keys_list_the_valid_ones() {
    assert_one_error(
        &with_header("[network]\nlatency = \"1ms\"\nlink_timout = \"2s\"\n"),
        &[
            "x.toml:6:1: unknown key \"link_timout\" in [network]; valid keys: latency, latency_tail, \
             latency_tail_max, handshake_reset, link_timeout, connect_timeout, sync_latency, lose_unsynced",
        ],
    );
}

#[test]
fn missing_required_keys_are_named() {
    assert_one_error(
        "nodes = 3\nduration = \"1s\"\n",
        &["x.toml:1:1: the scenario is missing the required key \"name\""],
    );
    assert_one_error(
        &with_header("[[step]]\naction = \"start\"\n"),
        &["x.toml:4:1: step is missing the required key \"at\""],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"1s\"\n"),
        &["x.toml:4:1: step is missing the required key \"action\""],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"1s\"\naction = \"kill\"\n"),
        &["x.toml:4:1: step \"kill\" is missing the required key \"nodes\""],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"1s\"\naction = \"pause\"\nnodes = \"n1\"\n"),
        &["x.toml:4:1: step \"pause\" is missing the required key \"duration\""],
    );
    assert_one_error(
        &with_header("[[expect]]\nafter = \"1s\"\n"),
        &["x.toml:4:1: expectation is missing the required key \"kind\""],
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    assert_one_error(
        "name = \"t\"\nnodes = \"100\"\nduration = \"1s\"\n",
        &["x.toml:2:9: \"nodes\" must be a whole number from 1 to 1000000, not a string"],
    );
    assert_one_error(
        "name = \"t\"\nnodes = 0\nduration = \"1s\"\n",
        &["x.toml:2:9: \"nodes\" must be a whole number from 1 to 1000000, not 0"],
    );
    assert_one_error(
        &with_header("seed = -1\n"),
        &["x.toml:4:8: \"seed\" must be a whole number"],
    );
    assert_one_error(
        &with_header("network = 3\n"),
        &["x.toml:4:11: \"network\" must be a table ([network])"],
    );
    assert_one_error(
        &with_header("config = [1]\n"),
        &["x.toml:4:10: \"config\" must be a table"],
    );
    assert_one_error(
        &with_header("step = 3\n"),
        &["x.toml:4:8: \"step\" must be a list of tables ([[step]] sections)"],
    );
    assert_one_error(
        &with_header("[network]\nlose_unsynced = \"yes\"\n"),
        &["x.toml:5:17: \"lose_unsynced\" must be true or false"],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"detected\"\nfraction = 1.5\n"),
        &["x.toml:6:12: \"fraction\" must be a fraction above 0 and at most 1"],
    );
}

#[test]
fn bad_times_are_explained() {
    assert_one_error(
        "name = \"t\"\nnodes = 3\nduration = \"120\"\n",
        &[
            "x.toml:3:12: \"duration\": invalid time \"120\": missing unit; expected a number followed by a unit",
        ],
    );
    assert_one_error(
        "name = \"t\"\nnodes = 3\nduration = \"0s\"\n",
        &["x.toml:3:12: \"duration\" must be longer than 0s"],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"-5s\"\naction = \"heal\"\n"),
        &["x.toml:5:6: \"at\": invalid time \"-5s\": times cannot be negative"],
    );
    assert_one_error(
        &with_header("[[step]]\nat = 5\naction = \"heal\"\n"),
        &["x.toml:5:6: \"at\" must be a string, not an integer"],
    );
    assert_one_error(
        &with_header("[network]\nlatency = \"5ms..1ms\"\n"),
        &[
            "x.toml:5:11: \"latency\": invalid latency \"5ms..1ms\": the low end 5ms is above the high end 1ms",
        ],
    );
    assert_one_error(
        &with_header("[network]\nlink_timeout = \"0s\"\n"),
        &["x.toml:5:16: \"link_timeout\" must be longer than 0s"],
    );
}

#[test]
fn times_beyond_the_duration_are_rejected() {
    assert_one_error(
        &with_header("[[step]]\nat = \"121s\"\naction = \"heal\"\n"),
        &["x.toml:5:6: \"at\" is 121s, beyond the scenario's duration of 120s"],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"overlay-connected\"\nafter = \"2m1s\"\n"),
        &["x.toml:6:9: \"after\": invalid time \"2m1s\""],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"overlay-connected\"\nafter = \"3m\"\n"),
        &["x.toml:6:9: \"after\" is 180s, beyond the scenario's duration of 120s"],
    );
    assert_one_error(
        &with_header(
            "[[expect]]\nkind = \"overlay-connected\"\nafter = \"100s\"\nwithin = \"30s\"\n",
        ),
        &["x.toml:7:10: after + within is 130s, beyond the scenario's duration of 120s"],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"overlay-connected\"\nuntil = \"130s\"\n"),
        &["x.toml:6:9: \"until\" is 130s, beyond the scenario's duration of 120s"],
    );
    assert_one_error(
        &with_header(
            "[[expect]]\nkind = \"overlay-connected\"\nafter = \"10s\"\nwithin = \"10s\"\nuntil = \"15s\"\n",
        ),
        &[
            "x.toml:8:9: \"until\" is 15s, before the expectation can first hold (20s, after + within)",
        ],
    );
}

#[test]
fn steps_out_of_time_order_are_rejected_naming_both() {
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"10s\"\naction = \"heal\"\n\n[[step]]\nat = \"5s\"\naction = \"heal\"\n",
        ),
        &[
            "x.toml:8:1: this step (at = \"5s\") comes after a step at \"10s\" (line 4); list steps in time order",
        ],
    );
    // Equal times keep their file order.
    let s = ok(&with_header(
        "[[step]]\nat = \"1s\"\naction = \"heal\"\n[[step]]\nat = \"1s\"\naction = \"kill\"\nnodes = \"n1\"\n",
    ));
    assert_eq!(s.steps[1].action.name(), "kill");
}

#[test]
fn bad_selectors_are_explained() {
    assert_one_error(
        &with_header("contacts = \"n120\"\n"),
        &[
            "x.toml:4:12: \"contacts\": \"n120\" names n120, but the scenario has only 100 nodes (n0..n99)",
        ],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"1s\"\naction = \"kill\"\nnodes = \"node3\"\n"),
        &[
            "x.toml:7:9: \"nodes\": invalid node selector \"node3\": expected \"all\", \"n3\", \"n0..n9\"",
        ],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"1s\"\naction = \"kill\"\nnodes = [\"n1\", 4]\n"),
        &["x.toml:7:16: \"nodes\" must be a list of node names such as \"n3\", not an integer"],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"1s\"\naction = \"kill\"\nnodes = \"random:101\"\n"),
        &["x.toml:7:9: \"nodes\": \"random:101\" picks 101 nodes, but the scenario has only 100"],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"detected\"\nnodes = \"n5..n100\"\n"),
        &["x.toml:6:9: \"nodes\": \"n5..n100\" names n100"],
    );
}

#[test]
fn partitions_must_split_something_consistently() {
    assert_one_error(
        &with_header("[[step]]\nat = \"1s\"\naction = \"partition\"\ngroups = [\"n0..n5\"]\n"),
        &["x.toml:7:10: \"groups\" needs at least two groups"],
    );
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"1s\"\naction = \"partition\"\ngroups = [\"n0..n5\", \"n5..n9\"]\n",
        ),
        &["x.toml:7:10: n5 is in both group 1 and group 2"],
    );
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"1s\"\naction = \"partition\"\ngroups = [\"n0\", \"n1\"]\nkeep = \"n1\"\n",
        ),
        &["x.toml:7:10: n1 is in both group 2 and keep"],
    );
    // Random groups cannot be checked before the run; the runner draws them.
    ok(&with_header(
        "[[step]]\nat = \"1s\"\naction = \"partition\"\ngroups = [\"random:10%\", \"random:10%\"]\n",
    ));
}

#[test]
fn single_node_steps_and_json_are_checked() {
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"1s\"\naction = \"kv-op\"\nnode = \"n0..n3\"\nkey = \"k\"\nop = '{\"update\":[{\"field\":\"f\",\"type\":\"flag\",\"op\":\"enable\"}]}'\n",
        ),
        &[
            "x.toml:7:8: \"node\" must name exactly one node (e.g. \"n3\" or \"random:1\"), not \"n0..n3\"",
        ],
    );
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"1s\"\naction = \"kv-op\"\nnode = \"n0\"\nkey = \"k\"\nop = '{\"update\":'\n",
        ),
        &["x.toml:9:6: \"op\" must hold JSON text"],
    );
    // A typo in an op is the KV parser's message, located like any other mistake.
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"1s\"\naction = \"kv-op\"\nnode = \"n0\"\nkey = \"k\"\n\
             op = '{\"update\":[{\"field\":\"n\",\"type\":\"counter\",\"op\":{\"incremnt\":1}}]}'\n",
        ),
        &[
            "x.toml:9:6: \"op\" is not a KV op: invalid op at /update/0/op: \"incremnt\" is not an op on a counter",
        ],
    );
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"1s\"\naction = \"multicast\"\nnode = \"n0\"\ntopic = \"\"\nsize = 1\n",
        ),
        &["x.toml:8:9: \"topic\" must not be empty"],
    );
    assert_one_error(
        &with_header("[[expect]]\nkind = \"kv-converged\"\nvalue = '{}'\n"),
        &["x.toml:6:9: \"value\" needs a \"key\""],
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let report = err(
        "name = 3\nnodes = 10\nduration = \"1s\"\nbogus = 1\n[[step]]\nat = \"2s\"\naction = \"nope\"\n",
    );
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 4, "{report}");
    assert!(lines[0].starts_with("x.toml:1:8: \"name\" must be a string"));
    assert!(lines[1].starts_with("x.toml:4:1: unknown key \"bogus\""));
    assert!(lines[2].starts_with("x.toml:6:6: \"at\" is 2s, beyond"));
    assert!(lines[3].starts_with("x.toml:7:10: unknown action \"nope\""));
    let error = parse("name = 3\nnodes = 10\nduration = \"1s\"\n", "y.toml").unwrap_err();
    assert_eq!(error.file(), "y.toml");
    assert_eq!(error.problems()[0].line, Some(1));
}

// ---- overrides and loading ----

#[test]
fn overrides_replace_the_seed_and_recheck_the_node_count() {
    let s = ok(ISSUE_EXAMPLE).with_overrides(Some(42), None).unwrap();
    assert_eq!((s.seed, s.nodes), (42, 100));
    let s = s.with_overrides(None, Some(1000)).unwrap();
    assert_eq!((s.seed, s.nodes), (42, 1000));

    let file = with_header(
        "contacts = \"n0..n9\"\n[[step]]\nat = \"0s\"\naction = \"start\"\n[[step]]\nat = \"1s\"\naction = \"kill\"\nnodes = \"n50\"\n\
         [[expect]]\nkind = \"detected\"\nnodes = [\"n50\"]\n",
    );
    let report = ok(&file)
        .with_overrides(None, Some(5))
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines,
        [
            "x.toml: --nodes 5 does not fit \"contacts\": \"n0..n9\" names n9, but the scenario has only 5 nodes (n0..n4)",
            "x.toml:8: --nodes 5 does not fit step \"kill\": \"n50\" names n50, but the scenario has only 5 nodes (n0..n4)",
            "x.toml:12: --nodes 5 does not fit expectation \"detected\": [\"n50\"] names n50, but the scenario has only 5 nodes (n0..n4)",
        ]
    );
    let report = ok(HEADER)
        .with_overrides(None, Some(0))
        .unwrap_err()
        .to_string();
    assert_eq!(
        report,
        "x.toml: --nodes 0: a scenario has from 1 to 1000000 nodes"
    );
}

#[test]
fn load_reads_files_and_names_unreadable_ones() {
    let dir = std::env::temp_dir().join(format!("hawser-scenario-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("example.toml");
    std::fs::write(&path, ISSUE_EXAMPLE).unwrap();
    let s = load(&path).unwrap();
    assert_eq!(s.file, path.display().to_string());
    assert_eq!(s.name, "join-and-kill");
    let missing = dir.join("missing.toml");
    let report = load(&missing).unwrap_err().to_string();
    assert!(
        report.starts_with(&format!("{}: cannot read the scenario", missing.display())),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- robustness ----

/// Lines built from the format's own vocabulary, so inputs get past the TOML parser
/// and reach the validation code, unlike purely random text.
fn scenario_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "nodes",
        "duration",
        "seed",
        "contacts",
        "at",
        "action",
        "kind",
        "nodes",
        "groups",
        "keep",
        "from",
        "to",
        "extra",
        "stagger",
        "after",
        "within",
        "until",
        "fraction",
        "key",
        "value",
        "op",
        "node",
        "topic",
        "size",
        "latency",
        "link_timeout",
        "lose_unsynced",
        "subnet",
        "prefix",
        "forget_after",
    ]);
    let value = prop::sample::select(vec![
        "\"t\"",
        "3",
        "0",
        "-1",
        "1.5",
        "0.9",
        "true",
        "\"1s\"",
        "\"0s\"",
        "\"1ms..5ms\"",
        "\"5s..1s\"",
        "\"n0\"",
        "\"n2..n1\"",
        "\"n0..n9\"",
        "[\"n1\", \"n9\"]",
        "[[\"n0\"], \"n1\"]",
        "\"random:50%\"",
        "\"random:3\"",
        "\"all\"",
        "\"heal\"",
        "\"kill\"",
        "\"start\"",
        "\"partition\"",
        "\"kv-op\"",
        "\"multicast\"",
        "\"detected\"",
        "\"kv-converged\"",
        "\"views-bounded\"",
        "'{}'",
        "'{'",
        "[]",
        "{}",
        "\"9.0.0.0/16\"",
    ]);
    let header = prop::sample::select(vec![
        "[[step]]",
        "[[expect]]",
        "[network]",
        "[config]",
        "[[overlay]]",
    ]);
    let line = prop_oneof![
        4 => (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => header.prop_map(str::to_owned),
    ];
    prop::collection::vec(line, 0..24).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        let _ = parse(&text, "fuzz.toml");
    }

    #[test]
    fn scenario_like_text_never_panics_and_errors_have_positions(body in scenario_like()) {
        let text = format!("name = \"t\"\nnodes = 10\nduration = \"10s\"\n{body}");
        if let Err(e) = parse(&text, "fuzz.toml") {
            prop_assert!(!e.problems().is_empty());
            for p in e.problems() {
                prop_assert!(p.line.is_some() && p.column.is_some(), "{}", e);
            }
        }
    }
}

#[test]
fn repeated_multicasts_must_end_within_the_run() {
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"50s\"\naction = \"multicast\"\nnode = \"n1\"\ntopic = \"t\"\n\
             size = 8\ncount = 80\nevery = \"1s\"\n",
        ),
        &[
            "x.toml:11:9: \"the last multicast (at + (count - 1) * every)\" is 129s, beyond the \
           scenario's duration of",
        ],
    );
}

#[test]
fn overlays_parse_with_the_agents_settings() {
    let s = ok(&with_header(
        "[[overlay]]\nname = \"dcos\"\nsubnet = \"9.0.0.0/16\"\nprefix = 24\nvni = \"1025\"\n\
         forget_after = \"10m\"\n\n[[overlay]]\nname = \"b\"\nsubnet = \"9.1.0.0/16\"\n\
         vtep = \"100.65.0.0/20\"\nvni = 7\n",
    ));
    assert_eq!(s.overlays.len(), 2);
    let a = &s.overlays[0];
    assert_eq!(
        a.network,
        "name=dcos,subnet=9.0.0.0/16,prefix=24,vni=1025"
            .parse()
            .unwrap()
    );
    assert_eq!(a.forget_after, Some(secs(600)));
    assert_eq!(a.line, 4);
    assert_eq!(s.overlays[1].forget_after, None);
    assert_eq!(s.overlays[1].network.vni, 7);
}

#[test]
fn bad_overlays_are_explained_with_the_agents_messages() {
    assert_one_error(
        &with_header("[[overlay]]\nname = \"a\"\nsubnet = \"9.0.0.0/16\"\ncolour = \"red\"\n"),
        &["x.toml:4", "[[overlay]]", "\"colour\" is unknown"],
    );
    assert_one_error(
        &with_header("[[overlay]]\nname = \"a\"\n"),
        &["x.toml:4", "[[overlay]]", "subnet"],
    );
    assert_one_error(
        &with_header("[[overlay]]\nname = \"a\"\nsubnet = \"9.0.0.0/16\"\nprefix = true\n"),
        &["x.toml:7", "\"prefix\" must be a string or a whole number"],
    );
    assert_one_error(
        &with_header("[[overlay]]\nname = \"a\"\nsubnet = \"9.0.0.0/16\"\nforget_after = \"0s\"\n"),
        &["x.toml:7", "\"forget_after\" must be at least 1ms"],
    );
    // Two networks that could not live on one node.
    assert_one_error(
        &with_header(
            "[[overlay]]\nname = \"a\"\nsubnet = \"9.0.0.0/16\"\n\
             [[overlay]]\nname = \"a\"\nsubnet = \"9.1.0.0/16\"\n",
        ),
        &["[[overlay]]", "\"a\""],
    );
}

#[test]
fn a_power_loss_whose_last_node_returns_after_the_end_is_refused() {
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"20s\"\naction = \"power-loss\"\ndown = \"5s\"\nstagger = \"1s\"\n",
        ),
        &[
            "x.toml:7:8: \"the last node's return (at + down + (nodes - 1) * stagger)\" is \
             124s, beyond the scenario's duration of 120s",
        ],
    );
}

#[test]
fn disk_and_bandwidth_steps_say_what_they_lack() {
    assert_one_error(
        &with_header("[[step]]\nat = \"5s\"\naction = \"disk-slow\"\nnodes = \"n1\"\n"),
        &["step \"disk-slow\" is missing the required key \"latency\""],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"5s\"\naction = \"disk-fail\"\n"),
        &["step \"disk-fail\" is missing the required key \"nodes\""],
    );
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"5s\"\naction = \"bandwidth\"\nnodes = \"n1\"\nbytes_per_sec = 10\n",
        ),
        &["\"bytes_per_sec\"", "10"],
    );
}

#[test]
fn clock_steps_take_a_signed_drift_and_a_forward_step() {
    let s = ok(&with_header(
        "[[step]]\nat = \"5s\"\naction = \"clock\"\nnodes = \"n1\"\ndrift_ppm = -200\nstep = \"3s\"\n",
    ));
    assert_eq!(
        s.steps[0].action,
        Action::Clock {
            nodes: Selector::Node(1),
            drift_ppm: -200,
            step: secs(3),
        }
    );
    assert_one_error(
        &with_header(
            "[[step]]\nat = \"5s\"\naction = \"clock\"\nnodes = \"n1\"\ndrift_ppm = 100001\n",
        ),
        &[
            "x.toml:8:13",
            "\"drift_ppm\" must be a whole number from -100000 to 100000, not 100001",
        ],
    );
    assert_one_error(
        &with_header("[[step]]\nat = \"5s\"\naction = \"clock\"\nnodes = \"n1\"\n"),
        &["needs \"drift_ppm\" or \"step\""],
    );
}
