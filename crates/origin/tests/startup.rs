//! Start-up: the server answers as soon as it says it listens, while storage discovery (the
//! banner's list of assets, which can take long on a large or remote store) runs in the
//! background. Discovery is held at a gate in a test store, so no timing is involved.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::ObjectStoreExt;
use sealcast_origin::config::Config;
use sealcast_origin::server::{serve_announced, AppState};
use sealcast_storage::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod gate;

/// `GET path` over a plain TCP connection; the whole response as text.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_discovery_is_still_running() {
    let dir = std::env::temp_dir().join(format!("sealcast-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gated = Arc::new(gate::Gated::on_listings());
    gated.put(&Path::from("movie/video.cmfv"), vec![0u8; 8].into()).await.unwrap();
    gated.set_open(false);
    let store = Store::local(&dir).unwrap().with_route("remote", gated.clone()).unwrap();
    let st = AppState::with_store(&Config::default(), store);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_announced(listener, st, None, Default::default(), async move { let _ = stopped.await; }, Arc::new(move |l| {
        let _ = lines_tx.send(l);
    })));

    // Guards, not measurements: a broken start-up fails here instead of hanging.
    let guard = Duration::from_secs(20);
    let first = tokio::time::timeout(guard, lines.recv()).await.expect("a first line").unwrap();
    assert_eq!(first, format!("sealcast listening on http://{addr}"));
    // Discovery has reached the remote store and waits there.
    tokio::time::timeout(guard, async {
        while gated.held.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("discovery lists the remote store");
    let health = tokio::time::timeout(guard, get(addr, "/healthz")).await.expect("/healthz answered while discovery runs");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(lines.try_recv().is_err(), "no asset line before discovery is let through");

    gated.set_open(true);
    let asset = tokio::time::timeout(guard, lines.recv()).await.expect("the asset line after discovery").unwrap();
    assert!(asset.contains("remote/movie") && asset.contains(&format!("http://{addr}/remote/movie/manifest.mpd")), "{asset}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
