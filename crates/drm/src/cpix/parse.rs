//! Reading a CPIX document into the model of [`super`]: bounded XML, then each list
//! checked for what this crate can apply.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{
    AudioFilter, BitrateFilter, CpixDocument, CpixKey, DrmSystemSignalling, HlsPlaylist, HlsSignalingData, UsageRule,
    VideoFilter, CPIX_NS, LIMITS, MAX_CPIX_BYTES, MAX_CPIX_KEYS, PSKC_NS,
};
use crate::error::{snippet, Error, Result};
use crate::key::{ContentKey, KeyKind, Scheme};
use crate::kid::{Kid, SystemId};
use crate::xml::{check_embeddable, parse_tree, Element, Limits};

/// Parses a CPIX document. `default_kind` is the kind of keys without
/// `@commonEncryptionScheme` (normally the delivery policy's: cenc or cbcs).
pub fn parse_cpix(xml: &[u8], default_kind: KeyKind) -> Result<CpixDocument> {
    let root = parse_tree(xml, LIMITS)?;
    if !root.is(CPIX_NS, "CPIX") {
        return Err(cpix(format!("root element is {{{}}}{}, not {{{CPIX_NS}}}CPIX", root.ns, root.name)));
    }
    let mut doc = CpixDocument {
        content_id: root.attr("contentId").map(str::to_owned),
        version: root.attr("version").map(str::to_owned),
        keys: Vec::new(),
        drm_systems: Vec::new(),
        usage_rules: Vec::new(),
    };
    for list in root.children_named(CPIX_NS, "ContentKeyList") {
        for el in list.children_named(CPIX_NS, "ContentKey") {
            if doc.keys.len() >= MAX_CPIX_KEYS {
                return Err(Error::TooLarge {
                    what: "CPIX content keys",
                    got: doc.keys.len() + 1,
                    limit: MAX_CPIX_KEYS,
                });
            }
            let key = parse_content_key(el, default_kind)?;
            if doc.key(key.key.kid()).is_some() {
                return Err(cpix(format!("content key {} appears twice", key.key.kid())));
            }
            doc.keys.push(key);
        }
    }
    for list in root.children_named(CPIX_NS, "ContentKeyPeriodList") {
        if list.child(CPIX_NS, "ContentKeyPeriod").is_some() {
            return Err(Error::CpixUnsupported("content key periods (key rotation)".into()));
        }
    }
    for list in root.children_named(CPIX_NS, "DRMSystemList") {
        for el in list.children_named(CPIX_NS, "DRMSystem") {
            let d = parse_drm_system(el)?;
            if doc.key(d.kid).is_none() {
                return Err(cpix(format!("DRMSystem {} refers to unknown content key {}", d.system_id, d.kid)));
            }
            doc.drm_systems.push(d);
        }
    }
    for list in root.children_named(CPIX_NS, "ContentKeyUsageRuleList") {
        for el in list.children_named(CPIX_NS, "ContentKeyUsageRule") {
            let r = parse_usage_rule(el)?;
            if doc.key(r.kid).is_none() {
                return Err(cpix(format!("usage rule refers to unknown content key {}", r.kid)));
            }
            doc.usage_rules.push(r);
        }
    }
    Ok(doc)
}

fn parse_content_key(el: &Element, default_kind: KeyKind) -> Result<CpixKey> {
    let kid = required_kid(el, "ContentKey")?;
    if el.attr("dependsOnKey").is_some() {
        return Err(Error::CpixUnsupported(format!("key hierarchy (content key {kid} has @dependsOnKey)")));
    }
    let scheme = match el.attr("commonEncryptionScheme").map(str::trim) {
        None => None,
        Some("cenc") => Some(Scheme::Cenc),
        Some("cbcs") | Some("SAMPLE-AES") => Some(Scheme::Cbcs),
        Some(other) => {
            return Err(Error::CpixUnsupported(format!(
                "content key {kid}: commonEncryptionScheme {:?}",
                snippet(other)
            )));
        }
    };
    let explicit_iv =
        match el.attr("explicitIV") {
            None => None,
            Some(v) => {
                let b = decode_b64(v, "ContentKey@explicitIV")?;
                Some(b.try_into().map_err(|b: Vec<u8>| {
                    cpix(format!("content key {kid}: explicitIV is {} bytes, not 16", b.len()))
                })?)
            }
        };
    let secret = el
        .child(CPIX_NS, "Data")
        .and_then(|d| d.child(PSKC_NS, "Secret"))
        .ok_or_else(|| cpix(format!("content key {kid} has no Data/pskc:Secret")))?;
    if secret.child(PSKC_NS, "EncryptedValue").is_some() {
        return Err(Error::EncryptedCpixKey { kid });
    }
    let plain =
        secret.child(PSKC_NS, "PlainValue").ok_or_else(|| cpix(format!("content key {kid} has no pskc:PlainValue")))?;
    let bytes = decode_b64(&plain.text, "pskc:PlainValue")?;
    let kind = scheme.map(KeyKind::for_scheme).unwrap_or(default_kind);
    let key = ContentKey::new(kid, kind, &bytes)?;
    Ok(CpixKey { key, scheme, explicit_iv })
}

fn parse_drm_system(el: &Element) -> Result<DrmSystemSignalling> {
    let kid = required_kid(el, "DRMSystem")?;
    let system_id =
        SystemId::parse(el.attr("systemId").ok_or_else(|| cpix(format!("DRMSystem for key {kid} has no @systemId")))?)?;
    let mut d = DrmSystemSignalling {
        system_id,
        kid,
        name: el.attr("name").map(str::to_owned),
        pssh: None,
        content_protection_data: None,
        uri_ext_x_key: None,
        hls_signaling: Vec::new(),
        smooth_protection_header: None,
    };
    for c in &el.children {
        if c.ns != CPIX_NS {
            continue; // extensions for other formats may follow; not ours to read
        }
        match c.name.as_str() {
            "PSSH" => {
                let pssh = crate::pssh::parse(&decode_b64(&c.text, "PSSH")?)?;
                if pssh.system_id != system_id {
                    return Err(cpix(format!(
                        "DRMSystem {system_id} for key {kid} carries a pssh box of system {}",
                        pssh.system_id
                    )));
                }
                d.pssh = Some(pssh);
            }
            "ContentProtectionData" => {
                let fragment = decode_b64_text(&c.text, "ContentProtectionData")?;
                check_fragment(&fragment, system_id, kid)?;
                d.content_protection_data = Some(fragment);
            }
            "URIExtXKey" => {
                let uri = decode_b64_text(&c.text, "URIExtXKey")?;
                check_embeddable("CPIX URIExtXKey", &uri, true)?;
                d.uri_ext_x_key = Some(uri);
            }
            "HLSSignalingData" => {
                let playlist = match c.attr("playlist") {
                    None | Some("media") => HlsPlaylist::Media,
                    Some("master") | Some("multiVariant") => HlsPlaylist::MultiVariant,
                    Some(other) => return Err(cpix(format!("HLSSignalingData@playlist {:?}", snippet(other)))),
                };
                if d.hls_signaling.iter().any(|h| h.playlist == playlist) || d.hls_signaling.len() >= 2 {
                    return Err(cpix(format!("DRMSystem {system_id} for key {kid}: duplicate HLSSignalingData")));
                }
                let data = decode_b64_text(&c.text, "HLSSignalingData")?;
                check_hls_lines(&data)?;
                d.hls_signaling.push(HlsSignalingData { playlist, data });
            }
            "SmoothStreamingProtectionHeaderData" => d.smooth_protection_header = Some(c.text.clone()),
            _ => {} // HDSSignalingData and later additions: ignored
        }
    }
    Ok(d)
}

fn parse_usage_rule(el: &Element) -> Result<UsageRule> {
    let kid = required_kid(el, "ContentKeyUsageRule")?;
    let mut rule = UsageRule {
        kid,
        intended_track_type: el.attr("intendedTrackType").map(str::to_owned),
        video: Vec::new(),
        audio: Vec::new(),
        bitrate: Vec::new(),
    };
    let unusable = |what: &str| Error::CpixUnsupported(format!("usage rule for key {kid}: {what}"));
    for f in &el.children {
        if f.ns != CPIX_NS {
            return Err(unusable(&format!("unknown filter {{{}}}{}", snippet(&f.ns), snippet(&f.name))));
        }
        match f.name.as_str() {
            "VideoFilter" => {
                for attr in ["hdr", "wcg", "minFps", "maxFps"] {
                    if f.attr(attr).is_some() {
                        return Err(unusable(&format!("VideoFilter@{attr} cannot be evaluated")));
                    }
                }
                let min_pixels = int_attr(f, "minPixels")?.unwrap_or(0);
                let max_pixels = int_attr(f, "maxPixels")?.unwrap_or(u64::from(u32::MAX));
                rule.video.push(VideoFilter { min_pixels, max_pixels });
            }
            "AudioFilter" => rule.audio.push(AudioFilter {
                min_channels: int_attr(f, "minChannels")?,
                max_channels: int_attr(f, "maxChannels")?,
            }),
            "BitrateFilter" => {
                let min = int_attr(f, "minBitrate")?;
                let max = int_attr(f, "maxBitrate")?;
                if min.is_none() && max.is_none() {
                    return Err(cpix(format!("usage rule for key {kid}: BitrateFilter without bounds")));
                }
                rule.bitrate.push(BitrateFilter {
                    min_bitrate: min.unwrap_or(0),
                    max_bitrate: max.unwrap_or(u64::from(u32::MAX)),
                });
            }
            "LabelFilter" => return Err(unusable("LabelFilter (labels are not mapped to tracks)")),
            "KeyPeriodFilter" => return Err(unusable("KeyPeriodFilter (key rotation)")),
            other => return Err(unusable(&format!("unknown filter {}", snippet(other)))),
        }
    }
    Ok(rule)
}

fn required_kid(el: &Element, what: &str) -> Result<Kid> {
    let s = el.attr("kid").ok_or_else(|| cpix(format!("{what} without @kid")))?;
    Ok(Kid::parse(s)?)
}

fn int_attr(el: &Element, name: &str) -> Result<Option<u64>> {
    match el.attr(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .trim_start_matches('+')
            .parse::<u64>()
            .map(Some)
            .map_err(|_| cpix(format!("{}@{name} is not a non-negative integer: {:?}", el.name, snippet(v)))),
    }
}

/// xs:base64Binary: whitespace allowed anywhere.
fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact.as_bytes()).map_err(|e| cpix(format!("{what} is not valid base64 ({e})")))
}

fn decode_b64_text(text: &str, what: &str) -> Result<String> {
    String::from_utf8(decode_b64(text, what)?).map_err(|_| cpix(format!("{what} does not decode to UTF-8 text")))
}

/// `ContentProtectionData` goes verbatim into the MPD, so it must be a well-formed
/// fragment: parsed inside a wrapper declaring the `cenc`, `mspr` and `dashif` prefixes
/// (which the MPD root declares too), so fragments relying on those still pass.
fn check_fragment(fragment: &str, system_id: SystemId, kid: Kid) -> Result<()> {
    let decls: String = crate::dash::MPD_NAMESPACES.iter().map(|(p, u)| format!(r#" xmlns:{p}="{u}""#)).collect();
    let wrapped = format!("<w{decls}>{fragment}</w>");
    let limits = Limits { max_bytes: MAX_CPIX_BYTES, max_elements: 1_000, max_depth: 16 };
    parse_tree(wrapped.as_bytes(), limits).map(drop).map_err(|e| {
        let why = match e {
            Error::Cpix(m) => m,
            other => other.to_string(),
        };
        cpix(format!(
            "ContentProtectionData of DRMSystem {system_id} for key {kid} is not a well-formed fragment: {why}"
        ))
    })
}

/// `HLSSignalingData` goes verbatim into playlists: every non-empty line must be a tag
/// (`#…`), never a URI line, and carry no control characters.
fn check_hls_lines(data: &str) -> Result<()> {
    for line in data.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            return Err(cpix(format!("HLSSignalingData line is not a tag: {:?}", snippet(line))));
        }
        check_embeddable("CPIX HLSSignalingData", line, false)?;
    }
    Ok(())
}

fn cpix(msg: String) -> Error {
    Error::Cpix(msg)
}
