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
