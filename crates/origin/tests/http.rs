//! HTTP semantics against the in-process server (router driven directly, and one real
//! socket for keep-alive).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

fn state_over(root: &std::path::Path) -> (Arc<AppState>, Store) {
    let cfg = Config { root: root.to_path_buf(), ..Config::default() };
    let store = Store::local(root).unwrap();
    (AppState::with_store(&cfg, store.clone()), store)
}

fn fixtures() -> (Arc<AppState>, Store) {
    state_over(&sealcast_testkit::fixtures_dir())
}

async fn call(st: &Arc<AppState>, method: Method, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = router(st.clone()).oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    call(st, Method::GET, uri, &[]).await
}

/// `server::run` over `st` on a real socket: its address, the sender that stops it, its task.
async fn listening(st: Arc<AppState>) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let srv = tokio::spawn(sealcast_origin::server::run(l, st, async {
        let _ = rx.await;
    }));
    (addr, tx, srv)
}

#[tokio::test]
async fn manifests_have_types_caching_and_stable_bytes() {
    let (st, _) = fixtures();
    for (uri, ct) in [("/demo/manifest.mpd", "application/dash+xml"), ("/demo/master.m3u8", "application/vnd.apple.mpegurl"), ("/demo/audio_fr/index.m3u8", "application/vnd.apple.mpegurl")] {
        let (s, h, b) = get(&st, uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        assert_eq!(h[header::CONTENT_TYPE], ct);
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=5");
        assert_eq!(h[header::CONTENT_LENGTH].to_str().unwrap(), b.len().to_string());
        assert!(h.contains_key(header::LAST_MODIFIED));
        let (_, h2, b2) = get(&st, uri).await;
        assert_eq!((b, &h[header::ETAG]), (b2, &h2[header::ETAG]));
    }
}

#[tokio::test]
async fn segments_support_etag_range_head() {
    let (st, _) = fixtures();
    let uri = "/demo/video_360p/2.m4s";
    let (s, h, full) = get(&st, uri).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(h[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(&full[4..8], b"styp");
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with('"'), "strong etag");

    let (s, h, b) = call(&st, Method::GET, uri, &[("if-none-match", &etag)]).await;
    assert_eq!((s, b.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(h[header::ETAG].to_str().unwrap(), etag);

    let (s, h, b) = call(&st, Method::GET, uri, &[("range", "bytes=100-1099")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h[header::CONTENT_RANGE].to_str().unwrap(), format!("bytes 100-1099/{}", full.len()));
    assert_eq!(b, full[100..1100]);
    let (s, _, b) = call(&st, Method::GET, uri, &[("range", "bytes=-10")]).await;
    assert_eq!((s, &b[..]), (StatusCode::PARTIAL_CONTENT, &full[full.len() - 10..]));
    let (s, h, _) = call(&st, Method::GET, uri, &[("range", &format!("bytes={}-", full.len()))]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h[header::CONTENT_RANGE].to_str().unwrap(), format!("bytes */{}", full.len()));
    // If-Range with a stale validator: whole body.
    let (s, _, b) = call(&st, Method::GET, uri, &[("range", "bytes=0-9"), ("if-range", "\"stale\"")]).await;
    assert_eq!((s, b.len()), (StatusCode::OK, full.len()));

    let (s, h, b) = call(&st, Method::HEAD, uri, &[]).await;
    assert_eq!((s, b.len()), (StatusCode::OK, 0));
    assert_eq!(h[header::CONTENT_LENGTH].to_str().unwrap(), full.len().to_string());

    let (_, h, init) = get(&st, "/demo/audio_en/init.mp4").await;
    assert_eq!((h[header::CONTENT_TYPE].to_str().unwrap(), &init[4..8]), ("audio/mp4", &b"ftyp"[..]));
}

#[tokio::test]
async fn cors_for_browser_players() {
    let (st, _) = fixtures();
    let (_, h, _) = call(&st, Method::GET, "/demo/manifest.mpd", &[("origin", "https://player.example")]).await;
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let (s, h, _) =
        call(&st, Method::OPTIONS, "/demo/video_180p/1.m4s", &[("origin", "https://p.example"), ("access-control-request-method", "GET"), ("access-control-request-headers", "range")]).await;
    assert!(s.is_success());
    assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().to_ascii_lowercase().contains("range"));
}

#[tokio::test]
async fn bad_urls_are_refused() {
    let (st, store) = fixtures();
    for uri in ["/../etc/passwd", "/%2e%2e/etc/manifest.mpd", "/demo/..%2f..%2fetc/manifest.mpd", "/demo%5c..%5cx/manifest.mpd", "/demo/%00/manifest.mpd", "/demo//manifest.mpd"] {
        let (s, h, b) = get(&st, uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        assert!(String::from_utf8(b).unwrap().contains("bad_request"));
    }
    assert_eq!(store.counters().range_reads.load(Ordering::Relaxed), 0, "nothing read for refused paths");
    for uri in
        ["/nope/manifest.mpd", "/demo/nope/1.m4s", "/demo/video_180p/0.m4s", "/demo/video_180p/99.m4s", "/demo/video_180p/x.m4s", "/demo/video_180p/1.mp4", "/demo/video_180p/1.ts.m4s", "/demo", "/"]
    {
        assert_eq!(get(&st, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
    assert_eq!(call(&st, Method::POST, "/demo/manifest.mpd", &[]).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn malformed_media_is_a_json_error_and_the_server_keeps_serving() {
    let (st, _) = fixtures();
    for _ in 0..2 {
        let (s, h, b) = get(&st, "/bad/manifest.mpd").await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["asset"], "bad");
        assert!(v["fault"].as_str().unwrap().contains("garbage.mp4") || v["fault"].as_str().unwrap().contains("truncated"));
    }
    assert_eq!(get(&st, "/demo/manifest.mpd").await.0, StatusCode::OK);
}

#[tokio::test]
async fn reads_are_few_and_segments_take_one_read() {
    let (st, store) = fixtures();
    get(&st, "/demo/manifest.mpd").await;
    let c = store.counters();
    let index_reads = c.range_reads.load(Ordering::Relaxed);
    // 4 track files of 5 fragments + .ism: read-ahead + sidx make this small.
    assert!(index_reads <= 1 + 4 * 7, "{index_reads} reads to index demo");
    get(&st, "/demo/video_360p/3.m4s").await;
    assert_eq!(c.range_reads.load(Ordering::Relaxed), index_reads + 1);
}

#[tokio::test]
async fn changed_file_is_reindexed() {
    let dir = std::env::temp_dir().join(format!("sealcast-reindex-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("a")).unwrap();
    let fx = sealcast_testkit::fixtures_dir();
    std::fs::copy(fx.join("demo/video_180p.cmfv"), dir.join("a/v.cmfv")).unwrap();
    let cfg = Config { root: dir.clone(), cache: sealcast_origin::config::CacheConfig { asset_ttl_secs: 1, ..Default::default() }, ..Config::default() };
    let st = AppState::with_store(&cfg, Store::local(&dir).unwrap());
    let (_, h1, m1) = get(&st, "/a/manifest.mpd").await;
    assert!(String::from_utf8_lossy(&m1).contains("avc1.64000c"));
    std::fs::copy(fx.join("demo/video_360p.cmfv"), dir.join("a/v.cmfv")).unwrap();
    // The listing is trusted for asset_ttl_secs; past it, the new file is seen and indexed.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (_, h2, m2) = get(&st, "/a/manifest.mpd").await;
    assert!(String::from_utf8_lossy(&m2).contains("avc1.64001e"));
    assert_ne!(h1[header::ETAG], h2[header::ETAG]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn real_socket_keep_alive_and_h2c() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (st, _) = fixtures();
    let (addr, tx, srv) = listening(st).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Two requests on one HTTP/1.1 connection.
    s.write_all(b"GET /demo/master.m3u8 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /demo/manifest.mpd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    // HTTP/2 with prior knowledge: the server answers the connection preface with SETTINGS.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let mut frame = [0u8; 9];
    s.read_exact(&mut frame).await.unwrap();
    assert_eq!(frame[3], 0x4, "first frame from server is SETTINGS");
    tx.send(()).unwrap();
    drop(s);
    srv.await.unwrap().unwrap();
}

/// The listener calls the handler without axum's router (`serve_request`): over a real socket,
/// every kind of answer (content, HEAD, conditional, range, errors, probes, preflight) must
/// carry the same status, headers and body as through the router.
#[tokio::test]
async fn listener_and_router_answer_alike() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // One state each: a state remembers (a missing asset, say), and both must start alike.
    let ((st, _), (served, _)) = (fixtures(), fixtures());
    let (addr, tx, srv) = listening(served).await;
    let (_, h, _) = call(&st, Method::GET, "/demo/manifest.mpd", &[]).await;
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    // A request: method, path, headers.
    type Case<'a> = (Method, &'a str, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (Method::GET, "/demo/manifest.mpd", vec![]),
        (Method::HEAD, "/demo/manifest.mpd", vec![]),
        (Method::HEAD, "/healthz", vec![]),
        (Method::GET, "/healthz", vec![]),
        (Method::GET, "/demo/manifest.mpd", vec![("if-none-match", etag.as_str())]),
        (Method::GET, "/demo/video_180p/1.m4s", vec![("range", "bytes=10-99")]),
        (Method::HEAD, "/demo/video_180p/1.m4s", vec![]),
        (Method::GET, "/demo/video_180p/1.m4s", vec![]),
        (Method::GET, "/demo/audio_en/3.m4s", vec![]),
        (Method::GET, "/demo/video_360p/2.m4s", vec![("if-range", "\"stale\""), ("range", "bytes=0-9")]),
        (Method::GET, "/demo/video_180p/2.ts", vec![]),
        (Method::HEAD, "/demo/video_180p/2.ts", vec![]),
        (Method::GET, "/demo/video_180p/2.ts", vec![("range", "bytes=1000-")]),
        (Method::GET, "/demo/manifest.mpd", vec![("range", "bytes=999999-")]),
        (Method::GET, "/nope/manifest.mpd", vec![]),
        (Method::HEAD, "/nope/manifest.mpd", vec![]),
        (Method::GET, "/a/../b/manifest.mpd", vec![]),
        (Method::DELETE, "/demo/manifest.mpd", vec![]),
        (Method::OPTIONS, "/demo/manifest.mpd", vec![("origin", "https://player.example"), ("access-control-request-method", "GET")]),
    ];
    for (method, uri, headers) in cases {
        let (rs, rh, rb) = call(&st, method.clone(), uri, &headers).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = format!("{method} {uri} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for (k, v) in &headers {
            req += &format!("{k}: {v}\r\n");
        }
        s.write_all(format!("{req}\r\n").as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
        let head = String::from_utf8(buf[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
        let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(status, rs.as_u16(), "{method} {uri}");
        // hyper leaves Content-Length out of a 204 and a 304 (RFC 9110 §8.6).
        let ignored = |k: &str| matches!(k, "date" | "connection" | "x-request-id") || (matches!(status, 204 | 304) && k == "content-length");
        let mut got: Vec<(String, String)> = lines.map(|l| l.split_once(": ").unwrap()).map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).filter(|(k, _)| !ignored(k)).collect();
        let mut want: Vec<(String, String)> = rh.iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string())).filter(|(k, _)| !ignored(k)).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {uri}");
        assert_eq!(&buf[split..], &rb[..], "{method} {uri}");
        if method == Method::HEAD {
            assert!(rb.is_empty() && rh.contains_key(header::CONTENT_LENGTH), "{uri}: HEAD keeps the length, sends no body");
        }
    }
    tx.send(()).unwrap();
    srv.await.unwrap().unwrap();
}

/// Clear TS segments are made as they are sent (in pieces) unless a range is asked for, when
/// they are built whole: both ways give the same bytes, length, ETag and validators.
#[tokio::test]
async fn ts_segments_made_as_sent_are_the_ones_built_whole() {
    let (st, _) = fixtures();
    for uri in ["/demo/video_360p/1.ts", "/demo/video_180p/3.ts", "/demo/audio_fr/2.ts"] {
        let (s, h, made) = get(&st, uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        assert_eq!(h[header::CONTENT_LENGTH].to_str().unwrap(), made.len().to_string());
        assert_eq!((made.len() % 188, made[0]), (0, 0x47), "{uri}");
        let (s, hw, whole) = call(&st, Method::GET, uri, &[("range", "bytes=0-")]).await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT);
        assert!(whole == made, "{uri}: made in pieces and built whole differ");
        assert_eq!(hw[header::ETAG], h[header::ETAG]);
        assert_eq!(hw[header::CONTENT_RANGE].to_str().unwrap(), format!("bytes 0-{}/{}", made.len() - 1, made.len()));
        let (s, _, part) = call(&st, Method::GET, uri, &[("range", "bytes=188-375")]).await;
        assert_eq!((s, &part[..]), (StatusCode::PARTIAL_CONTENT, &made[188..376]));
        let (s, hh, b) = call(&st, Method::HEAD, uri, &[]).await;
        assert_eq!((s, b.len()), (StatusCode::OK, 0));
        assert_eq!((&hh[header::CONTENT_LENGTH], &hh[header::ETAG]), (&h[header::CONTENT_LENGTH], &h[header::ETAG]));
        let etag = h[header::ETAG].to_str().unwrap();
        let (s, _, b) = call(&st, Method::GET, uri, &[("if-none-match", etag)]).await;
        assert_eq!((s, b.len()), (StatusCode::NOT_MODIFIED, 0));
    }
}

#[tokio::test]
async fn smooth_and_ams_forms_serve_the_same_bytes() {
    let fx = sealcast_testkit::fixtures_dir();
    let mut cfg = Config { root: fx.clone(), ..Config::default() };
    cfg.locators.insert("3f2a9c1e-0000-4000-8000-000000000001".into(), "demo".into());
    cfg.validate().unwrap();
    let st = AppState::with_store(&cfg, Store::local(&fx).unwrap());
    let loc = "/3f2a9c1e-0000-4000-8000-000000000001/demo.ism";
    for (ams, clean) in [
        ("manifest", "/demo/Manifest"),
        ("Manifest", "/demo/Manifest"),
        ("manifest(format=m3u8-aapl)", "/demo/master-ts.m3u8"),
        ("manifest(format=m3u8-aapl-v3)", "/demo/master-ts.m3u8"),
        ("manifest(format=m3u8-cmaf)", "/demo/master.m3u8"),
        ("manifest(format=mpd-time-csf)", "/demo/manifest.mpd"),
        ("manifest(format=mpd-time-cmaf)", "/demo/manifest.mpd"),
        ("video_180p/1.m4s", "/demo/video_180p/1.m4s"),
        ("video_360p/2.ts", "/demo/video_360p/2.ts"),
    ] {
        let (s1, h1, b1) = get(&st, &format!("{loc}/{ams}")).await;
        let (s2, h2, b2) = get(&st, clean).await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{ams}");
        assert_eq!(b1, b2, "{ams} differs from {clean}");
        assert_eq!(h1[header::CONTENT_TYPE], h2[header::CONTENT_TYPE]);
    }
    // A Smooth fragment URL, as the manifest lists it, through both forms.
    let (_, _, m) = get(&st, "/demo/Manifest").await;
    let m = String::from_utf8(m).unwrap();
    let bitrate = m.split("Bitrate=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let frag = format!("QualityLevels({bitrate})/Fragments(video=0)");
    let (s1, _, b1) = get(&st, &format!("{loc}/{frag}")).await;
    let (s2, _, b2) = get(&st, &format!("/demo/{frag}")).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{frag}\n{m}");
    assert_eq!(b1, b2);
    assert_eq!(&b1[4..8], b"moof");
    // Validated, and refused rather than served clear: no delivery policy offers encryption yet.
    assert_eq!(get(&st, &format!("{loc}/manifest(format=mpd-time-csf,encryption=cenc)")).await.0, StatusCode::FORBIDDEN);
    for bad in ["manifest(format=bogus)", "manifest(format=m3u8-aapl,encryption=rot13)", "QualityLevels(x)/Fragments(video=0)", "QualityLevels(1)/Fragments(video=abc)"] {
        assert_eq!(get(&st, &format!("{loc}/{bad}")).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(get(&st, &format!("/demo/QualityLevels({bitrate})/Fragments(video=1)")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&st, "/unknown-locator/demo.ism/manifest").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&st, "/3f2a9c1e-0000-4000-8000-000000000001/other.ism/manifest").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mmap_reads_serve_identical_bytes() {
    let fx = sealcast_testkit::fixtures_dir();
    let cfg = Config { root: fx.clone(), ..Config::default() };
    let pread = AppState::with_store(&cfg, Store::local(&fx).unwrap());
    let mapped = AppState::with_store(&cfg, Store::local_with(&fx, sealcast_storage::LocalRead::Mmap).unwrap());
    for uri in ["/demo/video_360p/3.m4s", "/demo/video_180p/2.ts", "/multi/movie_2/3.m4s", "/demo/manifest.mpd"] {
        let (s1, h1, b1) = get(&pread, uri).await;
        let (s2, h2, b2) = get(&mapped, uri).await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{uri}");
        assert_eq!(b1, b2, "{uri}");
        assert_eq!(h1[header::ETAG], h2[header::ETAG]);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const POLICY_CATALOG: &str = r#"
[[asset]]
path = "demo"
dash = "DynamicCommonEncryption"
hls = "NoDynamicEncryption"
license = { clearkey = "https://keys.example/clearkey" }
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5da", key = "69eaa802a6763af979e8d1940fb88393" },
]

[[asset]]
path = "hevc"
dash = "DynamicCommonEncryption"
hls = "DynamicCommonEncryptionCbcs"
smooth = "DynamicCommonEncryption"
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5db", key = "69eaa802a6763af979e8d1940fb88394", kind = "CommonEncryptionCbcs" },
]
"#;

fn policy_state(tag: &str, catalog: &str) -> (Arc<AppState>, std::path::PathBuf, Arc<sealcast_origin::catalog::TomlCatalog>) {
    use sealcast_origin::catalog::TomlCatalog;
    let dir = std::env::temp_dir().join(format!("sealcast-policy-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cat = dir.join("catalog.toml");
    std::fs::write(&cat, catalog).unwrap();
    let fx = sealcast_testkit::fixtures_dir();
    let mut cfg = Config { root: fx.clone(), allow_clear_without_policy: false, catalog: Some(cat.clone()), ..Config::default() };
    cfg.locators.insert("loc1".into(), "demo".into());
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    (AppState::with_parts(&cfg, Store::local(&fx).unwrap(), toml.clone(), Some(toml.clone())), dir, toml)
}

#[tokio::test]
async fn delivery_policy_never_serves_clear_by_mistake() {
    let (st, dir, _) = policy_state("clear", POLICY_CATALOG);
    // demo: DASH encrypted (cenc), HLS clear: the clear CMAF segments stay for HLS.
    assert_eq!(get(&st, "/demo/master.m3u8").await.0, StatusCode::OK);
    assert_eq!(get(&st, "/demo/video_180p/1.m4s").await.0, StatusCode::OK);
    // Smooth is not named by demo's policy: blocked, under every URL form.
    for uri in ["/demo/Manifest", "/loc1/demo.ism/manifest", "/demo/QualityLevels(125684)/Fragments(video=0)", "/loc1/demo.ism/QualityLevels(125684)/Fragments(video=0)"] {
        assert_eq!(get(&st, uri).await.0, StatusCode::FORBIDDEN, "{uri}");
    }
    // Policy lookup ignores case: a case-insensitive store would read demo's files here.
    assert_eq!(get(&st, "/DEMO/Manifest").await.0, StatusCode::FORBIDDEN);
    // A scheme the policy does not use is refused, never produced.
    assert_eq!(get(&st, "/demo/video_180p/cbcs/1.m4s").await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(&st, "/demo/video_180p/cenc/index.m3u8").await.0, StatusCode::FORBIDDEN);
    // hevc: every protocol encrypted, so nothing clear anywhere, TS included (not offered).
    for uri in ["/hevc/video/init.mp4", "/hevc/video/1.m4s", "/hevc/video/1.ts", "/hevc/video/index.m3u8", "/hevc/video/ts.m3u8", "/hevc/audio/1.ts"] {
        let (s, _, b) = get(&st, uri).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{uri}");
        assert!(String::from_utf8(b).unwrap().contains("forbidden"));
    }
    // Its SAMPLE-AES TS presentation leaves the HEVC video out (HLS fMP4 keeps it) and offers
    // the AAC audio; the HEVC video has no TS playlist or segment under any method.
    let (s, _, b) = get(&st, "/hevc/master-ts.m3u8").await;
    let ts = String::from_utf8(b).unwrap();
    assert_eq!(s, StatusCode::OK, "{ts}");
    assert!(ts.contains("audio/cbcs/ts.m3u8") && !ts.contains("video/") && !ts.contains("hvc1"), "{ts}");
    let (_, _, b) = get(&st, "/hevc/master.m3u8").await;
    assert!(String::from_utf8(b).unwrap().contains("video/cbcs/index.m3u8"));
    for uri in ["/hevc/video/cbcs/ts.m3u8", "/hevc/video/cbcs/1.ts"] {
        assert_eq!(get(&st, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
    assert_eq!(get(&st, "/hevc/audio/cbcs/ts.m3u8").await.0, StatusCode::OK);
    // multi has no policy and clear-without-policy is off.
    assert_eq!(get(&st, "/multi/manifest.mpd").await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(&st, "/multi/movie_1/cenc/init.mp4").await.0, StatusCode::FORBIDDEN);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn encrypted_output_follows_the_policy() {
    let (st, dir, _) = policy_state("enc", POLICY_CATALOG);
    let (s, h, mpd) = get(&st, "/demo/manifest.mpd").await;
    assert_eq!(s, StatusCode::OK);
    let mpd = String::from_utf8(mpd).unwrap();
    assert!(mpd.contains(r#"value="cenc" cenc:default_KID="abba271e-8bcf-552b-bd2e-86a434a9a5d9""#), "audio key");
    assert!(mpd.contains(r#"value="cenc" cenc:default_KID="abba271e-8bcf-552b-bd2e-86a434a9a5da""#), "video key");
    assert!(mpd.contains("<dashif:Laurl>https://keys.example/clearkey</dashif:Laurl>"));
    assert!(mpd.contains(r#"initialization="video_180p/cenc/init.mp4" media="video_180p/cenc/$Number$.m4s""#));
    // The same manifest under its AMS form, with and without the matching encryption=.
    for uri in ["/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cenc)", "/loc1/demo.ism/manifest(format=mpd-time-csf)"] {
        let (s, h2, b) = get(&st, uri).await;
        assert_eq!((s, &b[..], &h2[header::ETAG]), (StatusCode::OK, mpd.as_bytes(), &h[header::ETAG]), "{uri}");
    }
    for uri in [
        "/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cbcs-aapl)",
        "/loc1/demo.ism/manifest(format=m3u8-cmaf,encryption=cenc)",
        "/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cbc)",
    ] {
        assert_eq!(get(&st, uri).await.0, StatusCode::FORBIDDEN, "{uri}");
    }
    let (s, _, init) = get(&st, "/demo/video_180p/cenc/init.mp4").await;
    assert_eq!(s, StatusCode::OK);
    for b in [&b"encv"[..], b"sinf", b"tenc", b"pssh", b"avcC"] {
        assert!(contains(&init, b), "init lacks {}", String::from_utf8_lossy(b));
    }
    let (s, h, seg) = get(&st, "/demo/video_180p/cenc/2.m4s").await;
    assert_eq!((s, h[header::CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, "video/mp4"));
    let (_, _, clear) = get(&st, "/demo/video_180p/2.m4s").await;
    for b in [&b"senc"[..], b"saiz", b"saio", b"mdat"] {
        assert!(contains(&seg, b), "segment lacks {}", String::from_utf8_lossy(b));
    }
    assert!(seg.len() > clear.len(), "senc adds bytes");
    // Same request, same bytes and ETag; the key never appears in anything we serve.
    let (_, h2, seg2) = get(&st, "/demo/video_180p/cenc/2.m4s").await;
    assert_eq!((&seg, &h[header::ETAG]), (&seg2, &h2[header::ETAG]));
    let key = [0x69u8, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9];
    for body in [mpd.as_bytes(), &init, &seg] {
        assert!(!contains(body, &key) && !contains(body, b"69eaa802"), "key bytes leaked");
    }
    // hevc: cbcs HLS with key tags, and cenc Smooth (its policy): the manifest carries a
    // PlayReady ProtectionHeader and fragments carry PIFF sample encryption, never clear.
    let (s, _, ism) = get(&st, "/hevc/Manifest").await;
    assert_eq!(s, StatusCode::OK);
    let ism = String::from_utf8(ism).unwrap();
    assert!(ism.contains("<Protection>") && ism.to_ascii_lowercase().replace('-', "").contains(r#"systemid="9a04f07998404286ab92e65be0885f95""#), "{ism}");
    let bitrate = ism.split("Bitrate=\"").nth(1).unwrap().split('"').next().unwrap();
    let (s, _, frag) = get(&st, &format!("/hevc/QualityLevels({bitrate})/Fragments(video=0)")).await;
    assert_eq!(s, StatusCode::OK, "{ism}");
    let piff_senc = [0xa2, 0x39, 0x4f, 0x52, 0x5a, 0x9b, 0x4f, 0x14, 0xa2, 0x44, 0x6c, 0x42, 0x7c, 0x64, 0x8d, 0xf4];
    assert!(contains(&frag, b"uuid") && contains(&frag, &piff_senc), "hevc Smooth fragment without PIFF sample encryption");
    let (s, _, master) = get(&st, "/hevc/master.m3u8").await;
    assert_eq!(s, StatusCode::OK);
    let master = String::from_utf8(master).unwrap();
    assert!(master.contains("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,") && master.contains("video/cbcs/index.m3u8"), "{master}");
    let (s, _, media) = get(&st, "/hevc/video/cbcs/index.m3u8").await;
    assert_eq!(s, StatusCode::OK);
    let media = String::from_utf8(media).unwrap();
    assert!(media.contains("#EXT-X-KEY:METHOD=SAMPLE-AES,") && media.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{media}");
    assert_eq!(get(&st, "/hevc/video/cbcs/1.m4s").await.0, StatusCode::OK);
    // A second, independent server state makes the same bytes (what CDNs and replicas see).
    let (st2, dir2, _) = policy_state("enc2", POLICY_CATALOG);
    assert_eq!(get(&st2, "/demo/video_180p/cenc/2.m4s").await.2, seg);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
}

#[tokio::test]
async fn catalog_reload_changes_keys_and_etags() {
    let (st, dir, toml) = policy_state("reload", POLICY_CATALOG);
    let (_, h1, mpd1) = get(&st, "/demo/manifest.mpd").await;
    let (_, s1, seg1) = get(&st, "/demo/audio_en/cenc/1.m4s").await;
    std::fs::write(dir.join("catalog.toml"), POLICY_CATALOG.replace("a5d9", "a5e9")).unwrap();
    toml.reload().unwrap();
    let (_, h2, mpd2) = get(&st, "/demo/manifest.mpd").await;
    let (_, s2, seg2) = get(&st, "/demo/audio_en/cenc/1.m4s").await;
    assert!(String::from_utf8(mpd2.clone()).unwrap().contains("a5e9"));
    assert_ne!((mpd1, &h1[header::ETAG]), (mpd2, &h2[header::ETAG]));
    assert_ne!((seg1, &s1[header::ETAG]), (seg2, &s2[header::ETAG]));
    std::fs::remove_dir_all(dir).unwrap();
}

const KEYS_CATALOG: &str = r#"
[authorization.viewers]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "https://sts.example"
audience = "urn:sealcast"
keys = [ { symmetric = "c2VhbGNhc3QtdGVzdC1zZWNyZXQtMzItYnl0ZXMhIQ==" } ]
content_key_claim = true

[authorization.open]
type = "Open"

[[asset]]
path = "demo"
hls = "DynamicEnvelopeEncryption"
dash = "DynamicCommonEncryption"
authorization = "viewers"
carry_token = true
license = { clearkey = "/clearkey" }
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5e1", key = "69eaa802a6763af979e8d1940fb88396", kind = "EnvelopeEncryption" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5e2", key = "69eaa802a6763af979e8d1940fb88397", kind = "EnvelopeEncryption", authorization = "open" },
]

[[asset]]
path = "multi"
dash = "DynamicCommonEncryption"
keys = [ { kid = "abba271e8bcf552bbd2e86a434a9a5f0", key = "69eaa802a6763af979e8d1940fb88398" } ]
"#;

fn jwt(kid: &str, exp_in: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = serde_json::json!({
        "iss": "https://sts.example", "aud": "urn:sealcast", "exp": now + exp_in, "sub": "viewer",
        "urn:microsoft:azure:mediaservices:contentkeyidentifier": kid,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(b"sealcast-test-secret-32-bytes!!").unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn key_delivery_follows_authorization_policies() {
    let (st, dir, _) = policy_state("keys", KEYS_CATALOG);
    let kid = "abba271e8bcf552bbd2e86a434a9a5e1";
    let good = jwt(kid, 600);
    // Valid bearer token and valid query token: the key bytes, never cached.
    for (uri, hdrs) in [(format!("/key/{kid}"), vec![("authorization", format!("Bearer {good}"))]), (format!("/key/{kid}?token={good}"), vec![])] {
        let h: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, h, b) = call(&st, Method::GET, &uri, &h).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        assert_eq!(b, [0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83, 0x96]);
        assert_eq!((h[header::CONTENT_TYPE].to_str().unwrap(), h[header::CACHE_CONTROL].to_str().unwrap()), ("application/octet-stream", "no-store"));
    }
    // The GUID spelling names the same key; an Open key needs no token.
    assert_eq!(call(&st, Method::GET, "/key/abba271e-8bcf-552b-bd2e-86a434a9a5e1", &[("authorization", &format!("Bearer {good}"))]).await.0, StatusCode::OK);
    assert_eq!(get(&st, "/key/abba271e8bcf552bbd2e86a434a9a5e2").await.0, StatusCode::OK);
    // Refusals: status, a fixed reason, no token echoed.
    let other = jwt("abba271e8bcf552bbd2e86a434a9a5d9", 600);
    let expired = jwt(kid, -3600);
    // Change a signature character that carries only data bits (the last one also holds
    // unused padding bits, which lenient decoders ignore).
    let at = good.len() - 10;
    let c = if &good[at..at + 1] == "A" { "B" } else { "A" };
    let tampered = format!("{}{c}{}", &good[..at], &good[at + 1..]);
    let cases: Vec<(String, Option<String>, StatusCode, &str)> = vec![
        (format!("/key/{kid}"), None, StatusCode::UNAUTHORIZED, "token_missing"),
        (format!("/key/{kid}"), Some(expired), StatusCode::UNAUTHORIZED, "token_expired"),
        (format!("/key/{kid}"), Some(tampered), StatusCode::UNAUTHORIZED, "token_signature"),
        (format!("/key/{kid}"), Some("not.a.token".into()), StatusCode::UNAUTHORIZED, "token_malformed"),
        (format!("/key/{kid}"), Some(other), StatusCode::FORBIDDEN, "content_key_mismatch"),
        ("/key/abba271e8bcf552bbd2e86a434a9a5f0".into(), None, StatusCode::FORBIDDEN, "no_policy"),
        ("/key/abba271e8bcf552bbd2e86a434a9a5ff".into(), None, StatusCode::NOT_FOUND, "unknown_key"),
        ("/key/nonsense".into(), None, StatusCode::NOT_FOUND, "unknown_key"),
    ];
    for (uri, token, status, reason) in cases {
        let auth = token.as_ref().map(|t| format!("Bearer {t}"));
        let h: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (s, hd, b) = call(&st, Method::GET, &uri, &h).await;
        let body = String::from_utf8(b).unwrap();
        assert_eq!((s, body.contains(reason)), (status, true), "{uri} {reason}: {body}");
        assert_eq!(hd[header::CACHE_CONTROL], "no-store");
        if let Some(t) = &token {
            assert!(!body.contains(t.as_str()), "token echoed");
        }
        assert!(st.metrics.refused("key", reason) >= 1, "{reason} not counted");
    }
    let m = sealcast_origin::server::metrics_text(&st).await;
    assert!(m.contains("sealcast_keys_refused_total{service=\"key\",reason=\"token_expired\"} 1"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn clearkey_licences_and_token_carrying_playlists() {
    let (st, dir, _) = policy_state("clearkey", KEYS_CATALOG);
    let post = |body: &'static str, auth: Option<String>| {
        let st = st.clone();
        async move {
            let mut b = Request::builder().method(Method::POST).uri("/clearkey").header("content-type", "application/json");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            let r = router(st).oneshot(b.body(Body::from(body)).unwrap()).await.unwrap();
            let (p, body) = r.into_parts();
            (p.status, String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap())
        }
    };
    // KID abba271e-8bcf-552b-bd2e-86a434a9a5d9 in base64url.
    let req = r#"{"kids":["q7onHovPVSu9LoakNKml2Q"],"type":"temporary"}"#;
    let (s, body) = post(req, Some(format!("Bearer {}", jwt("abba271e8bcf552bbd2e86a434a9a5d9", 600)))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["keys"][0]["kid"], "q7onHovPVSu9LoakNKml2Q");
    assert_eq!(v["keys"][0]["k"], "aeqoAqZ2Ovl56NGUD7iDkg");
    assert_eq!(v["keys"][0]["kty"], "oct");
    assert_eq!(post(req, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(post(r#"{"kids":"x"}"#, None).await.0, StatusCode::BAD_REQUEST);
    // CORS preflight lets browsers POST with a bearer token.
    let (s, h, _) = call(&st, Method::OPTIONS, "/clearkey", &[("origin", "https://player.example"), ("access-control-request-method", "POST")]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(h[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().contains("POST"));
    assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("Authorization"));

    // AES-128 HLS: the token of a playlist request goes to media playlists and key URIs only.
    let (s, h, master) = get(&st, "/demo/master-ts.m3u8?token=abc%2Bdef").await;
    let master = String::from_utf8(master).unwrap();
    assert_eq!((s, h[header::CACHE_CONTROL].to_str().unwrap()), (StatusCode::OK, "private, no-store"));
    assert!(master.contains("video_360p/aes/ts.m3u8?token=abc%2Bdef"), "{master}");
    let (_, h, media) = get(&st, "/demo/video_360p/aes/ts.m3u8?token=abc%2Bdef").await;
    let media = String::from_utf8(media).unwrap();
    assert_eq!(h[header::CACHE_CONTROL], "private, no-store");
    assert!(media.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"/key/abba271e8bcf552bbd2e86a434a9a5e2?token=abc%2Bdef\",IV=0x"), "{media}");
    assert!(media.lines().filter(|l| l.ends_with(".ts")).all(|l| !l.contains("token")), "token leaked into segment URLs");
    // Without a token the playlists are the shared, cacheable ones.
    let (_, h, plain) = get(&st, "/demo/video_360p/aes/ts.m3u8").await;
    assert_eq!(h[header::CACHE_CONTROL], "public, max-age=5");
    assert!(!String::from_utf8(plain).unwrap().contains("token"));
    // Segments are encrypted whole: a multiple of 16 bytes, not a TS sync byte pattern.
    let (s, _, seg) = get(&st, "/demo/video_360p/aes/1.ts").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(seg.len() % 16, 0);
    assert!(!(seg[0] == 0x47 && seg[188] == 0x47), "looks like clear TS");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn cpix_usage_rules_and_vendor_signalling_decide() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (ka, k1, k2) = ("11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002", "11111111-0000-4000-8000-000000000003");
    let vendor = sealcast_drm::widevine::WidevinePsshData {
        key_ids: vec![sealcast_drm::Kid::parse(k1).unwrap()],
        provider: Some("vendor".into()),
        content_id: Some(b"title-42".to_vec()),
        protection_scheme: Some(sealcast_drm::Scheme::Cenc),
    }
    .to_pssh_box()
    .unwrap();
    let cpix = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<CPIX xmlns="urn:dashif:org:cpix" xmlns:p="urn:ietf:params:xml:ns:keyprov:pskc" contentId="title-42" version="2.3">
  <ContentKeyList>
    <ContentKey kid="{ka}"><Data><p:Secret><p:PlainValue>{a}</p:PlainValue></p:Secret></Data></ContentKey>
    <ContentKey kid="{k1}"><Data><p:Secret><p:PlainValue>{b}</p:PlainValue></p:Secret></Data></ContentKey>
    <ContentKey kid="{k2}"><Data><p:Secret><p:PlainValue>{c}</p:PlainValue></p:Secret></Data></ContentKey>
  </ContentKeyList>
  <DRMSystemList>
    <DRMSystem kid="{k1}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><PSSH>{wv}</PSSH></DRMSystem>
  </DRMSystemList>
  <ContentKeyUsageRuleList>
    <ContentKeyUsageRule kid="{ka}" intendedTrackType="AUDIO"><AudioFilter/></ContentKeyUsageRule>
    <ContentKeyUsageRule kid="{k1}" intendedTrackType="SD-LOW"><VideoFilter maxPixels="100000"/></ContentKeyUsageRule>
    <ContentKeyUsageRule kid="{k2}" intendedTrackType="SD-HIGH"><VideoFilter minPixels="100001"/></ContentKeyUsageRule>
  </ContentKeyUsageRuleList>
</CPIX>"#,
        a = b64(&[0x11; 16]),
        b = b64(&[0x22; 16]),
        c = b64(&[0x33; 16]),
        wv = sealcast_drm::pssh::to_base64(&vendor),
    );
    let dir = std::env::temp_dir().join(format!("sealcast-cpix-doc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("demo.cpix.xml"), cpix).unwrap();
    let (st, dir2, _) = policy_state("cpix", &format!("[[asset]]\npath = \"demo\"\ndash = \"DynamicCommonEncryption\"\ncpix = \"{}\"\n", dir.join("demo.cpix.xml").display()));
    let (s, _, mpd) = get(&st, "/demo/manifest.mpd").await;
    let mpd = String::from_utf8(mpd).unwrap();
    assert_eq!(s, StatusCode::OK, "{mpd}");
    // 320x180 (57,600 px) takes k1, 640x360 (230,400 px) k2, audio ka: three adaptation sets.
    for (track, kid) in [("video_180p", k1), ("video_360p", k2), ("audio_en", ka)] {
        let rep = mpd.find(&format!("<Representation id=\"{track}\"")).unwrap();
        let set = mpd[..rep].rfind("<AdaptationSet").unwrap();
        assert!(mpd[set..rep].contains(&format!("cenc:default_KID=\"{kid}\"")), "{track} should use {kid}");
        let (_, _, init) = get(&st, &format!("/demo/{track}/cenc/init.mp4")).await;
        assert!(contains(&init, sealcast_drm::Kid::parse(kid).unwrap().as_bytes()), "{track} init lacks its KID");
    }
    // The vendor's Widevine pssh (provider, content ID) is the one signalled for k1.
    assert!(mpd.contains(&sealcast_drm::pssh::to_base64(&vendor)), "vendor pssh not used");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(dir2).unwrap();
}

/// Reads one HTTP/1.1 response (its head and a `Content-Length` body) from `s`, keeping what
/// follows it in `rest`. None when the peer closed first.
async fn read_response(s: &mut tokio::net::TcpStream, rest: &mut Vec<u8>) -> Option<(u16, Vec<(String, String)>, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(split) = rest.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) {
            let head = String::from_utf8(rest[..split].to_vec()).unwrap();
            let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
            let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
            let headers: Vec<(String, String)> = lines.map(|l| l.split_once(": ").unwrap()).map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
            let len: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
            while rest.len() < split + len {
                let mut b = vec![0u8; 65536];
                let n = s.read(&mut b).await.unwrap();
                assert!(n > 0, "closed mid-body");
                rest.extend_from_slice(&b[..n]);
            }
            let body = rest[split..split + len].to_vec();
            rest.drain(..split + len);
            return Some((status, headers, body));
        }
        let mut b = vec![0u8; 65536];
        let n = s.read(&mut b).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        rest.extend_from_slice(&b[..n]);
    }
}

/// The listener's own HTTP/1.1 loop (`h1`): pipelined requests come back in order; a request
/// with a body hands the connection to hyper, which answers it and what follows; keep-alive
/// follows the version and `Connection`; bad and oversized heads get 400 and 431 and a close.
#[tokio::test]
async fn http1_connections_pipeline_hand_over_bodies_and_refuse_bad_heads() {
    use tokio::io::AsyncWriteExt;
    let (st, _) = fixtures();
    let (addr, tx, srv) = listening(st.clone()).await;
    let header = |h: &[(String, String)], k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (_, _, mpd) = get(&st, "/demo/manifest.mpd").await;

    // Pipelined: three requests in one write, answered in order; then a body (hyper), then more.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /demo/manifest.mpd HTTP/1.1\r\nHost: x\r\n\r\nHEAD /demo/manifest.mpd HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (status, h, body) = read_response(&mut s, &mut rest).await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]));
    assert!(header(&h, "date").is_some_and(|d| d.ends_with(" GMT")), "{h:?}");
    let (status, _, body) = read_response(&mut s, &mut rest).await.unwrap();
    assert_eq!((status, body), (200, mpd.clone()));
    // HEAD: the length of the body it does not send (read as a head alone).
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    while !rest.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut b = [0u8; 4096];
        let n = tokio::io::AsyncReadExt::read(&mut s, &mut b).await.unwrap();
        rest.extend_from_slice(&b[..n]);
    }
    let split = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8(rest.drain(..split).collect()).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains(&format!("content-length: {}\r\n", mpd.len())), "{head}");
    let (status, _, body) = read_response(&mut s, &mut rest).await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]), "the request after a HEAD");
    let licence = Request::post("/clearkey").header("content-length", "2").body(Body::from("{}")).unwrap();
    let r = router(st.clone()).oneshot(licence).await.unwrap();
    let (ks, kb) = (r.status(), r.into_body().collect().await.unwrap().to_bytes().to_vec());
    s.write_all(b"POST /clearkey HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (status, _, body) = read_response(&mut s, &mut rest).await.unwrap();
    assert_eq!((status, body), (ks.as_u16(), kb), "a request with a body is answered as the router does");
    let (status, _, body) = read_response(&mut s, &mut rest).await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]), "hyper serves what follows");
    s.write_all(b"GET /demo/manifest.mpd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let (status, h, body) = read_response(&mut s, &mut rest).await.unwrap();
    assert_eq!((status, body), (200, mpd.clone()));
    assert_eq!(header(&h, "connection").as_deref(), Some("close"));
    assert!(read_response(&mut s, &mut rest).await.is_none(), "closed after Connection: close");

    // A head that trickles in a byte at a time.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" {
        s.write_all(&[*b]).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(read_response(&mut s, &mut Vec::new()).await.unwrap().0, 200);

    // HTTP/1.0: closed after the answer unless keep-alive is asked for.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    s.write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").await.unwrap();
    let (status, h, _) = read_response(&mut s, &mut rest).await.unwrap();
    assert_eq!((status, header(&h, "connection").as_deref()), (200, Some("keep-alive")));
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut s, &mut rest).await.unwrap().0, 200);
    assert!(read_response(&mut s, &mut rest).await.is_none(), "HTTP/1.0 without keep-alive closes");

    // Bad heads: an answer, then the end of the connection.
    for (raw, want) in [
        (b"GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(), 400),
        (b"GET /healthz HTTP/9.9\r\n\r\n".to_vec(), 400),
        ([&b"GET /healthz HTTP/1.1\r\nx: "[..], &vec![b'a'; 70 * 1024], b"\r\n\r\n"].concat(), 431),
        ([&b"GET /healthz HTTP/1.1\r\n"[..], &b"x: y\r\n".repeat(101), b"\r\n"].concat(), 431),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut rest = Vec::new();
        let _ = s.write_all(&raw).await;
        let (status, h, _) = read_response(&mut s, &mut rest).await.expect("an answer");
        assert_eq!(status, want);
        assert_eq!(header(&h, "connection").as_deref(), Some("close"));
        assert!(read_response(&mut s, &mut rest).await.is_none());
    }
    tx.send(()).unwrap();
    srv.await.unwrap().unwrap();
}

/// Clear fMP4 segments asked for whole over plain TCP are sent with their samples straight
/// from the source file (`sendfile`): on one keep-alive connection, every segment of every
/// demo track is byte for byte the router's answer (which reads the samples into memory),
/// with the same ETag and length; the store counts the bytes sent from files. A `Range`, an
/// encrypted segment and TS take the other paths: nothing more is sent from files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_segments_sent_from_their_files_are_the_ones_built() {
    use tokio::io::AsyncWriteExt;
    let (st, _) = fixtures();
    // The demo's segments are small (16-65 KB): every one is sent from its file here.
    let fx = sealcast_testkit::fixtures_dir();
    let cfg = Config { root: fx.clone(), send_files_min_bytes: 0, ..Config::default() };
    let served = AppState::with_store(&cfg, Store::local(&fx).unwrap());
    let store = served.assets.store().clone();
    let sent = || store.counters().bytes_sent_from_files.load(std::sync::atomic::Ordering::SeqCst);
    let (addr, tx, srv) = listening(served).await;
    let loaded = st.assets.get("demo").await.unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut rest = Vec::new();
    let mut body_bytes = 0;
    for t in &loaded.asset.tracks {
        for n in 1..=t.segments.len() {
            let uri = format!("/demo/{}/{n}.m4s", t.name);
            let (rs, rh, rb) = get(&st, &uri).await;
            assert_eq!(rs, StatusCode::OK, "{uri}");
            s.write_all(format!("GET {uri} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
            let (status, h, b) = read_response(&mut s, &mut rest).await.expect("an answer");
            assert_eq!(status, 200, "{uri}");
            assert!(b == rb, "{uri}: sent from the file differs from the segment built");
            let value = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert_eq!(value("etag").as_deref(), rh[header::ETAG].to_str().ok(), "{uri}");
            assert_eq!(value("content-length"), Some(rb.len().to_string()));
            body_bytes += rb.len() as u64;
        }
    }
    let from_files = sent();
    if sealcast_storage::files_offered() {
        // Everything but our boxes (styp, moof, mdat headers: a few hundred bytes a segment).
        assert!(from_files > body_bytes * 8 / 10 && from_files < body_bytes, "{from_files} of {body_bytes} bytes sent from files");
    } else {
        assert_eq!(from_files, 0, "this kernel cannot tell what is cached: nothing may be sent from files");
    }
    // The other paths: a range, an encrypted segment (refused here: no keys), TS.
    for (method, uri, extra) in [("GET", "/demo/video_360p/2.m4s", "Range: bytes=0-\r\n"), ("GET", "/demo/video_360p/cenc/2.m4s", ""), ("GET", "/demo/video_360p/2.ts", "")] {
        s.write_all(format!("{method} {uri} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes()).await.unwrap();
        let (status, _, b) = read_response(&mut s, &mut rest).await.expect("an answer");
        let (rs, _, rb) = call(&st, method.parse().unwrap(), uri, &[]).await;
        if extra.is_empty() {
            assert_eq!((status, &b), (rs.as_u16(), &rb), "{method} {uri}");
        } else {
            assert_eq!(status, 206);
        }
    }
    assert_eq!(sent(), from_files, "only whole clear fMP4 segments are sent from files");
    drop(s);
    tx.send(()).unwrap();
    srv.await.unwrap().unwrap();

    // `send_files = false`, and segments under `send_files_min_bytes` (the default 256 KiB is
    // more than any demo segment): the same answer, read and written.
    for cfg in [Config { root: fx.clone(), send_files: false, send_files_min_bytes: 0, ..Config::default() }, Config { root: fx.clone(), ..Config::default() }] {
        let off = AppState::with_store(&cfg, Store::local(&fx).unwrap());
        let store = off.assets.store().clone();
        let (addr, tx, srv) = listening(off).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let uri = "/demo/video_360p/2.m4s";
        s.write_all(format!("GET {uri} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let (status, _, b) = read_response(&mut s, &mut Vec::new()).await.expect("an answer");
        assert_eq!((status, &b), (200, &get(&st, uri).await.2));
        assert_eq!(store.counters().bytes_sent_from_files.load(std::sync::atomic::Ordering::SeqCst), 0, "sent from a file: send_files {}, min {}", cfg.send_files, cfg.send_files_min_bytes);
        drop(s);
        tx.send(()).unwrap();
        srv.await.unwrap().unwrap();
    }
}
