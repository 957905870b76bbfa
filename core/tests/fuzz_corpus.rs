//! Replays the committed cargo-fuzz seed corpus through the same entry points the fuzz
//! targets use, so every find stays fixed under plain `cargo test`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for file in files {
        run(&std::fs::read(&file).unwrap());
    }
}

#[test]
fn link_input_corpus() {
    replay("link_input", hawser_core::fuzzing::link_input);
}
