//! The catalog in a database (issue 13): one suite run against SQLite and against a real
//! PostgreSQL (a throwaway cluster this test starts with Debian's `initdb`/`pg_ctl` in a
//! temporary folder; skipped and recorded when absent, a failure under `CI=true`).
//!
//! Per backend: migrations from an empty database; import of the golden catalog (idempotent);
//! every protected output served from the database equal, byte for byte and header for
//! header, to the same catalog served from TOML; no key in a dump of the database; export →
//! import round trip into a second database; locator time windows; propagation to a second
//! replica (p50/p99 printed); concurrent writers; the audit trail append-only; a change under
//! load never mixing two policies in one response; refusals (wrong KEK, newer schema,
//! unreachable database). PostgreSQL also: the database stopped mid-run — replicas keep
//! serving, readiness says degraded, and they catch up when it is back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::db::{Actor, Database, DbCatalog};
use sealcast_origin::catalog::doc::LocatorDoc;
use sealcast_origin::catalog::kek::{init_local_kek, KekSource};
use sealcast_origin::catalog::toml_store::{read_doc, FilesBeside};
use sealcast_origin::catalog::{Catalog, CatalogDoc, TomlCatalog};
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use sealcast_testkit::repo_root;
use tower::ServiceExt;

mod protected;
use protected::{golden_root, URLS};

fn actor(who: &str) -> Actor {
    Actor { identity: who.into(), address: "127.0.0.1".into() }
}

fn golden_catalog() -> PathBuf {
    repo_root().join("tests/golden/protected/catalog.toml")
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sealcast-catalog-db-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn local_kek(dir: &Path, name: &str) -> KekSource {
    let p = dir.join(name);
    init_local_kek(&p).unwrap();
    KekSource::Local(p)
}

async fn get(st: &Arc<AppState>, url: &str) -> (StatusCode, http::HeaderMap, bytes::Bytes) {
    let r = router(st.clone()).oneshot(Request::get(url).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

/// Every secret of a catalog document, as the bytes and the texts a dump could show.
fn secrets_of(doc: &CatalogDoc) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut hex = |h: &str| {
        let h = h.trim();
        out.push(h.to_ascii_lowercase().into_bytes());
        out.push(h.to_ascii_uppercase().into_bytes());
        let raw: Vec<u8> = (0..h.len() / 2).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()).collect();
        use base64::Engine;
        out.push(base64::engine::general_purpose::STANDARD.encode(&raw).trim_end_matches('=').as_bytes().to_vec());
        out.push(raw);
    };
    for a in &doc.assets {
        for k in &a.keys {
            hex(&k.key.as_ref().unwrap().0);
        }
        if let Some(s) = &a.storage {
            hex(&s.key.as_ref().unwrap().0);
        }
    }
    // Token secrets (symmetric keys, base64) of the authorization policies.
    let text = toml::to_string(&doc.authorization).unwrap();
    for line in text.lines() {
        if let Some(v) = line.split("symmetric = \"").nth(1) {
            out.push(v.trim_end_matches('"').trim_end_matches(" }").trim_end_matches('"').as_bytes().to_vec());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() >= 8 && hay.windows(needle.len()).any(|w| w == needle)
}

/// The whole suite against one database URL (`dump`: the database's bytes as a dump shows them).
async fn suite(backend: &str, url: &str, url_b: &str, dump: &dyn Fn() -> Vec<u8>) {
    let dir = temp(backend);
    let kek = local_kek(&dir, "kek");
    let toml_path = golden_catalog();
    let toml_doc = read_doc(&toml_path).unwrap();

    // Migrations from an empty database, then an import; a second import changes nothing.
    let db = Arc::new(Database::open(url, &kek).await.unwrap());
    let beside = FilesBeside(toml_path.parent().unwrap());
    let r = db.import(&toml_doc, &beside, &actor("test:import")).await.unwrap();
    assert_eq!(r.created.iter().filter(|(e, _)| e == "asset").count(), toml_doc.assets.len(), "{r}");
    let again = db.import(&toml_doc, &beside, &actor("test:import")).await.unwrap();
    assert!(again.created.is_empty() && again.updated.is_empty(), "import is not idempotent: {again}");
    let loc = CatalogDoc { locators: vec![LocatorDoc { id: "loc1".into(), asset: "demo".into(), start: None, expiry: None }], ..Default::default() };
    db.import(&loc, &beside, &actor("test:locator")).await.unwrap();

    // Every protected output from the database equals the TOML catalog's, headers included.
    let root = golden_root(backend);
    let store = Store::local(&root).unwrap();
    let cfg = Config { root: root.clone(), allow_clear_without_policy: false, ..Config::default() };
    let cat = DbCatalog::start(db.clone(), Some(store.clone()), Duration::from_millis(50), true).await.unwrap();
    let from_db = AppState::with_parts(&cfg, store, cat.clone(), None);
    let mut tcfg = Config { catalog: Some(toml_path.clone()), ..cfg.clone() };
    tcfg.locators.insert("loc1".into(), "demo".into());
    let toml = Arc::new(TomlCatalog::load(&toml_path).unwrap());
    let from_toml = AppState::with_parts(&tcfg, Store::local(&root).unwrap(), toml.clone(), Some(toml));
    for &(url, _) in URLS {
        let (a, b) = (get(&from_db, url).await, get(&from_toml, url).await);
        assert_eq!(a.0, b.0, "{backend} {url}: status");
        for h in [header::CONTENT_TYPE, header::CACHE_CONTROL, header::ETAG, header::CONTENT_LENGTH] {
            assert_eq!(a.1.get(&h), b.1.get(&h), "{backend} {url}: {h}");
        }
        if a.0.is_success() {
            assert!(a.2 == b.2, "{backend} {url}: body differs");
        }
    }

    // No key in a dump: content keys, storage keys, token secrets, in any spelling.
    let mut opened = toml_doc.clone();
    for a in &mut opened.assets {
        a.keys.retain(|k| k.key.is_some());
    }
    let secrets = secrets_of(&opened);
    assert!(secrets.len() > 10, "the golden catalog has keys to look for");
    let bytes = dump();
    assert!(bytes.len() > 1000, "{backend}: empty dump");
    for s in &secrets {
        assert!(!contains(&bytes, s), "{backend}: a key shows in the database dump: {}", String::from_utf8_lossy(&s[..4.min(s.len())]));
    }

    // Export → import into a second database (same KEK) → equal catalogs, equal keys.
    let exported = toml::to_string(&db.export(true).await.unwrap()).unwrap();
    for s in &secrets {
        assert!(!contains(exported.as_bytes(), s), "{backend}: a key shows in an export --with-keys");
    }
    let db_b = Arc::new(Database::open(url_b, &kek).await.unwrap());
    let parsed: CatalogDoc = toml::from_str(&exported).unwrap();
    db_b.import(&parsed, &FilesBeside(&dir), &actor("test:roundtrip")).await.unwrap();
    let (ea, eb) = (toml::to_string(&db.export(false).await.unwrap()).unwrap(), toml::to_string(&db_b.export(false).await.unwrap()).unwrap());
    assert_eq!(ea, eb, "{backend}: export → import → export differs");
    let cat_b = DbCatalog::start(db_b.clone(), None, Duration::from_millis(50), false).await.unwrap();
    let mut kids = 0;
    for a in &toml_doc.assets {
        for k in &a.keys {
            let kid = sealcast_drm::Kid::parse(&k.kid).unwrap();
            let (x, y) = (cat.key(kid).unwrap(), cat_b.key(kid).unwrap());
            assert_eq!(x.key, y.key, "{backend}: key {kid} differs after the round trip");
            kids += 1;
        }
    }
    assert!(kids >= 4);
    // An export without keys imports as a no-op (keys stay as stored).
    let bare: CatalogDoc = toml::from_str(&ea).unwrap();
    let r = db.import(&bare, &FilesBeside(&dir), &actor("test:bare")).await.unwrap();
    assert!(r.created.is_empty() && r.updated.is_empty(), "{backend}: keyless export re-imported changed something: {r}");

    // Locator windows: before the start and from the expiry on, 404; created and deleted live.
    let wins = CatalogDoc {
        locators: vec![
            LocatorDoc { id: "past".into(), asset: "demo".into(), start: None, expiry: Some("2020-01-01T00:00:00Z".into()) },
            LocatorDoc { id: "future".into(), asset: "demo".into(), start: Some("2099-01-01T00:00:00Z".into()), expiry: None },
            LocatorDoc { id: "open".into(), asset: "demo".into(), start: Some("2020-01-01T00:00:00Z".into()), expiry: Some("2099-01-01T00:00:00Z".into()) },
        ],
        ..Default::default()
    };
    db.import(&wins, &beside, &actor("test:locators")).await.unwrap();
    cat.refresh().await.unwrap();
    for (id, want) in [("past", 404), ("future", 404), ("open", 200), ("loc1", 200)] {
        let (s, _, _) = get(&from_db, &format!("/{id}/demo.ism/manifest(format=mpd-time-csf,encryption=cenc)")).await;
        assert_eq!(s.as_u16(), want, "{backend}: locator {id}");
    }
    assert!(db.delete_locator("open", &actor("test:locators")).await.unwrap());
    cat.refresh().await.unwrap();
    assert_eq!(get(&from_db, "/open/demo.ism/manifest(format=mpd-time-csf,encryption=cenc)").await.0, StatusCode::NOT_FOUND);

    // Propagation to a second replica (its own connection pool and watcher): each change
    // timed from commit to visible there.
    let replica_db = Arc::new(Database::open(url, &kek).await.unwrap());
    let replica = DbCatalog::start(replica_db, None, Duration::from_millis(if backend == "postgres" { 1000 } else { 100 }), true).await.unwrap();
    let n = if backend == "postgres" { 100 } else { 40 };
    let mut lat = Vec::new();
    for i in 0..n {
        let lead = 1 + (i % 7) as u32;
        let mut d = CatalogDoc { assets: vec![toml_doc.assets.iter().find(|a| a.path == "demo_lead").unwrap().clone()], ..Default::default() };
        d.assets[0].clear_lead_secs = lead + if replica.policy("demo_lead").unwrap().clear_lead_secs == lead { 7 } else { 0 };
        let want = d.assets[0].clear_lead_secs;
        db.import(&d, &beside, &actor("test:propagation")).await.unwrap();
        let t = Instant::now();
        while replica.policy("demo_lead").unwrap().clear_lead_secs != want {
            assert!(t.elapsed() < Duration::from_secs(10), "{backend}: change {i} not visible on the replica after 10 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
    println!("{backend}: propagation to a second replica over {n} changes: p50 {:?}, p99 {:?}, max {:?}", p(0.5), p(0.99), lat[lat.len() - 1]);

    // Concurrent writers: every write lands, the version counts each.
    let v0 = db.version().await.unwrap();
    let audit0 = db.audit(100_000).await.unwrap().len();
    let mut tasks = Vec::new();
    for w in 0..2 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let d: CatalogDoc = toml::from_str(&format!("[[asset]]\npath = \"writer{w}/asset{i}\"\ndash = \"NoDynamicEncryption\"\n")).unwrap();
                db.import(&d, &FilesBeside(Path::new(".")), &actor(&format!("test:writer{w}"))).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(db.version().await.unwrap(), v0 + 20, "{backend}: concurrent writes");
    let audit = db.audit(100_000).await.unwrap();
    assert_eq!(audit.len(), audit0 + 20);
    assert!(audit.iter().any(|r| r.actor == "test:writer1" && r.entity == "asset"));
    // The audit trail names no key.
    let audit_text: String = audit.iter().map(|r| format!("{r:?}\n")).collect();
    for s in &secrets {
        assert!(!contains(audit_text.as_bytes(), s), "{backend}: a key in the audit trail");
    }
    // Append-only, enforced by the database itself.
    let raw = sqlx::AnyPool::connect(&if backend == "sqlite" { format!("{url}?mode=rw") } else { url.to_string() }).await.unwrap();
    assert!(sqlx::query("UPDATE audit SET actor = 'someone else'").execute(&raw).await.is_err(), "{backend}: audit rows can be changed");
    assert!(sqlx::query("DELETE FROM audit").execute(&raw).await.is_err(), "{backend}: audit rows can be deleted");

    // A policy change under load: every response is one policy's, never a mix, never an error.
    change_under_load(&from_db, &db, &cat, &beside, backend).await;

    // Refusals: a wrong KEK, a schema newer than the binary.
    let wrong = local_kek(&dir, "other-kek");
    let e = format!("{:#}", Database::open(url, &wrong).await.err().expect("a wrong KEK opened the database"));
    assert!(e.contains("does not open"), "{backend}: {e}");
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (999, 'future', CURRENT_TIMESTAMP, TRUE, X'00', 0)")
        .execute(&raw)
        .await
        .or(sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (999, 'future', now(), TRUE, '\\x00', 0)").execute(&raw).await)
        .unwrap();
    let e = format!("{:#}", Database::open(url, &kek).await.err().expect("a newer schema opened"));
    assert!(e.contains("newer than this binary"), "{backend}: {e}");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 999").execute(&raw).await.unwrap();
    raw.close().await;
    std::fs::remove_dir_all(root).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// Flips an asset between two key sets while requests run: each MPD names one key set's KIDs
/// only, no request fails.
async fn change_under_load(st: &Arc<AppState>, db: &Arc<Database>, cat: &Arc<DbCatalog>, beside: &FilesBeside<'_>, backend: &str) {
    let base: CatalogDoc = toml::from_str(
        r#"[[asset]]
path = "demo"
dash = "DynamicCommonEncryption"
keys = [{ kid = "aaaaaaaa-0000-4000-8000-00000000000a", key = "000102030405060708090a0b0c0d0e0f" }]
"#,
    )
    .unwrap();
    let mut other = base.clone();
    other.assets[0].keys[0].kid = "bbbbbbbb-0000-4000-8000-00000000000b".into();
    db.import(&base, beside, &actor("test:flip")).await.unwrap();
    cat.refresh().await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (st, stop) = (st.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, _, body) = get(&st, "/demo/manifest.mpd").await;
                assert_eq!(s, StatusCode::OK);
                let text = String::from_utf8_lossy(&body);
                let (a, b) = (text.contains("aaaaaaaa-0000-4000-8000-00000000000a"), text.contains("bbbbbbbb-0000-4000-8000-00000000000b"));
                assert!(a ^ b, "a manifest with both key sets, or neither");
                let (s, _, _) = get(&st, "/demo/video_180p/cenc/1.m4s").await;
                assert_eq!(s, StatusCode::OK);
                n += 1;
            }
            n
        }));
    }
    for i in 0..20 {
        let d = if i % 2 == 0 { &other } else { &base };
        db.import(d, beside, &actor("test:flip")).await.unwrap();
        cat.refresh().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        total += r.await.unwrap();
    }
    println!("{backend}: {total} manifest + segment pairs answered across 20 policy changes, none mixed");
    assert!(total > 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_catalog_suite() {
    let dir = temp("sqlite-files");
    let (a, b) = (dir.join("a/catalog.db"), dir.join("b/catalog.db"));
    let url = format!("sqlite://{}", a.display());
    let url_b = format!("sqlite://{}", b.display());
    let folder = a.parent().unwrap().to_path_buf();
    let dump = move || {
        let mut all = Vec::new();
        for e in std::fs::read_dir(&folder).unwrap() {
            all.extend(std::fs::read(e.unwrap().path()).unwrap());
        }
        all
    };
    suite("sqlite", &url, &url_b, &dump).await;
    // A database that cannot be reached at first start is a clear error naming it.
    let e = format!("{:#}", Database::open("sqlite:///proc/nonexistent/dir/x.db", &local_kek(&dir, "kek")).await.err().unwrap());
    assert!(e.contains("/proc/nonexistent"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A throwaway PostgreSQL cluster, stopped and removed when dropped.
struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    fn find_bin() -> Option<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql").ok()?.filter_map(|e| e.ok().map(|e| e.path().join("bin"))).filter(|b| b.join("pg_ctl").exists()).collect();
        v.sort();
        v.pop()
    }

    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        c.args(args).output().unwrap()
    }

    fn start() -> Option<Postgres> {
        let bin = Self::find_bin()?;
        let as_postgres = String::from_utf8_lossy(&Command::new("id").arg("-u").output().ok()?.stdout).trim() == "0";
        let dir = std::env::temp_dir().join(format!("sealcast-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        if as_postgres {
            Command::new("chown").args(["postgres:postgres", dir.to_str()?]).status().ok()?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let pg = Postgres { dir: dir.clone(), bin, port, as_postgres };
        let data = dir.join("data");
        let out = pg.run("initdb", &["-D", data.to_str()?, "-U", "sealcast", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        pg.pg_ctl_start();
        for db in ["catalog", "catalog_b"] {
            let out = pg.run("createdb", &["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "sealcast", db]);
            assert!(out.status.success(), "createdb: {}", String::from_utf8_lossy(&out.stderr));
        }
        Some(pg)
    }

    fn pg_ctl_start(&self) {
        let data = self.dir.join("data");
        let opts = format!("-p {} -h 127.0.0.1 -k {} -c fsync=off", self.port, self.dir.display());
        let out = self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-o", &opts, "-l", self.dir.join("log").to_str().unwrap(), "-w", "start"]);
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn stop(&self) {
        let _ = self.run("pg_ctl", &["-D", self.dir.join("data").to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://sealcast@127.0.0.1:{}/{db}", self.port)
    }

    fn dump(&self, db: &str) -> Vec<u8> {
        let out = self.run("pg_dump", &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "sealcast", db]);
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalog_suite() {
    const TEST: &str = "postgres_catalog_suite";
    let Some(pg) = sealcast_testkit::oracle(TEST, Postgres::start(), "PostgreSQL server binaries (Debian package postgresql; scripts/setup.sh installs it)") else {
        return;
    };
    let pg = Arc::new(pg);
    let p2 = pg.clone();
    let dump = move || p2.dump("catalog");
    suite("postgres", &pg.url("catalog"), &pg.url("catalog_b"), &dump).await;

    // The database stopped mid-run: replicas keep serving their last good catalog, readiness
    // says degraded, and they catch up once it is back.
    let dir = temp("pg-outage");
    let kek = local_kek(&dir, "kek");
    // The suite's KEK is gone with its folder: a fresh database for this part.
    let out = pg.run("createdb", &["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "sealcast", "outage"]);
    assert!(out.status.success());
    let db = Arc::new(Database::open(&pg.url("outage"), &kek).await.unwrap());
    let golden = golden_catalog();
    let beside = FilesBeside(golden.parent().unwrap());
    db.import(&read_doc(&golden).unwrap(), &beside, &actor("test:outage")).await.unwrap();
    let root = golden_root("pg-outage");
    let store = Store::local(&root).unwrap();
    let cfg = Config { root: root.clone(), allow_clear_without_policy: false, ..Config::default() };
    let mut replicas: Vec<Arc<AppState>> = Vec::new();
    for _ in 0..2 {
        let (store, cfg) = (store.clone(), cfg.clone());
        replicas.push({
            let own = Arc::new(Database::open(&pg.url("outage"), &kek).await.unwrap());
            let c = DbCatalog::start(own, Some(store.clone()), Duration::from_millis(100), true).await.unwrap();
            let mut st = AppState::with_parts(&cfg, store, c.clone(), None);
            Arc::get_mut(&mut st).unwrap().db_catalog = Some(c);
            st
        });
    }
    for st in &replicas {
        assert_eq!(get(st, "/readyz").await.0, StatusCode::OK);
    }
    let before = get(&replicas[0], "/demo/manifest.mpd").await;
    pg.stop();
    let t = Instant::now();
    for st in &replicas {
        while get(st, "/readyz").await.0 != StatusCode::SERVICE_UNAVAILABLE {
            assert!(t.elapsed() < Duration::from_secs(15), "readiness never said degraded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let now = get(st, "/demo/manifest.mpd").await;
        assert_eq!(now.0, StatusCode::OK, "not served while the database is down");
        assert!(now.2 == before.2, "a different manifest while the database is down");
        assert!(sealcast_origin::server::metrics_text(st).await.contains("sealcast_catalog_degraded 1"));
    }
    println!("postgres: both replicas degraded {:?} after the database stopped, still serving", t.elapsed());
    pg.pg_ctl_start();
    let t = Instant::now();
    for st in &replicas {
        while get(st, "/readyz").await.0 != StatusCode::OK {
            assert!(t.elapsed() < Duration::from_secs(30), "never recovered after the database came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // And they follow changes again.
    assert!(db.delete_asset("multi", &actor("test:outage")).await.unwrap_or_else(|_| panic!("write after restart")));
    let t = Instant::now();
    for st in &replicas {
        while get(st, "/multi/manifest.mpd").await.0 == StatusCode::OK {
            assert!(t.elapsed() < Duration::from_secs(10), "a change after recovery never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    println!("postgres: replicas current again {:?} after the restart", t.elapsed());
    std::fs::remove_dir_all(root).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// The hand-written AWS Signature V4 of the KMS client equals botocore's for the same request.
#[test]
fn kms_request_signature_matches_botocore() {
    use sealcast_origin::catalog::kek::{kms, KmsConfig};
    const TEST: &str = "kms_request_signature_matches_botocore";
    let script = r#"
import sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import datetime
import botocore.auth
class Fixed(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return cls(2026, 12, 3, 10, 11, 12)
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 12, 3, 10, 11, 12, tzinfo=tz)
botocore.auth.datetime.datetime = Fixed
body = sys.argv[1].encode()
token = sys.argv[2] or None
req = AWSRequest(method="POST", url="http://127.0.0.1:5000/", data=body,
                 headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Decrypt"})
SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), "kms", "eu-west-1").add_auth(req)
print(req.headers["Authorization"])
"#;
    let have = Command::new("python3").args(["-c", "import botocore"]).status().is_ok_and(|s| s.success());
    if sealcast_testkit::oracle(TEST, have.then_some(()), "python3 with botocore (pip install 'moto[server]', or scripts/setup.sh)").is_none() {
        return;
    }
    let body = r#"{"CiphertextBlob":"AQID","KeyId":"arn:aws:kms:eu-west-1:123456789012:key/x"}"#;
    for token in ["", "FQoGZXIvYXdzEXAMPLETOKEN"] {
        let k = KmsConfig {
            key_id: "x".into(),
            region: "eu-west-1".into(),
            endpoint: None,
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: zeroize::Zeroizing::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            session_token: (!token.is_empty()).then(|| zeroize::Zeroizing::new(token.to_string())),
        };
        let ours = kms::sign(&k, "127.0.0.1:5000", "20261203T101112Z", "TrentService.Decrypt", body.as_bytes());
        let ours = ours.iter().find(|(n, _)| n == "authorization").unwrap().1.clone();
        let out = Command::new("python3").args(["-c", script, body, token]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(ours, String::from_utf8(out.stdout).unwrap().trim(), "session token: {}", !token.is_empty());
    }
}

/// Every catalog the repository ships imports into the database, round-trips through an export
/// into a second database, and gives the same policies and keys as the TOML store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_catalog_imports_and_round_trips() {
    let dir = temp("examples");
    let kek = local_kek(&dir, "kek");
    for (i, path) in [golden_catalog(), repo_root().join("deploy/catalog.example.toml")].into_iter().enumerate() {
        let doc = read_doc(&path).unwrap();
        let beside = FilesBeside(path.parent().unwrap());
        let a = Arc::new(Database::open(&format!("sqlite://{}", dir.join(format!("a{i}/c.db")).display()), &kek).await.unwrap());
        let r = a.import(&doc, &beside, &actor("test")).await.unwrap();
        assert_eq!(r.created.iter().filter(|(e, _)| e == "asset").count(), doc.assets.len(), "{}: {r}", path.display());
        let b = Arc::new(Database::open(&format!("sqlite://{}", dir.join(format!("b{i}/c.db")).display()), &kek).await.unwrap());
        let exported: CatalogDoc = toml::from_str(&toml::to_string(&a.export(true).await.unwrap()).unwrap()).unwrap();
        b.import(&exported, &FilesBeside(&dir), &actor("test")).await.unwrap();
        assert_eq!(toml::to_string(&a.export(false).await.unwrap()).unwrap(), toml::to_string(&b.export(false).await.unwrap()).unwrap());
        let from_db = DbCatalog::start(b, None, Duration::from_secs(1), false).await.unwrap();
        let from_toml = TomlCatalog::load(&path).unwrap();
        for (asset, p) in from_toml.assets() {
            let q = from_db.policy(&asset).unwrap_or_else(|| panic!("{asset} missing"));
            assert_eq!((p.dash, p.hls, p.smooth, p.clear_lead_secs, p.carry_token), (q.dash, q.hls, q.smooth, q.clear_lead_secs, q.carry_token), "{asset}");
            assert_eq!(p.license, q.license, "{asset}");
            assert_eq!(p.keys, q.keys, "{asset}: keys");
            assert_eq!(p.storage, q.storage, "{asset}: storage");
            assert_eq!(p.cpix.is_some(), q.cpix.is_some(), "{asset}: cpix");
            for k in &p.keys {
                let (x, y) = (from_toml.key(k.kid()).unwrap(), from_db.key(k.kid()).unwrap());
                assert_eq!(x.key, y.key);
                assert_eq!(format!("{:?}", x.policy), format!("{:?}", y.policy), "{asset}: authorization of {}", k.kid());
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Access policies (signed URLs) live in the database like the rest: sealed (EdgeAuth keys are
/// secrets), rules by prefix, an asset's own policy; same decisions as the TOML store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_policies_in_the_database() {
    let dir = temp("access");
    let kek = local_kek(&dir, "kek");
    let text = r#"
[access.open]
mode = "open"
[access.ea]
mode = "signed"
edgeauth = { keys = ["52a152a152a152a152a152a152a152a1"] }
[[access_rule]]
prefix = "vod"
access = "ea"
[[access_rule]]
prefix = "vod/free"
access = "open"
[[asset]]
path = "vod/free/paid"
access = "ea"
dash = "NoDynamicEncryption"
"#;
    let file = dir.join("c.toml");
    std::fs::write(&file, text).unwrap();
    let doc = read_doc(&file).unwrap();
    let db_dir = dir.join("db");
    let db = Arc::new(Database::open(&format!("sqlite://{}", db_dir.join("c.db").display()), &kek).await.unwrap());
    db.import(&doc, &FilesBeside(&dir), &actor("test")).await.unwrap();
    assert!(db.import(&doc, &FilesBeside(&dir), &actor("test")).await.unwrap().created.is_empty(), "not idempotent");
    let cat = DbCatalog::start(db.clone(), None, Duration::from_secs(1), false).await.unwrap();
    let toml = TomlCatalog::load(&file).unwrap();
    for p in ["vod/movie", "VOD/Movie", "vod/free/x", "vod/free/paid", "vodka/x", "other"] {
        assert_eq!(cat.access(p).map(|a| a.is_signed()), toml.access(p).map(|a| a.is_signed()), "{p}");
    }
    assert_eq!(cat.access("vod/movie").map(|a| a.is_signed()), Some(true));
    // The EdgeAuth key is sealed in the database and left out of a keyless export.
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(&db_dir).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    assert!(!contains(&bytes, b"52a152a152a152a1"), "an EdgeAuth key in the database");
    let bare = toml::to_string(&db.export(false).await.unwrap()).unwrap();
    assert!(!bare.contains("52a152a1") && bare.contains("access_rule"), "{bare}");
    // Round trip with keys into a second database.
    let b = Arc::new(Database::open(&format!("sqlite://{}", dir.join("b/c.db").display()), &kek).await.unwrap());
    let sealed: CatalogDoc = toml::from_str(&toml::to_string(&db.export(true).await.unwrap()).unwrap()).unwrap();
    b.import(&sealed, &FilesBeside(&dir), &actor("test")).await.unwrap();
    let cat_b = DbCatalog::start(b, None, Duration::from_secs(1), false).await.unwrap();
    assert_eq!(cat_b.access("vod/free/paid").map(|a| a.is_signed()), Some(true));
    assert_eq!(cat_b.access("vod/free/x").map(|a| a.is_signed()), Some(false));
    std::fs::remove_dir_all(dir).unwrap();
}
