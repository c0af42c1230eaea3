//! What operators see (issue 16), through the router in-process: request metrics labelled by
//! route kind, protocol, protection and status class; cache hits and misses; the access log
//! (fields, cache hit/miss, client address only from trusted proxies, no query strings or
//! tokens); readiness while draining; metrics never on the public router.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::access_log::AccessLogConfig;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{metrics_router, metrics_text, router, AppState};
use sealcast_storage::Store;
use support::*;
use tower::ServiceExt;

const CATALOG: &str = r#"
[authorization.open]
type = "Open"

[[asset]]
path = "enc"
dash = "DynamicCommonEncryption"
hls = "DynamicEnvelopeEncryption"
authorization = "open"
keys = [
  { kid = "00000000-0000-4000-8000-000000000001", key = "00112233445566778899aabbccddeeff" },
  { kid = "00000000-0000-4000-8000-000000000003", key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", kind = "EnvelopeEncryption" },
]
"#;

/// GET with extra headers and, optionally, the connection's peer address.
async fn call(st: &Arc<AppState>, uri: &str, headers: &[(&str, &str)], peer: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut req = b.body(Body::empty()).unwrap();
    if let Some(p) = peer {
        req.extensions_mut().insert(sealcast_origin::access::PeerAddr(p.parse().unwrap()));
    }
    let r = router(st.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    (status, r.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn count(metrics: &str, series: &str) -> f64 {
    metrics.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' ')).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_caches_access_log_and_readiness() {
    let dir = temp("operations");
    let root = dir.join("root");
    for asset in ["clear", "enc"] {
        std::fs::create_dir_all(root.join(asset)).unwrap();
        for f in demo_files() {
            std::fs::copy(&f, root.join(asset).join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(dir.join("catalog.toml"), CATALOG).unwrap();
    let log = dir.join("access.jsonl");
    let cfg = Config {
        root: root.clone(),
        access_log: Some(AccessLogConfig { path: log.display().to_string(), trusted_proxies: vec!["10.0.0.0/8".into()], ..AccessLogConfig::default() }),
        // Not bound here (the test reads `metrics_router` in-process); it turns request histograms on.
        metrics: Some(sealcast_origin::config::MetricsConfig { listen: "127.0.0.1:0".parse().unwrap() }),
        ..Config::default()
    };
    cfg.validate().unwrap();
    let cat = Arc::new(TomlCatalog::load(&dir.join("catalog.toml")).unwrap());
    let st = AppState::with_parts(&cfg, Store::local(&root).unwrap(), cat.clone(), Some(cat));
    let video = st.assets.get("clear").await.unwrap().asset.tracks.iter().find(|t| t.name.starts_with("video")).unwrap().name.clone();

    // The requests, in order; each makes one access-log line.
    let seg = format!("/clear/{video}/1.m4s");
    let reqs: Vec<(String, Vec<(&str, &str)>, Option<&str>, StatusCode)> = vec![
        ("/clear/manifest.mpd".into(), vec![], None, StatusCode::OK),
        ("/clear/manifest.mpd".into(), vec![], None, StatusCode::OK),
        (format!("{seg}?Signature=SECRET-SIGNATURE&Key-Pair-Id=K1"), vec![("x-request-id", "req-0001")], Some("10.1.1.1:4000"), StatusCode::OK),
        (seg.clone(), vec![("x-forwarded-for", "6.6.6.6, 203.0.113.7")], Some("10.1.1.1:4000"), StatusCode::OK),
        (seg.clone(), vec![("x-forwarded-for", "203.0.113.7")], Some("198.51.100.2:4000"), StatusCode::OK),
        (format!("/enc/{video}/cenc/2.m4s"), vec![], None, StatusCode::OK),
        (format!("/enc/{video}/aes/2.ts"), vec![], None, StatusCode::OK),
        ("/enc/Manifest".into(), vec![], None, StatusCode::FORBIDDEN),
        ("/key/00000000-0000-4000-8000-000000000003?token=SECRET-TOKEN".into(), vec![("authorization", "Bearer SECRET-BEARER")], None, StatusCode::OK),
        ("/nothing/here/manifest.mpd".into(), vec![], None, StatusCode::NOT_FOUND),
        ("/healthz".into(), vec![], None, StatusCode::OK),
    ];
    for (uri, h, peer, want) in &reqs {
        assert_eq!(call(&st, uri, h, *peer).await.0, *want, "{uri}");
    }

    // Metrics: not on the public router; labelled series on the metrics router.
    assert_eq!(call(&st, "/metrics", &[], None).await.0, StatusCode::NOT_FOUND);
    let r = metrics_router(st.clone()).oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[http::header::CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
    let m = String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let h = |route: &str, proto: &str, prot: &str, class: &str| {
        format!("http_server_request_duration_seconds_count{{http_request_method=\"GET\",http_route=\"{route}\",protocol=\"{proto}\",protection=\"{prot}\",status_class=\"{class}\"}}")
    };
    for (series, want) in [
        (h("manifest", "dash", "clear", "2xx"), 2.0),
        (h("segment", "cmaf", "clear", "2xx"), 3.0),
        (h("segment", "cmaf", "cenc", "2xx"), 1.0),
        (h("segment", "hls_ts", "aes128", "2xx"), 1.0),
        (h("manifest", "smooth", "none", "4xx"), 1.0),
        (h("key", "none", "none", "2xx"), 1.0),
        (h("manifest", "dash", "clear", "4xx"), 1.0),
        (h("probe", "none", "none", "2xx"), 1.0),
        (h("probe", "none", "none", "4xx"), 1.0),
        ("http_server_active_requests".to_string(), 0.0),
        ("sealcast_keys_delivered_total{service=\"key\"}".to_string(), 1.0),
    ] {
        assert_eq!(count(&m, &series), want, "{series} in\n{m}");
    }
    assert!(count(&m, "sealcast_cache_hits_total{cache=\"asset\"}") >= 5.0, "{m}");
    // The clear segment read once, then twice from memory (the access log below says which).
    assert!(count(&m, "sealcast_cache_hits_total{cache=\"fragment\"}") >= 2.0, "{m}");
    assert!(count(&m, "sealcast_cache_misses_total{cache=\"fragment\"}") >= 2.0, "{m}");
    // Every asset-cache miss looks in the negative cache; the unknown asset is asked for once.
    assert_eq!(count(&m, "sealcast_cache_misses_total{cache=\"negative\"}"), count(&m, "sealcast_cache_misses_total{cache=\"asset\"}"), "{m}");
    assert_eq!(count(&m, "sealcast_cache_entries{cache=\"negative\"}"), 1.0, "{m}");
    assert!(count(&m, "sealcast_cache_entries{cache=\"index\"}") >= 5.0, "{m}");
    assert!(count(&m, "sealcast_cache_bytes{cache=\"fragment\"}") > 0.0, "{m}");
    assert_eq!(count(&m, "sealcast_cache_budget_bytes{cache=\"fragment\"}"), cfg.cache.fragment_bytes as f64);
    assert!(count(&m, "sealcast_storage_operation_duration_seconds_count{store=\"local\",operation=\"read\",outcome=\"ok\"}") >= 3.0, "{m}");
    assert!(count(&m, "sealcast_storage_operation_duration_seconds_count{store=\"local\",operation=\"list\",outcome=\"ok\"}") >= 2.0, "{m}");
    assert!(count(&m, "process_resident_memory_bytes") > 1e6, "{m}");
    assert!(count(&m, "process_open_fds") > 0.0, "{m}");
    assert!(!m.contains("SECRET") && !m.contains("nothing/here") && !m.contains(&video), "metrics carry request input");

    // The access log: one line per request (the refused public /metrics too), written in the
    // background.
    let t = Instant::now();
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() > reqs.len() || t.elapsed() > Duration::from_secs(10) {
            assert!(!text.contains("SECRET"), "a credential reached the access log:\n{text}");
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines.len(), reqs.len() + 1, "{lines:#?}");
    for (l, (uri, _, _, want)) in lines.iter().zip(&reqs) {
        for field in ["time", "request_id", "method", "path", "route", "protocol", "protection", "status", "bytes", "duration_ms", "storage_reads"] {
            assert!(!l[field].is_null(), "{field} missing in {l}");
        }
        assert_eq!(l["path"], uri.split('?').next().unwrap(), "{l}");
        assert_eq!(l["status"], want.as_u16(), "{l}");
        assert_eq!(l["method"], "GET");
    }
    let seg_lines = &lines[2..5];
    assert_eq!((seg_lines[0]["cache"].as_str(), seg_lines[0]["request_id"].as_str()), (Some("miss"), Some("req-0001")));
    assert!(seg_lines[0]["storage_reads"].as_u64().unwrap() >= 1);
    assert_eq!((seg_lines[1]["cache"].as_str(), seg_lines[1]["storage_reads"].as_u64()), (Some("hit"), Some(0)));
    assert_eq!(seg_lines[0]["asset"], "clear");
    assert_eq!(seg_lines[0]["bytes"].as_u64(), Some(call(&st, &seg, &[], None).await.1.len() as u64));
    // Client: from X-Forwarded-For only through a trusted proxy, and never the forged leftmost hop.
    assert_eq!(seg_lines[0]["client"], "10.1.1.1");
    assert_eq!(seg_lines[1]["client"], "203.0.113.7");
    assert_eq!(seg_lines[2]["client"], "198.51.100.2");
    assert_eq!((lines[5]["protection"].as_str(), lines[6]["protection"].as_str()), (Some("cenc"), Some("aes128")));
    assert_eq!((lines[8]["route"].as_str(), lines[8]["cache"].as_str()), (Some("key"), None));

    // Draining: readiness 503 at once, everything else served as before.
    assert_eq!(call(&st, "/readyz", &[], None).await.0, StatusCode::OK);
    st.draining.store(true, Ordering::Relaxed);
    let (s, body) = call(&st, "/readyz", &[], None).await;
    assert_eq!((s, String::from_utf8_lossy(&body).trim()), (StatusCode::SERVICE_UNAVAILABLE, "draining"));
    assert_eq!(call(&st, "/healthz", &[], None).await.0, StatusCode::OK);
    assert_eq!(call(&st, &seg, &[], None).await.0, StatusCode::OK);
    assert_eq!(count(&metrics_text(&st).await, "sealcast_draining"), 1.0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_operations_config_is_refused() {
    let root = std::env::temp_dir();
    let bad = |cfg: Config| cfg.validate().unwrap_err().to_string();
    let e = bad(Config { root: root.clone(), access_log: Some(AccessLogConfig { sample: 1.5, ..AccessLogConfig::default() }), ..Config::default() });
    assert!(e.contains("access_log.sample"), "{e}");
    let e = bad(Config { root: root.clone(), access_log: Some(AccessLogConfig { trusted_proxies: vec!["10.0.0.0/33".into()], ..AccessLogConfig::default() }), ..Config::default() });
    assert!(e.contains("trusted_proxies"), "{e}");
    let cfg = Config { root: root.clone(), ..Config::default() };
    let e = bad(Config { metrics: Some(sealcast_origin::config::MetricsConfig { listen: cfg.listen }), ..cfg });
    assert!(e.contains("never served on the public port"), "{e}");
}
