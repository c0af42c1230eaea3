//! See `sealcast_package::fuzzing::fuzz_mfra`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_mfra(data));
