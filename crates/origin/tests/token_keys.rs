//! Token checks at the HTTP level: a ClearKey licence for several keys checks its token once
//! (counted by `/metrics`' `sealcast_token_checks_total`), and a policy with several JWT keys
//! of one algorithm refuses a token that does not name its key (`kid`).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

const NOW: u64 = 1_900_000_000;
/// HS256 secrets: the one key of `viewers`, and the old and new keys of `rotating`.
const SECRET: &[u8] = b"sealcast-test-secret-32-bytes!!";
const NEW_SECRET: &[u8] = b"sealcast-rotated-secret-32bytes!";

fn catalog() -> String {
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        r#"
[authorization.viewers]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "https://sts.example"
audience = "urn:sealcast"
keys = [ {{ symmetric = "{one}" }} ]

[authorization.rotating]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "https://sts.example"
audience = "urn:sealcast"
keys = [ {{ symmetric = "{one}", kid = "2026-old" }}, {{ symmetric = "{new}", kid = "2026-new" }} ]

[[asset]]
path = "three"
dash = "DynamicCommonEncryption"
authorization = "viewers"
keys = [
  {{ kid = "abba271e8bcf552bbd2e86a434a9a5d1", key = "69eaa802a6763af979e8d1940fb88391" }},
  {{ kid = "abba271e8bcf552bbd2e86a434a9a5d2", key = "69eaa802a6763af979e8d1940fb88392" }},
  {{ kid = "abba271e8bcf552bbd2e86a434a9a5d3", key = "69eaa802a6763af979e8d1940fb88393" }},
]

[[asset]]
path = "rotated"
dash = "DynamicCommonEncryption"
authorization = "rotating"
keys = [ {{ kid = "abba271e8bcf552bbd2e86a434a9a5e1", key = "69eaa802a6763af979e8d1940fb883a1" }} ]
"#,
        one = b64(SECRET),
        new = b64(NEW_SECRET)
    )
}

fn jwt(secret: &[u8], kid: Option<&str>) -> String {
    let claims = serde_json::json!({ "iss": "https://sts.example", "aud": "urn:sealcast", "exp": NOW + 600, "sub": "viewer" });
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(secret).unwrap()).unwrap()
}

fn state(name: &str) -> (Arc<AppState>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("sealcast-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cat = dir.join("catalog.toml");
    std::fs::write(&cat, catalog()).unwrap();
    let fx = sealcast_testkit::fixtures_dir();
    let cfg = Config { root: fx.clone(), catalog: Some(cat.clone()), ..Config::default() };
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    let st = AppState::with_parts(&cfg, Store::local(&fx).unwrap(), toml.clone(), Some(toml)).with_clock(Arc::new(|| UNIX_EPOCH + Duration::from_secs(NOW)));
    (st, dir)
}

async fn clearkey(st: &Arc<AppState>, token: &str, kids: &[&str]) -> (StatusCode, String) {
    use base64::Engine as _;
    let kids: Vec<String> = kids.iter().map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex(k))).collect();
    let body = serde_json::json!({ "kids": kids, "type": "temporary" }).to_string();
    let req = Request::post("/clearkey").header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::from(body)).unwrap();
    let r = router(st.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    (status, String::from_utf8_lossy(&r.into_body().collect().await.unwrap().to_bytes()).into_owned())
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test]
async fn a_clearkey_licence_for_three_keys_checks_its_token_once() {
    let (st, dir) = state("ck-once");
    let kids = ["abba271e8bcf552bbd2e86a434a9a5d1", "abba271e8bcf552bbd2e86a434a9a5d2", "abba271e8bcf552bbd2e86a434a9a5d3"];
    let (status, body) = clearkey(&st, &jwt(SECRET, None), &kids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.matches("\"kty\"").count(), 3, "{body}");
    assert_eq!(st.metrics.token_checks(), 1, "one token check per licence, not one per key");
    // A bad token is refused after one check too.
    let (status, _) = clearkey(&st, &jwt(NEW_SECRET, None), &kids).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(st.metrics.token_checks(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn several_keys_of_one_algorithm_need_a_kid_in_the_token() {
    let (st, dir) = state("ck-kid");
    let key = |token: String| {
        let req = Request::get("/key/abba271e8bcf552bbd2e86a434a9a5e1").header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
        router(st.clone()).oneshot(req)
    };
    let r = key(jwt(NEW_SECRET, None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("token_kid_missing"), "{body:?}");
    assert_eq!(key(jwt(NEW_SECRET, Some("2026-new"))).await.unwrap().status(), StatusCode::OK);
    assert_eq!(key(jwt(SECRET, Some("2026-old"))).await.unwrap().status(), StatusCode::OK);
    assert_eq!(key(jwt(SECRET, Some("2026-new"))).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let (status, body) = clearkey(&st, &jwt(SECRET, None), &["abba271e8bcf552bbd2e86a434a9a5e1"]).await;
    assert_eq!((status, body.contains("token_kid_missing")), (StatusCode::UNAUTHORIZED, true), "{body}");
    std::fs::remove_dir_all(dir).unwrap();
}
