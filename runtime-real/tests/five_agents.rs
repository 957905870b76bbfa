//! Five `hawser agent` processes on 127.0.0.1: they form one overlay, notice a kill -9
//! within seconds, and take the restarted agent back.

mod common;

use std::time::Instant;

use common::{Agent, one_overlay, wait_for};

/// Whether every agent of `agents` lists every one of `ids` as reachable.
fn all_reachable(agents: &[&Agent], ids: &[String]) -> bool {
    agents.iter().all(|a| {
        let doc = a.json("/v1/members");
        ids.iter().all(|id| {
            doc["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == id.as_str() && m["reachable"] == true)
        })
    })
}

#[test]
fn five_agents_form_one_overlay_survive_a_kill_and_take_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> = (0..5)
        .map(|i| Agent::new(dir.path(), &format!("n{i}")))
        .collect();
    let contacts = vec![agents[0].listen.clone(), agents[1].listen.clone()];
    for a in &mut agents {
        a.join = contacts.clone();
        a.start();
    }
    let ids: Vec<String> = agents.iter().map(Agent::id).collect();
    let all: Vec<&Agent> = agents.iter().collect();
    wait_for("five agents to form one overlay", 20, || {
        one_overlay(&all).then_some(())
    });
    wait_for("every agent to see all five reachable", 20, || {
        all_reachable(&all, &ids).then_some(())
    });

    let victim = 3;
    agents[victim].kill9();
    let killed = Instant::now();
    let others: Vec<&Agent> = agents
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, a)| a)
        .collect();
    wait_for(
        "the others to drop the killed agent from their active views",
        5,
        || {
            others
                .iter()
                .all(|a| !a.active().contains(&ids[victim]))
                .then_some(())
        },
    );
    wait_for(
        "the others to report the killed agent unreachable",
        5,
        || {
            others
                .iter()
                .all(|a| {
                    let doc = a.json("/v1/members");
                    !doc["members"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["id"] == ids[victim].as_str() && m["reachable"] == true)
                })
                .then_some(())
        },
    );
    let noticed = killed.elapsed();
    assert!(one_overlay(&others), "the four survivors stay one overlay");
    eprintln!("kill -9 noticed by all four in {noticed:?}");

    agents[victim].start();
    assert_eq!(agents[victim].id(), ids[victim], "same name, same id");
    let all: Vec<&Agent> = agents.iter().collect();
    wait_for("the restarted agent to rejoin the overlay", 20, || {
        one_overlay(&all).then_some(())
    });
    wait_for("every agent to see all five reachable again", 20, || {
        all_reachable(&all, &ids).then_some(())
    });
}
