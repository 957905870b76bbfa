#![no_main]
//! See `hawser_core::fuzzing::kv_value`. Run: `cargo fuzz run -s none kv_value` (from `fuzz/`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hawser_core::fuzzing::kv_value(data));
