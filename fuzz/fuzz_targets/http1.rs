//! Arbitrary bytes as what a client sends first on an HTTP/1.1 connection, read in pieces and
//! whole: the head reader never panics, finds the same head both ways, keeps what follows it,
//! and holds heads to their limits. See `sealcast_origin::h1::fuzz_one`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sealcast_origin::h1::fuzz_one(data));
