//! Smooth Streaming ([MS-SSTR]) for on-demand content, clear or PlayReady-protected (PIFF):
//! the client manifest and the fragments its URLs point at.
//!
//! # Timescales
//!
//! Smooth clients build their own `moov` from the manifest, with the StreamIndex timescale as
//! the track timescale, so the times in the manifest, in `tfxd` and in the `trun` sample
//! durations must all be in that one scale. We put `TimeScale` on every `StreamIndex` and make
//! it the media timescale of its tracks: nothing is rescaled, every time is exact and a
//! chunk's `t` is the segment's decode time as stored. The root `TimeScale` stays the
//! recommended 10 MHz and only measures `Duration`. A StreamIndex therefore never mixes
//! timescales: tracks whose timescale (or codec family, or segment timeline) differs go to a
//! StreamIndex of their own, since a client can only switch between qualities whose chunks
//! share times.
//!
//! # Fragments
//!
//! Each chunk is one segment of the asset, answered as one `moof` + `mdat` (no `styp`): a
//! segment made of several source fragments is merged into a single `traf` with a single
//! `trun`, because clients read one of each (dash.js patches the data offset of the first
//! `trun` only). All per-sample values are written into the fragment itself, never left to
//! `trex` defaults, because the client's `moov` has none of ours. MS-SSTR's `trun` is version
//! 0 with unsigned composition offsets, so negative offsets (version 1 sources) are raised by
//! the track's constant [`AssetTrack::dts_shift`]. Smooth has no edit lists, so that would
//! present the video late; instead every track's decode times are delayed by one shared
//! amount in seconds ([`delay`]): the largest shift among the asset's tracks, minus the
//! track's own. Audio and video then start together (found by the dash.js sync check).
//!
//! `traf` holds `tfhd`, `tfdt`, `trun` and `tfxd`. MS-SSTR lists only `tfhd`, `trun` and
//! vendor `uuid` boxes; `tfdt` is a standard ISO/IEC 14496-12 box that parsers skip when they
//! do not know it, and it pins the decode time exactly where a client would otherwise derive
//! it from the request's start time in floating point (dash.js, lacking `tfdt`, writes
//! `floor(start_seconds * timescale)`, which can land one tick short). `tfxd` (live-only per
//! MS-SSTR 2.2.4.4, to be ignored on demand) is written anyway with the same time and
//! duration, for clients that look for it; a `tfxd` without a `tfdt` is what they are used to.
//!
//! # Protection
//!
//! [`write_manifest_with`] adds the `<Protection>` element; [`write_fragment_encrypted`]
//! encrypts the samples in place (AES-CTR, `cenc`) and adds PIFF's sample encryption `uuid`
//! box plus `saiz`/`saio` pointing into it, after `tfxd`. Smooth clients build the
//! protected sample entry themselves from the manifest; the fragment only carries per-sample
//! data.
//!
//! [MS-SSTR]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-sstr/

use bytes::Bytes;
use sealcast_cenc::boxes::{PiffSenc, Saio, Saiz, Senc};
use sealcast_cenc::{Scheme, TrackProtection};
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::trun::{flags as trun_flags, Trun, TrunEntry};
use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{mfhd::Mfhd, tfdt::Tfdt, tfhd::Tfhd, write_box, Atom};

use crate::asset::{Asset, AssetTrack};
use crate::error::{Error, Result};
use crate::fmp4::{Chunks, SourceFragment};
use crate::fragment::Sample;
use crate::protect::encrypt_source;
use crate::timeline::Segment;
use crate::track::{CodecConfig, TrackKind};

pub use crate::manifest::smooth::{write_manifest, write_manifest_with, MANIFEST_TIMESCALE};
pub use tfxd::{Tfxd, TFXD_UUID};

mod tfxd;

/// One `StreamIndex` of the manifest: tracks a client may switch between.
#[derive(Debug, Clone)]
pub struct SmoothStream<'a> {
    /// `Name`, unique in the manifest; the stream name in fragment URLs.
    pub name: String,
    /// `Type`.
    pub kind: TrackKind,
    /// `Language` (audio only).
    pub language: Option<String>,
    /// `TimeScale`: the media timescale shared by every quality level.
    pub timescale: u32,
    /// Quality levels, in asset order; `Index` is the position here.
    pub levels: Vec<SmoothLevel<'a>>,
    /// Added to the stream's decode times in chunk times, URLs, `tfdt` and `tfxd` ([`delay`]).
    pub offset: u64,
}

/// The delay (track timescale) added to `track`'s decode times so every track of `asset`
/// presents in sync once composition offsets are raised to fit `trun` version 0: the largest
/// `(dts_shift + edit media_time) / timescale` of the asset, rounded up in this track's
/// timescale, minus this track's own.
pub fn delay(asset: &Asset, track: &AssetTrack) -> u64 {
    // A track's edit list (media_time: B-frame delay, AAC priming) moves its presentation
    // earlier by that much; Smooth has no edit lists, so it counts like a shift.
    let frac = |t: &AssetTrack| (t.dts_shift() as u128 + t.track().info.media_time.max(0) as u128, t.track().info.timescale.max(1) as u128);
    let (ms, mt) = asset.tracks.iter().map(frac).fold((0u128, 1u128), |(a, b), (c, d)| if c * b > a * d { (c, d) } else { (a, b) });
    let (own, ts) = frac(track);
    let want = (ms * ts).div_ceil(mt);
    (want.saturating_sub(own)).min(u64::MAX as u128) as u64
}

/// One `QualityLevel`.
#[derive(Debug, Clone, Copy)]
pub struct SmoothLevel<'a> {
    /// The track.
    pub track: &'a AssetTrack,
    /// `Bitrate`, unique within its stream: the track's average bitrate (MS-SSTR 2.2.2.5
    /// defines `Bitrate` as the average bandwidth), raised by 1 bps until no earlier level
    /// of the stream uses it.
    pub bitrate: u32,
}

impl SmoothStream<'_> {
    /// The chunks (`c` elements): segments of the first level, which every level shares.
    pub fn chunks(&self) -> &[Segment] {
        &self.levels[0].track.segments
    }
}

/// Groups the tracks of `asset` into StreamIndexes, as [`write_manifest`] lists them and
/// [`find_fragment`] resolves them. Tracks share a StreamIndex when they have the same kind,
/// language (audio), codec family, timescale and segment timeline. Names: `video`, `audio`
/// (`audio_{lang}` when there are several audio streams), then `_2`, `_3`… on collisions.
pub fn streams(asset: &Asset) -> Vec<SmoothStream<'_>> {
    let mut out: Vec<SmoothStream<'_>> = Vec::new();
    for t in &asset.tracks {
        let info = &t.track().info;
        let language = if info.kind == TrackKind::Audio { t.language.clone() } else { None };
        let fits = |s: &SmoothStream<'_>| {
            let first = s.levels[0].track;
            s.kind == info.kind
                && s.language == language
                && s.timescale == info.timescale
                && family(&first.track().info.config) == family(&info.config)
                && same_timeline(&first.segments, &t.segments)
        };
        match out.iter().position(fits) {
            Some(i) => {
                let used: Vec<u32> = out[i].levels.iter().map(|l| l.bitrate).collect();
                out[i].levels.push(SmoothLevel { track: t, bitrate: unique_bitrate(t.avg_bandwidth, &used) });
            }
            None => out.push(SmoothStream {
                name: String::new(),
                kind: info.kind,
                language,
                timescale: info.timescale,
                levels: vec![SmoothLevel { track: t, bitrate: t.avg_bandwidth.max(1) }],
                offset: delay(asset, t),
            }),
        }
    }
    // Video first, then audio, each in asset order (the asset already orders them so).
    out.sort_by_key(|s| s.kind);
    let audio_streams = out.iter().filter(|s| s.kind == TrackKind::Audio).count();
    let mut taken: Vec<String> = Vec::new();
    for s in &mut out {
        let mut base = s.kind.as_str().to_string();
        if s.kind == TrackKind::Audio && audio_streams > 1 {
            if let Some(l) = &s.language {
                base.push('_');
                base.extend(l.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }));
            }
        }
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        taken.push(name.clone());
        s.name = name;
    }
    out
}

fn unique_bitrate(want: u32, used: &[u32]) -> u32 {
    let mut b = want.max(1);
    while used.contains(&b) {
        b = b.checked_add(1).unwrap_or(1);
    }
    b
}

/// Codec family: qualities of one StreamIndex share a decoder.
fn family(c: &CodecConfig) -> u8 {
    match c {
        CodecConfig::Avc(_) => 0,
        CodecConfig::Hevc(_) => 1,
        CodecConfig::Aac { .. } => 2,
    }
}

fn same_timeline(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.decode_time == y.decode_time && x.duration == y.duration)
}

/// Resolves a fragment request `QualityLevels({bitrate})/Fragments({stream_name}={time})` to
/// the track and segment index it names. `time` is in the StreamIndex timescale (the track's)
/// and must be a chunk's start exactly; anything else is `None` (a 404).
///
/// This groups the asset's tracks on every call; a server answering many requests for one
/// asset can keep [`streams`] and use [`find_in`].
pub fn find_fragment<'a>(asset: &'a Asset, stream_name: &str, bitrate: u32, time: u64) -> Option<(&'a AssetTrack, usize)> {
    find_in(&streams(asset), stream_name, bitrate, time)
}

/// [`find_fragment`] over StreamIndexes already grouped by [`streams`].
pub fn find_in<'a>(streams: &[SmoothStream<'a>], stream_name: &str, bitrate: u32, time: u64) -> Option<(&'a AssetTrack, usize)> {
    let st = streams.iter().find(|s| s.name == stream_name)?;
    let level = st.levels.iter().find(|l| l.bitrate == bitrate)?;
    let segs = &level.track.segments;
    let i = segs.binary_search_by_key(&time.checked_sub(st.offset)?, |s| s.decode_time).ok()?;
    Some((level.track, i))
}

/// Writes the Smooth fragment of one segment: `moof` (`mfhd`; `traf` with `tfhd`, `tfdt`,
/// one `trun`, `tfxd`) and `mdat`, from the fragments [`crate::fmp4::read_segment`] returned
/// for `track`. The `mdat` payload is slices of `data` (the bytes read from file offset
/// `data_offset`), never copied. `delay` is the track's [`delay`].
pub fn write_fragment(frags: &[SourceFragment], data: &Bytes, data_offset: u64, track: &AssetTrack, delay: u64) -> Result<Chunks> {
    write_fragment_with(frags, data, data_offset, track, delay, None)
}

/// [`write_fragment`] for a PlayReady-protected (PIFF) stream: the samples of `frags` are
/// encrypted in place in `data` with `p` (AES-CTR, IVs indexed by each sample's source
/// decode time), and the `traf` also carries PIFF's sample encryption box (`uuid`
/// `A2394F52-5A9B-4F14-A244-6C427C648DF4`: the IV and, for video, the subsample map of
/// every sample of the merged `trun`, in order) followed by `saiz` and `saio`, whose offset
/// points at the first per-sample byte inside that box.
///
/// Both signallings, as nginx-vod-module writes Smooth PlayReady fragments: PIFF 1.1
/// clients (Silverlight, PlayReady devices) read the `uuid` box; ffmpeg 8.1 and Shaka
/// Packager 3.8 ignore it and reach the same entries through `saiz`/`saio` (without those
/// neither decrypts); dash.js turns the `uuid` box into `senc` and keeps a `saio` it finds,
/// recomputing its offset.
///
/// `p` must be `cenc`: PlayReady Smooth Streaming (PIFF 1.1) is AES-CTR, and `cbcs`
/// (pattern encryption, constant IV) has no PIFF signalling, so it is refused.
/// `data` is encrypted in place when this is its only handle, else copied and encrypted in
/// one pass (see [`crate::protect::encrypt_source`]); the `mdat` payload is slices of the
/// encrypted buffer.
pub fn write_fragment_encrypted(frags: &[SourceFragment], data: Bytes, data_offset: u64, track: &AssetTrack, delay: u64, p: &TrackProtection) -> Result<Chunks> {
    if p.scheme() != Scheme::Cenc {
        return Err(Error::Unsupported(format!(
            "track {}: Smooth Streaming (PIFF) protection is AES-CTR (cenc) only, not {:?}",
            track.track().info.track_id,
            p.scheme()
        )));
    }
    let (buf, sencs) = encrypt_source(frags, data, data_offset, p, 0)?;
    // One trun for the whole segment, so one sample encryption box: the fragments' entries
    // in order.
    let mut senc = p.new_senc();
    senc.samples.reserve_exact(frags.iter().map(|f| f.traf.samples.len()).sum());
    for (i, part) in sencs.into_iter().enumerate() {
        let part = part.ok_or_else(|| Error::Unsupported(format!("track {}: fragment {i} left clear", track.track().info.track_id)))?;
        senc.samples.extend(part.samples);
    }
    write_fragment_with(frags, &buf, data_offset, track, delay, Some(senc))
}

/// The one writer behind [`write_fragment`] and [`write_fragment_encrypted`] (`senc`: the
/// merged sample encryption entries when `data` holds encrypted samples).
fn write_fragment_with(frags: &[SourceFragment], data: &Bytes, data_offset: u64, track: &AssetTrack, delay: u64, senc: Option<Senc>) -> Result<Chunks> {
    let first = frags.first().ok_or_else(|| Error::Read("no fragments to write".into()))?;
    let samples: Vec<&Sample> = frags.iter().flat_map(|f| f.traf.samples.iter()).collect();
    if samples.is_empty() {
        return Err(Error::Unsupported(format!("track {}: fragment without samples at time {}", first.traf.tfhd.track_id, first.decode_time)));
    }
    if let Some(senc) = &senc {
        if senc.samples.len() != samples.len() {
            return Err(Error::Unsupported(format!("track {}: {} encryption entries for {} samples", first.traf.tfhd.track_id, senc.samples.len(), samples.len())));
        }
    }
    let shift = track.dts_shift() as i64;
    let ctos = samples
        .iter()
        .map(|s| u32::try_from(s.cto + shift).map_err(|_| Error::Unsupported(format!("composition offset {} does not fit trun version 0 after a shift of {shift}", s.cto))))
        .collect::<Result<Vec<u32>>>()?;
    let duration: u64 = samples.iter().map(|s| s.duration as u64).sum();
    let media: u64 = samples.iter().map(|s| s.size as u64).sum();
    let run = SmoothRun::new(&samples, &ctos);

    // mdat: 32-bit size when it fits, else the 64-bit form.
    let mut mdat_head = Vec::with_capacity(16);
    if let Ok(size) = u32::try_from(media + 8) {
        mdat_head.put_u32(size);
        mdat_head.extend_from_slice(&MDAT.0);
    } else {
        mdat_head.put_u32(1);
        mdat_head.extend_from_slice(&MDAT.0);
        mdat_head.put_u64(media + 16);
    }
    let protection = senc.map(Piff::new).transpose()?;
    let parts = Parts {
        sequence: first.sequence,
        track_id: first.traf.tfhd.track_id,
        decode_time: first.decode_time.saturating_add(delay),
        duration,
        run: &run,
        piff: protection.as_ref(),
    };
    // The trun data offset counts from the moof's first byte to the first sample byte; the
    // moof's size does not depend on that value, so build once to measure.
    let probe = parts.moof(0);
    let data_start = i32::try_from(probe.len() + mdat_head.len()).map_err(|_| Error::Unsupported("moof larger than 2 GiB".into()))?;
    let mut head = parts.moof(data_start);
    head.extend_from_slice(&mdat_head);

    let mut body = Chunks::default();
    body.push(Bytes::from(head));
    let mut pending: Option<(u64, u64)> = None;
    for s in &samples {
        let end = s.offset + s.size as u64;
        match pending {
            Some((a, e)) if e == s.offset => pending = Some((a, end)),
            _ => {
                if let Some(p) = pending {
                    body.push(slice(data, data_offset, p)?);
                }
                pending = Some((s.offset, end));
            }
        }
    }
    if let Some(p) = pending {
        body.push(slice(data, data_offset, p)?);
    }
    Ok(body)
}

/// The protection boxes of a `traf`: PIFF's sample encryption box and the `saiz` that sizes
/// its entries (the `saio` is made once the box's place in the `moof` is known).
struct Piff {
    uuid: PiffSenc,
    saiz: Saiz,
}

impl Piff {
    fn new(senc: Senc) -> Result<Piff> {
        let saiz = Saiz::for_senc(&senc).map_err(|e| Error::Unsupported(format!("sample encryption: {e}")))?;
        let uuid = PiffSenc::new(senc);
        // Its 32-bit size form is what `aux_start` (and so the saio offset) assumes.
        if u32::try_from(uuid.encoded_len()).is_err() {
            return Err(Error::Unsupported(format!("sample encryption box of {} bytes", uuid.encoded_len())));
        }
        Ok(Piff { uuid, saiz })
    }
}

/// The value every item has, if they all have the same one (and there is at least one).
fn all_eq(mut v: impl Iterator<Item = u32>) -> Option<u32> {
    let first = v.next()?;
    v.all(|x| x == first).then_some(first)
}

/// The merged run and the defaults it moves into `tfhd`.
struct SmoothRun {
    default_duration: Option<u32>,
    default_size: Option<u32>,
    default_flags: Option<u32>,
    trun: Trun,
}

impl SmoothRun {
    fn new(samples: &[&Sample], ctos: &[u32]) -> SmoothRun {
        let default_duration = all_eq(samples.iter().map(|s| s.duration));
        let default_size = all_eq(samples.iter().map(|s| s.size));
        // Sample flags: one value for all, one for the first and one for the rest (the
        // usual keyframe-then-deltas), or per sample.
        let (default_flags, first_flags) = match all_eq(samples.iter().map(|s| s.flags)) {
            Some(f) => (Some(f), None),
            None => match all_eq(samples.iter().skip(1).map(|s| s.flags)) {
                Some(rest) => (Some(rest), Some(samples[0].flags)),
                None => (None, None),
            },
        };
        let with_cto = ctos.iter().any(|&c| c != 0);
        let mut flags = trun_flags::DATA_OFFSET;
        if first_flags.is_some() {
            flags |= trun_flags::FIRST_SAMPLE_FLAGS;
        }
        if default_duration.is_none() {
            flags |= trun_flags::DURATION;
        }
        if default_size.is_none() {
            flags |= trun_flags::SIZE;
        }
        if default_flags.is_none() {
            flags |= trun_flags::FLAGS;
        }
        if with_cto {
            flags |= trun_flags::CTO;
        }
        let entries = samples
            .iter()
            .zip(ctos)
            .map(|(s, &c)| TrunEntry {
                duration: default_duration.is_none().then_some(s.duration),
                size: default_size.is_none().then_some(s.size),
                flags: default_flags.is_none().then_some(s.flags),
                cto: with_cto.then_some(c as i64),
            })
            .collect();
        SmoothRun { default_duration, default_size, default_flags, trun: Trun { version: 0, flags, data_offset: Some(0), first_sample_flags: first_flags, entries } }
    }
}

struct Parts<'a> {
    sequence: u32,
    track_id: u32,
    decode_time: u64,
    duration: u64,
    run: &'a SmoothRun,
    piff: Option<&'a Piff>,
}

impl Parts<'_> {
    fn moof(&self, data_offset: i32) -> Vec<u8> {
        let r = self.run;
        let aux = self.piff.map_or(0, |p| p.uuid.encoded_len() + p.saiz.encoded_len() + 24);
        let mut out = Vec::with_capacity(160 + r.trun.entries.len() * 16 + aux);
        write_box(&mut out, MOOF, |o| {
            Mfhd { sequence_number: self.sequence }.encode(o);
            write_box(o, TRAF, |o| {
                // No base offset and no default-base-is-moof (MS-SSTR's tfhd has neither):
                // the base of the only traf is then the moof's first byte.
                Tfhd {
                    track_id: self.track_id,
                    base_data_offset: None,
                    sample_description_index: None,
                    default_sample_duration: r.default_duration,
                    default_sample_size: r.default_size,
                    default_sample_flags: r.default_flags,
                    duration_is_empty: false,
                    default_base_is_moof: false,
                }
                .encode(o);
                Tfdt { version: 1, base_media_decode_time: self.decode_time }.encode(o);
                Trun { data_offset: Some(data_offset), ..r.trun.clone() }.encode(o);
                Tfxd::new(self.decode_time, self.duration).encode(o);
                if let Some(p) = self.piff {
                    // `o` starts with this moof, and with neither a base offset nor
                    // default-base-is-moof in tfhd the only traf's base is the moof's first
                    // byte: the saio offset is the box's position in `o` plus its header.
                    let at = o.len() as u64 + p.uuid.aux_start();
                    p.uuid.encode(o);
                    p.saiz.encode(o);
                    Saio::single(at).encode(o);
                }
            });
        });
        out
    }
}

fn slice(data: &Bytes, data_offset: u64, (s, e): (u64, u64)) -> Result<Bytes> {
    let a = s.checked_sub(data_offset).ok_or_else(|| Error::Read("sample data before the read range".into()))? as usize;
    let b = (e - data_offset) as usize;
    if b > data.len() {
        return Err(Error::Truncated { offset: s, need: e - s, file_len: data_offset + data.len() as u64 });
    }
    Ok(data.slice(a..b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_are_made_unique() {
        assert_eq!(unique_bitrate(64_000, &[]), 64_000);
        assert_eq!(unique_bitrate(64_000, &[64_000, 64_001]), 64_002);
        assert_eq!(unique_bitrate(0, &[]), 1);
    }

    #[test]
    fn run_defaults() {
        let s = |d, sz, f| Sample { offset: 0, size: sz, duration: d, flags: f, cto: 0 };
        let a = [s(1024, 10, 0x0200_0000), s(1024, 11, 0x0101_0000), s(1024, 12, 0x0101_0000)];
        let refs: Vec<&Sample> = a.iter().collect();
        let r = SmoothRun::new(&refs, &[0, 0, 0]);
        assert_eq!((r.default_duration, r.default_size, r.default_flags), (Some(1024), None, Some(0x0101_0000)));
        assert_eq!(r.trun.first_sample_flags, Some(0x0200_0000));
        assert_eq!(r.trun.flags, trun_flags::DATA_OFFSET | trun_flags::FIRST_SAMPLE_FLAGS | trun_flags::SIZE);
        let r = SmoothRun::new(&refs[..1], &[5]);
        assert_eq!(r.default_flags, Some(0x0200_0000));
        assert_eq!(r.trun.entries[0].cto, Some(5));
    }
}
