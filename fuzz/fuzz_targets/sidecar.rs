//! See `sealcast_package::fuzzing::fuzz_sidecar`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_sidecar(data));
