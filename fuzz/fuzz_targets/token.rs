//! A JWT or SWT against HS256, SWT and RS256/ES256/JWKS policies (mode byte J/S: signed payloads reach the claim checks).
//! See `sealcast_drm::fuzzing::fuzz_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_drm::fuzzing::fuzz_token(data));
