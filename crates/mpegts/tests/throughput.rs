//! Rough throughput check: `cargo test --release -p sealcast-mpegts --test throughput -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use sealcast_mpegts::{count_packets, mux_segment, MuxParams};

#[test]
#[ignore = "timing; run in release by hand"]
fn throughput() {
    // A 6 s segment at ~5 Mbit/s video + 128 kbit/s audio.
    let mut rng = Lcg(9);
    let video: Vec<Owned> = (0..180)
        .map(|i| {
            let keyframe = i % 60 == 0;
            let len = if keyframe {
                150_000
            } else {
                15_000 + rng.below(10_000) as usize
            };
            let mut nal = rng.bytes(len);
            nal[0] = if keyframe { 0x65 } else { 0x41 };
            let mut data = (len as u32).to_be_bytes().to_vec();
            data.extend_from_slice(&nal);
            Owned {
                dts: i * 1001,
                pts: i * 1001 + 2002,
                keyframe,
                data,
                nals: vec![],
            }
        })
        .collect();
    let audio = audio_samples(282, 1);
    let (vc, ac) = (h264_codec(), aac_codec());
    let (vs, as_) = (samples(&video), samples(&audio));
    let streams = [stream(&vc, 30_000, &vs), stream(&ac, 48_000, &as_)];

    let mut out = Vec::new();
    let iters = 300;
    let t = Instant::now();
    for _ in 0..iters {
        out.clear();
        mux_segment(
            &streams,
            &mut MuxParams {
                pts_offset_90k: 900_000,
                ..Default::default()
            },
            &mut out,
        )
        .unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let bytes = out.len() as f64 * iters as f64;
    println!(
        "mux_segment (reused Vec): {} bytes/segment, {:.2} GB/s",
        out.len(),
        bytes / secs / 1e9
    );

    let t = Instant::now();
    for _ in 0..iters {
        let mut fresh = Vec::new();
        mux_segment(
            &streams,
            &mut MuxParams {
                pts_offset_90k: 900_000,
                ..Default::default()
            },
            &mut fresh,
        )
        .unwrap();
        std::hint::black_box(&fresh);
    }
    let secs = t.elapsed().as_secs_f64();
    println!("mux_segment (fresh Vec):  {:.2} GB/s", bytes / secs / 1e9);

    let t = Instant::now();
    for _ in 0..iters * 10 {
        std::hint::black_box(count_packets(&streams, &MuxParams::default()).unwrap());
    }
    println!(
        "count_packets: {:.1} us/segment",
        t.elapsed().as_secs_f64() * 1e6 / (iters * 10) as f64
    );

    // Reference: a plain copy of the input bytes.
    let input: usize = video.iter().chain(&audio).map(|s| s.data.len()).sum();
    let t = Instant::now();
    for _ in 0..iters {
        out.clear();
        for s in video.iter().chain(&audio) {
            out.extend_from_slice(&s.data);
        }
        std::hint::black_box(&out);
    }
    println!(
        "memcpy of input: {:.2} GB/s",
        input as f64 * iters as f64 / t.elapsed().as_secs_f64() / 1e9
    );
}
