//! Arbitrary bytes as a segment's sample tables, through the TS muxer; a segment that muxes
//! must be read back whole by the `mpeg2ts` crate. See `sealcast_mpegts::fuzzing::fuzz_mux`
//! and `crates/mpegts/tests/common/demux.rs` (shared with the stable replay test).
#![no_main]

#[path = "../../crates/mpegts/tests/common/demux.rs"]
mod demux;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((ts, video_samples)) = sealcast_mpegts::fuzzing::fuzz_mux(data) {
        demux::read_back(&ts, video_samples);
    }
});
