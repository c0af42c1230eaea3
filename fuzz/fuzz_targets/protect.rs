//! Arbitrary bytes as one track file through every encrypting writer (cenc/cbcs CMAF, PIFF, protect_init, SAMPLE-AES TS).
//! See `sealcast_package::fuzzing::fuzz_protect`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_protect(data));
