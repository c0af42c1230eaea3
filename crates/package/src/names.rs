//! The file names of every output, in one place: the manifest writers reference them and the
//! origin's URL grammar (`route.rs`) parses them, so the two cannot drift apart.

/// DASH MPD of an asset.
pub const MPD: &str = "manifest.mpd";
/// HLS multivariant playlist over fMP4.
pub const MASTER: &str = "master.m3u8";
/// HLS multivariant playlist over MPEG-TS.
pub const MASTER_TS: &str = "master-ts.m3u8";
/// Smooth Streaming client manifest.
pub const SMOOTH: &str = "Manifest";
/// HLS media playlist of a track, fMP4 segments.
pub const MEDIA_FMP4: &str = "index.m3u8";
/// HLS media playlist of a track, TS segments.
pub const MEDIA_TS: &str = "ts.m3u8";
/// CMAF init segment of a track.
pub const INIT: &str = "init.mp4";
/// Extension of CMAF media segments (`{n}.m4s`).
pub const SEGMENT_FMP4: &str = "m4s";
/// Extension of TS media segments (`{n}.ts`).
pub const SEGMENT_TS: &str = "ts";
/// HLS I-frame playlist of a video track, fMP4 I-frame segments.
pub const IFRAMES_FMP4: &str = "iframes.m3u8";
/// HLS I-frame playlist of a video track, TS I-frame segments.
pub const IFRAMES_TS: &str = "iframes-ts.m3u8";
/// Prefix of I-frame segment names (`i{n}.m4s`, `i{n}.ts`: the key frame that starts segment `n`).
pub const IFRAME_PREFIX: &str = "i";
/// HLS media playlist of a subtitle track, segments on the fMP4 timeline.
pub const TEXT_HLS: &str = "text.m3u8";
/// HLS media playlist of a subtitle track, segments on the MPEG-TS timeline.
pub const TEXT_HLS_TS: &str = "text-ts.m3u8";
/// A subtitle track whole, as WebVTT (DASH sidecar).
pub const TEXT_WHOLE: &str = "text.vtt";
/// Extension of WebVTT segments (`{n}.vtt`, `ts{n}.vtt`).
pub const SEGMENT_VTT: &str = "vtt";
/// Prefix of WebVTT segments on the MPEG-TS timeline (`ts{n}.vtt`).
pub const TEXT_TS_PREFIX: &str = "ts";
/// Path segment of a subtitle track's IMSC1-in-fMP4 files (`{sub}/stpp/init.mp4`,
/// `{sub}/stpp/{n}.m4s`), as `cenc` is of a track's encrypted ones.
pub const TEXT_STPP: &str = "stpp";
