//! One pssh box (exact re-encode).
//! See `sealcast_drm::fuzzing::fuzz_pssh`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_drm::fuzzing::fuzz_pssh(data));
