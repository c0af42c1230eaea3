//! Segment muxing: stream setup, DTS-ordered interleaving, PES grouping, and the two
//! consumers of that schedule (packet counting and packet writing).
//!
//! The parts, in the order a segment goes through them: [`setup`] checks and resolves the
//! streams; [`hooks`] is where SAMPLE-AES transforms payloads; [`schedule`] walks the
//! samples in DTS order; [`continuity`] counts packets and plans the padding that aligns
//! continuity counters; [`writer`] writes the packets.

use crate::sample_aes::SampleAesHook;
use crate::{Error, MuxParams, PacketCounts, Stream, TS_PACKET_SIZE};

mod continuity;
mod hooks;
mod schedule;
mod setup;
mod writer;

use continuity::{Counter, Padding, PidCount};
use hooks::Transformed;
pub(crate) use hooks::{Clear, EsHook};
use schedule::{schedule, Position};
use setup::Setup;
use writer::{PidCursor, Writer};

/// Muxes one HLS segment and appends it to `out`.
///
/// `streams` holds at most one video (H.264 or HEVC) and one audio (AAC) stream, in any
/// order; a stream may have no samples in this segment. The output starts with a PAT
/// and a PMT, then the PES packets of all streams in DTS order. On success
/// `params.continuity` is advanced past the written packets; on error `out` and `params`
/// are left as they were.
///
/// All input is validated before anything is written; see [`Error`] for what is
/// rejected. Every other outcome is deterministic in the inputs.
pub fn mux_segment(
    streams: &[Stream<'_>],
    params: &mut MuxParams,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    match &params.sample_aes {
        None => mux_with_hook(streams, params, out, &mut Clear),
        Some(k) => mux_with_hook(streams, params, out, &mut SampleAesHook::new(k)?),
    }
}

/// Number of TS packets per PID that [`mux_segment`] writes for these streams with
/// these `params`, without writing them. Validates the input exactly as [`mux_segment`]
/// does. Of `params`, `pts_offset_90k` only matters for rejecting negative times (the
/// counts do not depend on it), `align_continuity` adds the alignment packets (video and
/// audio counts are then multiples of 16), and `continuity` is ignored.
///
/// Use it to carry continuity counters across HLS segments: the counters at the start
/// of segment N are those of segment 0 advanced ([`crate::ContinuityState::advance`])
/// by the counts of segments 0..N-1. The PAT and PMT always take one packet each.
///
/// With [`MuxParams::sample_aes`] the count depends on the ciphertext (emulation
/// prevention after encryption changes the size of H.264 slices), so this encrypts the
/// segment just as [`mux_segment`] does and costs about as much.
pub fn count_packets(streams: &[Stream<'_>], params: &MuxParams) -> Result<PacketCounts, Error> {
    let setup = Setup::new(streams)?;
    let plan = match &params.sample_aes {
        None => make_plan(&setup, params, &mut Clear)?,
        Some(k) => make_plan(&setup, params, &mut SampleAesHook::new(k)?)?,
    };
    Ok(PacketCounts {
        pat: 1,
        pmt: 1,
        video: plan.video.packets,
        audio: plan.audio.packets,
    })
}

/// Exact size in bytes of what [`mux_segment`] writes for these streams with these
/// `params` (see [`count_packets`] for which fields matter).
pub fn estimate_size(streams: &[Stream<'_>], params: &MuxParams) -> Result<usize, Error> {
    let bytes = count_packets(streams, params)?.bytes();
    usize::try_from(bytes).map_err(|_| Error::Internal("segment size exceeds usize"))
}

/// Everything decided before the first byte is written.
struct Plan {
    video: Padding,
    audio: Padding,
    /// PES payloads of a transforming hook, in schedule order (empty for the clear hook).
    es: Transformed,
}

/// Counts (and, for a transforming hook, transforms) the segment and places the
/// continuity padding.
fn make_plan<H: EsHook>(
    setup: &Setup<'_>,
    params: &MuxParams,
    hook: &mut H,
) -> Result<Plan, Error> {
    let tracks = [
        setup.video.as_ref().map(|v| (v.index, v.codec)),
        setup.audio.as_ref().map(|a| (a.index, a.codec)),
    ];
    for (stream, codec) in tracks.into_iter().flatten() {
        hook.accepts(codec)
            .map_err(|what| Error::SampleAesUnsupported { stream, what })?;
    }
    let mut counter = Counter {
        video: PidCount::default(),
        audio: PidCount::default(),
        hook,
        es: Transformed::default(),
    };
    schedule(setup, params.pts_offset_90k, &mut counter)?;
    counter.hook.finish(&mut counter.es.bytes)?;
    Ok(Plan {
        video: counter.video.plan(params)?,
        audio: counter.audio.plan(params)?,
        es: counter.es,
    })
}

/// [`mux_segment`] with a payload hook.
pub(crate) fn mux_with_hook<H: EsHook>(
    streams: &[Stream<'_>],
    params: &mut MuxParams,
    out: &mut Vec<u8>,
    hook: &mut H,
) -> Result<(), Error> {
    let setup = Setup::new(streams)?;
    // The counting pass validates everything, so the writing pass below cannot fail on
    // input and `out` is never left half-written. It also sizes the output exactly (a
    // transforming hook runs there, once, and its output is kept), so the buffer grows
    // once. The padding for continuity alignment is decided here too, on those sizes.
    let plan = make_plan(&setup, params, hook)?;
    let planned = (2 + plan.video.packets + plan.audio.packets) as usize * TS_PACKET_SIZE;
    out.reserve(planned);

    let start = out.len();
    let mut writer = Writer {
        out,
        cc: params.continuity,
        hook,
        es: &plan.es,
        es_next: 0,
        streams: &setup,
        video: PidCursor {
            pes: 0,
            plan: plan.video,
        },
        audio: PidCursor {
            pes: 0,
            plan: plan.audio,
        },
    };
    let result = writer
        .write_psi()
        .and_then(|()| schedule(&setup, params.pts_offset_90k, &mut writer));
    let continuity = writer.cc;
    let written = out.len() - start;
    let start_cc = params.continuity;
    let result = result.and_then(|()| check_end(written, planned, params.align_continuity, start_cc, continuity));
    if result.is_ok() {
        params.continuity = continuity;
    } else {
        out.truncate(start);
    }
    result
}

/// The checks on a finished segment: it has the counted size and, aligned, every PID's counter
/// is back where it started (a multiple of 16 packets per PID).
fn check_end(written: usize, planned: usize, align: bool, start: crate::ContinuityState, end: crate::ContinuityState) -> Result<(), Error> {
    if written != planned {
        return Err(Error::Internal("written size differs from count"));
    }
    if align && (end.video & 0x0F != start.video & 0x0F || end.audio & 0x0F != start.audio & 0x0F) {
        return Err(Error::Internal("continuity alignment missed"));
    }
    Ok(())
}

/// A clear segment written a piece at a time, so that a server can send the first pieces while
/// it muxes the rest (what that saves: `TS_PIECE` in the package crate, `benches/README.md`).
///
/// [`Pieces::new`] runs the counting pass of [`mux_segment`] (everything validated, the size
/// known); each [`Pieces::write`] then appends whole PES until at least the asked-for bytes are
/// written. Every call must be given the same `streams` as [`Pieces::new`]; the bytes written
/// in all are those [`mux_segment`] writes with the same `params`. Holds no borrow of the
/// streams between calls.
#[derive(Clone, Copy)]
pub struct Pieces {
    at: Position,
    cc: crate::ContinuityState,
    start_cc: crate::ContinuityState,
    video: PidCursor,
    audio: PidCursor,
    pts_offset_90k: u64,
    align_continuity: bool,
    psi_written: bool,
    planned: usize,
    written: usize,
}

impl Pieces {
    /// Plans the segment of `streams`. SAMPLE-AES (`params.sample_aes`) is refused: its
    /// payloads are transformed in the counting pass and written whole by [`mux_segment`].
    pub fn new(streams: &[Stream<'_>], params: &MuxParams) -> Result<Self, Error> {
        if params.sample_aes.is_some() {
            return Err(Error::Internal("SAMPLE-AES segments are muxed whole"));
        }
        let setup = Setup::new(streams)?;
        let plan = make_plan(&setup, params, &mut Clear)?;
        Ok(Pieces {
            at: Position::default(),
            cc: params.continuity,
            start_cc: params.continuity,
            video: PidCursor { pes: 0, plan: plan.video },
            audio: PidCursor { pes: 0, plan: plan.audio },
            pts_offset_90k: params.pts_offset_90k,
            align_continuity: params.align_continuity,
            psi_written: false,
            planned: (2 + plan.video.packets + plan.audio.packets) as usize * TS_PACKET_SIZE,
            written: 0,
        })
    }

    /// Bytes of the whole segment.
    pub fn len(&self) -> usize {
        self.planned
    }

    /// Whether every byte is written.
    pub fn is_empty(&self) -> bool {
        self.written == self.planned
    }

    /// Bytes not yet written.
    pub fn remaining(&self) -> usize {
        self.planned - self.written
    }

    /// Appends the next PES of `streams` to `out` (at least one, and more until at least
    /// `at_least` bytes were added) or what ends the segment; returns whether it is complete. At the end, the continuity counters
    /// are where the next segment starts (the `params.continuity` [`mux_segment`] leaves).
    pub fn write(&mut self, streams: &[Stream<'_>], out: &mut Vec<u8>, at_least: usize) -> Result<bool, Error> {
        let setup = Setup::new(streams)?;
        let start = out.len();
        let es = Transformed::default();
        let mut clear = Clear;
        let mut writer = Writer {
            out,
            cc: self.cc,
            hook: &mut clear,
            es: &es,
            es_next: 0,
            streams: &setup,
            video: self.video,
            audio: self.audio,
        };
        if !self.psi_written {
            writer.write_psi()?;
        }
        // At least one PES a call, so every call makes progress.
        let done = loop {
            if !self.at.step(&setup, self.pts_offset_90k, &mut writer)? {
                break true;
            }
            if writer.out.len() - start >= at_least {
                break false;
            }
        };
        (self.cc, self.video, self.audio) = (writer.cc, writer.video, writer.audio);
        self.psi_written = true;
        self.written += out.len() - start;
        if self.written > self.planned {
            return Err(Error::Internal("written size differs from count"));
        }
        if done {
            check_end(self.written, self.planned, self.align_continuity, self.start_cc, self.cc)?;
        }
        Ok(done)
    }

    /// The continuity counters after what is written so far.
    pub fn continuity(&self) -> crate::ContinuityState {
        self.cc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::FirstPacket;
    use crate::{Codec, Sample};
    use bytes::Bytes;
    use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};
    use writer::VIDEO_STREAM_ID;

    /// Copies like `Clear` but through the scratch path.
    struct ScratchCopy;
    impl EsHook for ScratchCopy {
        const IDENTITY: bool = false;
        fn video_nal(&mut self, nal: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
            out.extend_from_slice(nal);
            Ok(())
        }
        fn audio_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
            out.extend_from_slice(frame);
            Ok(())
        }
        fn pmt_entry(&self, _: &Codec, clear: u8, _: &mut Vec<u8>) -> u8 {
            clear
        }
    }

    /// Stands in for SAMPLE-AES: changes sizes and signals its own stream types.
    struct Grow;
    impl EsHook for Grow {
        const IDENTITY: bool = false;
        fn video_nal(&mut self, nal: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
            out.extend_from_slice(nal);
            if matches!(nal[0] & 0x1F, 1 | 5) {
                out.extend_from_slice(&[0xEE, 0xEE]);
            }
            Ok(())
        }
        fn audio_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
            out.extend(frame.iter().map(|b| b ^ 0xFF));
            Ok(())
        }
        fn pmt_entry(&self, codec: &Codec, _: u8, d: &mut Vec<u8>) -> u8 {
            if codec.is_video() {
                d.extend_from_slice(&[0x0F, 4, b'z', b'a', b'v', b'c']);
                0xDB
            } else {
                d.extend_from_slice(&[0x0F, 4, b'a', b'a', b'c', b'd']);
                0xCF
            }
        }
    }

    fn fixture() -> (Codec, Codec, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let v = Codec::H264 {
            sps: vec![Bytes::from_static(&[0x67, 0x42, 0x00, 0x1E])],
            pps: vec![Bytes::from_static(&[0x68, 0xCE])],
            nal_length_size: 4,
        };
        let a = Codec::Aac {
            audio_specific_config: Bytes::from_static(&[0x11, 0x90]),
        };
        let video = (0..20usize)
            .map(|i| {
                let n = 1 + i * 97;
                let mut d = (n as u32 + 1).to_be_bytes().to_vec();
                d.push(if i % 10 == 0 { 0x65 } else { 0x41 });
                d.extend((0..n).map(|j| (i + j) as u8));
                d
            })
            .collect();
        let audio = (0..30usize).map(|i| vec![i as u8; 10 + i * 13]).collect();
        (v, a, video, audio)
    }

    /// The fixture muxed with `hook`, after three bytes already in the output.
    fn run<H: EsHook>(hook: &mut H) -> Vec<u8> {
        let (v, a, video, audio) = fixture();
        let vs: Vec<Sample<'_>> = video
            .iter()
            .enumerate()
            .map(|(i, d)| Sample {
                dts: i as i64 * 3000,
                pts: i as i64 * 3000,
                keyframe: i % 10 == 0,
                data: d,
            })
            .collect();
        let as_: Vec<Sample<'_>> = audio
            .iter()
            .enumerate()
            .map(|(i, d)| Sample {
                dts: i as i64 * 1024,
                pts: i as i64 * 1024,
                keyframe: true,
                data: d,
            })
            .collect();
        let streams = [
            Stream {
                codec: &v,
                timescale: 90_000,
                samples: &vs,
            },
            Stream {
                codec: &a,
                timescale: 48_000,
                samples: &as_,
            },
        ];
        let mut params = MuxParams {
            pts_offset_90k: 10_000,
            ..Default::default()
        };
        let mut out = vec![0xAB; 3];
        mux_with_hook(&streams, &mut params, &mut out, hook).unwrap();
        assert_eq!(out.drain(..3).collect::<Vec<_>>(), [0xAB; 3], "bytes before the segment untouched");
        out
    }

    const NO_AF: FirstPacket = FirstPacket {
        pcr_base: None,
        random_access: false,
    };

    fn aligned(on: bool) -> MuxParams {
        MuxParams {
            align_continuity: on,
            ..Default::default()
        }
    }

    /// Extra packets of the last `n` PES, oldest first.
    fn tail(p: &Padding, n: u64) -> Vec<usize> {
        (p.pes - n..p.pes).map(|k| p.extra(k)).collect()
    }

    #[test]
    fn padding_plan() {
        // 14-byte headers; PES of 14 + es bytes, one packet each while es <= 170.
        let count = |es: &[usize]| {
            let mut c = PidCount::default();
            for &e in es {
                c.add(14, 14 + e, NO_AF);
            }
            c
        };
        // Off, or nothing on the PID: no padding.
        let c = count(&[100, 100]);
        assert_eq!(c.plan(&aligned(false)).unwrap().packets, 2);
        assert_eq!(tail(&c.plan(&aligned(false)).unwrap(), 2), [0, 0]);
        assert_eq!(count(&[]).plan(&aligned(true)).unwrap().packets, 0);
        // A big last PES takes all 14.
        let p = count(&[100, 100]).plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 2)), (16, vec![0, 14]));
        // Already a multiple of 16.
        let p = count(&[170; 16]).plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 16)), (16, vec![0; 16]));
        // Last PES with 8 bytes after its header takes 8, the one before the rest.
        let p = count(&[30, 8, 8]).plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 3)), (16, vec![0, 5, 8]));
        let p = count(&[9, 6, 6, 6]).plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 4)), (16, vec![0, 0, 6, 6]));
        let p = count(&[5, 6, 6, 6, 6]).plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 5)), (16, vec![0, 0, 0, 5, 6]));
        // Too little payload on the whole PID: the last PES takes all of it, header
        // spread over packets (22 bytes, so up to 21 extra packets).
        let p = count(&[8]).plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 1)), (16, vec![15]));
        let p = count(&[6, 6]).plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 2)), (16, vec![0, 14]));
        // Impossible only for a PES under 16 bytes, which the muxer never makes.
        let mut c = PidCount::default();
        c.add(14, 15, NO_AF);
        assert_eq!(
            c.plan(&aligned(true)).map(|p| p.packets),
            Err(Error::Internal("PES too short for continuity alignment"))
        );
        // Many PES: only the tail of the ring is padded; earlier PES numbers get 0.
        let mut es = vec![170; 36];
        es.extend([8, 8, 8]);
        let p = count(&es).plan(&aligned(true)).unwrap();
        assert_eq!(p.packets, 48);
        assert_eq!(tail(&p, 4), [0, 0, 1, 8][..]);
        assert_eq!((0..p.pes - 3).map(|k| p.extra(k)).sum::<usize>(), 0);
        assert_eq!(p.extra(p.pes), 0);
        // Multi-packet PES: 400 bytes with a PCR take 3 packets, room is capped at 15.
        let mut c = PidCount::default();
        let pcr = FirstPacket {
            pcr_base: Some(0),
            random_access: true,
        };
        c.add(19, 400, pcr);
        let p = c.plan(&aligned(true)).unwrap();
        assert_eq!((p.packets, tail(&p, 1)), (16, vec![13]));
    }

    #[test]
    fn pieces_make_the_whole_segment() {
        let (v, a, video, audio) = fixture();
        let vs: Vec<Sample<'_>> = video
            .iter()
            .enumerate()
            .map(|(i, d)| Sample { dts: i as i64 * 3000, pts: i as i64 * 3000 + 6000, keyframe: i % 10 == 0, data: d })
            .collect();
        let as_: Vec<Sample<'_>> = audio
            .iter()
            .enumerate()
            .map(|(i, d)| Sample { dts: i as i64 * 1024, pts: i as i64 * 1024, keyframe: true, data: d })
            .collect();
        let both = [
            Stream { codec: &v, timescale: 90_000, samples: &vs },
            Stream { codec: &a, timescale: 48_000, samples: &as_ },
        ];
        for streams in [&both[..], &both[..1], &both[1..]] {
            for align in [false, true] {
                let params = MuxParams {
                    pts_offset_90k: 10_000,
                    continuity: crate::ContinuityState { pat: 3, pmt: 3, video: 5, audio: 9 },
                    align_continuity: align,
                    ..Default::default()
                };
                let mut whole_params = params.clone();
                let mut whole = Vec::new();
                mux_segment(streams, &mut whole_params, &mut whole).unwrap();
                for at_least in [0, 1, 188, 1000, 4096, usize::MAX] {
                    let mut p = Pieces::new(streams, &params).unwrap();
                    assert_eq!(p.len(), whole.len());
                    let mut out = vec![0xAB; 2];
                    let mut calls = 0;
                    while !p.write(streams, &mut out, at_least).unwrap() {
                        calls += 1;
                        assert!(calls < 10_000, "no progress with at_least {at_least}");
                    }
                    assert!(p.is_empty());
                    assert_eq!(&out[..2], [0xAB; 2], "bytes before the segment untouched");
                    assert!(out[2..] == whole[..], "{} streams, align {align}, pieces of {at_least}", streams.len());
                    assert_eq!(p.continuity(), whole_params.continuity);
                    if at_least == 1000 && streams.len() == 2 {
                        assert!(calls > 5, "pieces stop after the PES that reaches the size");
                    }
                }
            }
        }
        // SAMPLE-AES is written whole.
        let params = MuxParams { sample_aes: Some(crate::SampleAes { key: [1; 16], iv: [2; 16] }), ..Default::default() };
        assert!(Pieces::new(&both, &params).is_err());
    }

    #[test]
    fn scratch_path_matches_zero_copy_path() {
        assert_eq!(run(&mut ScratchCopy), run(&mut Clear));
    }

    #[test]
    fn hook_changes_payload_and_pmt() {
        let out = run(&mut Grow);
        let clear = run(&mut Clear);
        let mut reader = TsPacketReader::new(&out[..]);
        let mut pmt = None;
        while let Some(p) = reader.read_ts_packet().unwrap() {
            if let Some(TsPayload::Pmt(t)) = p.payload {
                pmt = Some(t);
            }
        }
        let es = pmt.unwrap().es_info;
        assert_eq!(es[0].stream_type as u8, 0xDB);
        assert_eq!(
            (es[0].descriptors[0].tag, &es[0].descriptors[0].data[..]),
            (0x0F, &b"zavc"[..])
        );
        assert_eq!(es[1].stream_type as u8, 0xCF);
        assert_eq!(&es[1].descriptors[0].data[..], b"aacd");

        let pes = |ts: &[u8]| {
            let mut r = PesPacketReader::new(TsPacketReader::new(ts));
            let (mut v, mut a) = (Vec::new(), Vec::new());
            while let Some(p) = r.read_pes_packet().unwrap() {
                if p.header.stream_id.as_u8() == VIDEO_STREAM_ID {
                    v.push(p.data)
                } else {
                    a.push(p.data)
                }
            }
            (v, a)
        };
        let (gv, ga) = pes(&out);
        let (cv, ca) = pes(&clear);
        for (g, c) in gv.iter().zip(&cv) {
            // One slice per sample: two bytes longer, and ends with them.
            assert_eq!(g.len(), c.len() + 2);
            assert!(g.ends_with(&[0xEE, 0xEE]));
        }
        // Audio: same frame sizes, ADTS headers intact, bodies inverted.
        assert_eq!(ga.concat().len(), ca.concat().len());
        let (g, c) = (ga.concat(), ca.concat());
        let mut at = 0;
        while at < g.len() {
            assert_eq!(&g[at..at + 7], &c[at..at + 7]);
            let len = (usize::from(g[at + 3] & 3) << 11)
                | (usize::from(g[at + 4]) << 3)
                | usize::from(g[at + 5] >> 5);
            assert!(g[at + 7..at + len]
                .iter()
                .zip(&c[at + 7..at + len])
                .all(|(x, y)| x ^ y == 0xFF));
            at += len;
        }
    }
}
