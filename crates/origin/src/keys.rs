//! The key delivery service and the W3C ClearKey licence server.
//!
//! * `GET /key/{kid}`: the 16 key bytes (`application/octet-stream`, `Cache-Control:
//!   no-store`), for HLS AES-128 and SAMPLE-AES `identity` key URIs.
//! * `POST /clearkey`: EME ClearKey licence (`{"kids":[…],"type":…}` →
//!   `{"keys":[{"kty":"oct","k":…,"kid":…}],"type":…}`), every requested key checked.
//!
//! A key is handed out only when its authorization policy passes (`Open`, or a valid JWT/SWT
//! token, see [`sealcast_drm::auth`]); keys without a policy, and storage keys, never are.
//! Tokens come from `Authorization: Bearer …` or a `token` query parameter (HLS players
//! cannot set headers). Refusals are 401 (no or bad token) or 403 (valid token, no right to
//! this key) with a fixed reason, never the token, in the body and the log, and a counter per
//! reason in [`crate::metrics`].

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use sealcast_drm::auth::{AuthorizationPolicy, Granted, Refusal};
use sealcast_drm::{KeyKind, Kid};

use crate::catalog::KeyGrant;
use crate::server::AppState;

/// The token of a request: the bearer token, else the `token` query parameter.
pub fn request_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim().to_string());
        }
    }
    query_token(query)
}

/// The `token` query parameter, percent-decoded.
pub fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
    })
}

/// Why a key is not handed out.
enum Denied {
    /// No such key (or a storage key, which is never delivered).
    Unknown,
    /// The key has no authorization policy.
    NoPolicy,
    /// The policy refused the token.
    Refused(Refusal),
}

impl Denied {
    fn status(&self) -> StatusCode {
        match self {
            Denied::Unknown => StatusCode::NOT_FOUND,
            Denied::NoPolicy => StatusCode::FORBIDDEN,
            Denied::Refused(r) => StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED),
        }
    }
    fn reason(&self) -> &'static str {
        match self {
            Denied::Unknown => "unknown_key",
            Denied::NoPolicy => "no_policy",
            Denied::Refused(r) => r.reason(),
        }
    }
}

/// Checks that `token` may receive `kid`. `checked` remembers, per policy, what the token was
/// found to grant, so a request for several keys checks its token once per policy (one
/// signature check and one set of claims for a ClearKey licence of many keys), not once per
/// key.
fn grant(st: &AppState, kid: Kid, token: Option<&str>, checked: &mut Vec<(Arc<AuthorizationPolicy>, Result<Granted, Refusal>)>) -> Result<KeyGrant, Denied> {
    let g = st.catalog.key(kid).filter(|g| g.key.kind() != KeyKind::StorageEncryption).ok_or(Denied::Unknown)?;
    let policy = g.policy.as_ref().ok_or(Denied::NoPolicy)?;
    let granted = match checked.iter().find(|(p, _)| Arc::ptr_eq(p, policy)) {
        Some((_, r)) => r.clone(),
        None => {
            if matches!(**policy, AuthorizationPolicy::TokenRestricted(_)) {
                st.metrics.token_checked();
            }
            let r = policy.check_token(token, st.now_unix());
            checked.push((policy.clone(), r.clone()));
            r
        }
    };
    granted.and_then(|g| g.permits(kid)).map_err(Denied::Refused)?;
    Ok(g)
}

fn refuse(st: &AppState, what: &'static str, kid: Option<Kid>, d: &Denied) -> Response {
    st.metrics.key_refused(what, d.reason());
    // KIDs are public; the token is never logged.
    tracing::info!(service = what, kid = %kid.map(|k| k.to_hex()).unwrap_or_default(), reason = d.reason(), status = d.status().as_u16(), "key refused");
    let body = serde_json::json!({ "error": d.reason(), "message": match d {
        Denied::Unknown => "no such key",
        Denied::NoPolicy => "this key is not delivered",
        Denied::Refused(r) if r.status() == 401 => "a valid token is required",
        Denied::Refused(_) => "the token does not grant this key",
    }});
    let mut r = (d.status(), body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if d.status() == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

fn no_store(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    let mut r = (status, body.into()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /key/{kid}` (`HEAD` answers the same headers).
pub fn key_route(st: &AppState, headers: &HeaderMap, query: Option<&str>, kid: &str) -> Response {
    let Ok(kid) = Kid::parse(kid) else {
        return refuse(st, "key", None, &Denied::Unknown);
    };
    let token = request_token(headers, query);
    match grant(st, kid, token.as_deref(), &mut Vec::new()) {
        Ok(g) => match g.key.aes128_bytes() {
            Ok(k) => {
                st.metrics.key_delivered("key");
                no_store(StatusCode::OK, "application/octet-stream", Bytes::copy_from_slice(k))
            }
            Err(_) => refuse(st, "key", Some(kid), &Denied::Unknown),
        },
        Err(d) => refuse(st, "key", Some(kid), &d),
    }
}

/// `POST /clearkey`: a ClearKey licence for every requested KID, or a refusal for the first
/// one that may not be had.
pub fn clearkey_route(st: &AppState, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Response {
    let req = match sealcast_drm::clearkey::parse_license_request(body) {
        Ok(r) => r,
        Err(e) => {
            st.metrics.key_refused("clearkey", "bad_request");
            let body = serde_json::json!({ "error": "bad_request", "message": e.to_string() });
            return no_store(StatusCode::BAD_REQUEST, "application/json", body.to_string());
        }
    };
    let token = request_token(headers, query);
    let mut keys = Vec::with_capacity(req.kids.len());
    let mut checked = Vec::new();
    for &kid in &req.kids {
        match grant(st, kid, token.as_deref(), &mut checked) {
            Ok(g) => keys.push(g.key),
            Err(d) => return refuse(st, "clearkey", Some(kid), &d),
        }
    }
    match sealcast_drm::clearkey::license_response(keys.iter(), req.session_type) {
        Ok(json) => {
            st.metrics.key_delivered("clearkey");
            no_store(StatusCode::OK, "application/json", json)
        }
        Err(_) => refuse(st, "clearkey", None, &Denied::Unknown),
    }
}
