//! Issue 12, player interop on a real ladder (`fixtures/ladder`: H.264 SD + HD, HEVC, AAC):
//! what the manifest writers put in front of players, checked in pure code. The players
//! themselves judge the same outputs in `tests/e2e/test_interop.py`.

use std::sync::Arc;

use sealcast_package::asset::SourceFile;
use sealcast_package::index::index_bytes;
use sealcast_drm::LicenseUrls;
use sealcast_package::manifest::{dash, hls};
use sealcast_package::protection::{self, Encryption, PlanInput};
use sealcast_package::{ts, Asset, PackageOptions};
use sealcast_testkit::fixture;

fn asset(dir: &str, files: &[&str]) -> Asset {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|f| SourceFile { name: f.to_string(), index: Arc::new(index_bytes(&fixture(&format!("{dir}/{f}")), 4096).unwrap()) })
        .collect();
    Asset::build(&files, None, PackageOptions::default()).unwrap()
}

fn ladder() -> Asset {
    asset("ladder", &["audio_en.cmfa", "video_360p.cmfv", "video_720p.cmfv", "video_hevc_360p.cmfv"])
}

/// The variant URIs of a multivariant playlist (lines that are not tags).
fn variant_uris(m: &str) -> Vec<&str> {
    let mut v: Vec<&str> = m.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    v.sort_unstable();
    v
}

/// Item 3: the TS multivariant playlist leaves HEVC out (it stays in fMP4), clear and
/// protected alike; the H.264 ladder and the AAC audio stay. TS segments of HEVC are not
/// planned at all.
#[test]
fn ts_playlists_leave_hevc_out() {
    let a = ladder();
    let fmp4 = hls::write_master(&a, hls::FMP4);
    let tsm = hls::write_master(&a, hls::TS);
    assert_eq!(variant_uris(&fmp4), ["video_360p/index.m3u8", "video_720p/index.m3u8", "video_hevc_360p/index.m3u8"], "{fmp4}");
    assert!(fmp4.contains("CODECS=\"hvc1."), "{fmp4}");
    assert_eq!(variant_uris(&tsm), ["video_360p/ts.m3u8", "video_720p/ts.m3u8"], "{tsm}");
    assert!(!tsm.contains("hvc1") && !tsm.contains("hev1") && !tsm.contains("hevc"), "{tsm}");
    for (i, t) in a.tracks.iter().enumerate() {
        let hevc = t.track().info.codec_string.starts_with("hvc1");
        assert_eq!(ts::carries(t), !hevc, "{}", t.name);
        assert_eq!(ts::plan_segment(&a, i, 1).is_some(), !hevc, "{}", t.name);
    }
    // Apple's rules: every variant says CLOSED-CAPTIONS=NONE (the sources carry none we signal).
    for m in [&fmp4, &tsm] {
        for l in m.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF:")) {
            assert!(l.contains(",CLOSED-CAPTIONS=NONE") && l.contains("AVERAGE-BANDWIDTH=") && l.contains("FRAME-RATE="), "{l}");
        }
    }
    // An asset whose only video is HEVC keeps its audio in TS (an audio-only variant).
    let h = asset("hevc", &["video.mp4", "audio.mp4"]);
    let tsm = hls::write_master(&h, hls::TS);
    assert_eq!(variant_uris(&tsm), ["audio/ts.m3u8"], "{tsm}");
    assert!(tsm.contains("CODECS=\"mp4a.40.2\""), "{tsm}");
}

fn keys(kind: sealcast_drm::KeyKind) -> Vec<sealcast_drm::ContentKey> {
    (1u8..=3).map(|i| sealcast_drm::ContentKey::aes128(sealcast_drm::Kid([i; 16]), kind, [i ^ 0x5a; 16])).collect()
}

fn protected_mpd(a: &Asset, method: Encryption, kind: sealcast_drm::KeyKind, license: &LicenseUrls) -> String {
    let input = PlanInput { asset: a, path: "ladder", file_sizes: vec![0; a.tracks.len()], keys: keys(kind), cpix: None, license, clear_lead_secs: 0 };
    let plan = protection::plan(method, &input).unwrap();
    dash::write_mpd_with(a, Some(&plan.dash))
}

/// The `<AdaptationSet …>` blocks of an MPD, as (opening tag + body) strings.
fn sets(mpd: &str) -> Vec<&str> {
    mpd.split("<AdaptationSet").skip(1).map(|s| s.split("</AdaptationSet>").next().unwrap()).collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let i = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[i..i + tag[i..].find('"')?])
}

/// Item 2: with per-group keys the SD and HD H.264 renditions sit in two sets (different
/// default_KIDs) that name each other for switching; HEVC (another codec) and audio are not
/// linked; the clear MPD has one H.264 set and no link.
#[test]
fn key_groups_linked_for_switching() {
    let a = ladder();
    for (method, kind) in [(Encryption::Cenc, sealcast_drm::KeyKind::CommonEncryption), (Encryption::Cbcs, sealcast_drm::KeyKind::CommonEncryptionCbcs)] {
        let mpd = protected_mpd(&a, method, kind, &LicenseUrls::default());
        let mut avc = Vec::new();
        for s in sets(&mpd) {
            let id = attr(s, "id").unwrap();
            let link = s.lines().find(|l| l.contains("<SupplementalProperty")).map(|l| (attr(l, "schemeIdUri").unwrap(), attr(l, "value").unwrap()));
            let codecs = attr(s.split("<Representation").nth(1).unwrap(), "codecs").unwrap();
            if codecs.starts_with("avc1") {
                avc.push((id, link));
            } else {
                assert_eq!(link, None, "set {id} ({codecs}) must not be linked:\n{mpd}");
            }
        }
        assert_eq!(avc.len(), 2, "{mpd}");
        let (x, y) = (avc[0], avc[1]);
        assert_eq!(x.1, Some((dash::ADAPTATION_SET_SWITCHING, y.0)), "{mpd}");
        assert_eq!(y.1, Some((dash::ADAPTATION_SET_SWITCHING, x.0)), "{mpd}");
        // Schema order: ContentProtection, then SupplementalProperty, then Representation.
        for s in sets(&mpd) {
            if let Some(sp) = s.find("<SupplementalProperty") {
                assert!(s.rfind("<ContentProtection").unwrap() < sp && sp < s.find("<Representation").unwrap(), "{s}");
            }
        }
    }
    let clear = dash::write_mpd(&a);
    assert!(!clear.contains("SupplementalProperty"), "{clear}");
    assert_eq!(sets(&clear).iter().filter(|s| s.contains("codecs=\"avc1")).count(), 1, "{clear}");
}

/// Item 1: every protected set carries the DASH-IF ClearKey element, with no licence URL
/// configured (bare) and with one (its `dashif:Laurl`).
#[test]
fn clearkey_signalled_with_and_without_licence_url() {
    let a = ladder();
    let ck = "schemeIdUri=\"urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e\" value=\"ClearKey1.0\"";
    let bare = protected_mpd(&a, Encryption::Cenc, sealcast_drm::KeyKind::CommonEncryption, &LicenseUrls::default());
    let with = protected_mpd(&a, Encryption::Cenc, sealcast_drm::KeyKind::CommonEncryption, &LicenseUrls { clearkey: Some("https://lic.example/ck".into()), ..Default::default() });
    for s in sets(&bare) {
        assert!(s.contains(&format!("<ContentProtection {ck}/>")), "{s}");
    }
    for s in sets(&with) {
        assert!(s.contains(&format!("<ContentProtection {ck}><dashif:Laurl>https://lic.example/ck</dashif:Laurl></ContentProtection>")), "{s}");
    }
}

/// I-frame playlists: one EXT-X-I-FRAME-STREAM-INF per listed video rendition (no HEVC over
/// TS), an I-frames-only playlist per track, and I-frame segments that are the key frame alone.
#[test]
fn iframe_playlists_and_segments() {
    let a = ladder();
    for (flavor, name, videos) in [(hls::FMP4, "iframes.m3u8", 3), (hls::TS, "iframes-ts.m3u8", 2)] {
        let m = hls::write_master(&a, flavor);
        let lines: Vec<&str> = m.lines().filter(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:")).collect();
        assert_eq!(lines.len(), videos, "{m}");
        for l in lines {
            assert!(l.contains("BANDWIDTH=") && l.contains("RESOLUTION=") && l.ends_with(&format!("/{name}\"")), "{l}");
            assert!(!l.contains("mp4a"), "video codec only: {l}");
        }
    }
    let v = a.track("video_720p").unwrap();
    let p = hls::write_iframes_with(v, hls::FMP4, &[], None);
    assert!(p.contains("#EXT-X-I-FRAMES-ONLY\n#EXT-X-MAP:URI=\"init.mp4\"\n"), "{p}");
    assert_eq!(p.matches("#EXTINF:").count(), v.segments.len(), "{p}");
    assert!(p.contains("\ni1.m4s\n") && p.contains(&format!("\ni{}.m4s\n", v.segments.len())), "{p}");
    let t = hls::write_iframes_with(v, hls::TS, &[], None);
    assert!(t.contains("#EXT-X-VERSION:4\n") && !t.contains("EXT-X-MAP") && t.contains("\ni1.ts\n"), "{t}");
    let file = fixture("ladder/video_720p.cmfv");
    for seg in 0..v.segments.len() {
        let (s, e) = sealcast_package::fmp4::iframe_range(v, seg).unwrap();
        let data = file.slice(s as usize..e as usize);
        let frags = sealcast_package::fmp4::read_iframe(v, seg, &data, s).unwrap();
        assert_eq!(frags.len(), 1);
        let tf = &frags[0].traf;
        assert_eq!((tf.samples.len(), tf.runs.len(), tf.runs[0].trun.entries.len()), (1, 1, 1));
        assert!(tf.samples[0].is_sync());
        assert_eq!(tf.runs[0].data_len, tf.samples[0].size as u64);
        let out = sealcast_package::fmp4::write_segment(&frags, &data, s).unwrap().concat();
        assert!(out.len() < (e - s) as usize, "an I-frame segment is smaller than its fragment");
    }
}
