#![no_main]
//! See `hawser_core::fuzzing::kv_op_json`. Run: `cargo fuzz run -s none kv_op_json` (from `fuzz/`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hawser_core::fuzzing::kv_op_json(data));
