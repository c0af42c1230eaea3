//! Arbitrary bytes as a request path and a `Range` header (`path\nrange`): the URL grammar and
//! the range parser never panic, never name an asset outside the root, and never return a
//! range outside the body. See `sealcast_origin::route::fuzz_one`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_origin::route::fuzz_one(data));
