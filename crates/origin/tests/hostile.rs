//! The hostile corpus (`fixtures/hostile/`, written by its `generate.py`; issue 11) served
//! in-process: every manifest form and a segment of each file answer the status
//! `expected.json` gives — a clear JSON error naming the file where the file cannot be
//! served — the process stays up and `/healthz` answers, a broken asset is remembered
//! (not listed and indexed again on every request), and an asset folder over the file-count
//! cap is refused before any file is read.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::config::{Config, ContentLimits};
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

/// The limits the corpus is written against: a 64 KiB index budget (so `many_fragments`,
/// harmless file by file, meets the per-file cap), the rest at their defaults.
fn limits() -> ContentLimits {
    ContentLimits { index_bytes_per_file: 64 << 10, ..ContentLimits::default() }
}

fn state_over(root: &std::path::Path, limits: ContentLimits) -> (Arc<AppState>, Store) {
    let cfg = Config { root: root.to_path_buf(), content_limits: limits, ..Config::default() };
    let store = Store::local(root).unwrap();
    (AppState::with_store(&cfg, store.clone()), store)
}

/// A fresh scratch folder for one test.
fn scratch(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sealcast-hostile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// (name, manifest status, segment status) from `expected.json`.
fn corpus() -> Vec<(String, u16, u16)> {
    let dir = sealcast_testkit::fixtures_dir().join("hostile");
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("run fixtures/hostile/generate.py");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let out: Vec<_> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, e)| (k.clone(), e["manifest"].as_u64().unwrap() as u16, e["segment"].as_u64().unwrap() as u16))
        .collect();
    assert!(out.len() >= 10, "hostile corpus too small");
    for (name, ..) in &out {
        assert!(dir.join(name).join("video.cmfv").is_file(), "{name}: file missing");
    }
    out
}

/// A JSON error body of kind `bad_content` naming the asset and the file.
fn assert_content_error(uri: &str, name: &str, body: &[u8]) {
    let j: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(body)));
    assert_eq!(j["error"], "bad_content", "{uri}: {j}");
    assert_eq!(j["asset"], format!("hostile/{name}"), "{uri}: {j}");
    assert!(j["fault"].as_str().unwrap_or_default().contains("video.cmfv") || uri.ends_with(".m4s"), "{uri}: the fault names the file: {j}");
}

#[tokio::test]
async fn every_hostile_file_answers_its_status_and_the_server_stays_up() {
    let (st, _) = state_over(&sealcast_testkit::fixtures_dir(), limits());
    for (name, manifest, segment) in corpus() {
        for m in ["manifest.mpd", "master.m3u8", "Manifest"] {
            let uri = format!("/hostile/{name}/{m}");
            let (s, h, b) = get(&st, &uri).await;
            assert_eq!(s.as_u16(), manifest, "{uri}: {}", String::from_utf8_lossy(&b));
            if manifest >= 400 {
                assert_eq!(h[http::header::CONTENT_TYPE], "application/json", "{uri}");
                assert_content_error(&uri, &name, &b);
            }
        }
        let uri = format!("/hostile/{name}/video/1.m4s");
        let (s, _, b) = get(&st, &uri).await;
        assert_eq!(s.as_u16(), segment, "{uri}: {}", String::from_utf8_lossy(&b));
        let (s, _, b) = get(&st, "/healthz").await;
        assert_eq!(s, StatusCode::OK, "after {name}: {}", String::from_utf8_lossy(&b));
    }
    // The file whose sidx hides a trun bomb behind a valid first fragment: the bomb is met at
    // segment 2, and refused there.
    let (s, _, b) = get(&st, "/hostile/sidx_then_bomb/video/2.m4s").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{}", String::from_utf8_lossy(&b));
    assert_content_error("/hostile/sidx_then_bomb/video/2.m4s", "sidx_then_bomb", &b);
    assert!(String::from_utf8_lossy(&b).contains("samples"), "{}", String::from_utf8_lossy(&b));
}

#[tokio::test]
async fn the_issue_11_trun_bomb_is_refused_for_what_it_is() {
    let (st, _) = state_over(&sealcast_testkit::fixtures_dir(), ContentLimits::default());
    let (s, _, b) = get(&st, "/hostile/trun_bomb/manifest.mpd").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let fault = serde_json::from_slice::<serde_json::Value>(&b).unwrap()["fault"].as_str().unwrap().to_string();
    assert!(fault.starts_with("video.cmfv: ") && fault.contains("1048576 samples of 0 bytes"), "{fault}");
    // With the default (64 MiB) index budget, the many small fragments are fine: the 64 KiB
    // budget of the other test is what refuses them, not some other fault.
    let (s, _, b) = get(&st, "/hostile/many_fragments/manifest.mpd").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (st, _) = state_over(&sealcast_testkit::fixtures_dir(), limits());
    let (_, _, b) = get(&st, "/hostile/many_fragments/manifest.mpd").await;
    assert!(String::from_utf8_lossy(&b).contains("over a limit: index of the file needs more than"), "{}", String::from_utf8_lossy(&b));
}

#[tokio::test]
async fn a_broken_asset_is_remembered_with_back_off() {
    let dir = scratch("broken");
    let asset = dir.join("broken");
    std::fs::create_dir_all(&asset).unwrap();
    std::fs::copy(sealcast_testkit::fixtures_dir().join("hostile/trun_bomb/video.cmfv"), asset.join("video.cmfv")).unwrap();
    let (st, store) = state_over(&dir, ContentLimits { failed_retry_ms: 600_000, failed_retry_max_ms: 600_000, ..ContentLimits::default() });
    let c = store.counters();
    let (s, _, first) = get(&st, "/broken/manifest.mpd").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let (lists, reads) = (c.lists.load(Ordering::Relaxed), c.range_reads.load(Ordering::Relaxed));
    assert!(lists >= 1 && reads >= 1, "the first request lists and reads ({lists}, {reads})");
    for uri in ["/broken/manifest.mpd", "/broken/master.m3u8", "/broken/video/1.m4s"] {
        let (s, _, b) = get(&st, uri).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        if uri.ends_with(".mpd") {
            assert_eq!(b, first, "the remembered error is the same answer");
        }
    }
    assert_eq!((c.lists.load(Ordering::Relaxed), c.range_reads.load(Ordering::Relaxed)), (lists, reads), "remembered: not listed or read again");

    // With no back-off to speak of, a fixed file is picked up.
    let (st, store) = state_over(&dir, ContentLimits { failed_retry_ms: 0, failed_retry_max_ms: 0, ..ContentLimits::default() });
    assert_eq!(get(&st, "/broken/manifest.mpd").await.0, StatusCode::INTERNAL_SERVER_ERROR);
    let lists = store.counters().lists.load(Ordering::Relaxed);
    std::fs::copy(sealcast_testkit::fixtures_dir().join("demo/video_180p.cmfv"), asset.join("video.cmfv")).unwrap();
    let (s, _, b) = get(&st, "/broken/manifest.mpd").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    assert!(store.counters().lists.load(Ordering::Relaxed) > lists);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_asset_over_the_file_count_cap_is_refused_before_indexing() {
    let dir = scratch("crowd");
    let asset = dir.join("crowd");
    std::fs::create_dir_all(&asset).unwrap();
    let src = sealcast_testkit::fixtures_dir().join("demo/audio_en.cmfa");
    for i in 0..40 {
        std::fs::copy(&src, asset.join(format!("a{i:03}.cmfa"))).unwrap();
    }
    let (st, store) = state_over(&dir, ContentLimits { files_per_asset: 32, ..ContentLimits::default() });
    let (s, _, b) = get(&st, "/crowd/manifest.mpd").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(String::from_utf8_lossy(&b).contains("40 track files, more than the 32"), "{}", String::from_utf8_lossy(&b));
    assert_eq!(store.counters().range_reads.load(Ordering::Relaxed), 0, "no file was read");
    // At the cap, served.
    let (st, _) = state_over(&dir, ContentLimits { files_per_asset: 40, ..ContentLimits::default() });
    assert_eq!(get(&st, "/crowd/manifest.mpd").await.0, StatusCode::OK);
    let _ = std::fs::remove_dir_all(&dir);
}
