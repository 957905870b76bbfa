//! `[[overlay]]` and `subnets-unique` end to end: the check fails when the views
//! really disagree (a partition that never heals), passes when they come together, and
//! a scenario that cannot run them is refused before it starts.

use hawser_scenarios::{file, run_stack};

/// 16 nodes, 8 a side, in a network of 16 slots: each side hands out slots alone.
fn scenario(heal: bool, extra: &str) -> file::Scenario {
    let heal = if heal {
        "[[step]]\nat = \"10s\"\naction = \"heal\"\n"
    } else {
        ""
    };
    let text = format!(
        "name = \"t\"\nnodes = 16\nduration = \"30s\"\nseed = 3\ncontacts = [\"n0\", \"n8\"]\n\
         {extra}\n\
         [[overlay]]\nname = \"t\"\nsubnet = \"9.0.0.0/20\"\nprefix = 24\n\n\
         [[step]]\nat = \"0s\"\naction = \"partition\"\ngroups = [\"n0..n7\", \"n8..n15\"]\n\n\
         [[step]]\nat = \"0s\"\naction = \"start\"\nstagger = \"50ms\"\n\n{heal}\n\
         [[expect]]\nkind = \"subnets-unique\"\nafter = \"10s\"\nwithin = \"15s\"\n"
    );
    file::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn views_split_by_a_partition_disagree_and_the_check_says_so() {
    let report = run_stack(&scenario(false, ""), Default::default()).unwrap();
    assert!(!report.passed, "{}", report.human());
    let detail = &report.expectations[0].detail;
    assert!(
        detail.contains("did not hold by 25s: network t: n0 sees n"),
        "{detail}"
    );
}

#[test]
fn healed_views_come_together_and_the_figures_are_reported() {
    let report = run_stack(&scenario(true, ""), Default::default()).unwrap();
    assert!(report.passed, "{}", report.human());
    let m = &report.metrics;
    assert_eq!(m["overlay_reach_pending"], 0.0);
    assert!(m["overlay_writes"] >= 32.0, "a claim and a record each");
    assert!(
        m["overlay_reach_p50_ms"] >= 10_000.0,
        "reached only after the heal"
    );
}

#[test]
fn a_scenario_that_cannot_run_overlays_is_refused() {
    let err = run_stack(
        &scenario(true, "stack = \"membership\""),
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("[[overlay]] is not supported"), "{err}");
    let mut no_network = scenario(true, "");
    no_network.overlays.clear();
    let err = run_stack(&no_network, Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"subnets-unique\" needs an [[overlay]]"),
        "{err}"
    );
}
