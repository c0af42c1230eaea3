//! Cold index read counts per layout of a fragmented file (issue 15), counted by the store
//! (ranged GETs), locally and on moto S3: `sidx` 1, `mfra` at most 3 (head, tail, last
//! `moof`), sidecar 1, a stale sidecar ignored (with a log line) and the walk, whose reads
//! grow instead of one per fragment. Every layout serves the same bytes as the `sidx` one,
//! compared over HTTP; the sidecar is not an asset file. `fixtures/coldindex/` holds the
//! same content in the three layouts (see fixtures/README.md).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_origin::sidecar::{write_for, Outcome};
use sealcast_package::index::IndexLimits;
use sealcast_storage::Store;
use tower::ServiceExt;

mod support;

/// The read-ahead of these tests: the fixtures (~87 KB) are larger than it, so the head read
/// does not hold the tail.
const READ_AHEAD: u64 = 4096;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, body.collect().await.unwrap().to_bytes().to_vec())
}

/// A fresh server (cold caches) over `store`.
fn state(root: &Path, store: &Store) -> Arc<AppState> {
    let mut cfg = Config { root: root.to_path_buf(), allow_clear_without_policy: true, index_read_ahead: READ_AHEAD, ..Config::default() };
    cfg.cache.fragment_bytes = 0;
    AppState::with_store(&cfg, store.clone())
}

fn fixture(layout: &str) -> PathBuf {
    sealcast_testkit::fixtures_dir().join("coldindex").join(layout).join("video.cmfv")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sealcast-coldindex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The bare file with one payload byte changed (another version of the source).
fn changed_bare() -> Vec<u8> {
    let mut b = std::fs::read(fixture("bare")).unwrap();
    let n = b.len();
    b[n - 10] ^= 0xff;
    b
}

/// Every URL a player may ask of the one-track asset at `asset`, from its manifests.
async fn urls(st: &Arc<AppState>, asset: &str) -> Vec<String> {
    let loaded = st.assets.get(asset).await.unwrap();
    let mut u: Vec<String> = ["manifest.mpd", "master.m3u8", "master-ts.m3u8", "Manifest"].iter().map(|m| format!("/{asset}/{m}")).collect();
    for t in &loaded.asset.tracks {
        for p in ["index.m3u8", "ts.m3u8", "iframes.m3u8", "init.mp4"] {
            u.push(format!("/{asset}/{}/{p}", t.name));
        }
        for n in 1..=t.segments.len() {
            u.push(format!("/{asset}/{}/{n}.m4s", t.name));
            u.push(format!("/{asset}/{}/{n}.ts", t.name));
            u.push(format!("/{asset}/{}/i{n}.m4s", t.name));
        }
    }
    u
}

/// Asserts `asset` (in `st`) answers every URL with the bytes the `sidx` layout gives.
async fn assert_same_bytes_as_sidx(st: &Arc<AppState>, asset: &str, sidx: &Arc<AppState>, sidx_asset: &str) {
    let theirs = urls(sidx, sidx_asset).await;
    assert!(theirs.len() > 20, "{} URLs", theirs.len());
    for u in theirs {
        let mine = u.replacen(sidx_asset, asset, 1);
        let (a, b) = (get(sidx, &u).await, get(st, &mine).await);
        assert_eq!(a.0, StatusCode::OK, "{u}");
        assert_eq!(b.0, StatusCode::OK, "{mine}");
        assert!(a.1 == b.1, "{mine} differs from {u} ({} vs {} bytes)", b.1.len(), a.1.len());
    }
}

/// Log lines written while `f` runs on this thread.
struct Logs(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let sub = tracing_subscriber::fmt().with_ansi(false).with_max_level(tracing::Level::INFO).with_writer(move || Logs(b.clone())).finish();
    (buf, tracing::subscriber::set_default(sub))
}

/// GETs to index the one file of `asset` cold (a fresh server), and the log lines it wrote.
async fn cold_reads(root: &Path, store: &Store, asset: &str) -> (u64, String) {
    let st = state(root, store);
    let (logs, guard) = capture_logs();
    let before = store.counters().range_reads.load(Ordering::SeqCst);
    let (s, b) = get(&st, &format!("/{asset}/manifest.mpd")).await;
    assert_eq!(s, StatusCode::OK, "{asset}: {}", String::from_utf8_lossy(&b));
    let n = store.counters().range_reads.load(Ordering::SeqCst) - before;
    drop(guard);
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    (n, text)
}

/// What each layout must cost (asserted exactly where the layout fixes it).
fn check_counts(counts: &[(&str, u64, String)]) {
    let of = |name: &str| counts.iter().find(|c| c.0 == name).unwrap();
    for (name, n, _) in counts {
        println!("{name}: {n} GETs");
    }
    // sidx: the head read holds ftyp, moov, sidx and the first moof.
    assert_eq!(of("sidx").1, 1);
    // mfra: head, tail (mfro, mfra), and the last moof, which the 4 KiB tail read misses here.
    assert_eq!(of("mfra").1, 3);
    // sidecar: its one GET, the source is not read.
    assert_eq!(of("sidecar").1, 1, "sidecar logs: {}", of("sidecar").2);
    // walk: head, tail (no mfro), then reads doubling from 4 KiB: far fewer than one per
    // fragment (16) plus two, and the log line says how to avoid it.
    let walk = of("walk");
    assert!(walk.1 > 3 && walk.1 < 16, "walk: {} GETs", walk.1);
    assert!(walk.2.contains("indexed by walking every fragment") && walk.2.contains("sealcast index"), "walk logs: {}", walk.2);
    // stale: the sidecar GET, ignored (logged), then the walk.
    let stale = of("stale");
    assert_eq!(stale.1, walk.1 + 1, "stale sidecar: {} GETs", stale.1);
    assert!(stale.2.contains("sidecar index ignored, the source changed"), "stale logs: {}", stale.2);
    assert!(!of("sidecar").2.contains("walking"), "{}", of("sidecar").2);
}

#[tokio::test]
async fn cold_index_reads_per_layout_and_identical_outputs() {
    let root = temp("local");
    for (asset, layout) in [("sidx", "sidx"), ("mfra", "mfra"), ("walk", "bare"), ("sidecar", "bare"), ("stale", "bare")] {
        std::fs::create_dir_all(root.join("ci").join(asset)).unwrap();
        std::fs::copy(fixture(layout), root.join("ci").join(asset).join("video.cmfv")).unwrap();
    }
    let store = Store::local(&root).unwrap();
    let limits = IndexLimits::default();
    // `sealcast index` on each: sidecars only where the file would be walked.
    for (asset, want) in [("sidx", false), ("mfra", false), ("sidecar", true), ("stale", true)] {
        let out = write_for(&store, &format!("ci/{asset}/video.cmfv"), READ_AHEAD, limits, false).await.unwrap();
        assert_eq!(matches!(out, Outcome::Written { .. }), want, "{asset}: {out:?}");
        assert_eq!(root.join(format!("ci/{asset}/video.cmfv.sealcast-idx")).exists(), want);
    }
    // The stale one's source is replaced after its sidecar was written.
    let p = root.join("ci/stale/video.cmfv");
    std::fs::write(p.with_extension("tmp"), changed_bare()).unwrap();
    std::fs::rename(p.with_extension("tmp"), &p).unwrap();

    let mut counts = Vec::new();
    for asset in ["sidx", "mfra", "sidecar", "stale", "walk"] {
        let (n, logs) = cold_reads(&root, &store, &format!("ci/{asset}")).await;
        counts.push((asset, n, logs));
    }
    check_counts(&counts);

    let sidx = state(&root, &store);
    for asset in ["mfra", "sidecar", "walk"] {
        assert_same_bytes_as_sidx(&state(&root, &store), &format!("ci/{asset}"), &sidx, "ci/sidx").await;
    }
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn a_sidecar_is_not_an_asset_file() {
    let root = temp("notserved");
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::copy(fixture("bare"), root.join("a/video.cmfv")).unwrap();
    let store = Store::local(&root).unwrap();
    write_for(&store, "a/video.cmfv", READ_AHEAD, IndexLimits::default(), false).await.unwrap();
    // A folder holding only a sidecar is no asset.
    std::fs::create_dir_all(root.join("only")).unwrap();
    std::fs::rename(root.join("a/video.cmfv.sealcast-idx"), root.join("only/video.cmfv.sealcast-idx")).unwrap();
    write_for(&store, "a/video.cmfv", READ_AHEAD, IndexLimits::default(), false).await.unwrap();
    let st = state(&root, &store);
    let loaded = st.assets.get("a").await.unwrap();
    assert_eq!(loaded.asset.tracks.len(), 1);
    assert_eq!(loaded.files.len(), 1, "{:?}", loaded.files.keys());
    for uri in ["/a/video.cmfv.sealcast-idx", "/a/video.cmfv.sealcast-idx/manifest.mpd", "/only/manifest.mpd", "/only/video.cmfv.sealcast-idx"] {
        let (s, _) = get(&st, uri).await;
        assert!(s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST, "{uri}: {s}");
    }
    // Nor is a sidecar indexed: `sealcast index` refuses one.
    assert!(write_for(&store, "a/video.cmfv.sealcast-idx", READ_AHEAD, IndexLimits::default(), false).await.is_err());
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_index_command_writes_sidecars_only_where_needed() {
    let root = temp("cli");
    for l in ["sidx", "mfra", "bare"] {
        std::fs::create_dir_all(root.join(l)).unwrap();
        std::fs::copy(fixture(l), root.join(l).join("video.cmfv")).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealcast"))
        .args(["index", "--root"])
        .arg(&root)
        .args(["sidx/video.cmfv", "mfra/video.cmfv", "bare/video.cmfv"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("sidx/video.cmfv: indexes from its sidx in 1 requests; no sidecar needed"), "{text}");
    assert!(text.contains("mfra/video.cmfv: indexes from its mfra"), "{text}");
    assert!(text.contains("bare/video.cmfv: 16 fragments"), "{text}");
    assert!(!root.join("sidx/video.cmfv.sealcast-idx").exists() && !root.join("mfra/video.cmfv.sealcast-idx").exists());
    assert!(root.join("bare/video.cmfv.sealcast-idx").exists());
    // A missing file is an error naming it, and a failing exit.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sealcast")).args(["index", "--root"]).arg(&root).arg("nope/video.cmfv").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope/video.cmfv"));
    std::fs::remove_dir_all(root).unwrap();
}

/// The same over moto S3: `ingest` writes the sidecar of the bare file itself (keyed by the
/// object's ETag); the walked and stale copies are uploaded without / after it.
#[tokio::test(flavor = "multi_thread")]
async fn cold_index_reads_per_layout_on_s3() {
    let Some((_srv, endpoint)) = support::start_moto() else { return };
    let spec = support::moto_spec(endpoint);
    let root = temp("s3");
    let s3 = sealcast_storage::remote::open(&spec, sealcast_storage::remote::RemoteTiming::default()).unwrap();
    let store = Store::local(&root).unwrap().with_route("vod", s3).unwrap();
    remote_layouts(&root, &store, "vod").await;
    std::fs::remove_dir_all(root).unwrap();
}

/// The same on Azurite (Azure Blob).
#[tokio::test(flavor = "multi_thread")]
async fn cold_index_reads_per_layout_on_azurite() {
    let root = temp("az");
    let Some((_srv, endpoint)) = support::start_azurite(&root.join("azurite")) else { return };
    let spec = sealcast_storage::remote::RemoteSpec::Azure {
        account: "devstoreaccount1".into(),
        container: "media".into(),
        access_key: None,
        sas: None,
        use_emulator: true,
        endpoint: Some(endpoint),
        allow_http: true,
    };
    let az = sealcast_storage::remote::open(&spec, sealcast_storage::remote::RemoteTiming::default()).unwrap();
    std::fs::create_dir_all(root.join("local")).unwrap();
    let store = Store::local(&root.join("local")).unwrap().with_route("vod", az).unwrap();
    remote_layouts(&root.join("local"), &store, "vod").await;
    std::fs::remove_dir_all(root).unwrap();
}

async fn remote_layouts(root: &Path, store: &Store, prefix: &str) {
    use sealcast_origin::ingest::{run, IngestArgs, Publish};
    let ingest = |asset: String, layout: &str| IngestArgs { files: vec![fixture(layout)], asset, encrypt: false, catalog: None, publish: Publish::clear() };
    for (asset, layout) in [("sidx", "sidx"), ("mfra", "mfra"), ("sidecar", "bare"), ("stale", "bare")] {
        let r = run(store, &ingest(format!("{prefix}/{asset}"), layout)).await.unwrap();
        assert_eq!(r.sidecars, usize::from(layout == "bare"), "{asset}");
    }
    let put = |path: String, bytes: Vec<u8>| async move { store.put_bytes(&path, bytes::Bytes::from(bytes)).await.unwrap() };
    put(format!("{prefix}/walk/video.cmfv"), std::fs::read(fixture("bare")).unwrap()).await;
    put(format!("{prefix}/stale/video.cmfv"), changed_bare()).await;
    let mut counts = Vec::new();
    for asset in ["sidx", "mfra", "sidecar", "stale", "walk"] {
        let (n, logs) = cold_reads(root, store, &format!("{prefix}/{asset}")).await;
        counts.push((asset, n, logs));
    }
    check_counts(&counts);
    // Byte-identical to the local sidx file's outputs.
    let fx = sealcast_testkit::fixtures_dir();
    let local = Store::local(&fx).unwrap();
    let sidx = state(&fx, &local);
    for asset in ["sidx", "mfra", "sidecar", "walk"] {
        assert_same_bytes_as_sidx(&state(root, store), &format!("{prefix}/{asset}"), &sidx, "coldindex/sidx").await;
    }
}

/// A `tfra` lie that passes the checks (entry 20 points into an mdat) is trusted like a
/// `sidx`: the manifest and the first segment are served, the segment built on the lie is a
/// clear 500 naming the file, and the server goes on.
#[tokio::test]
async fn a_trusted_tfra_lie_fails_only_its_segment() {
    let fx = sealcast_testkit::fixtures_dir();
    let store = Store::local(&fx).unwrap();
    let st = state(&fx, &store);
    assert_eq!(get(&st, "/hostile/mfra_misaligned/manifest.mpd").await.0, StatusCode::OK);
    assert_eq!(get(&st, "/hostile/mfra_misaligned/video/1.m4s").await.0, StatusCode::OK);
    let (s, b) = get(&st, "/hostile/mfra_misaligned/video/11.m4s").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(String::from_utf8_lossy(&b).contains("video.cmfv"), "{}", String::from_utf8_lossy(&b));
    assert_eq!(get(&st, "/hostile/mfra_control/video/11.m4s").await.0, StatusCode::OK);
}
