#![no_main]
//! See `hawser_core::fuzzing::membership_message`. Run: `cargo fuzz run -s none membership_message` (from `fuzz/`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hawser_core::fuzzing::membership_message(data));
