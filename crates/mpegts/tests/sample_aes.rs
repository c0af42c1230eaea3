//! SAMPLE-AES through the whole muxer on synthetic streams: sizes predicted by
//! `count_packets`/`estimate_size`, continuity alignment over encrypted sizes, the PMT
//! read back with the `mpeg2ts` crate, clear parts of the payload where the format says,
//! hostile NAL units, and HEVC refused. (Decryption by ffmpeg of real content is in
//! `crates/package/tests/ts_sample_aes.rs`.)

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::*;
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};
use sealcast_mpegts::{
    count_packets, estimate_size, mux_segment, Codec, ContinuityState, Error, MuxParams, SampleAes,
    AUDIO_PID, VIDEO_PID,
};

const AES: SampleAes = SampleAes {
    key: [7; 16],
    iv: [9; 16],
};

fn params(i: usize, align: bool, enc: bool) -> MuxParams {
    let n = (i % 16) as u8;
    MuxParams {
        pts_offset_90k: 900_000,
        continuity: ContinuityState {
            pat: n,
            pmt: n,
            video: 0,
            audio: 0,
        },
        align_continuity: align,
        sample_aes: enc.then_some(AES),
    }
}

/// Muxes `streams` and checks the output against the prediction.
fn mux(streams: &[sealcast_mpegts::Stream<'_>], p: &mut MuxParams) -> Vec<u8> {
    let counts = count_packets(streams, p).unwrap();
    let mut out = Vec::new();
    mux_segment(streams, p, &mut out).unwrap();
    assert_eq!(out.len() as u64, counts.bytes());
    assert_eq!(out.len(), estimate_size(streams, p).unwrap());
    out
}

/// Video slices full of zero runs, so emulation prevention after encryption adds bytes.
fn zero_heavy(n: usize, seed: u64) -> Vec<Owned> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let mut nals = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let len = 1 + rng.below(6000) as usize;
                let mut nal: Vec<u8> = (0..len)
                    .map(|_| match rng.below(4) {
                        0 | 1 => 0,
                        2 => rng.below(4) as u8,
                        _ => rng.next() as u8,
                    })
                    .collect();
                nal[0] = if i % 10 == 0 { 0x65 } else { 0x41 };
                nals.push(nal);
            }
            let mut data = Vec::new();
            for nal in &nals {
                data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                data.extend_from_slice(nal);
            }
            Owned {
                dts: i as i64 * 1001,
                pts: i as i64 * 1001,
                keyframe: i % 10 == 0,
                data,
                nals,
            }
        })
        .collect()
}

#[test]
fn aligned_encrypted_segments_chain_and_parse() {
    let (v, a) = (h264_codec(), aac_codec());
    let mut all = Vec::new();
    let mut clear_all = Vec::new();
    for i in 0..12 {
        let video = if i % 2 == 0 {
            video_samples(20 + i, 10, i as u64)
        } else {
            zero_heavy(20 + i, i as u64)
        };
        let audio = audio_samples(30 + i, 100 + i as u64);
        let (vs, as_) = (samples(&video), samples(&audio));
        let streams = [stream(&v, 30_000, &vs), stream(&a, 48_000, &as_)];
        let mut p = params(i, true, true);
        let seg = mux(&streams, &mut p);
        // Aligned: the next segment starts at the same counters.
        assert_eq!((p.continuity.video, p.continuity.audio), (0, 0));
        let counts = count_packets(&streams, &params(i, true, true)).unwrap();
        assert_eq!((counts.video % 16, counts.audio % 16), (0, 0));
        all.extend_from_slice(&seg);
        clear_all.extend(mux(&streams, &mut params(i, true, false)));
    }
    // One continuous stream: counters run on across the independently muxed segments.
    let mut last: HashMap<u16, u8> = HashMap::new();
    let mut r = TsPacketReader::new(&all[..]);
    let mut pmts = 0;
    while let Some(pkt) = r.read_ts_packet().unwrap() {
        let pid = pkt.header.pid.as_u16();
        let cc = pkt.header.continuity_counter.as_u8();
        if let Some(prev) = last.insert(pid, cc) {
            assert_eq!(cc, (prev + 1) % 16, "PID {pid:#x}");
        }
        if let Some(TsPayload::Pmt(t)) = pkt.payload {
            pmts += 1;
            let es: Vec<_> = t
                .es_info
                .iter()
                .map(|e| {
                    (
                        e.stream_type as u8,
                        e.elementary_pid.as_u16(),
                        e.descriptors
                            .iter()
                            .map(|d| (d.tag, d.data.clone()))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            assert_eq!(es[0], (0xDB, VIDEO_PID, vec![(0x0F, b"zavc".to_vec())]));
            let mut apad = b"apadzaac".to_vec();
            apad.extend_from_slice(&[0, 0, 1, 2, 0x11, 0x90]);
            assert_eq!(
                es[1],
                (
                    0xCF,
                    AUDIO_PID,
                    vec![(0x0F, b"aacd".to_vec()), (0x05, apad)]
                )
            );
        }
    }
    assert_eq!(pmts, 12);
    // Same PES count and times as clear; audio sizes unchanged, video only grows.
    let pes = |ts: &[u8]| {
        let mut r = PesPacketReader::new(TsPacketReader::new(ts));
        let mut v = Vec::new();
        while let Some(p) = r.read_pes_packet().unwrap() {
            v.push((p.header.stream_id.as_u8(), p.header.pts, p.data));
        }
        v
    };
    let (e, c) = (pes(&all), pes(&clear_all));
    assert_eq!(e.len(), c.len());
    let mut grew = 0;
    for (x, y) in e.iter().zip(&c) {
        assert_eq!((x.0, x.1), (y.0, y.1));
        if x.0 == 0xE0 {
            grew += usize::from(x.2.len() > y.2.len());
            // Encryption never forges a start code (the synthetic clear slices are not
            // escaped, so they may hold some that the escaped ciphertext loses).
            let starts = |b: &[u8]| b.windows(3).filter(|w| *w == [0, 0, 1]).count();
            assert!(starts(&x.2) <= starts(&y.2));
        } else {
            assert_eq!(x.2.len(), y.2.len());
        }
    }
    assert!(
        grew > 0,
        "zero-heavy slices must gain emulation prevention bytes"
    );
}

#[test]
fn hostile_nals_through_the_muxer() {
    let v = h264_codec();
    // Tiny NALs, NALs of zeros, of 00 00 03 runs, of 00 00 01 runs, of every type.
    let mut owned = Vec::new();
    for (i, len) in [
        1usize, 2, 3, 17, 32, 33, 47, 48, 49, 50, 160, 193, 208, 209, 5000,
    ]
    .iter()
    .enumerate()
    {
        for (k, pattern) in [&[0u8][..], &[0, 0, 3], &[0, 0, 1], &[0xFF]]
            .iter()
            .enumerate()
        {
            for hdr in [0x65u8, 0x41, 0x01, 0x06, 0x67, 0x1F] {
                let mut nal: Vec<u8> = pattern.iter().copied().cycle().take(*len).collect();
                nal[0] = hdr;
                let mut data = (nal.len() as u32).to_be_bytes().to_vec();
                data.extend_from_slice(&nal);
                let t = (owned.len()) as i64 * 1001;
                owned.push(Owned {
                    dts: t,
                    pts: t,
                    keyframe: (i + k) % 3 == 0,
                    data,
                    nals: vec![nal],
                });
            }
        }
    }
    let vs = samples(&owned);
    for align in [false, true] {
        let mut p = params(3, align, true);
        let out = mux(&[stream(&v, 30_000, &vs)], &mut p);
        assert!(out.chunks(188).all(|c| c[0] == 0x47));
    }
    // Tiny audio frames (below the 32-byte threshold) and big ones.
    let a = aac_codec();
    let frames: Vec<Owned> = [1usize, 15, 16, 31, 32, 33, 8184]
        .iter()
        .enumerate()
        .map(|(i, &n)| Owned {
            dts: i as i64 * 1024,
            pts: i as i64 * 1024,
            keyframe: true,
            data: vec![0; n],
            nals: vec![],
        })
        .collect();
    let as_ = samples(&frames);
    let mut p = params(0, true, true);
    mux(&[stream(&a, 48_000, &as_)], &mut p);
}

#[test]
fn hevc_and_oversized_config_are_refused_before_writing() {
    let hevc = Codec::Hevc {
        vps: vec![],
        sps: vec![],
        pps: vec![],
        nal_length_size: 4,
    };
    let owned = video_samples(3, 3, 1);
    let vs = samples(&owned);
    let a = aac_codec();
    let audio = audio_samples(3, 2);
    let as_ = samples(&audio);
    let streams = [stream(&a, 48_000, &as_), stream(&hevc, 30_000, &vs)];
    let mut p = params(0, true, true);
    let before = p.clone();
    let mut out = vec![1, 2, 3];
    let err = mux_segment(&streams, &mut p, &mut out).unwrap_err();
    assert!(
        matches!(err, Error::SampleAesUnsupported { stream: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("HEVC"));
    assert_eq!((out, p), (vec![1, 2, 3], before));
    assert!(matches!(
        count_packets(&streams, &params(0, false, true)),
        Err(Error::SampleAesUnsupported { stream: 1, .. })
    ));
    // Clear HEVC still muxes.
    mux(&streams, &mut params(0, true, false));
    let long = Codec::Aac {
        audio_specific_config: Bytes::from(vec![0x11; 65]),
    };
    assert!(matches!(
        count_packets(&[stream(&long, 48_000, &as_)], &params(0, false, true)),
        Err(Error::SampleAesUnsupported { stream: 0, .. })
    ));
}
