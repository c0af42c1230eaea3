//! Indexing and packaging the committed fixtures, end to end in pure code.

use std::sync::Arc;

use sealcast_package::asset::SourceFile;
use sealcast_package::index::index_bytes;
use sealcast_package::{fmp4, ism, manifest, Asset, PackageOptions, TrackKind};
use sealcast_testkit::{fixture, golden};

fn asset(dir: &str, files: &[&str], with_ism: Option<&str>) -> Asset {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|f| SourceFile { name: f.to_string(), index: Arc::new(index_bytes(&fixture(&format!("{dir}/{f}")), 4096).unwrap()) })
        .collect();
    let ism = with_ism.map(|i| ism::parse(&fixture(&format!("{dir}/{i}"))).unwrap());
    Asset::build(&files, ism.as_deref(), PackageOptions::default()).unwrap()
}

fn demo() -> Asset {
    asset("demo", &["audio_en.cmfa", "audio_fr.cmfa", "video_180p.cmfv", "video_360p.cmfv"], Some("demo.ism"))
}

#[test]
fn demo_index_is_complete_and_aligned() {
    let a = demo();
    let names: Vec<_> = a.tracks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["video_180p", "video_360p", "audio_en", "audio_fr"]);
    let v: Vec<_> = a.tracks.iter().filter(|t| t.kind() == TrackKind::Video).collect();
    // Renditions cut at the same times.
    let times = |t: &sealcast_package::AssetTrack| t.segments.iter().map(|s| s.decode_time).collect::<Vec<_>>();
    assert_eq!(times(v[0]), times(v[1]));
    for t in &a.tracks {
        assert!((t.duration_secs() - 10.0).abs() < 0.1, "{} lasts {}", t.name, t.duration_secs());
        assert!(t.segments.len() >= 5);
        assert_eq!(t.segments.iter().map(|s| s.duration).sum::<u64>(), t.duration);
    }
    assert_eq!(a.track("audio_fr").unwrap().language.as_deref(), Some("fra"));
    assert_eq!(v[0].frame_rate, Some((25, 1)));
}

#[test]
fn sidx_and_moof_walk_agree() {
    // The 360p file has a sidx: the index takes a couple of reads, yet matches a walk.
    let data = fixture("demo/video_360p.cmfv");
    let with_sidx = index_bytes(&data, 4096).unwrap();
    assert!(with_sidx.reads <= 3, "{} reads", with_sidx.reads);
    let walk_180 = index_bytes(&fixture("demo/video_180p.cmfv"), 4096).unwrap();
    assert_eq!(
        with_sidx.tracks[0].fragments.iter().map(|f| (f.decode_time, f.duration, f.keyframe)).collect::<Vec<_>>(),
        walk_180.tracks[0].fragments.iter().map(|f| (f.decode_time, f.duration, f.keyframe)).collect::<Vec<_>>()
    );
    for f in &with_sidx.tracks[0].fragments {
        assert_eq!(&data[f.offset as usize + 4..][..4], b"moof", "sidx offset {} is not a moof", f.offset);
        assert!(f.offset + f.size <= data.len() as u64);
    }
}

#[test]
fn segments_keep_samples_and_pass_mdat_through() {
    for a in [demo(), asset("multi", &["movie.ismv"], None), asset("hevc", &["video.mp4", "audio.mp4"], None)] {
        for t in &a.tracks {
            let file = fixture(&format!("{}/{}", if t.file == "movie.ismv" { "multi" } else if t.name == "video" || t.name == "audio" { "hevc" } else { "demo" }, t.file));
            for i in 0..t.segments.len() {
                let (s, e) = t.segment_range(i).unwrap();
                let data = file.slice(s as usize..e as usize);
                let frags = fmp4::read_segment(t, i, &data, s).unwrap();
                let out = fmp4::write_segment(&frags, &data, s).unwrap();
                // Re-read our own segment: same samples, same bytes.
                let bytes = bytes::Bytes::from(out.concat());
                let mut pos = 0u64;
                let mut n = 0;
                for item in sealcast_isobmff::BoxIter::new(&bytes) {
                    let (h, _) = item.unwrap();
                    if h.typ.0 == *b"moof" {
                        let tf = sealcast_package::fragment::read_track_fragment(&bytes[pos as usize..(pos + h.size) as usize], pos, t.track().info.track_id, &t.track().info.trex).unwrap().unwrap();
                        let src = &frags[n].traf;
                        assert_eq!(tf.samples.len(), src.samples.len());
                        for (a, b) in tf.samples.iter().zip(&src.samples) {
                            assert_eq!((a.size, a.duration, a.flags, a.cto), (b.size, b.duration, b.flags, b.cto));
                            assert_eq!(&bytes[a.offset as usize..][..a.size as usize], &file[b.offset as usize..][..b.size as usize]);
                        }
                        n += 1;
                    }
                    pos += h.size;
                }
                assert_eq!(n, frags.len());
            }
        }
    }
}

/// A segment written from its `moof`s alone, its samples named by file range
/// (`write_segment_in_place`, what the origin sends with `sendfile`), is byte for byte the one
/// written from the whole read, for every segment of fragmented sources with one or several
/// tracks per file; a `moof` longer than the first read is found by `moof_len`; a head cut
/// short, or a sample claimed outside its fragment, is an error.
#[test]
fn segments_in_place_are_the_segments_written() {
    for (dir, a) in [("demo", demo()), ("multi", asset("multi", &["movie.ismv"], None)), ("hevc", asset("hevc", &["video.mp4", "audio.mp4"], None))] {
        for t in &a.tracks {
            let file = fixture(&format!("{dir}/{}", t.file));
            for i in 0..t.segments.len() {
                let (s, e) = t.segment_range(i).unwrap();
                let data = file.slice(s as usize..e as usize);
                let whole = fmp4::write_segment(&fmp4::read_segment(t, i, &data, s).unwrap(), &data, s).unwrap().concat();
                // Heads as the origin reads them, and with the first read as short as 8 bytes.
                for first in [fmp4::HEAD_READ, 8] {
                    let heads: Vec<bytes::Bytes> = fmp4::head_reads(t, i)
                        .unwrap()
                        .into_iter()
                        .map(|r| {
                            let r = r.start..r.end.min(r.start + first);
                            let moof = fmp4::moof_len(&file[r.start as usize..r.end as usize]).expect("a moof starts each fragment");
                            let end = if moof > r.end - r.start { r.start + moof } else { r.end };
                            file.slice(r.start as usize..end as usize)
                        })
                        .collect();
                    let parts = fmp4::write_segment_in_place(&fmp4::read_segment_heads(t, i, &heads).unwrap()).unwrap();
                    let mut sent = Vec::new();
                    for p in &parts {
                        match p {
                            fmp4::FilePart::Ours(b) => sent.extend_from_slice(b),
                            fmp4::FilePart::Source(r) => sent.extend_from_slice(&file[r.start as usize..r.end as usize]),
                        }
                    }
                    assert!(sent == whole, "{dir}/{} segment {}: in place differs", t.file, i + 1);
                    assert!(parts.iter().any(|p| matches!(p, fmp4::FilePart::Source(_))));
                    // A head without its whole moof is refused, not read past.
                    let mut cut = heads.clone();
                    let moof = fmp4::moof_len(&cut[0]).unwrap() as usize;
                    cut[0] = cut[0].slice(..moof - 1);
                    assert!(fmp4::read_segment_heads(t, i, &cut).is_err());
                    assert!(fmp4::read_segment_heads(t, i, &heads[1..]).is_err(), "a fragment missing");
                }
            }
        }
    }
    // Progressive input has no moofs: its segments are not made in place.
    let prog = asset("progressive/faststart", &["movie.mp4"], None);
    assert!(prog.tracks.iter().all(|t| fmp4::head_reads(t, 0).is_none()));
}

/// Every hostile fixture that indexes: each segment made in place is the segment written from
/// the whole read, or both ways refuse it (never one of them alone: the same files play, and
/// the same ones answer an error, whichever way a segment is sent).
#[test]
fn hostile_segments_in_place_agree_with_the_segments_written() {
    let root = sealcast_testkit::fixtures_dir().join("hostile");
    let mut compared = 0;
    for dir in std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()) {
        for path in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let file = bytes::Bytes::from(std::fs::read(&path).unwrap());
            let Ok(index) = index_bytes(&file, 4096) else { continue };
            let Ok(a) = Asset::build(&[SourceFile { name, index: Arc::new(index) }], None, PackageOptions::default()) else { continue };
            for t in &a.tracks {
                for i in 0..t.segments.len() {
                    let Some(reads) = fmp4::head_reads(t, i) else { continue };
                    let (s, e) = t.segment_range(i).unwrap();
                    let whole = (e as usize <= file.len())
                        .then(|| file.slice(s as usize..e as usize))
                        .and_then(|data| fmp4::read_segment(t, i, &data, s).and_then(|f| fmp4::write_segment(&f, &data, s)).ok())
                        .map(|c| c.concat());
                    let heads: Option<Vec<bytes::Bytes>> = reads
                        .into_iter()
                        .map(|r| {
                            let end = (r.end as usize).min(file.len());
                            let head = file.get(r.start as usize..end)?;
                            let m = fmp4::moof_len(head).unwrap_or(0) as usize;
                            Some(file.slice(r.start as usize..(r.start as usize + m).max(end).min(file.len())))
                        })
                        .collect();
                    let in_place = heads.and_then(|h| fmp4::read_segment_heads(t, i, &h).and_then(|f| fmp4::write_segment_in_place(&f)).ok()).map(|parts| {
                        let mut sent = Vec::new();
                        for p in &parts {
                            match p {
                                fmp4::FilePart::Ours(b) => sent.extend_from_slice(b),
                                fmp4::FilePart::Source(r) => sent.extend_from_slice(&file[r.start as usize..r.end as usize]),
                            }
                        }
                        sent
                    });
                    assert!(whole == in_place, "{}: segment {}: in place {} / whole {}", path.display(), i + 1, in_place.is_some(), whole.is_some());
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 10, "{compared} hostile segments compared");
}

/// A fragment whose `trun` points its samples past the segment's bytes (as the index measured
/// them) is refused when made in place, with the error `read_segment` gives for it: those
/// bytes would be sent from the file unseen.
#[test]
fn samples_outside_their_segment_are_refused_in_place() {
    let a = demo();
    let t = a.tracks.iter().find(|t| t.file == "video_180p.cmfv").unwrap();
    let file = fixture("demo/video_180p.cmfv");
    let r = fmp4::head_reads(t, 0).unwrap().remove(0);
    let mut head = file[r.start as usize..r.end as usize].to_vec();
    let moof = fmp4::moof_len(&head).unwrap() as usize;
    // The trun's data offset: find the trun and push its offset by a fragment's size.
    let at = head[..moof].windows(4).position(|w| w == b"trun").expect("a trun") - 4;
    let flags = u32::from_be_bytes(head[at + 8..at + 12].try_into().unwrap()) & 0xff_ffff;
    assert!(flags & 1 != 0, "the fixture's trun has a data offset");
    let off = at + 16;
    let v = i32::from_be_bytes(head[off..off + 4].try_into().unwrap());
    head[off..off + 4].copy_from_slice(&(v + (r.end - r.start) as i32 * 64).to_be_bytes());
    let mut heads: Vec<bytes::Bytes> = fmp4::head_reads(t, 0).unwrap().into_iter().map(|r| file.slice(r.start as usize..r.end as usize)).collect();
    heads[0] = bytes::Bytes::from(head);
    let Err(e) = fmp4::read_segment_heads(t, 0, &heads) else { panic!("a sample past its segment was taken") };
    assert!(matches!(e, sealcast_package::Error::Truncated { .. }), "{e}");
}

#[test]
fn manifests_match_golden() {
    let a = demo();
    golden("demo.mpd", manifest::dash::write_mpd(&a).as_bytes());
    golden("demo.m3u8", manifest::hls::write_master(&a, manifest::hls::FMP4).as_bytes());
    golden("demo_video_180p.m3u8", manifest::hls::write_media(a.track("video_180p").unwrap(), manifest::hls::FMP4).as_bytes());
    let m = asset("multi", &["movie.ismv"], None);
    golden("multi.mpd", manifest::dash::write_mpd(&m).as_bytes());
}

#[test]
fn init_and_first_segment_match_golden() {
    let a = demo();
    let t = a.track("video_180p").unwrap();
    golden("demo_video_180p_init.mp4", &t.track().init);
    let file = fixture("demo/video_180p.cmfv");
    let (s, e) = t.segment_range(0).unwrap();
    let data = file.slice(s as usize..e as usize);
    let seg = fmp4::write_segment(&fmp4::read_segment(t, 0, &data, s).unwrap(), &data, s).unwrap();
    golden("demo_video_180p_1.m4s", &seg.concat());
}

#[test]
fn bad_files_are_errors_not_panics() {
    for f in ["bad/truncated.cmfv", "bad/garbage.mp4"] {
        let e = index_bytes(&fixture(f), 4096).unwrap_err();
        println!("{f}: {e}");
    }
}
