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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use http::{header, Request};
use http_body_util::BodyExt;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use sealcast_testkit::{fixtures_dir, golden, repo_root};
use tower::ServiceExt;

/// Assets of the golden root: (asset name, fixture folder it is a copy of).
const ASSETS: [(&str, &str); 5] = [("demo", "demo"), ("demo_aes", "demo"), ("demo_lead", "demo"), ("hevc", "hevc"), ("multi", "multi")];

/// Every URL pinned, with the golden file its body goes to (`None`: status and headers only:
/// refusals, whose JSON bodies are not part of the contract, and protocols a policy does not
/// name, whose status the index pins).
const URLS: &[(&str, Option<&str>)] = &[
    // demo: DASH cenc, HLS cbcs (fMP4 and SAMPLE-AES TS), Smooth PIFF.
    ("/demo/manifest.mpd", Some("demo.mpd")),
    ("/demo/master.m3u8", Some("demo_master.m3u8")),
    ("/demo/master-ts.m3u8", Some("demo_master-ts.m3u8")),
    ("/demo/Manifest", Some("demo.ismc")),
    ("/demo/video_180p/cenc/init.mp4", Some("demo_video_180p_cenc_init.mp4")),
    ("/demo/video_180p/cenc/1.m4s", Some("demo_video_180p_cenc_1.m4s")),
    ("/demo/video_360p/cenc/init.mp4", Some("demo_video_360p_cenc_init.mp4")),
    ("/demo/video_360p/cenc/2.m4s", Some("demo_video_360p_cenc_2.m4s")),
    ("/demo/audio_en/cenc/init.mp4", Some("demo_audio_en_cenc_init.mp4")),
    ("/demo/audio_en/cenc/1.m4s", Some("demo_audio_en_cenc_1.m4s")),
    ("/demo/video_180p/cbcs/index.m3u8", Some("demo_video_180p_cbcs.m3u8")),
    ("/demo/video_180p/cbcs/init.mp4", Some("demo_video_180p_cbcs_init.mp4")),
    ("/demo/video_180p/cbcs/1.m4s", Some("demo_video_180p_cbcs_1.m4s")),
    ("/demo/audio_fr/cbcs/init.mp4", Some("demo_audio_fr_cbcs_init.mp4")),
    ("/demo/audio_fr/cbcs/1.m4s", Some("demo_audio_fr_cbcs_1.m4s")),
    ("/demo/video_180p/cbcs/ts.m3u8", Some("demo_video_180p_cbcs-ts.m3u8")),
    ("/demo/video_180p/cbcs/1.ts", Some("demo_video_180p_sample-aes_1.ts")),
    ("/demo/audio_fr/cbcs/ts.m3u8", Some("demo_audio_fr_cbcs-ts.m3u8")),
    ("/demo/audio_fr/cbcs/2.ts", Some("demo_audio_fr_sample-aes_2.ts")),
    ("/demo/video_180p/cbcs/iframes.m3u8", Some("demo_video_180p_cbcs_iframes.m3u8")),
    ("/demo/video_180p/cbcs/iframes-ts.m3u8", Some("demo_video_180p_cbcs_iframes-ts.m3u8")),
    ("/demo/audio_fr/cbcs/iframes.m3u8", None),
    ("/demo/QualityLevels(125684)/Fragments(video=0)", Some("demo_video_piff_0.piff")),
    ("/demo/QualityLevels(66915)/Fragments(audio_eng=3840)", Some("demo_audio_eng_piff_3840.piff")),
    // The same asset under Azure Media Services forms.
    ("/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cenc)", Some("demo.mpd")),
    ("/loc1/demo.ism/manifest(format=m3u8-cmaf,encryption=cbcs-aapl)", Some("demo_master.m3u8")),
    ("/loc1/demo.ism/manifest(format=m3u8-aapl)", Some("demo_master-ts.m3u8")),
    ("/loc1/demo.ism/manifest", Some("demo.ismc")),
    ("/loc1/demo.ism/manifest(encryption=cenc)", Some("demo.ismc")),
    // Refusals: clear routes of encrypted protocols, schemes the policy does not use.
    ("/demo/video_180p/1.m4s", None),
    ("/demo/video_180p/init.mp4", None),
    ("/demo/video_180p/index.m3u8", None),
    ("/demo/video_180p/1.ts", None),
    ("/demo/video_180p/aes/1.ts", None),
    ("/demo/video_180p/cenc/1.ts", None),
    ("/demo/video_180p/cenc/ts.m3u8", None),
    ("/demo/video_180p/cenc/99.m4s", None),
    ("/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cbcs-aapl)", None),
    ("/loc1/demo.ism/manifest(format=m3u8-aapl,encryption=cbc)", None),
    ("/loc1/demo.ism/QualityLevels(1)/Fragments(video=0,encryption=cenc)", None),
    // demo_aes: HLS AES-128 over TS and fMP4; playlists that carry the viewer's token.
    ("/demo_aes/master.m3u8", Some("demo_aes_master.m3u8")),
    ("/demo_aes/master-ts.m3u8", Some("demo_aes_master-ts.m3u8")),
    ("/demo_aes/master.m3u8?token=viewer-token", Some("demo_aes_master_token.m3u8")),
    ("/demo_aes/video_180p/aes/index.m3u8", Some("demo_aes_video_180p_aes.m3u8")),
    ("/demo_aes/video_180p/aes/index.m3u8?token=viewer-token", Some("demo_aes_video_180p_aes_token.m3u8")),
    ("/demo_aes/video_180p/aes/ts.m3u8", Some("demo_aes_video_180p_aes-ts.m3u8")),
    ("/demo_aes/video_180p/aes/init.mp4", Some("demo_aes_video_180p_aes_init.mp4")),
    ("/demo_aes/video_180p/aes/1.m4s", Some("demo_aes_video_180p_aes_1.m4s.aes")),
    ("/demo_aes/video_180p/aes/1.ts", Some("demo_aes_video_180p_aes_1.ts.aes")),
    ("/demo_aes/audio_fr/aes/ts.m3u8", Some("demo_aes_audio_fr_aes-ts.m3u8")),
    ("/demo_aes/video_180p/aes/iframes-ts.m3u8", Some("demo_aes_video_180p_aes_iframes-ts.m3u8")),
    ("/demo_aes/video_180p/aes/i1.ts", None),
    ("/demo_aes/video_180p/i1.ts", None),
    ("/demo_aes/audio_fr/aes/3.ts", Some("demo_aes_audio_fr_aes_3.ts.aes")),
    ("/demo_aes/manifest.mpd", None),
    ("/demo_aes/Manifest", None),
    ("/demo_aes/video_180p/1.ts", None),
    ("/demo_aes/video_180p/cbcs/1.m4s", None),
    // demo_lead: cenc with a 3 s clear lead (clear fragments point at a clear sample entry).
    ("/demo_lead/manifest.mpd", Some("demo_lead.mpd")),
    ("/demo_lead/video_180p/cenc/init.mp4", Some("demo_lead_video_180p_cenc_init.mp4")),
    ("/demo_lead/video_180p/cenc/1.m4s", Some("demo_lead_video_180p_cenc_1.m4s")),
    ("/demo_lead/video_180p/cenc/3.m4s", Some("demo_lead_video_180p_cenc_3.m4s")),
    // hevc: cenc DASH, cbcs HLS fMP4 (no SAMPLE-AES for HEVC), PIFF Smooth.
    ("/hevc/manifest.mpd", Some("hevc.mpd")),
    ("/hevc/master.m3u8", Some("hevc_master.m3u8")),
    ("/hevc/Manifest", Some("hevc.ismc")),
    ("/hevc/video/cenc/init.mp4", Some("hevc_video_cenc_init.mp4")),
    ("/hevc/video/cenc/1.m4s", Some("hevc_video_cenc_1.m4s")),
    ("/hevc/video/cbcs/index.m3u8", Some("hevc_video_cbcs.m3u8")),
    ("/hevc/video/cbcs/init.mp4", Some("hevc_video_cbcs_init.mp4")),
    ("/hevc/video/cbcs/2.m4s", Some("hevc_video_cbcs_2.m4s")),
    // SAMPLE-AES TS without the HEVC video (fMP4 only); its TS resources do not exist.
    ("/hevc/master-ts.m3u8", Some("hevc_master-ts.m3u8")),
    ("/hevc/video/cbcs/ts.m3u8", None),
    ("/hevc/video/cbcs/1.ts", None),
    // multi: one file with several tracks; cbcs DASH and HLS, PIFF Smooth.
    ("/multi/manifest.mpd", Some("multi.mpd")),
    ("/multi/master.m3u8", Some("multi_master.m3u8")),
    ("/multi/Manifest", Some("multi.ismc")),
    ("/multi/movie_1/cbcs/init.mp4", Some("multi_video_cbcs_init.mp4")),
    ("/multi/movie_1/cbcs/1.m4s", Some("multi_video_cbcs_1.m4s")),
    ("/multi/movie_1/cbcs/1.ts", Some("multi_video_sample-aes_1.ts")),
];

/// A storage root holding byte copies of the fixtures under the golden asset names.
fn golden_root() -> PathBuf {
    let root = std::env::temp_dir().join(format!("sealcast-golden-protected-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (name, from) in ASSETS {
        let dst = root.join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(fixtures_dir().join(from)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    root
}

fn state(root: &Path) -> Arc<AppState> {
    let cat = repo_root().join("tests/golden/protected/catalog.toml");
    let mut cfg = Config { root: root.to_path_buf(), allow_clear_without_policy: false, catalog: Some(cat.clone()), ..Config::default() };
    cfg.locators.insert("loc1".into(), "demo".into());
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    AppState::with_parts(&cfg, Store::local(root).unwrap(), toml.clone(), Some(toml))
}

#[tokio::test]
async fn protected_outputs_match_goldens() {
    let root = golden_root();
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
