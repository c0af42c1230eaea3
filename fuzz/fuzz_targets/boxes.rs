//! Arbitrary bytes as a box tree (exact re-encode) and as a `.ism` server manifest.
//! See `sealcast_package::fuzzing::fuzz_boxes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_boxes(data));
