//! `GET /v1/graph`: the global membership graph as this node holds it, and the
//! shortest-hop route tree from this node, shaped for a picture (the agent page draws it).
//!
//! Members publish whom they list as neighbours, so the graph is directed; a picture
//! wants each link once, so an edge here is an unordered pair, `mutual` when both ends
//! list each other (the usual case once the overlay settles; a one-sided edge is a link
//! seen mid-change). Everything is in id order, so equal graphs give equal answers. One
//! breadth-first search (the route tree) gives every node's reachability and distance.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hawser_core::NodeId;
use hawser_core::routing::Routing;
use serde::Serialize;

use crate::admin::{Admin, id_hex, stopping};

/// The answer of `GET /v1/graph`.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct GraphView {
    /// This node's id.
    #[serde(rename = "self")]
    pub me: String,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// One node of the graph.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct GraphNode {
    pub id: String,
    /// From the node's membership entry; `None` for a node only listed by others.
    pub name: Option<String>,
    pub reachable: bool,
    /// Hops from this node (`None` when not reachable).
    pub distance: Option<u32>,
    /// The next node towards this one in the route tree (`None` for this node and for
    /// nodes it cannot reach).
    pub parent: Option<String>,
}

/// A link between two nodes, `a` < `b` by id.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    pub a: String,
    pub b: String,
    /// Both ends list the other.
    pub mutual: bool,
}

/// The graph of `routing`, with names from `name_of`.
pub fn graph_view(routing: &Routing, name_of: impl Fn(NodeId) -> Option<String>) -> GraphView {
    let me = routing.me();
    let graph = routing.graph();
    let tree = routing.tree(me);
    let hop = |id| tree.as_ref().and_then(|t| t.hop(id));
    let nodes = graph
        .nodes()
        .map(|id| GraphNode {
            id: id_hex(id),
            name: name_of(id),
            reachable: hop(id).is_some(),
            distance: hop(id).map(|h| h.distance),
            parent: hop(id).and_then(|h| h.parent).map(id_hex),
        })
        .collect();
    // (low, high) -> whether both directions were seen.
    let mut pairs: BTreeMap<(NodeId, NodeId), bool> = BTreeMap::new();
    for from in graph.nodes() {
        for to in graph.neighbors(from) {
            let key = (from.min(to), from.max(to));
            pairs
                .entry(key)
                .and_modify(|mutual| *mutual = true)
                .or_insert(false);
        }
    }
    let edges = pairs
        .into_iter()
        .map(|((a, b), mutual)| GraphEdge {
            a: id_hex(a),
            b: id_hex(b),
            mutual,
        })
        .collect();
    GraphView {
        me: id_hex(me),
        nodes,
        edges,
    }
}

/// `GET /v1/graph`.
pub async fn get(State(s): State<Admin>) -> Response {
    let answer = s
        .handle
        .inspect(|v| {
            let gm = v.node.protocol().gm();
            let name_of = |id| gm.member(id).map(|m| m.name.to_string());
            match gm.routing() {
                Some(routing) => graph_view(routing, name_of),
                // Before start: this node alone.
                None => graph_view(&Routing::new(v.node.id()), name_of),
            }
        })
        .await;
    match answer {
        Some(view) => axum::Json(view).into_response(),
        None => stopping(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u64) -> NodeId {
        NodeId(i)
    }

    fn names(id: NodeId) -> Option<String> {
        (id.0 < 10).then(|| format!("n{}", id.0))
    }

    #[test]
    fn each_link_is_one_edge_and_mutual_only_when_both_ends_list_it() {
        let mut r = Routing::new(n(1));
        r.set_adjacency(n(1), &[n(2), n(3)]);
        r.set_adjacency(n(2), &[n(1)]);
        r.set_adjacency(n(3), &[n(2)]);
        let v = graph_view(&r, names);
        let edges: Vec<(&str, &str, bool)> = v
            .edges
            .iter()
            .map(|e| (&e.a[14..], &e.b[14..], e.mutual))
            .collect();
        assert_eq!(
            edges,
            [("01", "02", true), ("01", "03", false), ("02", "03", false)]
        );
        assert_eq!(v.me, "0000000000000001");
        assert_eq!(v.nodes.len(), 3);
    }

    #[test]
    fn nodes_carry_the_route_tree_from_this_node() {
        // 1 - 2 - 3 in a line, and 4 listing 3 but listed by no one: unreachable.
        let mut r = Routing::new(n(1));
        r.set_adjacency(n(1), &[n(2)]);
        r.set_adjacency(n(2), &[n(1), n(3)]);
        r.set_adjacency(n(3), &[n(2)]);
        r.set_adjacency(n(4), &[n(3)]);
        let v = graph_view(&r, names);
        // (name, reachable, distance, parent's last two hex digits)
        type Row<'a> = (Option<&'a str>, bool, Option<u32>, Option<&'a str>);
        let view: Vec<Row> = v
            .nodes
            .iter()
            .map(|g| {
                (
                    g.name.as_deref(),
                    g.reachable,
                    g.distance,
                    g.parent.as_deref().map(|p| &p[14..]),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                (Some("n1"), true, Some(0), None),
                (Some("n2"), true, Some(1), Some("01")),
                (Some("n3"), true, Some(2), Some("02")),
                (Some("n4"), false, None, None),
            ]
        );
    }

    #[test]
    fn a_node_only_listed_by_others_is_drawn_without_a_name() {
        let mut r = Routing::new(n(1));
        r.set_adjacency(n(1), &[n(42)]);
        let v = graph_view(&r, names);
        let far = &v.nodes[1];
        assert_eq!(far.id, "000000000000002a");
        assert_eq!(far.name, None);
        assert!(far.reachable);
        assert_eq!(v.edges.len(), 1);
        assert!(!v.edges[0].mutual);
    }

    #[test]
    fn the_answer_is_json_with_self_and_null_for_what_is_missing() {
        let v = graph_view(&Routing::new(n(7)), names);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "self": "0000000000000007",
                "nodes": [{"id": "0000000000000007", "name": "n7", "reachable": true,
                           "distance": 0, "parent": null}],
                "edges": [],
            })
        );
    }
}
