//! HLS MPEG-TS segments, built per request from the same fMP4 fragments.
//!
//! Design (documented in README): each video rendition's TS segment carries that video
//! segment plus the asset's *default* audio track muxed in (what set-top boxes and TVs expect
//! from a TS variant); the other audio languages are separate audio-only TS renditions cut on
//! their own segment boundaries. Audio samples of a muxed segment are those whose decode time
//! falls in the video segment's decode span, so every sample lands in exactly one segment.
//! Timestamps keep the source's decode and presentation times plus a constant
//! [`PTS_OFFSET_90K`], so B-frames' negative composition offsets never produce negative PTS.
//! Continuity counters run on across segments without knowing them: each segment pads its
//! per-PID packet count to a multiple of 16 and starts PAT/PMT at `(n - 1) % 16`.

use bytes::Bytes;
use sealcast_mpegts::{Codec, ContinuityState, MuxParams, Pieces, Sample, Stream};

/// Key and IV of a SAMPLE-AES TS segment (HLS `EXT-X-KEY:METHOD=SAMPLE-AES`); `Debug`
/// redacts the key.
pub use sealcast_mpegts::SampleAes as SampleAesParams;

use crate::asset::{Asset, AssetTrack};
use crate::TrackKind;
use crate::error::{Error, Result};
use crate::fmp4::SourceFragment;
use crate::track::CodecConfig;

/// Constant added to every timestamp (10 s at 90 kHz).
pub const PTS_OFFSET_90K: u64 = 900_000;

/// Whether HLS over MPEG-TS carries track `t`: H.264 video and AAC audio only. Apple's HLS
/// authoring specification puts HEVC in fMP4 segments only (and SAMPLE-AES over TS is defined
/// for H.264 and AAC alone), so the TS playlists leave other renditions out (they stay in the
/// fMP4 ones) and their TS resources do not exist: one HEVC rendition never withholds the
/// H.264 ladder from TS-only clients.
pub fn carries(t: &AssetTrack) -> bool {
    matches!(t.track().info.config, CodecConfig::Avc(_) | CodecConfig::Aac { .. })
}

/// The muxer's codec description of a track.
pub fn codec(t: &AssetTrack) -> Codec {
    let b = |v: &Vec<Vec<u8>>| v.iter().map(|x| Bytes::from(x.clone())).collect::<Vec<_>>();
    match &t.track().info.config {
        CodecConfig::Avc(c) => Codec::H264 { sps: b(&c.sps), pps: b(&c.pps), nal_length_size: c.nal_length_size },
        CodecConfig::Hevc(c) => Codec::Hevc { vps: b(&c.vps), sps: b(&c.sps), pps: b(&c.pps), nal_length_size: c.nal_length_size },
        CodecConfig::Aac { raw, .. } => Codec::Aac { audio_specific_config: Bytes::from(raw.clone()) },
    }
}

/// Samples of `frags` (read from `data`, which starts at file offset `data_offset`) whose
/// decode time lies in `[from, to)`; decode times are moved back by `dts_shift`
/// ([`AssetTrack::dts_shift`]) so that PTS >= DTS.
pub fn samples<'a>(frags: &[SourceFragment], data: &'a Bytes, data_offset: u64, from: u64, to: u64, dts_shift: u64) -> Result<Vec<Sample<'a>>> {
    let mut out = Vec::new();
    for f in frags {
        let mut dts = f.decode_time;
        for s in &f.traf.samples {
            if dts >= from && dts < to {
                let a = s.offset.checked_sub(data_offset).ok_or_else(|| Error::Read("sample before the read range".into()))? as usize;
                let bytes = data.get(a..a + s.size as usize).ok_or(Error::Truncated { offset: s.offset, need: s.size as u64, file_len: data_offset + data.len() as u64 })?;
                let d = i64::try_from(dts).map_err(|_| Error::Unsupported("decode time too large".into()))?;
                out.push(Sample { dts: d.saturating_sub(dts_shift as i64), pts: d.saturating_add(s.cto), keyframe: s.is_sync(), data: bytes });
            }
            dts = dts.saturating_add(s.duration as u64);
        }
    }
    Ok(out)
}

/// Samples with the track's edit list applied: MPEG-TS has no edit lists, so the first
/// edit's media time (B-frame delay, AAC priming; 0 for fragmented sources without one) is
/// taken off every timestamp, keeping audio and video in sync as the source presents them.
/// The [`PTS_OFFSET_90K`] added by the muxer keeps the results positive.
fn edited<'a>(mut v: Vec<Sample<'a>>, t: &AssetTrack) -> Vec<Sample<'a>> {
    let m = t.track().info.media_time;
    if m != 0 {
        for s in &mut v {
            s.dts = s.dts.saturating_sub(m);
            s.pts = s.pts.saturating_sub(m);
        }
    }
    v
}

/// One elementary stream of a TS segment.
pub struct TsInput<'a> {
    /// Codec.
    pub codec: Codec,
    /// Track timescale.
    pub timescale: u32,
    /// Samples in decode order.
    pub samples: Vec<Sample<'a>>,
}

/// Muxes segment number `number` (from 1) of up to one video and one audio stream.
pub fn write_segment(inputs: &[TsInput<'_>], number: usize) -> Result<Vec<u8>> {
    write_segment_with(inputs, number, None)
}

/// [`write_segment`], encrypted with HLS SAMPLE-AES when `sample_aes` is given (H.264
/// and AAC; HEVC is refused with [`Error::Unsupported`], as Apple's format has no HEVC
/// variant). The IV is the one the playlist's `EXT-X-KEY` states for this segment.
/// Continuity alignment is planned on the encrypted sizes, so encrypted segments chain
/// exactly as clear ones do.
pub fn write_segment_with(inputs: &[TsInput<'_>], number: usize, sample_aes: Option<SampleAesParams>) -> Result<Vec<u8>> {
    let (streams, mut params) = mux_input(inputs, number, sample_aes);
    let mut out = Vec::new();
    sealcast_mpegts::mux_segment(&streams, &mut params, &mut out).map_err(|e| Error::Unsupported(format!("TS mux: {e}")))?;
    Ok(out)
}

/// The muxer's streams and parameters for segment `number` (from 1) of `inputs`: continuity
/// counters aligned so that every segment starts where the one before ended.
fn mux_input<'a>(inputs: &'a [TsInput<'_>], number: usize, sample_aes: Option<SampleAesParams>) -> (Vec<Stream<'a>>, MuxParams) {
    let streams = inputs.iter().filter(|i| !i.samples.is_empty()).map(|i| Stream { codec: &i.codec, timescale: i.timescale, samples: &i.samples }).collect();
    let cc = ((number.max(1) - 1) % 16) as u8;
    (streams, MuxParams { pts_offset_90k: PTS_OFFSET_90K, continuity: ContinuityState { pat: cc, pmt: cc, video: 0, audio: 0 }, align_continuity: true, sample_aes })
}

/// What TS segment `n` of a track needs read from storage, planned before any read: the
/// track's own segment bytes and, for a video track, the byte range of the asset's default
/// (first) audio track's fragments overlapping the segment's decode span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPlan {
    /// Index of the track in [`Asset::tracks`].
    pub track: usize,
    /// Segment number, from 1.
    pub number: usize,
    /// Byte range of the segment in the track's file.
    pub bytes: std::ops::Range<u64>,
    /// The reads that fetch it ([`AssetTrack::source_reads`]), inside `bytes`.
    pub reads: Vec<std::ops::Range<u64>>,
    /// The muxed-in audio, if any.
    pub audio: Option<AudioPlan>,
}

/// The audio muxed into a video TS segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPlan {
    /// Index of the audio track in [`Asset::tracks`].
    pub track: usize,
    /// Its fragments to read.
    pub fragments: std::ops::Range<usize>,
    /// Their byte range in its file.
    pub bytes: std::ops::Range<u64>,
    /// The reads that fetch them, inside `bytes`.
    pub reads: Vec<std::ops::Range<u64>>,
    /// Decode-time span `[from, to)` in the audio timescale whose samples belong here.
    pub from: u64,
    /// See `from`.
    pub to: u64,
}

/// Plans TS segment `number` (from 1) of track `track` of `asset`; `None` when there is no
/// such track or segment, or TS does not carry the track ([`carries`]).
pub fn plan_segment(asset: &Asset, track: usize, number: usize) -> Option<SegmentPlan> {
    let t = asset.tracks.get(track).filter(|t| carries(t))?;
    let seg = t.segments.get(number.checked_sub(1)?)?;
    let (start, end) = t.segment_range(number - 1)?;
    let mut plan = SegmentPlan { track, number, bytes: start..end, reads: t.segment_reads(number - 1)?, audio: None };
    if t.kind() != TrackKind::Video {
        return Some(plan);
    }
    let Some(ai) = asset.tracks.iter().position(|x| x.kind() == TrackKind::Audio && carries(x)) else { return Some(plan) };
    let a = &asset.tracks[ai];
    // The video segment's decode span in the audio timescale; first and last segments are
    // open-ended so every audio sample lands in exactly one segment.
    let (vts, ats) = (t.track().info.timescale as u128, a.track().info.timescale as u128);
    let conv = |v: u64| (v as u128 * ats / vts.max(1)).min(u64::MAX as u128) as u64;
    let from = if number == 1 { 0 } else { conv(seg.decode_time) };
    let to = if number == t.segments.len() { u64::MAX } else { conv(seg.decode_time + seg.duration) };
    if let Some((fragments, s, e)) = a.fragments_between(from, to) {
        let reads = a.source_reads(fragments.clone())?;
        plan.audio = Some(AudioPlan { track: ai, fragments, bytes: s..e, reads, from, to });
    }
    Some(plan)
}

/// Builds the TS segment `plan` describes from what was read: `main` holds `plan.bytes` of
/// the track's file, `audio` the audio plan's bytes. Encrypted with SAMPLE-AES when
/// `sample_aes` is given. Errors name the file at fault.
pub fn build_segment(asset: &Asset, plan: &SegmentPlan, main: &Bytes, audio: Option<&Bytes>, sample_aes: Option<SampleAesParams>) -> std::result::Result<Vec<u8>, (String, Error)> {
    with_inputs(asset, plan, main, audio, |inputs| write_segment_with(inputs, plan.number, sample_aes))
}

/// Bytes a clear TS segment is made in at a time ([`TsPieces`]); a piece ends after the PES that
/// reaches this size. The first piece goes to the socket while the rest is muxed, and the
/// last is sent while still in the CPU's cache. Measured on ~1.07 MB segments (alternated runs,
/// `benches/README.md`): pieces of 320–896 KiB cost 7–17 % less CPU per byte than the segment
/// muxed whole; 64 KiB no less, 128 KiB a fifth more (many small writes, each waking the reader).
pub const TS_PIECE: usize = 512 * 1024;

/// A clear TS segment made a piece at a time ([`Pieces`]): it owns what was read and each
/// sample's place in it, so it can be the body of a response. Everything was checked by
/// [`build_pieces`], which also knows the size.
pub struct TsPieces {
    /// What each input's samples were read from: the track's segment, then the audio's.
    sources: [Bytes; 2],
    inputs: Vec<OwnedInput>,
    pieces: Pieces,
}

struct OwnedInput {
    codec: Codec,
    timescale: u32,
    /// (dts, pts, keyframe, offset in its source, length)
    samples: Vec<(i64, i64, bool, usize, usize)>,
}

impl TsPieces {
    /// Bytes of the whole segment.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether every piece was made.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Bytes not yet made.
    pub fn remaining(&self) -> usize {
        self.pieces.remaining()
    }

    /// The next piece (at least `at_least` bytes unless it ends the segment), or `None` after the
    /// last one.
    pub fn next_piece(&mut self, at_least: usize) -> Result<Option<Bytes>> {
        while !self.pieces.is_empty() {
            let mut samples = Vec::with_capacity(self.inputs.len());
            for (i, input) in self.inputs.iter().enumerate() {
                let src = &self.sources[i];
                let v = input.samples.iter().map(|&(dts, pts, keyframe, at, len)| {
                    let data = src.get(at..at + len).ok_or_else(|| Error::Read("TS piece: sample outside its read".into()))?;
                    Ok(Sample { dts, pts, keyframe, data })
                });
                samples.push(v.collect::<Result<Vec<_>>>()?);
            }
            let streams: Vec<Stream<'_>> = self.inputs.iter().zip(&samples).filter(|(_, s)| !s.is_empty()).map(|(i, s)| Stream { codec: &i.codec, timescale: i.timescale, samples: s }).collect();
            let mut out = Vec::with_capacity(at_least.saturating_add(at_least / 2).min(self.pieces.len()));
            self.pieces.write(&streams, &mut out, at_least).map_err(|e| Error::Unsupported(format!("TS mux: {e}")))?;
            if !out.is_empty() {
                return Ok(Some(Bytes::from(out)));
            }
        }
        Ok(None)
    }
}

/// [`build_segment`] without SAMPLE-AES, as pieces made when asked for ([`TsPieces`]); the same
/// bytes in the end.
pub fn build_pieces(asset: &Asset, plan: &SegmentPlan, main: Bytes, audio: Option<Bytes>) -> std::result::Result<TsPieces, (String, Error)> {
    let has_audio = audio.is_some();
    let sources = [main, audio.unwrap_or_default()];
    let (inputs, pieces) = with_inputs(asset, plan, &sources[0], has_audio.then_some(&sources[1]), |inputs| {
        let (streams, params) = mux_input(inputs, plan.number, None);
        let pieces = Pieces::new(&streams, &params).map_err(|e| Error::Unsupported(format!("TS mux: {e}")))?;
        // Input i was read from sources[i] (with_inputs: the track's, then the audio's), so each
        // sample's place is its address less its source's.
        let owned = inputs
            .iter()
            .zip(&sources)
            .map(|(input, src)| OwnedInput {
                codec: input.codec.clone(),
                timescale: input.timescale,
                samples: input.samples.iter().map(|s| (s.dts, s.pts, s.keyframe, (s.data.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize), s.data.len())).collect(),
            })
            .collect();
        Ok((owned, pieces))
    })?;
    Ok(TsPieces { sources, inputs, pieces })
}

/// The samples of segment `plan` (its track's and the muxed-in audio's), handed to `write`.
fn with_inputs<R>(asset: &Asset, plan: &SegmentPlan, main: &Bytes, audio: Option<&Bytes>, write: impl FnOnce(&[TsInput<'_>]) -> Result<R>) -> std::result::Result<R, (String, Error)> {
    let t = &asset.tracks[plan.track];
    let frags = crate::fmp4::read_segment(t, plan.number - 1, main, plan.bytes.start).map_err(|e| (t.file.clone(), e))?;
    let mut inputs = vec![TsInput { codec: codec(t), timescale: t.track().info.timescale, samples: edited(samples(&frags, main, plan.bytes.start, 0, u64::MAX, t.dts_shift()).map_err(|e| (t.file.clone(), e))?, t) }];
    let af;
    if let (Some(ap), Some(data)) = (&plan.audio, audio) {
        let a = &asset.tracks[ap.track];
        af = crate::fmp4::read_fragments(a, ap.fragments.clone(), data, ap.bytes.start).map_err(|e| (a.file.clone(), e))?;
        inputs.push(TsInput { codec: codec(a), timescale: a.track().info.timescale, samples: edited(samples(&af, data, ap.bytes.start, ap.from, ap.to, 0).map_err(|e| (a.file.clone(), e))?, a) });
    }
    write(&inputs).map_err(|e| (t.file.clone(), e))
}

/// Builds the TS I-frame segment of segment `number` (from 1) of video track `track`: PAT, PMT
/// and the key frame that starts the segment, no audio (`main` holds
/// [`crate::fmp4::iframe_range`] of the segment, at file offset `data_offset`). SAMPLE-AES
/// encrypted when `sample_aes` is given.
pub fn build_iframe(asset: &Asset, track: usize, number: usize, main: &Bytes, data_offset: u64, sample_aes: Option<SampleAesParams>) -> std::result::Result<Vec<u8>, (String, Error)> {
    let t = asset.tracks.get(track).ok_or_else(|| (String::new(), Error::Read(format!("no track {track}"))))?;
    let at = |e| (t.file.clone(), e);
    let frags = crate::fmp4::read_iframe(t, number.checked_sub(1).ok_or_else(|| at(Error::Read("segment 0".into())))?, main, data_offset).map_err(at)?;
    let input = TsInput { codec: codec(t), timescale: t.track().info.timescale, samples: edited(samples(&frags, main, data_offset, 0, u64::MAX, t.dts_shift()).map_err(at)?, t) };
    write_segment_with(&[input], number, sample_aes).map_err(at)
}
