//! Storage metadata cannot inject into manifests: arbitrary `systemLanguage` strings in a
//! server manifest (`.ism`) leave the MPD and the Smooth manifest well-formed XML with the same
//! element structure, and the HLS playlists line-for-line well-formed.

use std::sync::Arc;

use proptest::prelude::*;
use sealcast_package::asset::SourceFile;
use sealcast_package::index::index_bytes;
use sealcast_package::{ism, manifest, smooth, Asset, PackageOptions};
use sealcast_testkit::fixture;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn demo_with_language(lang: &str) -> Asset {
    let names = ["audio_en.cmfa", "audio_fr.cmfa", "video_180p.cmfv", "video_360p.cmfv"];
    let files: Vec<SourceFile> = names.iter().map(|f| SourceFile { name: f.to_string(), index: Arc::new(index_bytes(&fixture(&format!("demo/{f}")), 4096).unwrap()) }).collect();
    let text = String::from_utf8(fixture("demo/demo.ism").to_vec()).unwrap().replace("systemLanguage=\"fra\"", &format!("systemLanguage=\"{}\"", xml_escape(lang)));
    let parsed = ism::parse(text.as_bytes()).unwrap();
    Asset::build(&files, Some(&parsed), PackageOptions::default()).unwrap()
}

/// Element names in document order (fails on malformed XML).
fn elements(xml: &str) -> Vec<String> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match r.read_event().unwrap_or_else(|e| panic!("malformed XML ({e}):\n{xml}")) {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                for a in e.attributes() {
                    a.unwrap_or_else(|e| panic!("bad attribute ({e}):\n{xml}"));
                }
                out.push(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            quick_xml::events::Event::Eof => return out,
            _ => {}
        }
    }
}

fn playlist_lines_ok(text: &str) {
    for l in text.lines() {
        assert!(l.is_empty() || l.starts_with("#EXT") || (l.ends_with(".m3u8") && !l.contains(char::is_whitespace) && !l.contains('"')), "injected line {l:?} in:\n{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn languages_never_break_manifests(lang in prop_oneof![
        Just("fra\"/><BaseURL>http://evil.example/</BaseURL><x a=\"".to_string()),
        Just("fra\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://evil.example/x.m3u8".to_string()),
        Just("../../etc".to_string()),
        "[ -~\n\t]{0,40}",
        "\\PC{0,12}",
    ]) {
        let reference = demo_with_language("fra");
        let a = demo_with_language(&lang);
        prop_assert_eq!(elements(&manifest::dash::write_mpd(&a)), elements(&manifest::dash::write_mpd(&reference)));
        prop_assert_eq!(elements(&smooth::write_manifest(&a)), elements(&smooth::write_manifest(&reference)));
        playlist_lines_ok(&manifest::hls::write_master(&a, manifest::hls::FMP4));
        playlist_lines_ok(&manifest::hls::write_master(&a, manifest::hls::TS));
        let mpd = manifest::dash::write_mpd(&a);
        prop_assert!(!mpd.contains("evil.example"));
    }
}
