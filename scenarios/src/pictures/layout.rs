//! Where each node of a graph snapshot is drawn. Computed here, in Rust, rather than in
//! the page: the report is static (no script needed to see it), the browser test reads
//! positions straight from the DOM, and the same run always draws the same picture.
//!
//! Each overlay component gets its own disc, so a partitioned overlay shows as separate
//! clusters; nodes that are not running sit in a row underneath. Inside a disc a small
//! component (up to [`FORCE_LIMIT`] nodes) is laid out force-directed (Fruchterman-Reingold
//! from a fixed sunflower start: no randomness); a larger one is a sunflower in
//! breadth-first order, so neighbours sit near each other at O(n) cost.

use std::collections::VecDeque;

/// Components up to this size get the force-directed layout (O(n²) per iteration).
const FORCE_LIMIT: usize = 150;
const ITERATIONS: usize = 120;
const GOLDEN_ANGLE: f64 = 2.399_963_229_728_653;

/// A cluster's disc, for its label.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub x: f64,
    pub y: f64,
    pub r: f64,
    pub nodes: usize,
}

#[derive(Clone, Debug)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// Node radius to draw with (smaller for big graphs).
    pub node_r: f64,
    /// Position of each node by index.
    pub pos: Vec<(f64, f64)>,
    /// One per component, in component order.
    pub clusters: Vec<Cluster>,
}

/// Lay out `n` nodes: `components` are the live nodes of each overlay component,
/// `stopped` the rest; `edges` link node indices.
pub(crate) fn layout(
    n: usize,
    components: &[Vec<usize>],
    stopped: &[usize],
    edges: &[(usize, usize)],
) -> Layout {
    let spacing = if n > 200 { 9.0 } else { 22.0 };
    let mut adjacency = vec![Vec::new(); n];
    for &(a, b) in edges {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    let discs: Vec<Disc> = components
        .iter()
        .map(|members| disc(members, &adjacency, spacing))
        .collect();
    // Pack the discs on shelves, biggest first, in rows about as wide as the total.
    let total: f64 = discs.iter().map(|d| (2.0 * d.r + spacing).powi(2)).sum();
    let biggest = discs.iter().map(|d| 2.0 * d.r).fold(0.0, f64::max);
    let width = (total.sqrt() * 1.4).max(biggest + 2.0 * spacing).max(300.0);
    let mut order: Vec<usize> = (0..discs.len()).collect();
    order.sort_by(|&a, &b| discs[b].r.total_cmp(&discs[a].r).then(a.cmp(&b)));
    let mut pos = vec![(0.0, 0.0); n];
    let mut clusters = vec![
        Cluster {
            x: 0.0,
            y: 0.0,
            r: 0.0,
            nodes: 0
        };
        discs.len()
    ];
    let (mut x, mut y, mut row) = (spacing, spacing * 1.5, 0.0f64);
    for c in order {
        let Disc { r, placed } = &discs[c];
        let d = 2.0 * r;
        if x + d > width && x > spacing {
            x = spacing;
            y += row + spacing * 1.5;
            row = 0.0;
        }
        let (cx, cy) = (x + r, y + r);
        for &(i, (dx, dy)) in placed {
            pos[i] = (cx + dx, cy + dy);
        }
        clusters[c] = Cluster {
            x: cx,
            y: cy,
            r: *r,
            nodes: placed.len(),
        };
        x += d + spacing;
        row = row.max(d);
    }
    y += row + spacing * 1.5;
    // Stopped nodes: a grid under the clusters.
    let per_row = ((width - spacing) / spacing).floor().max(1.0) as usize;
    for (k, &i) in stopped.iter().enumerate() {
        pos[i] = (
            spacing + (k % per_row) as f64 * spacing,
            y + (k / per_row) as f64 * spacing,
        );
    }
    if !stopped.is_empty() {
        y += stopped.len().div_ceil(per_row) as f64 * spacing;
    }
    Layout {
        width,
        height: y,
        node_r: if n > 200 { 3.0 } else { 6.0 },
        pos,
        clusters,
    }
}

/// One component laid out in a disc around (0, 0).
struct Disc {
    r: f64,
    /// Each member (a node index) and its offset from the centre.
    placed: Vec<(usize, (f64, f64))>,
}

fn disc(members: &[usize], adjacency: &[Vec<usize>], spacing: f64) -> Disc {
    let order = breadth_first(members, adjacency);
    let mut at: Vec<(f64, f64)> = (0..order.len())
        .map(|k| {
            let r = spacing * 0.6 * (k as f64 + 0.5).sqrt();
            let a = k as f64 * GOLDEN_ANGLE;
            (r * a.cos(), r * a.sin())
        })
        .collect();
    if order.len() <= FORCE_LIMIT {
        force_directed(&order, adjacency, &mut at, spacing);
    }
    let radius = at
        .iter()
        .map(|(x, y)| x.hypot(*y))
        .fold(0.0, f64::max)
        .max(spacing * 0.5);
    Disc {
        r: radius,
        placed: order.into_iter().zip(at).collect(),
    }
}

/// The members, breadth-first from the lowest one (each unreached part from its lowest).
fn breadth_first(members: &[usize], adjacency: &[Vec<usize>]) -> Vec<usize> {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    let inside = |i: usize| sorted.binary_search(&i).is_ok();
    let mut seen = vec![false; sorted.len()];
    let mut order = Vec::with_capacity(sorted.len());
    let mut queue = VecDeque::new();
    for start in 0..sorted.len() {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        queue.push_back(sorted[start]);
        while let Some(i) = queue.pop_front() {
            order.push(i);
            let mut next: Vec<usize> = adjacency[i]
                .iter()
                .copied()
                .filter(|&j| inside(j))
                .collect();
            next.sort_unstable();
            for j in next {
                let k = sorted.binary_search(&j).expect("inside");
                if !seen[k] {
                    seen[k] = true;
                    queue.push_back(j);
                }
            }
        }
    }
    order
}

/// Fruchterman-Reingold: every pair repels, linked pairs attract; the step shrinks each
/// iteration. Deterministic (fixed start, fixed iteration count), centred at the end.
fn force_directed(order: &[usize], adjacency: &[Vec<usize>], at: &mut [(f64, f64)], spacing: f64) {
    let k = order.len();
    if k < 2 {
        return;
    }
    let index = |i: usize| order.iter().position(|&o| o == i);
    let links: Vec<(usize, usize)> = order
        .iter()
        .enumerate()
        .flat_map(|(a, &i)| {
            adjacency[i]
                .iter()
                .filter_map(|&j| index(j))
                .filter(move |&b| b > a)
                .map(move |b| (a, b))
        })
        .collect();
    let ideal = spacing * 1.6;
    let mut step = spacing * (k as f64).sqrt();
    let cool = step / ITERATIONS as f64;
    let mut shift = vec![(0.0, 0.0); k];
    for _ in 0..ITERATIONS {
        shift.iter_mut().for_each(|s| *s = (0.0, 0.0));
        for a in 0..k {
            for b in a + 1..k {
                let (dx, dy) = (at[a].0 - at[b].0, at[a].1 - at[b].1);
                let d2 = (dx * dx + dy * dy).max(0.01);
                let f = ideal * ideal / d2;
                shift[a].0 += dx * f;
                shift[a].1 += dy * f;
                shift[b].0 -= dx * f;
                shift[b].1 -= dy * f;
            }
        }
        for &(a, b) in &links {
            let (dx, dy) = (at[a].0 - at[b].0, at[a].1 - at[b].1);
            let d = (dx * dx + dy * dy).sqrt().max(0.1);
            let f = d / ideal;
            shift[a].0 -= dx * f;
            shift[a].1 -= dy * f;
            shift[b].0 += dx * f;
            shift[b].1 += dy * f;
        }
        for (p, s) in at.iter_mut().zip(&shift) {
            let len = (s.0 * s.0 + s.1 * s.1).sqrt().max(1e-9);
            let m = len.min(step) / len;
            p.0 += s.0 * m;
            p.1 += s.1 * m;
        }
        step = (step - cool).max(spacing * 0.05);
    }
    let (cx, cy) = at.iter().fold((0.0, 0.0), |(x, y), p| (x + p.0, y + p.1));
    let (cx, cy) = (cx / k as f64, cy / k as f64);
    at.iter_mut().for_each(|p| *p = (p.0 - cx, p.1 - cy));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(from: usize, len: usize) -> Vec<(usize, usize)> {
        (0..len).map(|k| (from + k, from + (k + 1) % len)).collect()
    }

    #[test]
    fn components_get_disjoint_discs_and_stopped_nodes_sit_below() {
        let mut edges = ring(0, 6);
        edges.extend(ring(6, 4).into_iter().map(|(a, b)| (a, b.max(6))));
        let comps = vec![(0..6).collect::<Vec<_>>(), (6..10).collect()];
        let l = layout(11, &comps, &[10], &edges);
        let (a, b) = (&l.clusters[0], &l.clusters[1]);
        assert_eq!((a.nodes, b.nodes), (6, 4));
        let apart = (a.x - b.x).hypot(a.y - b.y);
        assert!(apart > a.r + b.r, "discs overlap: {a:?} {b:?}");
        for i in 0..6 {
            let (x, y) = l.pos[i];
            assert!(
                (x - a.x).hypot(y - a.y) <= a.r + 1e-6,
                "n{i} outside its disc"
            );
        }
        let lowest_live = l.pos[..10].iter().map(|p| p.1).fold(0.0, f64::max);
        assert!(
            l.pos[10].1 > lowest_live,
            "a stopped node is drawn under the clusters"
        );
        assert!(
            l.pos
                .iter()
                .all(|&(x, y)| x >= 0.0 && y >= 0.0 && x <= l.width && y <= l.height)
        );
    }

    #[test]
    fn same_input_same_picture() {
        let edges = ring(0, 30);
        let comps = vec![(0..30).collect::<Vec<_>>()];
        let a = layout(30, &comps, &[], &edges);
        let b = layout(30, &comps, &[], &edges);
        assert_eq!(a.pos, b.pos);
    }

    #[test]
    fn big_components_are_sunflowers_in_breadth_first_order() {
        let edges = ring(0, 1000);
        let comps = vec![(0..1000).collect::<Vec<_>>()];
        let l = layout(1000, &comps, &[], &edges);
        assert_eq!(l.node_r, 3.0);
        // Breadth-first from n0 along a ring: n1 and n999 come right after n0, near it.
        let d = |i: usize, j: usize| (l.pos[i].0 - l.pos[j].0).hypot(l.pos[i].1 - l.pos[j].1);
        assert!(d(0, 1) < d(0, 500));
    }
}
