//! Azure Media Services v2 REST, as far as it is served today: the protection-key flow and
//! the `ContentKeys` entity set (content keys, storage keys and FairPlay's ASk and PFX
//! password), with the OData v3 JSON shapes the v2 SDK sends and expects
//! (minimal metadata by default, verbose on `Accept: application/json;odata=verbose`), and
//! errors in the `odata.error` shape naming the field at fault. Keys never appear in an
//! error, a log line or an audit row.

use std::net::SocketAddr;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{header, HeaderValue, Method, Request, StatusCode};
use sealcast_drm::Kid;
use serde_json::{json, Value};
use sqlx::Row;
use zeroize::Zeroizing;

use super::{protection, Admin, Role};
use crate::catalog::db::{append_audit, Database};
use crate::catalog::doc::identity;

/// Most bytes of a request body.
const MAX_BODY: usize = 64 << 10;

/// An error answered in the `odata.error` shape.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub(super) fn bad(field: &str, why: &str) -> ApiError {
    ApiError { status: StatusCode::BAD_REQUEST, code: "BadRequest", message: format!("{field}: {why}") }
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, code: "ResourceNotFound", message: format!("{what} does not exist") }
}

pub(super) fn internal(e: anyhow::Error) -> ApiError {
    tracing::error!(error = %format!("{e:#}"), "management API error");
    ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "InternalError", message: "internal error (see the server log)".into() }
}

/// `{"odata.error":{"code":…,"message":{"lang":"en-US","value":…}}}`.
pub fn odata_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "odata.error": { "code": code, "message": { "lang": "en-US", "value": message } } });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;odata=minimalmetadata;streaming=true;charset=utf-8"));
    r
}

/// How the client asked for JSON.
pub(super) struct Shape {
    pub(super) verbose: bool,
    pub(super) base: String,
}

impl Shape {
    fn of(req: &Request<Body>) -> Shape {
        let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).filter(|h| h.bytes().all(|b| b.is_ascii_graphic())).unwrap_or("localhost");
        Shape { verbose: accept.contains("odata=verbose"), base: format!("http://{host}/api/") }
    }

    fn content_type(&self) -> HeaderValue {
        if self.verbose {
            HeaderValue::from_static("application/json;odata=verbose;charset=utf-8")
        } else {
            HeaderValue::from_static("application/json;odata=minimalmetadata;streaming=true;charset=utf-8")
        }
    }

    pub(super) fn respond(&self, status: StatusCode, body: Value) -> Response {
        let mut r = (status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, self.content_type());
        r
    }

    /// One entity of `set`.
    pub(super) fn entity(&self, set: &str, id: &str, mut v: Value) -> Value {
        if self.verbose {
            let uri = format!("{}{set}('{}')", self.base, pct(id));
            v["__metadata"] = json!({ "id": uri, "uri": uri, "type": format!("Microsoft.Cloud.Media.Vod.Rest.Data.Models.{}", set.trim_end_matches('s')) });
            json!({ "d": v })
        } else {
            v["odata.metadata"] = json!(format!("{}$metadata#{set}/@Element", self.base));
            v
        }
    }

    /// A collection of `set`.
    pub(super) fn collection(&self, set: &str, items: Vec<(String, Value)>) -> Value {
        if self.verbose {
            let results: Vec<Value> = items.into_iter().map(|(id, v)| self.entity(set, &id, v)["d"].clone()).collect();
            json!({ "d": { "results": results } })
        } else {
            json!({ "odata.metadata": format!("{}$metadata#{set}", self.base), "value": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>() })
        }
    }

    /// A service operation's primitive result.
    fn value(&self, name: &str, v: Value) -> Value {
        if self.verbose {
            json!({ "d": { name: v } })
        } else {
            json!({ "odata.metadata": format!("{}$metadata#Edm.String", self.base), "value": v })
        }
    }
}

pub(super) fn pct(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `'value'` (OData string literal, URL-decoded) from a query parameter.
pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if !k.eq_ignore_ascii_case(name) {
            return None;
        }
        let v = percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8().ok()?.to_string();
        Some(v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).map(str::to_string).unwrap_or(v))
    })
}

/// `ContentKeys('nb:kid:UUID:…')` → the key; the id may be percent-encoded.
fn entity_key(segment: &str, set: &str) -> Option<String> {
    let inner = segment.strip_prefix(set)?.strip_prefix("('")?.strip_suffix("')")?;
    percent_encoding::percent_decode_str(inner).decode_utf8().ok().map(|s| s.to_string())
}

fn parse_key_id(id: &str) -> Option<Kid> {
    id.strip_prefix("nb:kid:UUID:").and_then(|g| Kid::parse(g).ok())
}

pub(super) async fn handle(admin: &Admin, peer: Option<SocketAddr>, req: Request<Body>) -> Response {
    let shape = Shape::of(&req);
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if let Some(native) = path.strip_prefix("/v1/") {
        let role = if req.method() == Method::GET { Role::Read } else { Role::Write };
        let actor = match admin.authorize(&req, peer, role) {
            Ok(a) => a,
            Err(r) => return *r,
        };
        let method = req.method().clone();
        let Ok(body) = http_body_util::BodyExt::collect(http_body_util::Limited::new(req.into_body(), MAX_BODY)).await.map(|b| b.to_bytes()) else {
            return bad("body", &format!("larger than {MAX_BODY} bytes or unreadable")).into_response();
        };
        return super::native::handle(admin, &method, native, &body, &actor).await;
    }
    let Some(rest) = path.strip_prefix("/api/") else {
        return odata_error(StatusCode::NOT_FOUND, "ResourceNotFound", "no such resource (the v2 API is under /api/)");
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    // X-HTTP-Method tunnels MERGE (and others) through POST, as the v2 SDK does.
    let method = match req.headers().get("x-http-method").and_then(|v| v.to_str().ok()) {
        Some(m) if method == Method::POST => Method::from_bytes(m.as_bytes()).unwrap_or(method),
        _ => method,
    };
    let role = match (&method, segs.as_slice()) {
        (&Method::GET, ["RebindContentKey"]) => Role::Keys,
        (&Method::GET, _) | (&Method::POST, [_, "GetKeyDeliveryUrl"]) => Role::Read,
        _ => Role::Write,
    };
    let actor = match admin.authorize(&req, peer, role) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let body = match http_body_util::BodyExt::collect(http_body_util::Limited::new(req.into_body(), MAX_BODY)).await {
        Ok(b) => b.to_bytes(),
        Err(_) => return bad("body", &format!("larger than {MAX_BODY} bytes or unreadable")).into_response(),
    };
    let json_body = || -> Result<Value, ApiError> { serde_json::from_slice(&body).map_err(|_| bad("body", "not a JSON object")) };
    let r: Result<Response, ApiError> = async {
        match (&method, segs.as_slice()) {
            (&Method::GET, ["GetProtectionKeyId"]) => {
                let t = query_param(&query, "contentKeyType").ok_or_else(|| bad("contentKeyType", "missing"))?;
                t.parse::<i64>().ok().filter(|t| SUPPORTED_TYPES.contains(t)).ok_or_else(|| bad("contentKeyType", "not a supported ContentKeyType (0, 1, 4, 6, 7, 8)"))?;
                let (thumb, _) = active_protection_key(&admin.db).await.map_err(internal)?;
                Ok(shape.respond(StatusCode::OK, shape.value("GetProtectionKeyId", json!(thumb))))
            }
            (&Method::GET, ["GetProtectionKey"]) => {
                let id = query_param(&query, "ProtectionKeyId").ok_or_else(|| bad("ProtectionKeyId", "missing"))?;
                let cert = protection_certificate(&admin.db, &id).await.map_err(internal)?.ok_or_else(|| bad("ProtectionKeyId", "no protection key has this thumbprint"))?;
                Ok(shape.respond(StatusCode::OK, shape.value("GetProtectionKey", json!(cert))))
            }
            (&Method::GET, ["ContentKeys"]) => {
                let keys = list_keys(&admin.db).await.map_err(internal)?;
                let (top, skip) = paging(&query)?;
                let items = keys.into_iter().skip(skip).take(top).map(|k| (k.id.clone(), k.json())).collect();
                Ok(shape.respond(StatusCode::OK, shape.collection("ContentKeys", items)))
            }
            (&Method::POST, ["ContentKeys"]) => {
                let k = create_key(admin, &json_body()?, &actor).await?;
                let mut r = shape.respond(StatusCode::CREATED, shape.entity("ContentKeys", &k.id, k.json()));
                if let Ok(v) = HeaderValue::from_str(&format!("{}ContentKeys('{}')", shape.base, pct(&k.id))) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                Ok(r)
            }
            (m, [one]) if one.starts_with("ContentKeys(") => {
                let id = entity_key(one, "ContentKeys").ok_or_else(|| bad("ContentKeys", "malformed key (ContentKeys('nb:kid:UUID:…'))"))?;
                match *m {
                    Method::GET => {
                        let k = get_key(&admin.db, &id).await.map_err(internal)?.ok_or_else(|| not_found(&format!("ContentKey {id}")))?;
                        Ok(shape.respond(StatusCode::OK, shape.entity("ContentKeys", &k.id, k.json())))
                    }
                    Method::DELETE => {
                        delete_key(&admin.db, &id, &actor).await?;
                        Ok(StatusCode::NO_CONTENT.into_response())
                    }
                    _ if m == Method::PUT || m == Method::PATCH || m.as_str() == "MERGE" => {
                        update_key(&admin.db, &id, &json_body()?, &actor).await?;
                        Ok(StatusCode::NO_CONTENT.into_response())
                    }
                    _ => Err(ApiError { status: StatusCode::METHOD_NOT_ALLOWED, code: "MethodNotAllowed", message: format!("{m} is not allowed here") }),
                }
            }
            (&Method::POST, [one, "GetKeyDeliveryUrl"]) if one.starts_with("ContentKeys(") => {
                let id = entity_key(one, "ContentKeys").ok_or_else(|| bad("ContentKeys", "malformed key"))?;
                let k = get_key(&admin.db, &id).await.map_err(internal)?.ok_or_else(|| not_found(&format!("ContentKey {id}")))?;
                let body = json_body()?;
                let t = body.get("keyDeliveryType").and_then(Value::as_i64).ok_or_else(|| bad("keyDeliveryType", "missing or not a number"))?;
                let url = key_delivery_url(admin, &k, t).await?;
                Ok(shape.respond(StatusCode::OK, shape.value("GetKeyDeliveryUrl", json!(url))))
            }
            (&Method::GET, ["RebindContentKey"]) => {
                let id = query_param(&query, "id").ok_or_else(|| bad("id", "missing"))?;
                let cert = query_param(&query, "x509Certificate").unwrap_or_default();
                let value = rebind(&admin.db, &id, &cert, &actor).await?;
                Ok(shape.respond(StatusCode::OK, shape.value("RebindContentKey", json!(value))))
            }
            _ => match super::entities::handle(admin, &method, &segs, &query, &body, &shape, &actor).await {
                Some(r) => r,
                None => Err(not_found(&format!("{method} /api/{rest}"))),
            },
        }
    }
    .await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// ContentKeyTypes this origin stores: common (0), storage (1), envelope (4), cbcs (6), and
/// FairPlay's application secret key (7, ASk) and PFX password (8), which FairPlay
/// authorization policy options name and which are never delivered.
const SUPPORTED_TYPES: [i64; 6] = [0, 1, 4, 6, 7, 8];

/// The name of a `KeyDeliveryType`.
pub(super) fn delivery_type_name(t: i64) -> &'static str {
    match t {
        1 => "PlayReadyLicense",
        2 => "BaselineHttp",
        3 => "Widevine",
        4 => "FairPlay",
        _ => "None",
    }
}

/// `GetKeyDeliveryUrl`: where players get key `k` by delivery type `t` — only a URL this
/// origin's public listener answers. BaselineHttp (2): `{public_url}/key/{kid}`, which hands
/// the key out under the restriction of the policy's BaselineHttp option. The key's
/// authorization policy must have an option of that type (400 otherwise). PlayReady (1),
/// Widevine (3) and FairPlay (4) licences are not issued by this origin: 400 saying so, and
/// such options never let a key out in clear either (see `catalog::ams::authorization_of`).
async fn key_delivery_url(admin: &Admin, k: &KeyRow, t: i64) -> Result<String, ApiError> {
    if !(1..=4).contains(&t) {
        return Err(bad("keyDeliveryType", "must be 1 (PlayReadyLicense), 2 (BaselineHttp), 3 (Widevine) or 4 (FairPlay)"));
    }
    if !matches!(k.content_key_type, 0 | 4 | 6) {
        return Err(bad("ContentKeyType", &format!("a key of type {} is never delivered to players (only 0, 4 and 6 are)", k.content_key_type)));
    }
    let kid = parse_key_id(&k.id).ok_or_else(|| bad("Id", "not nb:kid:UUID:…"))?;
    let pid = k.authorization_policy_id.as_deref().ok_or_else(|| bad("keyDeliveryType", "the key has no AuthorizationPolicyId, so it configures no delivery"))?;
    let types = super::entities::option_delivery_types(&admin.db, pid).await?;
    if !types.contains(&t) {
        return Err(bad("keyDeliveryType", &format!("the key's authorization policy {pid} has no option for {} ({t})", delivery_type_name(t))));
    }
    match t {
        2 => Ok(format!("{}/key/{kid}", admin.public_url)),
        1 => Err(bad("keyDeliveryType", "PlayReady licences are not issued by this origin (it hands keys out in clear under BaselineHttp options: /key/{kid}, and W3C ClearKey licences at /clearkey); give your PlayReady licence server's URL as AssetDeliveryConfiguration key 4")),
        3 => Err(bad("keyDeliveryType", "Widevine licences are not issued by this origin (it hands keys out in clear under BaselineHttp options: /key/{kid}, and W3C ClearKey licences at /clearkey); give your Widevine licence server's URL as AssetDeliveryConfiguration key 7 or 8")),
        _ => Err(bad("keyDeliveryType", "FairPlay CKCs are not issued by this origin (its FairPlay options, ASk and PFX are stored sealed, never used); give your FairPlay key server's URL as AssetDeliveryConfiguration key 9 or 10, which HLS playlists then carry as skd://")),
    }
}

pub(super) fn paging(query: &str) -> Result<(usize, usize), ApiError> {
    let n = |name: &str, default: usize| -> Result<usize, ApiError> {
        match query_param(query, name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| bad(name, "not a number")),
        }
    };
    Ok((n("$top", 1000)?.min(1000), n("$skip", 0)?))
}

/// A stored content key (without its key).
struct KeyRow {
    id: String,
    name: String,
    content_key_type: i64,
    checksum: String,
    protection_key_id: String,
    authorization_policy_id: Option<String>,
    created: i64,
    updated: i64,
}

impl KeyRow {
    fn json(&self) -> Value {
        json!({
            "Id": self.id,
            "Name": self.name,
            "ContentKeyType": self.content_key_type,
            "ProtectionKeyId": self.protection_key_id,
            "ProtectionKeyType": 0,
            "Checksum": self.checksum,
            "AuthorizationPolicyId": self.authorization_policy_id,
            "Created": crate::catalog::doc::format_time(self.created),
            "LastModified": crate::catalog::doc::format_time(self.updated),
        })
    }
}

fn key_row(r: &sqlx::any::AnyRow) -> anyhow::Result<KeyRow> {
    Ok(KeyRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        content_key_type: r.try_get(2)?,
        checksum: r.try_get(3)?,
        protection_key_id: r.try_get(4)?,
        authorization_policy_id: r.try_get(5)?,
        created: r.try_get(6)?,
        updated: r.try_get(7)?,
    })
}

const KEY_COLUMNS: &str = "id, name, content_key_type, checksum, protection_key_id, authorization_policy_id, created_at, updated_at";

async fn list_keys(db: &Database) -> anyhow::Result<Vec<KeyRow>> {
    sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM ams_content_keys ORDER BY id")).fetch_all(db.pool()).await?.iter().map(key_row).collect()
}

async fn get_key(db: &Database, id: &str) -> anyhow::Result<Option<KeyRow>> {
    sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM ams_content_keys WHERE id = $1")).bind(id).fetch_optional(db.pool()).await?.as_ref().map(key_row).transpose()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Makes sure there is an active protection key (first start of the management API).
pub async fn ensure_protection_key(db: &Database) -> anyhow::Result<()> {
    if active_protection_key(db).await.is_ok() {
        return Ok(());
    }
    rotate_protection_key(db, &crate::catalog::db::Actor { identity: "system".into(), address: "local".into() }).await.map(|_| ())
}

/// A new protection key becomes the active one; older ones stay, for keys uploaded to them.
pub async fn rotate_protection_key(db: &Database, actor: &crate::catalog::db::Actor) -> anyhow::Result<String> {
    let p = protection::generate("sealcast protection key")?;
    let sealed = db.sealer().seal(&p.private_key, &identity::protection_key(&p.thumbprint));
    let mut tx = db.pool().begin().await?;
    sqlx::query("UPDATE protection_keys SET active = 0").execute(&mut *tx).await?;
    sqlx::query("INSERT INTO protection_keys (thumbprint, certificate, private_key_sealed, active, created_at) VALUES ($1, $2, $3, 1, $4)")
        .bind(&p.thumbprint)
        .bind(base64::engine::general_purpose::STANDARD.encode(&p.certificate))
        .bind(sealed)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    append_audit(&mut tx, actor, "created", "protection_key", &p.thumbprint, "active").await?;
    tx.commit().await?;
    Ok(p.thumbprint)
}

async fn active_protection_key(db: &Database) -> anyhow::Result<(String, String)> {
    let r = sqlx::query("SELECT thumbprint, certificate FROM protection_keys WHERE active = 1 ORDER BY created_at DESC").fetch_optional(db.pool()).await?.ok_or_else(|| anyhow::anyhow!("no active protection key"))?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

async fn protection_certificate(db: &Database, thumbprint: &str) -> anyhow::Result<Option<String>> {
    Ok(sqlx::query("SELECT certificate FROM protection_keys WHERE thumbprint = $1").bind(thumbprint.to_ascii_uppercase()).fetch_optional(db.pool()).await?.map(|r| r.try_get(0)).transpose()?)
}

async fn protection_private_key(db: &Database, thumbprint: &str) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    let sealed: Option<String> = sqlx::query("SELECT private_key_sealed FROM protection_keys WHERE thumbprint = $1").bind(thumbprint).fetch_optional(db.pool()).await?.map(|r| r.try_get(0)).transpose()?;
    sealed.map(|s| db.sealer().open_sealed(&s, &identity::protection_key(thumbprint))).transpose()
}

/// `POST /api/ContentKeys`: unwraps, checks and stores a key. 400 names the field at fault.
async fn create_key(admin: &Admin, body: &Value, actor: &crate::catalog::db::Actor) -> Result<KeyRow, ApiError> {
    let s = |name: &str| body.get(name).and_then(Value::as_str);
    let id = s("Id").ok_or_else(|| bad("Id", "missing (nb:kid:UUID:<guid>)"))?.to_string();
    let kid = parse_key_id(&id).ok_or_else(|| bad("Id", "not nb:kid:UUID:<guid>"))?;
    let id = format!("nb:kid:UUID:{kid}");
    let t = body.get("ContentKeyType").and_then(Value::as_i64).ok_or_else(|| bad("ContentKeyType", "missing or not a number"))?;
    if !SUPPORTED_TYPES.contains(&t) {
        return Err(bad("ContentKeyType", "not supported (0 CommonEncryption, 1 StorageEncryption, 4 EnvelopeEncryption, 6 CommonEncryptionCbcs, 7 FairPlayASk, 8 FairPlayPfxPassword)"));
    }
    if let Some(pt) = body.get("ProtectionKeyType") {
        if pt.as_i64() != Some(0) {
            return Err(bad("ProtectionKeyType", "must be 0 (X509CertificateThumbprint)"));
        }
    }
    let thumb = s("ProtectionKeyId").ok_or_else(|| bad("ProtectionKeyId", "missing"))?.to_ascii_uppercase();
    let private = protection_private_key(&admin.db, &thumb).await.map_err(internal)?.ok_or_else(|| bad("ProtectionKeyId", "no protection key has this thumbprint"))?;
    let enc = s("EncryptedContentKey").and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok()).ok_or_else(|| bad("EncryptedContentKey", "missing or not base64"))?;
    let key = protection::unwrap_content_key(&private, &enc).map_err(|_| bad("EncryptedContentKey", "does not decrypt with the protection key named by ProtectionKeyId (RSA-OAEP)"))?;
    let ours = if t == 8 {
        // A FairPlay PFX password: any length (what RSA-OAEP carries), no checksum (the v2
        // SDK sends none; one that is sent is checked when the length allows it).
        if key.is_empty() {
            return Err(bad("EncryptedContentKey", "holds an empty FairPlayPfxPassword"));
        }
        match (s("Checksum"), protection::checksum(kid, &key)) {
            (None, _) => String::new(),
            (Some(_), Err(_)) => return Err(bad("Checksum", "a FairPlayPfxPassword of this length has no checksum; omit it")),
            (Some(given), Ok(ours)) => {
                if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), ours.as_bytes()).is_err() {
                    return Err(bad("Checksum", "does not match the key (AES-ECB of the KID, first 8 bytes, base64)"));
                }
                ours
            }
        }
    } else {
        let want = if t == 1 { 32 } else { 16 };
        if key.len() != want {
            return Err(bad("EncryptedContentKey", &format!("holds a {}-byte key; ContentKeyType {t} needs {want}", key.len())));
        }
        let checksum = s("Checksum").ok_or_else(|| bad("Checksum", "missing"))?;
        let ours = protection::checksum(kid, &key).map_err(internal)?;
        // Constant time: the checksum is derived from the key.
        if aws_lc_rs::constant_time::verify_slices_are_equal(checksum.as_bytes(), ours.as_bytes()).is_err() {
            return Err(bad("Checksum", "does not match the key (AES-ECB of the KID, first 8 bytes, base64)"));
        }
        ours
    };
    let name = s("Name").unwrap_or("").to_string();
    let sealed = admin.db.sealer().seal(&key, &identity::uploaded_key(&id));
    let now = now();
    let mut tx = admin.db.pool().begin().await.map_err(|e| internal(e.into()))?;
    let inserted = sqlx::query("INSERT INTO ams_content_keys (id, name, content_key_type, key_sealed, checksum, protection_key_id, authorization_policy_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7) ON CONFLICT (id) DO NOTHING")
        .bind(&id)
        .bind(&name)
        .bind(t)
        .bind(sealed)
        .bind(&ours)
        .bind(&thumb)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| internal(e.into()))?
        .rows_affected();
    if inserted == 0 {
        return Err(ApiError { status: StatusCode::CONFLICT, code: "Conflict", message: format!("Id: content key {id} exists already") });
    }
    append_audit(&mut tx, actor, "created", "content_key", &id, &format!("type={t}")).await.map_err(internal)?;
    tx.commit().await.map_err(|e| internal(e.into()))?;
    Ok(KeyRow { id, name, content_key_type: t, checksum: ours, protection_key_id: thumb, authorization_policy_id: None, created: now, updated: now })
}

async fn update_key(db: &Database, id: &str, body: &Value, actor: &crate::catalog::db::Actor) -> Result<(), ApiError> {
    let obj = body.as_object().ok_or_else(|| bad("body", "not a JSON object"))?;
    for k in obj.keys() {
        if !["AuthorizationPolicyId", "Name", "odata.metadata", "__metadata", "Id"].contains(&k.as_str()) {
            return Err(bad(k, "cannot be changed (only Name and AuthorizationPolicyId)"));
        }
    }
    let mut tx = db.pool().begin().await.map_err(|e| internal(e.into()))?;
    let exists = sqlx::query("SELECT id FROM ams_content_keys WHERE id = $1").bind(id).fetch_optional(&mut *tx).await.map_err(|e| internal(e.into()))?.is_some();
    if !exists {
        return Err(not_found(&format!("ContentKey {id}")));
    }
    if let Some(p) = obj.get("AuthorizationPolicyId") {
        let p = p.as_str().filter(|p| p.starts_with("nb:ckpid:UUID:")).ok_or_else(|| bad("AuthorizationPolicyId", "not nb:ckpid:UUID:<guid>"))?;
        sqlx::query("UPDATE ams_content_keys SET authorization_policy_id = $1, updated_at = $2 WHERE id = $3").bind(p).bind(now()).bind(id).execute(&mut *tx).await.map_err(|e| internal(e.into()))?;
    }
    if let Some(n) = obj.get("Name") {
        let n = n.as_str().ok_or_else(|| bad("Name", "not a string"))?;
        sqlx::query("UPDATE ams_content_keys SET name = $1, updated_at = $2 WHERE id = $3").bind(n).bind(now()).bind(id).execute(&mut *tx).await.map_err(|e| internal(e.into()))?;
    }
    let fields: Vec<&str> = obj.keys().map(String::as_str).collect();
    append_audit(&mut tx, actor, "updated", "content_key", id, &fields.join(",")).await.map_err(internal)?;
    tx.commit().await.map_err(|e| internal(e.into()))?;
    Ok(())
}

async fn delete_key(db: &Database, id: &str, actor: &crate::catalog::db::Actor) -> Result<(), ApiError> {
    let mut tx = db.pool().begin().await.map_err(|e| internal(e.into()))?;
    // A FairPlay ASk or PFX password stays while a FairPlay option names it (409).
    let guid = id.trim_start_matches("nb:kid:UUID:");
    let options = crate::catalog::ams::entities(&mut tx, &db.sealer(), "ContentKeyAuthorizationPolicyOptions").await.map_err(internal)?;
    for (oid, o) in &options {
        let config = o.get("KeyDeliveryConfiguration").and_then(Value::as_str).and_then(|c| serde_json::from_str::<Value>(c).ok());
        let named = |m: &str| config.as_ref().and_then(|c| c.get(m)).and_then(Value::as_str).is_some_and(|v| v.trim_start_matches("nb:kid:UUID:").eq_ignore_ascii_case(guid));
        if o.get("KeyDeliveryType").and_then(Value::as_i64) == Some(4) && (named("ASkId") || named("FairPlayPfxPasswordId")) {
            return Err(ApiError { status: StatusCode::CONFLICT, code: "Conflict", message: format!("Id: FairPlay option {oid} names this key; delete the option first") });
        }
    }
    let n = sqlx::query("DELETE FROM ams_content_keys WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(|e| internal(e.into()))?.rows_affected();
    if n == 0 {
        return Err(not_found(&format!("ContentKey {id}")));
    }
    append_audit(&mut tx, actor, "deleted", "content_key", id, "").await.map_err(internal)?;
    tx.commit().await.map_err(|e| internal(e.into()))?;
    Ok(())
}

/// `RebindContentKey`: the clear key (base64), or encrypted to the certificate given.
async fn rebind(db: &Database, id: &str, cert_b64: &str, actor: &crate::catalog::db::Actor) -> Result<String, ApiError> {
    let id = parse_key_id(id).map(|k| format!("nb:kid:UUID:{k}")).ok_or_else(|| bad("id", "not nb:kid:UUID:<guid>"))?;
    let sealed: String = sqlx::query("SELECT key_sealed FROM ams_content_keys WHERE id = $1")
        .bind(&id)
        .fetch_optional(db.pool())
        .await
        .map_err(|e| internal(e.into()))?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(|e| internal(e.into()))?
        .ok_or_else(|| not_found(&format!("ContentKey {id}")))?;
    let key = db.sealer().open_sealed(&sealed, &identity::uploaded_key(&id)).map_err(internal)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (value, how) = if cert_b64.trim().is_empty() {
        (b64.encode(&key[..]), "clear")
    } else {
        let der = b64.decode(cert_b64.trim()).map_err(|_| bad("x509Certificate", "not base64"))?;
        let wrapped = protection::wrap_to_certificate(&der, &key).map_err(|e| bad("x509Certificate", &format!("{e}")))?;
        (b64.encode(wrapped), "to certificate")
    };
    let mut tx = db.pool().begin().await.map_err(|e| internal(e.into()))?;
    append_audit(&mut tx, actor, "read", "content_key", &id, how).await.map_err(internal)?;
    tx.commit().await.map_err(|e| internal(e.into()))?;
    Ok(value)
}
