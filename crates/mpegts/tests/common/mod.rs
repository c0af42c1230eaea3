//! Synthetic streams for the integration tests.
#![allow(dead_code)]

pub mod demux;

use bytes::Bytes;
use sealcast_mpegts::{Codec, Sample, Stream};

/// A sample with owned bytes and the NAL units it was built from.
pub struct Owned {
    pub dts: i64,
    pub pts: i64,
    pub keyframe: bool,
    pub data: Vec<u8>,
    pub nals: Vec<Vec<u8>>,
}

impl Owned {
    pub fn sample(&self) -> Sample<'_> {
        Sample {
            dts: self.dts,
            pts: self.pts,
            keyframe: self.keyframe,
            data: &self.data,
        }
    }
}

/// Deterministic pseudo-random numbers (64-bit LCG, high bits).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    pub fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

pub const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB, 0x01, 0x10,
];
pub const PPS: &[u8] = &[0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0];

pub fn h264_codec() -> Codec {
    Codec::H264 {
        sps: vec![Bytes::from_static(SPS)],
        pps: vec![Bytes::from_static(PPS)],
        nal_length_size: 4,
    }
}

/// AAC-LC, 48 kHz, stereo.
pub fn aac_codec() -> Codec {
    Codec::Aac {
        audio_specific_config: Bytes::from_static(&[0x11, 0x90]),
    }
}

/// `n` H.264 samples at 30000/1001 fps (timescale 30000), keyframe every `gop`, with
/// composition offsets, SEI on keyframes, an AUD in some samples, and NAL sizes that
/// cover every remainder of a TS packet.
pub fn video_samples(n: usize, gop: usize, seed: u64) -> Vec<Owned> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let keyframe = i % gop == 0;
            let dts = i as i64 * 1001;
            let pts = dts + 1001 * (i % 3) as i64;
            let mut nals = Vec::new();
            if i % 4 == 1 {
                nals.push(vec![0x09, 0x30]); // an AUD the muxer must drop
            }
            if keyframe {
                let mut sei = vec![0x06, 0x05, 0x10];
                sei.extend(rng.bytes(16));
                sei.push(0x80);
                nals.push(sei);
            }
            let slices = 1 + rng.below(3) as usize;
            for _ in 0..slices {
                let len = match rng.below(4) {
                    0 => 1 + rng.below(400) as usize,
                    1 => 1 + rng.below(4000) as usize,
                    _ => 1 + rng.below(30_000) as usize,
                };
                let mut nal = rng.bytes(len);
                nal[0] = if keyframe { 0x65 } else { 0x41 };
                nals.push(nal);
            }
            let mut data = Vec::new();
            for nal in &nals {
                data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                data.extend_from_slice(nal);
            }
            Owned {
                dts,
                pts,
                keyframe,
                data,
                nals,
            }
        })
        .collect()
}

/// `n` AAC frames at 48 kHz (timescale 48000, 1024 per frame), sizes 1..=800.
pub fn audio_samples(n: usize, seed: u64) -> Vec<Owned> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let len = 1 + rng.below(800) as usize;
            let data = rng.bytes(len);
            let t = i as i64 * 1024;
            Owned {
                dts: t,
                pts: t,
                keyframe: true,
                data: data.clone(),
                nals: vec![data],
            }
        })
        .collect()
}

/// Borrowed views for a `Stream`.
pub fn samples(owned: &[Owned]) -> Vec<Sample<'_>> {
    owned.iter().map(Owned::sample).collect()
}

pub fn stream<'a>(codec: &'a Codec, timescale: u32, samples: &'a [Sample<'a>]) -> Stream<'a> {
    Stream {
        codec,
        timescale,
        samples,
    }
}
