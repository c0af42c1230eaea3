//! Subtitles: WebVTT and TTML/IMSC1 side files of an asset, read into one cue list and
//! written out as WebVTT — whole (DASH sidecar) or cut into segments that line up with the
//! video's (HLS subtitle renditions, RFC 8216 3.5) — and as IMSC1 in fMP4 segments lined up
//! the same way (DASH `stpp`, [`stpp`] and [`imsc1`]).
//!
//! Text is never encrypted (Common Encryption covers audio and video samples only) and is
//! small: a whole file is read and parsed once per asset version, within [`TextLimits`], and
//! every output is written from the parsed cues. Parsing is strict about what could make the
//! output ambiguous (a file that is not WebVTT or TTML, a timestamp past
//! [`TextLimits::max_time_ms`]) and permissive about the rest, as the WebVTT parsing
//! algorithm is: a cue block whose timing line does not parse is dropped, not fatal.

pub mod imsc1;
pub mod stpp;
pub mod ttml;
pub mod vtt;

use std::fmt::Write;

use crate::asset::{Asset, AssetTrack};
use crate::track::TrackKind;

/// The format of a subtitle file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFormat {
    /// W3C WebVTT (`.vtt`).
    WebVtt,
    /// W3C TTML / IMSC1 (`.ttml`, `.dfxp`).
    Ttml,
}

impl TextFormat {
    /// The format of a file named `name`, if it is a subtitle file.
    pub fn of_file(name: &str) -> Option<TextFormat> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "vtt" => Some(TextFormat::WebVtt),
            "ttml" | "dfxp" => Some(TextFormat::Ttml),
            _ => None,
        }
    }
}

/// Bounds on what one subtitle file may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    /// Largest file read (the caller checks the listed size before reading).
    pub max_bytes: u64,
    /// Most cues kept.
    pub max_cues: usize,
    /// Latest cue time accepted, in milliseconds (a timestamp past it is an error).
    pub max_time_ms: u64,
    /// Deepest TTML element nesting.
    pub max_depth: usize,
}

impl Default for TextLimits {
    /// 4 MiB, 100 000 cues, 100 hours, 64 levels: a feature film's subtitles are
    /// typically under 200 KB and 2 000 cues.
    fn default() -> Self {
        TextLimits { max_bytes: 4 << 20, max_cues: 100_000, max_time_ms: 100 * 3600 * 1000, max_depth: 64 }
    }
}

/// Why a subtitle file cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// Not a document of its format.
    #[error("not {format}: {detail}")]
    Malformed {
        /// `WebVTT` or `TTML`.
        format: &'static str,
        /// What was wrong (with a line number or byte offset where known).
        detail: String,
    },
    /// Over a [`TextLimits`] bound.
    #[error("over a limit: {0}")]
    Limit(String),
}

/// One cue: a time span and its WebVTT payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// Identifier (WebVTT cue identifier line), if any.
    pub id: Option<String>,
    /// Start, milliseconds on the presentation timeline.
    pub start_ms: u64,
    /// End, milliseconds (greater than `start_ms`).
    pub end_ms: u64,
    /// WebVTT cue settings (`line:10% align:start`), single line, may be empty.
    pub settings: String,
    /// WebVTT cue payload: markup allowed, no blank line, no line containing `-->`.
    pub text: String,
}

/// A parsed subtitle document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextDoc {
    /// WebVTT `STYLE` and `REGION` blocks to repeat at the head of every file written, each
    /// ending with a blank line.
    pub header: String,
    /// Cues in start order.
    pub cues: Vec<Cue>,
    /// The document's own language (`xml:lang` of a TTML root), if any.
    pub language: Option<String>,
}

impl TextDoc {
    /// Parses `bytes` as `format`.
    pub fn parse(bytes: &[u8], format: TextFormat, limits: TextLimits) -> Result<TextDoc, TextError> {
        if bytes.len() as u64 > limits.max_bytes {
            return Err(TextError::Limit(format!("{} bytes, more than {}", bytes.len(), limits.max_bytes)));
        }
        let mut doc = match format {
            TextFormat::WebVtt => vtt::parse(bytes, limits)?,
            TextFormat::Ttml => ttml::parse(bytes, limits)?,
        };
        // Stable: cues starting together keep their document order.
        doc.cues.sort_by_key(|c| c.start_ms);
        Ok(doc)
    }

    /// Bytes held, for cache weights.
    pub fn weight(&self) -> usize {
        self.header.len() + self.cues.iter().map(|c| 64 + c.text.len() + c.settings.len() + c.id.as_ref().map_or(0, String::len)).sum::<usize>()
    }

    /// The whole document as WebVTT.
    pub fn to_webvtt(&self) -> String {
        self.write(None, 0, u64::MAX)
    }

    /// A WebVTT segment: the cues overlapping `[start_ms, end_ms)` with their full times (a cue
    /// crossing a boundary is in both segments, as HLS players expect, and they drop the
    /// repeat), headed by `X-TIMESTAMP-MAP` mapping cue time 0 to MPEG-2 time `mpegts`
    /// (90 kHz, RFC 8216 3.5).
    pub fn segment(&self, start_ms: u64, end_ms: u64, mpegts: u64) -> String {
        self.write(Some(mpegts), start_ms, end_ms)
    }

    fn write(&self, mpegts: Option<u64>, start_ms: u64, end_ms: u64) -> String {
        let mut s = String::with_capacity(64 + self.header.len());
        s.push_str("WEBVTT\n");
        if let Some(m) = mpegts {
            let _ = writeln!(s, "X-TIMESTAMP-MAP=MPEGTS:{m},LOCAL:00:00:00.000");
        }
        s.push('\n');
        s.push_str(&self.header);
        // Cues are sorted by start: stop at the first starting at or after the window.
        for c in self.cues.iter().take_while(|c| c.start_ms < end_ms).filter(|c| c.end_ms > start_ms) {
            if let Some(id) = &c.id {
                s.push_str(id);
                s.push('\n');
            }
            s.push_str(&timestamp(c.start_ms));
            s.push_str(" --> ");
            s.push_str(&timestamp(c.end_ms));
            if !c.settings.is_empty() {
                s.push(' ');
                s.push_str(&c.settings);
            }
            s.push('\n');
            s.push_str(&c.text);
            s.push_str("\n\n");
        }
        s
    }
}

/// A WebVTT timestamp, `HH:MM:SS.mmm` (hours grow past two digits when they must).
pub fn timestamp(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// A subtitle track of an asset: one side file, its language and its parsed cues (or why
/// it could not be parsed: the asset's audio and video are served anyway, and this track's
/// URLs answer the error).
#[derive(Debug, Clone)]
pub struct TextTrack {
    /// URL-safe name, unique among the asset's tracks.
    pub name: String,
    /// File name in the asset folder.
    pub file: String,
    /// Source format.
    pub format: TextFormat,
    /// Language tag, from the `.ism`, the file name or the document.
    pub language: Option<String>,
    /// The cues, or the parse error.
    pub doc: Result<std::sync::Arc<TextDoc>, TextError>,
}

impl TextTrack {
    /// A track for `file` (`bytes` its content) with the language the `.ism` gave it, if any.
    /// The language falls back to the file name (`movie.en.vtt`, `movie_fr.ttml`), then to the
    /// document's `xml:lang`; only plain language tags are kept ([`crate::lang::is_tag`]).
    pub fn new(file: &str, bytes: &[u8], ism_language: Option<&str>, limits: TextLimits) -> Option<TextTrack> {
        let format = TextFormat::of_file(file)?;
        let doc = TextDoc::parse(bytes, format, limits).map(std::sync::Arc::new);
        let from_doc = doc.as_ref().ok().and_then(|d| d.language.clone());
        let language = ism_language.map(str::to_string).or_else(|| language_from_name(file)).or(from_doc).filter(|l| crate::lang::is_tag(l));
        Some(TextTrack { name: String::new(), file: file.to_string(), format, language, doc })
    }

    /// Bytes held, for cache weights.
    pub fn weight(&self) -> usize {
        256 + self.doc.as_ref().map_or(0, |d| d.weight())
    }

    /// `BANDWIDTH` to declare: the densest 10 s of cue text, at least 256 bit/s.
    pub fn bandwidth(&self) -> u32 {
        let Ok(d) = &self.doc else { return 256 };
        let bytes = d.cues.iter().map(|c| c.text.len() + 40).max().unwrap_or(0) as u64;
        ((bytes * 8 * 4).max(256)).min(u32::MAX as u64) as u32
    }
}

/// The language a subtitle file name carries: the last `.`- or `_`-separated part of its stem
/// when that is a 2- or 3-letter code or a short BCP 47 tag (`en`, `fra`, `pt-BR`).
pub fn language_from_name(file: &str) -> Option<String> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    let (_, tail) = stem.rsplit_once(['.', '_'])?;
    let mut parts = tail.split('-');
    let primary = parts.next()?;
    let ok_primary = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let ok_rest = parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    (ok_primary && ok_rest).then(|| tail.to_string())
}

/// The `textstream` entries of a server manifest: `(src, systemLanguage)`. The `.ism` reader
/// proper ([`crate::ism::parse`]) keeps to audio and video.
pub fn ism_text_streams(xml: &[u8]) -> Vec<(String, Option<String>)> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        let ev = match r.read_event_into(&mut buf) {
            Ok(Event::Eof) | Err(_) => break,
            Ok(ev) => ev,
        };
        if let Event::Start(e) | Event::Empty(e) = &ev {
            if e.local_name().as_ref() == b"textstream" {
                let get = |n: &[u8]| e.attributes().flatten().find(|a| a.key.local_name().as_ref() == n).and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                if let Some(src) = get(b"src") {
                    out.push((src, get(b"systemLanguage")));
                }
            }
        }
        buf.clear();
    }
    out
}

/// The segments subtitles are cut into, taken from the asset's reference track (the first
/// video rendition the output lists, else the first audio track) so they line up with it.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTimeline {
    /// Each segment's duration in seconds (the reference playlist's `EXTINF`s).
    pub durations: Vec<f64>,
    /// Segment `i` holds the cues overlapping `[bounds[i], bounds[i + 1])`, milliseconds; the
    /// first bound is 0 and the last is `u64::MAX`, so no cue is left out.
    pub bounds: Vec<u64>,
}

impl TextTimeline {
    /// The timeline of `asset` after its first video track that `prefer` admits (H.264 and
    /// AAC, which both HLS flavours list, so the fMP4 and TS subtitle playlists agree), else
    /// its first audio track `prefer` admits; unless `only` (a TS presentation, which has
    /// nothing else), then its first video, then its first audio track.
    pub fn of(asset: &Asset, prefer: impl Fn(&AssetTrack) -> bool, only: bool) -> Option<TextTimeline> {
        let first = |kind: TrackKind, p: &dyn Fn(&AssetTrack) -> bool| asset.tracks.iter().find(|t| t.kind() == kind && p(t));
        let any = |_: &AssetTrack| !only;
        let r = first(TrackKind::Video, &prefer).or_else(|| first(TrackKind::Video, &any)).or_else(|| first(TrackKind::Audio, &prefer)).or_else(|| first(TrackKind::Audio, &any))?;
        let ts = r.track().info.timescale.max(1) as u128;
        let zero = r.track().info.media_time.max(0) as i128;
        let mut bounds = vec![0u64];
        for s in r.segments.iter().skip(1) {
            let rel = (s.pres_time as i128 - zero).max(0) as u128;
            let ms = (rel * 1000 / ts).min(u64::MAX as u128 - 1) as u64;
            bounds.push(ms.max(*bounds.last().unwrap_or(&0)));
        }
        bounds.push(u64::MAX);
        let durations = r.segments.iter().map(|s| s.duration as f64 / ts as f64).collect();
        Some(TextTimeline { durations, bounds })
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.durations.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.durations.is_empty()
    }

    /// The `[start, end)` window of segment `i` (from 0), milliseconds.
    pub fn window(&self, i: usize) -> Option<(u64, u64)> {
        Some((*self.bounds.get(i)?, *self.bounds.get(i + 1)?))
    }

    /// The `[start, end)` span of sample `i` of the `stpp` track, milliseconds: the window,
    /// but the last one ends with the reference segment's duration (not at `u64::MAX`), and
    /// every span lasts at least 1 ms (a DASH `S@d` of 0 is not allowed). What the MPD's
    /// `SegmentTimeline` and the segment's `tfdt`/`trun` both say.
    pub fn sample_span(&self, i: usize) -> Option<(u64, u64)> {
        let (start, end) = self.window(i)?;
        let end = if end == u64::MAX { start.saturating_add((self.durations.get(i)? * 1000.0).round().max(0.0) as u64) } else { end };
        Some((start, end.max(start.saturating_add(1))))
    }
}

/// The VOD media playlist of a subtitle rendition: one `{prefix}{n}.vtt` per segment of
/// `timeline` (RFC 8216 4.3.3; WebVTT segments need no `EXT-X-MAP`).
pub fn write_playlist(timeline: &TextTimeline, prefix: &str) -> String {
    let target = timeline.durations.iter().map(|d| d.round() as u64).max().unwrap_or(1).max(1);
    let mut s = String::with_capacity(128 + timeline.len() * 24);
    let _ = write!(s, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for (i, d) in timeline.durations.iter().enumerate() {
        let _ = writeln!(s, "#EXTINF:{d:.5},\n{prefix}{}.{}", i + 1, crate::names::SEGMENT_VTT);
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

/// The segment name prefix of the MPEG-TS timeline (`ts{n}.vtt`).
pub fn vtt_prefix_ts() -> &'static str {
    crate::names::TEXT_TS_PREFIX
}

/// Names `texts` after their files (`subs.en.vtt` → `subs_en`), unique among themselves and
/// the asset's media tracks and never a reserved name; returns them in file-name order.
pub fn name_tracks(asset: &Asset, mut texts: Vec<TextTrack>) -> Vec<TextTrack> {
    texts.sort_by(|a, b| a.file.cmp(&b.file));
    let mut taken: Vec<String> = asset.tracks.iter().map(|t| t.name.clone()).collect();
    for t in &mut texts {
        let base = t.file.rsplit('/').next().unwrap_or(&t.file);
        let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
        let name: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
        let mut unique = name.clone();
        let mut n = 2;
        while unique.is_empty() || taken.contains(&unique) || matches!(unique.as_str(), "manifest" | "master" | "cenc" | "cbcs" | "aes") {
            unique = format!("{name}_{n}");
            n += 1;
        }
        taken.push(unique.clone());
        t.name = unique;
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_languages() {
        assert_eq!(language_from_name("movie.en.vtt").as_deref(), Some("en"));
        assert_eq!(language_from_name("movie_fr.ttml").as_deref(), Some("fr"));
        assert_eq!(language_from_name("movie.pt-BR.vtt").as_deref(), Some("pt-BR"));
        assert_eq!(language_from_name("x/movie_fra.dfxp").as_deref(), Some("fra"));
        assert_eq!(language_from_name("movie.vtt"), None);
        assert_eq!(language_from_name("my_movie.vtt"), None);
        assert_eq!(language_from_name("movie.EN.vtt"), None);
    }

    #[test]
    fn language_order_ism_then_name_then_document() {
        let ttml = br#"<tt xmlns="http://www.w3.org/ns/ttml" xml:lang="de"><body><div><p begin="1s" end="2s">x</p></div></body></tt>"#;
        let l = TextLimits::default();
        assert_eq!(TextTrack::new("a_fr.ttml", ttml, Some("swe"), l).unwrap().language.as_deref(), Some("swe"));
        assert_eq!(TextTrack::new("a_fr.ttml", ttml, None, l).unwrap().language.as_deref(), Some("fr"));
        assert_eq!(TextTrack::new("a.ttml", ttml, None, l).unwrap().language.as_deref(), Some("de"));
        assert!(TextTrack::new("a.mp4", ttml, None, l).is_none());
    }

    #[test]
    fn ism_textstreams() {
        let x = br#"<smil><body><switch><video src="v.mp4"/><textstream src="subs.vtt" systemLanguage="eng"/><textstream src="t.ttml"/></switch></body></smil>"#;
        assert_eq!(ism_text_streams(x), vec![("subs.vtt".to_string(), Some("eng".to_string())), ("t.ttml".to_string(), None)]);
    }

    #[test]
    fn segments_repeat_cues_across_boundaries() {
        let doc = TextDoc::parse(b"WEBVTT\n\n1\n00:00:01.000 --> 00:00:03.000 line:10%\nA <b>b</b>\n\n00:00:04.500 --> 00:00:05.000\nC\n", TextFormat::WebVtt, TextLimits::default()).unwrap();
        let s1 = doc.segment(0, 2000, 900000);
        assert_eq!(s1, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n1\n00:00:01.000 --> 00:00:03.000 line:10%\nA <b>b</b>\n\n");
        let s2 = doc.segment(2000, 4000, 0);
        assert!(s2.contains("00:00:01.000 --> 00:00:03.000") && !s2.contains("\nC\n"));
        let s3 = doc.segment(4000, u64::MAX, 0);
        assert!(s3.ends_with("00:00:04.500 --> 00:00:05.000\nC\n\n") && !s3.contains("A <b>"));
        assert_eq!(doc.segment(6000, 8000, 0), "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n");
    }

    #[test]
    fn stpp_spans_end_with_the_last_segment() {
        let tl = TextTimeline { durations: vec![2.0, 2.0, 1.5], bounds: vec![0, 2000, 4000, u64::MAX] };
        let spans: Vec<_> = (0..4).map(|i| tl.sample_span(i)).collect();
        assert_eq!(spans, [Some((0, 2000)), Some((2000, 4000)), Some((4000, 5500)), None]);
        // Never empty, even where two reference segments start together.
        let tl = TextTimeline { durations: vec![0.0, 1.0], bounds: vec![0, 0, u64::MAX] };
        assert_eq!(tl.sample_span(0), Some((0, 1)));
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "00:00:00.000");
        assert_eq!(timestamp(3_723_004), "01:02:03.004");
        assert_eq!(timestamp(100 * 3_600_000), "100:00:00.000");
    }
}
