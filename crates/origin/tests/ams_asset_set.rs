//! An Azure Media Services asset set (issue 15, `fixtures/ams/`): the folder as AMS's encoder
//! leaves it — progressive MP4s (two video-only renditions, one AAC file per language), the
//! `.ism` naming them, the `.ismc`, `<name>_manifest.xml` and a thumbnail — served with the
//! tracks, languages and bitrates the `.ism` and the media say, by the clean and the AMS URLs,
//! the side files neither served as tracks nor breaking the asset.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, body.collect().await.unwrap().to_bytes().to_vec())
}

fn state() -> Arc<AppState> {
    let fx = sealcast_testkit::fixtures_dir();
    let mut cfg = Config { root: fx.clone(), allow_clear_without_policy: true, ..Config::default() };
    cfg.locators.insert("locams".into(), "ams".into());
    AppState::with_store(&cfg, Store::local(&fx).unwrap())
}

fn text(st: (StatusCode, Vec<u8>), what: &str) -> String {
    assert_eq!(st.0, StatusCode::OK, "{what}: {}", String::from_utf8_lossy(&st.1));
    String::from_utf8(st.1).unwrap()
}

/// Values of attribute `attr` on every element `<tag ` of `xml`, in order.
fn attrs(xml: &str, tag: &str, attr: &str) -> Vec<String> {
    xml.split(&format!("<{tag} "))
        .skip(1)
        .filter_map(|e| {
            let e = &e[..e.find('>').unwrap_or(e.len())];
            let at = e.find(&format!(" {attr}=\"")).map(|i| i + attr.len() + 3).or_else(|| e.starts_with(&format!("{attr}=\"")).then_some(attr.len() + 2))?;
            Some(e[at..at + e[at..].find('"')?].to_string())
        })
        .collect()
}

#[tokio::test]
async fn the_ism_tracks_are_served_with_their_languages_and_bitrates() {
    let st = state();
    let loaded = st.assets.get("ams").await.unwrap();
    let names: Vec<&str> = loaded.asset.tracks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["movie_320x180_250", "movie_640x360_500", "movie_AACAudio_eng_64", "movie_AACAudio_fra_64"]);
    assert_eq!(loaded.ism_name.as_deref(), Some("movie.ism"));
    let langs: Vec<Option<&str>> = loaded.asset.tracks.iter().map(|t| t.language.as_deref()).collect();
    assert_eq!(langs, [None, None, Some("eng"), Some("fra")]);
    // Every track is a progressive file read from its moov.
    assert!(loaded.asset.tracks.iter().all(|t| t.track().samples.is_some()));
    // Renditions share their segment boundaries (2 s GOPs).
    let times = |i: usize| loaded.asset.tracks[i].segments.iter().map(|s| s.decode_time * 1000 / loaded.asset.tracks[i].track().info.timescale as u64).collect::<Vec<_>>();
    assert_eq!(times(0), times(1));

    let mpd = text(get(&st, "/ams/manifest.mpd").await, "MPD");
    assert_eq!(attrs(&mpd, "AdaptationSet", "lang"), ["en", "fr"], "{mpd}");
    let bw: Vec<u64> = attrs(&mpd, "Representation", "bandwidth").iter().map(|b| b.parse().unwrap()).collect();
    assert_eq!(bw.len(), 4, "{mpd}");
    // Bitrates as the media has them: each video rendition near the rate it was encoded at
    // (the .ism's systemBitrate), the 500k one above the 250k one, audio near 64k.
    for (b, nominal) in bw.iter().zip([250_000u64, 500_000, 64_000, 64_000]) {
        assert!(*b as f64 > nominal as f64 * 0.7 && (*b as f64) < nominal as f64 * 2.0, "bandwidth {b} for a {nominal} bit/s track: {mpd}");
    }
    assert!(bw[0] < bw[1]);
    // The same MPD by the AMS URL.
    let ams = text(get(&st, "/locams/movie.ism/manifest(format=mpd-time-csf)").await, "AMS MPD");
    assert_eq!(attrs(&ams, "Representation", "bandwidth"), attrs(&mpd, "Representation", "bandwidth"));

    let master = text(get(&st, "/ams/master.m3u8").await, "HLS");
    for l in ["LANGUAGE=\"en\"", "LANGUAGE=\"fr\"", "RESOLUTION=320x180", "RESOLUTION=640x360"] {
        assert!(master.contains(l), "{l} missing: {master}");
    }
    let smooth = text(get(&st, "/locams/movie.ism/manifest").await, "Smooth");
    assert_eq!(attrs(&smooth, "StreamIndex", "Type"), ["video", "audio", "audio"], "{smooth}");
    assert_eq!(attrs(&smooth, "StreamIndex", "Language"), ["eng", "fra"], "{smooth}");
    // Segments of every track answer.
    for t in &loaded.asset.tracks {
        for n in 1..=t.segments.len() {
            assert_eq!(get(&st, &format!("/ams/{}/{n}.m4s", t.name)).await.0, StatusCode::OK, "{} {n}", t.name);
        }
    }
}

#[tokio::test]
async fn side_files_are_neither_tracks_nor_downloads() {
    let st = state();
    for f in ["movie.ismc", "movie_manifest.xml", "movie_000001.jpg", "movie.ism"] {
        assert!(sealcast_testkit::fixtures_dir().join("ams").join(f).is_file(), "{f} missing from the fixture");
        assert_ne!(get(&st, &format!("/ams/{f}")).await.0, StatusCode::OK, "{f} served");
    }
    // A rendition downloads (no policy, clear allowed), by the AMS locator form too.
    let file = std::fs::read(sealcast_testkit::fixtures_dir().join("ams/movie_AACAudio_fra_64.mp4")).unwrap();
    let (s, b) = get(&st, "/locams/movie_AACAudio_fra_64.mp4").await;
    assert_eq!(s, StatusCode::OK);
    assert!(b == file);
}
