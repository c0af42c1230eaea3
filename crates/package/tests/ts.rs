//! TS segments built from the real fixtures, checked packet by packet with the `mpeg2ts`
//! crate (an independent parser): sync bytes, PAT/PMT, PES timestamps, and continuity counters
//! across consecutive, independently built segments.

use std::collections::HashMap;
use std::sync::Arc;

use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};
use sealcast_package::asset::SourceFile;
use sealcast_package::index::index_bytes;
use sealcast_package::{fmp4, ts, Asset, AssetTrack, PackageOptions};
use sealcast_testkit::fixture;

fn asset(dir: &str, files: &[&str]) -> (Asset, HashMap<String, bytes::Bytes>) {
    let data: HashMap<String, bytes::Bytes> = files.iter().map(|f| (f.to_string(), fixture(&format!("{dir}/{f}")))).collect();
    let files: Vec<SourceFile> = files.iter().map(|f| SourceFile { name: f.to_string(), index: Arc::new(index_bytes(&data[*f], 4096).unwrap()) }).collect();
    (Asset::build(&files, None, PackageOptions::default()).unwrap(), data)
}

/// All TS segments of `track` (video alone here: the muxed-audio path is exercised end to end).
fn segments(t: &AssetTrack, file: &bytes::Bytes) -> Vec<Vec<u8>> {
    (0..t.segments.len())
        .map(|i| {
            let (s, e) = t.segment_range(i).unwrap();
            let data = file.slice(s as usize..e as usize);
            let frags = fmp4::read_segment(t, i, &data, s).unwrap();
            let input = ts::TsInput { codec: ts::codec(t), timescale: t.track().info.timescale, samples: ts::samples(&frags, &data, s, 0, u64::MAX, t.dts_shift()).unwrap() };
            ts::write_segment(&[input], i + 1).unwrap()
        })
        .collect()
}

#[test]
fn every_packet_parses_and_counters_run_across_segments() {
    for (dir, files) in [("demo", &["video_180p.cmfv", "audio_en.cmfa"][..]), ("hevc", &["video.mp4", "audio.mp4"][..]), ("multi", &["movie.ismv"][..])] {
        let (a, data) = asset(dir, files);
        for t in &a.tracks {
            let segs = segments(t, &data[&t.file]);
            let all: Vec<u8> = segs.concat();
            assert_eq!(all.len() % 188, 0);
            let mut last_cc: HashMap<u16, u8> = HashMap::new();
            let (mut pats, mut pes_starts) = (0, 0);
            let mut r = TsPacketReader::new(&all[..]);
            while let Some(p) = r.read_ts_packet().unwrap() {
                let pid = p.header.pid.as_u16();
                let has_payload = p.payload.is_some();
                if has_payload {
                    if let Some(prev) = last_cc.insert(pid, p.header.continuity_counter.as_u8()) {
                        assert_eq!(p.header.continuity_counter.as_u8(), (prev + 1) % 16, "{dir}/{}: continuity on PID {pid:#x}", t.name);
                    }
                }
                match p.payload {
                    Some(TsPayload::Pat(_)) => pats += 1,
                    Some(TsPayload::Pes(_)) => pes_starts += 1,
                    _ => {}
                }
            }
            assert_eq!(pats, segs.len(), "one PAT per segment");
            // One PES per video access unit; audio groups frames, so fewer PES than samples.
            // Counted in the fragments read (a sidx or mfra table knows the first one's only).
            let file = &data[&t.file];
            let samples: u32 = (0..t.segments.len())
                .map(|i| {
                    let (s, e) = t.segment_range(i).unwrap();
                    fmp4::read_segment(t, i, &file.slice(s as usize..e as usize), s).unwrap().iter().map(|f| f.traf.samples.len() as u32).sum::<u32>()
                })
                .sum();
            assert!(pes_starts > 0 && pes_starts as u32 <= samples, "{dir}/{}: {pes_starts} PES for {samples} samples", t.name);
            // PES timestamps: increasing, offset by the constant, PTS never below DTS.
            let mut pr = PesPacketReader::new(TsPacketReader::new(&all[..]));
            let mut last_dts = None;
            while let Some(pes) = pr.read_pes_packet().unwrap() {
                let pts = pes.header.pts.unwrap().as_u64();
                let dts = pes.header.dts.map_or(pts, |d| d.as_u64());
                assert!(pts >= dts && dts >= ts::PTS_OFFSET_90K - 90_000, "{dir}/{}: pts {pts} dts {dts}", t.name);
                if let Some(l) = last_dts {
                    assert!(dts > l, "{dir}/{}: DTS not increasing", t.name);
                }
                last_dts = Some(dts);
            }
        }
    }
}

/// A segment made in pieces ([`ts::build_pieces`]) is byte for byte the one built whole, muxed
/// audio included, whatever the piece size; its size is known before the first piece.
#[test]
fn pieces_are_the_whole_segment() {
    let (a, data) = asset("demo", &["video_180p.cmfv", "audio_en.cmfa"]);
    let vi = a.tracks.iter().position(|t| t.name.starts_with("video")).unwrap();
    let read = |file: &str, r: std::ops::Range<u64>| data[file].slice(r.start as usize..r.end as usize);
    let t = &a.tracks[vi];
    for n in 1..=t.segments.len() {
        let plan = ts::plan_segment(&a, vi, n).unwrap();
        let main = read(&t.file, plan.bytes.clone());
        let audio = plan.audio.as_ref().map(|ap| read(&a.tracks[ap.track].file, ap.bytes.clone()));
        assert!(audio.is_some(), "segment {n} carries audio");
        let whole = ts::build_segment(&a, &plan, &main, audio.as_ref(), None).unwrap();
        for at_least in [1, 4096, ts::TS_PIECE, usize::MAX] {
            let mut p = ts::build_pieces(&a, &plan, main.clone(), audio.clone()).unwrap();
            assert_eq!(p.len(), whole.len());
            let mut made = Vec::new();
            let mut pieces = 0;
            while let Some(piece) = p.next_piece(at_least).unwrap() {
                assert!(!piece.is_empty());
                made.extend_from_slice(&piece);
                pieces += 1;
            }
            assert!(p.is_empty() && made == whole, "segment {n}, pieces of {at_least}");
            if at_least == 1 {
                assert!(pieces > 10, "segment {n}: {pieces} pieces");
            }
        }
    }
}
