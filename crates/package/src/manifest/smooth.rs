//! The Smooth Streaming client manifest ([MS-SSTR] 2.2.2): `SmoothStreamingMedia` with one
//! `StreamIndex` per group of [`crate::smooth::streams`], its `QualityLevel`s and chunks.
//! See [`crate::smooth`] for the timescales and the fragments the manifest's URLs name.
//!
//! [MS-SSTR]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-sstr/

use std::fmt::Write;

use crate::asset::Asset;
use crate::smooth::{streams, SmoothLevel};
use crate::track::{CodecConfig, TrackKind};

/// The root `TimeScale` of our manifests (100 ns units), in which `Duration` is given.
pub const MANIFEST_TIMESCALE: u64 = 10_000_000;

/// `value` converted from `timescale` to the manifest's 10 MHz, rounded to nearest.
fn to_hns(value: u64, timescale: u32) -> u64 {
    let ts = timescale.max(1) as u128;
    ((value as u128 * MANIFEST_TIMESCALE as u128 + ts / 2) / ts).min(u64::MAX as u128) as u64
}

/// Writes the client manifest (`SmoothStreamingMedia`, MajorVersion 2, MinorVersion 0) of
/// `asset`. Chunks use duration coding (`t` on the first chunk and after any gap, `d` on
/// every chunk) and no `r`, which every Smooth client reads (AMS's `fmp4-v20` form).
pub fn write_manifest(asset: &Asset) -> String {
    write_manifest_with(asset, None)
}

/// [`write_manifest`] with an optional `<Protection>` element, given as ready XML (e.g.
/// `sealcast_drm::smooth::protection` of a PlayReady Object) and written verbatim, on its
/// own line, as the first child of `SmoothStreamingMedia`: MS-SSTR 2.2.2.1 puts the optional
/// ProtectionElement before the StreamIndex elements. `None` gives [`write_manifest`]'s
/// bytes exactly.
pub fn write_manifest_with(asset: &Asset, protection: Option<&str>) -> String {
    let streams = streams(asset);
    let duration = asset.tracks.iter().map(|t| to_hns(t.duration, t.track().info.timescale)).max().unwrap_or(0);
    let mut s = String::with_capacity(4096);
    let _ = writeln!(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(s, "<SmoothStreamingMedia MajorVersion=\"2\" MinorVersion=\"0\" TimeScale=\"{MANIFEST_TIMESCALE}\" Duration=\"{duration}\">");
    if let Some(p) = protection {
        s.push_str("  ");
        s.push_str(p.trim());
        s.push('\n');
    }
    for st in &streams {
        let chunks = st.chunks();
        let _ = write!(s, "  <StreamIndex Type=\"{}\" Name=\"{}\"", st.kind.as_str(), escape(&st.name));
        if let Some(l) = &st.language {
            let _ = write!(s, " Language=\"{}\"", escape(l));
        }
        let _ = write!(
            s,
            " TimeScale=\"{}\" Chunks=\"{}\" QualityLevels=\"{}\" Url=\"QualityLevels({{bitrate}})/Fragments({}={{start time}})\"",
            st.timescale,
            chunks.len(),
            st.levels.len(),
            escape(&st.name)
        );
        if st.kind == TrackKind::Video {
            let w = st.levels.iter().map(|l| l.track.track().info.width).max().unwrap_or(0);
            let h = st.levels.iter().map(|l| l.track.track().info.height).max().unwrap_or(0);
            let _ = write!(s, " MaxWidth=\"{w}\" MaxHeight=\"{h}\" DisplayWidth=\"{w}\" DisplayHeight=\"{h}\"");
        }
        s.push_str(">\n");
        for (i, l) in st.levels.iter().enumerate() {
            write_quality_level(&mut s, i, l);
        }
        let mut next: Option<u64> = None;
        for c in chunks {
            s.push_str("    <c");
            let t = c.decode_time.saturating_add(st.offset);
            if next != Some(t) {
                let _ = write!(s, " t=\"{t}\"");
            }
            let _ = writeln!(s, " d=\"{}\"/>", c.duration);
            next = Some(t.saturating_add(c.duration));
        }
        s.push_str("  </StreamIndex>\n");
    }
    s.push_str("</SmoothStreamingMedia>\n");
    s
}

fn write_quality_level(s: &mut String, index: usize, l: &SmoothLevel<'_>) {
    let i = &l.track.track().info;
    let _ = write!(s, "    <QualityLevel Index=\"{index}\" Bitrate=\"{}\" FourCC=\"{}\"", l.bitrate, fourcc(&i.config, i.fourcc.0));
    match &i.config {
        CodecConfig::Avc(c) => {
            let cpd = annex_b(c.sps.iter().chain(&c.pps));
            let _ = write!(s, " MaxWidth=\"{}\" MaxHeight=\"{}\" CodecPrivateData=\"{cpd}\"", i.width, i.height);
            if c.nal_length_size != 4 {
                let _ = write!(s, " NALUnitLengthField=\"{}\"", c.nal_length_size);
            }
        }
        CodecConfig::Hevc(c) => {
            let cpd = annex_b(c.vps.iter().chain(&c.sps).chain(&c.pps));
            let _ = write!(s, " MaxWidth=\"{}\" MaxHeight=\"{}\" CodecPrivateData=\"{cpd}\"", i.width, i.height);
            if c.nal_length_size != 4 {
                let _ = write!(s, " NALUnitLengthField=\"{}\"", c.nal_length_size);
            }
        }
        CodecConfig::Aac { raw, .. } => {
            // MS-SSTR says AACL's CodecPrivateData SHOULD be empty, yet clients take the
            // object type (dash.js) or the decoder config (ExoPlayer) from it, and AMS and
            // Unified Origin write the AudioSpecificConfig; so do we.
            let _ = write!(
                s,
                " SamplingRate=\"{}\" Channels=\"{}\" BitsPerSample=\"16\" PacketSize=\"4\" AudioTag=\"255\" CodecPrivateData=\"{}\"",
                i.sample_rate,
                i.channels,
                hex(raw)
            );
        }
    }
    s.push_str("/>\n");
}

/// The `FourCC` attribute: `H264` (MS-SSTR's code, read by Silverlight, dash.js and
/// ExoPlayer) for AVC; `HVC1`/`HEV1` after the sample entry for HEVC (no registered Smooth
/// code; dash.js and ExoPlayer skip these levels); `AACH` for HE-AAC (SBR/PS object types),
/// else `AACL`.
fn fourcc(c: &CodecConfig, entry: [u8; 4]) -> &'static str {
    match c {
        CodecConfig::Avc(_) => "H264",
        CodecConfig::Hevc(_) => {
            if &entry == b"hev1" {
                "HEV1"
            } else {
                "HVC1"
            }
        }
        CodecConfig::Aac { asc, .. } => {
            if matches!(asc.object_type, 5 | 29) {
                "AACH"
            } else {
                "AACL"
            }
        }
    }
}

/// Parameter sets as an Annex-B byte stream (`00000001` before each), hex-coded.
fn annex_b<'a>(nals: impl Iterator<Item = &'a Vec<u8>>) -> String {
    let mut s = String::new();
    for n in nals {
        s.push_str("00000001");
        s.push_str(&hex(n));
    }
    s
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02X}");
    }
    s
}

/// Escapes an attribute value for double quotes.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            _ => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hns_conversion_rounds_to_nearest() {
        assert_eq!(to_hns(90_000, 90_000), 10_000_000);
        assert_eq!(to_hns(1, 3), 3_333_333);
        assert_eq!(to_hns(2, 3), 6_666_667);
        assert_eq!(to_hns(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn attributes_are_escaped() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(hex(&[0x11, 0x90, 0x0a]), "11900A");
    }
}
