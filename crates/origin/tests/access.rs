//! Access control in the request path (issue 17), in process: refusals happen before any
//! storage request, on every asset route (clean, AMS and Smooth forms), with the fixed reason
//! and `no-store`; admitted requests are served and carried as configured; the CDN gate
//! covers every route but the health probes. (The formats themselves are checked against
//! independent signers in `tests/e2e/test_signed_urls.py`.)

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

const KEY: &str = "00112233445566778899aabbccddeeff";
const NOW: u64 = 1_900_000_000;

fn state(extra: &str) -> (Arc<AppState>, Store) {
    let text = format!("[locators]\nloc1 = \"demo\"\n{extra}");
    let mut cfg: Config = toml::from_str(&text).unwrap();
    cfg.root = sealcast_testkit::fixtures_dir();
    cfg.validate().unwrap();
    let store = Store::local(&cfg.root).unwrap();
    let st = AppState::with_store(&cfg, store.clone()).with_clock(Arc::new(|| UNIX_EPOCH + Duration::from_secs(NOW)));
    (st, store)
}

fn signed() -> (Arc<AppState>, Store) {
    state(&format!("[access.default]\nmode = \"signed\"\ncarry = true\nedgeauth = {{ keys = [\"{KEY}\"] }}\n"))
}

/// An EdgeAuth token as Akamai's generator writes it (the generator itself signs the e2e tests).
fn token(fields: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &(0..16).map(|i| (i * 0x11) as u8).collect::<Vec<u8>>());
    let tag: String = aws_lc_rs::hmac::sign(&key, fields.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{fields}~hmac={tag}")
}

async fn call(st: &Arc<AppState>, method: Method, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, String) {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = router(st.clone()).oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned())
}

fn storage_requests(store: &Store) -> u64 {
    let c = store.counters();
    c.range_reads.load(Ordering::SeqCst) + c.heads.load(Ordering::SeqCst) + c.lists.load(Ordering::SeqCst) + c.coalesced_reads.load(Ordering::SeqCst)
}

const ROUTES: [&str; 9] = [
    "/demo/manifest.mpd",
    "/demo/master.m3u8",
    "/demo/Manifest",
    "/demo/video_360p/index.m3u8",
    "/demo/video_360p/init.mp4",
    "/demo/video_360p/2.m4s",
    "/demo/video_360p/cenc/2.m4s",
    "/loc1/demo.ism/manifest(format=mpd-time-csf)",
    "/demo/QualityLevels(1)/Fragments(video=0)",
];

#[tokio::test]
async fn refusals_come_before_any_storage_request() {
    let (st, store) = signed();
    let expired = token("exp=1800000000~acl=/demo/*");
    let other = token("exp=2000000000~acl=/ladder/*");
    for uri in ROUTES {
        for (creds, reason) in [(String::new(), "missing"), (format!("?hdnts={expired}"), "expired"), (format!("?hdnts={other}"), "resource_mismatch")] {
            for m in [Method::GET, Method::HEAD] {
                let (s, h, body) = call(&st, m.clone(), &format!("{uri}{creds}"), &[]).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{m} {uri} {reason}");
                assert_eq!(h[header::CACHE_CONTROL], "no-store");
                if m == Method::GET {
                    assert_eq!(body, format!("forbidden: {reason}\n"));
                }
            }
        }
    }
    assert_eq!(storage_requests(&store), 0, "a refused request reached storage");
    assert_eq!(st.metrics.access_refusals("missing"), 18);
    // Routes outside the asset grammar are not asset access.
    assert_eq!(call(&st, Method::GET, "/healthz", &[]).await.0, StatusCode::OK);
    // Metrics are never on the public port.
    assert_eq!(call(&st, Method::GET, "/metrics", &[]).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admitted_requests_are_served_and_carried() {
    let (st, _) = signed();
    let tok = token("exp=2000000000~acl=/demo/*");
    let (s, h, master) = call(&st, Method::GET, &format!("/demo/master.m3u8?hdnts={tok}"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CACHE_CONTROL], "private, no-store");
    let media = master.lines().find(|l| !l.is_empty() && !l.starts_with('#')).unwrap();
    assert!(media.ends_with(&format!("?hdnts={tok}")), "{media}");
    let (s, h, playlist) = call(&st, Method::GET, &format!("/demo/{media}"), &[]).await;
    assert_eq!((s, h[header::CACHE_CONTROL].to_str().unwrap()), (StatusCode::OK, "private, no-store"));
    assert!(playlist.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).all(|l| l.ends_with(&format!("?hdnts={tok}"))));
    // Cookie and header credentials: served, cacheable, nothing carried.
    for hdr in [("cookie", format!("hdnts={tok}")), ("hdnts", tok.clone())] {
        let (s, h, body) = call(&st, Method::GET, "/demo/master.m3u8", &[(hdr.0, &hdr.1)]).await;
        assert_eq!((s, h[header::CACHE_CONTROL].to_str().unwrap()), (StatusCode::OK, "public, max-age=5"));
        assert!(!body.contains("hdnts"));
    }
    // A segment's ETag and bytes do not depend on the credential that admitted it.
    let a = call(&st, Method::GET, &format!("/demo/video_360p/2.m4s?hdnts={tok}"), &[]).await;
    let tok2 = token("exp=1999999999~acl=/demo/video_360p/*");
    let b = call(&st, Method::GET, "/demo/video_360p/2.m4s", &[("cookie", &format!("hdnts={tok2}"))]).await;
    assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!((&a.1[header::ETAG], &a.2), (&b.1[header::ETAG], &b.2));
    assert_eq!(a.1[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
}

#[tokio::test]
async fn the_cdn_gate_covers_every_route_but_health() {
    let (st, store) = state("[access.origin_verify]\nheader = \"X-Origin-Verify\"\nsecrets = [\"0123456789abcdef-one\", \"0123456789abcdef-two\"]\n");
    for uri in ROUTES.iter().copied().chain(["/metrics", "/key/abba271e8bcf552bbd2e86a434a9a5d9", "/nothing/here"]) {
        for secret in [None, Some("0123456789abcdef-thr"), Some("0123456789abcdef-on"), Some("")] {
            let h: Vec<(&str, &str)> = secret.map(|s| ("x-origin-verify", s)).into_iter().collect();
            let (s, hd, body) = call(&st, Method::GET, uri, &h).await;
            assert_eq!((s, body.as_str()), (StatusCode::FORBIDDEN, "forbidden: origin_header\n"), "{uri} {secret:?}");
            assert_eq!(hd[header::CACHE_CONTROL], "no-store");
        }
    }
    assert_eq!(storage_requests(&store), 0);
    // Two headers are refused too (no picking the one that matches).
    let r = Request::builder().uri("/demo/manifest.mpd").header("x-origin-verify", "0123456789abcdef-one").header("x-origin-verify", "bogus").body(Body::empty()).unwrap();
    assert_eq!(router(st.clone()).oneshot(r).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(call(&st, Method::GET, "/healthz", &[]).await.0, StatusCode::OK);
    for secret in ["0123456789abcdef-one", "0123456789abcdef-two"] {
        assert_eq!(call(&st, Method::GET, "/demo/manifest.mpd", &[("x-origin-verify", secret)]).await.0, StatusCode::OK);
    }
}
