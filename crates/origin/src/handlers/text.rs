//! Subtitle tracks: HLS subtitle playlists and WebVTT segments lined up with the video's,
//! and for DASH the whole track as WebVTT and IMSC1 in fMP4 (`stpp`) segments lined up like
//! the HLS ones. Never encrypted; what the policy allows was decided already
//! ([`crate::decide`]).

use bytes::Bytes;
use sealcast_package::manifest::hls;
use sealcast_package::text::{self, stpp, TextTimeline, TextTrack};
use sealcast_package::ts;

use super::{Ctx, Reply, HLS_TYPE};
use crate::assets::Loaded;
use crate::error::ApiError;
use crate::respond::Cached;
use crate::route::{Container, TextFile};

/// Content-Type of WebVTT files.
pub const VTT_TYPE: &str = "text/vtt; charset=utf-8";
/// Content-Type of the IMSC1-in-fMP4 init and media segments (RFC 6381 `application/mp4`).
pub const STPP_TYPE: &str = stpp::MIME;

/// MPEG-2 time (90 kHz) our TS muxer gives presentation time 0: its constant offset of 10 s
/// (`sealcast_package::ts`, which also takes the edit list's media time off), so
/// `X-TIMESTAMP-MAP` of the TS timeline maps cue time 0 there. On the fMP4 timeline the value
/// is 0: players put the media's decode time 0 (`tfdt`) at cue time 0 and the browser applies
/// the init segment's edit list to the samples, so presentation time 0 lands there too
/// (measured: hls.js and shaka in Chromium on `progressive/faststart`, whose 2-frame edit list
/// put every cue 80 ms late while the value was the edit's media time).
pub const TS_MPEGTS_ZERO: u64 = 900_000;

/// Answers a subtitle resource.
pub fn text(ctx: &Ctx<'_>, loaded: &Loaded, name: &str, file: TextFile) -> Result<Reply, ApiError> {
    let t = loaded.asset.text(name).ok_or_else(|| ApiError::NotFound(format!("track '{name}'")))?;
    let doc = t.doc.as_ref().map_err(|e| ApiError::Content { asset: loaded.path.clone(), detail: format!("{}: {e}", t.file) })?;
    let identity = identity(loaded, t);
    let modified = loaded.files.get(&t.file).map_or(loaded.last_modified, |o| o.last_modified);
    match file {
        TextFile::Whole => {
            if let Some(r) = ctx.unchanged(&identity, VTT_TYPE, modified) {
                return Ok(r);
            }
            Ok(Reply::Media { parts: vec![Bytes::from(doc.to_webvtt())], content_type: VTT_TYPE, identity, modified })
        }
        TextFile::Playlist(c) => {
            let tl = timeline(loaded, c)?;
            let prefix = if c == Container::Ts { text::vtt_prefix_ts() } else { "" };
            let body = text::write_playlist(&tl, prefix);
            let etag = crate::respond::etag(&identity, &format!("text/{name}/{c:?}"));
            Ok(match &ctx.carry {
                // A signed-URL credential goes on to the segment URIs, as for media playlists.
                Some(c) => Reply::Private { body: hls::carry_query_media(body.as_bytes(), &c.0), content_type: HLS_TYPE },
                None => Reply::Manifest { cached: std::sync::Arc::new(Cached::new(Bytes::from(body), etag)), content_type: HLS_TYPE, last_modified: loaded.last_modified_header.clone() },
            })
        }
        TextFile::Segment(c, n) => {
            let tl = timeline(loaded, c)?;
            let (start, end) = tl.window(n - 1).ok_or_else(|| ApiError::NotFound(format!("segment {n} of track '{name}'")))?;
            if let Some(r) = ctx.unchanged(&identity, VTT_TYPE, modified) {
                return Ok(r);
            }
            let mpegts = if c == Container::Ts { TS_MPEGTS_ZERO } else { 0 };
            Ok(Reply::Media { parts: vec![Bytes::from(doc.segment(start, end, mpegts))], content_type: VTT_TYPE, identity, modified })
        }
        TextFile::StppInit => {
            if let Some(r) = ctx.unchanged(&identity, STPP_TYPE, modified) {
                return Ok(r);
            }
            let lang = sealcast_package::lang::iso639_2t(t.language.as_deref().unwrap_or_default());
            Ok(Reply::Media { parts: vec![Bytes::from(stpp::init_segment(lang))], content_type: STPP_TYPE, identity, modified })
        }
        TextFile::StppSegment(n) => {
            // The fMP4 timeline's segments: the MPD writer lines the text up with the same.
            let tl = timeline(loaded, Container::Fmp4)?;
            let (start, end) = tl.sample_span(n - 1).ok_or_else(|| ApiError::NotFound(format!("segment {n} of track '{name}'")))?;
            if let Some(r) = ctx.unchanged(&identity, STPP_TYPE, modified) {
                return Ok(r);
            }
            let lang = t.language.as_deref().map(sealcast_package::lang::bcp47).unwrap_or_default();
            let document = doc.imsc1(start, end, &lang);
            // A window of a document of at most `TextLimits::max_bytes` (4 MiB) cues: u32 fits.
            let (Ok(seq), Ok(dur)) = (u32::try_from(n), u32::try_from(end - start)) else {
                return Err(ApiError::NotFound(format!("segment {n} of track '{name}'")));
            };
            Ok(Reply::Media { parts: vec![Bytes::from(stpp::media_segment(seq, start, dur, document.as_bytes()))], content_type: STPP_TYPE, identity, modified })
        }
    }
}

/// What a subtitle output derives from: the text file and the asset's media (segment
/// boundaries come from the video).
fn identity(loaded: &Loaded, t: &TextTrack) -> String {
    let file = loaded.files.get(&t.file).map(|o| o.identity()).unwrap_or_default();
    format!("text:{file}\n{}", loaded.identity)
}

/// The segments subtitles are cut into: after the first H.264 rendition (which both
/// multivariant playlists list), else (fMP4) the first video, else the first audio track TS
/// carries (an HEVC-only asset's TS presentation is audio only), else (fMP4) any audio.
fn timeline(loaded: &Loaded, container: Container) -> Result<TextTimeline, ApiError> {
    TextTimeline::of(&loaded.asset, ts::carries, container == Container::Ts).ok_or_else(|| ApiError::NotFound(format!("no rendition of '{}' to align subtitles with", loaded.path)))
}
