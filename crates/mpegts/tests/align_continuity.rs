//! `MuxParams::align_continuity`: segments muxed independently, each starting its
//! elementary PIDs at counter 0, concatenate into one stream with continuous counters,
//! and carry exactly the PES bytes of the unaligned mux.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::*;
use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};
use sealcast_mpegts::{
    count_packets, estimate_size, mux_segment, Codec, ContinuityState, MuxParams, PacketCounts,
    Sample, Stream, AUDIO_PID, PAT_PID, PMT_PID, VIDEO_PID,
};

const OFFSET: u64 = 900_000;

/// Parameters an origin uses for segment `i` when it knows nothing of the others.
fn independent(i: usize, align: bool) -> MuxParams {
    let n = (i % 16) as u8;
    MuxParams {
        pts_offset_90k: OFFSET,
        continuity: ContinuityState {
            pat: n,
            pmt: n,
            video: 0,
            audio: 0,
        },
        align_continuity: align,
        sample_aes: None,
    }
}

/// Muxes every segment on its own; returns the concatenation and each segment's bytes.
fn mux_all(segments: &[Vec<Stream<'_>>], align: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut all = Vec::new();
    let mut each = Vec::new();
    for (i, streams) in segments.iter().enumerate() {
        let mut params = independent(i, align);
        let counts = count_packets(streams, &params).unwrap();
        let mut seg = Vec::new();
        mux_segment(streams, &mut params, &mut seg).unwrap();
        assert_eq!(seg.len() as u64, counts.bytes(), "count_packets is exact");
        assert_eq!(estimate_size(streams, &params).unwrap(), seg.len());
        if align {
            assert_eq!(per_pid_payload_packets(&seg), counts_map(&counts));
            assert_eq!(
                counts.video % 16,
                0,
                "segment {i}: video packets {counts:?}"
            );
            assert_eq!(
                counts.audio % 16,
                0,
                "segment {i}: audio packets {counts:?}"
            );
            let next = (((i + 1) % 16) as u8, ((i + 1) % 16) as u8, 0, 0);
            let c = params.continuity;
            assert_eq!((c.pat, c.pmt, c.video, c.audio), next);
        }
        all.extend_from_slice(&seg);
        each.push(seg);
    }
    (all, each)
}

fn counts_map(c: &PacketCounts) -> HashMap<u16, u64> {
    let mut m = HashMap::from([(PAT_PID, c.pat), (PMT_PID, c.pmt)]);
    for (pid, n) in [(VIDEO_PID, c.video), (AUDIO_PID, c.audio)] {
        if n > 0 {
            m.insert(pid, n);
        }
    }
    m
}

fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2])
}

/// Payload bytes of a TS packet (`None` without payload).
fn payload(p: &[u8]) -> Option<&[u8]> {
    match p[3] >> 4 & 3 {
        1 => Some(&p[4..]),
        3 if usize::from(p[4]) < 183 => Some(&p[5 + usize::from(p[4])..]),
        _ => None,
    }
}

fn per_pid_payload_packets(ts: &[u8]) -> HashMap<u16, u64> {
    let mut m = HashMap::new();
    for p in ts.chunks(188) {
        if payload(p).is_some() {
            *m.entry(pid(p)).or_insert(0) += 1;
        }
    }
    m
}

/// Independent byte-level reading: continuity on every PID across the whole input,
/// every elementary packet carrying payload, PES reassembled on
/// payload_unit_start_indicator. Returns the PES of each elementary PID and how many
/// PES had their header split over packets.
fn raw_pes(ts: &[u8]) -> (HashMap<u16, Vec<Vec<u8>>>, usize) {
    assert_eq!(ts.len() % 188, 0);
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut pes: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    let mut split_headers = 0;
    for p in ts.chunks(188) {
        assert_eq!(p[0], 0x47);
        let (pid, cc) = (pid(p), p[3] & 0x0F);
        let data = payload(p).expect("every packet carries payload");
        assert!(!data.is_empty());
        if let Some(prev) = last_cc.insert(pid, cc) {
            assert_eq!(cc, (prev + 1) % 16, "continuity on PID {pid:#x}");
        }
        if pid != VIDEO_PID && pid != AUDIO_PID {
            continue;
        }
        let list = pes.entry(pid).or_default();
        if p[1] & 0x40 != 0 {
            if data.len() < 9 || data.len() < 9 + usize::from(data[8]) {
                split_headers += 1;
            }
            list.push(Vec::new());
        }
        list.last_mut()
            .expect("PES starts with PUSI")
            .extend_from_slice(data);
    }
    (pes, split_headers)
}

/// (pid, PCR, random_access_indicator) of a PES start.
type Start = (u16, Option<u64>, bool);
/// (stream id, PTS, DTS, payload) of a PES.
type PesInfo = (u8, u64, Option<u64>, Vec<u8>);

/// Reads with `mpeg2ts`: PES starts, and PES (stream id, PTS, DTS, payload) in order.
/// Checks counter continuity, and that only PES starts carry PCR/RAI.
fn mpeg2ts_read(ts: &[u8]) -> (Vec<Start>, Vec<PesInfo>) {
    let mut starts = Vec::new();
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut reader = TsPacketReader::new(ts);
    while let Some(pkt) = reader.read_ts_packet().unwrap() {
        let pid = pkt.header.pid.as_u16();
        let cc = pkt.header.continuity_counter.as_u8();
        if let Some(prev) = last_cc.insert(pid, cc) {
            assert_eq!(cc, (prev + 1) % 16, "mpeg2ts: continuity on PID {pid:#x}");
        }
        let af = pkt.adaptation_field.as_ref();
        match pkt.payload.expect("payload") {
            TsPayload::Pes(_) => starts.push((
                pid,
                af.and_then(|a| a.pcr).map(|p| p.as_u64()),
                af.is_some_and(|a| a.random_access_indicator),
            )),
            TsPayload::Raw(_) => {
                assert!(af.is_none_or(|a| a.pcr.is_none() && !a.random_access_indicator));
            }
            TsPayload::Pat(_) | TsPayload::Pmt(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut pes = Vec::new();
    let mut r = PesPacketReader::new(TsPacketReader::new(ts));
    while let Some(p) = r.read_pes_packet().unwrap() {
        pes.push((
            p.header.stream_id.as_u8(),
            p.header.pts.unwrap().as_u64(),
            p.header.dts.map(|d| d.as_u64()),
            p.data,
        ));
    }
    (starts, pes)
}

/// The whole check for one series of segments; returns the unaligned and aligned
/// sizes. `expect_split_headers`: how many PES must have their header spread over
/// packets (one-frame segments of tiny AAC frames); `mpeg2ts` cannot read those, so
/// the `mpeg2ts` comparison runs only when there are none.
fn check(segments: &[Vec<Stream<'_>>], expect_split_headers: usize) -> (usize, usize) {
    let (plain, _) = mux_all(segments, false);
    let (aligned, each) = mux_all(segments, true);

    // Continuity holds across the concatenation (raw_pes asserts it) and the PES bytes
    // (headers and payloads) are the unaligned ones.
    let (aligned_pes, split) = raw_pes(&aligned);
    assert_eq!(
        split, expect_split_headers,
        "PES headers split over packets"
    );
    let mut plain_pes: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    for seg in plain.chunks(188) {
        // Unaligned segments muxed independently jump counters; gather PES without the
        // continuity check.
        if let (VIDEO_PID | AUDIO_PID, Some(d)) = (pid(seg), payload(seg)) {
            let list = plain_pes.entry(pid(seg)).or_default();
            if seg[1] & 0x40 != 0 {
                list.push(Vec::new());
            }
            list.last_mut().unwrap().extend_from_slice(d);
        }
    }
    assert_eq!(aligned_pes, plain_pes, "PES bytes unchanged by alignment");
    for seg in &each {
        for (&pid, &n) in &per_pid_payload_packets(seg) {
            assert!(
                pid == PAT_PID || pid == PMT_PID || n % 16 == 0,
                "PID {pid:#x}: {n} packets"
            );
        }
    }
    if expect_split_headers == 0 {
        // mpeg2ts: same PES (times and payloads), same PCR/RAI on the same PES starts.
        let (a_starts, a_pes) = mpeg2ts_read(&aligned);
        let (p_starts, p_pes) = {
            // Read the unaligned segments one by one (their counters do not continue).
            let (_, plain_each) = mux_all(segments, false);
            let mut s = Vec::new();
            let mut p = Vec::new();
            for seg in &plain_each {
                let (a, b) = mpeg2ts_read(seg);
                s.extend(a);
                p.extend(b);
            }
            (s, p)
        };
        assert_eq!(a_starts, p_starts, "PCR/RAI on first packets intact");
        let sort = |mut v: Vec<PesInfo>| {
            v.sort();
            v
        };
        assert_eq!(sort(a_pes), sort(p_pes));
    }
    (plain.len(), aligned.len())
}

/// Cuts video at every keyframe; audio goes with the video segment its DTS falls in.
fn av_segments<'a>(
    vcodec: &'a Codec,
    vscale: u32,
    vs: &'a [Sample<'a>],
    acodec: &'a Codec,
    ascale: u32,
    as_: &'a [Sample<'a>],
) -> Vec<Vec<Stream<'a>>> {
    let cuts: Vec<usize> = (0..vs.len())
        .filter(|&i| vs[i].keyframe)
        .chain([vs.len()])
        .collect();
    let mut out = Vec::new();
    let mut at = 0;
    for w in cuts.windows(2) {
        let end = if w[1] == vs.len() {
            as_.len()
        } else {
            let t = i128::from(vs[w[1]].dts) * i128::from(ascale);
            as_.iter()
                .position(|a| i128::from(a.dts) * i128::from(vscale) >= t)
                .unwrap_or(as_.len())
        };
        out.push(vec![
            stream(vcodec, vscale, &vs[w[0]..w[1]]),
            stream(acodec, ascale, &as_[at..end]),
        ]);
        at = end;
    }
    out
}

#[test]
fn h264_aac_segments() {
    let video = video_samples(185, 30, 11);
    let audio = audio_samples(290, 12);
    let (vc, ac) = (h264_codec(), aac_codec());
    let (vs, as_) = (samples(&video), samples(&audio));
    let segs = av_segments(&vc, 30_000, &vs, &ac, 48_000, &as_);
    assert_eq!(segs.len(), 7);
    let (plain, aligned) = check(&segs, 0);
    // At most 15 extra packets per PID per segment.
    let extra = (aligned - plain) / 188;
    assert!(extra <= segs.len() * 30, "{extra} extra packets");
}

#[test]
fn audio_only_segments() {
    let audio = audio_samples(400, 21);
    let ac = aac_codec();
    let as_ = samples(&audio);
    // Uneven segment lengths, including one of a single frame.
    let bounds = [0, 94, 188, 189, 250, 281, 400];
    let segs: Vec<Vec<Stream<'_>>> = bounds
        .windows(2)
        .map(|w| vec![stream(&ac, 48_000, &as_[w[0]..w[1]])])
        .collect();
    check(&segs, 0);
}

#[test]
fn hevc_segments() {
    let vps = Bytes::from_static(&[0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF]);
    let sps = Bytes::from_static(&[0x42, 0x01, 0x01, 0x01, 0x60, 0x00]);
    let pps = Bytes::from_static(&[0x44, 0x01, 0xC1, 0x72, 0xB4]);
    let vc = Codec::Hevc {
        vps: vec![vps],
        sps: vec![sps],
        pps: vec![pps],
        nal_length_size: 4,
    };
    let mut rng = Lcg(5);
    let video: Vec<Owned> = (0..100)
        .map(|i| {
            let keyframe = i % 25 == 0;
            let len = 3 + rng.below(6000) as usize;
            let mut nal = rng.bytes(len);
            nal[0] = if keyframe { 19 << 1 } else { 1 << 1 };
            nal[1] = 0x01;
            let mut data = (nal.len() as u32).to_be_bytes().to_vec();
            data.extend_from_slice(&nal);
            Owned {
                dts: i * 3600,
                pts: i * 3600 + 7200,
                keyframe,
                data,
                nals: vec![nal],
            }
        })
        .collect();
    let audio = audio_samples(190, 6);
    let ac = aac_codec();
    let (vs, as_) = (samples(&video), samples(&audio));
    let segs = av_segments(&vc, 90_000, &vs, &ac, 48_000, &as_);
    assert_eq!(segs.len(), 4);
    check(&segs, 0);
    // Video only too.
    let segs: Vec<Vec<Stream<'_>>> = segs.iter().map(|s| vec![s[0]]).collect();
    check(&segs, 0);
}

/// Samples of 1 to 20 bytes: PES too short to absorb the padding alone, so earlier PES
/// of the PID take part of it, headers still whole in their first packets.
#[test]
fn tiny_samples() {
    let mut rng = Lcg(8);
    let video: Vec<Owned> = (0..60)
        .map(|i| {
            let keyframe = i % 12 == 0;
            let len = 1 + rng.below(20) as usize;
            let mut nal = rng.bytes(len);
            nal[0] = if keyframe { 0x65 } else { 0x41 };
            let mut data = (len as u32).to_be_bytes().to_vec();
            data.extend_from_slice(&nal);
            Owned {
                dts: i * 1001,
                pts: i * 1001,
                keyframe,
                data,
                nals: vec![nal],
            }
        })
        .collect();
    let audio: Vec<Owned> = (0..95)
        .map(|i| {
            let data = rng.bytes(1 + (i % 20));
            Owned {
                dts: i as i64 * 1024,
                pts: i as i64 * 1024,
                keyframe: true,
                nals: vec![data.clone()],
                data,
            }
        })
        .collect();
    let (vc, ac) = (h264_codec(), aac_codec());
    let (vs, as_) = (samples(&video), samples(&audio));
    check(&av_segments(&vc, 30_000, &vs, &ac, 48_000, &as_), 0);

    // Audio alone, segments of 1..=6 one-byte frames: 8 bytes of ES per frame, so a PES
    // of 1-3 frames absorbs 8-24 extra packets with its header intact.
    let ones: Vec<Owned> = (0..21)
        .map(|i| Owned {
            dts: i * 1024,
            pts: i * 1024,
            keyframe: true,
            data: vec![i as u8],
            nals: vec![],
        })
        .collect();
    let os = samples(&ones);
    let bounds = [0, 2, 5, 9, 14, 21];
    let segs: Vec<Vec<Stream<'_>>> = bounds
        .windows(2)
        .map(|w| vec![stream(&ac, 48_000, &os[w[0]..w[1]])])
        .collect();
    check(&segs, 0);

    // Every sample size 1..=20 as a one-frame audio segment. Frames of 8 bytes or more
    // pad with the header intact; shorter ones (PES of 22-28 bytes) need the PES header
    // spread over packets (legal TS; mpeg2ts cannot read it, the raw reader does).
    for len in 1..=20usize {
        let one = [Sample {
            dts: 0,
            pts: 0,
            keyframe: true,
            data: &vec![0xA5; len],
        }];
        let segs = vec![vec![stream(&ac, 48_000, &one)]; 3];
        // One frame: ES = 7 + len bytes, so 8 + len packets with the header intact.
        let split = if 8 + len >= 16 { 0 } else { 3 };
        check(&segs, split);
    }
}

#[test]
fn single_sample_segments() {
    let video = video_samples(1, 1, 3);
    let audio = audio_samples(1, 4);
    let (vc, ac) = (h264_codec(), aac_codec());
    let (vs, as_) = (samples(&video), samples(&audio));
    let seg = vec![stream(&vc, 30_000, &vs), stream(&ac, 48_000, &as_)];
    check(&vec![seg; 4], 0);
    let seg = vec![stream(&vc, 30_000, &vs)];
    check(&vec![seg; 3], 0);
    // A stream without samples in the segment writes nothing on its PID.
    let seg = vec![stream(&vc, 30_000, &vs), stream(&ac, 48_000, &[])];
    check(&vec![seg; 2], 0);
}

/// Without alignment, independently muxed segments jump counters (what the option
/// fixes); with it they do not, and the cost stays within 15 packets per PID.
#[test]
fn overhead_and_negative_control() {
    let video = video_samples(180, 60, 31);
    let audio = audio_samples(282, 32);
    let (vc, ac) = (h264_codec(), aac_codec());
    let (vs, as_) = (samples(&video), samples(&audio));
    let segs = av_segments(&vc, 30_000, &vs, &ac, 48_000, &as_);
    let mut jumps = 0;
    for (i, s) in segs.iter().enumerate() {
        let plain = count_packets(s, &independent(i, false)).unwrap();
        let aligned = count_packets(s, &independent(i, true)).unwrap();
        jumps += usize::from(plain.video % 16 != 0) + usize::from(plain.audio % 16 != 0);
        assert!(aligned.video - plain.video < 16 && aligned.audio - plain.audio < 16);
        assert_eq!(aligned.video.div_ceil(16), plain.video.div_ceil(16));
        assert_eq!(aligned.audio.div_ceil(16), plain.audio.div_ceil(16));
    }
    assert!(jumps > 0);
}
