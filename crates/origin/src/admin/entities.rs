//! The v2 entity sets other than ContentKeys: Assets, Files, AccessPolicies, Locators,
//! AssetDeliveryPolicies, ContentKeyAuthorizationPolicies and their Options, with `$links`
//! and navigation. One generic store (`ams_entities`: the entity's v2 JSON) with per-set rules
//! that check what the service checked, name the field at fault (400), refuse unknown ids
//! (404) and conflicts (409: a second delivery policy for one protocol of an asset, a
//! duplicate id). Every write bumps the catalog version (replicas reload) and is audited.
//!
//! Relaxed on purpose: AMS froze an asset's delivery policies while it had a streaming
//! locator; here they may change at any time and apply within a second.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};
use sqlx::Row;

use super::v2::{bad, internal, not_found, ApiError, Shape};
use super::Admin;
use crate::catalog::ams::{entities, entity_identity, parse_configuration, restriction_config, SEALED_SETS};
use crate::catalog::db::{append_audit, Actor, Database};
use crate::catalog::doc::{format_time, parse_time, valid_locator_id};

/// The sets served here, with their id prefixes.
pub const SETS: [(&str, &str); 7] = [
    ("Assets", "nb:cid:UUID:"),
    ("Files", "nb:cid:UUID:"),
    ("AccessPolicies", "nb:pid:UUID:"),
    ("Locators", "nb:lid:UUID:"),
    ("AssetDeliveryPolicies", "nb:adpid:UUID:"),
    ("ContentKeyAuthorizationPolicies", "nb:ckpid:UUID:"),
    ("ContentKeyAuthorizationPolicyOptions", "nb:ckpoid:UUID:"),
];

/// `$links` navigation properties: (source set, nav, target set).
const LINKS: [(&str, &str, &str); 3] = [("Assets", "ContentKeys", "ContentKeys"), ("Assets", "DeliveryPolicies", "AssetDeliveryPolicies"), ("ContentKeyAuthorizationPolicies", "Options", "ContentKeyAuthorizationPolicyOptions")];

fn prefix_of(set: &str) -> Option<&'static str> {
    SETS.iter().find(|(s, _)| *s == set).map(|(_, p)| *p)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}


fn db_err(e: impl Into<anyhow::Error>) -> ApiError {
    internal(e.into())
}

/// `Set('id')` → (set, id).
pub fn split_key(seg: &str) -> Option<(&str, String)> {
    let open = seg.find("('")?;
    let inner = seg[open + 2..].strip_suffix("')")?;
    let id = percent_encoding::percent_decode_str(inner).decode_utf8().ok()?.to_string();
    Some((&seg[..open], id))
}

/// The id in a `{"uri": "…/Set('id')"}` link body.
fn link_target(body: &Value, want_set: &str) -> Result<String, ApiError> {
    let uri = body.get("uri").and_then(Value::as_str).ok_or_else(|| bad("uri", "missing"))?;
    let last = uri.rsplit('/').next().unwrap_or(uri);
    match split_key(last) {
        Some((set, id)) if set == want_set => Ok(id),
        _ => Err(bad("uri", &format!("must name a {want_set}('…') entity"))),
    }
}

async fn load(db: &Database, set: &str, id: &str) -> Result<Option<Value>, ApiError> {
    let r = sqlx::query("SELECT body FROM ams_entities WHERE entity_set = $1 AND id = $2").bind(set).bind(id).fetch_optional(db.pool()).await.map_err(db_err)?;
    let Some(r) = r else { return Ok(None) };
    let body: String = r.try_get(0).map_err(db_err)?;
    let text = if SEALED_SETS.contains(&set) { String::from_utf8(db.sealer().open_sealed(&body, &entity_identity(set, id)).map_err(internal)?.to_vec()).map_err(db_err)? } else { body };
    serde_json::from_str(&text).map(Some).map_err(db_err)
}

async fn exists(db: &Database, set: &str, id: &str) -> Result<bool, ApiError> {
    if set == "ContentKeys" {
        return Ok(sqlx::query("SELECT id FROM ams_content_keys WHERE id = $1").bind(id).fetch_optional(db.pool()).await.map_err(db_err)?.is_some());
    }
    Ok(sqlx::query("SELECT id FROM ams_entities WHERE entity_set = $1 AND id = $2").bind(set).bind(id).fetch_optional(db.pool()).await.map_err(db_err)?.is_some())
}

/// What an entity shows (sealed sets included: their secrets are the caller's own).
fn shown(set: &str, v: &Value) -> Value {
    let mut v = v.clone();
    if set == "ContentKeyAuthorizationPolicyOptions" {
        // Token keys are write-only: never read back.
        if let Some(rs) = v.get_mut("Restrictions").and_then(Value::as_array_mut) {
            for r in rs {
                if r.get("Requirements").is_some_and(|x| !x.is_null()) {
                    r["Requirements"] = json!("(write-only: holds verification keys)");
                }
            }
        }
        // A FairPlay option's PFX (the application certificate's private key) is write-only
        // too; the rest of its configuration is shown.
        if v.get("KeyDeliveryType").and_then(Value::as_i64) == Some(4) {
            let shown_config = v.get("KeyDeliveryConfiguration").and_then(Value::as_str).and_then(|c| serde_json::from_str::<Value>(c).ok()).map(|mut c| {
                if c.get("FairPlayPfx").is_some() {
                    c["FairPlayPfx"] = json!("(write-only)");
                }
                c.to_string()
            });
            v["KeyDeliveryConfiguration"] = json!(shown_config.unwrap_or_else(|| "(write-only)".into()));
        }
    }
    v
}

/// Writes an entity, bumps the catalog version, audits, notifies.
async fn store(db: &Database, set: &str, id: &str, v: &Value, created: bool, actor: &Actor) -> Result<(), ApiError> {
    let text = v.to_string();
    let body = if SEALED_SETS.contains(&set) { db.sealer().seal(text.as_bytes(), &entity_identity(set, id)) } else { text };
    let mut tx = db.pool().begin().await.map_err(db_err)?;
    sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db_err)?;
    if created {
        let n = sqlx::query("INSERT INTO ams_entities (entity_set, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (entity_set, id) DO NOTHING")
            .bind(set)
            .bind(id)
            .bind(&body)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            return Err(ApiError { status: StatusCode::CONFLICT, code: "Conflict", message: format!("Id: {set}('{id}') exists already") });
        }
    } else {
        sqlx::query("UPDATE ams_entities SET body = $1, updated_at = $2 WHERE entity_set = $3 AND id = $4").bind(&body).bind(now()).bind(set).bind(id).execute(&mut *tx).await.map_err(db_err)?;
    }
    let name = v.get("Name").and_then(Value::as_str).unwrap_or("");
    append_audit(&mut tx, actor, if created { "created" } else { "updated" }, set, id, &format!("name={name}")).await.map_err(internal)?;
    db.notify(&mut tx).await.map_err(internal)?;
    tx.commit().await.map_err(db_err)?;
    Ok(())
}

fn req_str<'a>(v: &'a Value, f: &str) -> Result<&'a str, ApiError> {
    v.get(f).and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or_else(|| bad(f, "missing or not a string"))
}

fn req_int(v: &Value, f: &str) -> Result<i64, ApiError> {
    v.get(f).and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok()))).ok_or_else(|| bad(f, "missing or not an integer"))
}

/// Checks and completes an entity of `set` (`old`: the stored one, on updates).
async fn validate(admin: &Admin, set: &str, id: &str, v: &mut Map<String, Value>, old: Option<&Value>) -> Result<(), ApiError> {
    let db = &admin.db;
    let val = Value::Object(v.clone());
    match set {
        "Assets" => {
            req_str(&val, "Name")?;
            let options = v.get("Options").map(|_| req_int(&val, "Options")).transpose()?.unwrap_or(0);
            if !(0..=7).contains(&options) {
                return Err(bad("Options", "not AssetCreationOptions flags (0-7)"));
            }
            v.insert("Options".into(), json!(options));
            v.entry("State").or_insert(json!(0));
            // The folder under the storage root: `AlternateId` when it is a plain path (so
            // assets already in storage can be adopted), else `asset-<guid>` as AMS named
            // its containers. Fixed once created.
            let path = match old.and_then(|o| o.get("Path")).and_then(Value::as_str) {
                Some(p) => p.to_string(),
                None => match v.get("AlternateId").and_then(Value::as_str) {
                    Some(a) if sealcast_storage::AssetPath::parse(&format!("/{a}")).is_ok() => a.to_string(),
                    _ => format!("asset-{}", id.trim_start_matches("nb:cid:UUID:")),
                },
            };
            let taken = sqlx::query("SELECT id FROM assets WHERE path_key = $1").bind(path.to_ascii_lowercase()).fetch_optional(db.pool()).await.map_err(db_err)?.is_some();
            if taken && old.is_none() {
                return Err(ApiError { status: StatusCode::CONFLICT, code: "Conflict", message: format!("AlternateId: the folder '{path}' already has an imported catalog entry") });
            }
            v.insert("Uri".into(), json!(format!("{}/{path}/", admin.public_url)));
            v.insert("Path".into(), json!(path));
        }
        "Files" => {
            let name = req_str(&val, "Name")?;
            if name.len() > 260 || name.contains(['!', '*', '\'', '(', ')', ';', ':', '@', '&', '=', '+', '$', ',', '/', '?', '%', '#', '[', ']', '"']) {
                return Err(bad("Name", "must be at most 260 characters without !*'();:@&=+$,/?%#[]\""));
            }
            let parent = req_str(&val, "ParentAssetId")?;
            if !exists(db, "Assets", parent).await? {
                return Err(bad("ParentAssetId", "no such asset"));
            }
            let enc = v.get("IsEncrypted").map(|x| x.as_bool().ok_or_else(|| bad("IsEncrypted", "not a boolean"))).transpose()?.unwrap_or(false);
            v.insert("IsEncrypted".into(), json!(enc));
            v.entry("IsPrimary").or_insert(json!(false));
            if enc {
                if req_str(&val, "EncryptionScheme")? != "StorageEncryption" {
                    return Err(bad("EncryptionScheme", "only StorageEncryption is decrypted by the origin"));
                }
                let key = req_str(&val, "EncryptionKeyId")?;
                let t: Option<i64> = sqlx::query("SELECT content_key_type FROM ams_content_keys WHERE id = $1").bind(key).fetch_optional(db.pool()).await.map_err(db_err)?.map(|r| r.try_get(0)).transpose().map_err(db_err)?;
                if t != Some(1) {
                    return Err(bad("EncryptionKeyId", "not a StorageEncryption (1) content key"));
                }
                req_str(&val, "InitializationVector")?.parse::<u64>().map_err(|_| bad("InitializationVector", "not a decimal 64-bit unsigned integer"))?;
            }
        }
        "AccessPolicies" => {
            req_str(&val, "Name")?;
            let d = v.get("DurationInMinutes").and_then(|x| x.as_f64().or_else(|| x.as_str().and_then(|s| s.parse().ok()))).ok_or_else(|| bad("DurationInMinutes", "missing or not a number"))?;
            if !(d > 0.0 && d < 1e8) {
                return Err(bad("DurationInMinutes", "must be positive"));
            }
            v.insert("DurationInMinutes".into(), json!(d));
            v.insert("Permissions".into(), json!(v.get("Permissions").map(|_| req_int(&val, "Permissions")).transpose()?.unwrap_or(0)));
        }
        "Locators" => {
            let asset_id = req_str(&val, "AssetId")?.to_string();
            let asset = load(db, "Assets", &asset_id).await?.ok_or_else(|| bad("AssetId", "no such asset"))?;
            let ap = req_str(&val, "AccessPolicyId")?.to_string();
            let policy = load(db, "AccessPolicies", &ap).await?.ok_or_else(|| bad("AccessPolicyId", "no such access policy"))?;
            match req_int(&val, "Type")? {
                2 => {}
                1 => return Err(bad("Type", "SAS (1) upload locators are not served: put the files into the storage root (or its bucket) under the asset's Path yourself, then register them with POST Files; only OnDemandOrigin (2) locators")),
                _ => return Err(bad("Type", "must be OnDemandOrigin (2)")),
            }
            if policy.get("Permissions").and_then(Value::as_i64).unwrap_or(0) & 0b110 != 0 {
                return Err(bad("AccessPolicyId", "a streaming locator's access policy cannot have Write or Delete"));
            }
            let storage_encrypted = asset.get("Options").and_then(Value::as_i64).unwrap_or(0) & 1 != 0;
            let has_policy = sqlx::query("SELECT target_id FROM ams_links WHERE source_set = 'Assets' AND source_id = $1 AND nav = 'DeliveryPolicies'").bind(&asset_id).fetch_optional(db.pool()).await.map_err(db_err)?.is_some();
            if storage_encrypted && !has_policy {
                return Err(ApiError { status: StatusCode::CONFLICT, code: "Conflict", message: "AssetId: a storage-encrypted asset needs a delivery policy before a streaming locator".into() });
            }
            let start = match v.get("StartTime").and_then(Value::as_str) {
                Some(t) => parse_time(t).ok_or_else(|| bad("StartTime", "not a time like 2026-12-03T10:00:00Z"))?,
                None => now(),
            };
            let minutes = policy.get("DurationInMinutes").and_then(Value::as_f64).unwrap_or(0.0);
            v.insert("StartTime".into(), json!(format_time(start)));
            v.insert("ExpirationDateTime".into(), json!(format_time(start + (minutes * 60.0) as i64)));
            let guid = id.trim_start_matches("nb:lid:UUID:");
            if !valid_locator_id(guid) {
                return Err(bad("Id", "not nb:lid:UUID:<guid>"));
            }
            v.insert("ContentAccessComponent".into(), json!(guid));
            v.insert("Path".into(), json!(format!("{}/{guid}/", admin.public_url)));
            v.insert("BaseUri".into(), json!(admin.public_url.clone()));
        }
        "AssetDeliveryPolicies" => {
            req_str(&val, "Name")?;
            let protocols = req_int(&val, "AssetDeliveryProtocol")?;
            if protocols <= 0 || protocols > 0xFFFF {
                return Err(bad("AssetDeliveryProtocol", "not AssetDeliveryProtocol flags"));
            }
            let t = req_int(&val, "AssetDeliveryPolicyType")?;
            if !(1..=5).contains(&t) {
                return Err(bad("AssetDeliveryPolicyType", "must be 1 Blocked, 2 NoDynamicEncryption, 3 DynamicEnvelopeEncryption, 4 DynamicCommonEncryption or 5 DynamicCommonEncryptionCbcs"));
            }
            if t == 3 && protocols & 0x3 != 0 {
                return Err(bad("AssetDeliveryProtocol", "DynamicEnvelopeEncryption is HLS only here (Smooth and DASH cannot carry AES-128 envelope)"));
            }
            let config = parse_configuration(v.get("AssetDeliveryConfiguration")).map_err(|e| bad("AssetDeliveryConfiguration", &format!("{e:#}")))?;
            for (key, url) in &config {
                // FairPlay key URIs: skd://, or the http(s) URL AMS users configured, which
                // playlists carry as skd:// (catalog::ams).
                if matches!(key, 9 | 10) && !["skd://", "https://", "http://"].iter().any(|p| url.starts_with(p)) {
                    return Err(bad("AssetDeliveryConfiguration", &format!("key {key} (FairPlay) must be an skd:// or http(s):// URL")));
                }
            }
        }
        "ContentKeyAuthorizationPolicies" => {
            req_str(&val, "Name")?;
        }
        "ContentKeyAuthorizationPolicyOptions" => {
            req_str(&val, "Name")?;
            let t = req_int(&val, "KeyDeliveryType")?;
            if !(1..=4).contains(&t) {
                return Err(bad("KeyDeliveryType", "must be 1-4"));
            }
            let rs = v.get("Restrictions").and_then(Value::as_array).filter(|r| !r.is_empty()).ok_or_else(|| bad("Restrictions", "missing or empty"))?;
            for r in rs {
                restriction_config(r).map_err(|e| bad("Restrictions", &format!("{e:#}")))?;
            }
            if t == 4 {
                check_fairplay(db, v.get("KeyDeliveryConfiguration")).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The `KeyDeliveryType`s of the options linked to authorization policy `pid` (empty when it
/// has none or does not exist).
pub(super) async fn option_delivery_types(db: &Database, pid: &str) -> Result<Vec<i64>, ApiError> {
    let rows = sqlx::query("SELECT target_id FROM ams_links WHERE source_set = 'ContentKeyAuthorizationPolicies' AND source_id = $1 AND nav = 'Options'").bind(pid).fetch_all(db.pool()).await.map_err(db_err)?;
    let mut types = Vec::new();
    for r in rows {
        let oid: String = r.try_get(0).map_err(db_err)?;
        if let Some(t) = load(db, "ContentKeyAuthorizationPolicyOptions", &oid).await?.and_then(|o| o.get("KeyDeliveryType").and_then(Value::as_i64)) {
            types.push(t);
        }
    }
    Ok(types)
}

/// A FairPlay option's `KeyDeliveryConfiguration`, the JSON the v2 SDK's
/// `FairPlayConfiguration` writes: `ASkId` names a FairPlayASk (7) content key,
/// `FairPlayPfxPasswordId` a FairPlayPfxPassword (8) one (GUIDs, with or without the
/// `nb:kid:UUID:` prefix), `FairPlayPfx` is the base64 PKCS#12 application certificate with its
/// private key, `ContentEncryptionIV` 32 hex digits. Stored sealed with the option; this origin
/// issues no CKCs, so they are kept for migration, never used. Errors name the member.
async fn check_fairplay(db: &Database, config: Option<&Value>) -> Result<(), ApiError> {
    const FIELD: &str = "KeyDeliveryConfiguration";
    let text = config.and_then(Value::as_str).ok_or_else(|| bad(FIELD, "a FairPlay (4) option needs its FairPlayConfiguration JSON"))?;
    let c: Value = serde_json::from_str(text).map_err(|_| bad(FIELD, "not the FairPlayConfiguration JSON"))?;
    for (member, want) in [("ASkId", 7), ("FairPlayPfxPasswordId", 8)] {
        let id = c.get(member).and_then(Value::as_str).ok_or_else(|| bad(&format!("{FIELD}.{member}"), "missing or not a string"))?;
        let kid = sealcast_drm::Kid::parse(id.trim_start_matches("nb:kid:UUID:")).map_err(|_| bad(&format!("{FIELD}.{member}"), "not a GUID"))?;
        let t: Option<i64> = sqlx::query("SELECT content_key_type FROM ams_content_keys WHERE id = $1").bind(format!("nb:kid:UUID:{kid}")).fetch_optional(db.pool()).await.map_err(db_err)?.map(|r| r.try_get(0)).transpose().map_err(db_err)?;
        if t != Some(want) {
            return Err(bad(&format!("{FIELD}.{member}"), &format!("names no content key of type {want} ({})", if want == 7 { "FairPlayASk" } else { "FairPlayPfxPassword" })));
        }
    }
    let pfx = c.get("FairPlayPfx").and_then(Value::as_str).unwrap_or("");
    use base64::Engine;
    if pfx.is_empty() || base64::engine::general_purpose::STANDARD.decode(pfx).is_err() {
        return Err(bad(&format!("{FIELD}.FairPlayPfx"), "missing or not base64 (the PKCS#12 application certificate)"));
    }
    let iv = c.get("ContentEncryptionIV").and_then(Value::as_str).unwrap_or("");
    if iv.len() != 32 || !iv.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(&format!("{FIELD}.ContentEncryptionIV"), "must be 32 hex digits"));
    }
    Ok(())
}

/// Handles `/api/{set}…` for the sets of [`SETS`]; `None` when the path is not one of them.
pub(super) async fn handle(admin: &Admin, method: &Method, segs: &[&str], query: &str, body: &[u8], shape: &Shape, actor: &Actor) -> Option<Result<Response, ApiError>> {
    let first = *segs.first()?;
    let (set, id) = match split_key(first) {
        Some((s, id)) => (s, Some(id)),
        None => (first, None),
    };
    let prefix = prefix_of(set)?;
    Some(handle_set(admin, method, set, prefix, id, &segs[1..], query, body, shape, actor).await)
}

#[allow(clippy::too_many_arguments)]
async fn handle_set(admin: &Admin, method: &Method, set: &str, prefix: &str, id: Option<String>, rest: &[&str], query: &str, body: &[u8], shape: &Shape, actor: &Actor) -> Result<Response, ApiError> {
    let db = &admin.db;
    let json_body = || -> Result<Value, ApiError> { serde_json::from_slice(body).map_err(|_| bad("body", "not a JSON object")) };
    match (method.as_str(), id, rest) {
        ("GET", None, []) => {
            let mut tx = db.pool().begin().await.map_err(db_err)?;
            let all = entities(&mut tx, &db.sealer(), set).await.map_err(internal)?;
            tx.commit().await.map_err(db_err)?;
            let filter = super::v2::query_param(query, "$filter");
            let (top, skip) = super::v2::paging(query)?;
            let items: Vec<(String, Value)> = all.into_iter().filter(|(_, v)| matches_filter(v, filter.as_deref())).skip(skip).take(top).map(|(id, v)| (id, shown(set, &v))).collect();
            Ok(shape.respond(StatusCode::OK, shape.collection(set, items)))
        }
        ("POST", None, []) => {
            let v = json_body()?;
            let mut obj = v.as_object().cloned().ok_or_else(|| bad("body", "not a JSON object"))?;
            let id = match obj.get("Id").and_then(Value::as_str) {
                Some(given) => {
                    let guid = given.strip_prefix(prefix).ok_or_else(|| bad("Id", &format!("must start with {prefix}")))?;
                    sealcast_drm::Kid::parse(guid).map_err(|_| bad("Id", "not a GUID"))?;
                    given.to_string()
                }
                None => crate::catalog::db::new_id(prefix),
            };
            obj.insert("Id".into(), json!(id));
            validate(admin, set, &id, &mut obj, None).await?;
            let t = format_time(now());
            obj.insert("Created".into(), json!(t));
            obj.insert("LastModified".into(), json!(t));
            let v = Value::Object(obj);
            store(db, set, &id, &v, true, actor).await?;
            let mut r = shape.respond(StatusCode::CREATED, shape.entity(set, &id, shown(set, &v)));
            if let Ok(h) = HeaderValue::from_str(&format!("{}{set}('{}')", shape.base, super::v2::pct(&id))) {
                r.headers_mut().insert(header::LOCATION, h);
            }
            Ok(r)
        }
        ("GET", Some(id), []) => {
            let v = load(db, set, &id).await?.ok_or_else(|| not_found(&format!("{set}('{id}')")))?;
            Ok(shape.respond(StatusCode::OK, shape.entity(set, &id, shown(set, &v))))
        }
        ("PUT" | "MERGE" | "PATCH", Some(id), []) => {
            let old = load(db, set, &id).await?.ok_or_else(|| not_found(&format!("{set}('{id}')")))?;
            let patch = json_body()?;
            let patch = patch.as_object().ok_or_else(|| bad("body", "not a JSON object"))?;
            let mut obj = old.as_object().cloned().unwrap_or_default();
            for (k, v) in patch {
                if ["Id", "Created", "Path", "Uri"].contains(&k.as_str()) {
                    continue;
                }
                obj.insert(k.clone(), v.clone());
            }
            validate(admin, set, &id, &mut obj, Some(&old)).await?;
            obj.insert("LastModified".into(), json!(format_time(now())));
            store(db, set, &id, &Value::Object(obj), false, actor).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("DELETE", Some(id), []) => {
            let mut tx = db.pool().begin().await.map_err(db_err)?;
            sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db_err)?;
            let n = sqlx::query("DELETE FROM ams_entities WHERE entity_set = $1 AND id = $2").bind(set).bind(&id).execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            if n == 0 {
                return Err(not_found(&format!("{set}('{id}')")));
            }
            sqlx::query("DELETE FROM ams_links WHERE (source_set = $1 AND source_id = $2) OR target_id = $2").bind(set).bind(&id).execute(&mut *tx).await.map_err(db_err)?;
            append_audit(&mut tx, actor, "deleted", set, &id, "").await.map_err(internal)?;
            db.notify(&mut tx).await.map_err(internal)?;
            tx.commit().await.map_err(db_err)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("POST", Some(id), ["$links", nav]) => {
            let (_, _, target_set) = LINKS.iter().find(|(s, n, _)| *s == set && n == nav).ok_or_else(|| not_found(&format!("{set}/$links/{nav}")))?;
            let target = link_target(&json_body()?, target_set)?;
            if !exists(db, set, &id).await? {
                return Err(not_found(&format!("{set}('{id}')")));
            }
            if !exists(db, target_set, &target).await? {
                return Err(bad("uri", &format!("{target_set}('{target}') does not exist")));
            }
            if *nav == "DeliveryPolicies" {
                // One policy per protocol per asset.
                let new = load(db, "AssetDeliveryPolicies", &target).await?.and_then(|p| p.get("AssetDeliveryProtocol").and_then(Value::as_i64)).unwrap_or(0);
                let linked = sqlx::query("SELECT target_id FROM ams_links WHERE source_set = 'Assets' AND source_id = $1 AND nav = 'DeliveryPolicies'").bind(&id).fetch_all(db.pool()).await.map_err(db_err)?;
                for r in linked {
                    let other: String = r.try_get(0).map_err(db_err)?;
                    let flags = load(db, "AssetDeliveryPolicies", &other).await?.and_then(|p| p.get("AssetDeliveryProtocol").and_then(Value::as_i64)).unwrap_or(0);
                    if flags & new != 0 && other != target {
                        return Err(ApiError { status: StatusCode::CONFLICT, code: "Conflict", message: format!("uri: the asset already has delivery policy {other} for one of these protocols") });
                    }
                }
            }
            let mut tx = db.pool().begin().await.map_err(db_err)?;
            sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db_err)?;
            sqlx::query("INSERT INTO ams_links (source_set, source_id, nav, target_id, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_set, source_id, nav, target_id) DO NOTHING")
                .bind(set)
                .bind(&id)
                .bind(*nav)
                .bind(&target)
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit(&mut tx, actor, "linked", set, &id, &format!("{nav}={target}")).await.map_err(internal)?;
            db.notify(&mut tx).await.map_err(internal)?;
            tx.commit().await.map_err(db_err)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("DELETE", Some(id), ["$links", nav_target]) => {
            let (nav, target) = split_key(nav_target).ok_or_else(|| bad("path", "expected $links/Nav('id')"))?;
            let mut tx = db.pool().begin().await.map_err(db_err)?;
            sqlx::query("UPDATE catalog_state SET version = version + 1 WHERE id = 1").execute(&mut *tx).await.map_err(db_err)?;
            let n = sqlx::query("DELETE FROM ams_links WHERE source_set = $1 AND source_id = $2 AND nav = $3 AND target_id = $4").bind(set).bind(&id).bind(nav).bind(&target).execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            if n == 0 {
                return Err(not_found(&format!("link {set}('{id}')/{nav}('{target}')")));
            }
            append_audit(&mut tx, actor, "unlinked", set, &id, &format!("{nav}={target}")).await.map_err(internal)?;
            db.notify(&mut tx).await.map_err(internal)?;
            tx.commit().await.map_err(db_err)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("GET", Some(id), [nav]) if set == "Assets" => {
            // Navigation: an asset's Files, Locators, ContentKeys, DeliveryPolicies.
            let mut tx = db.pool().begin().await.map_err(db_err)?;
            let items: Vec<(String, Value)> = match *nav {
                "Files" | "Locators" => {
                    let key = if *nav == "Files" { "ParentAssetId" } else { "AssetId" };
                    entities(&mut tx, &db.sealer(), nav).await.map_err(internal)?.into_iter().filter(|(_, v)| v.get(key).and_then(Value::as_str) == Some(id.as_str())).collect()
                }
                "DeliveryPolicies" => {
                    let all = entities(&mut tx, &db.sealer(), "AssetDeliveryPolicies").await.map_err(internal)?;
                    let linked = crate::catalog::ams::links(&mut tx, "Assets", "DeliveryPolicies").await.map_err(internal)?;
                    linked.into_iter().filter(|(s, _)| *s == id).filter_map(|(_, t)| all.get(&t).map(|v| (t, v.clone()))).collect()
                }
                "ContentKeys" => {
                    let linked = crate::catalog::ams::links(&mut tx, "Assets", "ContentKeys").await.map_err(internal)?;
                    linked.into_iter().filter(|(s, _)| *s == id).map(|(_, t)| (t.clone(), json!({ "Id": t }))).collect()
                }
                _ => return Err(not_found(&format!("Assets('{id}')/{nav}"))),
            };
            tx.commit().await.map_err(db_err)?;
            Ok(shape.respond(StatusCode::OK, shape.collection(nav, items)))
        }
        _ => Err(not_found(&format!("{method} {set}"))),
    }
}

/// `$filter=Name eq 'x'` or `Id eq 'x'` (what the v2 SDK sends for lookups); other filters are
/// refused by matching nothing.
fn matches_filter(v: &Value, filter: Option<&str>) -> bool {
    let Some(f) = filter else { return true };
    let Some((field, lit)) = f.split_once(" eq ") else { return false };
    let lit = lit.trim().trim_matches('\'');
    v.get(field.trim()).and_then(Value::as_str) == Some(lit)
}
