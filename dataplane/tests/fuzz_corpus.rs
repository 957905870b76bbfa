//! Replays the committed cargo-fuzz seed corpus of the dataplane's targets through the
//! same entry points, so every find stays fixed under plain `cargo test`.

use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
        .into_iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&f).unwrap())
        })
        .collect()
}

#[test]
fn dns_query_corpus() {
    let seeds = corpus("dns_query");
    for (_, bytes) in &seeds {
        hawser_dataplane::fuzzing::dns_query(bytes);
    }
    // The fuzzer needs valid queries to start from, not only garbage.
    let valid = seeds
        .iter()
        .filter(|(_, b)| hawser_dataplane::dns::message::parse_request(b, 1232).is_ok())
        .count();
    assert!(valid >= 5, "only {valid} seeds are valid queries");
}
