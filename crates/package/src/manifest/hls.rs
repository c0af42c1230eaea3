//! HLS (RFC 8216) playlists for fMP4 segments: the multivariant playlist with an audio
//! rendition group, and VOD media playlists.

use std::fmt::Write;

use crate::asset::{Asset, AssetTrack};
use crate::names;
use crate::lang::{bcp47, display_name};
use crate::track::TrackKind;
use sealcast_mpegts::{AUDIO_PES_MAX_FRAMES, AUDIO_PES_SPAN_90K};

/// Segment URL naming for one output format.
#[derive(Debug, Clone, Copy)]
pub struct HlsFlavor {
    /// Media playlist file name under the track folder.
    pub playlist: &'static str,
    /// Media segment extension.
    pub segment_ext: &'static str,
    /// Init segment name (`None` for TS).
    pub init: Option<&'static str>,
    /// EXT-X-VERSION.
    pub version: u8,
    /// The default audio track is muxed into each video segment (TS): its rendition has no
    /// URI, and bandwidths include the TS overhead.
    pub muxed_audio: bool,
    /// MPEG-TS segments: the playlists list only the tracks TS carries ([`crate::ts::carries`]).
    pub mpegts: bool,
    /// I-frame playlist file name under a video track's folder.
    pub iframes: &'static str,
}

impl HlsFlavor {
    /// Whether track `t` appears in playlists of this flavor.
    pub fn lists(&self, t: &AssetTrack) -> bool {
        !self.mpegts || crate::ts::carries(t)
    }
}

/// fMP4/CMAF segments.
pub const FMP4: HlsFlavor = HlsFlavor { playlist: names::MEDIA_FMP4, segment_ext: names::SEGMENT_FMP4, init: Some(names::INIT), version: 7, muxed_audio: false, mpegts: false, iframes: names::IFRAMES_FMP4 };

/// MPEG-TS segments (video with the default audio muxed in; other languages audio-only).
pub const TS: HlsFlavor = HlsFlavor { playlist: names::MEDIA_TS, segment_ext: names::SEGMENT_TS, init: None, version: 3, muxed_audio: true, mpegts: true, iframes: names::IFRAMES_TS };

/// Continuity-padding packets per PID and segment: the muxer pads each PID's packet count to a
/// multiple of 16, so 0 to 15 of them, 7.5 on average.
const PAD_PEAK: f64 = 15.0;
const PAD_AVERAGE: f64 = 7.5;

/// Bytes the muxer adds to each video access unit: a PES header with PTS and DTS (19), the
/// PCR adaptation field of its first packet (8), an AUD (6) and on average half a packet of
/// stuffing (its PES ends mid-packet).
const VIDEO_AU_OVERHEAD: f64 = 19.0 + 8.0 + 6.0 + 92.0;

/// Bytes the muxer adds to each AAC frame on average: its ADTS header (7) and its share of a
/// PES (header with PTS 14, half a packet of end stuffing, and the PCR adaptation field when
/// the audio PID carries the PCR, i.e. has no video beside it). A PES takes the frames that
/// start within [`AUDIO_PES_SPAN_90K`] of its first (three at 44.1 or 48 kHz).
fn audio_frame_overhead(sample_rate: u32, carries_pcr: bool) -> f64 {
    let frame_90k = 90_000.0 * 1024.0 / sample_rate.max(1) as f64;
    let per_pes = ((AUDIO_PES_SPAN_90K as f64 / frame_90k).floor() + 1.0).clamp(1.0, AUDIO_PES_MAX_FRAMES as f64);
    7.0 + (14.0 + 92.0 + if carries_pcr { 8.0 } else { 0.0 }) / per_pes
}

/// TS bitrates of a variant, (peak, average), from a per-segment model of what the muxer
/// writes: payload grows by 188/184 (packet headers); each segment adds PAT, PMT and the
/// continuity padding of each PID ([`PAD_PEAK`] packets for the peak, [`PAD_AVERAGE`] for the
/// average); each video access unit [`VIDEO_AU_OVERHEAD`], each audio frame
/// [`audio_frame_overhead`]. The peak errs high on purpose (RFC 8216 wants BANDWIDTH at or
/// above every segment's rate); the average is the expected size.
fn ts_rates(v: &AssetTrack, a: Option<&AssetTrack>) -> (u64, u64) {
    let vts = v.track().info.timescale.max(1) as f64;
    let fps = v.frame_rate.map_or(30.0, |(n, d)| n as f64 / d.max(1) as f64);
    let (a_rate, a_frames, a_overhead) = a.map_or((0.0, 0.0, 0.0), |a| {
        let rate = a.track().info.sample_rate;
        (a.bandwidth as f64 / 8.0, rate as f64 / 1024.0, audio_frame_overhead(rate, false))
    });
    let a_avg = a.map_or(0.0, |a| a.avg_bandwidth as f64 / 8.0);
    let seg_bytes = |media: f64, secs: f64, audio_per_sec: f64, pad: f64| {
        let pids = if a.is_some() { 2.0 } else { 1.0 };
        2.0 * 188.0 + pids * pad * 188.0 + (media + secs * audio_per_sec) * 188.0 / 184.0 + secs * fps * VIDEO_AU_OVERHEAD + secs * a_frames * a_overhead
    };
    let mut peak = 0f64;
    let (mut total, mut secs_total) = (0f64, 0f64);
    for s in &v.segments {
        let secs = s.duration as f64 / vts;
        if secs <= 0.0 {
            continue;
        }
        peak = peak.max(seg_bytes(s.media_bytes as f64, secs, a_rate, PAD_PEAK) * 8.0 / secs);
        total += seg_bytes(s.media_bytes as f64, secs, a_avg, PAD_AVERAGE);
        secs_total += secs;
    }
    let avg = if secs_total > 0.0 { total * 8.0 / secs_total } else { 0.0 };
    (peak.ceil() as u64, avg.ceil() as u64)
}

/// TS bitrates of an audio-only rendition (same model, no video).
fn ts_rates_audio(a: &AssetTrack) -> (u64, u64) {
    let ts = a.track().info.timescale.max(1) as f64;
    let frames = a.track().info.sample_rate as f64 / 1024.0;
    let overhead = audio_frame_overhead(a.track().info.sample_rate, true);
    let seg = |media: f64, secs: f64, pad: f64| 2.0 * 188.0 + pad * 188.0 + media * 188.0 / 184.0 + secs * frames * overhead;
    let mut peak = 0f64;
    let (mut total, mut secs_total) = (0f64, 0f64);
    for s in &a.segments {
        let secs = s.duration as f64 / ts;
        if secs <= 0.0 {
            continue;
        }
        peak = peak.max(seg(s.media_bytes as f64, secs, PAD_PEAK) * 8.0 / secs);
        total += seg(s.media_bytes as f64, secs, PAD_AVERAGE);
        secs_total += secs;
    }
    (peak.ceil() as u64, if secs_total > 0.0 { (total * 8.0 / secs_total).ceil() as u64 } else { 0 })
}

fn audio_group(t: &AssetTrack) -> String {
    format!("audio-{}", t.track().info.codec_string)
}

/// How an encrypted HLS presentation is signalled: `#EXT-X-SESSION-KEY` lines for the
/// multivariant playlist, and per asset track (in asset order) its `#EXT-X-KEY` lines and the
/// path segment its encrypted playlist and segments live under (`cbcs`, …).
#[derive(Debug, Clone, Default)]
pub struct HlsProtection {
    /// `#EXT-X-SESSION-KEY` lines (no newline).
    pub session_keys: Vec<String>,
    /// Per asset track.
    pub tracks: Vec<HlsTrackSignal>,
}

/// One track's HLS signalling.
#[derive(Debug, Clone, Default)]
pub struct HlsTrackSignal {
    /// `#EXT-X-KEY` lines (no newline), written after `#EXT-X-MAP`.
    pub key_lines: Vec<String>,
    /// Path segment between the track name and the playlist name.
    pub path: &'static str,
}

/// Writes the multivariant playlist.
pub fn write_master(asset: &Asset, flavor: HlsFlavor) -> String {
    write_master_with(asset, flavor, None)
}

/// Writes the multivariant playlist of `asset`, encrypted as `prot` says when given.
pub fn write_master_with(asset: &Asset, flavor: HlsFlavor, prot: Option<&HlsProtection>) -> String {
    let mut s = String::with_capacity(2048);
    let _ = write!(s, "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-INDEPENDENT-SEGMENTS\n", flavor.version);
    for line in prot.map(|p| p.session_keys.as_slice()).unwrap_or_default() {
        s.push_str(line);
        s.push('\n');
    }
    // Where a track's media playlist is, relative to this playlist.
    let uri = |t: &AssetTrack| -> String {
        let i = asset.tracks.iter().position(|x| std::ptr::eq(x, t));
        match i.and_then(|i| prot.and_then(|p| p.tracks.get(i))).map(|x| x.path).filter(|p| !p.is_empty()) {
            Some(sub) => format!("{}/{sub}/{}", t.name, flavor.playlist),
            None => format!("{}/{}", t.name, flavor.playlist),
        }
    };
    // Renditions the flavor cannot carry (HEVC over TS) are left out; they stay in fMP4.
    let audio: Vec<&AssetTrack> = asset.tracks.iter().filter(|t| t.kind() == TrackKind::Audio && flavor.lists(t)).collect();
    let video: Vec<&AssetTrack> = asset.tracks.iter().filter(|t| t.kind() == TrackKind::Video && flavor.lists(t)).collect();
    let mut groups: Vec<String> = Vec::new();
    for a in &audio {
        let g = audio_group(a);
        let first = !groups.contains(&g);
        if first {
            groups.push(g.clone());
        }
        let lang = a.language.as_deref();
        let name = lang.map(display_name).unwrap_or_else(|| a.name.clone());
        let _ = write!(s, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{g}\",NAME=\"{name}\"");
        if let Some(l) = lang {
            let _ = write!(s, ",LANGUAGE=\"{}\"", bcp47(l));
        }
        let _ = write!(s, ",DEFAULT={},AUTOSELECT=YES,CHANNELS=\"{}\"", if first { "YES" } else { "NO" }, a.track().info.channels);
        // A muxed default rendition has no URI: its audio is in the variant's segments.
        if !(flavor.muxed_audio && first && !video.is_empty()) {
            let _ = write!(s, ",URI=\"{}\"", uri(a));
        }
        s.push('\n');
    }
    // Subtitle renditions (RFC 8216 4.3.4.1): one group, not shown unless chosen.
    let subs = write_subtitles(&mut s, asset, flavor);
    let subs_attr = if subs { format!(",SUBTITLES=\"{SUBTITLE_GROUP}\"") } else { String::new() };
    if video.is_empty() {
        for a in &audio {
            let _ = writeln!(
                s,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"{subs_attr},CLOSED-CAPTIONS=NONE\n{}",
                if flavor.muxed_audio { ts_rates_audio(a).0 } else { a.bandwidth as u64 },
                if flavor.muxed_audio { ts_rates_audio(a).1 } else { a.avg_bandwidth as u64 },
                a.track().info.codec_string,
                uri(a),
            );
        }
        return s;
    }
    for v in &video {
        // One variant per video rendition and audio group; its bandwidth counts the group's
        // most demanding rendition.
        let group_list: Vec<Option<&String>> = if groups.is_empty() { vec![None] } else { groups.iter().map(Some).collect() };
        for g in group_list {
            let members: Vec<&&AssetTrack> = audio.iter().filter(|a| Some(&audio_group(a)) == g).collect();
            let (peak, avg) = if flavor.muxed_audio {
                // The default (first) audio is muxed in; another language switched to adds
                // its own audio-only rendition on top, at most the heaviest one.
                let (p, a) = ts_rates(v, members.first().copied().copied());
                let alt = members.iter().skip(1).map(|x| ts_rates_audio(x)).max().unwrap_or((0, 0));
                (p + alt.0, a + alt.1)
            } else {
                (v.bandwidth as u64 + members.iter().map(|a| a.bandwidth as u64).max().unwrap_or(0), v.avg_bandwidth as u64 + members.iter().map(|a| a.avg_bandwidth as u64).max().unwrap_or(0))
            };
            let i = &v.track().info;
            let mut codecs = i.codec_string.clone();
            if let Some(a) = members.first() {
                codecs.push(',');
                codecs.push_str(&a.track().info.codec_string);
            }
            let _ = write!(s, "#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS=\"{codecs}\",RESOLUTION={}x{}", i.width, i.height);
            if let Some((n, d)) = v.frame_rate {
                let _ = write!(s, ",FRAME-RATE={:.3}", n as f64 / d as f64);
            }
            if let Some(g) = g {
                let _ = write!(s, ",AUDIO=\"{g}\"");
            }
            // No source carries CEA-608/708 captions that we signal: say so, or players assume
            // captions may be in the video (Apple's authoring rules; RFC 8216 4.3.4.2).
            let _ = writeln!(s, "{subs_attr},CLOSED-CAPTIONS=NONE\n{}", uri(v));
        }
    }
    // Trick play: one I-frame playlist per video rendition (RFC 8216 4.3.4.3).
    for v in &video {
        let i = &v.track().info;
        let media = uri(v);
        let folder = media.rsplit_once('/').map_or("", |(f, _)| f);
        let _ = writeln!(
            s,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},URI=\"{folder}/{}\"",
            iframe_bandwidth(v, flavor),
            i.codec_string,
            i.width,
            i.height,
            flavor.iframes
        );
    }
    s
}

/// `GROUP-ID` of the subtitle renditions.
pub const SUBTITLE_GROUP: &str = "subs";

/// Writes an `#EXT-X-MEDIA:TYPE=SUBTITLES` line per subtitle track that parsed; whether any
/// was written. Subtitles are never encrypted, so their URIs are the clear ones whatever the
/// presentation's protection; their media playlist depends on the flavor's timeline.
fn write_subtitles(s: &mut String, asset: &Asset, flavor: HlsFlavor) -> bool {
    let playlist = if flavor.mpegts { names::TEXT_HLS_TS } else { names::TEXT_HLS };
    let mut seen: Vec<String> = Vec::new();
    for t in asset.listed_texts() {
        let lang = t.language.as_deref();
        let base = lang.map(display_name).unwrap_or_else(|| t.name.clone());
        // NAME must be unique in the group.
        let mut name = base.clone();
        let mut n = 2;
        while seen.contains(&name) {
            name = format!("{base} {n}");
            n += 1;
        }
        seen.push(name.clone());
        let _ = write!(s, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLE_GROUP}\",NAME=\"{name}\"");
        if let Some(l) = lang {
            let _ = write!(s, ",LANGUAGE=\"{}\"", bcp47(l));
        }
        let _ = writeln!(s, ",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"{}/{playlist}\"", t.name);
    }
    !seen.is_empty()
}

/// Bytes of I-frame segment `seg` at most: the whole first fragment of the segment (the key
/// frame is part of it; the index knows fragments, not sample sizes), plus what the container
/// adds (`styp`, `moof` rewrite and encryption boxes for fMP4; PAT, PMT, PES and packet headers,
/// parameter sets and continuity padding for TS).
fn iframe_bytes(t: &AssetTrack, seg: usize, flavor: HlsFlavor) -> Option<u64> {
    let s = t.segments.get(seg)?;
    let f = t.track().fragments.get(s.first).filter(|f| f.keyframe)?;
    Some(if flavor.mpegts { 17 * 188 + f.media_bytes * 188 / 184 + 188 + 1024 } else { f.size + 1024 })
}

/// `BANDWIDTH` of an I-frame playlist: its highest rate, an upper bound (see [`iframe_bytes`]).
fn iframe_bandwidth(t: &AssetTrack, flavor: HlsFlavor) -> u64 {
    let ts = t.track().info.timescale.max(1) as f64;
    (0..t.segments.len())
        .filter_map(|i| {
            let secs = t.segments[i].duration as f64 / ts;
            iframe_bytes(t, i, flavor).filter(|_| secs > 0.0).map(|b| (b as f64 * 8.0 / secs).ceil() as u64)
        })
        .max()
        .unwrap_or(0)
}

/// Writes the I-frame playlist (RFC 8216 4.3.3.6) of video track `track`: one `i{n}.{ext}`
/// per segment, the key frame that starts it, lasting until the next one (the segment's
/// duration). Key lines as for [`write_media_with`].
pub fn write_iframes_with(track: &AssetTrack, flavor: HlsFlavor, key_lines: &[String], segment_key: Option<&dyn Fn(usize) -> String>) -> String {
    let ts = track.track().info.timescale as f64;
    let entries: Vec<(usize, f64)> = (0..track.segments.len()).filter(|&i| iframe_bytes(track, i, flavor).is_some()).map(|i| (i, track.segments[i].duration as f64 / ts)).collect();
    let target = entries.iter().map(|(_, d)| d.round() as u64).max().unwrap_or(1).max(1);
    let mut s = String::with_capacity(128 + entries.len() * 32);
    // EXT-X-I-FRAMES-ONLY needs version 4 (RFC 8216 7).
    let _ = write!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-I-FRAMES-ONLY\n",
        flavor.version.max(4)
    );
    if let Some(init) = flavor.init {
        let _ = writeln!(s, "#EXT-X-MAP:URI=\"{init}\"");
    }
    for line in key_lines {
        s.push_str(line);
        s.push('\n');
    }
    for (i, d) in entries {
        if let Some(k) = segment_key {
            s.push_str(&k(i));
            s.push('\n');
        }
        let _ = writeln!(s, "#EXTINF:{d:.5},\n{}{}.{}", names::IFRAME_PREFIX, i + 1, flavor.segment_ext);
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

/// Writes the VOD media playlist of one track. URLs are relative to the playlist.
pub fn write_media(track: &AssetTrack, flavor: HlsFlavor) -> String {
    write_media_with(track, flavor, &[], None)
}

/// Writes the VOD media playlist of one track with `key_lines` (`#EXT-X-KEY`, no newline)
/// applying to every segment, or with `segment_key(i)` giving the `#EXT-X-KEY` line of
/// segment `i` (from 0; e.g. AES-128 with one IV per segment). Key lines follow
/// `#EXT-X-MAP`, so the init segment stays clear (RFC 8216 §4.3.2.4).
pub fn write_media_with(track: &AssetTrack, flavor: HlsFlavor, key_lines: &[String], segment_key: Option<&dyn Fn(usize) -> String>) -> String {
    let ts = track.track().info.timescale as f64;
    let durs: Vec<f64> = track.segments.iter().map(|s| s.duration as f64 / ts).collect();
    // RFC 8216 §4.3.3.1: every EXTINF, rounded to the nearest integer, <= TARGETDURATION.
    let target = durs.iter().map(|d| d.round() as u64).max().unwrap_or(1).max(1);
    let mut s = String::with_capacity(64 + durs.len() * 24);
    let _ = write!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        flavor.version
    );
    if let Some(init) = flavor.init {
        let _ = writeln!(s, "#EXT-X-MAP:URI=\"{init}\"");
    }
    for line in key_lines {
        s.push_str(line);
        s.push('\n');
    }
    for (i, d) in durs.iter().enumerate() {
        if let Some(k) = segment_key {
            s.push_str(&k(i));
            s.push('\n');
        }
        let _ = writeln!(s, "#EXTINF:{d:.5},\n{}.{}", i + 1, flavor.segment_ext);
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

/// `uri` with `token` added as a percent-encoded `token` query parameter.
pub fn with_token(uri: &str, token: &str) -> String {
    let enc = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC);
    format!("{uri}{}token={enc}", if uri.contains('?') { '&' } else { '?' })
}

/// A multivariant playlist whose media playlist URIs (variant lines, `EXT-X-MEDIA` and
/// `EXT-X-I-FRAME-STREAM-INF` URIs)
/// carry the viewer's `token`, so players that cannot set headers pass it on to key URIs.
pub fn carry_token_master(body: &[u8], token: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        if !line.starts_with('#') {
            out.push_str(&with_token(line, token));
        } else if let Some((head, rest)) = line.split_once(",URI=\"").filter(|_| line.starts_with("#EXT-X-MEDIA:") || line.starts_with("#EXT-X-I-FRAME-STREAM-INF:")) {
            let (uri, tail) = rest.split_once('"').unwrap_or((rest, ""));
            out.push_str(&format!("{head},URI=\"{}\"{tail}", with_token(uri, token)));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// `uri` with the query `q` (`name=value&…`, already encoded) appended.
pub fn with_query(uri: &str, q: &str) -> String {
    format!("{uri}{}{q}", if uri.contains('?') { '&' } else { '?' })
}

/// A multivariant playlist whose media playlist URIs (variant lines, `EXT-X-MEDIA` and
/// `EXT-X-I-FRAME-STREAM-INF` URIs) carry the query `q`: a viewer's signed-URL credential
/// passed on to what the playlist lists. Session key URIs are left alone.
pub fn carry_query_master(body: &[u8], q: &str) -> String {
    rewrite_uris(body, q, &["#EXT-X-MEDIA:", "#EXT-X-I-FRAME-STREAM-INF:"])
}

/// A media or I-frame playlist whose segment URIs and `EXT-X-MAP` URI carry the query `q`.
/// Key URIs are left alone (keys have their own `token`).
pub fn carry_query_media(body: &[u8], q: &str) -> String {
    rewrite_uris(body, q, &["#EXT-X-MAP:"])
}

/// Appends `q` to every URI line and to the `URI="…"` attribute of tags starting with one of
/// `tags`.
fn rewrite_uris(body: &[u8], q: &str, tags: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 64 * q.len().min(1024));
    for line in text.lines() {
        if line.is_empty() {
            // Blank lines stay blank.
        } else if !line.starts_with('#') {
            out.push_str(&with_query(line, q));
        } else if let Some((head, rest)) = line.split_once("URI=\"").filter(|_| tags.iter().any(|t| line.starts_with(t))) {
            let (uri, tail) = rest.split_once('"').unwrap_or((rest, ""));
            out.push_str(&format!("{head}URI=\"{}\"{tail}", with_query(uri, q)));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// A media playlist whose key URIs (those in `uris`) carry the viewer's `token`.
pub fn carry_token_keys(body: &[u8], uris: &[&str], token: &str) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for u in uris {
        text = text.replace(&format!("URI=\"{u}\""), &format!("URI=\"{}\"", with_token(u, token)));
    }
    text
}

#[cfg(test)]
mod carry_tests {
    use super::*;

    #[test]
    fn query_goes_on_playlist_and_segment_uris_only() {
        let master = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio_en/index.m3u8\"\n#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo/index.m3u8\n\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"video/iframes.m3u8\"\n";
        let got = carry_query_master(master.as_bytes(), "hdnts=exp=1~acl=/a/*~hmac=ab");
        assert_eq!(
            got,
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio_en/index.m3u8?hdnts=exp=1~acl=/a/*~hmac=ab\"\n#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo/index.m3u8?hdnts=exp=1~acl=/a/*~hmac=ab\n\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"video/iframes.m3u8?hdnts=exp=1~acl=/a/*~hmac=ab\"\n"
        );
        let media = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"/key/k?token=t\"\n#EXTINF:2.0,\n1.m4s\n#EXTINF:2.0,\n2.m4s?x=1\n#EXT-X-ENDLIST\n";
        let got = carry_query_media(media.as_bytes(), "Policy=p&Signature=s&Key-Pair-Id=K");
        assert_eq!(
            got,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?Policy=p&Signature=s&Key-Pair-Id=K\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"/key/k?token=t\"\n#EXTINF:2.0,\n1.m4s?Policy=p&Signature=s&Key-Pair-Id=K\n#EXTINF:2.0,\n2.m4s?x=1&Policy=p&Signature=s&Key-Pair-Id=K\n#EXT-X-ENDLIST\n"
        );
    }
}
