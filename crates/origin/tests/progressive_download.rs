//! Progressive download (issue 15) over HTTP: a track file served as a file, by every URL
//! form, under every kind of delivery policy. The expected answer of each row comes from the
//! rule as written here (Azure Media Services' `ProgressiveDownload` protocol, failing
//! closed), not from the server's decision function; a served body must be the file's bytes,
//! whole or ranged, and a storage-encrypted file must leave decrypted.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::{apply_storage_encryption, TomlCatalog};
use sealcast_origin::config::Config;
use sealcast_origin::ingest::{self, IngestArgs, Publish};
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

const ASSET: &str = "progressive/faststart";
const FILE: &str = "movie.mp4";
const KEYS: &str = r#"keys = [{ kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" }]"#;

async fn get(st: &Arc<AppState>, uri: &str, headers: &[(header::HeaderName, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(uri);
    for (k, v) in headers {
        req = req.header(k, *v);
    }
    let r = router(st.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sealcast-download-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A server over the fixtures with `catalog` (TOML text; `None`: no catalog) and the AMS
/// locator `locp` naming the asset.
fn state(dir: &std::path::Path, tag: &str, catalog: Option<String>, allow_clear: bool) -> Arc<AppState> {
    let fx = sealcast_testkit::fixtures_dir();
    let mut cfg = Config { root: fx.clone(), allow_clear_without_policy: allow_clear, ..Config::default() };
    cfg.locators.insert("locp".into(), ASSET.into());
    match catalog {
        Some(text) => {
            let p = dir.join(format!("{tag}.toml"));
            std::fs::write(&p, text).unwrap();
            let t = Arc::new(TomlCatalog::load(&p).unwrap());
            AppState::with_parts(&cfg, Store::local(&fx).unwrap(), t.clone(), Some(t))
        }
        None => AppState::with_store(&cfg, Store::local(&fx).unwrap()),
    }
}

/// One row: a policy (its TOML lines; `None`: no policy), allow_clear, and whether a download
/// is served — by the rule: with a policy, only when it names ProgressiveDownload (whatever it
/// says of the streaming protocols); without one, only when clear output is allowed.
struct Row {
    what: &'static str,
    policy: Option<&'static str>,
    allow_clear: bool,
}

impl Row {
    fn served(&self) -> bool {
        match self.policy {
            Some(p) => p.contains("progressive_download = true"),
            None => self.allow_clear,
        }
    }
}

const ROWS: [Row; 7] = [
    Row { what: "no policy, clear allowed", policy: None, allow_clear: true },
    Row { what: "no policy, clear not allowed", policy: None, allow_clear: false },
    Row { what: "protected streaming, no download flag", policy: Some("dash = \"DynamicCommonEncryption\"\nhls = \"DynamicCommonEncryption\"\n"), allow_clear: true },
    Row { what: "clear streaming, no download flag", policy: Some("dash = \"NoDynamicEncryption\"\nhls = \"NoDynamicEncryption\"\nsmooth = \"NoDynamicEncryption\"\n"), allow_clear: true },
    Row { what: "empty policy, no download flag", policy: Some(""), allow_clear: true },
    Row { what: "download flag only", policy: Some("progressive_download = true\n"), allow_clear: false },
    Row { what: "protected streaming plus download", policy: Some("dash = \"DynamicCommonEncryption\"\nprogressive_download = true\n"), allow_clear: false },
];

#[tokio::test]
async fn download_follows_the_policy_table_by_every_url_form() {
    let dir = temp("table");
    let file = std::fs::read(sealcast_testkit::fixtures_dir().join(ASSET).join(FILE)).unwrap();
    for (i, row) in ROWS.iter().enumerate() {
        let catalog = row.policy.map(|p| format!("[[asset]]\npath = \"{ASSET}\"\n{p}{KEYS}\n"));
        let st = state(&dir, &format!("row{i}"), catalog, row.allow_clear);
        for uri in [format!("/{ASSET}/{FILE}"), format!("/locp/{FILE}")] {
            let (status, h, body) = get(&st, &uri, &[]).await;
            if row.served() {
                assert_eq!(status, StatusCode::OK, "{}: {uri}", row.what);
                assert!(body == file, "{}: {uri}: body is not the file", row.what);
                assert_eq!(h[header::CONTENT_TYPE], "video/mp4");
                assert_eq!(h[header::ACCEPT_RANGES], "bytes");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{}: {uri}: {}", row.what, String::from_utf8_lossy(&body));
                assert!(!body.windows(4).any(|w| w == b"moov"), "{}: {uri}: a refusal carries no file bytes", row.what);
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn ranges_etags_and_conditionals() {
    let dir = temp("range");
    let st = state(&dir, "clear", None, true);
    let file = std::fs::read(sealcast_testkit::fixtures_dir().join(ASSET).join(FILE)).unwrap();
    let len = file.len();
    let uri = format!("/{ASSET}/{FILE}");
    let (_, h, _) = get(&st, &uri, &[]).await;
    let tag = h[header::ETAG].to_str().unwrap().to_string();
    // Same ETag by the AMS form: one file, one entity.
    assert_eq!(get(&st, &format!("/locp/{FILE}"), &[]).await.1[header::ETAG].to_str().unwrap(), tag);
    for (range, s, e) in [("bytes=0-99", 0, 100), ("bytes=1000-", 1000, len), ("bytes=-500", len - 500, len), (&format!("bytes=100-{}", len + 50) as &str, 100, len)] {
        let (status, h, body) = get(&st, &uri, &[(header::RANGE, range)]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(h[header::CONTENT_RANGE].to_str().unwrap(), format!("bytes {s}-{}/{len}", e - 1), "{range}");
        assert!(body == file[s..e], "{range}: wrong bytes");
    }
    let (status, h, _) = get(&st, &uri, &[(header::RANGE, &format!("bytes={}-", len + 10))]).await;
    assert_eq!((status, h[header::CONTENT_RANGE].to_str().unwrap()), (StatusCode::RANGE_NOT_SATISFIABLE, format!("bytes */{len}").as_str()));
    assert_eq!(get(&st, &uri, &[(header::IF_NONE_MATCH, &tag)]).await.0, StatusCode::NOT_MODIFIED);
    // If-Range with another entity: the whole file, not the range.
    let (status, _, body) = get(&st, &uri, &[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"other\"")]).await;
    assert_eq!((status, body.len()), (StatusCode::OK, len));
    // Not a track file of the asset, or a track's init segment name: not a download.
    assert_eq!(get(&st, &format!("/{ASSET}/other.mp4"), &[]).await.0, StatusCode::NOT_FOUND);
    assert_ne!(get(&st, "/demo/demo.ism", &[]).await.0, StatusCode::OK);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn storage_encrypted_files_download_decrypted_only_with_the_flag() {
    let root = temp("enc");
    let store_root = root.join("store");
    std::fs::create_dir_all(&store_root).unwrap();
    let catalog = root.join("catalog.toml");
    let src = sealcast_testkit::fixtures_dir().join(ASSET).join(FILE);
    let args = IngestArgs { files: vec![src.clone()], asset: "vod/prog".into(), encrypt: true, catalog: Some(sealcast_origin::ingest::RecordIn::Toml(catalog.clone())), publish: Publish::clear() };
    ingest::run(&Store::local(&store_root).unwrap(), &args).await.unwrap();
    let clear = std::fs::read(&src).unwrap();
    assert_ne!(std::fs::read(store_root.join("vod/prog").join(FILE)).unwrap(), clear, "stored encrypted");
    let text = std::fs::read_to_string(&catalog).unwrap();
    for flag in [false, true] {
        let text = if flag { text.replacen("path = \"vod/prog\"\n", "path = \"vod/prog\"\nprogressive_download = true\n", 1) } else { text.clone() };
        assert_eq!(text.contains("progressive_download = true"), flag, "catalog layout changed: {text}");
        let p = root.join(format!("catalog-{flag}.toml"));
        std::fs::write(&p, &text).unwrap();
        let cat = Arc::new(TomlCatalog::load(&p).unwrap());
        let store = Store::local(&store_root).unwrap();
        apply_storage_encryption(&cat, &store).unwrap();
        let st = AppState::with_parts(&Config { root: store_root.clone(), ..Config::default() }, store, cat.clone(), Some(cat));
        let (status, _, body) = get(&st, &format!("/vod/prog/{FILE}"), &[]).await;
        if flag {
            assert_eq!(status, StatusCode::OK);
            assert!(body == clear, "downloaded bytes are not the clear file");
            let (status, _, part) = get(&st, &format!("/vod/prog/{FILE}"), &[(header::RANGE, "bytes=5000-5999")]).await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT);
            assert!(part == clear[5000..6000], "a range from the middle decrypts on its own");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
    }
    std::fs::remove_dir_all(root).unwrap();
}
