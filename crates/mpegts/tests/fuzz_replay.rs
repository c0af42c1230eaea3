//! Replays the seeds and regressions of the `ts_mux` fuzz target (`fuzz/seeds/ts_mux/`,
//! `fuzz/regressions/ts_mux/`) through the same code the target runs, under plain
//! `cargo test` on stable, and runs that code on random inputs too. See `fuzz/README.md`.

mod common;

use common::demux::read_back;
use proptest::prelude::*;
use sealcast_mpegts::fuzzing::fuzz_mux;
use sealcast_testkit::replay_fuzz_inputs as replay;

/// The body of the `ts_mux` target: mux, then read back with `mpeg2ts`.
fn ts_mux(data: &[u8]) {
    if let Some((ts, video_samples)) = fuzz_mux(data) {
        read_back(&ts, video_samples);
    }
}

#[test]
fn ts_mux_seeds_and_regressions_do_not_panic() {
    replay("ts_mux", ts_mux);
}

/// The seeds are only useful if they get past validation: all but the unframed one mux,
/// and the demuxer finds their video.
#[test]
fn ts_mux_seeds_reach_the_writer() {
    let seeds = sealcast_testkit::fuzz_inputs("seeds", "ts_mux");
    let muxed: Vec<String> = seeds
        .iter()
        .filter(|p| fuzz_mux(&std::fs::read(p).unwrap()).is_some())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        muxed,
        ["aac_only.bin", "h264_aac_aligned.bin", "h264_aac_sample_aes.bin", "hevc.bin"],
        "seeds that mux"
    );
}

/// Open bug 8 (`fuzz/README.md`): with `align_continuity`, a PID whose few PES packets are
/// too short to absorb the padding gets a PES header split across TS packets, which
/// `mpeg2ts` cannot read. Found by `random_sample_tables`; fails until the muxer is fixed.
#[test]
#[ignore = "open bug 8: PES header split by continuity padding (fuzz/README.md)"]
fn open_bug_pes_header_split_by_continuity_padding() {
    let p = sealcast_testkit::repo_root().join("fuzz/open/ts_mux/pes-header-split-by-continuity-padding");
    ts_mux(&std::fs::read(p).unwrap());
}

// Fixed seeds: random ones found open bug 8 above, and a suite that fails on some runs
// only would hide every other result. Change the seeds to explore; new failures belong
// in `fuzz/regressions/ts_mux/` once fixed, or in `fuzz/open/ts_mux/` with a bug entry.
proptest! {
    // Random bytes decode to sample tables of every shape (see `segment_from_bytes`): the
    // stable stand-in for coverage-guided runs, which need cargo-fuzz.
    #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0001), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_sample_tables(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        ts_mux(&data);
    }

    // The same, with the header bytes chosen among the settings that mux, so most inputs
    // get past validation and reach the writer and the demuxer.
    #[test]
    fn random_valid_headers(cfg in any::<u8>(), samples in proptest::collection::vec((0u8..4, 0u16..3000, 1u8..120, 0u8..40), 1..40)) {
        let mut data = vec![cfg & !0x80, 0, 0x12, 0x10];
        let mut n = 0u8;
        for (flags, size, dur, cto) in samples {
            data.extend_from_slice(&[flags & 3, (size >> 8) as u8, size as u8, dur, cto]);
            // Slice NAL units (H.264 IDR/non-IDR header bytes), the rest filler.
            data.push(if flags & 2 != 0 { 0x65 } else { 0x41 });
            data.extend((1..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(n)));
            n = n.wrapping_add(1);
        }
        ts_mux(&data);
    }
}

/// Writes `fuzz/seeds/ts_mux/`: segments in the input format of `segment_from_bytes`, one
/// per stream combination (H.264 + AAC aligned, SAMPLE-AES, HEVC, AAC only, 1-byte NAL
/// lengths with an unframed sample). Run by `fuzz/make_seeds.sh`; deterministic.
#[test]
#[ignore = "writes seed files; run by fuzz/make_seeds.sh"]
fn write_ts_mux_seeds() {
    let dir = sealcast_testkit::repo_root().join("fuzz/seeds/ts_mux");
    std::fs::create_dir_all(&dir).unwrap();
    // (name, config byte, timescales byte, records: (flags, size, duration, cto))
    type Record = (u8, u16, i8, i8);
    let video_audio: Vec<Record> = (0..24)
        .map(|i| {
            if i % 3 == 2 {
                (1, 180, 23, 0)
            } else {
                (
                    if i % 8 == 0 { 2 } else { 0 },
                    400 + 37 * i as u16,
                    100,
                    if i % 2 == 0 { 40 } else { 0 },
                )
            }
        })
        .collect();
    let hevc: Vec<Record> = (0..12)
        .map(|i| (if i % 4 == 0 { 2 } else { 0 }, 300 + 11 * i as u16, 90, 0))
        .collect();
    let audio: Vec<Record> = (0..20).map(|i| (1, 150 + i as u16, 21, 0)).collect();
    let unframed: Vec<Record> = vec![(2, 100, 50, 0), (4, 60, 50, 0), (0, 100, 50, 0)];
    let seeds: [(&str, u8, u8, &[Record]); 5] = [
        (
            "h264_aac_aligned.bin",
            0x20 | 0x04 | 0x10 | 0x01,
            0x00,
            &video_audio,
        ),
        (
            "h264_aac_sample_aes.bin",
            0x40 | 0x04 | 0x10 | 0x01,
            0x00,
            &video_audio,
        ),
        ("hevc.bin", 0x10 | 0x02, 0x00, &hevc),
        ("aac_only.bin", 0x04, 0x04, &audio),
        ("h264_nal1_unframed.bin", 0x01, 0x01, &unframed),
    ];
    for (name, cfg, scales, records) in seeds {
        let mut data = vec![cfg, scales, 0x12, 0x10];
        for (k, &(flags, size, dur, cto)) in records.iter().enumerate() {
            data.extend_from_slice(&[flags, (size >> 8) as u8, size as u8, dur as u8, cto as u8]);
            let nal_header = if flags & 1 != 0 {
                0x21
            } else if cfg & 3 == 2 {
                0x26
            } else if flags & 2 != 0 {
                0x65
            } else {
                0x41
            };
            data.push(nal_header);
            data.extend((1..size).map(|i| (i as u8) ^ (k as u8)));
        }
        assert!(data.len() <= 16 * 1024, "{name}: seeds stay small");
        std::fs::write(dir.join(name), data).unwrap();
    }
}
