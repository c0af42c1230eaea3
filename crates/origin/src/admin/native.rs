//! The native management API (`/v1`): small and ergonomic, on the same store and validation
//! as `sealcast catalog import` (every write is one validated, audited transaction), described
//! by an OpenAPI 3.1 document generated from this code at `/v1/openapi.json`.
//!
//! - `GET /v1/assets`, `GET|PUT|DELETE /v1/assets/{path}`: an asset's delivery policy per
//!   protocol, keys (hex on the way in, never out), licence URLs;
//! - `PUT /v1/assets/{path}/cpix`: its keys from a CPIX 2.3 document;
//! - `GET /v1/policies`, `PUT /v1/policies/{name}`: authorization policies (token keys are
//!   write-only);
//! - `GET /v1/locators`, `PUT|DELETE /v1/locators/{id}`: streaming locators with windows.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use super::Admin;
use crate::catalog::db::Actor;
use crate::catalog::doc::{AssetDoc, CatalogDoc, KeyDoc, KindDoc, LocatorDoc, Resolve, SecretText};
use crate::catalog::{Delivery, LicenseUrls};

/// An asset as the native API shows and takes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// Folder path under the storage root (read-only: the URL names it).
    #[serde(default, skip_deserializing)]
    pub path: String,
    /// DASH delivery: `NoDynamicEncryption`, `DynamicCommonEncryption`,
    /// `DynamicCommonEncryptionCbcs`; absent: blocked.
    pub dash: Option<String>,
    /// HLS delivery (also `DynamicEnvelopeEncryption`); absent: blocked.
    pub hls: Option<String>,
    /// Smooth Streaming delivery; absent: blocked.
    pub smooth: Option<String>,
    /// Seconds served clear at the start.
    #[serde(default)]
    pub clear_lead_secs: u32,
    /// Licence server URLs signalled in manifests.
    #[serde(default)]
    pub license: License,
    /// Content keys.
    #[serde(default)]
    pub keys: Vec<Key>,
    /// Default authorization policy of its keys.
    pub authorization: Option<String>,
    /// Carry a playlist's `token` query parameter into its key URIs.
    #[serde(default)]
    pub carry_token: bool,
    /// Track files downloadable (`/{path}/{file}.mp4`; AMS's ProgressiveDownload protocol).
    #[serde(default)]
    pub progressive_download: bool,
    /// Whether the keys came from a CPIX document (read-only).
    #[serde(default, skip_deserializing)]
    pub cpix: bool,
    /// Whether its files are stored encrypted (read-only; set by `sealcast ingest`).
    #[serde(default, skip_deserializing)]
    pub storage_encrypted: bool,
}

/// Licence server URLs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct License {
    pub widevine: Option<String>,
    pub playready: Option<String>,
    pub clearkey: Option<String>,
    pub fairplay: Option<String>,
    pub key_delivery: Option<String>,
}

/// A content key: `key` (32 hex digits) is write-only; leave it out to keep the stored one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub kid: String,
    #[serde(default, skip_serializing)]
    pub key: Option<String>,
    /// `CommonEncryption` (default), `CommonEncryptionCbcs` or `EnvelopeEncryption`.
    #[serde(default)]
    pub kind: Option<String>,
    pub authorization: Option<String>,
}

/// A streaming locator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Locator {
    /// Its ID (read-only: the URL names it).
    #[serde(default, skip_deserializing)]
    pub id: String,
    pub asset: String,
    /// RFC 3339; absent: open from now.
    pub start: Option<String>,
    /// RFC 3339; absent: never expires.
    pub expiry: Option<String>,
}

/// An authorization policy as listed (its keys are write-only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicySummary {
    pub name: String,
}

/// What a write did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WriteResult {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
}

/// An error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Error {
    /// What is wrong, naming the field.
    pub error: String,
}

#[utoipa::path(get, path = "/v1/assets", responses((status = 200, body = Vec<Asset>)), security(("bearer" = [])))]
#[allow(dead_code)]
fn list_assets() {}
#[utoipa::path(get, path = "/v1/assets/{path}", params(("path" = String, Path, description = "asset folder path")), responses((status = 200, body = Asset), (status = 404, body = Error)), security(("bearer" = [])))]
#[allow(dead_code)]
fn get_asset() {}
#[utoipa::path(put, path = "/v1/assets/{path}", params(("path" = String, Path, description = "asset folder path")), request_body = Asset, responses((status = 200, body = WriteResult), (status = 400, body = Error), (status = 409, body = Error)), security(("bearer" = [])))]
#[allow(dead_code)]
fn put_asset() {}
#[utoipa::path(delete, path = "/v1/assets/{path}", params(("path" = String, Path, description = "asset folder path")), responses((status = 204), (status = 404, body = Error)), security(("bearer" = [])))]
#[allow(dead_code)]
fn delete_asset() {}
#[utoipa::path(put, path = "/v1/assets/{path}/cpix", params(("path" = String, Path, description = "asset folder path")), request_body(content = String, content_type = "application/xml", description = "a CPIX 2.3 document"), responses((status = 200, body = WriteResult), (status = 400, body = Error)), security(("bearer" = [])))]
#[allow(dead_code)]
fn put_cpix() {}
#[utoipa::path(get, path = "/v1/policies", responses((status = 200, body = Vec<PolicySummary>)), security(("bearer" = [])))]
#[allow(dead_code)]
fn list_policies() {}
#[utoipa::path(put, path = "/v1/policies/{name}", params(("name" = String, Path)), request_body(content = Object, description = "`{\"type\":\"Open\"}` or `{\"type\":\"TokenRestricted\",\"token_type\":\"Jwt\",\"issuer\":…,\"audience\":…,\"keys\":[…]}`"), responses((status = 200, body = WriteResult), (status = 400, body = Error)), security(("bearer" = [])))]
#[allow(dead_code)]
fn put_policy() {}
#[utoipa::path(get, path = "/v1/locators", responses((status = 200, body = Vec<Locator>)), security(("bearer" = [])))]
#[allow(dead_code)]
fn list_locators() {}
#[utoipa::path(put, path = "/v1/locators/{id}", params(("id" = String, Path)), request_body = Locator, responses((status = 200, body = WriteResult), (status = 400, body = Error)), security(("bearer" = [])))]
#[allow(dead_code)]
fn put_locator() {}
#[utoipa::path(delete, path = "/v1/locators/{id}", params(("id" = String, Path)), responses((status = 204), (status = 404, body = Error)), security(("bearer" = [])))]
#[allow(dead_code)]
fn delete_locator() {}

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()));
    }
}

/// The OpenAPI document of `/v1`.
#[derive(OpenApi)]
#[openapi(
    info(title = "sealcast management API", description = "Assets, keys, authorization policies and locators of a sealcast origin. Bearer JWTs with a `role` claim: `read`, `write`."),
    paths(list_assets, get_asset, put_asset, delete_asset, put_cpix, list_policies, put_policy, list_locators, put_locator, delete_locator),
    components(schemas(Asset, License, Key, Locator, PolicySummary, WriteResult, Error)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = (status, json!({ "error": msg.into() }).to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn ok_json(status: StatusCode, v: impl Serialize) -> Response {
    let mut r = (status, serde_json::to_string(&v).unwrap_or_default()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A document's inline files (a CPIX body) for an import.
struct Inline(Option<String>);

impl Resolve for Inline {
    fn file(&self, rel: &str) -> std::io::Result<String> {
        match (&self.0, rel) {
            (Some(t), "request.cpix.xml") => Ok(t.clone()),
            _ => Err(std::io::Error::other("the native API names no files")),
        }
    }
    fn unwrap(&self, _: &str, _: &str) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
        anyhow::bail!("sealed values are not accepted here")
    }
}

fn delivery(field: &str, v: &Option<String>) -> Result<Option<Delivery>, String> {
    v.as_deref().map(|s| s.parse::<Delivery>().map_err(|e| format!("{field}: {e}"))).transpose()
}

fn kind(k: &Option<String>) -> Result<KindDoc, String> {
    match k.as_deref() {
        None | Some("CommonEncryption") => Ok(KindDoc::CommonEncryption),
        Some("CommonEncryptionCbcs") => Ok(KindDoc::CommonEncryptionCbcs),
        Some("EnvelopeEncryption") => Ok(KindDoc::EnvelopeEncryption),
        Some(o) => Err(format!("keys.kind: '{o}' is none of CommonEncryption, CommonEncryptionCbcs, EnvelopeEncryption")),
    }
}

fn shown(a: &AssetDoc) -> Asset {
    let kind = |k: KindDoc| match k {
        KindDoc::CommonEncryption => "CommonEncryption",
        KindDoc::CommonEncryptionCbcs => "CommonEncryptionCbcs",
        KindDoc::EnvelopeEncryption => "EnvelopeEncryption",
    };
    Asset {
        path: a.path.clone(),
        dash: a.dash.map(|d| d.as_str().into()),
        hls: a.hls.map(|d| d.as_str().into()),
        smooth: a.smooth.map(|d| d.as_str().into()),
        clear_lead_secs: a.clear_lead_secs,
        license: License { widevine: a.license.widevine.clone(), playready: a.license.playready.clone(), clearkey: a.license.clearkey.clone(), fairplay: a.license.fairplay.clone(), key_delivery: a.license.key_delivery.clone() },
        keys: a.keys.iter().map(|k| Key { kid: k.kid.clone(), key: None, kind: Some(kind(k.kind).into()), authorization: k.authorization.clone() }).collect(),
        authorization: a.authorization.clone(),
        carry_token: a.carry_token,
        progressive_download: a.progressive_download,
        cpix: a.cpix_wrapped.is_some(),
        storage_encrypted: a.storage.is_some(),
    }
}

async fn write(admin: &Admin, doc: CatalogDoc, files: Inline, actor: &Actor) -> Response {
    match admin.db.import(&doc, &files, actor).await {
        Ok(r) => ok_json(
            StatusCode::OK,
            WriteResult { created: r.created.iter().map(|(e, n)| format!("{e} {n}")).collect(), updated: r.updated.iter().map(|(e, n)| format!("{e} {n}")).collect(), unchanged: r.unchanged },
        ),
        // Validation errors name the entry and field; they never hold key bytes.
        Err(e) => error(StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}

/// Handles `/v1/…` (after the role check); `path` without `/v1/`.
pub(super) async fn handle(admin: &Admin, method: &Method, path: &str, body: &[u8], actor: &Actor) -> Response {
    // Sealed values stay inside: `shown` exposes only what is set, never a secret.
    let stored = || async { admin.db.export(true).await };
    let decode = |p: &str| percent_encoding::percent_decode_str(p).decode_utf8().map(|s| s.to_string()).unwrap_or_default();
    match (method.as_str(), path) {
        ("GET", "openapi.json") => ok_json(StatusCode::OK, ApiDoc::openapi()),
        ("GET", "assets") => match stored().await {
            Ok(d) => ok_json(StatusCode::OK, d.assets.iter().map(shown).collect::<Vec<_>>()),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        },
        ("PUT", p) if p.starts_with("assets/") && p.ends_with("/cpix") => {
            let asset = decode(&p["assets/".len()..p.len() - "/cpix".len()]);
            let Ok(xml) = String::from_utf8(body.to_vec()) else { return error(StatusCode::BAD_REQUEST, "body: not UTF-8 XML") };
            let Ok(d) = stored().await else { return error(StatusCode::INTERNAL_SERVER_ERROR, "reading the catalog") };
            let Some(mut a) = d.assets.into_iter().find(|a| a.path.eq_ignore_ascii_case(&asset)) else { return error(StatusCode::NOT_FOUND, format!("asset '{asset}' does not exist")) };
            a.keys.clear();
            a.cpix = Some("request.cpix.xml".into());
            a.cpix_wrapped = None;
            write(admin, CatalogDoc { assets: vec![a], keys_omitted: true, ..Default::default() }, Inline(Some(xml)), actor).await
        }
        ("GET", p) if p.starts_with("assets/") => {
            let asset = decode(&p["assets/".len()..]);
            match stored().await {
                Ok(d) => match d.assets.iter().find(|a| a.path.eq_ignore_ascii_case(&asset)) {
                    Some(a) => ok_json(StatusCode::OK, shown(a)),
                    None => error(StatusCode::NOT_FOUND, format!("asset '{asset}' does not exist")),
                },
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
            }
        }
        ("PUT", p) if p.starts_with("assets/") => {
            let asset = decode(&p["assets/".len()..]);
            let b: Asset = match serde_json::from_slice(body) {
                Ok(b) => b,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
            };
            let mut a = AssetDoc::new(&asset);
            for (slot, field, v) in [(&mut a.dash, "dash", &b.dash), (&mut a.hls, "hls", &b.hls), (&mut a.smooth, "smooth", &b.smooth)] {
                match delivery(field, v) {
                    Ok(d) => *slot = d,
                    Err(m) => return error(StatusCode::BAD_REQUEST, m),
                }
            }
            a.clear_lead_secs = b.clear_lead_secs;
            a.license = LicenseUrls { widevine: b.license.widevine, playready: b.license.playready, clearkey: b.license.clearkey, fairplay: b.license.fairplay, key_delivery: b.license.key_delivery };
            a.authorization = b.authorization;
            a.carry_token = b.carry_token;
            a.progressive_download = b.progressive_download;
            let mut omitted = false;
            for k in b.keys {
                let kind = match kind(&k.kind) {
                    Ok(x) => x,
                    Err(m) => return error(StatusCode::BAD_REQUEST, m),
                };
                omitted |= k.key.is_none();
                a.keys.push(KeyDoc { kid: k.kid, key: k.key.map(SecretText), key_wrapped: None, kind, authorization: k.authorization });
            }
            // Storage encryption is ingest's: keep what is stored.
            if let Ok(d) = admin.db.export(true).await {
                if let Some(old) = d.assets.iter().find(|x| x.path.eq_ignore_ascii_case(&asset)) {
                    if old.storage.is_some() {
                        a.storage = old.storage.clone().map(|mut s| {
                            s.key_wrapped = None;
                            s
                        });
                        omitted = true;
                    }
                }
            }
            write(admin, CatalogDoc { assets: vec![a], keys_omitted: omitted, ..Default::default() }, Inline(None), actor).await
        }
        ("DELETE", p) if p.starts_with("assets/") => match admin.db.delete_asset(&decode(&p["assets/".len()..]), actor).await {
            Ok(true) => StatusCode::NO_CONTENT.into_response(),
            Ok(false) => error(StatusCode::NOT_FOUND, "no such asset"),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        },
        ("GET", "policies") => match admin.db.export(true).await {
            Ok(d) => ok_json(StatusCode::OK, d.authorization_wrapped.keys().map(|n| PolicySummary { name: n.clone() }).collect::<Vec<_>>()),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        },
        ("PUT", p) if p.starts_with("policies/") => {
            let name = decode(&p["policies/".len()..]);
            if name.is_empty() || name.len() > 128 {
                return error(StatusCode::BAD_REQUEST, "name: 1-128 characters");
            }
            let cfg = match serde_json::from_slice(body) {
                Ok(c) => c,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
            };
            let mut doc = CatalogDoc::default();
            doc.authorization.insert(name, cfg);
            write(admin, doc, Inline(None), actor).await
        }
        ("GET", "locators") => match stored().await {
            Ok(d) => ok_json(StatusCode::OK, d.locators.iter().map(|l| Locator { id: l.id.clone(), asset: l.asset.clone(), start: l.start.clone(), expiry: l.expiry.clone() }).collect::<Vec<_>>()),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        },
        ("PUT", p) if p.starts_with("locators/") => {
            let id = decode(&p["locators/".len()..]);
            let b: Locator = match serde_json::from_slice(body) {
                Ok(b) => b,
                Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
            };
            let doc = CatalogDoc { locators: vec![LocatorDoc { id, asset: b.asset, start: b.start, expiry: b.expiry }], ..Default::default() };
            write(admin, doc, Inline(None), actor).await
        }
        ("DELETE", p) if p.starts_with("locators/") => match admin.db.delete_locator(&decode(&p["locators/".len()..]), actor).await {
            Ok(true) => StatusCode::NO_CONTENT.into_response(),
            Ok(false) => error(StatusCode::NOT_FOUND, "no such locator"),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        },
        _ => error(StatusCode::NOT_FOUND, format!("{method} /v1/{path}: no such route (see /v1/openapi.json)")),
    }
}
