//! Storage faults through a fault-injecting TCP proxy between the origin and moto_server
//! (delays, connection resets, 500 answers, a hold): each fault answers its status within the
//! configured timeouts (502 upstream error, 503 + Retry-After outage, 504 timeout), a failing
//! store trips the circuit breaker (503 at once, no request sent), nothing failed is cached,
//! and the service recovers by itself with byte-identical answers. Also single flight: 100
//! concurrent requests for one cold segment make one storage GET.
//! Skips, saying so, when moto_server is not installed.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{header, StatusCode};
use sealcast_origin::catalog::{apply_storage_encryption, TomlCatalog};
use sealcast_origin::config::Config;
use sealcast_origin::ingest::{self, IngestArgs, Publish};
use sealcast_origin::server::AppState;
use sealcast_storage::remote::{open, RemoteTiming};
use sealcast_storage::Store;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with each request (each chunk the client sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forward.
    Pass,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Reset the connection (RST).
    Reset,
    /// Answer 500 without forwarding.
    Http500,
    /// Hold the request until the mode changes, then act on the new mode.
    Hold,
}

/// A TCP proxy to `upstream` whose behaviour the test switches at will.
struct Proxy {
    addr: String,
    mode: watch::Sender<Fault>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = watch::channel(Fault::Pass);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream.clone(), rx.clone()));
            }
        });
        Proxy { addr, mode: tx }
    }

    fn set(&self, f: Fault) {
        self.mode.send_replace(f);
    }
}

async fn serve(client: TcpStream, upstream: String, mut mode: watch::Receiver<Fault>) {
    let Ok(up) = TcpStream::connect(upstream.trim_start_matches("http://")).await else {
        return;
    };
    if client.set_zero_linger().is_err() {
        return;
    }
    let (mut cr, cw) = client.into_split();
    let (mut ur, mut uw) = up.into_split();
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let back = cw.clone();
    let pump = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if back.lock().await.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut f = *mode.borrow_and_update();
        while f == Fault::Hold {
            if mode.changed().await.is_err() {
                return;
            }
            f = *mode.borrow_and_update();
        }
        match f {
            Fault::Pass | Fault::Hold => {}
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Reset => {
                // The client socket lingers 0 s, so dropping it sends RST instead of FIN.
                pump.abort();
                return;
            }
            Fault::Http500 => {
                let body = "<Error><Code>InternalError</Code><Message>injected</Message></Error>";
                let r = format!("HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}", body.len());
                if cw.lock().await.write_all(r.as_bytes()).await.is_err() {
                    break;
                }
                continue;
            }
        }
        if uw.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    pump.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_map_to_statuses_nothing_failed_is_cached_and_service_recovers() {
    let Some((_srv, endpoint)) = start_moto() else {
        return;
    };
    let proxy = Proxy::start(endpoint).await;
    let spec = moto_spec(proxy.addr.clone());
    let dir = temp("faults");
    std::fs::create_dir_all(dir.join("local")).unwrap();
    // Patient timing for the upload and the single-flight part.
    let patient = RemoteTiming::default();
    let store = Store::local(&dir.join("local")).unwrap().with_guarded_route("vod", open(&spec, patient).unwrap(), patient).unwrap();
    let catalog = dir.join("catalog.toml");
    ingest::run(
        &store,
        &IngestArgs { files: demo_files(), asset: "vod/demo".into(), encrypt: true, catalog: Some(sealcast_origin::ingest::RecordIn::Toml(catalog.clone())), publish: Publish::clear() },
    )
    .await
    .unwrap();
    let cat = Arc::new(TomlCatalog::load(&catalog).unwrap());
    apply_storage_encryption(&cat, &store).unwrap();
    // Listings trusted for an hour: the asset stays loaded, so each fault below hits a segment read.
    let cfg = Config {
        root: dir.join("local"),
        cache: sealcast_origin::config::CacheConfig { asset_ttl_secs: 3600, ..Default::default() },
        // Request histograms on (the listener itself is not started in-process).
        metrics: Some(sealcast_origin::config::MetricsConfig { listen: "127.0.0.1:0".parse().unwrap() }),
        ..Config::default()
    };
    let fx = sealcast_testkit::fixtures_dir();
    let clear = AppState::with_store(&Config { root: fx.clone(), ..Config::default() }, Store::local(&fx).unwrap());
    let loaded = clear.assets.get("demo").await.unwrap();
    let track = loaded.asset.tracks[0].name.clone();
    let seg = |n: usize| format!("{track}/{n}.m4s");

    // --- Single flight: 100 concurrent requests for one cold segment, one GET.
    let st = AppState::with_parts(&cfg, store.clone(), cat.clone(), Some(cat.clone()));
    assert_eq!(get(&st, "/vod/demo/manifest.mpd").await.0, StatusCode::OK);
    let (reads, joined) = (store.counters().range_reads.load(Ordering::SeqCst), store.counters().coalesced_reads.load(Ordering::SeqCst));
    proxy.set(Fault::Hold);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let st = st.clone();
            let u = format!("/vod/demo/{}", seg(1));
            tokio::spawn(async move { get(&st, &u).await })
        })
        .collect();
    // Release the held GET only once all 100 requests wait for it.
    let t = Instant::now();
    while store.counters().coalesced_reads.load(Ordering::SeqCst) - joined < 99 {
        assert!(t.elapsed() < Duration::from_secs(60), "requests did not all join the read in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.set(Fault::Pass);
    let want = get(&clear, &format!("/demo/{}", seg(1))).await.2;
    for t in tasks {
        let (s, _, b) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK);
        assert!(b == want, "a coalesced answer differs");
    }
    assert_eq!(store.counters().range_reads.load(Ordering::SeqCst) - reads, 1, "100 concurrent requests made more than one GET");

    // --- Faults, on a store with short timeouts, few retries and a small breaker.
    let quick = RemoteTiming {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(400),
        max_retries: 1,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        breaker_failures: 3,
        breaker_cooldown: Duration::from_millis(500),
        ..RemoteTiming::default()
    };
    let (fbackend, attempts) = sealcast_storage::remote::open_counted(&spec, quick).unwrap();
    let fstore = Store::local(&dir.join("local")).unwrap().with_counted_route("vod", fbackend, quick, attempts).unwrap();
    apply_storage_encryption(&cat, &fstore).unwrap();
    let fs = AppState::with_parts(&cfg, fstore.clone(), cat.clone(), Some(cat.clone()));
    // Generous upper bound for any failure answer: the whole guarded deadline, twice.
    let bound = quick.deadline() * 2 + Duration::from_secs(2);
    let timed = |fs: Arc<AppState>, u: String| async move {
        let t = Instant::now();
        let r = get(&fs, &u).await;
        assert!(t.elapsed() < bound, "{u} took {:?}", t.elapsed());
        r
    };

    // Storage answers 500 before the asset was ever loaded: 502, and nothing is cached.
    proxy.set(Fault::Http500);
    let (s, _, _) = timed(fs.clone(), "/vod/demo/manifest.mpd".into()).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    proxy.set(Fault::Pass);
    let (s, _, b) = timed(fs.clone(), "/vod/demo/manifest.mpd".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b == get(&clear, "/demo/manifest.mpd").await.2, "manifest after a failed load differs");

    // Three different faults in a row, on segments.
    proxy.set(Fault::Delay(Duration::from_secs(3)));
    assert_eq!(timed(fs.clone(), format!("/vod/demo/{}", seg(2))).await.0, StatusCode::GATEWAY_TIMEOUT);
    proxy.set(Fault::Http500);
    assert_eq!(timed(fs.clone(), format!("/vod/demo/{}", seg(3))).await.0, StatusCode::BAD_GATEWAY);
    proxy.set(Fault::Reset);
    let (s, h, _) = timed(fs.clone(), format!("/vod/demo/{}", seg(4))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(h.contains_key(header::RETRY_AFTER));
    assert_eq!(h.get(header::CACHE_CONTROL).map(|v| v.to_str().unwrap()), Some("no-store"));

    // Three consecutive failures opened the circuit: 503 with Retry-After, and no request sent.
    let before = fstore.counters().range_reads.load(Ordering::SeqCst);
    let (s, h, body) = timed(fs.clone(), format!("/vod/demo/{}", seg(2))).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8_lossy(&body).contains("storage_busy"), "{}", String::from_utf8_lossy(&body));
    assert!(h.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    let after = fstore.counters().range_reads.load(Ordering::SeqCst);
    assert_eq!(after - before, 1, "the read was attempted once and refused by the breaker");
    // (read_range counts the attempt; the breaker refused it before any network request.)
    // Readiness and metrics say so (issue 16).
    let (s, _, body) = get(&fs, "/readyz").await;
    assert_eq!((s, String::from_utf8_lossy(&body).trim()), (StatusCode::SERVICE_UNAVAILABLE, "degraded: storage circuit open: vod"));
    let m = sealcast_origin::server::metrics_text(&fs).await;
    for want in [
        "sealcast_storage_breaker_open{store=\"vod\"} 1",
        "sealcast_storage_breaker_state{store=\"vod\",state=\"open\"} 1",
        "sealcast_storage_breaker_trips_total{store=\"vod\"} 1",
        "sealcast_storage_operation_duration_seconds_count{store=\"vod\",operation=\"read\",outcome=\"timeout\"}",
        "sealcast_storage_operation_duration_seconds_count{store=\"vod\",operation=\"read\",outcome=\"upstream\"}",
        "sealcast_storage_operation_duration_seconds_count{store=\"vod\",operation=\"read\",outcome=\"overloaded\"}",
        "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"segment\",protocol=\"cmaf\",protection=\"clear\",status_class=\"5xx\"}",
    ] {
        assert!(m.contains(want), "metrics lack {want}:\n{m}");
    }
    // Retries: object_store repeats a failed GET inside one operation (max_retries = 1), so
    // more HTTP requests went out than operations that reached the network.
    let sum = |prefix: &str, skip: &str| -> f64 {
        m.lines().filter(|l| l.starts_with(prefix) && !l.contains(skip)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    let sent = sum("sealcast_storage_operation_duration_seconds_count{store=\"vod\"", "outcome=\"overloaded\"");
    let http = sum("sealcast_storage_http_attempts_total{store=\"vod\"}", "\u{0}");
    assert!(http > sent && sent > 0.0, "{http} HTTP requests for {sent} operations: no retry seen\n{m}");

    // Storage comes back: the service recovers by itself, answers byte-identical.
    proxy.set(Fault::Pass);
    let t = Instant::now();
    loop {
        let (s, _, b) = get(&fs, &format!("/vod/demo/{}", seg(2))).await;
        if s == StatusCode::OK {
            assert!(b == get(&clear, &format!("/demo/{}", seg(2))).await.2, "segment after recovery differs");
            break;
        }
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "while the circuit is open");
        assert!(t.elapsed() < Duration::from_secs(30), "did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&fs, "/readyz").await.0, StatusCode::OK, "ready again once the probe closed the circuit");
    assert!(sealcast_origin::server::metrics_text(&fs).await.contains("sealcast_storage_breaker_state{store=\"vod\",state=\"closed\"} 1"));
    for t in &loaded.asset.tracks {
        for n in 1..=t.segments.len() {
            let u = format!("{}/{n}.m4s", t.name);
            let (s, _, b) = get(&fs, &format!("/vod/demo/{u}")).await;
            assert_eq!(s, StatusCode::OK, "{u}");
            assert!(b == get(&clear, &format!("/demo/{u}")).await.2, "{u} differs after the faults");
        }
    }

    // A missing asset is a 404 (remembered briefly), never a fault, and does not trip the breaker.
    for _ in 0..5 {
        assert_eq!(get(&fs, "/vod/nothing/manifest.mpd").await.0, StatusCode::NOT_FOUND);
    }
    assert_eq!(get(&fs, &format!("/vod/demo/{}", seg(1))).await.0, StatusCode::OK);
    std::fs::remove_dir_all(dir).unwrap();
}
