//! Five `hawser agent` processes on 127.0.0.1: they form one overlay, notice a kill -9
//! within seconds, and take the restarted agent back; a KV write through one agent's API
//! is read on all the others, and the restarted agent recovers it from its store.

mod common;

use std::time::Instant;

use common::{Agent, incr, one_overlay, post, wait_for, wait_for_value};
use serde_json::json;

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

    // Every agent knows every member by name, and routes to any of them over the overlay.
    for a in &all {
        let doc = a.json("/v1/members");
        for (i, id) in ids.iter().enumerate() {
            let m = doc["members"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id.as_str())
                .unwrap();
            assert_eq!(m["name"], format!("n{i}"), "{doc}");
        }
    }
    let route = agents[0].json("/v1/routes/n4");
    let path = route["path"].as_array().expect("n4 is reachable");
    assert_eq!(path.first().unwrap()["name"], "n0", "{route}");
    assert_eq!(path.last().unwrap()["name"], "n4", "{route}");
    assert_eq!(route["hops"], path.len() - 1);
    assert_eq!(
        agents[0].json(&format!("/v1/routes/{}", ids[4]))["to"]["name"],
        "n4"
    );

    // A write through one node's API is read on all the others.
    let (status, body) = post(&agents[0].admin, "/v1/kv/five", &incr(5)).unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for_value(&all, "five", &json!({"number:counter": 5}), 10);

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
    assert_eq!(
        agents[victim].json("/v1/kv/five"),
        json!({"number:counter": 5}),
        "the restarted agent recovered its data from its store"
    );
    let all: Vec<&Agent> = agents.iter().collect();
    wait_for("the restarted agent to rejoin the overlay", 20, || {
        one_overlay(&all).then_some(())
    });
    wait_for("every agent to see all five reachable again", 20, || {
        all_reachable(&all, &ids).then_some(())
    });
    // And it takes part again: a write on it reaches every other agent.
    let (status, body) = post(&agents[victim].admin, "/v1/kv/five", &incr(1)).unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for_value(&all, "five", &json!({"number:counter": 6}), 10);
}
