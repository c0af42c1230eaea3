//! Helpers shared by the remote-storage tests: storage emulators started per test on ports
//! they pick themselves (skipped and recorded when absent, a failure under `CI=true`),
//! requests through the router, the demo fixture.

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

/// The port in the first `http://127.0.0.1:PORT` after `marker` in `line`.
fn announced_port(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = &rest[rest.find("http://127.0.0.1:")? + "http://127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&p| p != 0)
}

/// Spawns an emulator told to listen on port 0, so the kernel picks a free port and no other
/// process can take it between choosing and binding (picking a free port first, closing it
/// and passing it on was a race). Returns it with the port it announces after `marker` on
/// stdout or stderr (waiting up to 60 s); both pipes are drained for the child's lifetime.
fn spawn_on_port_zero(mut cmd: Command, what: &str, marker: &str) -> (Server, u16) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [child.stdout.take().map(|p| Box::new(p) as _), child.stderr.take().map(|p| Box::new(p) as _)];
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for pipe in pipes.into_iter().flatten() {
        let (tx, marker, seen) = (tx.clone(), marker.to_string(), seen.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = announced_port(&line, &marker) {
                    let _ = tx.send(port);
                }
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                if seen.len() < 40 {
                    seen.push(line);
                }
            }
        });
    }
    let mut srv = Server(child);
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(port) => (srv, port),
        Err(_) => {
            let status = srv.0.try_wait().ok().flatten();
            let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            panic!("{what} did not say which port it listens on ('{marker}http://127.0.0.1:PORT'); exit status {status:?}; output:\n{seen}")
        }
    }
}

/// The calling test, for the oracle log: libtest names each test's thread after the test, and
/// the tests call the emulator starters from that thread (inside `block_on`).
fn this_test() -> String {
    format!("origin::{}", std::thread::current().name().unwrap_or("unnamed-test"))
}

/// Starts `moto_server` with a bucket `media`. `None` when it is not installed: recorded as a
/// skip, or a failure under `CI=true` (`sealcast_testkit::oracle`).
pub fn start_moto() -> Option<(Server, String)> {
    let installed = Command::new("moto_server").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    sealcast_testkit::oracle(&this_test(), installed.then_some(()), "moto_server not installed (pip install 'moto[server]', or run scripts/setup.sh)")?;
    let mut cmd = Command::new("moto_server");
    cmd.args(["-H", "127.0.0.1", "-p", "0"]);
    // Werkzeug's banner: " * Running on http://127.0.0.1:PORT".
    let (srv, port) = spawn_on_port_zero(cmd, "moto_server", "Running on ");
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
/// (`http://127.0.0.1:PORT/devstoreaccount1`). `None` when it is not installed: recorded as a
/// skip, or a failure under `CI=true` (`sealcast_testkit::oracle`).
pub fn start_azurite(dir: &std::path::Path) -> Option<(Server, String)> {
    let bin = sealcast_testkit::oracle(&this_test(), azurite_bin(), "azurite not installed (cd tests/storage && npm install, or run scripts/setup.sh)")?;
    std::fs::create_dir_all(dir).unwrap();
    let mut cmd = Command::new(bin);
    // Not --silent: the line "Azurite Blob service successfully listens on http://127.0.0.1:PORT"
    // is how we learn the port it bound.
    cmd.args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--location"]).arg(dir).args(["--skipApiVersionCheck", "--loose", "--disableTelemetry"]);
    let (srv, port) = spawn_on_port_zero(cmd, "azurite", "listens on ");
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

/// The S3 bucket `media` of a moto server (or of a proxy in front of one) at `endpoint`.
pub fn moto_spec(endpoint: String) -> sealcast_storage::remote::RemoteSpec {
    sealcast_storage::remote::RemoteSpec::S3 {
        bucket: "media".into(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint),
        allow_http: true,
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        session_token: None,
    }
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
