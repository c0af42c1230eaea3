//! Progressive vs fragmented input, same samples: `fixtures/progressive/faststart/movie.mp4`
//! (progressive, audio and video interleaved) against ffmpeg's `-c copy` remux of it into
//! fragments (one `moof` per GOP per track). Index build, and a CMAF segment (video and
//! audio) built from the bytes of its read — what a segment request costs above the HTTP
//! layer. Run: `cargo bench -p sealcast-benches --bench progressive` (needs the static
//! ffmpeg of `scripts/setup.sh` for the remux).

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sealcast_package::asset::SourceFile;
use sealcast_package::index::index_bytes;
use sealcast_package::{fmp4, Asset, PackageOptions, TrackKind};
use sealcast_testkit::{fixture, fixtures_dir, streamer_binary};

fn asset(data: &Bytes) -> Asset {
    let index = Arc::new(index_bytes(data, 65536).unwrap());
    Asset::build(&[SourceFile { name: "movie.mp4".into(), index }], None, PackageOptions::default()).unwrap()
}

/// ffmpeg's fragmented copy of the progressive fixture: same packets, fragments on key frames.
fn fragmented() -> Bytes {
    let ffmpeg = streamer_binary("ffmpeg-linux-x64").expect("the static ffmpeg (scripts/setup.sh) for the fragmented copy");
    let out = std::env::temp_dir().join(format!("sealcast-bench-frag-{}.mp4", std::process::id()));
    let src = fixtures_dir().join("progressive/faststart/movie.mp4");
    let st = std::process::Command::new(ffmpeg)
        .args(["-v", "error", "-y", "-i"])
        .arg(&src)
        .args(["-map", "0", "-c", "copy", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "1000000"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let b = Bytes::from(std::fs::read(&out).unwrap());
    std::fs::remove_file(&out).ok();
    b
}

fn bench(c: &mut Criterion) {
    let inputs = [("progressive", fixture("progressive/faststart/movie.mp4")), ("fragmented", fragmented())];
    let mut g = c.benchmark_group("index_4s_av");
    for (name, data) in &inputs {
        g.bench_function(*name, |b| b.iter(|| index_bytes(black_box(data), 65536).unwrap()));
    }
    g.finish();
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let mut g = c.benchmark_group(format!("segment_{}", kind.as_str()));
        for (name, data) in &inputs {
            let a = asset(data);
            let t = a.tracks.iter().find(|t| t.kind() == kind).unwrap();
            let (s, e) = t.segment_range(0).unwrap();
            let range = data.slice(s as usize..e as usize);
            g.throughput(Throughput::Bytes(t.segments[0].media_bytes));
            g.bench_function(*name, |b| {
                b.iter(|| {
                    let f = fmp4::read_segment(t, 0, black_box(&range), s).unwrap();
                    fmp4::write_segment(&f, &range, s).unwrap()
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
