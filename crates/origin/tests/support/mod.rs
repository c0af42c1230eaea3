//! Helpers shared by the remote-storage tests: storage emulators started per test (and
//! skipped, saying so, when absent), requests through the router, the demo fixture.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::server::{router, AppState};
use tower::ServiceExt;

/// A child process killed when dropped.
pub struct Server(pub Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    // Binding port 0 cannot fail on loopback short of resource exhaustion.
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (up to 30 s) until something accepts connections on `port`.
pub fn wait_for(port: u16) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Starts `moto_server` with a bucket `media`; `None` (after saying why) when not installed.
pub fn start_moto() -> Option<(Server, String)> {
    if Command::new("moto_server").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        eprintln!("SKIPPED: moto_server not installed (pip install 'moto[server]', or run scripts/setup.sh)");
        return None;
    }
    let port = free_port();
    let srv = Server(Command::new("moto_server").args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    assert!(wait_for(port), "moto_server did not start");
    let endpoint = format!("http://127.0.0.1:{port}");
    // object_store cannot create buckets; one plain S3 call does.
    let mk = Command::new("python3")
        .args(["-c", &format!("import boto3; boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='media')")])
        .status()
        .unwrap();
    assert!(mk.success(), "creating the bucket failed");
    Some((srv, endpoint))
}

/// Azurite's blob server from `tests/storage` (npm) or the PATH.
fn azurite_bin() -> Option<PathBuf> {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/storage/node_modules/.bin/azurite-blob");
    if local.is_file() {
        return Some(local);
    }
    Command::new("azurite-blob").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().ok().map(|_| PathBuf::from("azurite-blob"))
}

/// Azurite's well-known development account key.
pub const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Starts Azurite (blob only) with a container `media`; returns the account endpoint
/// (`http://127.0.0.1:PORT/devstoreaccount1`). `None` (after saying why) when not installed.
pub fn start_azurite(dir: &std::path::Path) -> Option<(Server, String)> {
    let Some(bin) = azurite_bin() else {
        eprintln!("SKIPPED: azurite not installed (cd tests/storage && npm install, or run scripts/setup.sh)");
        return None;
    };
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let srv = Server(
        Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"])
            .arg(dir)
            .args(["--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(port), "azurite did not start");
    // object_store cannot create containers: one Shared Key signed `PUT ?restype=container`
    // (string to sign per the Blob service's Shared Key rules, path-style emulator URL).
    let py = r#"
import base64, email.utils, hashlib, hmac, sys, urllib.request
port, key = sys.argv[1], base64.b64decode(sys.argv[2])
acct, ver, date = 'devstoreaccount1', '2021-08-06', email.utils.formatdate(usegmt=True)
sts = 'PUT\n' + '\n' * 4 + 'application/octet-stream\n' + '\n' * 6 + f'x-ms-date:{date}\nx-ms-version:{ver}\n' + f'/{acct}/{acct}/media\nrestype:container'
sig = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f'http://127.0.0.1:{port}/{acct}/media?restype=container', data=b'', method='PUT',
    headers={'Content-Type': 'application/octet-stream', 'x-ms-date': date, 'x-ms-version': ver, 'Authorization': f'SharedKey {acct}:{sig}'})
print(urllib.request.urlopen(req).status)
"#;
    let mk = Command::new("python3").args(["-c", py, &port.to_string(), AZURITE_KEY]).status().unwrap();
    assert!(mk.success(), "creating the container failed");
    Some((srv, format!("http://127.0.0.1:{port}/devstoreaccount1")))
}

/// GET through the router: status, headers, body.
pub async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

/// The demo fixture's files, sorted.
pub fn demo_files() -> Vec<PathBuf> {
    let fx = sealcast_testkit::fixtures_dir();
    let mut files: Vec<_> = std::fs::read_dir(fx.join("demo")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// A fresh temp folder for one test.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sealcast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every URL of the demo asset worth comparing: manifests, playlists, inits, all segments.
pub async fn demo_urls(clear: &Arc<AppState>) -> Vec<String> {
    let loaded = clear.assets.get("demo").await.unwrap();
    let mut v = vec!["manifest.mpd".to_string(), "master.m3u8".into(), "master-ts.m3u8".into(), "Manifest".into()];
    for t in &loaded.asset.tracks {
        v.push(format!("{}/init.mp4", t.name));
        v.push(format!("{}/index.m3u8", t.name));
        for n in 1..=t.segments.len() {
            v.push(format!("{}/{n}.m4s", t.name));
            v.push(format!("{}/{n}.ts", t.name));
        }
    }
    v
}
