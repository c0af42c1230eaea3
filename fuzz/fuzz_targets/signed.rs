//! Signed URLs: CloudFront policies, base64 and checks, wildcards, CIDRs, EdgeAuth tokens (mode byte P/B/W/I/E/C).
//! See `sealcast_drm::fuzzing::fuzz_signed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_drm::fuzzing::fuzz_signed(data));
