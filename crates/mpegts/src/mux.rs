//! Segment muxing: stream setup, DTS-ordered interleaving, PES grouping, and the two
//! consumers of that schedule (packet counting and packet writing).

use std::ops::Range;

use crate::nal::{AuPlan, FramingError, VideoConfig, START_CODE};
use crate::packet::{pes_packet_count, FirstPacket, PesWriter};
use crate::pes::{pes_header, pes_header_len, rescale_to_90k, MASK_33, MAX_BOUNDED_PAYLOAD};
use crate::psi::{write_pat, write_pmt, PmtEntry};
use crate::sample_aes::SampleAesHook;
use crate::{
    Codec, Error, MuxParams, PacketCounts, Sample, Stream, AUDIO_PES_MAX_FRAMES,
    AUDIO_PES_SPAN_90K, AUDIO_PID, PCR_LEAD_90K, TS_PACKET_SIZE, VIDEO_PID,
};
use sealcast_codecs::adts::{AdtsConfig, ADTS_HEADER_LEN, MAX_RAW_FRAME};

const VIDEO_STREAM_ID: u8 = 0xE0;
const AUDIO_STREAM_ID: u8 = 0xC0;
const ADTS_STREAM_TYPE: u8 = 0x0F;

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

/// Where the elementary-stream payload of every NAL unit and AAC frame passes before
/// it is packetised: the seam for HLS SAMPLE-AES ([`SampleAesHook`]).
///
/// The clear implementation is the identity and lets the writer copy straight from the
/// samples. A transforming implementation appends the transformed unit to `out` (for
/// H.264 SAMPLE-AES: encrypted slice data with emulation prevention re-applied, so the
/// size changes) and reports its stream type (0xDB / 0xCF) and ES descriptors
/// (private_data_indicator, registration + audio_setup_information) for the PMT. Its
/// output is made once, in the counting pass (sizes depend on it), kept in a
/// [`Transformed`] buffer and packetised from there.
pub(crate) trait EsHook {
    /// `true` when the hook never changes a byte.
    const IDENTITY: bool;
    /// Whether the hook can handle this stream; `Err` says what it cannot handle.
    fn accepts(&self, _codec: &Codec) -> Result<(), &'static str> {
        Ok(())
    }
    /// Appends the bytes to packetise for one NAL unit of a sample (no start code).
    /// Parameter sets and AUDs the muxer inserts do not pass through here.
    fn video_nal(&mut self, nal: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    /// Appends the bytes to packetise for one raw AAC frame; the ADTS header is added
    /// in front of them afterwards, sized to what was appended.
    fn audio_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    /// PMT stream_type for a stream whose clear type is `clear`; may append ES
    /// descriptors to `descriptors`.
    fn pmt_entry(&self, codec: &Codec, clear: u8, descriptors: &mut Vec<u8>) -> u8;
}

/// No transformation: clear output.
pub(crate) struct Clear;

impl EsHook for Clear {
    const IDENTITY: bool = true;
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
    Ok(Plan {
        video: counter.video.plan(params)?,
        audio: counter.audio.plan(params)?,
        es: counter.es,
    })
}

/// PES payloads (without PES header) made by a transforming hook, back to back.
#[derive(Default)]
struct Transformed {
    bytes: Vec<u8>,
    /// End offset in `bytes` of each PES payload, in schedule order.
    ends: Vec<usize>,
}

impl Transformed {
    /// Builds the Annex-B access unit of `v.samples[sample]`; returns its length.
    fn video<H: EsHook>(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        hook: &mut H,
    ) -> Result<usize, Error> {
        let s = v
            .samples
            .get(sample)
            .ok_or(Error::Internal("video index"))?;
        let cfg = &v.config;
        let start = self.bytes.len();
        let (aud, aud_len) = cfg.aud(plan);
        self.bytes.extend_from_slice(&aud[..aud_len]);
        if plan.insert_param_sets {
            for ps in cfg.param_sets() {
                self.bytes.extend_from_slice(&START_CODE);
                self.bytes.extend_from_slice(ps);
            }
        }
        for nal in cfg.nals(s.data) {
            // schedule() validated the framing with plan() just before.
            let nal = nal.map_err(|_| Error::Internal("NAL framing changed between passes"))?;
            self.bytes.extend_from_slice(&START_CODE);
            hook.video_nal(nal, &mut self.bytes)?;
        }
        self.ends.push(self.bytes.len());
        Ok(self.bytes.len() - start)
    }

    /// Builds the ADTS payload of one audio PES; returns its length.
    fn audio<H: EsHook>(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        hook: &mut H,
    ) -> Result<usize, Error> {
        let start = self.bytes.len();
        let samples = a
            .samples
            .get(frames.clone())
            .ok_or(Error::Internal("audio index"))?;
        for (i, s) in samples.iter().enumerate() {
            let at = self.bytes.len();
            self.bytes.extend_from_slice(&[0; ADTS_HEADER_LEN]);
            hook.audio_frame(s.data, &mut self.bytes)?;
            let raw = self.bytes.len() - at - ADTS_HEADER_LEN;
            let h = a.adts.header(raw).ok_or(Error::AacFrameTooLarge {
                stream: a.index,
                sample: frames.start + i,
                len: raw,
            })?;
            self.bytes[at..at + ADTS_HEADER_LEN].copy_from_slice(&h);
        }
        let len = self.bytes.len() - start;
        if len > MAX_BOUNDED_PAYLOAD {
            return Err(Error::AacFrameTooLarge {
                stream: a.index,
                sample: frames.start,
                len,
            });
        }
        self.ends.push(self.bytes.len());
        Ok(len)
    }

    /// PES payload number `k`.
    fn get(&self, k: usize) -> Result<&[u8], Error> {
        let end = *self
            .ends
            .get(k)
            .ok_or(Error::Internal("more PES written than counted"))?;
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        Ok(&self.bytes[start..end])
    }
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
    let result = match result {
        Ok(()) if written != planned => Err(Error::Internal("written size differs from count")),
        // A multiple of 16 packets per PID leaves each counter where it started.
        Ok(())
            if params.align_continuity
                && (continuity.video & 0x0F != start_cc.video & 0x0F
                    || continuity.audio & 0x0F != start_cc.audio & 0x0F) =>
        {
            Err(Error::Internal("continuity alignment missed"))
        }
        other => other,
    };
    if result.is_ok() {
        params.continuity = continuity;
    } else {
        out.truncate(start);
    }
    result
}

struct VideoTrack<'a> {
    index: usize,
    timescale: u32,
    samples: &'a [Sample<'a>],
    codec: &'a Codec,
    config: VideoConfig<'a>,
}

struct AudioTrack<'a> {
    index: usize,
    timescale: u32,
    samples: &'a [Sample<'a>],
    codec: &'a Codec,
    adts: AdtsConfig,
}

/// The segment's streams, checked and resolved.
struct Setup<'a> {
    video: Option<VideoTrack<'a>>,
    audio: Option<AudioTrack<'a>>,
}

impl<'a> Setup<'a> {
    fn new(streams: &'a [Stream<'a>]) -> Result<Self, Error> {
        if streams.is_empty() {
            return Err(Error::NoStreams);
        }
        let mut setup = Setup {
            video: None,
            audio: None,
        };
        for (index, s) in streams.iter().enumerate() {
            if s.timescale == 0 {
                return Err(Error::ZeroTimescale { stream: index });
            }
            let video = |config: VideoConfig<'a>, size: u8| {
                if !(1..=4).contains(&size) {
                    return Err(Error::BadNalLengthSize {
                        stream: index,
                        size,
                    });
                }
                Ok(VideoTrack {
                    index,
                    timescale: s.timescale,
                    samples: s.samples,
                    codec: s.codec,
                    config,
                })
            };
            match s.codec {
                Codec::H264 {
                    sps,
                    pps,
                    nal_length_size,
                } => {
                    if setup.video.is_some() {
                        return Err(Error::DuplicateStream {
                            stream: index,
                            kind: "video",
                        });
                    }
                    setup.video = Some(video(
                        VideoConfig::h264(sps, pps, *nal_length_size),
                        *nal_length_size,
                    )?);
                }
                Codec::Hevc {
                    vps,
                    sps,
                    pps,
                    nal_length_size,
                } => {
                    if setup.video.is_some() {
                        return Err(Error::DuplicateStream {
                            stream: index,
                            kind: "video",
                        });
                    }
                    setup.video = Some(video(
                        VideoConfig::hevc(vps, sps, pps, *nal_length_size),
                        *nal_length_size,
                    )?);
                }
                Codec::Aac {
                    audio_specific_config,
                } => {
                    if setup.audio.is_some() {
                        return Err(Error::DuplicateStream {
                            stream: index,
                            kind: "audio",
                        });
                    }
                    let adts = AdtsConfig::from_audio_specific_config(audio_specific_config)
                        .map_err(|reason| Error::AudioConfig {
                            stream: index,
                            reason,
                        })?;
                    setup.audio = Some(AudioTrack {
                        index,
                        timescale: s.timescale,
                        samples: s.samples,
                        codec: s.codec,
                        adts,
                    });
                }
            }
        }
        Ok(setup)
    }

    fn pcr_pid(&self) -> u16 {
        if self.video.is_some() {
            VIDEO_PID
        } else {
            AUDIO_PID
        }
    }
}

/// PTS and DTS of a PES in 90 kHz ticks, offset applied, not yet wrapped to 33 bits.
#[derive(Debug, Clone, Copy)]
struct Times {
    pts: u64,
    dts: u64,
}

fn time_90k(
    stream: usize,
    sample: usize,
    t: i64,
    timescale: u32,
    offset: u64,
) -> Result<u64, Error> {
    rescale_to_90k(t, timescale)
        .and_then(|v| u64::try_from(i128::from(v) + i128::from(offset)).ok())
        .ok_or(Error::BadTimestamp {
            stream,
            sample,
            value: t,
        })
}

fn sample_times(
    stream: usize,
    sample: usize,
    s: &Sample<'_>,
    timescale: u32,
    offset: u64,
) -> Result<Times, Error> {
    Ok(Times {
        pts: time_90k(stream, sample, s.pts, timescale, offset)?,
        dts: time_90k(stream, sample, s.dts, timescale, offset)?,
    })
}

/// The first packet of a PES: PCR if this PID carries it, RAI on keyframes.
fn first_packet(carries_pcr: bool, dts: u64, keyframe: bool) -> FirstPacket {
    FirstPacket {
        pcr_base: carries_pcr.then(|| dts.saturating_sub(PCR_LEAD_90K) & MASK_33),
        random_access: keyframe,
    }
}

fn framing_error(stream: usize, sample: usize, e: FramingError) -> Error {
    match e {
        FramingError::Truncated { offset } => Error::TruncatedNalLength {
            stream,
            sample,
            offset,
        },
        FramingError::Overrun {
            offset,
            declared,
            available,
        } => Error::NalOverrun {
            stream,
            sample,
            offset,
            declared,
            available,
        },
    }
}

/// Consumer of the PES schedule. The sample index and frame ranges it receives index
/// into the track's samples: schedule() fetched each of them with `get` first.
trait Sink {
    fn video(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error>;
    fn audio(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        payload_len: usize,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error>;
}

/// Walks both streams in DTS order (video first on ties, so its PCR leads), validating
/// every sample and handing each PES to `sink`.
fn schedule(setup: &Setup<'_>, offset: u64, sink: &mut impl Sink) -> Result<(), Error> {
    let video_pcr = setup.video.is_some();
    let (mut vi, mut ai) = (0, 0);
    let mut next_video: Option<Times> = None;
    let mut next_audio: Option<Times> = None;
    loop {
        if let (None, Some(v)) = (next_video, &setup.video) {
            if let Some(s) = v.samples.get(vi) {
                next_video = Some(sample_times(v.index, vi, s, v.timescale, offset)?);
            }
        }
        if let (None, Some(a)) = (next_audio, &setup.audio) {
            if let Some(s) = a.samples.get(ai) {
                next_audio = Some(sample_times(a.index, ai, s, a.timescale, offset)?);
            }
        }
        let video_turn = match (next_video, next_audio) {
            (None, None) => return Ok(()),
            (Some(v), Some(a)) => v.dts <= a.dts,
            (v, _) => v.is_some(),
        };
        if video_turn {
            // next_video is Some only when the video track exists and vi indexes one of
            // its samples, so neither error below can happen.
            let (Some(v), Some(t)) = (&setup.video, next_video.take()) else {
                return Err(Error::Internal("video turn without video"));
            };
            let s = v.samples.get(vi).ok_or(Error::Internal("video index"))?;
            if s.data.is_empty() {
                return Err(Error::EmptySample {
                    stream: v.index,
                    sample: vi,
                });
            }
            let plan = v
                .config
                .plan(s.data, s.keyframe)
                .map_err(|e| framing_error(v.index, vi, e))?;
            sink.video(v, vi, &plan, t, first_packet(true, t.dts, s.keyframe))?;
            vi += 1;
        } else {
            // As above for audio.
            let (Some(a), Some(t)) = (&setup.audio, next_audio.take()) else {
                return Err(Error::Internal("audio turn without audio"));
            };
            let first = ai;
            let mut payload_len = 0;
            loop {
                let s = a.samples.get(ai).ok_or(Error::Internal("audio index"))?;
                if s.data.is_empty() {
                    return Err(Error::EmptySample {
                        stream: a.index,
                        sample: ai,
                    });
                }
                if s.data.len() > MAX_RAW_FRAME {
                    return Err(Error::AacFrameTooLarge {
                        stream: a.index,
                        sample: ai,
                        len: s.data.len(),
                    });
                }
                payload_len += ADTS_HEADER_LEN + s.data.len();
                ai += 1;
                let Some(n) = a.samples.get(ai) else { break };
                let nt = sample_times(a.index, ai, n, a.timescale, offset)?;
                let fits = payload_len + ADTS_HEADER_LEN + n.data.len() <= MAX_BOUNDED_PAYLOAD;
                if ai - first >= AUDIO_PES_MAX_FRAMES
                    || nt.dts >= t.dts.saturating_add(AUDIO_PES_SPAN_90K)
                    || !fits
                {
                    next_audio = Some(nt);
                    break;
                }
            }
            // In bounds: the loop above fetched sample `first`.
            let key = a.samples[first].keyframe;
            sink.audio(
                a,
                first..ai,
                payload_len,
                t,
                first_packet(!video_pcr, t.dts, key),
            )?;
        }
    }
}

/// Continuity counters are 4 bits: aligned PIDs take a multiple of this many packets.
const CC_MODULUS: u64 = 16;
/// How many PES at the end of a PID the alignment padding may touch. Each PES can take
/// at least 6 extra packets with its header intact (every PES carries an AUD or an
/// ADTS header), so 15 padding packets never need more than 3 of them.
const TAIL: usize = 16;
/// Padding packets per PID at most.
const MAX_PAD: u8 = (CC_MODULUS - 1) as u8;

/// Packet count of one PID, and how far the last few PES could be stretched.
#[derive(Default)]
struct PidCount {
    /// PES on the PID.
    pes: u64,
    /// Packets in the natural layout (all full but the last of each PES).
    packets: u64,
    /// Ring indexed by PES number % TAIL: extra packets each of the last TAIL PES can
    /// take while its first packet still holds the whole PES header (capped at 15).
    room: [u8; TAIL],
    /// Extra packets the last PES can take at all, one payload byte per packet, header
    /// split over packets if need be (capped at 15).
    last_room: u8,
}

impl PidCount {
    fn add(&mut self, header_len: usize, len: usize, first: FirstPacket) {
        let n = pes_packet_count(len, first);
        let cap =
            |max_packets: usize| (max_packets as u64).saturating_sub(n).min(MAX_PAD.into()) as u8;
        self.room[(self.pes % TAIL as u64) as usize] = cap(1 + len.saturating_sub(header_len));
        self.last_room = cap(len);
        self.pes += 1;
        self.packets += n;
    }

    /// Where the padding goes. Without alignment: nowhere. With it: the last PES takes
    /// as much as it can with its header intact, then the one before, and so on (in
    /// practice the last PES alone does it: it needs 15 bytes after its header). If the
    /// whole tail cannot take it with headers intact (a PID with only a few bytes of
    /// payload in the segment, e.g. one tiny AAC frame), the last PES takes all of it
    /// with its header spread over packets; every PES has at least 20 bytes, so that
    /// always works and the error below is unreachable.
    fn plan(&self, params: &MuxParams) -> Result<Padding, Error> {
        let mut p = Padding {
            pes: self.pes,
            packets: self.packets,
            extra: [0; TAIL],
        };
        if !params.align_continuity || self.pes == 0 {
            return Ok(p);
        }
        let pad = ((CC_MODULUS - self.packets % CC_MODULUS) % CC_MODULUS) as u8;
        let mut need = pad;
        for k in (self.pes.saturating_sub(TAIL as u64)..self.pes).rev() {
            if need == 0 {
                break;
            }
            let slot = (k % TAIL as u64) as usize;
            let take = need.min(self.room[slot]);
            p.extra[slot] = take;
            need -= take;
        }
        if need > 0 {
            if pad > self.last_room {
                return Err(Error::Internal("PES too short for continuity alignment"));
            }
            p.extra = [0; TAIL];
            p.extra[((self.pes - 1) % TAIL as u64) as usize] = pad;
        }
        p.packets += u64::from(pad);
        Ok(p)
    }
}

/// Extra packets per PES of one PID, decided before writing.
#[derive(Clone, Copy)]
struct Padding {
    /// PES on the PID.
    pes: u64,
    /// Packets on the PID, padding included.
    packets: u64,
    /// Ring indexed by PES number % TAIL, for the last TAIL PES; 0 elsewhere.
    extra: [u8; TAIL],
}

impl Padding {
    /// Extra packets for PES number `k` of the PID.
    fn extra(&self, k: u64) -> usize {
        if k < self.pes && k + TAIL as u64 >= self.pes {
            usize::from(self.extra[(k % TAIL as u64) as usize])
        } else {
            0
        }
    }
}

/// Counts packets per PID; a transforming hook's output is made and kept here.
struct Counter<'h, H> {
    video: PidCount,
    audio: PidCount,
    hook: &'h mut H,
    es: Transformed,
}

impl<H: EsHook> Sink for Counter<'_, H> {
    fn video(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        let header = pes_header_len(t.pts, t.dts);
        let es_len = if H::IDENTITY {
            plan.es_len
        } else {
            self.es.video(v, sample, plan, self.hook)?
        };
        self.video.add(header, header + es_len, first);
        Ok(())
    }

    fn audio(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        len: usize,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        let header = pes_header_len(t.pts, t.dts);
        let len = if H::IDENTITY {
            len
        } else {
            self.es.audio(a, frames, self.hook)?
        };
        self.audio.add(header, header + len, first);
        Ok(())
    }
}

/// The writer's position on one PID: which PES comes next and the padding plan.
struct PidCursor {
    pes: u64,
    plan: Padding,
}

impl PidCursor {
    /// Extra packets for the next PES; moves on to the one after.
    fn next_extra(&mut self) -> usize {
        let extra = self.plan.extra(self.pes);
        self.pes += 1;
        extra
    }
}

/// Writes packets.
struct Writer<'o, 's, H> {
    out: &'o mut Vec<u8>,
    cc: crate::ContinuityState,
    hook: &'o mut H,
    /// Transformed access units / audio PES payloads (empty for the clear hook).
    es: &'o Transformed,
    /// Number of the next PES payload in `es`.
    es_next: usize,
    streams: &'s Setup<'s>,
    video: PidCursor,
    audio: PidCursor,
}

impl<H: EsHook> Writer<'_, '_, H> {
    fn write_psi(&mut self) -> Result<(), Error> {
        write_pat(self.out, self.cc.pat)?;
        self.cc.pat = (self.cc.pat + 1) & 0x0F;
        // Descriptors only come from a non-clear hook; Vec::new() does not allocate.
        let (mut video_desc, mut audio_desc) = (Vec::new(), Vec::new());
        let hook = &*self.hook;
        let video_type = self.streams.video.as_ref().map(|v| {
            hook.pmt_entry(
                v.codec,
                crate::nal::stream_type(v.config.kind),
                &mut video_desc,
            )
        });
        let audio_type = self
            .streams
            .audio
            .as_ref()
            .map(|a| hook.pmt_entry(a.codec, ADTS_STREAM_TYPE, &mut audio_desc));
        let mut list = [PmtEntry {
            stream_type: 0,
            pid: 0,
            descriptors: &[],
        }; 2];
        let mut n = 0;
        if let Some(stream_type) = video_type {
            list[n] = PmtEntry {
                stream_type,
                pid: VIDEO_PID,
                descriptors: &video_desc,
            };
            n += 1;
        }
        if let Some(stream_type) = audio_type {
            list[n] = PmtEntry {
                stream_type,
                pid: AUDIO_PID,
                descriptors: &audio_desc,
            };
            n += 1;
        }
        write_pmt(self.out, self.cc.pmt, self.streams.pcr_pid(), &list[..n])?;
        self.cc.pmt = (self.cc.pmt + 1) & 0x0F;
        Ok(())
    }
}

impl<H: EsHook> Sink for Writer<'_, '_, H> {
    fn video(
        &mut self,
        v: &VideoTrack<'_>,
        sample: usize,
        plan: &AuPlan,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        let s = &v.samples[sample];
        let cfg = &v.config;
        let header = pes_header(VIDEO_STREAM_ID, t.pts, t.dts, None);
        let (aud, aud_len) = cfg.aud(plan);
        // The sample was validated by plan(); a framing error here would be a bug.
        let bug = |_| Error::Internal("NAL framing changed between passes");
        let extra = self.video.next_extra();
        if H::IDENTITY {
            let len = header.as_bytes().len() + plan.es_len;
            let mut w = PesWriter::begin(self.out, VIDEO_PID, self.cc.video, len, first, extra);
            w.put(header.as_bytes())?;
            w.put(&aud[..aud_len])?;
            if plan.insert_param_sets {
                for ps in cfg.param_sets() {
                    w.put(&START_CODE)?;
                    w.put(ps)?;
                }
            }
            for nal in cfg.nals(s.data) {
                w.put(&START_CODE)?;
                w.put(nal.map_err(bug)?)?;
            }
            self.cc.video = w.finish()?;
        } else {
            let payload = self.es.get(self.es_next)?;
            self.es_next += 1;
            let len = header.as_bytes().len() + payload.len();
            let mut w = PesWriter::begin(self.out, VIDEO_PID, self.cc.video, len, first, extra);
            w.put(header.as_bytes())?;
            w.put(payload)?;
            self.cc.video = w.finish()?;
        }
        Ok(())
    }

    fn audio(
        &mut self,
        a: &AudioTrack<'_>,
        frames: Range<usize>,
        payload_len: usize,
        t: Times,
        first: FirstPacket,
    ) -> Result<(), Error> {
        // schedule() checked every frame against MAX_RAW_FRAME.
        let too_large = Error::Internal("AAC frame size changed between passes");
        let extra = self.audio.next_extra();
        if H::IDENTITY {
            let header = pes_header(AUDIO_STREAM_ID, t.pts, t.dts, Some(payload_len));
            let len = header.as_bytes().len() + payload_len;
            let mut w = PesWriter::begin(self.out, AUDIO_PID, self.cc.audio, len, first, extra);
            w.put(header.as_bytes())?;
            for s in &a.samples[frames] {
                w.put(
                    &a.adts
                        .header(s.data.len())
                        .ok_or_else(|| too_large.clone())?,
                )?;
                w.put(s.data)?;
            }
            self.cc.audio = w.finish()?;
        } else {
            // Counted (and bounded by MAX_BOUNDED_PAYLOAD) by Transformed::audio.
            let payload = self.es.get(self.es_next)?;
            self.es_next += 1;
            let header = pes_header(AUDIO_STREAM_ID, t.pts, t.dts, Some(payload.len()));
            let len = header.as_bytes().len() + payload.len();
            let mut w = PesWriter::begin(self.out, AUDIO_PID, self.cc.audio, len, first, extra);
            w.put(header.as_bytes())?;
            w.put(payload)?;
            self.cc.audio = w.finish()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mpeg2ts::pes::{PesPacketReader, ReadPesPacket};
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader, TsPayload};

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
        let mut out = Vec::new();
        mux_with_hook(&streams, &mut params, &mut out, hook).unwrap();
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
