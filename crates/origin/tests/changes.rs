//! An object replaced in S3 (moto_server) after its asset was indexed: reads carry the
//! indexed ETag (`If-Match`), storage answers 412, the file's index and the asset are dropped
//! and the request is answered from the new version, never from a mix of the two.
//! Skips, saying so, when moto_server is not installed.

mod support;

use std::sync::atomic::Ordering;

use http::StatusCode;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use sealcast_origin::config::{CacheConfig, Config};
use sealcast_origin::ingest::{self, IngestArgs, Publish};
use sealcast_origin::server::AppState;
use sealcast_storage::remote::{open, RemoteTiming};
use sealcast_storage::Store;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_object_is_reindexed_never_mixed() {
    let Some((_srv, endpoint)) = start_moto() else { return };
    let spec = moto_spec(endpoint);
    let dir = temp("changes");
    std::fs::create_dir_all(dir.join("local")).unwrap();
    let s3 = open(&spec, RemoteTiming::default()).unwrap();
    let store = Store::local(&dir.join("local")).unwrap().with_route("vod", s3.clone()).unwrap();
    ingest::run(&store, &IngestArgs { files: demo_files(), asset: "vod/demo".into(), encrypt: false, catalog: None, publish: Publish::default() }).await.unwrap();
    // Listings trusted for an hour: only the conditional read can notice the change.
    let cfg = Config { root: dir.join("local"), cache: CacheConfig { asset_ttl_secs: 3600, ..CacheConfig::default() }, ..Config::default() };
    let st = AppState::with_store(&cfg, store.clone());

    // What the origin must serve after the change: demo with video_180p replaced by the
    // 360p file under the same name, from a local copy.
    let fx = sealcast_testkit::fixtures_dir();
    let after = dir.join("after");
    std::fs::create_dir_all(after.join("demo")).unwrap();
    for f in demo_files() {
        std::fs::copy(&f, after.join("demo").join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(fx.join("demo/video_360p.cmfv"), after.join("demo/video_180p.cmfv")).unwrap();
    let want = AppState::with_store(&Config { root: after.clone(), ..Config::default() }, Store::local(&after).unwrap());
    let old = AppState::with_store(&Config { root: fx.clone(), ..Config::default() }, Store::local(&fx).unwrap());

    // Indexed, one segment served (and kept hot), then the file is replaced in the bucket.
    assert_eq!(get(&st, "/vod/demo/manifest.mpd").await.0, StatusCode::OK);
    let (s, _, seg1) = get(&st, "/vod/demo/video_180p/1.m4s").await;
    assert_eq!(s, StatusCode::OK);
    assert!(seg1 == get(&old, "/demo/video_180p/1.m4s").await.2);
    let new = std::fs::read(fx.join("demo/video_360p.cmfv")).unwrap();
    s3.put(&Path::from("demo/video_180p.cmfv"), new.into()).await.unwrap();

    // A segment not read before: 412 on the old ETag, re-index, answer from the new file.
    let (s, _, b) = get(&st, "/vod/demo/video_180p/2.m4s").await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    assert!(b == get(&want, "/demo/video_180p/2.m4s").await.2, "segment 2 is not the new file's");
    assert!(store.counters().changed.load(Ordering::SeqCst) >= 1, "the change was not noticed by a conditional read");
    // Everything else now follows the new version: the hot segment 1 of the old file is gone,
    // manifests and inits describe the new file.
    let loaded = want.assets.get("demo").await.unwrap();
    let mut urls = vec!["manifest.mpd".to_string(), "master.m3u8".into()];
    for t in &loaded.asset.tracks {
        urls.push(format!("{}/init.mp4", t.name));
        urls.push(format!("{}/index.m3u8", t.name));
        for n in 1..=t.segments.len() {
            urls.push(format!("{}/{n}.m4s", t.name));
            urls.push(format!("{}/{n}.ts", t.name));
        }
    }
    for u in &urls {
        let (s, _, b) = get(&st, &format!("/vod/demo/{u}")).await;
        assert_eq!(s, StatusCode::OK, "{u}");
        assert!(b == get(&want, &format!("/demo/{u}")).await.2, "{u} is not the new version's");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
