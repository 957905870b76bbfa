#![no_main]
//! See `hawser_dataplane::fuzzing::dns_query`. Run: `cargo fuzz run -s none dns_query` (from `fuzz/`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hawser_dataplane::fuzzing::dns_query(data));
