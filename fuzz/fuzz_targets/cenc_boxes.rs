//! Arbitrary bytes as senc, PIFF senc and the other protection boxes, and as an init for protect_init.
//! See `sealcast_package::fuzzing::fuzz_cenc_boxes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_package::fuzzing::fuzz_cenc_boxes(data));
