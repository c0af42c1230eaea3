//! Goldens of every protected output: cenc and cbcs inits and segments, PIFF fragments,
//! SAMPLE-AES and AES-128 TS segments, AES-128 fMP4 segments, clear-lead segments, protected
//! MPDs, HLS master and media playlists (with and without carried tokens), Smooth manifests
//! with `<Protection>`, and the refusals (403/404) of URLs the policies do not offer.
//!
//! The keys and policies are `tests/golden/protected/catalog.toml`; how each IV is derived is
//! in `tests/golden/protected/README.md`. Every response's status, type, cache policy, length and
//! which responses share an ETag are pinned too (`index.txt`), so a change of request path that moves one byte or one
//! header fails here. `UPDATE_GOLDEN=1` rewrites them; the diff is the review. The goldens are
//! also checked by tools we did not write (schema, m3u8 parser, ffprobe: `tests/e2e`), and the
//! live outputs they pin are decrypted to the source by Shaka Packager and ffmpeg there.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use http::{header, Request};
use http_body_util::BodyExt;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use sealcast_testkit::{golden, repo_root};

mod protected;
use protected::{golden_root, URLS};
use tower::ServiceExt;

fn state(root: &Path) -> Arc<AppState> {
    let cat = repo_root().join("tests/golden/protected/catalog.toml");
    let mut cfg = Config { root: root.to_path_buf(), allow_clear_without_policy: false, catalog: Some(cat.clone()), ..Config::default() };
    cfg.locators.insert("loc1".into(), "demo".into());
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    AppState::with_parts(&cfg, Store::local(root).unwrap(), toml.clone(), Some(toml))
}

#[tokio::test]
async fn protected_outputs_match_goldens() {
    let root = golden_root("toml");
    let st = state(&root);
    let mut index = String::from("# status | content-type | cache-control | etag (numbered by first use) | length | url\n");
    let mut etags: Vec<http::HeaderValue> = Vec::new();
    for &(url, file) in URLS {
        let r = router(st.clone()).oneshot(Request::get(url).body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = r.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let h = |n: header::HeaderName| parts.headers.get(n).map_or("-", |v| v.to_str().unwrap()).to_string();
        let len = if file.is_some() { body.len().to_string() } else { "-".into() };
        // ETags hash the source files' identities (with local storage: inode and modification
        // time), which differ per checkout; the index pins which responses share one.
        let tag = match parts.headers.get(header::ETAG) {
            Some(v) => {
                let n = etags.iter().position(|e| e == v).unwrap_or_else(|| {
                    etags.push(v.clone());
                    etags.len() - 1
                });
                format!("E{}", n + 1)
            }
            None => "-".into(),
        };
        index.push_str(&format!("{} | {} | {} | {tag} | {len} | {url}\n", parts.status.as_u16(), h(header::CONTENT_TYPE), h(header::CACHE_CONTROL)));
        match file {
            Some(f) => {
                assert!(parts.status.is_success(), "{url}: {} {}", parts.status, String::from_utf8_lossy(&body));
                golden(&format!("protected/{f}"), &body);
            }
            // Refusals are pinned by `index.txt` (status and headers); their JSON wording is not.
            None => assert!(!parts.status.is_server_error(), "{url}: {}", parts.status),
        }
    }
    golden("protected/index.txt", index.as_bytes());
    std::fs::remove_dir_all(root).unwrap();
}

/// HLS AES-128 segments requested all at once are encrypted together (`cbc_batch`, several
/// CBC chains in one pass): each answer is byte for byte the one the same request gets alone,
/// and those equal their goldens where one is pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes128_segments_requested_together_are_those_served_alone() {
    let root = golden_root("together");
    let st = state(&root);
    let get = |url: String| {
        let st = st.clone();
        async move {
            let r = router(st).oneshot(Request::get(&url).body(Body::empty()).unwrap()).await.unwrap();
            assert!(r.status().is_success(), "{url}: {}", r.status());
            r.into_body().collect().await.unwrap().to_bytes()
        }
    };
    let urls: Vec<String> = (1..=3)
        .flat_map(|n| [format!("/demo_aes/video_180p/aes/{n}.ts"), format!("/demo_aes/video_180p/aes/{n}.m4s"), format!("/demo_aes/audio_fr/aes/{n}.ts"), format!("/demo_aes/audio_fr/aes/{n}.m4s")])
        .collect();
    let mut alone = Vec::new();
    for u in &urls {
        alone.push(get(u.clone()).await);
    }
    for (url, file) in [("/demo_aes/video_180p/aes/1.ts", "demo_aes_video_180p_aes_1.ts.aes"), ("/demo_aes/video_180p/aes/1.m4s", "demo_aes_video_180p_aes_1.m4s.aes"), ("/demo_aes/audio_fr/aes/3.ts", "demo_aes_audio_fr_aes_3.ts.aes")] {
        let pinned = std::fs::read(repo_root().join("tests/golden/protected").join(file)).unwrap();
        assert!(alone[urls.iter().position(|u| u == url).unwrap()] == pinned, "{url} differs from its golden");
    }
    let together = futures::future::join_all(urls.iter().cycle().take(urls.len() * 4).map(|u| tokio::spawn(get(u.clone())))).await;
    for (i, body) in together.into_iter().enumerate() {
        let k = i % urls.len();
        assert!(body.unwrap() == alone[k], "{} requested with others differs from alone", urls[k]);
    }
    std::fs::remove_dir_all(root).unwrap();
}
