//! Entry point of the `ts_mux` fuzz target (`fuzz/`), kept in the library so that the
//! replay test (`tests/fuzz_replay.rs`) runs the same code on stable.
//!
//! The input is read as a segment's sample tables ([`segment_from_bytes`]): which streams
//! exist, their codec settings and timescales, then sample records (stream, keyframe,
//! size, duration, composition offset) whose bytes come from the input too. Video samples
//! are usually framed as one length-prefixed NAL unit so the muxer gets past framing
//! checks; a record flag leaves the bytes unframed to reach those checks as well.

use bytes::Bytes;

use crate::{
    count_packets, estimate_size, mux_segment, Codec, ContinuityState, MuxParams, Pieces, Sample,
    SampleAes, Stream,
};

/// Most samples read from one input, so one input stays fast.
const MAX_SAMPLES: usize = 512;

/// Byte reader that yields zeros past the end, so every input decodes to some segment.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }
}

/// One sample decoded from fuzz input, owning its bytes.
#[derive(Debug, Clone)]
pub struct FuzzSample {
    /// Decode time.
    pub dts: i64,
    /// Presentation time.
    pub pts: i64,
    /// Sync sample.
    pub keyframe: bool,
    /// Sample bytes.
    pub data: Vec<u8>,
}

/// A segment decoded from fuzz input: codecs, timescales, sample bytes and times.
#[derive(Debug)]
pub struct FuzzSegment {
    /// Codec of each stream.
    pub codecs: Vec<Codec>,
    /// Timescale of each stream.
    pub timescales: Vec<u32>,
    /// Samples of each stream, in decode order.
    pub samples: Vec<Vec<FuzzSample>>,
    /// Mux parameters to use.
    pub params: MuxParams,
}

impl FuzzSegment {
    /// The samples of stream `i` as the muxer takes them.
    pub fn sample_table(&self, i: usize) -> Vec<Sample<'_>> {
        self.samples[i]
            .iter()
            .map(|s| Sample {
                dts: s.dts,
                pts: s.pts,
                keyframe: s.keyframe,
                data: &s.data,
            })
            .collect()
    }
}

/// Reads `data` as a segment:
///
/// * byte 0: bits 0-1 video (0 none, 1 and 3 H.264, 2 HEVC), bit 2 audio, bits 3-4 NAL
///   length size (1, 2, 4, 3), bit 5 `align_continuity`, bit 6 SAMPLE-AES, bit 7 no PTS
///   offset (so negative times are reachable);
/// * byte 1: video timescale (low 2 bits: 90000, 30000, 1, `u32::MAX`) and audio
///   timescale (bits 2-3: 48000, 44100, 8000, 1); bytes 2-3: the AudioSpecificConfig;
/// * then records: flags (bit 0 audio, bit 1 keyframe, bit 2 unframed), u16 size, i8
///   duration, i8 composition offset, then `size` bytes of sample data.
pub fn segment_from_bytes(data: &[u8]) -> FuzzSegment {
    let mut r = Input { data, pos: 0 };
    let cfg = r.u8();
    let scales = r.u8();
    let asc = [r.u8(), r.u8()];
    let nls = [1u8, 2, 4, 3][usize::from((cfg >> 3) & 3)];
    let mut codecs = Vec::new();
    let mut timescales = Vec::new();
    let sps = vec![Bytes::from_static(&[
        0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50,
    ])];
    let pps = vec![Bytes::from_static(&[0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0])];
    let video = match cfg & 3 {
        0 => None,
        2 => Some(Codec::Hevc {
            vps: vec![Bytes::from_static(&[0x40, 0x01, 0x0C])],
            sps: vec![Bytes::from_static(&[0x42, 0x01, 0x01])],
            pps: vec![Bytes::from_static(&[0x44, 0x01, 0xC1])],
            nal_length_size: nls,
        }),
        _ => Some(Codec::H264 {
            sps,
            pps,
            nal_length_size: nls,
        }),
    };
    if let Some(v) = video {
        codecs.push(v);
        timescales.push([90_000, 30_000, 1, u32::MAX][usize::from(scales & 3)]);
    }
    if cfg & 4 != 0 {
        codecs.push(Codec::Aac {
            audio_specific_config: Bytes::copy_from_slice(&asc),
        });
        timescales.push([48_000, 44_100, 8_000, 1][usize::from((scales >> 2) & 3)]);
    }
    let mut samples: Vec<Vec<FuzzSample>> = vec![Vec::new(); codecs.len()];
    let mut next_dts = vec![0i64; codecs.len()];
    let mut n = 0;
    while !r.done() && n < MAX_SAMPLES && !codecs.is_empty() {
        n += 1;
        let flags = r.u8();
        let size = usize::from(r.u16());
        let duration = i64::from(r.u8() as i8);
        let cto = i64::from(r.u8() as i8);
        let bytes = r.take(size);
        // A record for a stream the segment lacks goes to the one it has.
        let s = if flags & 1 != 0 { codecs.len() - 1 } else { 0 };
        let mut body = Vec::with_capacity(bytes.len() + 4);
        if codecs[s].is_video() && flags & 4 == 0 {
            // One NAL unit behind a length prefix of the stream's size, if the length fits.
            let len = bytes.len() as u64;
            let width = usize::from(nls);
            if len >> (8 * width) != 0 {
                body.extend_from_slice(bytes);
            } else {
                body.extend_from_slice(&len.to_be_bytes()[8 - width..]);
                body.extend_from_slice(bytes);
            }
        } else {
            body.extend_from_slice(bytes);
        }
        let dts = next_dts[s];
        next_dts[s] = dts.saturating_add(duration);
        samples[s].push(FuzzSample {
            dts,
            pts: dts.saturating_add(cto),
            keyframe: flags & 2 != 0,
            data: body,
        });
    }
    let params = MuxParams {
        pts_offset_90k: if cfg & 0x80 != 0 { 0 } else { 900_000 },
        continuity: ContinuityState {
            pat: scales >> 4,
            pmt: scales >> 4,
            video: asc[0] & 15,
            audio: asc[1] & 15,
        },
        align_continuity: cfg & 0x20 != 0,
        sample_aes: (cfg & 0x40 != 0).then_some(SampleAes {
            key: [0x3c; 16],
            iv: [0x5a; 16],
        }),
    };
    FuzzSegment {
        codecs,
        timescales,
        samples,
        params,
    }
}

/// Muxes the segment `data` decodes to. Asserts that [`count_packets`], [`estimate_size`]
/// and [`mux_segment`] agree (all fail, or the output has exactly the counted packets and
/// the estimated size, whole 188-byte packets with sync bytes, and the continuity counters
/// moved by the counts), and that a failed mux leaves `out` and the parameters untouched.
/// Returns the segment and its number of video samples when muxing succeeded, for a check
/// by an independent demuxer.
pub fn fuzz_mux(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let seg = segment_from_bytes(data);
    let tables: Vec<Vec<Sample<'_>>> = (0..seg.codecs.len()).map(|i| seg.sample_table(i)).collect();
    let streams: Vec<Stream<'_>> = seg
        .codecs
        .iter()
        .zip(&seg.timescales)
        .zip(&tables)
        .map(|((codec, &timescale), samples)| Stream {
            codec,
            timescale,
            samples,
        })
        .collect();
    let counts = count_packets(&streams, &seg.params);
    let size = estimate_size(&streams, &seg.params);
    let mut params = seg.params.clone();
    let mut out = b"kept".to_vec();
    let muxed = mux_segment(&streams, &mut params, &mut out);
    match (counts, size, muxed) {
        (Ok(counts), Ok(size), Ok(())) => {
            let ts = out.split_off(4);
            assert_eq!(out, b"kept", "mux_segment changed bytes before its output");
            assert_eq!(ts.len(), size, "estimate_size disagrees with mux_segment");
            assert_eq!(
                ts.len() as u64,
                counts.bytes(),
                "count_packets disagrees with mux_segment"
            );
            assert!(
                ts.chunks(188).all(|p| p.len() == 188 && p[0] == 0x47),
                "not whole TS packets"
            );
            let mut want = seg.params.continuity;
            want.advance(&counts);
            assert_eq!(
                params.continuity, want,
                "continuity counters not advanced by the counts"
            );
            // Clear segments made in pieces come out the same, whatever the piece size. A
            // harness: a panic here is the finding.
            if seg.params.sample_aes.is_none() {
                let mut pieces = Pieces::new(&streams, &seg.params).expect("Pieces refused what mux_segment took");
                let (mut made, at_least) = (Vec::new(), 1 + data.len() % 4000);
                while !pieces.write(&streams, &mut made, at_least).expect("a piece failed after the plan") {}
                assert!(made == ts, "pieces differ from the segment muxed whole");
                assert_eq!(pieces.continuity(), params.continuity, "pieces end on other counters");
            }
            let video = seg
                .codecs
                .iter()
                .zip(&tables)
                .filter(|(c, _)| c.is_video())
                .map(|(_, t)| t.len())
                .sum();
            Some((ts, video))
        }
        (Err(a), Err(b), Err(c)) => {
            assert_eq!(out, b"kept", "a failed mux wrote output");
            assert_eq!(
                params.continuity, seg.params.continuity,
                "a failed mux moved the counters"
            );
            if seg.params.sample_aes.is_none() {
                assert!(Pieces::new(&streams, &seg.params).is_err(), "Pieces took what mux_segment refused");
            }
            // Counting and writing validate the same way, so they refuse for the same reason.
            assert_eq!(a.to_string(), c.to_string());
            assert_eq!(b.to_string(), c.to_string());
            None
        }
        (a, b, c) => panic!(
            "count_packets {:?}, estimate_size {:?} and mux_segment {:?} disagree",
            a.err(),
            b.err(),
            c.err()
        ),
    }
}
