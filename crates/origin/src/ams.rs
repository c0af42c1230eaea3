//! Azure Media Services URL forms, parsed (no IO, no lookup), so AMS users can move to
//! sealcast without touching their players.
//!
//! ```text
//! /{locator}/{name}.ism/manifest                                   Smooth client manifest
//! /{locator}/{name}.ism/manifest(format=…[,encryption=…][,audio-only=false])[.m3u8|.mpd]
//! /{locator}/{name}.ism/QualityLevels({bitrate}[,k=v…])/Fragments({stream}={time}[,format=…][,encryption=…])
//! /{locator}/{name}.ism/QualityLevels({bitrate})/Fragments({stream}=i,format=…)      init segment
//! /{locator}/{name}.ism/QualityLevels({bitrate})/Manifest({stream},format=m3u8-…[,type=keyframes])
//! ```
//!
//! Sources: MS-SSTR 2.2.1 and 2.2.3 (manifest and fragment requests, `format=m3u8-aapl` on
//! fragments), the AMS dynamic packaging documentation (format selectors, `audio-only=false`,
//! the `QualityLevels(..)/Manifest(..)` HLS playlists and the DASH templates with `=i` for
//! initialization) and AMS URLs found in deployed players (the `.m3u8`/`.mpd` suffixes).
//!
//! Strict by design: unknown keys, repeated keys and malformed numbers are errors (a 400 that
//! says what was wrong), never silently ignored, so a typo cannot serve the wrong protocol or
//! an unencrypted stream. Numbers are canonical decimal (no sign, no leading zero) so one
//! resource has one URL in CDN caches. Nouns, keys and values match ASCII case-insensitively;
//! the locator, the `.ism` name and stream names are kept as given.

use std::fmt;

/// One parsed AMS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmsRequest {
    /// The streaming locator (the first path segment).
    pub locator: String,
    /// The server manifest name, `name.ism`, as given.
    pub ism: String,
    /// What is asked for.
    pub kind: AmsKind,
}

/// The resource an AMS URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmsKind {
    /// `manifest[(…)]`: the client manifest of the protocol `format` names.
    Manifest {
        /// Protocol; [`AmsFormat::Smooth`] without a `format` key.
        format: AmsFormat,
        /// `encryption=…`, if given.
        encryption: Option<AmsEncryption>,
        /// `false` when the URL asked to drop the HLS audio-only variant (`audio-only=false`).
        audio_only: bool,
    },
    /// `QualityLevels(b)/Manifest(stream,format=m3u8-…)`: an HLS media playlist.
    MediaPlaylist {
        /// Bitrate of the quality level.
        bitrate: u32,
        /// Custom attributes after the bitrate, in order.
        custom: Vec<(String, String)>,
        /// Stream (track) name.
        stream: String,
        /// An HLS format.
        format: AmsFormat,
        /// `encryption=…`, if given.
        encryption: Option<AmsEncryption>,
        /// `type=keyframes`: the I-frame playlist.
        keyframes: bool,
    },
    /// `QualityLevels(b)/Fragments(stream=i,format=…)`: an initialization segment (DASH and
    /// HLS CMAF only; Smooth and HLS TS have none).
    Init {
        /// Bitrate of the quality level.
        bitrate: u32,
        /// Custom attributes after the bitrate, in order.
        custom: Vec<(String, String)>,
        /// Stream (track) name.
        stream: String,
        /// A format with initialization segments.
        format: AmsFormat,
        /// `encryption=…`, if given.
        encryption: Option<AmsEncryption>,
    },
    /// `QualityLevels(b)/Fragments(stream=t[,format=…])`: a media fragment or segment.
    Fragment {
        /// Bitrate of the quality level.
        bitrate: u32,
        /// Custom attributes after the bitrate, in order.
        custom: Vec<(String, String)>,
        /// Stream (track) name.
        stream: String,
        /// Start time, in the stream's timescale as the manifest gave it.
        time: u64,
        /// `None`: a Smooth fragment; else an HLS or DASH segment.
        format: Option<AmsFormat>,
        /// `encryption=…`, if given.
        encryption: Option<AmsEncryption>,
    },
}

/// The `format=` selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmsFormat {
    /// No selector: Smooth Streaming.
    Smooth,
    /// `fmp4-v20`: Smooth Streaming 2.0 manifest without `r` repeat counts.
    SmoothV20,
    /// `m3u8-aapl`: HLS v4, MPEG-TS segments.
    HlsTs,
    /// `m3u8-aapl-v3`: HLS v3, MPEG-TS segments.
    HlsTsV3,
    /// `m3u8-cmaf`: HLS with CMAF (fMP4) segments.
    HlsCmaf,
    /// `mpd-time-csf`: DASH, common streaming format (fMP4).
    DashCsf,
    /// `mpd-time-cmaf`: DASH, CMAF.
    DashCmaf,
}

impl AmsFormat {
    /// Every value that has a `format=` spelling.
    const NAMED: [AmsFormat; 6] = [AmsFormat::SmoothV20, AmsFormat::HlsTs, AmsFormat::HlsTsV3, AmsFormat::HlsCmaf, AmsFormat::DashCsf, AmsFormat::DashCmaf];

    /// The `format=` value (`""` for plain Smooth).
    pub fn as_str(self) -> &'static str {
        match self {
            AmsFormat::Smooth => "",
            AmsFormat::SmoothV20 => "fmp4-v20",
            AmsFormat::HlsTs => "m3u8-aapl",
            AmsFormat::HlsTsV3 => "m3u8-aapl-v3",
            AmsFormat::HlsCmaf => "m3u8-cmaf",
            AmsFormat::DashCsf => "mpd-time-csf",
            AmsFormat::DashCmaf => "mpd-time-cmaf",
        }
    }
    /// HLS (any segment format).
    pub fn is_hls(self) -> bool {
        matches!(self, AmsFormat::HlsTs | AmsFormat::HlsTsV3 | AmsFormat::HlsCmaf)
    }
    /// DASH.
    pub fn is_dash(self) -> bool {
        matches!(self, AmsFormat::DashCsf | AmsFormat::DashCmaf)
    }
    /// Smooth Streaming.
    pub fn is_smooth(self) -> bool {
        matches!(self, AmsFormat::Smooth | AmsFormat::SmoothV20)
    }
    /// Whether its segments start from an initialization segment (fMP4 HLS and DASH).
    pub fn has_init(self) -> bool {
        matches!(self, AmsFormat::HlsCmaf | AmsFormat::DashCsf | AmsFormat::DashCmaf)
    }
    fn parse(v: &str) -> Result<AmsFormat, AmsError> {
        AmsFormat::NAMED.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(v)).ok_or_else(|| AmsError::BadFormat(format!("unknown format '{v}'")))
    }
}

impl fmt::Display for AmsFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if *self == AmsFormat::Smooth { "smooth" } else { self.as_str() })
    }
}

/// The `encryption=` selector. Parsed and validated here; whether the asset's delivery
/// policy allows it is for the caller to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmsEncryption {
    /// `cenc`: Common Encryption, AES-CTR (PlayReady, Widevine).
    Cenc,
    /// `cbcs-aapl`: Common Encryption cbcs / FairPlay (HLS).
    CbcsAapl,
    /// `cbc`: AES-128 envelope encryption.
    Cbc,
    /// `piff`: PIFF 1.1 PlayReady for legacy Smooth clients.
    Piff,
}

impl AmsEncryption {
    const ALL: [AmsEncryption; 4] = [AmsEncryption::Cenc, AmsEncryption::CbcsAapl, AmsEncryption::Cbc, AmsEncryption::Piff];

    /// The `encryption=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            AmsEncryption::Cenc => "cenc",
            AmsEncryption::CbcsAapl => "cbcs-aapl",
            AmsEncryption::Cbc => "cbc",
            AmsEncryption::Piff => "piff",
        }
    }
    fn parse(v: &str) -> Result<AmsEncryption, AmsError> {
        AmsEncryption::ALL.into_iter().find(|e| e.as_str().eq_ignore_ascii_case(v)).ok_or_else(|| AmsError::BadEncryption(format!("unknown encryption '{v}'")))
    }
}

impl fmt::Display for AmsEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an AMS-shaped URL was refused. All are the client's fault (400), the message says
/// what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmsError {
    /// Unknown `format=` value, or one that does not fit the resource.
    #[error("bad format: {0}")]
    BadFormat(String),
    /// Unknown `encryption=` value.
    #[error("bad encryption: {0}")]
    BadEncryption(String),
    /// A fragment time that is not a canonical unsigned 64-bit decimal (or `i` where no
    /// initialization segment exists).
    #[error("bad fragment time: {0}")]
    BadTime(String),
    /// A `QualityLevels` bitrate that is not a canonical unsigned 32-bit decimal.
    #[error("bad bitrate: {0}")]
    BadBitrate(String),
    /// A stream name or custom attribute that is empty or has characters outside
    /// `A-Z a-z 0-9 _ - . ~`.
    #[error("bad name: {0}")]
    BadName(String),
    /// A key this resource does not take.
    #[error("unknown key '{0}'")]
    UnknownKey(String),
    /// A key given twice.
    #[error("key '{0}' given twice")]
    DuplicateKey(String),
    /// A known key with a value it does not take (`audio-only=maybe`, `type=all`).
    #[error("bad value '{value}' for '{key}'")]
    BadValue {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Empty or unbalanced parentheses, missing `=`, empty items, trailing text.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A real AMS feature sealcast does not serve (`filter=`, `FragmentInfo`, `RawFragments`,
    /// `KeyFrames`).
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// Parses decoded path segments (as [`sealcast_storage::AssetPath::segments`] gives them).
/// `Ok(None)` when the path is not an AMS form at all (not `/{locator}/{name}.ism/…`, or an
/// unknown resource under the `.ism`), `Err` when it is one but malformed.
pub fn parse(segments: &[String]) -> Result<Option<AmsRequest>, AmsError> {
    let [locator, ism, rest @ ..] = segments else { return Ok(None) };
    if !is_ism(ism) || locator.is_empty() || rest.is_empty() {
        return Ok(None);
    }
    let kind = match rest {
        [one] => match manifest(one)? {
            Some(k) => k,
            None => return Ok(None),
        },
        [ql, res] => match quality_level_resource(ql, res)? {
            Some(k) => k,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(AmsRequest { locator: locator.clone(), ism: ism.clone(), kind }))
}

/// The resource of the last two segments `QualityLevels(..)/{Fragments|Manifest}(..)`, shared
/// by the AMS form and the clean Smooth form (`/{asset}/QualityLevels(..)/Fragments(..)`), so
/// both accept exactly the same URLs. `Ok(None)`: not such a pair.
pub fn quality_level_resource(ql: &str, res: &str) -> Result<Option<AmsKind>, AmsError> {
    let Some(ql_args) = call(ql, "QualityLevels")? else { return Ok(None) };
    if let Some(args) = call(res, "Fragments")? {
        let (bitrate, custom) = quality_levels(ql_args)?;
        Ok(Some(fragment(bitrate, custom, args)?))
    } else if let Some(args) = call(res, "Manifest")? {
        let (bitrate, custom) = quality_levels(ql_args)?;
        Ok(Some(media_playlist(bitrate, custom, args)?))
    } else if let Some(noun) = ["FragmentInfo", "RawFragments", "KeyFrames"].into_iter().find(|n| call(res, n).ok().flatten().is_some()) {
        Err(AmsError::Unsupported(format!("{noun}(..) requests")))
    } else {
        Ok(None)
    }
}

fn is_ism(s: &str) -> bool {
    s.len() > 4 && s.get(s.len() - 4..).is_some_and(|e| e.eq_ignore_ascii_case(".ism"))
}

/// `noun` or `noun(args)`, the noun matched case-insensitively. `Ok(None)`: another noun;
/// `Ok(Some(None))`: the bare noun; `Ok(Some(Some(args)))`: with arguments.
fn call<'a>(seg: &'a str, noun: &str) -> Result<Option<Option<&'a str>>, AmsError> {
    let Some(head) = seg.get(..noun.len()) else { return Ok(None) };
    if !head.eq_ignore_ascii_case(noun) {
        return Ok(None);
    }
    let tail = &seg[noun.len()..];
    if tail.is_empty() {
        return Ok(Some(None));
    }
    let Some(inner) = tail.strip_prefix('(') else { return Ok(None) };
    let inner = inner.strip_suffix(')').ok_or_else(|| AmsError::Malformed(format!("'{seg}': missing ')' or text after it")))?;
    if inner.contains(['(', ')']) {
        return Err(AmsError::Malformed(format!("'{seg}': nested parentheses")));
    }
    if inner.trim().is_empty() {
        return Err(AmsError::Malformed(format!("'{seg}': empty parentheses")));
    }
    Ok(Some(Some(inner)))
}

/// Comma-separated items, each trimmed of spaces (MS-SSTR writes `", format=m3u8-aapl"`).
fn items(args: &str) -> Result<Vec<&str>, AmsError> {
    args.split(',')
        .map(|i| {
            let i = i.trim_matches(' ');
            if i.is_empty() {
                Err(AmsError::Malformed(format!("empty item in '({args})'")))
            } else {
                Ok(i)
            }
        })
        .collect()
}

fn key_value(item: &str) -> Result<(&str, &str), AmsError> {
    let (k, v) = item.split_once('=').ok_or_else(|| AmsError::Malformed(format!("'{item}' is not key=value")))?;
    let (k, v) = (k.trim_matches(' '), v.trim_matches(' '));
    if k.is_empty() || v.is_empty() {
        return Err(AmsError::Malformed(format!("'{item}' is not key=value")));
    }
    Ok((k, v))
}

/// The `key=value` options after a resource's first item.
#[derive(Default)]
struct Options {
    format: Option<AmsFormat>,
    encryption: Option<AmsEncryption>,
    audio_only: Option<bool>,
    keyframes: Option<bool>,
}

/// Reads options, taking only the keys in `allowed`.
fn options(list: &[&str], allowed: &[&str]) -> Result<Options, AmsError> {
    let mut o = Options::default();
    let mut seen: Vec<String> = Vec::new();
    for item in list {
        let (k, v) = key_value(item)?;
        let key = k.to_ascii_lowercase();
        if key == "filter" {
            return Err(AmsError::Unsupported("dynamic manifest filters (filter=)".into()));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(AmsError::UnknownKey(k.to_string()));
        }
        if seen.contains(&key) {
            return Err(AmsError::DuplicateKey(k.to_string()));
        }
        let bad = || AmsError::BadValue { key: k.to_string(), value: v.to_string() };
        match key.as_str() {
            "format" => o.format = Some(AmsFormat::parse(v)?),
            "encryption" => o.encryption = Some(AmsEncryption::parse(v)?),
            "audio-only" => {
                o.audio_only = Some(match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad()),
                })
            }
            "type" => {
                if !v.eq_ignore_ascii_case("keyframes") {
                    return Err(bad());
                }
                o.keyframes = Some(true);
            }
            _ => unreachable!("every allowed key is handled above"),
        }
        seen.push(key);
    }
    Ok(o)
}

/// `manifest`, `manifest(…)`, with an optional `.m3u8`/`.mpd` suffix that must agree with
/// the format.
fn manifest(seg: &str) -> Result<Option<AmsKind>, AmsError> {
    let lower = seg.to_ascii_lowercase();
    let (body, suffix) = if lower.ends_with(".m3u8") {
        (&seg[..seg.len() - 5], Some(".m3u8"))
    } else if lower.ends_with(".mpd") {
        (&seg[..seg.len() - 4], Some(".mpd"))
    } else {
        (seg, None)
    };
    let Some(args) = call(body, "manifest")? else { return Ok(None) };
    let o = match args {
        None => Options::default(),
        Some(a) => options(&items(a)?, &["format", "encryption", "audio-only"])?,
    };
    let format = o.format.unwrap_or(AmsFormat::Smooth);
    match suffix {
        Some(".m3u8") if !format.is_hls() => return Err(AmsError::BadFormat(format!("'.m3u8' needs an HLS format, not {format}"))),
        Some(".mpd") if !format.is_dash() => return Err(AmsError::BadFormat(format!("'.mpd' needs a DASH format, not {format}"))),
        _ => {}
    }
    if o.audio_only.is_some() && !format.is_hls() {
        return Err(AmsError::BadFormat(format!("audio-only applies to HLS, not {format}")));
    }
    Ok(Some(AmsKind::Manifest { format, encryption: o.encryption, audio_only: o.audio_only.unwrap_or(true) }))
}

/// `QualityLevels(bitrate[,key=value…])` arguments.
fn quality_levels(args: Option<&str>) -> Result<(u32, Vec<(String, String)>), AmsError> {
    let args = args.ok_or_else(|| AmsError::BadBitrate("QualityLevels needs a bitrate".into()))?;
    let list = items(args)?;
    let bitrate = decimal(list[0], u32::MAX as u64).map_err(|why| AmsError::BadBitrate(format!("'{}' {why}", list[0])))? as u32;
    let mut custom: Vec<(String, String)> = Vec::new();
    for item in &list[1..] {
        let (k, v) = key_value(item)?;
        name(k)?;
        name(v)?;
        if custom.iter().any(|(c, _)| c.eq_ignore_ascii_case(k)) {
            return Err(AmsError::DuplicateKey(k.to_string()));
        }
        custom.push((k.to_string(), v.to_string()));
    }
    Ok((bitrate, custom))
}

/// `Fragments(stream=time|i[,format=…][,encryption=…])`.
fn fragment(bitrate: u32, custom: Vec<(String, String)>, args: Option<&str>) -> Result<AmsKind, AmsError> {
    let args = args.ok_or_else(|| AmsError::Malformed("Fragments needs (stream=time)".into()))?;
    let list = items(args)?;
    let (stream, time) = key_value(list[0]).map_err(|_| AmsError::Malformed(format!("'{}' is not stream=time", list[0])))?;
    name(stream)?;
    let o = options(&list[1..], &["format", "encryption"])?;
    if let Some(f) = o.format {
        if f.is_smooth() {
            return Err(AmsError::BadFormat(format!("{f} is a manifest format, not a fragment format")));
        }
    }
    let stream = stream.to_string();
    if time.eq_ignore_ascii_case("i") {
        return match o.format {
            Some(format) if format.has_init() => Ok(AmsKind::Init { bitrate, custom, stream, format, encryption: o.encryption }),
            Some(format) => Err(AmsError::BadTime(format!("{format} has no initialization segment"))),
            None => Err(AmsError::BadTime("Smooth has no initialization segment ('i' needs a DASH or HLS CMAF format)".into())),
        };
    }
    let time = decimal(time, u64::MAX).map_err(|why| AmsError::BadTime(format!("'{time}' {why}")))?;
    Ok(AmsKind::Fragment { bitrate, custom, stream, time, format: o.format, encryption: o.encryption })
}

/// `Manifest(stream,format=m3u8-…[,encryption=…][,type=keyframes])` under `QualityLevels`.
fn media_playlist(bitrate: u32, custom: Vec<(String, String)>, args: Option<&str>) -> Result<AmsKind, AmsError> {
    let args = args.ok_or_else(|| AmsError::Malformed("Manifest under QualityLevels needs (stream,format=…)".into()))?;
    let list = items(args)?;
    let stream = list[0];
    if stream.contains('=') {
        return Err(AmsError::Malformed(format!("'{stream}': the first item is the stream name")));
    }
    name(stream)?;
    let o = options(&list[1..], &["format", "encryption", "type"])?;
    let format = o.format.ok_or_else(|| AmsError::BadFormat("a media playlist needs format=m3u8-…".into()))?;
    if !format.is_hls() {
        return Err(AmsError::BadFormat(format!("media playlists are HLS, not {format}")));
    }
    Ok(AmsKind::MediaPlaylist { bitrate, custom, stream: stream.to_string(), format, encryption: o.encryption, keyframes: o.keyframes.unwrap_or(false) })
}

/// A canonical decimal no larger than `max`.
fn decimal(s: &str, max: u64) -> Result<u64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not an unsigned decimal");
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err("has a leading zero");
    }
    s.parse::<u64>().ok().filter(|v| *v <= max).ok_or("is too large")
}

/// Stream names and custom attributes: URI-safe identifiers that are not all digits.
fn name(s: &str) -> Result<(), AmsError> {
    let ok = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~'))
        && !s.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(AmsError::BadName(format!("'{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AmsEncryption::*;
    use AmsFormat::*;

    fn segs(path: &str) -> Vec<String> {
        path.trim_start_matches('/').split('/').map(str::to_string).collect()
    }

    fn kind(path: &str) -> AmsKind {
        match parse(&segs(path)) {
            Ok(Some(r)) => r.kind,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn man(format: AmsFormat, encryption: Option<AmsEncryption>) -> AmsKind {
        AmsKind::Manifest { format, encryption, audio_only: true }
    }

    fn frag(bitrate: u32, stream: &str, time: u64, format: Option<AmsFormat>) -> AmsKind {
        AmsKind::Fragment { bitrate, custom: vec![], stream: stream.into(), time, format, encryption: None }
    }

    #[test]
    fn request_parts() {
        let r = parse(&segs("/21b17732-0112-4d76-b526-763dcd843449/ignite.ism/manifest")).unwrap().unwrap();
        assert_eq!((r.locator.as_str(), r.ism.as_str()), ("21b17732-0112-4d76-b526-763dcd843449", "ignite.ism"));
        assert_eq!(r.kind, man(Smooth, None));
    }

    #[test]
    fn manifests() {
        let table: &[(&str, AmsKind)] = &[
            ("/l/a.ism/manifest", man(Smooth, None)),
            ("/l/a.ism/Manifest", man(Smooth, None)),
            ("/l/a.ISM/MANIFEST", man(Smooth, None)),
            ("/l/a.ism/manifest(format=fmp4-v20)", man(SmoothV20, None)),
            ("/l/a.ism/manifest(format=m3u8-aapl)", man(HlsTs, None)),
            ("/l/a.ism/manifest(format=m3u8-aapl-v3)", man(HlsTsV3, None)),
            ("/l/a.ism/manifest(format=m3u8-cmaf)", man(HlsCmaf, None)),
            ("/l/a.ism/manifest(format=mpd-time-csf)", man(DashCsf, None)),
            ("/l/a.ism/manifest(format=mpd-time-cmaf)", man(DashCmaf, None)),
            ("/l/a.ism/manifest(format=MPD-TIME-CSF)", man(DashCsf, None)),
            ("/l/a.ism/manifest(format=m3u8-aapl).m3u8", man(HlsTs, None)),
            ("/l/a.ism/manifest(format=m3u8-aapl-v3).m3u8", man(HlsTsV3, None)),
            ("/l/a.ism/manifest(format=m3u8-cmaf).m3u8", man(HlsCmaf, None)),
            ("/l/a.ism/manifest(format=mpd-time-csf).mpd", man(DashCsf, None)),
            ("/l/a.ism/manifest(format=mpd-time-cmaf).mpd", man(DashCmaf, None)),
            ("/l/a.ism/manifest(format=mpd-time-csf,encryption=cenc)", man(DashCsf, Some(Cenc))),
            ("/l/a.ism/manifest(format=mpd-time-csf,encryption=cenc).mpd", man(DashCsf, Some(Cenc))),
            ("/l/a.ism/manifest(encryption=cenc,format=m3u8-cmaf)", man(HlsCmaf, Some(Cenc))),
            ("/l/a.ism/manifest(format=m3u8-aapl,encryption=cbcs-aapl)", man(HlsTs, Some(CbcsAapl))),
            ("/l/a.ism/manifest(format=m3u8-aapl,encryption=cbc)", man(HlsTs, Some(Cbc))),
            ("/l/a.ism/manifest(encryption=piff)", man(Smooth, Some(Piff))),
            ("/l/a.ism/manifest(encryption=cenc)", man(Smooth, Some(Cenc))),
            ("/l/a.ism/manifest(format=m3u8-aapl, encryption=cbc)", man(HlsTs, Some(Cbc))),
            ("/l/a.ism/manifest(format=m3u8-aapl,audio-only=false)", AmsKind::Manifest { format: HlsTs, encryption: None, audio_only: false }),
            ("/l/a.ism/manifest(format=m3u8-aapl,audio-only=true)", man(HlsTs, None)),
        ];
        for (p, want) in table {
            assert_eq!(&kind(p), want, "{p}");
        }
    }

    #[test]
    fn fragments_and_playlists() {
        let table: &[(&str, AmsKind)] = &[
            ("/l/a.ism/QualityLevels(381048)/Fragments(video=0)", frag(381048, "video", 0, None)),
            ("/l/a.ism/QualityLevels(128041)/Fragments(aac_eng_2_128041_2_1=60160000)", frag(128041, "aac_eng_2_128041_2_1", 60160000, None)),
            ("/l/a.ism/qualitylevels(1)/fragments(video=18446744073709551615)", frag(1, "video", u64::MAX, None)),
            ("/l/a.ism/QualityLevels(4294967295)/Fragments(video=1)", frag(u32::MAX, "video", 1, None)),
            ("/l/a.ism/QualityLevels(381048)/Fragments(video=60060000,format=m3u8-aapl)", frag(381048, "video", 60060000, Some(HlsTs))),
            ("/l/a.ism/QualityLevels(381048)/Fragments(video=60060000, format=m3u8-aapl)", frag(381048, "video", 60060000, Some(HlsTs))),
            ("/l/a.ism/QualityLevels(381048)/Fragments(video=0,format=m3u8-cmaf)", frag(381048, "video", 0, Some(HlsCmaf))),
            ("/l/a.ism/QualityLevels(381048)/Fragments(video=0,format=mpd-time-csf)", frag(381048, "video", 0, Some(DashCsf))),
            ("/l/a.ism/QualityLevels(381048)/Fragments(video=0,format=mpd-time-cmaf)", frag(381048, "video", 0, Some(DashCmaf))),
            (
                "/l/a.ism/QualityLevels(381048)/Fragments(video=0,format=mpd-time-csf,encryption=cenc)",
                AmsKind::Fragment { bitrate: 381048, custom: vec![], stream: "video".into(), time: 0, format: Some(DashCsf), encryption: Some(Cenc) },
            ),
            (
                "/l/a.ism/QualityLevels(381048,Camera=Left)/Fragments(video=20)",
                AmsKind::Fragment { bitrate: 381048, custom: vec![("Camera".into(), "Left".into())], stream: "video".into(), time: 20, format: None, encryption: None },
            ),
            (
                "/l/a.ism/QualityLevels(381048)/Fragments(video=i,format=mpd-time-csf)",
                AmsKind::Init { bitrate: 381048, custom: vec![], stream: "video".into(), format: DashCsf, encryption: None },
            ),
            (
                "/l/a.ism/QualityLevels(128041)/Fragments(aac_eng_2_128041_2_1=i,format=m3u8-cmaf)",
                AmsKind::Init { bitrate: 128041, custom: vec![], stream: "aac_eng_2_128041_2_1".into(), format: HlsCmaf, encryption: None },
            ),
            (
                "/l/a.ism/QualityLevels(128041)/Manifest(aac_eng_2_128041_2_1,format=m3u8-aapl)",
                AmsKind::MediaPlaylist { bitrate: 128041, custom: vec![], stream: "aac_eng_2_128041_2_1".into(), format: HlsTs, encryption: None, keyframes: false },
            ),
            (
                "/l/a.ism/QualityLevels(381048)/Manifest(video,format=m3u8-aapl,type=keyframes)",
                AmsKind::MediaPlaylist { bitrate: 381048, custom: vec![], stream: "video".into(), format: HlsTs, encryption: None, keyframes: true },
            ),
            (
                "/l/a.ism/QualityLevels(381048)/Manifest(video,format=m3u8-cmaf,encryption=cbcs-aapl)",
                AmsKind::MediaPlaylist { bitrate: 381048, custom: vec![], stream: "video".into(), format: HlsCmaf, encryption: Some(CbcsAapl), keyframes: false },
            ),
        ];
        for (p, want) in table {
            assert_eq!(&kind(p), want, "{p}");
        }
    }

    #[test]
    fn not_ams_at_all() {
        for p in [
            "/vod/movie/manifest.mpd",
            "/vod/movie/master.m3u8",
            "/a.ism/manifest",
            "/l/a.ism",
            "/l/a.ismv/manifest",
            "/l/a.isml/manifest",
            "/l/.ism/manifest",
            "/p/l/a.ism/manifest",
            "/l/a.ism/manifests",
            "/l/a.ism/manifestx(format=m3u8-aapl)",
            "/l/a.ism/video.mp4",
            "/l/a.ism/QualityLevels(1)/Other(video=0)",
            "/l/a.ism/Other(1)/Fragments(video=0)",
            "/l/a.ism/QualityLevels(1)/Fragments(video=0)/more",
        ] {
            assert_eq!(parse(&segs(p)), Ok(None), "{p}");
        }
        assert_eq!(parse(&[]), Ok(None));
    }

    /// Which error a malformed URL must give.
    type Check = fn(&AmsError) -> bool;

    #[test]
    fn malformed_is_an_error() {
        let table: &[(&str, Check)] = &[
            ("/l/a.ism/manifest(format=bogus)", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/manifest(format=)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,encryption=rot13)", |e| matches!(e, AmsError::BadEncryption(_))),
            ("/l/a.ism/manifest(encryption=cbcs)", |e| matches!(e, AmsError::BadEncryption(_))),
            ("/l/a.ism/manifest()", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest( )", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl)x", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(format=(m3u8-aapl))", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,,encryption=cbc)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(m3u8-aapl)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,format=m3u8-cmaf)", |e| matches!(e, AmsError::DuplicateKey(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,Format=m3u8-aapl)", |e| matches!(e, AmsError::DuplicateKey(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,colour=blue)", |e| matches!(e, AmsError::UnknownKey(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,type=keyframes)", |e| matches!(e, AmsError::UnknownKey(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,audio-only=maybe)", |e| matches!(e, AmsError::BadValue { .. })),
            ("/l/a.ism/manifest(format=mpd-time-csf,audio-only=false)", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl,filter=first30s)", |e| matches!(e, AmsError::Unsupported(_))),
            ("/l/a.ism/manifest(format=mpd-time-csf).m3u8", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/manifest(format=m3u8-aapl).mpd", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/manifest.mpd", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/manifest(encryption=cenc).mpd", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=abc)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=-1)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=+1)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=1.5)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=007)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=18446744073709551616)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=99999999999999999999999)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(=0)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments()", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(vi$deo=0)", |e| matches!(e, AmsError::BadName(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(123=0)", |e| matches!(e, AmsError::BadName(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=i)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=i,format=m3u8-aapl)", |e| matches!(e, AmsError::BadTime(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=0,format=bogus)", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=0,format=fmp4-v20)", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=0,encryption=rot13)", |e| matches!(e, AmsError::BadEncryption(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=0,audio-only=false)", |e| matches!(e, AmsError::UnknownKey(_))),
            ("/l/a.ism/QualityLevels(1)/Fragments(video=0,format=m3u8-aapl,format=m3u8-aapl)", |e| matches!(e, AmsError::DuplicateKey(_))),
            ("/l/a.ism/QualityLevels(x)/Fragments(video=0)", |e| matches!(e, AmsError::BadBitrate(_))),
            ("/l/a.ism/QualityLevels()/Fragments(video=0)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels/Fragments(video=0)", |e| matches!(e, AmsError::BadBitrate(_))),
            ("/l/a.ism/QualityLevels(-5)/Fragments(video=0)", |e| matches!(e, AmsError::BadBitrate(_))),
            ("/l/a.ism/QualityLevels(4294967296)/Fragments(video=0)", |e| matches!(e, AmsError::BadBitrate(_))),
            ("/l/a.ism/QualityLevels(0128000)/Fragments(video=0)", |e| matches!(e, AmsError::BadBitrate(_))),
            ("/l/a.ism/QualityLevels(1,Camera)/Fragments(video=0)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1,Camera=Left,camera=Right)/Fragments(video=0)", |e| matches!(e, AmsError::DuplicateKey(_))),
            ("/l/a.ism/QualityLevels(1,Cam era=Left)/Fragments(video=0)", |e| matches!(e, AmsError::BadName(_))),
            ("/l/a.ism/QualityLevels(1)/Manifest(video)", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/QualityLevels(1)/Manifest(video,format=mpd-time-csf)", |e| matches!(e, AmsError::BadFormat(_))),
            ("/l/a.ism/QualityLevels(1)/Manifest(video,format=m3u8-aapl,type=all)", |e| matches!(e, AmsError::BadValue { .. })),
            ("/l/a.ism/QualityLevels(1)/Manifest(video=0,format=m3u8-aapl)", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1)/Manifest", |e| matches!(e, AmsError::Malformed(_))),
            ("/l/a.ism/QualityLevels(1)/FragmentInfo(video=0)", |e| matches!(e, AmsError::Unsupported(_))),
            ("/l/a.ism/QualityLevels(1)/RawFragments(video=0)", |e| matches!(e, AmsError::Unsupported(_))),
            ("/l/a.ism/QualityLevels(1)/KeyFrames(video=0)", |e| matches!(e, AmsError::Unsupported(_))),
        ];
        for (p, check) in table {
            match parse(&segs(p)) {
                Err(e) => assert!(check(&e), "{p}: unexpected error {e:?}"),
                Ok(r) => panic!("{p}: accepted as {r:?}"),
            }
        }
    }

    #[test]
    fn mutations_never_panic() {
        // Every truncation and every single-character substitution of a few valid URLs,
        // with the characters the grammar cares about and some that it does not.
        let base = [
            "/l/a.ism/manifest(format=mpd-time-csf,encryption=cenc).mpd",
            "/l/a.ism/QualityLevels(381048,Camera=Left)/Fragments(video=60060000,format=m3u8-aapl)",
            "/l/a.ism/QualityLevels(381048)/Manifest(video,format=m3u8-aapl,type=keyframes)",
        ];
        let subs = ['(', ')', ',', '=', ' ', '.', '0', 'i', 'é', '/', '\u{0}'];
        for b in base {
            let chars: Vec<char> = b.chars().collect();
            for cut in 0..chars.len() {
                let _ = parse(&segs(&chars[..cut].iter().collect::<String>()));
                for c in subs {
                    let mut m = chars.clone();
                    m[cut] = c;
                    let _ = parse(&segs(&m.iter().collect::<String>()));
                }
            }
        }
    }

    #[test]
    fn errors_read_well() {
        let e = parse(&segs("/l/a.ism/manifest(format=bogus)")).unwrap_err();
        assert_eq!(e.to_string(), "bad format: unknown format 'bogus'");
        let e = parse(&segs("/l/a.ism/QualityLevels(1)/Fragments(video=18446744073709551616)")).unwrap_err();
        assert_eq!(e.to_string(), "bad fragment time: '18446744073709551616' is too large");
    }

    #[test]
    fn formats_round_trip_their_names() {
        for f in AmsFormat::NAMED {
            assert_eq!(AmsFormat::parse(f.as_str()), Ok(f));
            assert_eq!(f.is_hls() as u8 + f.is_dash() as u8 + f.is_smooth() as u8, 1, "{f}");
        }
        for e in AmsEncryption::ALL {
            assert_eq!(AmsEncryption::parse(e.as_str()), Ok(e));
        }
    }
}
