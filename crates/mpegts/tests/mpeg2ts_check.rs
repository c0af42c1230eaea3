//! Muxed output read back with an independent demuxer (the `mpeg2ts` crate).

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::*;
use mpeg2ts::es::StreamType;
use mpeg2ts::pes::{PesPacket, PesPacketReader, ReadPesPacket};
use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};
use sealcast_mpegts::{
    count_packets, estimate_size, mux_segment, Codec, ContinuityState, MuxParams, AUDIO_PID,
    PMT_PID, VIDEO_PID,
};

const OFFSET: u64 = 900_000;

/// PCR PID and (stream type, PID) entries of one PMT.
type PmtSummary = (Option<u16>, Vec<(StreamType, u16)>);
type Pes = PesPacket<Vec<u8>>;

/// Per-packet facts gathered by the packet-level pass.
#[derive(Default)]
struct PacketPass {
    pats: usize,
    pmts: Vec<PmtSummary>,
    /// (pid, pcr in 27 MHz, random_access_indicator) of every PES start.
    starts: Vec<(u16, Option<u64>, bool)>,
}

fn packet_pass(ts: &[u8]) -> PacketPass {
    assert_eq!(ts.len() % 188, 0);
    assert!(ts.chunks(188).all(|p| p[0] == 0x47));
    let mut pass = PacketPass::default();
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut reader = TsPacketReader::new(ts);
    while let Some(pkt) = reader.read_ts_packet().unwrap() {
        let pid = pkt.header.pid.as_u16();
        let cc = pkt.header.continuity_counter.as_u8();
        if let Some(prev) = last_cc.insert(pid, cc) {
            assert_eq!(cc, (prev + 1) % 16, "continuity on PID {pid:#x}");
        }
        match pkt.payload.expect("every packet carries payload") {
            TsPayload::Pat(pat) => {
                assert_eq!(pat.table.len(), 1);
                assert_eq!(pat.table[0].program_num, 1);
                assert_eq!(pat.table[0].program_map_pid.as_u16(), PMT_PID);
                pass.pats += 1;
            }
            TsPayload::Pmt(pmt) => {
                assert_eq!(pmt.program_num, 1);
                let es = pmt
                    .es_info
                    .iter()
                    .map(|e| (e.stream_type, e.elementary_pid.as_u16()))
                    .collect();
                pass.pmts.push((pmt.pcr_pid.map(|p| p.as_u16()), es));
            }
            TsPayload::Pes(_) => {
                let af = pkt.adaptation_field.as_ref();
                pass.starts.push((
                    pid,
                    af.and_then(|a| a.pcr).map(|p| p.as_u64()),
                    af.is_some_and(|a| a.random_access_indicator),
                ));
            }
            TsPayload::Raw(_) => {
                if let Some(af) = &pkt.adaptation_field {
                    assert!(
                        af.pcr.is_none() && !af.random_access_indicator,
                        "only PES starts carry PCR/RAI"
                    );
                }
            }
            other => panic!("unexpected payload {other:?}"),
        }
    }
    pass
}

fn pes_pass(ts: &[u8]) -> (Vec<Pes>, Vec<Pes>) {
    let mut reader = PesPacketReader::new(TsPacketReader::new(ts));
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    while let Some(p) = reader.read_pes_packet().unwrap() {
        match p.header.stream_id.as_u8() {
            0xE0 => video.push(p),
            0xC0 => audio.push(p),
            id => panic!("stream id {id:#x}"),
        }
    }
    (video, audio)
}

fn times(p: &Pes) -> (u64, Option<u64>) {
    (
        p.header.pts.expect("PTS").as_u64(),
        p.header.dts.map(|d| d.as_u64()),
    )
}

/// Expected Annex-B access unit, built from the NAL list rather than the sample bytes.
fn expected_h264_au(s: &Owned) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0x09, 0xF0];
    if s.keyframe {
        for ps in [SPS, PPS] {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(ps);
        }
    }
    for nal in s.nals.iter().filter(|n| n[0] & 0x1F != 9) {
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(nal);
    }
    v
}

/// Splits an ADTS byte stream into (profile, sf index, channels, raw frame), reading
/// the header fields bit by bit.
fn adts_frames(mut data: &[u8]) -> Vec<(u8, u8, u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !data.is_empty() {
        assert!(data.len() >= 7);
        let bits: u64 = data[..7].iter().fold(0, |a, &b| (a << 8) | u64::from(b));
        let field =
            |from: u32, width: u32| ((bits >> (56 - from - width)) & ((1 << width) - 1)) as usize;
        assert_eq!(field(0, 12), 0xFFF);
        assert_eq!(field(15, 1), 1, "protection_absent");
        let len = field(30, 13);
        frames.push((
            field(16, 2) as u8,
            field(18, 4) as u8,
            field(23, 3) as u8,
            data[7..len].to_vec(),
        ));
        data = &data[len..];
    }
    frames
}

#[test]
fn h264_aac_segments_parse_and_match_input() {
    let video = video_samples(95, 30, 1);
    let audio = audio_samples(150, 2);
    let (vcodec, acodec) = (h264_codec(), aac_codec());
    let bounds = [0, 30, 60, 90, 95];

    let mut ts = Vec::new();
    let mut params = MuxParams {
        pts_offset_90k: OFFSET,
        continuity: ContinuityState::default(),
        align_continuity: false,
        sample_aes: None,
    };
    let mut from_counts = ContinuityState::default();
    let mut segment_starts = Vec::new();
    let mut audio_taken = 0;
    for w in bounds.windows(2) {
        let v = &video[w[0]..w[1]];
        // Audio frames whose time falls before the next segment's first video frame.
        let end = if w[1] == video.len() {
            audio.len()
        } else {
            audio
                .iter()
                .position(|a| a.dts * 30_000 >= video[w[1]].dts * 48_000)
                .unwrap()
        };
        let a = &audio[audio_taken..end];
        audio_taken = end;
        let (vs, as_) = (samples(v), samples(a));
        // Audio listed first: the muxer orders PIDs itself.
        let streams = [stream(&acodec, 48_000, &as_), stream(&vcodec, 30_000, &vs)];
        let counts = count_packets(&streams, &params).unwrap();
        assert_eq!(counts.pat + counts.pmt, 2);
        let before = ts.len();
        segment_starts.push(before);
        mux_segment(&streams, &mut params, &mut ts).unwrap();
        assert_eq!((ts.len() - before) as u64, counts.bytes());
        assert_eq!(estimate_size(&streams, &params).unwrap(), ts.len() - before);
        from_counts.advance(&counts);
        assert_eq!(
            params.continuity, from_counts,
            "counters predicted from counts"
        );
    }
    assert_eq!(audio_taken, audio.len());

    // Each segment opens with PAT, PMT.
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
    for &s in &segment_starts {
        assert_eq!(pid(&ts[s..]), 0);
        assert_eq!(pid(&ts[s + 188..]), PMT_PID);
    }

    let pass = packet_pass(&ts);
    assert_eq!(pass.pats, 4);
    assert_eq!(pass.pmts.len(), 4);
    for pmt in &pass.pmts {
        assert_eq!(
            pmt,
            &(
                Some(VIDEO_PID),
                vec![
                    (StreamType::H264, VIDEO_PID),
                    (StreamType::AdtsAac, AUDIO_PID)
                ]
            )
        );
    }

    let (vpes, apes) = pes_pass(&ts);
    assert_eq!(vpes.len(), video.len(), "one PES per access unit");
    let video_starts: Vec<_> = pass.starts.iter().filter(|s| s.0 == VIDEO_PID).collect();
    for ((p, s), start) in vpes.iter().zip(&video).zip(&video_starts) {
        assert_eq!(p.data, expected_h264_au(s));
        let pts = s.pts as u64 * 3 + OFFSET;
        let dts = s.dts as u64 * 3 + OFFSET;
        assert_eq!(times(p), (pts, (pts != dts).then_some(dts)));
        assert!(p.header.data_alignment_indicator);
        assert_eq!(start.1, Some((dts - 9_000) * 300), "PCR = DTS - 100 ms");
        assert_eq!(start.2, s.keyframe, "random_access_indicator");
    }

    // Audio: the PES payloads concatenate to the ADTS stream; each PES starts at a frame
    // and carries that frame's PTS; grouping stays within 60 ms (3 frames at 48 kHz).
    let mut frame = 0;
    for p in &apes {
        assert_eq!(times(p), (frame as u64 * 1920 + OFFSET, None));
        let frames = adts_frames(&p.data);
        assert!(
            (1..=3).contains(&frames.len()),
            "{} frames in a PES",
            frames.len()
        );
        for (profile, sf, ch, raw) in frames {
            assert_eq!((profile, sf, ch), (1, 3, 2));
            assert_eq!(raw, audio[frame].data);
            frame += 1;
        }
    }
    assert_eq!(frame, audio.len());
    for start in pass.starts.iter().filter(|s| s.0 == AUDIO_PID) {
        assert_eq!(
            (start.1, start.2),
            (None, true),
            "audio: no PCR, RAI on sync frames"
        );
    }

    // PES are interleaved in DTS order.
    let mut order: Vec<(u64, u8)> = Vec::new();
    let mut reader = PesPacketReader::new(TsPacketReader::new(&ts[..]));
    while let Some(p) = reader.read_pes_packet().unwrap() {
        let (pts, dts) = times(&p);
        order.push((dts.unwrap_or(pts), p.header.stream_id.as_u8()));
    }
    // The reader returns unbounded video PES late; compare starts in file order instead.
    let mut dts_in_file_order = Vec::new();
    let (mut vi, mut ai) = (0, 0);
    for s in &pass.starts {
        if s.0 == VIDEO_PID {
            dts_in_file_order.push(video[vi].dts as u64 * 3);
            vi += 1;
        } else {
            let (pts, _) = times(&apes[ai]);
            dts_in_file_order.push(pts - OFFSET);
            ai += 1;
        }
    }
    assert!(
        dts_in_file_order.windows(2).all(|w| w[0] <= w[1]),
        "DTS order"
    );
    assert_eq!(order.len(), vpes.len() + apes.len());
}

#[test]
fn audio_only_carries_pcr_and_rounds_44100() {
    let audio = audio_samples(100, 7);
    let codec = Codec::Aac {
        audio_specific_config: Bytes::from_static(&[0x12, 0x10]),
    };
    let s = samples(&audio);
    let streams = [stream(&codec, 44_100, &s)];
    let mut params = MuxParams {
        pts_offset_90k: OFFSET,
        continuity: ContinuityState {
            pat: 15,
            pmt: 7,
            video: 0,
            audio: 9,
        },
        align_continuity: false,
        sample_aes: None,
    };
    let mut ts = Vec::new();
    mux_segment(&streams, &mut params, &mut ts).unwrap();

    let pass = packet_pass(&ts);
    assert_eq!(
        pass.pmts,
        vec![(Some(AUDIO_PID), vec![(StreamType::AdtsAac, AUDIO_PID)])]
    );
    // Counters started where asked.
    assert_eq!(ts[3] & 0x0F, 15);
    assert_eq!(ts[188 + 3] & 0x0F, 7);
    assert_eq!(ts[376 + 3] & 0x0F, 9);
    assert_eq!((params.continuity.pat, params.continuity.pmt), (0, 8));

    let (vpes, apes) = pes_pass(&ts);
    assert!(vpes.is_empty());
    let mut frame = 0;
    for (p, start) in apes.iter().zip(&pass.starts) {
        // Rounded to nearest, computed in floating point here.
        let pts = (frame as f64 * 1024.0 * 90_000.0 / 44_100.0).round() as u64 + OFFSET;
        assert_eq!(times(p), (pts, None));
        assert_eq!(start.1, Some((pts - 9_000) * 300), "PCR on the audio PID");
        for (profile, sf, ch, raw) in adts_frames(&p.data) {
            assert_eq!((profile, sf, ch), (1, 4, 2));
            assert_eq!(raw, audio[frame].data);
            frame += 1;
        }
    }
    assert_eq!(frame, audio.len());
}

#[test]
fn hevc_video_only() {
    let vps = Bytes::from_static(&[0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF]);
    let sps = Bytes::from_static(&[0x42, 0x01, 0x01, 0x01, 0x60, 0x00]);
    let pps = Bytes::from_static(&[0x44, 0x01, 0xC1, 0x72, 0xB4]);
    let codec = Codec::Hevc {
        vps: vec![vps.clone()],
        sps: vec![sps.clone()],
        pps: vec![pps.clone()],
        nal_length_size: 4,
    };
    let mut rng = Lcg(3);
    let owned: Vec<Owned> = (0..40)
        .map(|i| {
            let keyframe = i % 20 == 0;
            let len = 3 + rng.below(5000) as usize;
            let mut nal = rng.bytes(len);
            // IDR_W_RADL (19) or TRAIL_R (1), temporal id 0.
            nal[0] = if keyframe { 19 << 1 } else { 1 << 1 };
            nal[1] = 0x01;
            let mut data = (nal.len() as u32).to_be_bytes().to_vec();
            data.extend_from_slice(&nal);
            Owned {
                dts: i * 3000,
                pts: i * 3000 + 6000,
                keyframe,
                data,
                nals: vec![nal],
            }
        })
        .collect();
    let s = samples(&owned);
    let streams = [stream(&codec, 90_000, &s)];
    let mut params = MuxParams {
        pts_offset_90k: OFFSET,
        ..Default::default()
    };
    let mut ts = Vec::new();
    mux_segment(&streams, &mut params, &mut ts).unwrap();

    let pass = packet_pass(&ts);
    assert_eq!(
        pass.pmts,
        vec![(Some(VIDEO_PID), vec![(StreamType::H265, VIDEO_PID)])]
    );
    let (vpes, _) = pes_pass(&ts);
    assert_eq!(vpes.len(), owned.len());
    for (p, o) in vpes.iter().zip(&owned) {
        let mut au = vec![0, 0, 0, 1, 0x46, 0x01, 0x50];
        if o.keyframe {
            for ps in [&vps, &sps, &pps] {
                au.extend_from_slice(&[0, 0, 0, 1]);
                au.extend_from_slice(ps);
            }
        }
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(&o.nals[0]);
        assert_eq!(p.data, au);
        assert_eq!(
            times(p),
            (o.pts as u64 + OFFSET, Some(o.dts as u64 + OFFSET))
        );
    }
}
