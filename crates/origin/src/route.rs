//! The URL grammar: every URL the server answers, parsed once, with no IO, into a [`Route`].
//! Handlers never look at the path again; they get typed values.
//!
//! ```text
//! OPTIONS *                                          CORS preflight
//! POST /clearkey                                     ClearKey licence
//! GET  /key/{kid}                                    key delivery
//! GET  /healthz | /metrics
//! GET  /{asset}/manifest.mpd | master.m3u8 | master-ts.m3u8 | Manifest
//! GET  /{asset}/{track}[/{cenc|cbcs|aes}]/index.m3u8 | ts.m3u8 | init.mp4 | {n}.m4s | {n}.ts
//!      | iframes.m3u8 | iframes-ts.m3u8 | i{n}.m4s | i{n}.ts        (HLS I-frame playlists)
//! GET  /{asset}/{sub}/text.m3u8 | text-ts.m3u8 | {n}.vtt | ts{n}.vtt | text.vtt   subtitles
//! GET  /{asset}/QualityLevels({bitrate})/Fragments({stream}={time})          Smooth fragment
//! GET  /{asset}/{file}.mp4 (.m4v .m4a .cmfv .cmfa .ismv .isma)    progressive download
//! GET  /{locator}/{file}.mp4                           the same, AMS form
//! GET  /{locator}/{name}.ism/…                        Azure Media Services forms (crate::ams);
//!                                                    other paths under it as /{asset}/…
//! ```
//!
//! The asset is a folder path of any depth; a locator maps to one by configuration. `GET`
//! and `HEAD` share every route. A track may not be named `cenc`, `cbcs` or `aes`.

use std::collections::BTreeMap;

use http::Method;
use sealcast_package::names;
use sealcast_storage::{AssetPath, PathError};

use crate::ams::{self, AmsEncryption, AmsFormat, AmsKind};
use crate::error::ApiError;
use crate::protection::Encryption;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `OPTIONS` on any path: CORS preflight.
    Preflight,
    /// `POST /clearkey`: a W3C ClearKey licence request.
    ClearKey,
    /// `GET /key/{kid}`: the key bytes (the KID as given; key delivery parses it).
    Key(String),
    /// `GET /healthz`.
    Health,
    /// `GET /readyz`.
    Ready,
    /// `GET /metrics`.
    Metrics,
    /// Something of an asset.
    Asset(AssetRoute),
}

/// A resource of one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRoute {
    /// The asset's folder path under the storage root (a locator already mapped).
    pub asset: String,
    /// For URLs under an AMS locator: the `{name}.ism` given, which must name the asset's
    /// server manifest when it has one.
    pub ism: Option<String>,
    /// What of the asset.
    pub resource: Resource,
}

/// Which manifest of an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    /// DASH MPD.
    Mpd,
    /// HLS multivariant playlist over `container`.
    Master(Container),
    /// Smooth Streaming client manifest.
    Smooth,
}

/// Segment container of HLS outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// Fragmented MP4 / CMAF.
    Fmp4,
    /// MPEG-2 transport stream.
    Ts,
}

/// What of an asset a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// An asset-level manifest; `encryption` is the AMS `encryption=` choice, if any.
    Manifest {
        /// Which.
        kind: ManifestKind,
        /// AMS `encryption=`.
        encryption: Option<AmsEncryption>,
    },
    /// An HLS media playlist of a track.
    MediaPlaylist {
        /// Track name.
        track: String,
        /// Its segments' container.
        container: Container,
        /// `None`: the clear playlist; else under `{track}/{method}/`.
        method: Option<Encryption>,
    },
    /// A track's CMAF init segment.
    Init {
        /// Track name.
        track: String,
        /// `None`: clear; else under `{track}/{method}/`.
        method: Option<Encryption>,
    },
    /// A track's media segment `n` (from 1).
    Segment {
        /// Track name.
        track: String,
        /// `None`: clear; else under `{track}/{method}/`.
        method: Option<Encryption>,
        /// Segment number, from 1.
        n: usize,
        /// `.m4s` or `.ts`.
        container: Container,
    },
    /// The HLS I-frame playlist of a video track (`iframes.m3u8`, `iframes-ts.m3u8`).
    IFramePlaylist {
        /// Track name.
        track: String,
        /// Its I-frame segments' container.
        container: Container,
        /// `None`: clear; else under `{track}/{method}/`.
        method: Option<Encryption>,
    },
    /// The I-frame segment of segment `n` (`i{n}.m4s`, `i{n}.ts`): the key frame starting it.
    IFrameSegment {
        /// Track name.
        track: String,
        /// `None`: clear; else under `{track}/{method}/`.
        method: Option<Encryption>,
        /// Segment number, from 1.
        n: usize,
        /// `.m4s` or `.ts`.
        container: Container,
    },
    /// A Smooth Streaming fragment: the chunk at `time` of quality level `bitrate` of `stream`.
    SmoothFragment {
        /// Stream (track) name.
        stream: String,
        /// Quality level bitrate.
        bitrate: u32,
        /// Start time in the stream's timescale.
        time: u64,
    },
    /// An AMS fragment asking for `encryption=`: AMS fragments are served as the policy says,
    /// never chosen by the URL.
    AmsEncryptedFragment(AmsEncryption),
    /// A subtitle track's file: never encrypted, so never under a method path.
    Text {
        /// Subtitle track name.
        track: String,
        /// Which file.
        file: TextFile,
    },
    /// A track file of the asset, whole or ranged (progressive download).
    Download {
        /// File name in the asset folder.
        file: String,
    },
}

/// The files of a subtitle track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFile {
    /// HLS subtitle media playlist (`text.m3u8`; `text-ts.m3u8` on the MPEG-TS timeline).
    Playlist(Container),
    /// WebVTT segment `n` from 1 (`{n}.vtt`; `ts{n}.vtt` on the MPEG-TS timeline).
    Segment(Container, usize),
    /// The whole track as WebVTT (`text.vtt`, DASH).
    Whole,
    /// The IMSC1-in-fMP4 init segment (`stpp/init.mp4`, DASH).
    StppInit,
    /// IMSC1-in-fMP4 media segment `n` from 1 (`stpp/{n}.m4s`, DASH), lined up with the
    /// WebVTT segment `n`.
    StppSegment(usize),
}

/// Extensions of files that may be downloaded (the track files the origin indexes).
const DOWNLOAD_EXTS: [&str; 7] = ["mp4", "m4v", "m4a", "cmfv", "cmfa", "ismv", "isma"];

/// Whether `name` is a downloadable file name: a track file extension, and not the init
/// segment name of the track grammar (`{asset}/{track}/init.mp4`).
fn is_download(name: &str) -> bool {
    // The last dot found byte by byte: names are short, and `rsplit_once` searches through a
    // generic pattern (a fifth of a manifest route's instructions went there).
    let Some(dot) = name.bytes().rposition(|b| b == b'.') else { return false };
    let ext = &name.as_bytes()[dot + 1..];
    dot > 0 && name != names::INIT && DOWNLOAD_EXTS.iter().any(|d| d.as_bytes().eq_ignore_ascii_case(ext))
}

/// Parses a request line into a route. Refusals: 405 for methods other than `GET`, `HEAD`,
/// `OPTIONS` (and `POST /clearkey`), 400 for malformed paths and AMS forms, 404 for paths that
/// name nothing. `locators` maps AMS locator IDs to asset paths.
pub fn parse(method: &Method, path: &str, locators: &BTreeMap<String, String>) -> Result<Route, RouteError> {
    parse_with(method, path, &|id: &str| locators.get(id).map(|a| LocatorTarget::Asset(a.clone())))
}

/// What a locator ID names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocatorTarget {
    /// The asset at this path.
    Asset(String),
    /// A locator outside its time window (before its start, from its expiry on): its URLs
    /// answer 404.
    Closed,
}

/// [`parse`] with locators looked up by `locators` (configuration and catalog, with their
/// time windows).
pub fn parse_with(method: &Method, path: &str, locators: &dyn Fn(&str) -> Option<LocatorTarget>) -> Result<Route, RouteError> {
    if method == Method::OPTIONS {
        return Ok(Route::Preflight);
    }
    if method == Method::POST && path == "/clearkey" {
        return Ok(Route::ClearKey);
    }
    if method != Method::GET && method != Method::HEAD {
        return Err(RouteError::MethodNotAllowed);
    }
    if let Some(kid) = path.strip_prefix("/key/") {
        return Ok(Route::Key(kid.to_string()));
    }
    match path {
        "/metrics" => return Ok(Route::Metrics),
        "/healthz" => return Ok(Route::Health),
        "/readyz" => return Ok(Route::Ready),
        "/" => return Err(ApiError::NotFound("no asset named".into()).into()),
        _ => {}
    }
    let segs = AssetPath::segments_of(path).map_err(|e| match e {
        PathError::Traversal => ApiError::BadRequest("path traversal is not allowed".into()),
        _ => ApiError::BadRequest("malformed path".into()),
    })?;
    // Azure Media Services progressive download: /{locator}/{file}.mp4
    if segs.len() == 2 && is_download(&segs[1]) {
        match locators(&segs[0]) {
            Some(LocatorTarget::Asset(target)) => return Ok(Route::Asset(AssetRoute { asset: target, ism: None, resource: Resource::Download { file: segs[1].to_string() } })),
            Some(LocatorTarget::Closed) => return Err(ApiError::NotFound("this locator is not open (before its start time or after its expiry)".into()).into()),
            None => {}
        }
    }
    // Azure Media Services: /{locator}/{name}.ism/...
    if segs.len() >= 3 && segs[1].len() >= 4 && segs[1].as_bytes()[segs[1].len() - 4..].eq_ignore_ascii_case(b".ism") {
        if let Some(target) = locators(&segs[0]) {
            let LocatorTarget::Asset(target) = target else {
                return Err(ApiError::NotFound("this locator is not open (before its start time or after its expiry)".into()).into());
            };
            let ism = Some(segs[1].to_string());
            let bad = |e: ams::AmsError| ApiError::BadRequest(e.to_string());
            let segs: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
            return match ams::parse(&segs).map_err(bad)? {
                Some(req) => Ok(Route::Asset(AssetRoute { asset: target.clone(), ism, resource: ams_resource(path, req.kind)? })),
                // Anything else under the locator is the clean grammar under the asset, so
                // relative URLs in AMS-served manifests resolve.
                None => {
                    let joined: Vec<String> = target.split('/').map(str::to_string).chain(segs[2..].iter().cloned()).collect();
                    Ok(Route::Asset(AssetRoute { ism, ..clean(path, &joined)? }))
                }
            };
        }
    }
    Ok(Route::Asset(clean(path, &segs)?))
}

/// Why a URL has no route.
#[derive(Debug, Clone)]
pub enum RouteError {
    /// A method the server does not answer (405 with `Allow`).
    MethodNotAllowed,
    /// Malformed (400) or naming nothing (404).
    Api(ApiError),
}

impl From<ApiError> for RouteError {
    fn from(e: ApiError) -> Self {
        RouteError::Api(e)
    }
}

fn no_route(path: &str) -> ApiError {
    ApiError::NotFound(format!("no route for '{path}'"))
}

/// The resource an AMS form names (only manifests and Smooth fragments are served: our
/// manifests reference segments by the clean grammar).
fn ams_resource(path: &str, kind: AmsKind) -> Result<Resource, ApiError> {
    match kind {
        AmsKind::Manifest { format, encryption, .. } => {
            let kind = match format {
                AmsFormat::Smooth | AmsFormat::SmoothV20 => ManifestKind::Smooth,
                AmsFormat::HlsTs | AmsFormat::HlsTsV3 => ManifestKind::Master(Container::Ts),
                AmsFormat::HlsCmaf => ManifestKind::Master(Container::Fmp4),
                AmsFormat::DashCsf | AmsFormat::DashCmaf => ManifestKind::Mpd,
            };
            Ok(Resource::Manifest { kind, encryption })
        }
        AmsKind::Fragment { encryption: Some(e), .. } => Ok(Resource::AmsEncryptedFragment(e)),
        AmsKind::Fragment { bitrate, stream, time, format: None, encryption: None, .. } => Ok(Resource::SmoothFragment { stream, bitrate, time }),
        _ => Err(ApiError::NotFound(format!("no such resource '{path}'"))),
    }
}

/// The clean grammar over decoded path segments.
fn clean<S: std::borrow::Borrow<str>>(path: &str, segs: &[S]) -> Result<AssetRoute, ApiError> {
    let n = segs.len();
    let join = |r: std::ops::Range<usize>| segs[r].join("/");
    let at = |asset: String, resource: Resource| Ok(AssetRoute { asset, ism: None, resource });
    let seg = |i: usize| -> &str { segs[i].borrow() };
    let last = segs.last().map(|s| s.borrow()).unwrap_or_default();
    if n >= 2 {
        let kind = match last {
            names::SMOOTH => Some(ManifestKind::Smooth),
            names::MPD => Some(ManifestKind::Mpd),
            names::MASTER => Some(ManifestKind::Master(Container::Fmp4)),
            names::MASTER_TS => Some(ManifestKind::Master(Container::Ts)),
            _ => None,
        };
        if let Some(kind) = kind {
            return at(join(0..n - 1), Resource::Manifest { kind, encryption: None });
        }
    }
    if n >= 3 && seg(n - 2).starts_with("QualityLevels(") && last.starts_with("Fragments(") {
        // The clean Smooth form accepts what the AMS form does; an `encryption=` in it is
        // ignored (the policy decides).
        return match ams::quality_level_resource(seg(n - 2), last).map_err(|e| ApiError::BadRequest(e.to_string()))? {
            Some(AmsKind::Fragment { bitrate, stream, time, format: None, .. }) => at(join(0..n - 2), Resource::SmoothFragment { stream, bitrate, time }),
            _ => Err(no_route(path)),
        };
    }
    if n >= 2 && is_download(last) {
        return at(join(0..n - 1), Resource::Download { file: last.to_string() });
    }
    if n < 3 {
        return Err(no_route(path));
    }
    // `{asset}/{sub}/stpp/{init.mp4|n.m4s}`: a subtitle track as IMSC1 in fMP4 (never
    // encrypted, so never under a method path).
    if n >= 4 && seg(n - 2) == names::TEXT_STPP {
        let file = match last {
            names::INIT => TextFile::StppInit,
            _ => {
                let n = last.strip_suffix(names::SEGMENT_FMP4).and_then(|s| s.strip_suffix('.')).and_then(segment_number).filter(|n| *n > 0).ok_or_else(|| no_route(path))?;
                TextFile::StppSegment(n)
            }
        };
        return at(join(0..n - 3), Resource::Text { track: seg(n - 3).to_string(), file });
    }
    // `{asset}/{track}/{cenc|cbcs|aes}/{file}` or `{asset}/{track}/{file}`.
    let (asset, track, method) = match Encryption::from_path(seg(n - 2)) {
        Some(m) if n >= 4 => (join(0..n - 3), seg(n - 3).to_string(), Some(m)),
        _ => (join(0..n - 2), seg(n - 2).to_string(), None),
    };
    if let Some(file) = text_file(last) {
        // Subtitles are never encrypted: no method path, and segment 0 names nothing.
        if method.is_some() || matches!(file, Some(TextFile::Segment(_, 0))) {
            return Err(no_route(path));
        }
        let file = file.ok_or_else(|| no_route(path))?;
        return at(asset, Resource::Text { track, file });
    }
    let resource = match last {
        names::MEDIA_FMP4 => Resource::MediaPlaylist { track, container: Container::Fmp4, method },
        names::MEDIA_TS => Resource::MediaPlaylist { track, container: Container::Ts, method },
        names::INIT => Resource::Init { track, method },
        names::IFRAMES_FMP4 => Resource::IFramePlaylist { track, container: Container::Fmp4, method },
        names::IFRAMES_TS => Resource::IFramePlaylist { track, container: Container::Ts, method },
        _ => {
            let (stem, ext) = last.rsplit_once('.').ok_or_else(|| no_route(path))?;
            let container = match ext {
                names::SEGMENT_FMP4 => Container::Fmp4,
                names::SEGMENT_TS => Container::Ts,
                _ => return Err(no_route(path)),
            };
            let (iframe, stem) = match stem.strip_prefix(names::IFRAME_PREFIX) {
                Some(rest) => (true, rest),
                None => (false, stem),
            };
            let n = segment_number(stem).ok_or_else(|| no_route(path))?;
            if n == 0 {
                return Err(ApiError::NotFound(format!("segment 0 of track '{track}'")));
            }
            if iframe {
                Resource::IFrameSegment { track, method, n, container }
            } else {
                Resource::Segment { track, method, n, container }
            }
        }
    };
    at(asset, resource)
}

/// `Some` when `last` is a subtitle file name: `Some(Some(file))` when well formed, `Some(None)`
/// for a `.vtt` name that is not one of ours.
fn text_file(last: &str) -> Option<Option<TextFile>> {
    match last {
        names::TEXT_HLS => return Some(Some(TextFile::Playlist(Container::Fmp4))),
        names::TEXT_HLS_TS => return Some(Some(TextFile::Playlist(Container::Ts))),
        names::TEXT_WHOLE => return Some(Some(TextFile::Whole)),
        _ => {}
    }
    let stem = last.strip_suffix(names::SEGMENT_VTT)?.strip_suffix('.')?;
    Some(match stem.strip_prefix(names::TEXT_TS_PREFIX) {
        Some(n) => segment_number(n).map(|n| TextFile::Segment(Container::Ts, n)),
        None => segment_number(stem).map(|n| TextFile::Segment(Container::Fmp4, n)),
    })
}

/// The number in a segment name's stem (`{n}` of `{n}.m4s`): 1-9 ASCII digits, nothing else.
fn segment_number(stem: &str) -> Option<usize> {
    if stem.is_empty() || stem.len() > 9 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Parses arbitrary bytes as a path and `Range` header without panicking (fuzz entry point:
/// `fuzz/fuzz_targets/route.rs`, replayed by `tests/fuzz_replay.rs`).
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (path, range) = text.split_once('\n').unwrap_or((&text, ""));
    let mut locators = BTreeMap::new();
    locators.insert("loc".to_string(), "vod/movie".to_string());
    for m in [Method::GET, Method::POST, Method::OPTIONS, Method::DELETE] {
        if let Ok(Route::Asset(a)) = parse(&m, path, &locators) {
            // Invariants: no route leaves the root or names an empty asset.
            assert!(!a.asset.is_empty() && !a.asset.split('/').any(|s| s.is_empty() || s == ".." || s == "."), "{a:?}");
        }
    }
    for len in [0u64, 1, 100, u64::MAX] {
        if let crate::respond::RangeReq::Part(s, e) = crate::respond::parse_range(range, len) {
            assert!(s < e && e <= len, "range {range:?} of {len} gave {s}..{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locs() -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("loc1".to_string(), "vod/demo".to_string());
        l
    }

    fn get(path: &str) -> Result<Route, RouteError> {
        parse(&Method::GET, path, &locs())
    }

    fn asset(asset: &str, resource: Resource) -> Route {
        Route::Asset(AssetRoute { asset: asset.into(), ism: None, resource })
    }

    fn status(r: Result<Route, RouteError>) -> u16 {
        match r {
            Ok(r) => panic!("expected a refusal, got {r:?}"),
            Err(RouteError::MethodNotAllowed) => 405,
            Err(RouteError::Api(e)) => e.status().as_u16(),
        }
    }

    #[test]
    fn clean_urls() {
        use Container::*;
        let t = |s: &str| s.to_string();
        let table: Vec<(&str, Route)> = vec![
            ("/healthz", Route::Health),
            ("/readyz", Route::Ready),
            ("/metrics", Route::Metrics),
            ("/key/abcd", Route::Key(t("abcd"))),
            ("/demo/manifest.mpd", asset("demo", Resource::Manifest { kind: ManifestKind::Mpd, encryption: None })),
            ("/vod/2026/movie/master.m3u8", asset("vod/2026/movie", Resource::Manifest { kind: ManifestKind::Master(Fmp4), encryption: None })),
            ("/demo/master-ts.m3u8", asset("demo", Resource::Manifest { kind: ManifestKind::Master(Ts), encryption: None })),
            ("/demo/Manifest", asset("demo", Resource::Manifest { kind: ManifestKind::Smooth, encryption: None })),
            ("/demo/v/index.m3u8", asset("demo", Resource::MediaPlaylist { track: t("v"), container: Fmp4, method: None })),
            ("/demo/v/ts.m3u8", asset("demo", Resource::MediaPlaylist { track: t("v"), container: Ts, method: None })),
            ("/demo/v/init.mp4", asset("demo", Resource::Init { track: t("v"), method: None })),
            ("/demo/v/12.m4s", asset("demo", Resource::Segment { track: t("v"), method: None, n: 12, container: Fmp4 })),
            ("/a/b/v/7.ts", asset("a/b", Resource::Segment { track: t("v"), method: None, n: 7, container: Ts })),
            ("/demo/v/cenc/init.mp4", asset("demo", Resource::Init { track: t("v"), method: Some(Encryption::Cenc) })),
            ("/demo/v/cbcs/3.m4s", asset("demo", Resource::Segment { track: t("v"), method: Some(Encryption::Cbcs), n: 3, container: Fmp4 })),
            ("/demo/v/aes/3.ts", asset("demo", Resource::Segment { track: t("v"), method: Some(Encryption::Aes128), n: 3, container: Ts })),
            ("/demo/v/cbcs/ts.m3u8", asset("demo", Resource::MediaPlaylist { track: t("v"), container: Ts, method: Some(Encryption::Cbcs) })),
            ("/demo/v/iframes.m3u8", asset("demo", Resource::IFramePlaylist { track: t("v"), container: Fmp4, method: None })),
            ("/demo/v/aes/iframes-ts.m3u8", asset("demo", Resource::IFramePlaylist { track: t("v"), container: Ts, method: Some(Encryption::Aes128) })),
            ("/demo/v/i3.m4s", asset("demo", Resource::IFrameSegment { track: t("v"), method: None, n: 3, container: Fmp4 })),
            ("/demo/v/cbcs/i12.ts", asset("demo", Resource::IFrameSegment { track: t("v"), method: Some(Encryption::Cbcs), n: 12, container: Ts })),
            ("/demo/sub_en/text.m3u8", asset("demo", Resource::Text { track: t("sub_en"), file: TextFile::Playlist(Fmp4) })),
            ("/demo/s/text-ts.m3u8", asset("demo", Resource::Text { track: t("s"), file: TextFile::Playlist(Ts) })),
            ("/a/b/s/text.vtt", asset("a/b", Resource::Text { track: t("s"), file: TextFile::Whole })),
            ("/demo/s/3.vtt", asset("demo", Resource::Text { track: t("s"), file: TextFile::Segment(Fmp4, 3) })),
            ("/demo/s/ts12.vtt", asset("demo", Resource::Text { track: t("s"), file: TextFile::Segment(Ts, 12) })),
            ("/demo/s/stpp/init.mp4", asset("demo", Resource::Text { track: t("s"), file: TextFile::StppInit })),
            ("/a/b/s/stpp/7.m4s", asset("a/b", Resource::Text { track: t("s"), file: TextFile::StppSegment(7) })),
            // Three segments: `cenc` is the track name, not a method.
            ("/demo/cenc/init.mp4", asset("demo", Resource::Init { track: t("cenc"), method: None })),
            ("/demo/QualityLevels(125684)/Fragments(video=0)", asset("demo", Resource::SmoothFragment { stream: t("video"), bitrate: 125684, time: 0 })),
            ("/demo/QualityLevels(1)/Fragments(video=9,encryption=cenc)", asset("demo", Resource::SmoothFragment { stream: t("video"), bitrate: 1, time: 9 })),
            // An unknown locator is just a folder name.
            ("/other/x.ism/v/1.m4s", asset("other/x.ism", Resource::Segment { track: t("v"), method: None, n: 1, container: Fmp4 })),
        ];
        for (url, want) in table {
            assert_eq!(get(url).unwrap(), want, "{url}");
        }
        assert_eq!(parse(&Method::HEAD, "/demo/manifest.mpd", &locs()).unwrap(), get("/demo/manifest.mpd").unwrap());
        assert_eq!(parse(&Method::POST, "/clearkey", &locs()).unwrap(), Route::ClearKey);
        assert_eq!(parse(&Method::OPTIONS, "/anything", &locs()).unwrap(), Route::Preflight);
    }

    #[test]
    fn ams_urls() {
        let ams = |resource: Resource| Route::Asset(AssetRoute { asset: "vod/demo".into(), ism: Some("demo.ism".into()), resource });
        let table = [
            ("/loc1/demo.ism/manifest", ams(Resource::Manifest { kind: ManifestKind::Smooth, encryption: None })),
            ("/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cenc)", ams(Resource::Manifest { kind: ManifestKind::Mpd, encryption: Some(AmsEncryption::Cenc) })),
            ("/loc1/demo.ism/manifest(format=m3u8-aapl)", ams(Resource::Manifest { kind: ManifestKind::Master(Container::Ts), encryption: None })),
            ("/loc1/demo.ism/manifest(format=m3u8-cmaf).m3u8", ams(Resource::Manifest { kind: ManifestKind::Master(Container::Fmp4), encryption: None })),
            ("/loc1/demo.ism/QualityLevels(1)/Fragments(v=5)", ams(Resource::SmoothFragment { stream: "v".into(), bitrate: 1, time: 5 })),
            ("/loc1/demo.ism/QualityLevels(1)/Fragments(v=5,encryption=cbc)", ams(Resource::AmsEncryptedFragment(AmsEncryption::Cbc))),
            // Relative URLs of AMS-served manifests: the clean grammar under the asset.
            ("/loc1/demo.ism/v/cenc/2.m4s", ams(Resource::Segment { track: "v".into(), method: Some(Encryption::Cenc), n: 2, container: Container::Fmp4 })),
        ];
        for (url, want) in table {
            assert_eq!(get(url).unwrap(), want, "{url}");
        }
    }

    #[test]
    fn refusals() {
        let table = [
            ("/", 404),
            ("/demo", 404),
            ("/demo/v", 404),
            ("/demo/v/x.txt", 404),
            ("/demo/v/0.m4s", 404),
            ("/demo/v/-1.m4s", 404),
            ("/demo/v/1234567890.m4s", 404),
            ("/demo/v/+1.ts", 404),
            ("/demo/v/i0.m4s", 404),
            ("/demo/v/i.ts", 404),
            ("/demo/v/ii1.ts", 404),
            ("/demo/s/0.vtt", 404),
            ("/demo/s/ts0.vtt", 404),
            ("/demo/s/x.vtt", 404),
            ("/demo/s/cenc/text.m3u8", 404),
            ("/demo/s/cbcs/1.vtt", 404),
            ("/demo/../etc/passwd", 400),
            ("/demo/%2e%2e/x/1.m4s", 400),
            ("/demo//v/1.m4s", 400),
            ("/demo/QualityLevels(x)/Fragments(video=0)", 400),
            ("/demo/QualityLevels(1)/Fragments(video=i,format=m3u8-cmaf)", 404),
            ("/loc1/demo.ism/manifest(format=nope)", 400),
            ("/loc1/demo.ism/QualityLevels(1)/Fragments(v=i,format=mpd-time-csf)", 404),
            ("/loc1/demo.ism/QualityLevels(1)/Manifest(v,format=m3u8-aapl)", 404),
        ];
        for (url, want) in table {
            assert_eq!(status(get(url)), want, "{url}");
        }
        for m in [Method::PUT, Method::DELETE, Method::PATCH] {
            assert_eq!(status(parse(&m, "/demo/manifest.mpd", &locs())), 405);
        }
        assert_eq!(status(parse(&Method::POST, "/demo/manifest.mpd", &locs())), 405);
    }

    #[test]
    fn fuzz_entry_survives_odd_input() {
        for s in ["", "\n", "/\nbytes=", "/a/b/c\nbytes=5-1", "/%ff%fe/x\nbytes=-0", "/loc/x.ism/manifest(\nbytes=0-", "\u{0}/\u{ffff}"] {
            fuzz_one(s.as_bytes());
        }
    }
}
