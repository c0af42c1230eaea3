//! A CPIX document: keys, DRM signalling, usage rules, key assignment.
//! See `sealcast_drm::fuzzing::fuzz_cpix`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_drm::fuzzing::fuzz_cpix(data));
