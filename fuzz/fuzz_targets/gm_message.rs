#![no_main]
//! See `hawser_core::fuzzing::gm_message`. Run: `cargo fuzz run -s none gm_message` (from `fuzz/`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hawser_core::fuzzing::gm_message(data));
