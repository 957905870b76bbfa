//! Who can send to whom: partitions (symmetric and one-way), frozen hosts, slow links.

use hawser_core::Duration;

/// The network's reachability and extra delays. Kept as plain vectors indexed by node so
/// a check is O(1) (plus the number of one-way cuts, which is tiny).
pub(crate) struct Topology {
    /// Partition group of each node; nodes in different groups cannot talk. `None`: in no
    /// group, reaches everyone (a bridge).
    group: Vec<Option<u32>>,
    /// One-way cuts: frames from a node in `.0` to a node in `.1` are lost.
    oneway: Vec<(Vec<bool>, Vec<bool>)>,
    /// A frozen host is silent: nothing in, nothing out, no resets.
    frozen: Vec<bool>,
    /// Extra latency on every frame to or from a node.
    extra: Vec<Duration>,
    /// A node whose network is cut (a flapping link, a pulled cable): it runs, but
    /// nothing reaches it or leaves it until the cut ends.
    cut: Vec<bool>,
}

impl Topology {
    pub(crate) fn new(n: usize) -> Topology {
        Topology {
            group: vec![None; n],
            oneway: Vec::new(),
            frozen: vec![false; n],
            extra: vec![Duration::ZERO; n],
            cut: vec![false; n],
        }
    }

    /// Can a frame leave `from` and reach `to` right now?
    pub(crate) fn open(&self, from: usize, to: usize) -> bool {
        if self.frozen[from] || self.frozen[to] || self.cut[from] || self.cut[to] {
            return false;
        }
        if let (Some(a), Some(b)) = (self.group[from], self.group[to])
            && a != b
        {
            return false;
        }
        !self.oneway.iter().any(|(src, dst)| src[from] && dst[to])
    }

    /// Both directions open: what a TCP connection needs.
    pub(crate) fn both_open(&self, a: usize, b: usize) -> bool {
        self.open(a, b) && self.open(b, a)
    }

    pub(crate) fn extra(&self, a: usize, b: usize) -> Duration {
        self.extra[a] + self.extra[b]
    }

    /// Split into groups; nodes not listed keep talking to everyone.
    pub(crate) fn partition(&mut self, groups: &[Vec<usize>]) {
        for g in self.group.iter_mut() {
            *g = None;
        }
        for (i, members) in groups.iter().enumerate() {
            for &n in members {
                self.group[n] = Some(i as u32);
            }
        }
    }

    pub(crate) fn partition_oneway(&mut self, from: &[usize], to: &[usize]) {
        let n = self.group.len();
        let mut src = vec![false; n];
        let mut dst = vec![false; n];
        from.iter().for_each(|&i| src[i] = true);
        to.iter().for_each(|&i| dst[i] = true);
        self.oneway.push((src, dst));
    }

    /// End every partition (frozen hosts stay frozen: a freeze is a host fault).
    pub(crate) fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = None);
        self.oneway.clear();
    }

    pub(crate) fn set_frozen(&mut self, node: usize, frozen: bool) {
        self.frozen[node] = frozen;
    }

    pub(crate) fn set_cut(&mut self, node: usize, cut: bool) {
        self.cut[node] = cut;
    }

    pub(crate) fn set_extra(&mut self, node: usize, extra: Duration) {
        self.extra[node] = extra;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_bridges_and_oneway_cuts() {
        let mut t = Topology::new(4);
        t.partition(&[vec![0, 1], vec![2]]);
        assert!(t.both_open(0, 1));
        assert!(!t.open(0, 2) && !t.open(2, 1));
        assert!(
            t.both_open(3, 0) && t.both_open(3, 2),
            "node 3 is in no group: a bridge"
        );
        t.heal();
        t.partition_oneway(&[0], &[1]);
        assert!(!t.open(0, 1) && t.open(1, 0));
        t.set_frozen(2, true);
        assert!(!t.open(2, 3) && !t.open(3, 2));
        t.set_cut(3, true);
        assert!(!t.open(3, 0) && !t.open(1, 3), "a cut node reaches nobody");
        t.heal();
        assert!(
            !t.open(3, 0),
            "a cut is not a partition: a heal does not end it"
        );
        t.set_cut(3, false);
        assert!(t.both_open(3, 0));
    }
}
