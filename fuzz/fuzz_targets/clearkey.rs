//! A ClearKey licence request body, and the licence written for it.
//! See `sealcast_drm::fuzzing::fuzz_clearkey`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_drm::fuzzing::fuzz_clearkey(data));
