#![no_main]
//! See `hawser_core::fuzzing::multicast_packet`. Run: `cargo fuzz run -s none multicast_packet` (from `fuzz/`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hawser_core::fuzzing::multicast_packet(data));
