//! Memory held by a global membership table of 1,000 and 10,000 members (each with 7
//! neighbours, a `node-NNNNN` name and a `10.x.y.z:7600` address), measured by a counting allocator: live
//! heap bytes after building the table, minus before.
//!
//! `cargo bench -p hawser-core --bench gm_memory`

use hawser_core::gm::{Bounded, Entry, Table, Version};
use hawser_core::rng::NodeRng;
use hawser_core::{Addr, Instant, Name, NodeId};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

fn main() {
    for n in [1_000u64, 10_000] {
        let mut rng = NodeRng::from_seed(n);
        let entries: Vec<Entry> = (0..n)
            .map(|i| Entry {
                id: NodeId(i),
                name: Name::new(format!("node-{i:05}")).unwrap(),
                addr: Addr::new(format!(
                    "10.{}.{}.{}:7600",
                    i >> 16,
                    (i >> 8) & 255,
                    i & 255
                ))
                .unwrap(),
                version: Version {
                    incarnation: 1,
                    counter: 3,
                },
                adjacency: Bounded((0..7).map(|_| NodeId(rng.below(0, n))).collect()),
                suspects: Bounded(Vec::new()),
            })
            .collect();
        let before = counting_alloc::live();
        let mut table = Table::new(NodeId(0));
        for e in &entries {
            table.apply(e, Instant::ZERO, usize::MAX);
        }
        let bytes = counting_alloc::live() - before;
        println!(
            "gm table, {n} members: {bytes} bytes ({:.2} MiB, {} bytes/member; estimate {})",
            bytes as f64 / (1 << 20) as f64,
            bytes / n as usize,
            table.heap_bytes()
        );
        drop(table);
    }
}
