//! Ingest to S3 (moto_server) and serve from it: byte-identical to the clear fixture, and
//! request counts (index of a file ≤ 3 GETs, a segment = 1 GET). Starts `moto_server` itself
//! and skips, saying so, when it is not installed (`scripts/setup.sh` installs it).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::{apply_storage_encryption, TomlCatalog};
use sealcast_origin::config::Config;
use sealcast_origin::ingest::{self, IngestArgs, Publish};
use sealcast_origin::server::{router, AppState};
use sealcast_storage::remote::{open, RemoteTiming};
use sealcast_storage::Store;
use tower::ServiceExt;

mod support;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, body.collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_to_s3_and_serve_byte_identical_with_few_requests() {
    let Some((_srv, endpoint)) = support::start_moto() else { return };
    let spec = support::moto_spec(endpoint);
    let dir = std::env::temp_dir().join(format!("sealcast-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("local")).unwrap();
    let s3 = open(&spec, RemoteTiming::default()).unwrap();
    let store = Store::local(&dir.join("local")).unwrap().with_route("vod", s3).unwrap();

    let fx = sealcast_testkit::fixtures_dir();
    let mut files: Vec<_> = std::fs::read_dir(fx.join("demo")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let catalog = dir.join("catalog.toml");
    ingest::run(&store, &IngestArgs { files, asset: "vod/demo".into(), encrypt: true, catalog: Some(sealcast_origin::ingest::RecordIn::Toml(catalog.clone())), publish: Publish::clear() }).await.unwrap();

    let cat = Arc::new(TomlCatalog::load(&catalog).unwrap());
    assert_eq!(apply_storage_encryption(cat.as_ref(), &store).unwrap(), 5);
    let cfg = Config { root: dir.join("local"), ..Config::default() };
    let enc = AppState::with_parts(&cfg, store.clone(), cat.clone(), Some(cat));
    let clear = AppState::with_store(&Config { root: fx.clone(), ..Config::default() }, Store::local(&fx).unwrap());

    // Loading the asset: one listing, the .ism, and at most 3 GETs per track file.
    let before = store.counters().range_reads.load(Ordering::Relaxed);
    let (s, mpd) = get(&enc, "/vod/demo/manifest.mpd").await;
    assert_eq!(s, StatusCode::OK);
    let reads = store.counters().range_reads.load(Ordering::Relaxed) - before;
    assert!(reads <= 1 + 3 * 4, "asset load took {reads} GETs");
    assert_eq!(mpd, get(&clear, "/demo/manifest.mpd").await.1);

    let loaded = clear.assets.get("demo").await.unwrap();
    for t in &loaded.asset.tracks {
        for n in 1..=t.segments.len() {
            let before = store.counters().range_reads.load(Ordering::Relaxed);
            let (s, b) = get(&enc, &format!("/vod/demo/{}/{n}.m4s", t.name)).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(store.counters().range_reads.load(Ordering::Relaxed) - before, 1, "segment {n} of {} took more than one GET", t.name);
            assert!(b == get(&clear, &format!("/demo/{}/{n}.m4s", t.name)).await.1, "segment {n} of {} differs", t.name);
        }
        assert_eq!(get(&enc, &format!("/vod/demo/{}/init.mp4", t.name)).await.1, get(&clear, &format!("/demo/{}/init.mp4", t.name)).await.1);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Progressive input over S3 (issue 15): the moov-at-end file, storage-encrypted, indexes in
/// at most 3 GETs (head, tail, the moov if the read-ahead missed it), serves every segment in
/// one GET, byte-identical to the clear local file's.
#[tokio::test(flavor = "multi_thread")]
async fn progressive_moov_at_end_over_s3_in_few_requests() {
    let Some((_srv, endpoint)) = support::start_moto() else { return };
    let spec = support::moto_spec(endpoint);
    let dir = std::env::temp_dir().join(format!("sealcast-remote-prog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("local")).unwrap();
    let s3 = open(&spec, RemoteTiming::default()).unwrap();
    let store = Store::local(&dir.join("local")).unwrap().with_route("vod", s3).unwrap();
    let fx = sealcast_testkit::fixtures_dir();
    let catalog = dir.join("catalog.toml");
    let files = vec![fx.join("progressive/tail/movie.mp4")];
    ingest::run(&store, &IngestArgs { files, asset: "vod/prog".into(), encrypt: true, catalog: Some(sealcast_origin::ingest::RecordIn::Toml(catalog.clone())), publish: Publish::clear() }).await.unwrap();
    let cat = Arc::new(TomlCatalog::load(&catalog).unwrap());
    assert_eq!(apply_storage_encryption(&cat, &store).unwrap(), 1);
    let mut cfg = Config { root: dir.join("local"), index_read_ahead: 4096, ..Config::default() };
    cfg.cache.fragment_bytes = 0;
    let enc = AppState::with_parts(&cfg, store.clone(), cat.clone(), Some(cat));
    let clear = AppState::with_store(&Config { root: fx.clone(), ..Config::default() }, Store::local(&fx).unwrap());

    let reads = || store.counters().range_reads.load(Ordering::Relaxed);
    let before = reads();
    let (s, mpd) = get(&enc, "/vod/prog/manifest.mpd").await;
    assert_eq!(s, StatusCode::OK);
    assert!(reads() - before <= 3, "cold index of a moov-at-end file took {} GETs", reads() - before);
    assert_eq!(mpd, get(&clear, "/progressive/tail/manifest.mpd").await.1);
    let loaded = clear.assets.get("progressive/tail").await.unwrap();
    for t in &loaded.asset.tracks {
        for n in 1..=t.segments.len() {
            let before = reads();
            let (s, b) = get(&enc, &format!("/vod/prog/{}/{n}.m4s", t.name)).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(reads() - before, 1, "segment {n} of {}", t.name);
            assert!(b == get(&clear, &format!("/progressive/tail/{}/{n}.m4s", t.name)).await.1, "segment {n} of {} differs", t.name);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
