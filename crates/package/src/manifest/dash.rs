//! Static DASH MPD (ISO/IEC 23009-1, live profile addressing): one AdaptationSet per content
//! type and language, `SegmentTemplate` with `$Number$` and a `SegmentTimeline` per
//! Representation.

use std::fmt::Write;

use crate::asset::{Asset, AssetTrack, DashText};
use crate::lang::bcp47;
use crate::manifest::{frame_rate_str, iso_duration};
use crate::track::TrackKind;

/// `@schemeIdUri` of the SupplementalProperty linking AdaptationSets a player may switch
/// between seamlessly (ISO/IEC 23009-1 5.3.3.5; DASH-IF IOP 3.8).
pub const ADAPTATION_SET_SWITCHING: &str = "urn:mpeg:dash:adaptation-set-switching:2016";

/// How one track is protected in an MPD: its `ContentProtection` elements, the key it is
/// encrypted with (tracks only share an AdaptationSet when they share a key), and the path
/// segment its encrypted init and media segments live under (`cenc`, `cbcs`).
#[derive(Debug, Clone)]
pub struct TrackSignal {
    /// `ContentProtection` elements, ready to embed.
    pub content_protection: String,
    /// Default KID (hex), for grouping.
    pub kid: String,
    /// Path segment between the track name and the segment name.
    pub path: &'static str,
}

/// Protection for a whole MPD: extra namespace declarations for the root, and per track (in
/// asset order) its signalling.
#[derive(Debug, Clone, Default)]
pub struct DashProtection {
    /// `(prefix, uri)` pairs declared on the root element.
    pub namespaces: Vec<(&'static str, &'static str)>,
    /// Per asset track.
    pub tracks: Vec<TrackSignal>,
}

/// Writes the MPD of `asset`.
pub fn write_mpd(asset: &Asset) -> String {
    write_mpd_with(asset, None)
}

/// Writes the MPD of `asset`, encrypted as `prot` describes when given.
pub fn write_mpd_with(asset: &Asset, prot: Option<&DashProtection>) -> String {
    let mut s = String::with_capacity(4096);
    let dur = iso_duration(asset.duration_secs());
    let max_seg = asset
        .tracks
        .iter()
        .flat_map(|t| t.segments.iter().map(move |s| s.duration as f64 / t.track().info.timescale as f64))
        .fold(1.0, f64::max);
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"{} xsi:schemaLocation=\"urn:mpeg:dash:schema:mpd:2011 DASH-MPD.xsd\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" type=\"static\" mediaPresentationDuration=\"{dur}\" maxSegmentDuration=\"{}\" minBufferTime=\"{}\">\n  <Period id=\"0\" start=\"PT0S\">\n",
        prot.map(|p| p.namespaces.iter().map(|(k, v)| format!(" xmlns:{k}=\"{v}\"")).collect::<String>()).unwrap_or_default(),
        iso_duration(max_seg),
        iso_duration(max_seg),
    );
    let signal = |t: &AssetTrack| -> Option<&TrackSignal> {
        let i = asset.tracks.iter().position(|x| std::ptr::eq(x, t))?;
        prot.and_then(|p| p.tracks.get(i))
    };
    // Group tracks into adaptation sets: (kind, language, codec family), in asset order.
    let mut groups: Vec<(TrackKind, Option<String>, Vec<&AssetTrack>)> = Vec::new();
    for t in &asset.tracks {
        let lang = t.language.clone();
        let kid = signal(t).map(|s| s.kid.as_str());
        match groups.iter_mut().find(|g| g.0 == t.kind() && g.1 == lang && g.2[0].track().info.fourcc == t.track().info.fourcc && signal(g.2[0]).map(|s| s.kid.as_str()) == kid) {
            Some(g) => g.2.push(t),
            None => groups.push((t.kind(), lang, vec![t])),
        }
    }
    // Video sets that differ only by key (DASH-IF keeps different default_KIDs apart) are
    // linked for switching, as Shaka Packager links them: each names the others of the same
    // language and codec family in an adaptation-set-switching property. Without it dash.js and
    // ExoPlayer adapt only inside one set, so within one key group.
    let switch_targets = |id: usize| -> Vec<usize> {
        let (kind, lang, tracks) = &groups[id];
        if *kind != TrackKind::Video {
            return Vec::new();
        }
        let fourcc = tracks[0].track().info.fourcc;
        groups.iter().enumerate().filter(|(j, g)| *j != id && g.0 == *kind && g.1 == *lang && g.2[0].track().info.fourcc == fourcc).map(|(j, _)| j).collect()
    };
    let first_audio_lang = asset.tracks.iter().find(|t| t.kind() == TrackKind::Audio).map(|t| t.language.clone());
    for (id, (kind, lang, tracks)) in groups.iter().enumerate() {
        let _ = write!(s, "    <AdaptationSet id=\"{id}\" contentType=\"{}\" mimeType=\"{}/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\"", kind.as_str(), kind.as_str());
        if let Some(l) = lang {
            let _ = write!(s, " lang=\"{}\"", bcp47(l));
        }
        if *kind == TrackKind::Video {
            let w = tracks.iter().map(|t| t.track().info.width).max().unwrap_or(0);
            let h = tracks.iter().map(|t| t.track().info.height).max().unwrap_or(0);
            let _ = write!(s, " maxWidth=\"{w}\" maxHeight=\"{h}\"");
            if let Some(fr) = tracks.iter().filter_map(|t| t.frame_rate).max_by(|a, b| (a.0 as u64 * b.1 as u64).cmp(&(b.0 as u64 * a.1 as u64))) {
                let _ = write!(s, " maxFrameRate=\"{}\"", frame_rate_str(fr));
            }
        }
        s.push_str(">\n");
        // ContentProtection precedes Role in the schema's element order.
        if let Some(sig) = signal(tracks[0]) {
            s.push_str(&sig.content_protection);
            if !sig.content_protection.ends_with('\n') {
                s.push('\n');
            }
        }
        // SupplementalProperty follows ContentProtection and precedes Role (schema order).
        let targets = switch_targets(id);
        if !targets.is_empty() {
            let ids: Vec<String> = targets.iter().map(|j| j.to_string()).collect();
            let _ = writeln!(s, "      <SupplementalProperty schemeIdUri=\"{ADAPTATION_SET_SWITCHING}\" value=\"{}\"/>", ids.join(","));
        }
        if *kind == TrackKind::Audio {
            let role = if Some(lang.clone()) == first_audio_lang { "main" } else { "alternate" };
            let _ = writeln!(s, "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>");
        }
        for t in tracks {
            write_representation(&mut s, t, signal(t).map_or("", |x| x.path));
        }
        s.push_str("    </AdaptationSet>\n");
    }
    write_text_sets(&mut s, asset, groups.len());
    s.push_str("  </Period>\n</MPD>\n");
    s
}

/// One text AdaptationSet per subtitle track that parsed, never encrypted, with two
/// Representations of the same cues a player chooses between by format: the whole track as
/// one WebVTT file (a sidecar with a `BaseURL`, ISO/IEC 23009-1 5.3.9; DASH-IF IOP 6.4.5) and
/// IMSC1 Text Profile in fMP4 segments (`stpp.ttml.im1t`, ISO/IEC 14496-30; DASH-IF IOP 6.4.4)
/// lined up with the video's segments. `mimeType` and `codecs` are per Representation. One set
/// rather than one per format, so a player listing tracks per AdaptationSet (dash.js) lists
/// each language once. `first_id` continues the AdaptationSet ids.
fn write_text_sets(s: &mut String, asset: &Asset, first_id: usize) {
    if asset.listed_texts().next().is_none() {
        return;
    }
    // The HLS fMP4 subtitle timeline: the stpp segment n holds the cues of WebVTT segment n.
    // With `imsc1` alone and no timeline (no video or audio to line up with), the WebVTT file
    // is offered after all rather than an empty set.
    let timeline = match asset.dash_text {
        DashText::WebVtt => None,
        DashText::Both | DashText::Imsc1 => crate::text::TextTimeline::of(asset, crate::ts::carries, false).filter(|tl| !tl.is_empty()),
    };
    let vtt = asset.dash_text != DashText::Imsc1 || timeline.is_none();
    for (k, t) in asset.listed_texts().enumerate() {
        let _ = write!(s, "    <AdaptationSet id=\"{}\" contentType=\"text\"", first_id + k);
        if let Some(l) = &t.language {
            let _ = write!(s, " lang=\"{}\"", bcp47(l));
        }
        s.push_str(">\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n");
        if vtt {
            let _ = writeln!(s, "      <Representation id=\"{}\" mimeType=\"text/vtt\" bandwidth=\"{}\">", t.name, t.bandwidth());
            let _ = writeln!(s, "        <BaseURL>{}/{}</BaseURL>", t.name, crate::names::TEXT_WHOLE);
            s.push_str("      </Representation>\n");
        }
        if let Some(tl) = timeline.as_ref() {
            write_stpp_representation(s, t, tl);
        }
        s.push_str("    </AdaptationSet>\n");
    }
}

/// The `stpp` Representation of subtitle track `t`: timescale 1000, one `S` per segment of
/// `tl` with the same spans the segments' `tfdt`/`trun` carry; no `presentationTimeOffset`
/// (the text track's time 0 is presentation time 0).
fn write_stpp_representation(s: &mut String, t: &crate::text::TextTrack, tl: &crate::text::TextTimeline) {
    use crate::text::stpp;
    let _ = writeln!(s, "      <Representation id=\"{}/{}\" mimeType=\"{}\" codecs=\"{}\" bandwidth=\"{}\">", t.name, crate::names::TEXT_STPP, stpp::MIME, stpp::CODECS, t.bandwidth());
    let _ = writeln!(
        s,
        "        <SegmentTemplate timescale=\"{}\" initialization=\"{n}/{p}/{init}\" media=\"{n}/{p}/$Number$.{ext}\" startNumber=\"1\">",
        stpp::TIMESCALE,
        n = t.name,
        p = crate::names::TEXT_STPP,
        init = crate::names::INIT,
        ext = crate::names::SEGMENT_FMP4,
    );
    s.push_str("          <SegmentTimeline>\n");
    let spans: Vec<(u64, u64)> = (0..tl.len()).filter_map(|i| tl.sample_span(i)).collect();
    let mut k = 0;
    while k < spans.len() {
        let (start, end) = spans[k];
        let d = end - start;
        let mut r = 0;
        while k + r + 1 < spans.len() && spans[k + r + 1].1 - spans[k + r + 1].0 == d && spans[k + r + 1].0 == spans[k + r].1 {
            r += 1;
        }
        write_s(s, start, d, r);
        k += r + 1;
    }
    s.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n");
}

fn write_representation(s: &mut String, t: &AssetTrack, sub: &str) {
    let i = &t.track().info;
    let _ = write!(s, "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\"", t.name, t.bandwidth, i.codec_string);
    match i.kind {
        TrackKind::Video => {
            let _ = write!(s, " width=\"{}\" height=\"{}\" sar=\"1:1\"", i.width, i.height);
            if let Some(fr) = t.frame_rate {
                let _ = write!(s, " frameRate=\"{}\"", frame_rate_str(fr));
            }
            s.push_str(">\n");
        }
        TrackKind::Audio => {
            let _ = writeln!(s, " audioSamplingRate=\"{}\">", i.sample_rate);
            let _ = writeln!(
                s,
                "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
                i.channels
            );
        }
    }
    let _ = writeln!(
        s,
        "        <SegmentTemplate timescale=\"{}\" presentationTimeOffset=\"{}\" initialization=\"{n}/{init}\" media=\"{n}/$Number$.{ext}\" startNumber=\"1\">",
        i.timescale,
        i.media_time.max(0),
        n = if sub.is_empty() { t.name.clone() } else { format!("{}/{sub}", t.name) },
        init = crate::names::INIT,
        ext = crate::names::SEGMENT_FMP4,
    );
    s.push_str("          <SegmentTimeline>\n");
    // Presentation times are made contiguous: each S lasts until the next one starts.
    let segs = &t.segments;
    let mut k = 0;
    while k < segs.len() {
        let start = segs[k].pres_time.max(0);
        let d = |j: usize| -> u64 {
            match segs.get(j + 1).and_then(|n| n.pres_time.checked_sub(segs[j].pres_time)) {
                Some(d) if d > 0 => d as u64,
                _ => segs[j].duration,
            }
        };
        let dk = d(k);
        let mut r = 0;
        while k + r + 1 < segs.len() && d(k + r + 1) == dk {
            r += 1;
        }
        write_s(s, start as u64, dk, r);
        k += r + 1;
    }
    s.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n");
}

/// An MPD whose `SegmentTemplate` `initialization` and `media` URLs carry the query `q`
/// (`name=value&…`, already URL-encoded; XML-escaped here): a viewer's signed-URL credential
/// passed on to the segments the MPD lists.
pub fn carry_query_mpd(mpd: &str, q: &str) -> String {
    let q = q.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let mut out = String::with_capacity(mpd.len() + 256);
    for line in mpd.lines() {
        if let Some(url) = line.trim_start().strip_prefix("<BaseURL>").and_then(|r| r.strip_suffix("</BaseURL>")).filter(|u| u.ends_with(crate::names::TEXT_WHOLE)) {
            // A subtitle sidecar file: its URL carries the query too.
            let indent = &line[..line.len() - line.trim_start().len()];
            let sep = if url.contains('?') { "&amp;" } else { "?" };
            out.push_str(&format!("{indent}<BaseURL>{url}{sep}{q}</BaseURL>"));
        } else if line.trim_start().starts_with("<SegmentTemplate") {
            let mut l = line.to_string();
            for attr in ["initialization=\"", "media=\""] {
                if let Some(start) = l.find(&format!(" {attr}")).map(|i| i + 1 + attr.len()) {
                    if let Some(len) = l[start..].find('"') {
                        let sep = if l[start..start + len].contains('?') { "&amp;" } else { "?" };
                        l.insert_str(start + len, &format!("{sep}{q}"));
                    }
                }
            }
            out.push_str(&l);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// One `SegmentTimeline` entry: `r` more segments of duration `d` follow the one at `start`.
fn write_s(s: &mut String, start: u64, d: u64, r: usize) {
    if r > 0 {
        let _ = writeln!(s, "            <S t=\"{start}\" d=\"{d}\" r=\"{r}\"/>");
    } else {
        let _ = writeln!(s, "            <S t=\"{start}\" d=\"{d}\"/>");
    }
}

#[cfg(test)]
mod carry_tests {
    use super::*;

    #[test]
    fn segment_templates_carry_the_query_xml_escaped() {
        let mpd = "<MPD>\n        <SegmentTemplate timescale=\"1\" initialization=\"v/init.mp4\" media=\"v/$Number$.m4s\" startNumber=\"1\">\n<BaseURL>x/</BaseURL>\n</MPD>\n";
        let got = carry_query_mpd(mpd, "Policy=p&Signature=s\"<>");
        assert_eq!(
            got,
            "<MPD>\n        <SegmentTemplate timescale=\"1\" initialization=\"v/init.mp4?Policy=p&amp;Signature=s&quot;&lt;&gt;\" media=\"v/$Number$.m4s?Policy=p&amp;Signature=s&quot;&lt;&gt;\" startNumber=\"1\">\n<BaseURL>x/</BaseURL>\n</MPD>\n"
        );
    }
}
