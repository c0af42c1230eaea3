//! Arbitrary bytes as one track file: index (two read sizes), asset, manifests, segments.
//! See `sealcast_package::fuzzing::fuzz_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_file(data));
