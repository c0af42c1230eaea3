//! Token expiry, not-before and clock skew checked at the HTTP level, with the server's
//! clock set by the test (the server reads time only from its state).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use http::{header, Request, StatusCode};
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

const CATALOG: &str = r#"
[authorization.viewers]
type = "TokenRestricted"
token_type = "Jwt"
issuer = "https://sts.example"
audience = "urn:sealcast"
keys = [ { symmetric = "c2VhbGNhc3QtdGVzdC1zZWNyZXQtMzItYnl0ZXMhIQ==" } ]
skew_secs = 30

[[asset]]
path = "demo"
hls = "DynamicEnvelopeEncryption"
authorization = "viewers"
keys = [ { kid = "abba271e8bcf552bbd2e86a434a9a5e1", key = "69eaa802a6763af979e8d1940fb88396", kind = "EnvelopeEncryption" } ]
"#;

/// A token valid in `[nbf, exp)` (seconds since the epoch).
fn jwt(nbf: u64, exp: u64) -> String {
    let claims = serde_json::json!({ "iss": "https://sts.example", "aud": "urn:sealcast", "nbf": nbf, "exp": exp, "sub": "viewer" });
    let key = jsonwebtoken::EncodingKey::from_secret(b"sealcast-test-secret-32-bytes!!").unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn token_validity_follows_the_server_clock() {
    let dir = std::env::temp_dir().join(format!("sealcast-clock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cat = dir.join("catalog.toml");
    std::fs::write(&cat, CATALOG).unwrap();
    let fx = sealcast_testkit::fixtures_dir();
    let cfg = Config { root: fx.clone(), catalog: Some(cat.clone()), ..Config::default() };
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    let now = Arc::new(AtomicU64::new(0));
    let clock = now.clone();
    let st = AppState::with_parts(&cfg, Store::local(&fx).unwrap(), toml.clone(), Some(toml)).with_clock(Arc::new(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst))));
    // Valid from t = 1000 to t = 2000, with 30 s of skew either side.
    let token = jwt(1_000, 2_000);
    let key_at = |t: u64| {
        now.store(t, Ordering::SeqCst);
        let req = Request::get("/key/abba271e8bcf552bbd2e86a434a9a5e1").header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty()).unwrap();
        router(st.clone()).oneshot(req)
    };
    for (t, want) in [
        (900, StatusCode::UNAUTHORIZED),  // before nbf - skew
        (969, StatusCode::UNAUTHORIZED),  // one second before the skew window opens
        (970, StatusCode::OK),            // nbf - skew
        (1_500, StatusCode::OK),
        (2_029, StatusCode::OK),          // exp + skew - 1
        (2_030, StatusCode::UNAUTHORIZED), // exp + skew: expired
        (5_000, StatusCode::UNAUTHORIZED),
    ] {
        let r = key_at(t).await.unwrap();
        assert_eq!(r.status(), want, "at t = {t}");
    }
    // The refusals were counted by reason.
    now.store(0, Ordering::SeqCst);
    let metrics = sealcast_origin::server::metrics_router(st.clone()).oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let body = http_body_util::BodyExt::collect(metrics.into_body()).await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("not_yet_valid") && text.contains("expired"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}
