#![no_main]
//! Arbitrary bytes at the frame decoder and at an unauthenticated inbound connection.
//! Run: `cargo fuzz run -s none link_input` (from this folder; `-s none` on stable).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hawser_core::fuzzing::link_input(data));
