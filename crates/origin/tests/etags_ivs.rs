//! IVs and ETags that cover everything that changes the bytes: two assets under one key with
//! identical files never share IVs (no CTR keystream reuse), replicas serve identical bytes,
//! and every input of an encrypted response (key bytes behind a KID, clear lead, licence URLs)
//! is in its ETag, so `If-None-Match` and `If-Range` never splice old and new bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

const K1: &str = "69eaa802a6763af979e8d1940fb88392";
const K2: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn catalog(assets: &[&str], key: &str, clear_lead: u32, la_url: &str) -> String {
    assets
        .iter()
        .map(|a| {
            format!(
                "[[asset]]\npath = \"{a}\"\ndash = \"DynamicCommonEncryption\"\nhls = \"DynamicEnvelopeEncryption\"\nclear_lead_secs = {clear_lead}\n\
                 license = {{ playready = \"{la_url}\" }}\nkeys = [\n  {{ kid = \"abba271e8bcf552bbd2e86a434a9a5d9\", key = \"{key}\" }},\n  \
                 {{ kid = \"abba271e8bcf552bbd2e86a434a9a5e1\", key = \"{key}\", kind = \"EnvelopeEncryption\" }},\n]\n"
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A root with byte copies of fixtures/demo under each name.
fn root(tag: &str, names: &[&str]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("sealcast-etag-iv-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for n in names {
        std::fs::create_dir_all(root.join(n)).unwrap();
        for e in std::fs::read_dir(sealcast_testkit::fixtures_dir().join("demo")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), root.join(n).join(e.file_name())).unwrap();
        }
    }
    root
}

fn state(root: &Path, tag: &str, text: &str) -> (Arc<AppState>, Arc<TomlCatalog>) {
    let cat = root.join(format!("{tag}.toml"));
    std::fs::write(&cat, text).unwrap();
    let cfg = Config { root: root.to_path_buf(), catalog: Some(cat.clone()), ..Config::default() };
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    (AppState::with_parts(&cfg, Store::local(root).unwrap(), toml.clone(), Some(toml.clone())), toml)
}

async fn get(st: &Arc<AppState>, uri: &str, hdrs: &[(header::HeaderName, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(uri);
    for (k, v) in hdrs {
        req = req.header(k, *v);
    }
    let r = router(st.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

/// Every encrypted media URL of `asset`'s first video track (cenc segments, AES-128 fMP4 and
/// TS segments).
fn media_urls(asset: &str, segments: usize) -> Vec<String> {
    let mut v = Vec::new();
    for n in 1..=segments {
        for f in [format!("cenc/{n}.m4s"), format!("aes/{n}.m4s"), format!("aes/{n}.ts")] {
            v.push(format!("/{asset}/video_180p/{f}"));
        }
    }
    v
}

#[tokio::test]
async fn two_assets_under_one_key_never_share_ivs_and_replicas_agree() {
    let r1 = root("a", &["left", "right"]);
    let r2 = root("b", &["left"]);
    let text = catalog(&["left", "right"], K1, 0, "https://pr.example/a");
    let (st, _) = state(&r1, "c", &text);
    let (replica, _) = state(&r2, "c", &text);
    let segs = st.assets.get("left").await.unwrap().asset.track("video_180p").unwrap().segments.len();
    assert!(segs >= 3);
    for u in media_urls("left", segs) {
        let (s, _, left) = get(&st, &u, &[]).await;
        assert_eq!(s, StatusCode::OK, "{u}");
        let (_, _, right) = get(&st, &u.replacen("/left/", "/right/", 1), &[]).await;
        // Same plaintext, same key: equal ciphertext would mean equal IVs.
        assert_ne!(left, right, "{u}: two assets share IVs under one key");
        let (_, _, again) = get(&replica, &u, &[]).await;
        assert_eq!(left, again, "{u}: a replica serves other bytes");
    }
    // The AES-128 playlists state the IVs: none is shared between the assets.
    let ivs = |p: String| p.lines().filter_map(|l| l.split("IV=0x").nth(1)).map(|s| s[..32].to_string()).collect::<Vec<_>>();
    let l = ivs(String::from_utf8(get(&st, "/left/video_180p/aes/index.m3u8", &[]).await.2).unwrap());
    let r = ivs(String::from_utf8(get(&st, "/right/video_180p/aes/index.m3u8", &[]).await.2).unwrap());
    assert_eq!(l.len(), segs);
    assert!(l.iter().all(|iv| !r.contains(iv)));
    for d in [r1, r2] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[tokio::test]
async fn every_input_of_the_bytes_is_in_the_etag() {
    let r = root("etag", &["demo"]);
    let base = catalog(&["demo"], K1, 0, "https://pr.example/a");
    let (st, toml) = state(&r, "c", &base);
    let urls = ["/demo/video_180p/cenc/init.mp4", "/demo/video_180p/cenc/1.m4s", "/demo/video_180p/aes/2.ts", "/demo/video_180p/aes/2.m4s", "/demo/audio_en/cenc/1.m4s"];
    let snapshot = |st: Arc<AppState>| async move {
        let mut v = Vec::new();
        for u in urls {
            let (s, h, b) = get(&st, u, &[]).await;
            assert_eq!(s, StatusCode::OK, "{u}");
            v.push((h[header::ETAG].to_str().unwrap().to_string(), b));
        }
        v
    };
    let before = snapshot(st.clone()).await;
    // Each change (same KIDs throughout): key bytes, clear lead, licence URL.
    for (what, text) in [("key bytes", catalog(&["demo"], K2, 0, "https://pr.example/a")), ("clear lead", catalog(&["demo"], K1, 4, "https://pr.example/a")), ("licence URL", catalog(&["demo"], K1, 0, "https://pr.example/b"))] {
        std::fs::write(r.join("c.toml"), &text).unwrap();
        toml.reload().unwrap();
        let after = snapshot(st.clone()).await;
        for (u, ((e0, b0), (e1, b1))) in urls.iter().zip(before.iter().zip(&after)) {
            if b0 != b1 {
                assert_ne!(e0, e1, "{what}: {u} changed bytes but kept its ETag");
                // A conditional request with the old ETag gets the new bytes, never a 304, and
                // If-Range with it gets the whole new body, never a splice.
                let (s, _, _) = get(&st, u, &[(header::IF_NONE_MATCH, e0)]).await;
                assert_eq!(s, StatusCode::OK, "{what}: {u}");
                let (s, _, body) = get(&st, u, &[(header::RANGE, "bytes=100-"), (header::IF_RANGE, e0)]).await;
                assert_eq!((s, &body), (StatusCode::OK, b1), "{what}: {u}");
            }
        }
        // The key and the licence URL change every protected byte they touch.
        if what != "clear lead" {
            assert!(before.iter().zip(&after).filter(|(a, b)| a.1 != b.1).count() >= 1, "{what} changed nothing");
        }
        std::fs::write(r.join("c.toml"), &base).unwrap();
        toml.reload().unwrap();
        assert_eq!(snapshot(st.clone()).await, before, "back to the first catalog");
    }
    std::fs::remove_dir_all(r).unwrap();
}

#[tokio::test]
async fn revalidation_costs_no_read_and_no_encryption() {
    let r = root("inm", &["demo"]);
    let cat = r.join("c.toml");
    std::fs::write(&cat, catalog(&["demo"], K1, 0, "https://pr.example/a")).unwrap();
    let mut cfg = Config { root: r.clone(), catalog: Some(cat.clone()), ..Config::default() };
    cfg.cache.fragment_bytes = 0; // every segment would be a storage read
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    let st = AppState::with_parts(&cfg, Store::local(&r).unwrap(), toml.clone(), Some(toml));
    let reads = |st: &Arc<AppState>| st.assets.store().counters().range_reads.load(std::sync::atomic::Ordering::SeqCst);
    for u in ["/demo/video_180p/cenc/2.m4s", "/demo/video_180p/aes/2.ts", "/demo/video_180p/aes/2.m4s", "/demo/audio_en/cenc/1.m4s"] {
        let (s, h, _) = get(&st, u, &[]).await;
        assert_eq!(s, StatusCode::OK, "{u}");
        let tag = h[header::ETAG].to_str().unwrap().to_string();
        let before = reads(&st);
        let (s, h2, body) = get(&st, u, &[(header::IF_NONE_MATCH, &tag)]).await;
        assert_eq!((s, body.len(), &h2[header::ETAG]), (StatusCode::NOT_MODIFIED, 0, &h[header::ETAG]), "{u}");
        assert_eq!(reads(&st), before, "{u}: a revalidation read storage");
        // Another ETag still gets the body (and reads).
        let (s, _, body) = get(&st, u, &[(header::IF_NONE_MATCH, "\"other\"")]).await;
        assert!(s == StatusCode::OK && !body.is_empty() && reads(&st) > before, "{u}");
    }
    std::fs::remove_dir_all(r).unwrap();
}
