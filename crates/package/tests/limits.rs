//! The bounds of issue 11 on real files: within the defaults the fixtures index and plan
//! exactly as without bounds (the goldens pin the bytes), and each bound, set low enough,
//! refuses them with [`Error::Limit`] naming what was over it.

use std::sync::Arc;

use bytes::Bytes;
use sealcast_package::asset::SourceFile;
use sealcast_package::fragment::{read_track_fragment_within, FragmentBounds};
use sealcast_package::index::{index_bytes, index_bytes_within, IndexLimits};
use sealcast_package::timeline::{plan, SegmentLimits};
use sealcast_package::{Asset, Error, PackageOptions};
use sealcast_testkit::fixture;

const FILES: [&str; 5] = ["demo/video_180p.cmfv", "demo/video_360p.cmfv", "demo/audio_en.cmfa", "hevc/video.mp4", "multi/movie.ismv"];

fn build(data: &Bytes, opts: PackageOptions) -> Result<Asset, Error> {
    let files = [SourceFile { name: "f.mp4".into(), index: Arc::new(index_bytes(data, 4096)?) }];
    Asset::build(&files, None, opts)
}

#[test]
fn default_bounds_change_nothing_for_the_fixtures() {
    for f in FILES {
        let data = fixture(f);
        let unbounded = index_bytes_within(&data, 4096, IndexLimits { max_bytes: u64::MAX }).unwrap();
        let bounded = index_bytes(&data, 4096).unwrap();
        for (a, b) in unbounded.tracks.iter().zip(&bounded.tracks) {
            assert_eq!((&a.fragments, &a.init), (&b.fragments, &b.init), "{f}");
        }
        let asset = build(&data, PackageOptions::default()).unwrap();
        for t in &asset.tracks {
            assert_eq!(t.segments, plan(&t.track().fragments, t.track().info.timescale, 2000), "{f}: {}", t.name);
        }
    }
}

#[test]
fn a_small_index_budget_is_a_limit_error() {
    let data = fixture("demo/video_180p.cmfv");
    // The 733-byte moov is weighed at 10 bytes a byte before it is parsed: over 4 KiB.
    let e = index_bytes_within(&data, 4096, IndexLimits { max_bytes: 4096 }).unwrap_err();
    assert!(matches!(&e, Error::Limit(m) if m.contains("'moov' box of 733 bytes")), "{e}");
    // 1200 one-sample fragments, each fine: their table (72 bytes a fragment) is what is over.
    let many = fixture("hostile/many_fragments/video.cmfv");
    assert_eq!(index_bytes(&many, 4096).unwrap().tracks[0].fragments.len(), 1200);
    let e = index_bytes_within(&many, 4096, IndexLimits { max_bytes: 64 << 10 }).unwrap_err();
    assert!(matches!(&e, Error::Limit(m) if m.contains("index of the file needs more than")), "{e}");
}

#[test]
fn segment_caps_cut_or_refuse_real_fragments() {
    let data = fixture("demo/video_180p.cmfv");
    let opts = |max_duration_ms, max_bytes| PackageOptions { segment_limits: SegmentLimits { max_duration_ms, max_bytes }, ..PackageOptions::default() };
    // A 4 s target groups two 2 s fragments per segment; a 2 s cap keeps them apart.
    let grouped = build(&data, PackageOptions { segment_target_ms: 4000, ..opts(u64::MAX, u64::MAX) }).unwrap();
    let capped = build(&data, PackageOptions { segment_target_ms: 4000, ..opts(2000, u64::MAX) }).unwrap();
    assert!(grouped.tracks[0].segments.iter().any(|s| s.count == 2));
    assert!(capped.tracks[0].segments.iter().all(|s| s.count == 1 && s.duration <= 180_000));
    assert_eq!(capped.tracks[0].duration, grouped.tracks[0].duration);
    // Fragments are 26-34 KB: a 20 KB cap cannot be met by cutting.
    let e = build(&data, opts(u64::MAX, 20_000)).unwrap_err();
    assert!(matches!(&e, Error::Limit(m) if m.starts_with("track 1: fragment at byte 761")), "{e}");
}

#[test]
fn a_fragment_read_for_a_segment_is_bounded_by_the_bytes_read() {
    // The first moof of the fixture declares 50 samples of 26 KB in all: fine with its mdat
    // read, refused when fewer bytes were read than its samples add up to.
    let data = fixture("demo/video_180p.cmfv");
    let idx = index_bytes(&data, 4096).unwrap();
    let (t, f) = (&idx.tracks[0], idx.tracks[0].fragments[0]);
    let moof = &data[f.offset as usize..];
    let ok = FragmentBounds { media_bytes: f.size, ..FragmentBounds::default() };
    let samples = read_track_fragment_within(moof, f.offset, t.info.track_id, &t.info.trex, ok).unwrap().unwrap().media_bytes();
    assert!(samples > 20_000 && samples < f.size);
    let short = FragmentBounds { media_bytes: samples - 1, ..FragmentBounds::default() };
    assert!(read_track_fragment_within(moof, f.offset, t.info.track_id, &t.info.trex, short).is_err());
    let few = FragmentBounds { max_samples: f.samples as u64 - 1, ..FragmentBounds::default() };
    assert!(matches!(read_track_fragment_within(moof, f.offset, t.info.track_id, &t.info.trex, few), Err(Error::Limit(_))));
}
