//! The catalog as Azure Media Services v2 entities (written by the management API): each v2
//! asset becomes a catalog asset — its folder, its files' storage encryption, its linked
//! content keys with their authorization policies, its delivery policies per protocol — and
//! each `OnDemandOrigin` locator a locator with its window. The service's rules hold: an asset
//! without a delivery policy streams clear; with any, protocols no policy covers are blocked.
//! An asset whose entities do not make a valid policy (say a cenc policy but no cenc key) is
//! served blocked — never clear — and logged.

use std::collections::BTreeMap;

use anyhow::Context;
use sealcast_drm::auth::{AuthorizationPolicyConfig, KeyConfig, KeySpec, RequiredClaim, TokenRequirementsConfig, TokenType};
use sealcast_drm::Kid;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::doc::{identity, AssetDoc, CatalogDoc, KeyDoc, KindDoc, LocatorDoc, Resolve, Snapshot, StorageDoc, StorageFileDoc};
use super::kek::Sealer;
use super::{Delivery, LicenseUrls};

/// Entity sets whose bodies are sealed (their options hold token verification keys).
pub const SEALED_SETS: [&str; 1] = ["ContentKeyAuthorizationPolicyOptions"];

/// The associated data of a sealed entity body.
pub fn entity_identity(set: &str, id: &str) -> String {
    format!("ams/{set}/{id}")
}

/// Every entity of `set` (bodies opened), by id.
pub async fn entities(tx: &mut AnyConnection, sealer: &Sealer, set: &str) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for r in sqlx::query("SELECT id, body FROM ams_entities WHERE entity_set = $1 ORDER BY id").bind(set).fetch_all(&mut *tx).await? {
        let (id, body): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let text = if SEALED_SETS.contains(&set) { String::from_utf8(sealer.open_sealed(&body, &entity_identity(set, &id))?.to_vec())? } else { body };
        let v = serde_json::from_str(&text).with_context(|| format!("{set}('{id}') is not JSON"))?;
        out.insert(id, v);
    }
    Ok(out)
}

/// Links `(source id, target id)` of one navigation property, in creation order.
pub async fn links(tx: &mut AnyConnection, source_set: &str, nav: &str) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT source_id, target_id FROM ams_links WHERE source_set = $1 AND nav = $2 ORDER BY created_at, target_id").bind(source_set).bind(nav).fetch_all(&mut *tx).await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// The v2 entities as catalog entries (secrets sealed with `sealer`, as the catalog holds them).
pub async fn read(tx: &mut AnyConnection, sealer: &Sealer) -> anyhow::Result<CatalogDoc> {
    let assets = entities(tx, sealer, "Assets").await?;
    if assets.is_empty() {
        return Ok(CatalogDoc::default());
    }
    let files = entities(tx, sealer, "Files").await?;
    let policies = entities(tx, sealer, "AssetDeliveryPolicies").await?;
    let options = entities(tx, sealer, "ContentKeyAuthorizationPolicyOptions").await?;
    let access = entities(tx, sealer, "AccessPolicies").await?;
    let locators = entities(tx, sealer, "Locators").await?;
    let key_links = links(tx, "Assets", "ContentKeys").await?;
    let policy_links = links(tx, "Assets", "DeliveryPolicies").await?;
    let option_links = links(tx, "ContentKeyAuthorizationPolicies", "Options").await?;
    let mut keys: BTreeMap<String, (i64, Option<String>, Vec<u8>)> = BTreeMap::new();
    for r in sqlx::query("SELECT id, content_key_type, authorization_policy_id, key_sealed FROM ams_content_keys").fetch_all(&mut *tx).await? {
        let id: String = r.try_get(0)?;
        let key = sealer.open_sealed(&r.try_get::<String, _>(3)?, &identity::uploaded_key(&id))?;
        keys.insert(id, (r.try_get(1)?, r.try_get(2)?, key.to_vec()));
    }
    let mut doc = CatalogDoc::default();
    // Authorization policies: named by their id, built from their options.
    let mut auth_names = BTreeMap::new();
    for (pid, oid) in &option_links {
        if auth_names.contains_key(pid) {
            continue;
        }
        let opts: Vec<&Value> = option_links.iter().filter(|(p, _)| p == pid).filter_map(|(_, o)| options.get(o)).collect();
        match authorization_of(&opts) {
            Ok(cfg) => {
                let json = serde_json::to_vec(&cfg)?;
                doc.authorization_wrapped.insert(pid.clone(), sealer.seal(&json, &identity::authorization(pid)));
                auth_names.insert(pid.clone(), ());
            }
            Err(e) => tracing::warn!(policy = %pid, option = %oid, error = %format!("{e:#}"), "content key authorization policy unusable: its keys are not delivered"),
        }
    }
    for (aid, a) in &assets {
        let path = a.get("Path").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut d = AssetDoc::new(&path);
        let storage_encrypted = a.get("Options").and_then(Value::as_i64).unwrap_or(0) & 1 != 0;
        let mut storage_key = None;
        for (_, kid_id) in key_links.iter().filter(|(s, _)| s == aid) {
            let Some((t, pol, key)) = keys.get(kid_id) else { continue };
            let Some(kid) = kid_id.strip_prefix("nb:kid:UUID:").and_then(|g| Kid::parse(g).ok()) else { continue };
            if *t == 1 {
                storage_key = Some((kid, key.clone()));
                continue;
            }
            let Some(kind) = KindDoc::from_ams_type(*t) else { continue };
            let authorization = pol.clone().filter(|p| auth_names.contains_key(p));
            d.keys.push(KeyDoc { kid: kid.to_string(), key: None, key_wrapped: Some(sealer.seal(key, &identity::content_key(kid, kind))), kind, authorization });
        }
        if storage_encrypted {
            if let Some((kid, key)) = storage_key {
                let files: Vec<StorageFileDoc> = files
                    .values()
                    .filter(|f| f.get("ParentAssetId").and_then(Value::as_str) == Some(aid) && f.get("IsEncrypted").and_then(Value::as_bool) == Some(true))
                    .filter_map(|f| {
                        let iv: u64 = f.get("InitializationVector").and_then(Value::as_str)?.parse().ok()?;
                        Some(StorageFileDoc { name: f.get("Name")?.as_str()?.to_string(), iv: sealcast_cenc::kid::hex(&iv.to_be_bytes()) })
                    })
                    .collect();
                if !files.is_empty() {
                    d.storage = Some(StorageDoc { key_id: kid.to_string(), key: None, key_wrapped: Some(sealer.seal(&key, &identity::storage_key(kid))), files });
                }
            }
        }
        let linked: Vec<&Value> = policy_links.iter().filter(|(s, _)| s == aid).filter_map(|(_, p)| policies.get(p)).collect();
        if linked.is_empty() {
            // No delivery policy: every protocol streams clear (AMS's rule).
            let c = Some(Delivery::NoDynamicEncryption);
            (d.dash, d.hls, d.smooth) = (c, c, c);
            d.progressive_download = true;
        }
        for p in linked {
            let flags = p.get("AssetDeliveryProtocol").and_then(Value::as_i64).unwrap_or(0);
            let delivery = match p.get("AssetDeliveryPolicyType").and_then(Value::as_i64) {
                Some(2) => Some(Delivery::NoDynamicEncryption),
                Some(3) => Some(Delivery::DynamicEnvelopeEncryption),
                Some(4) => Some(Delivery::DynamicCommonEncryption),
                Some(5) => Some(Delivery::DynamicCommonEncryptionCbcs),
                _ => None, // Blocked
            };
            if flags & 0x10 != 0 {
                // ProgressiveDownload: allowed unless the policy blocks it.
                d.progressive_download = delivery.is_some();
            }
            for (flag, slot) in [(0x2, &mut d.dash), (0x4, &mut d.hls), (0x1, &mut d.smooth)] {
                if flags & flag != 0 {
                    *slot = delivery;
                }
            }
            license_urls(p.get("AssetDeliveryConfiguration"), &mut d.license);
        }
        // Fail closed per asset: an entry that does not validate is served blocked.
        let check = CatalogDoc { assets: vec![d.clone()], authorization_wrapped: doc.authorization_wrapped.clone(), ..Default::default() };
        let opener = SealerResolve(sealer);
        if let Err(e) = Snapshot::build(&[(format!("v2 asset {aid}"), &check, &opener as &dyn Resolve)]) {
            tracing::warn!(asset = %aid, path = %path, error = %format!("{e:#}"), "v2 asset served blocked: its keys and policies do not make a valid delivery policy");
            (d.dash, d.hls, d.smooth) = (None, None, None);
            d.progressive_download = false;
            d.keys.clear();
        }
        doc.assets.push(d);
        for (lid, l) in locators.iter().filter(|(_, l)| l.get("AssetId").and_then(Value::as_str) == Some(aid) && l.get("Type").and_then(Value::as_i64) == Some(2)) {
            let guid = lid.strip_prefix("nb:lid:UUID:").unwrap_or(lid).to_string();
            let t = |k: &str| l.get(k).and_then(Value::as_str).map(str::to_string);
            let _ = access.get(l.get("AccessPolicyId").and_then(Value::as_str).unwrap_or(""));
            doc.locators.push(LocatorDoc { id: guid, asset: path.clone(), start: t("StartTime"), expiry: t("ExpirationDateTime") });
        }
    }
    Ok(doc)
}

struct SealerResolve<'a>(&'a Sealer);

impl Resolve for SealerResolve<'_> {
    fn file(&self, rel: &str) -> std::io::Result<String> {
        Err(std::io::Error::other(format!("v2 entities name no files ({rel})")))
    }
    fn unwrap(&self, sealed: &str, identity: &str) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
        self.0.open_sealed(sealed, identity)
    }
}

/// `AssetDeliveryConfiguration`: a string holding a JSON array of `{"Key":n,"Value":"…"}`.
pub fn parse_configuration(v: Option<&Value>) -> anyhow::Result<Vec<(i64, String)>> {
    let Some(s) = v.and_then(Value::as_str) else { return Ok(Vec::new()) };
    let arr: Vec<Value> = serde_json::from_str(s).context("not a JSON array of {Key, Value}")?;
    arr.iter().map(|e| Ok((e.get("Key").and_then(Value::as_i64).context("Key")?, e.get("Value").and_then(Value::as_str).context("Value")?.to_string()))).collect()
}

fn license_urls(v: Option<&Value>, l: &mut LicenseUrls) {
    let base = |u: &str| format!("{u}{}KID={{kid}}", if u.contains('?') { '&' } else { '?' });
    for (k, url) in parse_configuration(v).unwrap_or_default() {
        match k {
            1 => l.key_delivery = Some(url),
            2 => l.key_delivery = Some(base(url.split('?').next().unwrap_or(&url))),
            4 => l.playready = Some(url),
            7 => l.widevine = Some(url),
            8 => l.widevine = Some(base(url.split('?').next().unwrap_or(&url))),
            9 => l.fairplay = Some(url),
            10 => l.fairplay = Some(base(url.split('?').next().unwrap_or(&url))),
            _ => {}
        }
    }
}

/// An authorization policy from its options: the BaselineHttp (AES key) option's restriction
/// when there is one, else the first option's; Open, or the token requirements of its
/// `TokenRestrictionTemplate`.
pub fn authorization_of(options: &[&Value]) -> anyhow::Result<AuthorizationPolicyConfig> {
    let opt = options.iter().find(|o| o.get("KeyDeliveryType").and_then(Value::as_i64) == Some(2)).or(options.first()).context("the policy has no option")?;
    let restrictions = opt.get("Restrictions").and_then(Value::as_array).context("the option has no Restrictions")?;
    let r = restrictions.first().context("the option has no restriction")?;
    restriction_config(r)
}

/// One restriction as a policy configuration.
pub fn restriction_config(r: &Value) -> anyhow::Result<AuthorizationPolicyConfig> {
    match r.get("KeyRestrictionType").and_then(Value::as_i64) {
        Some(0) => Ok(AuthorizationPolicyConfig::Open {}),
        Some(1) => {
            let xml = r.get("Requirements").and_then(Value::as_str).context("a token restriction needs Requirements (a TokenRestrictionTemplate)")?;
            let cfg = AuthorizationPolicyConfig::TokenRestricted(token_template(xml)?);
            cfg.build_inline().map_err(|e| anyhow::anyhow!("TokenRestrictionTemplate: {e}"))?;
            Ok(cfg)
        }
        Some(2) => anyhow::bail!("IP restrictions are not supported (AMS never shipped them either)"),
        _ => anyhow::bail!("KeyRestrictionType must be 0 (Open) or 1 (TokenRestricted)"),
    }
}

/// Parses a `TokenRestrictionTemplate` (DataContractSerializer XML, as the v2 SDK writes it).
pub fn token_template(xml: &str) -> anyhow::Result<TokenRequirementsConfig> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut key_type: Option<String> = None;
    let (mut issuer, mut audience, mut token_type) = (None, None, None);
    let mut keys: Vec<(String, String)> = Vec::new(); // (i:type, value)
    let mut claims: Vec<(String, Option<String>)> = Vec::new();
    loop {
        let ev = reader.read_event().context("TokenRestrictionTemplate is not well-formed XML")?;
        let (e, empty) = match ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::Text(t) => {
                let text = t.unescape().context("bad XML text")?.trim().to_string();
                if text.is_empty() {
                    continue;
                }
                let parent = stack.iter().rev().nth(1).map(String::as_str).unwrap_or("");
                match stack.last().map(String::as_str).unwrap_or("") {
                    "Issuer" => issuer = Some(text),
                    "Audience" => audience = Some(text),
                    "TokenType" => token_type = Some(text),
                    "KeyValue" | "RawBody" if parent == "PrimaryVerificationKey" || parent == "TokenVerificationKey" => {
                        let t = key_type.clone().unwrap_or_default();
                        if parent == "PrimaryVerificationKey" {
                            keys.insert(0, (t, text));
                        } else {
                            keys.push((t, text));
                        }
                    }
                    "ClaimType" => {
                        if let Some(c) = claims.last_mut() {
                            c.0 = text;
                        }
                    }
                    "ClaimValue" => {
                        if let Some(c) = claims.last_mut() {
                            c.1 = Some(text);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
        for a in e.attributes().flatten() {
            let k = String::from_utf8_lossy(a.key.local_name().as_ref()).to_string();
            if k == "type" && (name == "PrimaryVerificationKey" || name == "TokenVerificationKey") {
                let v = a.unescape_value().map(|v| v.to_string()).unwrap_or_default();
                key_type = Some(v.rsplit(':').next().unwrap_or(&v).to_string());
            }
        }
        if name == "TokenClaim" {
            claims.push((String::new(), None));
        }
        if !empty {
            stack.push(name);
            if stack.len() > 32 {
                anyhow::bail!("TokenRestrictionTemplate nests too deep");
            }
        }
    }
    let token_type = match token_type.as_deref() {
        Some("JWT") => TokenType::Jwt,
        Some("SWT") => TokenType::Swt,
        other => anyhow::bail!("TokenType must be JWT or SWT (got {})", other.unwrap_or("nothing")),
    };
    let mut specs = Vec::new();
    for (t, v) in keys {
        let spec = match t.as_str() {
            "SymmetricVerificationKey" => KeySpec::Symmetric(v),
            "X509CertTokenVerificationKey" => KeySpec::X509Pem(format!("-----BEGIN CERTIFICATE-----\n{v}\n-----END CERTIFICATE-----\n")),
            other => anyhow::bail!("verification key type '{other}' is not supported (SymmetricVerificationKey, X509CertTokenVerificationKey)"),
        };
        specs.push(KeyConfig::from(spec));
    }
    let mut content_key_claim = false;
    let mut required_claims = Vec::new();
    for (name, value) in claims {
        if name == "urn:microsoft:azure:mediaservices:contentkeyidentifier" && value.is_none() {
            content_key_claim = true;
        } else if !name.is_empty() {
            required_claims.push(RequiredClaim { name, value });
        }
    }
    Ok(TokenRequirementsConfig {
        token_type,
        issuer: issuer.context("TokenRestrictionTemplate has no Issuer")?,
        audience: audience.context("TokenRestrictionTemplate has no Audience")?,
        keys: specs,
        required_claims,
        skew_secs: sealcast_drm::auth::DEFAULT_SKEW_SECS,
        content_key_claim,
        require_expiry: true,
    })
}
