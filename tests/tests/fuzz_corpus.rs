//! Replays the committed cargo-fuzz seed corpus (`fuzz/corpus/<target>/`) through the
//! same entry points the fuzz targets use (`hawser_core::fuzzing`,
//! `hawser_dataplane::fuzzing`), so every find stays fixed under plain `cargo test`.

use std::path::Path;

/// Every seed of `target`, by file name, in name order.
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

fn replay(target: &str, run: fn(&[u8])) {
    for (_, bytes) in corpus(target) {
        run(&bytes);
    }
}

#[test]
fn link_input_corpus() {
    replay("link_input", hawser_core::fuzzing::link_input);
}

#[test]
fn membership_message_corpus() {
    replay(
        "membership_message",
        hawser_core::fuzzing::membership_message,
    );
}

#[test]
fn kv_message_corpus() {
    replay("kv_message", hawser_core::fuzzing::kv_message);
}

#[test]
fn kv_op_json_corpus() {
    replay("kv_op_json", hawser_core::fuzzing::kv_op_json);
}

#[test]
fn gm_message_corpus() {
    replay("gm_message", hawser_core::fuzzing::gm_message);
}

#[test]
fn multicast_packet_corpus() {
    replay("multicast_packet", hawser_core::fuzzing::multicast_packet);
}

#[test]
fn kv_value_corpus() {
    replay("kv_value", hawser_core::fuzzing::kv_value);
}

/// The seeds the fuzzer mutates must include valid inputs, or it starts from nothing.
#[test]
fn corpora_include_valid_inputs() {
    let read = |target: &str, name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/corpus")
                .join(target)
                .join(name),
        )
        .unwrap()
    };
    for name in ["zero", "forward-join", "ping", "shuffle", "probe-request"] {
        let bytes = read("membership_message", name);
        assert!(
            hawser_core::membership::Message::decode(&bytes).is_ok(),
            "membership seed {name}"
        );
    }
    for name in ["valid-update", "nested", "set-add"] {
        let bytes = read("kv_op_json", name);
        assert!(
            hawser_core::crdt::MapOp::from_json_slice(&bytes).is_ok(),
            "kv op seed {name}"
        );
    }
    for name in ["digest-zeros", "want-one"] {
        let bytes = read("kv_message", name);
        assert!(
            hawser_core::kv::KvMessage::decode(&bytes, 256).is_ok(),
            "kv seed {name}"
        );
    }
    for name in ["entries", "digest", "have", "want"] {
        let bytes = read("gm_message", name);
        assert!(
            hawser_core::gm::GmMessage::decode(&bytes).is_ok(),
            "gm seed {name}"
        );
    }
    for name in ["packet", "flood"] {
        let bytes = read("multicast_packet", name);
        assert!(
            hawser_core::multicast::Packet::decode(&bytes).is_ok(),
            "multicast seed {name}"
        );
    }
    for name in ["empty", "fields", "nested-16"] {
        let bytes = read("kv_value", name);
        assert!(
            hawser_core::wire::decode::<hawser_core::crdt::Map>(&bytes).is_ok(),
            "kv value seed {name}"
        );
    }
    let frame = read("link_input", "hello");
    assert!(hawser_core::wire::decode_frame(&frame, 1 << 16).is_ok());
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
