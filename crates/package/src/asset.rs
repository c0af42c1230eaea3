//! An asset: the tracks of its files, named, ordered and cut into segments.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::{FileIndex, TrackIndex};
use crate::ism::IsmTrack;
use crate::timeline::{plan_within, Segment, SegmentLimits};
use crate::track::TrackKind;

/// Packaging settings that shape manifests and segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageOptions {
    /// Target segment duration in milliseconds (segments are whole fragments, cut on keyframes).
    pub segment_target_ms: u32,
    /// Caps on one segment's duration and source bytes (see [`crate::timeline`]).
    pub segment_limits: SegmentLimits,
    /// A progressive track's byte runs closer than this are fetched by one ranged read
    /// ([`AssetTrack::source_reads`]).
    pub read_gap: u64,
    /// Which subtitle formats the MPD offers.
    pub dash_text: DashText,
}

/// The Representations of a DASH text AdaptationSet. Players that list a track per
/// Representation (shaka-player, unless told `preferredTextFormats`) show each language once
/// per format when both are offered; those that list one per AdaptationSet (dash.js) pick one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DashText {
    /// WebVTT sidecar and IMSC1 in fMP4 (`stpp`): every player finds a format it reads
    /// (TV platforms such as HbbTV read only the second).
    #[default]
    Both,
    /// The WebVTT sidecar only.
    WebVtt,
    /// IMSC1 in fMP4 (`stpp`) only.
    Imsc1,
}

/// Default [`PackageOptions::read_gap`]: 256 KiB. A ranged GET to object storage costs a
/// round trip of tens of milliseconds, in which a few hundred kilobytes would have arrived:
/// reading another track's bytes up to that size is cheaper than another request.
pub const DEFAULT_READ_GAP: u64 = 256 << 10;

impl Default for PackageOptions {
    fn default() -> Self {
        PackageOptions { segment_target_ms: 2000, segment_limits: SegmentLimits::default(), read_gap: DEFAULT_READ_GAP, dash_text: DashText::Both }
    }
}

/// One servable track of an asset.
#[derive(Debug, Clone)]
pub struct AssetTrack {
    /// URL-safe name, unique in the asset (file stem, plus `_{trackID}` for multi-track files).
    pub name: String,
    /// The file it comes from, relative to the asset folder.
    pub file: String,
    index: Arc<FileIndex>,
    slot: usize,
    /// Language (ISO 639-2), from the `.ism` or the track.
    pub language: Option<String>,
    /// Segments.
    pub segments: Vec<Segment>,
    /// Peak segment bitrate, bits per second.
    pub bandwidth: u32,
    /// Average bitrate over the track.
    pub avg_bandwidth: u32,
    /// Frame rate as a fraction (video).
    pub frame_rate: Option<(u32, u32)>,
    /// Total duration in the track timescale.
    pub duration: u64,
    /// See [`PackageOptions::read_gap`].
    read_gap: u64,
}

impl AssetTrack {
    /// The track's index entry.
    pub fn track(&self) -> &TrackIndex {
        &self.index.tracks[self.slot]
    }
    /// See [`FileIndex::media_bytes_estimated`].
    pub fn media_bytes_estimated(&self) -> bool {
        self.index.media_bytes_estimated()
    }
    /// Kind.
    pub fn kind(&self) -> TrackKind {
        self.track().info.kind
    }
    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.duration as f64 / self.track().info.timescale as f64
    }
    /// Fragments whose decode span overlaps `[start, end)` (track timescale), with the byte
    /// range `[start, end)` they occupy in the source file.
    pub fn fragments_between(&self, start: u64, end: u64) -> Option<(std::ops::Range<usize>, u64, u64)> {
        let f = &self.track().fragments;
        let first = f.iter().position(|x| x.decode_time.saturating_add(x.duration) > start)?;
        let last = f.iter().rposition(|x| x.decode_time < end)?;
        (first <= last).then(|| {
            let (s, e) = span(&f[first..=last]);
            (first..last + 1, s, e)
        })
    }

    /// How far decode times must move back so no presentation time precedes its decode time
    /// (negative composition offsets, `trun` v1). Constant per track, so timestamps stay
    /// continuous across segments; MPEG-TS needs it.
    pub fn dts_shift(&self) -> u64 {
        self.track().fragments.iter().map(|f| f.min_cto).min().unwrap_or(0).min(0).unsigned_abs()
    }

    /// The ranged reads that fetch fragments `frags` of the track, within the span
    /// [`Self::fragments_between`] / [`Self::segment_range`] give. Fragmented input: that one
    /// span (a fragment's `moof` and `mdat` are contiguous). Progressive input: the track's
    /// runs of adjacent samples, merged while the gap between two is under
    /// [`PackageOptions::read_gap`] — so with fine interleaving (ffmpeg: a chunk per frame)
    /// still the one span, and with coarse interleaving (a second of video between audio
    /// chunks) the audio without the video. Sorted, disjoint; `None` for unknown fragments.
    pub fn source_reads(&self, frags: std::ops::Range<usize>) -> Option<Vec<std::ops::Range<u64>>> {
        let f = self.track().fragments.get(frags.clone())?;
        if f.is_empty() {
            return None;
        }
        let Some(table) = &self.track().samples else {
            let (s, e) = span(f);
            // One read of the span (a Vec of one range, not the range expanded).
            return Some(std::iter::once(s..e).collect());
        };
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (k, x) in f.iter().enumerate() {
            if frags.start + k < table.fragments() {
                runs.extend(table.byte_runs(frags.start + k, x));
            } else {
                // A movie fragment after the moov's samples: its moof and mdat, whole.
                runs.push((x.offset, x.offset.saturating_add(x.size)));
            }
        }
        Some(crate::progressive::coalesce(runs, self.read_gap))
    }

    /// [`Self::source_reads`] of segment `i`.
    pub fn segment_reads(&self, i: usize) -> Option<Vec<std::ops::Range<u64>>> {
        let s = self.segments.get(i)?;
        self.source_reads(s.first..s.first + s.count)
    }

    /// Byte range `[start, end)` of segment `i` in the source file.
    pub fn segment_range(&self, i: usize) -> Option<(u64, u64)> {
        let s = self.segments.get(i)?;
        let f = self.track().fragments.get(s.first..s.first + s.count)?;
        (!f.is_empty()).then(|| span(f))
    }
}

/// An asset ready to package.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Tracks: video by ascending bandwidth, then audio in manifest (or name) order.
    pub tracks: Vec<AssetTrack>,
    /// Subtitle tracks (side files), in file-name order; see [`Asset::with_texts`].
    pub texts: Vec<crate::text::TextTrack>,
    /// See [`PackageOptions::dash_text`].
    pub dash_text: DashText,
}

/// A track file with its index, as the caller read it.
pub struct SourceFile {
    /// Name relative to the asset folder.
    pub name: String,
    /// Its index.
    pub index: Arc<FileIndex>,
}

impl Asset {
    /// Builds an asset from its indexed files and, when present, its `.ism` tracks.
    pub fn build(files: &[SourceFile], ism: Option<&[IsmTrack]>, opts: PackageOptions) -> Result<Asset> {
        let mut picked: Vec<(usize, usize, Option<String>)> = Vec::new();
        match ism {
            Some(list) => {
                for t in list {
                    let fi = files.iter().position(|f| f.name == t.src).ok_or_else(|| Error::Ism(format!("'{}' names a file that is not in the asset", t.src)))?;
                    let idx = &files[fi].index;
                    let slots: Vec<usize> = idx.tracks.iter().enumerate().filter(|(_, x)| x.info.kind == t.kind && t.track_id.is_none_or(|id| id == x.info.track_id)).map(|(i, _)| i).collect();
                    if slots.is_empty() {
                        return Err(Error::Ism(format!("'{}' has no {} track{}", t.src, t.kind.as_str(), t.track_id.map(|i| format!(" with ID {i}")).unwrap_or_default())));
                    }
                    for s in slots {
                        if !picked.iter().any(|p| p.0 == fi && p.1 == s) {
                            picked.push((fi, s, t.language.clone()));
                        }
                    }
                }
            }
            None => {
                for (fi, f) in files.iter().enumerate() {
                    for s in 0..f.index.tracks.len() {
                        picked.push((fi, s, None));
                    }
                }
            }
        }
        let mut tracks: Vec<AssetTrack> = Vec::with_capacity(picked.len());
        for (fi, slot, lang) in picked {
            let f = &files[fi];
            let t = &f.index.tracks[slot];
            let stem = f.name.rsplit('/').next().unwrap_or(&f.name);
            let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
            let mut name: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
            if f.index.tracks.len() > 1 {
                name = format!("{name}_{}", t.info.track_id);
            }
            let mut unique = name.clone();
            let mut n = 2;
            while tracks.iter().any(|x| x.name == unique) || matches!(unique.as_str(), "manifest" | "master") {
                unique = format!("{name}_{n}");
                n += 1;
            }
            let ts = t.info.timescale as u128;
            let segments = plan_within(&t.fragments, t.info.timescale, opts.segment_target_ms, opts.segment_limits).map_err(|e| match e {
                Error::Limit(m) => Error::Limit(format!("track {}: {m}", t.info.track_id)),
                other => other,
            })?;
            // What we will serve: styp, then per fragment our moof (at most ~100 bytes plus 16
            // per sample), the mdat header and this track's samples. Single-track sources
            // already hold their own moof in `bytes`; multi-track ones need the estimate.
            let frag_samples = |s: &Segment| t.fragments[s.first..s.first + s.count].iter().map(|f| 108 + 16 * f.samples as u64).sum::<u64>();
            let bytes = |s: &Segment| 28 + if f.index.media_bytes_estimated() { s.bytes + 64 * s.count as u64 } else { s.media_bytes + frag_samples(s) };
            let duration: u64 = t.fragments.iter().fold(0u64, |a, f| a.saturating_add(f.duration));
            let rate = |b: u64, d: u64| if d == 0 { 0 } else { (b as u128 * 8 * ts / d as u128).min(u32::MAX as u128) as u32 };
            let bandwidth = segments.iter().map(|s| rate(bytes(s), s.duration)).max().unwrap_or(0).max(1);
            let avg_bandwidth = rate(segments.iter().map(bytes).sum(), duration).max(1);
            let frame_rate = (t.info.kind == TrackKind::Video)
                .then(|| t.fragments.iter().find(|f| f.samples > 0 && f.duration > 0))
                .flatten()
                .map(|f| reduce(f.samples as u64 * t.info.timescale as u64, f.duration));
            tracks.push(AssetTrack {
                name: unique,
                file: f.name.clone(),
                index: f.index.clone(),
                slot,
                // A language from the server manifest is storage metadata: written into MPD and
                // playlist attributes and Smooth stream names, so anything but a plain language
                // tag is dropped (as if absent) rather than escaped in each writer.
                language: lang.filter(|l| crate::lang::is_tag(l)).or_else(|| t.info.language.clone()),
                segments,
                bandwidth,
                avg_bandwidth,
                frame_rate,
                duration,
                read_gap: opts.read_gap,
            });
        }
        if tracks.is_empty() {
            return Err(Error::Unsupported("asset has no tracks".into()));
        }
        // Stable order: video by bandwidth, audio as listed. sort_by_key is stable.
        tracks.sort_by_key(|t| match t.kind() {
            TrackKind::Video => (0, t.bandwidth),
            TrackKind::Audio => (1, 0),
        });
        Ok(Asset { tracks, texts: Vec::new(), dash_text: opts.dash_text })
    }

    /// The asset with subtitle tracks `texts`, named uniquely among all its tracks. Those
    /// that failed to parse stay listed here (their URLs answer the error) but manifests
    /// leave them out ([`Asset::listed_texts`]).
    pub fn with_texts(mut self, texts: Vec<crate::text::TextTrack>) -> Asset {
        self.texts = crate::text::name_tracks(&self, texts);
        self
    }

    /// The subtitle tracks manifests list: those that parsed.
    pub fn listed_texts(&self) -> impl Iterator<Item = &crate::text::TextTrack> {
        self.texts.iter().filter(|t| t.doc.is_ok())
    }

    /// Subtitle track by name.
    pub fn text(&self, name: &str) -> Option<&crate::text::TextTrack> {
        self.texts.iter().find(|t| t.name == name)
    }

    /// Track by name.
    pub fn track(&self, name: &str) -> Option<&AssetTrack> {
        self.tracks.iter().find(|t| t.name == name)
    }

    /// Longest track duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.tracks.iter().map(|t| t.duration_secs()).fold(0.0, f64::max)
    }
}

/// The bytes `[start, end)` fragments occupy in their file. Fragmented input has them in
/// order; a progressive track's fragments are the spans of its chunks, which an interleaving
/// writer may put in any order (in practice in order too).
///
/// The bytes a segment's samples are sliced from cover this span; what is read of it is
/// [`AssetTrack::source_reads`].
fn span(f: &[crate::index::Fragment]) -> (u64, u64) {
    f.iter().fold((u64::MAX, 0), |(s, e), x| (s.min(x.offset), e.max(x.offset.saturating_add(x.size))))
}

fn reduce(n: u64, d: u64) -> (u32, u32) {
    let g = gcd(n, d).max(1);
    let (n, d) = (n / g, d / g);
    (n.min(u32::MAX as u64) as u32, d.min(u32::MAX as u64) as u32)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
