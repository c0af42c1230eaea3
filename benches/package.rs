//! Pure packaging cost, without HTTP: indexing a file, building a CMAF segment from the bytes
//! of one ranged read (clear, MPEG-TS, `cenc` and `cbcs`), and writing manifests. Run:
//! `cargo bench -p sealcast-benches`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sealcast_package::asset::SourceFile;
use sealcast_package::index::index_bytes;
use sealcast_cenc::{ContentKey, IvDeriver, KeyKind, Kid, TrackProtection};
use sealcast_package::{fmp4, manifest, protect, ts, Asset, PackageOptions};
use sealcast_testkit::fixture;

fn demo() -> Asset {
    let files: Vec<SourceFile> = ["audio_en.cmfa", "audio_fr.cmfa", "video_180p.cmfv", "video_360p.cmfv"]
        .iter()
        .map(|f| SourceFile { name: f.to_string(), index: Arc::new(index_bytes(&fixture(&format!("demo/{f}")), 65536).unwrap()) })
        .collect();
    Asset::build(&files, None, PackageOptions::default()).unwrap()
}

fn bench(c: &mut Criterion) {
    let file = fixture("demo/video_360p.cmfv");
    let walk = fixture("demo/video_180p.cmfv");
    let mut g = c.benchmark_group("index");
    g.bench_function("sidx_360p", |b| b.iter(|| index_bytes(black_box(&file), 65536).unwrap()));
    g.bench_function("moof_walk_180p", |b| b.iter(|| index_bytes(black_box(&walk), 65536).unwrap()));
    g.finish();

    let a = demo();
    let t = a.track("video_360p").unwrap();
    let (s, e) = t.segment_range(1).unwrap();
    let data = file.slice(s as usize..e as usize);
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(e - s));
    g.bench_function("cmaf_360p", |b| {
        b.iter(|| {
            let f = fmp4::read_segment(t, 1, black_box(&data), s).unwrap();
            fmp4::write_segment(&f, &data, s).unwrap()
        })
    });
    // The same segment muxed into MPEG-TS with the English audio (the clear HLS TS path: one
    // copy of every byte into 188-byte packets).
    let vi = a.tracks.iter().position(|x| x.name == "video_360p").unwrap();
    let plan = ts::plan_segment(&a, vi, 2).unwrap();
    let main = file.slice(plan.bytes.start as usize..plan.bytes.end as usize);
    let audio = plan.audio.as_ref().map(|ap| fixture(&format!("demo/{}", a.tracks[ap.track].file)).slice(ap.bytes.start as usize..ap.bytes.end as usize));
    g.throughput(Throughput::Bytes((plan.bytes.end - plan.bytes.start) + audio.as_ref().map_or(0, |b| b.len() as u64)));
    g.bench_function("ts_360p", |b| b.iter(|| ts::build_segment(&a, black_box(&plan), &main, audio.as_ref(), None).unwrap()));
    // The same under SAMPLE-AES (FairPlay TS): slices 1:9 after 32 clear bytes, AAC frames,
    // emulation prevention over every encrypted NAL unit.
    let sample_aes = || Some(ts::SampleAesParams { key: [2; 16], iv: [3; 16] });
    g.bench_function("ts_sample_aes_360p", |b| b.iter(|| ts::build_segment(&a, black_box(&plan), &main, audio.as_ref(), sample_aes()).unwrap()));
    // The CMAF segment's samples encrypted out of place from a source other requests share
    // (a fragment-cache hit): `cenc` (CTR over every protected byte) and `cbcs` (CBC over one
    // block in ten, the fragment's chains together).
    g.throughput(Throughput::Bytes(e - s));
    let frags = fmp4::read_segment(t, 1, &data, s).unwrap();
    let format = protect::sample_format(&t.track().info);
    let key = ContentKey::aes128(Kid([1; 16]), KeyKind::CommonEncryption, [2; 16]);
    for (name, p) in [
        ("cenc_360p", TrackProtection::cenc(&key, format, IvDeriver::from_base(9)).unwrap()),
        ("cbcs_360p", TrackProtection::cbcs(&key, format, [3; 16]).unwrap()),
    ] {
        g.bench_function(name, |b| b.iter(|| protect::encrypt_source(&frags, black_box(data.clone()), s, &p, 0).unwrap()));
    }
    g.finish();

    let mut g = c.benchmark_group("manifest");
    g.bench_function("mpd", |b| b.iter(|| manifest::dash::write_mpd(black_box(&a))));
    g.bench_function("hls_master", |b| b.iter(|| manifest::hls::write_master(black_box(&a), manifest::hls::FMP4)));
    g.bench_function("hls_media", |b| b.iter(|| manifest::hls::write_media(black_box(t), manifest::hls::FMP4)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
