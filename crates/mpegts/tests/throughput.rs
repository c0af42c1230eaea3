//! Rough throughput check: `cargo test --release -p sealcast-mpegts --test throughput -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use sealcast_mpegts::{count_packets, mux_segment, MuxParams};

/// A 6 s segment at ~5 Mbit/s video (keyframe every 2 s) + AAC frames of 1..=800 bytes.
fn segment(seed: u64, audio_seed: u64) -> (Vec<Owned>, Vec<Owned>) {
    let mut rng = Lcg(seed);
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
    (video, audio_samples(282, audio_seed))
}

#[test]
#[ignore = "timing; run in release by hand"]
fn throughput() {
    let (video, audio) = segment(9, 1);
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

    let mut aligned = Vec::new();
    let t = Instant::now();
    for _ in 0..iters {
        aligned.clear();
        mux_segment(
            &streams,
            &mut MuxParams {
                pts_offset_90k: 900_000,
                align_continuity: true,
                ..Default::default()
            },
            &mut aligned,
        )
        .unwrap();
    }
    println!(
        "mux_segment aligned (reused Vec): {} bytes/segment, {:.2} GB/s",
        aligned.len(),
        aligned.len() as f64 * iters as f64 / t.elapsed().as_secs_f64() / 1e9
    );

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

#[test]
#[ignore = "measurement; run by hand with --nocapture"]
fn alignment_overhead() {
    let (vc, ac) = (h264_codec(), aac_codec());
    let (mut total, mut extra, mut worst, n) = (0u64, 0u64, 0u64, 200);
    for seed in 0..n {
        let (video, audio) = segment(1000 + seed, 5000 + seed);
        let (vs, as_) = (samples(&video), samples(&audio));
        // Vary the audio share a little so the remainders mod 16 vary.
        let cut = 270 + (seed as usize % 12);
        let streams = [stream(&vc, 30_000, &vs), stream(&ac, 48_000, &as_[..cut])];
        let plain = count_packets(&streams, &MuxParams::default()).unwrap();
        let aligned = count_packets(
            &streams,
            &MuxParams {
                align_continuity: true,
                ..Default::default()
            },
        )
        .unwrap();
        let d = aligned.bytes() - plain.bytes();
        total += plain.bytes();
        extra += d;
        worst = worst.max(d);
    }
    println!(
        "alignment over {n} segments of ~{:.2} MB: mean +{:.0} bytes ({:.4}%), worst +{} bytes",
        total as f64 / n as f64 / 1e6,
        extra as f64 / n as f64,
        extra as f64 * 100.0 / total as f64,
        worst
    );
}
