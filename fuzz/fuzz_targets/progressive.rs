//! Arbitrary bytes as a progressive (non-fragmented) MP4: sample tables, fragments cut from
//! them, synthesized segments read back. See `sealcast_package::fuzzing::fuzz_progressive`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_progressive(data));
