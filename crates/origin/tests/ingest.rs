//! `sealcast ingest` end to end, in-process: the demo asset ingested storage-encrypted is
//! served byte-identically to the clear fixture, for manifests and every segment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::{apply_storage_encryption, Catalog, TomlCatalog};
use sealcast_origin::config::Config;
use sealcast_origin::ingest::{self, IngestArgs, Publish, RecordIn};
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, body.collect().await.unwrap().to_bytes().to_vec())
}

fn demo_files() -> Vec<PathBuf> {
    let dir = sealcast_testkit::fixtures_dir().join("demo");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sealcast-ingest-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every URL of the asset at `/{asset}`: manifests, playlists, init and media segments.
async fn urls(st: &Arc<AppState>, asset: &str) -> Vec<String> {
    let loaded = st.assets.get(asset).await.unwrap();
    let mut v: Vec<String> = ["manifest.mpd", "master.m3u8", "master-ts.m3u8", "Manifest"].iter().map(|m| format!("/{asset}/{m}")).collect();
    for t in &loaded.asset.tracks {
        v.push(format!("/{asset}/{}/index.m3u8", t.name));
        v.push(format!("/{asset}/{}/init.mp4", t.name));
        for n in 1..=t.segments.len() {
            v.push(format!("/{asset}/{}/{n}.m4s", t.name));
            v.push(format!("/{asset}/{}/{n}.ts", t.name));
        }
    }
    v
}

#[tokio::test]
async fn storage_encrypted_ingest_serves_byte_identical_responses() {
    let root = temp("enc");
    let store_root = root.join("store");
    std::fs::create_dir_all(&store_root).unwrap();
    let catalog = root.join("catalog.toml");
    let store = Store::local(&store_root).unwrap();
    let args = IngestArgs { files: demo_files(), asset: "demo".into(), encrypt: true, catalog: Some(RecordIn::Toml(catalog.clone())), publish: Publish::clear() };
    let report = ingest::run(&store, &args).await.unwrap();
    assert_eq!(report.files.len(), 5);
    // Stored bytes are not the clear bytes, and the catalog holds key and IVs.
    let fx = sealcast_testkit::fixtures_dir().join("demo");
    for name in &report.files {
        let (a, b) = (std::fs::read(fx.join(name)).unwrap(), std::fs::read(store_root.join("demo").join(name)).unwrap());
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b, "{name} stored clear");
    }
    let cat = Arc::new(TomlCatalog::load(&catalog).unwrap());
    let st_enc = cat.policy("demo").unwrap();
    let s = st_enc.storage.as_ref().unwrap();
    assert_eq!((s.key.len(), s.files.len()), (32, 5));

    let cfg = Config { root: store_root.clone(), ..Config::default() };
    let enc_store = Store::local(&store_root).unwrap();
    assert_eq!(apply_storage_encryption(&cat, &enc_store).unwrap(), 5);
    let enc = AppState::with_parts(&cfg, enc_store, cat.clone(), Some(cat.clone()));
    let clear_cfg = Config { root: sealcast_testkit::fixtures_dir(), ..Config::default() };
    let clear = AppState::with_store(&clear_cfg, Store::local(&sealcast_testkit::fixtures_dir()).unwrap());

    let all = urls(&clear, "demo").await;
    assert!(all.len() > 20);
    for u in &all {
        let (sc, bc) = get(&clear, u).await;
        let (se, be) = get(&enc, u).await;
        assert_eq!(sc, StatusCode::OK, "{u}");
        assert_eq!(se, StatusCode::OK, "{u}");
        assert!(bc == be, "{u}: storage-encrypted copy differs from the clear one");
    }
    // Same URL set from the encrypted side too (same tracks and segment counts).
    assert_eq!(urls(&enc, "demo").await, all);
    // Without the keys registered, the encrypted copy cannot be served (never garbage as clear).
    let bare = AppState::with_store(&cfg, Store::local(&store_root).unwrap());
    assert_ne!(get(&bare, "/demo/manifest.mpd").await.0, StatusCode::OK);
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn refuses_unservable_files_before_uploading_anything() {
    let root = temp("bad");
    let store_root = root.join("store");
    std::fs::create_dir_all(&store_root).unwrap();
    let catalog = root.join("catalog.toml");
    let store = Store::local(&store_root).unwrap();
    let mut files = demo_files();
    files.push(sealcast_testkit::fixtures_dir().join("bad/garbage.mp4"));
    let args = IngestArgs { files, asset: "vod/x".into(), encrypt: true, catalog: Some(RecordIn::Toml(catalog.clone())), publish: Publish::default() };
    let e = format!("{:#}", ingest::run(&store, &args).await.unwrap_err());
    assert!(e.contains("garbage.mp4") && e.contains("fragmented MP4"), "{e}");
    assert!(!store_root.join("vod").exists(), "nothing uploaded");
    assert!(!catalog.exists(), "nothing registered");
    // --encrypt without a catalog would lose the key.
    let args = IngestArgs { files: demo_files(), asset: "vod/x".into(), encrypt: true, catalog: None, publish: Publish::default() };
    assert!(ingest::run(&store, &args).await.is_err());
    // A clear ingest into an existing catalog keeps the other assets' entries, and adds none
    // of its own unless it publishes something (an entry blocks every protocol it does not name).
    std::fs::write(&catalog, "[[asset]]\npath = \"other\"\ndash = \"NoDynamicEncryption\"\n").unwrap();
    let args = IngestArgs { files: demo_files(), asset: "vod/x".into(), encrypt: false, catalog: Some(RecordIn::Toml(catalog.clone())), publish: Publish::default() };
    ingest::run(&store, &args).await.unwrap();
    let c = TomlCatalog::load(&catalog).unwrap();
    assert!(c.policy("other").is_some() && c.policy("vod/x").is_none());
    // The rewritten catalog keeps the mode (and owner) an operator gave it, and no temporary
    // file is left beside it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&catalog, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let publish = Publish { hls: Some(sealcast_origin::catalog::Delivery::NoDynamicEncryption), ..Publish::default() };
    ingest::run(&store, &IngestArgs { publish, ..args }).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&catalog).unwrap().permissions().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(catalog.parent().unwrap()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".ingest-")).collect();
        assert!(leftovers.is_empty());
    }
    let c = TomlCatalog::load(&catalog).unwrap();
    let p = c.policy("vod/x").unwrap();
    assert!(p.storage.is_none() && p.hls == Some(sealcast_origin::catalog::Delivery::NoDynamicEncryption) && p.dash.is_none());
    assert_eq!(std::fs::read(store_root.join("vod/x/demo.ism")).unwrap(), std::fs::read(Path::new(&sealcast_testkit::fixtures_dir()).join("demo/demo.ism")).unwrap());
    std::fs::remove_dir_all(root).unwrap();
}

/// The delivery policy both copies get (keys inline; the storage key stays the ingest's).
const POLICY: &str = r#"dash = "DynamicCommonEncryption"
hls = "DynamicCommonEncryptionCbcs"
smooth = "DynamicCommonEncryption"
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5da", key = "69eaa802a6763af979e8d1940fb88393" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5db", key = "69eaa802a6763af979e8d1940fb88394", kind = "CommonEncryptionCbcs" },
]
"#;

#[tokio::test]
async fn storage_encrypted_copy_gives_identical_encrypted_outputs() {
    let root = temp("enc-out");
    let store_root = root.join("store");
    std::fs::create_dir_all(&store_root).unwrap();
    let catalog = root.join("catalog.toml");
    let store = Store::local(&store_root).unwrap();
    let args = IngestArgs { files: demo_files(), asset: "demo".into(), encrypt: true, catalog: Some(RecordIn::Toml(catalog.clone())), publish: Publish::default() };
    ingest::run(&store, &args).await.unwrap();
    // Recorded blocked: the entry names no protocol, so nothing is served, clear or not.
    {
        let cat = Arc::new(TomlCatalog::load(&catalog).unwrap());
        let s = Store::local(&store_root).unwrap();
        apply_storage_encryption(&cat, &s).unwrap();
        let st = AppState::with_parts(&Config { root: store_root.clone(), ..Config::default() }, s, cat.clone(), Some(cat));
        for u in ["/demo/manifest.mpd", "/demo/master.m3u8", "/demo/master-ts.m3u8", "/demo/Manifest", "/demo/video_180p/1.m4s", "/demo/video_180p/init.mp4", "/demo/video_180p/1.ts", "/demo/video_180p/cenc/1.m4s"] {
            let r = router(st.clone()).oneshot(http::Request::get(u).body(axum::body::Body::empty()).unwrap()).await.unwrap();
            assert_eq!(r.status(), http::StatusCode::FORBIDDEN, "{u}");
        }
        // `sealcast catalog check` says so, per protocol.
        let cfg = Config { root: store_root.clone(), catalog: Some(catalog.clone()), ..Config::default() };
        let table = sealcast_origin::server::catalog_check(&cfg).await.unwrap();
        assert!(table.starts_with("# allow_clear_without_policy = true\ndemo (encrypted at rest)\n"), "{table}");
        assert_eq!(table.lines().filter(|l| l.contains("blocked: the delivery policy of 'demo' does not name")).count(), 4, "{table}");
    }
    // The ingest's catalog entry gets a delivery policy; the clear copy gets the same one.
    let text = std::fs::read_to_string(&catalog).unwrap();
    let at = text.find("path = \"demo\"\n").expect("ingest wrote the asset") + "path = \"demo\"\n".len();
    std::fs::write(&catalog, format!("{}{POLICY}{}", &text[..at], &text[at..])).unwrap();
    let clear_catalog = root.join("clear.toml");
    std::fs::write(&clear_catalog, format!("[[asset]]\npath = \"demo\"\n{POLICY}")).unwrap();

    let cat = Arc::new(TomlCatalog::load(&catalog).unwrap());
    let enc_store = Store::local(&store_root).unwrap();
    apply_storage_encryption(&cat, &enc_store).unwrap();
    let enc = AppState::with_parts(&Config { root: store_root.clone(), ..Config::default() }, enc_store, cat.clone(), Some(cat));
    let ccat = Arc::new(TomlCatalog::load(&clear_catalog).unwrap());
    let fx = sealcast_testkit::fixtures_dir();
    let clear = AppState::with_parts(&Config { root: fx.clone(), ..Config::default() }, Store::local(&fx).unwrap(), ccat.clone(), Some(ccat));

    let loaded = clear.assets.get("demo").await.unwrap();
    let mut all: Vec<String> = ["manifest.mpd", "master.m3u8", "master-ts.m3u8", "Manifest"].iter().map(|m| format!("/demo/{m}")).collect();
    for t in &loaded.asset.tracks {
        for s in ["cenc", "cbcs"] {
            all.push(format!("/demo/{}/{s}/init.mp4", t.name));
            for n in 1..=t.segments.len() {
                all.push(format!("/demo/{}/{s}/{n}.m4s", t.name));
            }
        }
        all.push(format!("/demo/{}/cbcs/index.m3u8", t.name));
        all.push(format!("/demo/{}/cbcs/ts.m3u8", t.name));
        for n in 1..=t.segments.len() {
            all.push(format!("/demo/{}/cbcs/{n}.ts", t.name));
        }
    }
    for u in &all {
        let (sc, bc) = get(&clear, u).await;
        let (se, be) = get(&enc, u).await;
        assert_eq!((sc, se), (StatusCode::OK, StatusCode::OK), "{u}");
        assert!(bc == be, "{u}: the storage-encrypted copy's encrypted output differs");
    }
    std::fs::remove_dir_all(root).unwrap();
}

/// `ingest` into the catalog database: the storage key lands sealed, the asset is served
/// through the database catalog byte-identical to the clear fixture, and the write is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_encrypted_ingest_into_the_database() {
    use sealcast_origin::catalog::db::{Actor, Database, DbCatalog};
    use sealcast_origin::catalog::kek::{init_local_kek, KekSource};
    let root = temp("db");
    let store_root = root.join("store");
    std::fs::create_dir_all(&store_root).unwrap();
    init_local_kek(&root.join("kek")).unwrap();
    let kek = KekSource::Local(root.join("kek"));
    let db = Arc::new(Database::open(&format!("sqlite://{}", root.join("db/catalog.db").display()), &kek).await.unwrap());
    let store = Store::local(&store_root).unwrap();
    let actor = Actor { identity: "cli:test".into(), address: "local".into() };
    let args = IngestArgs { files: demo_files(), asset: "demo".into(), encrypt: true, catalog: Some(RecordIn::Database(db.clone(), actor)), publish: Publish::clear() };
    ingest::run(&store, &args).await.unwrap();
    let cat = DbCatalog::start(db.clone(), Some(store.clone()), std::time::Duration::from_millis(100), false).await.unwrap();
    let p = cat.policy("demo").unwrap();
    assert_eq!((p.storage.as_ref().unwrap().files.len(), p.dash), (5, Some(sealcast_origin::catalog::Delivery::NoDynamicEncryption)));
    let cfg = Config { root: store_root.clone(), ..Config::default() };
    let enc = AppState::with_parts(&cfg, store, cat.clone(), None);
    let clear = AppState::with_store(&Config { root: sealcast_testkit::fixtures_dir(), ..Config::default() }, Store::local(&sealcast_testkit::fixtures_dir()).unwrap());
    for u in urls(&clear, "demo").await.iter().take(12) {
        let (a, b) = (get(&clear, u).await, get(&enc, u).await);
        assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{u}");
        assert!(a.1 == b.1, "{u}: differs");
    }
    // The storage key is in the database only sealed.
    let key = sealcast_cenc::kid::hex(&p.storage.as_ref().unwrap().key);
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(root.join("db")).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()), "storage key in clear in the database");
    assert!(!bytes.windows(32).any(|w| w == &p.storage.as_ref().unwrap().key[..]), "storage key bytes in the database");
    assert!(db.audit(10).await.unwrap().iter().any(|r| r.actor == "cli:test" && r.entity == "asset"));
    std::fs::remove_dir_all(root).unwrap();
}
