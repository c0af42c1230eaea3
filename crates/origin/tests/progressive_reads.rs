//! Storage requests for progressive input (issue 15), counted by the store: a cold index of a
//! file whose `moov` is at the end takes at most 3 ranged GETs (head, then the tail where the
//! `mdat` header says the `moov` is, then the whole `moov` if the read-ahead did not hold
//! it), one with the `moov` at the start; a segment of an interleaved file is one GET.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

async fn get(st: &Arc<AppState>, uri: &str) -> StatusCode {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    body.collect().await.unwrap();
    parts.status
}

/// A fresh server (cold caches, no hot fragment cache) over the fixtures with `read_ahead`.
fn state(read_ahead: u64) -> (Arc<AppState>, Store) {
    let fx = sealcast_testkit::fixtures_dir();
    let mut cfg = Config { root: fx.clone(), allow_clear_without_policy: true, index_read_ahead: read_ahead, ..Config::default() };
    cfg.cache.fragment_bytes = 0;
    let store = Store::local(&fx).unwrap();
    (AppState::with_store(&cfg, store.clone()), store)
}

#[tokio::test]
async fn cold_index_reads_per_file() {
    // (asset, read-ahead, most GETs for its one file)
    for (asset, read_ahead, most) in [("progressive/tail", 1024, 3), ("progressive/tail", 64 << 10, 2), ("progressive/faststart", 64 << 10, 1), ("progressive/faststart", 1024, 2), ("progressive/co64", 64 << 10, 1)] {
        let (st, store) = state(read_ahead);
        let reads = || store.counters().range_reads.load(Ordering::SeqCst);
        assert_eq!(get(&st, &format!("/{asset}/manifest.mpd")).await, StatusCode::OK);
        let n = reads();
        assert!(n >= 1 && n <= most, "{asset} with a {read_ahead}-byte read-ahead: {n} GETs to index, at most {most}");
        println!("{asset}, read-ahead {read_ahead}: {n} GETs");
    }
    // An AMS set: four progressive files and the .ism, each file within 3 GETs.
    let (st, store) = state(1024);
    assert_eq!(get(&st, "/ams/manifest.mpd").await, StatusCode::OK);
    let n = store.counters().range_reads.load(Ordering::SeqCst);
    assert!(n <= 4 * 3 + 1, "ams: {n} GETs for 4 files and the .ism");
}

#[tokio::test]
async fn a_segment_of_an_interleaved_file_is_one_get() {
    let (st, store) = state(64 << 10);
    assert_eq!(get(&st, "/progressive/tail/manifest.mpd").await, StatusCode::OK);
    let loaded = st.assets.get("progressive/tail").await.unwrap();
    for t in &loaded.asset.tracks {
        for n in 1..=t.segments.len() {
            for ext in ["m4s", "ts"] {
                let before = store.counters().range_reads.load(Ordering::SeqCst);
                assert_eq!(get(&st, &format!("/progressive/tail/{}/{n}.{ext}", t.name)).await, StatusCode::OK);
                let got = store.counters().range_reads.load(Ordering::SeqCst) - before;
                // A video TS segment carries the audio too: its own read and the audio's.
                let want = if ext == "ts" && t.kind() == sealcast_package::TrackKind::Video { 2 } else { 1 };
                assert_eq!(got, want, "{} segment {n}.{ext}: {got} GETs", t.name);
            }
        }
    }
}

#[tokio::test]
async fn coalesced_reads_give_the_same_bytes_as_one_span() {
    // With no gap allowed, each run of adjacent samples is its own GET (ffmpeg interleaves a
    // chunk per frame): the segments must be byte-identical to the one-read ones.
    let (one, one_store) = state(64 << 10);
    let fx = sealcast_testkit::fixtures_dir();
    let mut cfg = Config { root: fx.clone(), allow_clear_without_policy: true, source_read_gap: 0, ..Config::default() };
    cfg.cache.fragment_bytes = 0;
    let split_store = Store::local(&fx).unwrap();
    let split = AppState::with_store(&cfg, split_store.clone());
    let loaded = one.assets.get("progressive/tail").await.unwrap();
    let mut uris: Vec<String> = Vec::new();
    for t in &loaded.asset.tracks {
        for n in 1..=t.segments.len() {
            uris.push(format!("/progressive/tail/{}/{n}.m4s", t.name));
            uris.push(format!("/progressive/tail/{}/{n}.ts", t.name));
        }
    }
    let reads = |s: &Store| s.counters().range_reads.load(Ordering::SeqCst);
    let mut more = 0;
    for u in &uris {
        let (a0, b0) = (reads(&one_store), reads(&split_store));
        let (x, y) = (fetch(&one, u).await, fetch(&split, u).await);
        assert!(!x.is_empty() && x == y, "{u}: coalesced reads changed the bytes");
        if reads(&split_store) - b0 > reads(&one_store) - a0 {
            more += 1;
        }
    }
    assert!(more >= uris.len() / 2, "only {more} of {} requests took several reads with a zero gap", uris.len());
}

async fn fetch(st: &Arc<AppState>, uri: &str) -> Vec<u8> {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{uri}");
    r.into_body().collect().await.unwrap().to_bytes().to_vec()
}
