//! Arbitrary bytes as a `.ism` (SMIL) server manifest; tracks that parse must survive being
//! written back as SMIL. See `sealcast_package::fuzzing::fuzz_ism`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_ism(data));
