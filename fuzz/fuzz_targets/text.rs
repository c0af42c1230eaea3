//! Arbitrary bytes as a subtitle file (first byte `T`: TTML, else WebVTT); what parses must
//! come back unchanged through the WebVTT we write. See `sealcast_package::fuzzing::fuzz_text`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_text(data));
