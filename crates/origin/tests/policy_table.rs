//! The delivery-policy table over HTTP: every combination of per-protocol policies × every URL
//! form (clean, encrypted paths, AMS forms, Smooth) answers clear, encrypted or 403 exactly as
//! the rule says, and no clear byte of a protected protocol is ever served. The expected answers
//! come from the rule as written here, not from the server's decision function.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum D {
    Clear,
    Cenc,
    Cbcs,
    Aes,
}

impl D {
    fn toml(self) -> &'static str {
        match self {
            D::Clear => "NoDynamicEncryption",
            D::Cenc => "DynamicCommonEncryption",
            D::Cbcs => "DynamicCommonEncryptionCbcs",
            D::Aes => "DynamicEnvelopeEncryption",
        }
    }
    fn path(self) -> &'static str {
        match self {
            D::Clear => "",
            D::Cenc => "cenc",
            D::Cbcs => "cbcs",
            D::Aes => "aes",
        }
    }
}

const KEYS: &str = r#"keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5db", key = "69eaa802a6763af979e8d1940fb88394", kind = "CommonEncryptionCbcs" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5dc", key = "69eaa802a6763af979e8d1940fb88395", kind = "EnvelopeEncryption" },
]
"#;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, body.collect().await.unwrap().to_bytes().to_vec())
}

fn state(dir: &std::path::Path, tag: &str, catalog: Option<String>) -> Arc<AppState> {
    let fx = sealcast_testkit::fixtures_dir();
    let mut cfg = Config { root: fx.clone(), allow_clear_without_policy: true, ..Config::default() };
    cfg.locators.insert("loc1".into(), "demo".into());
    let toml = catalog.map(|text| {
        let p = dir.join(format!("{tag}.toml"));
        std::fs::write(&p, text).unwrap();
        Arc::new(TomlCatalog::load(&p).unwrap())
    });
    match toml {
        Some(t) => AppState::with_parts(&cfg, Store::local(&fx).unwrap(), t.clone(), Some(t)),
        None => AppState::with_store(&cfg, Store::local(&fx).unwrap()),
    }
}

/// What a URL is: the protocols it serves, its method path segment, and what it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Mpd,
    Master,
    MasterTs,
    Smooth,
    Fragment,
    /// Track file under `{track}/{method}/` (`None`: the clear path): name.
    Track(Option<D>, &'static str),
}

fn urls() -> Vec<(String, Kind)> {
    let mut v: Vec<(String, Kind)> = vec![
        ("/demo/manifest.mpd".into(), Kind::Mpd),
        ("/loc1/demo.ism/manifest(format=mpd-time-csf)".into(), Kind::Mpd),
        ("/demo/master.m3u8".into(), Kind::Master),
        ("/loc1/demo.ism/manifest(format=m3u8-cmaf)".into(), Kind::Master),
        ("/demo/master-ts.m3u8".into(), Kind::MasterTs),
        ("/loc1/demo.ism/manifest(format=m3u8-aapl)".into(), Kind::MasterTs),
        ("/demo/Manifest".into(), Kind::Smooth),
        ("/loc1/demo.ism/manifest".into(), Kind::Smooth),
        ("/demo/QualityLevels(125684)/Fragments(video=0)".into(), Kind::Fragment),
        ("/loc1/demo.ism/QualityLevels(125684)/Fragments(video=0)".into(), Kind::Fragment),
    ];
    for m in [None, Some(D::Cenc), Some(D::Cbcs), Some(D::Aes)] {
        for f in ["init.mp4", "2.m4s", "2.ts", "index.m3u8", "ts.m3u8", "iframes.m3u8", "iframes-ts.m3u8", "i2.m4s", "i2.ts"] {
            let mid = m.map_or(String::new(), |m| format!("{}/", m.path()));
            v.push((format!("/demo/video_180p/{mid}{f}"), Kind::Track(m, f)));
            if f == "2.m4s" {
                v.push((format!("/loc1/demo.ism/video_180p/{mid}{f}"), Kind::Track(m, f)));
            }
        }
    }
    v
}

/// The rule: `Some(encrypted?)` when served, `None` when refused.
fn expected(kind: Kind, dash: Option<D>, hls: Option<D>, smooth: Option<D>) -> Option<bool> {
    let served = |d: Option<D>| d.map(|d| d != D::Clear);
    match kind {
        Kind::Mpd => served(dash),
        Kind::Master => served(hls),
        // TS has no cenc (no SAMPLE-AES-CTR in HLS TS).
        Kind::MasterTs => served(hls).filter(|_| hls != Some(D::Cenc)),
        // Smooth protection is PIFF: cenc only.
        Kind::Smooth | Kind::Fragment => served(smooth).filter(|_| matches!(smooth, Some(D::Clear | D::Cenc))),
        Kind::Track(m, f) => {
            // I-frame playlists and segments (HLS only) follow their media twins.
            let iframe = f.starts_with('i') && f != "init.mp4" && f != "index.m3u8";
            let f = match f {
                "iframes.m3u8" => "index.m3u8",
                "iframes-ts.m3u8" => "ts.m3u8",
                f => f.strip_prefix('i').filter(|_| iframe).unwrap_or(f),
            };
            let hls_only = iframe || f.ends_with(".m3u8") || f.ends_with(".ts") || m == Some(D::Aes);
            let protos: Vec<Option<D>> = if hls_only { vec![hls] } else { vec![dash, hls] };
            match m {
                None => protos.contains(&Some(D::Clear)).then_some(false),
                Some(m) => {
                    if !protos.contains(&Some(m)) || (m == D::Cenc && f.starts_with("ts")) || (m == D::Cenc && f.ends_with(".ts")) {
                        return None;
                    }
                    // AES-128 leaves the init segment clear (the key tags follow EXT-X-MAP).
                    Some(!(m == D::Aes && f == "init.mp4"))
                }
            }
        }
    }
}

#[tokio::test]
async fn every_policy_combination_times_every_url_form() {
    let dir = std::env::temp_dir().join(format!("sealcast-policy-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Clear references: the same URLs with no policy at all.
    let clear = state(&dir, "none", None);
    let mut clear_bytes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (u, kind) in urls() {
        if matches!(kind, Kind::Track(None, _) | Kind::Fragment | Kind::Mpd | Kind::Master | Kind::MasterTs | Kind::Smooth) {
            let (s, b) = get(&clear, &u).await;
            assert_eq!(s, StatusCode::OK, "{u}");
            clear_bytes.insert(u, b);
        }
    }
    let clear_of = |u: &str| -> Option<&Vec<u8>> {
        // An encrypted track URL's clear twin drops the method segment.
        let twin = ["cenc/", "cbcs/", "aes/"].iter().fold(u.to_string(), |acc, m| acc.replace(m, ""));
        clear_bytes.get(&twin)
    };
    let dash_opts = [None, Some(D::Clear), Some(D::Cenc), Some(D::Cbcs)];
    let hls_opts = [None, Some(D::Clear), Some(D::Cenc), Some(D::Cbcs), Some(D::Aes)];
    let mut checked = 0;
    for dash in dash_opts {
        for hls in hls_opts {
            for smooth in dash_opts {
                let line = |p: &str, d: Option<D>| d.map_or(String::new(), |d| format!("{p} = \"{}\"\n", d.toml()));
                let text = format!("[[asset]]\npath = \"demo\"\n{}{}{}{KEYS}", line("dash", dash), line("hls", hls), line("smooth", smooth));
                let st = state(&dir, &format!("{dash:?}{hls:?}{smooth:?}"), Some(text));
                for (u, kind) in urls() {
                    let (s, body) = get(&st, &u).await;
                    let want = expected(kind, dash, hls, smooth);
                    let ctx = format!("{u} under dash={dash:?} hls={hls:?} smooth={smooth:?}: {s} {}", String::from_utf8_lossy(&body[..body.len().min(200)]));
                    match want {
                        None => assert_eq!(s, StatusCode::FORBIDDEN, "{ctx}"),
                        Some(encrypted) => {
                            assert_eq!(s, StatusCode::OK, "{ctx}");
                            let text = String::from_utf8_lossy(&body);
                            match kind {
                                Kind::Mpd => assert_eq!(text.contains("<ContentProtection"), encrypted, "{ctx}"),
                                Kind::Master | Kind::MasterTs => assert_eq!(["/cenc/", "/cbcs/", "/aes/"].iter().any(|m| text.contains(m)), encrypted, "{ctx}"),
                                Kind::Smooth => assert_eq!(text.contains("<Protection>"), encrypted, "{ctx}"),
                                Kind::Track(_, f) if f.ends_with(".m3u8") => assert_eq!(text.contains("#EXT-X-KEY"), encrypted, "{ctx}"),
                                _ => {
                                    let twin = clear_of(&u).expect("clear twin");
                                    // Encrypted: never the clear bytes (and for media, never the
                                    // clear mdat: the clear segment's last 4 KiB appear nowhere).
                                    if encrypted {
                                        assert_ne!(&body, twin, "{ctx}");
                                        if twin.len() > 8192 {
                                            let tail = &twin[twin.len() - 4096..];
                                            assert!(!body.windows(tail.len()).any(|w| w == tail), "clear media bytes in {ctx}");
                                        }
                                    } else {
                                        assert_eq!(&body, twin, "{ctx}");
                                    }
                                }
                            }
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 80 * urls().len());
    std::fs::remove_dir_all(dir).unwrap();
}
