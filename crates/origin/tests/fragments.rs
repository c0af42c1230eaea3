//! The hot source fragment cache over a local store, counted at the store: 100 concurrent
//! requests for one cold segment make one read, every segment of a steady pass at most one,
//! a hot one none; output encryption from a cached (shared) buffer leaves the cached bytes
//! clear; a small budget bounds what is kept and changes no answer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::{CacheConfig, Config};
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

mod gate;

const CATALOG: &str = r#"
[[asset]]
path = "demo"
dash = "DynamicCommonEncryption"
hls = "NoDynamicEncryption"
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5da", key = "69eaa802a6763af979e8d1940fb88393" },
]

[[asset]]
path = "gated/demo"
dash = "DynamicCommonEncryption"
hls = "NoDynamicEncryption"
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5da", key = "69eaa802a6763af979e8d1940fb88393" },
]
"#;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, body.collect().await.unwrap().to_bytes().to_vec())
}

/// A server over the fixtures with the demo asset's DASH encrypted (cenc), HLS clear, and
/// `fragment_bytes` of fragment cache; returns its store for counting.
fn state(tag: &str, fragment_bytes: u64) -> (Arc<AppState>, Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sealcast-fragments-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cat = dir.join("catalog.toml");
    std::fs::write(&cat, CATALOG).unwrap();
    let fx = sealcast_testkit::fixtures_dir();
    let cfg = Config { root: fx.clone(), catalog: Some(cat.clone()), cache: CacheConfig { fragment_bytes, ..CacheConfig::default() }, ..Config::default() };
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    let store = Store::local(&fx).unwrap();
    (AppState::with_parts(&cfg, store.clone(), toml.clone(), Some(toml)), store, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_segments_are_read_once_and_encryption_never_touches_cached_bytes() {
    let (st, store, dir) = state("hot", 256 << 20);
    let (plain, _, pdir) = state("plain", 0);
    let reads = || store.counters().range_reads.load(Ordering::SeqCst);
    assert_eq!(get(&st, "/demo/manifest.mpd").await.0, StatusCode::OK);

    // A cold segment: one read (single flight under load is proven with a held read in
    // `concurrent_misses_of_a_cold_segment_join_one_held_read` below).
    let before = reads();
    let want = get(&plain, "/demo/video_360p/3.m4s").await;
    assert!(get(&st, "/demo/video_360p/3.m4s").await == want, "a cold segment differs");
    assert_eq!(reads() - before, 1, "a cold segment took more than one read");

    // Hot: the cenc-encrypted segment of the same source range reads nothing, and matches a
    // server without a fragment cache; the clear segment after it is still clear.
    let before = reads();
    let enc = get(&st, "/demo/video_360p/cenc/3.m4s").await;
    assert_eq!(reads(), before, "a hot segment was read again");
    assert_eq!(enc.0, StatusCode::OK);
    assert!(enc == get(&plain, "/demo/video_360p/cenc/3.m4s").await, "encrypted from a cached buffer differs");
    assert!(get(&st, "/demo/video_360p/3.m4s").await == want, "the cached source was changed in place");
    assert_eq!(reads(), before);

    // Steady state: every segment of every track, clear and encrypted, fMP4 and TS: at most
    // one read per segment on the first pass, none on the second.
    let loaded = st.assets.get("demo").await.unwrap();
    for pass in 0..2 {
        for t in &loaded.asset.tracks {
            for n in 1..=t.segments.len() {
                let before = reads();
                for u in [format!("/demo/{}/{n}.m4s", t.name), format!("/demo/{}/cenc/{n}.m4s", t.name)] {
                    let r = get(&st, &u).await;
                    assert_eq!(r.0, StatusCode::OK, "{u}");
                    assert!(r == get(&plain, &u).await, "{u} differs");
                }
                let took = reads() - before;
                assert!(took <= 1 - pass.min(1), "pass {pass}: segment {n} of {} took {took} reads", t.name);
            }
        }
    }
    let hits = store.counters().fragment_hits.load(Ordering::SeqCst);
    assert!(hits > 0);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(pdir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_budget_bounds_the_cache_and_changes_no_answer() {
    // 100 KiB: less than the demo's segments together, more than its largest.
    let budget = 100 << 10;
    let (st, _, dir) = state("small", budget);
    let (plain, _, pdir) = state("small-plain", 0);
    let loaded = st.assets.get("demo").await.unwrap();
    for _ in 0..2 {
        for t in &loaded.asset.tracks {
            for n in 1..=t.segments.len() {
                let u = format!("/demo/{}/{n}.ts", t.name);
                assert!(get(&st, &u).await == get(&plain, &u).await, "{u} differs");
            }
        }
    }
    // The state's store (the one given the cache), not the clone made before.
    let store = st.assets.store();
    store.sync_fragment_cache();
    let held = store.fragment_cache_bytes();
    assert!(held > 0 && held <= budget, "fragment cache holds {held} bytes, budget {budget}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(pdir).unwrap();
}

/// Single flight, shown rather than assumed: the one storage read of a cold segment is held
/// open (gated store) until the other 99 requests have joined it, so the coalesced-reads
/// counter must rise by exactly 99 and the store see exactly one read. Without single flight
/// the held requests would each start a read and nothing would join: the wait below fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_a_cold_segment_join_one_held_read() {
    use object_store::{ObjectStoreExt, PutPayload};
    let gated = Arc::new(gate::Gated::new());
    let fx = sealcast_testkit::fixtures_dir();
    for e in std::fs::read_dir(fx.join("demo")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        gated.put(&object_store::path::Path::from(format!("demo/{name}")), PutPayload::from(std::fs::read(&p).unwrap())).await.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("sealcast-fragments-gated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cat = dir.join("catalog.toml");
    std::fs::write(&cat, CATALOG).unwrap();
    let cfg = Config { root: fx.clone(), catalog: Some(cat.clone()), cache: CacheConfig { fragment_bytes: 256 << 20, ..CacheConfig::default() }, ..Config::default() };
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    let store = Store::local(&fx).unwrap().with_route("gated", gated.clone()).unwrap();
    let st = AppState::with_parts(&cfg, store.clone(), toml.clone(), Some(toml));
    let (plain, _, pdir) = state("gated-plain", 0);
    let reads = || store.counters().range_reads.load(Ordering::SeqCst);
    let joined = || store.counters().coalesced_reads.load(Ordering::SeqCst);
    // Index the asset first (init and fragment table), with the gate open.
    assert_eq!(get(&st, "/gated/demo/manifest.mpd").await.0, StatusCode::OK);

    let (reads0, joined0) = (reads(), joined());
    gated.set_open(false);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let st = st.clone();
            tokio::spawn(async move { get(&st, "/gated/demo/video_360p/3.m4s").await })
        })
        .collect();
    // Release the held read only once the 99 others wait on it. The deadline only stops a
    // broken build from hanging; a working one gets there as fast as the tasks run.
    let t = std::time::Instant::now();
    while joined() - joined0 < 99 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "after 60 s only {} of 99 requests joined the read in flight ({} reads held at the store): no single flight",
            joined() - joined0,
            gated.held.load(Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(gated.held.load(Ordering::SeqCst), 1, "more than one storage read was started for one cold range");
    gated.set_open(true);
    let want = get(&plain, "/demo/video_360p/3.m4s").await;
    assert_eq!(want.0, StatusCode::OK);
    for t in tasks {
        assert!(t.await.unwrap() == want, "a coalesced answer differs");
    }
    assert_eq!(joined() - joined0, 99, "coalesced reads");
    assert_eq!(reads() - reads0, 1, "100 concurrent requests for a cold segment made more than one read");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(pdir).unwrap();
}
