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
            Ok(None) => tracing::debug!(policy = %pid, "content key authorization policy has no BaselineHttp option: its keys are not delivered in clear"),
            Ok(Some(cfg)) => {
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
            9 => l.fairplay = Some(skd(&url)),
            10 => l.fairplay = Some(skd(&base(url.split('?').next().unwrap_or(&url)))),
            _ => {}
        }
    }
}

/// The FairPlay key URI for a configured FairPlay licence URL: HLS names FairPlay keys with
/// `skd://`, and AMS users configured `GetKeyDeliveryUrl`'s `https://` answer with the scheme
/// swapped (the player app swaps it back to reach the key server), so `http(s)://` becomes
/// `skd://` here; anything else is kept.
fn skd(url: &str) -> String {
    match url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) {
        Some(rest) => format!("skd://{rest}"),
        None => url.to_string(),
    }
}

/// The authorization under which the origin hands a key out in clear (`/key/{kid}`,
/// `/clearkey`): the restriction of the policy's first BaselineHttp (2) option, Open or the
/// token requirements of its `TokenRestrictionTemplate`. `None` when the policy has no
/// BaselineHttp option: its PlayReady (1), Widevine (3) and FairPlay (4) options let a key out
/// only inside a DRM licence, which this origin does not issue, so such a key is not delivered
/// here at all (fail closed) — a FairPlay-only policy never turns into a clear key for anyone.
pub fn authorization_of(options: &[&Value]) -> anyhow::Result<Option<AuthorizationPolicyConfig>> {
    if options.is_empty() {
        anyhow::bail!("the policy has no option");
    }
    let Some(opt) = options.iter().find(|o| o.get("KeyDeliveryType").and_then(Value::as_i64) == Some(2)) else { return Ok(None) };
    let restrictions = opt.get("Restrictions").and_then(Value::as_array).context("the option has no Restrictions")?;
    let r = restrictions.first().context("the option has no restriction")?;
    restriction_config(r).map(Some)
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

/// A verification key of a template as read: its `i:type` and the texts of its members.
#[derive(Default)]
struct TemplateKey {
    primary: bool,
    kind: String,
    /// `KeyValue` (symmetric) or `RawBody` (asymmetric), base64.
    body: Option<String>,
    /// `Modulus`/`Exponent` members (an RSA key written as .NET `RSAParameters`), base64.
    modulus: Option<String>,
    exponent: Option<String>,
}

/// Most verification keys one template may hold (primary and alternates).
const MAX_TEMPLATE_KEYS: usize = sealcast_drm::auth::MAX_UNNAMED_KEYS;

/// Parses a `TokenRestrictionTemplate` (DataContractSerializer XML, as the v2 SDK writes it).
///
/// Verification keys, by their `i:type` (the namespace prefix ignored, the name compared
/// without regard to case: older SDKs call the RSA class `RSATokenVerificationKey`):
/// - `SymmetricVerificationKey`: `KeyValue`, base64 (HS256 / SWT's HMACSHA256);
/// - `X509CertTokenVerificationKey`: `RawBody`, the base64 DER certificate (its RSA or EC
///   P-256 key);
/// - `RsaTokenVerificationKey`: `RawBody`, base64 of the UTF-8 JSON `{"e": …, "n": …}` the
///   SDK's `InitFromRSAParameters` writes (base64 of the big-endian exponent and modulus; the
///   URL-safe alphabet is accepted too), or of .NET's `<RSAKeyValue><Modulus>…</Modulus>
///   <Exponent>…</Exponent></RSAKeyValue>`; or `Modulus`/`Exponent` members of the key itself.
///
/// The primary key comes first, then the `AlternateVerificationKeys` in order: a token signed
/// by any of them is accepted (see [`sealcast_drm::auth`]). A template without `TokenType`
/// (the SDK's old format) means SWT, as the SDK reads it. `OpenIdConnectDiscoveryDocument`
/// alone is refused: the origin fetches no keys over the network. Errors name the element,
/// never a key's value.
pub fn token_template(xml: &str) -> anyhow::Result<TokenRequirementsConfig> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let (mut issuer, mut audience, mut token_type, mut openid) = (None, None, None, false);
    let mut keys: Vec<TemplateKey> = Vec::new();
    // The key being read, and the depth of its element.
    let mut current: Option<(TemplateKey, usize)> = None;
    let mut claims: Vec<(String, Option<String>)> = Vec::new();
    loop {
        let ev = reader.read_event().context("TokenRestrictionTemplate is not well-formed XML")?;
        let (e, empty) = match ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                if current.as_ref().is_some_and(|(_, depth)| *depth == stack.len()) {
                    keys.extend(current.take().map(|(k, _)| k));
                }
                stack.pop();
                continue;
            }
            Event::Text(t) => {
                let text = t.unescape().context("bad XML text")?.trim().to_string();
                if text.is_empty() {
                    continue;
                }
                let element = stack.last().map(String::as_str).unwrap_or("");
                if let Some((key, depth)) = current.as_mut() {
                    if stack.len() == *depth + 1 {
                        match element {
                            "KeyValue" | "RawBody" => key.body = Some(text),
                            "Modulus" => key.modulus = Some(text),
                            "Exponent" => key.exponent = Some(text),
                            _ => {}
                        }
                    }
                    continue;
                }
                match element {
                    "Issuer" => issuer = Some(text),
                    "Audience" => audience = Some(text),
                    "TokenType" => token_type = Some(text),
                    "OpenIdDiscoveryUri" => openid = true,
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
        let parent = stack.last().map(String::as_str).unwrap_or("");
        let is_key = current.is_none() && (name == "PrimaryVerificationKey" || (name == "TokenVerificationKey" && parent == "AlternateVerificationKeys"));
        if is_key {
            let mut key = TemplateKey { primary: name == "PrimaryVerificationKey", ..Default::default() };
            let mut nil = false;
            for a in e.attributes().flatten() {
                let v = a.unescape_value().map(|v| v.to_string()).unwrap_or_default();
                match a.key.local_name().as_ref() {
                    b"type" => key.kind = v.rsplit(':').next().unwrap_or(&v).to_string(),
                    b"nil" => nil = v == "true",
                    _ => {}
                }
            }
            if !nil {
                if empty {
                    keys.push(key);
                } else {
                    current = Some((key, stack.len() + 1));
                }
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
        // The SDK reads a template without TokenType (its old format) as SWT.
        Some("SWT") | Some("Undefined") | None => TokenType::Swt,
        Some(_) => anyhow::bail!("TokenType must be JWT or SWT"),
    };
    if keys.iter().filter(|k| k.primary).count() > 1 {
        anyhow::bail!("TokenRestrictionTemplate has two PrimaryVerificationKey elements");
    }
    if !keys.iter().any(|k| k.primary) {
        if openid {
            anyhow::bail!("OpenIdConnectDiscoveryDocument is not supported (the origin fetches no keys over the network): give a PrimaryVerificationKey");
        }
        anyhow::bail!("TokenRestrictionTemplate has no PrimaryVerificationKey");
    }
    if keys.len() > MAX_TEMPLATE_KEYS {
        anyhow::bail!("AlternateVerificationKeys: at most {MAX_TEMPLATE_KEYS} verification keys in all");
    }
    // The primary first, then the alternates in document order.
    keys.sort_by_key(|k| !k.primary);
    let mut specs = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let which = if i == 0 { "PrimaryVerificationKey".to_string() } else { format!("AlternateVerificationKeys[{}]", i - 1) };
        specs.push(KeyConfig::from(template_key_spec(k).with_context(|| which)?));
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

/// Base64 in either alphabet, padded or not.
fn base64_any(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(&text).ok())
}

/// One template key as a policy key. Errors never show the key's bytes.
fn template_key_spec(k: &TemplateKey) -> anyhow::Result<KeySpec> {
    let kind = k.kind.to_ascii_lowercase();
    match kind.as_str() {
        "symmetricverificationkey" => Ok(KeySpec::Symmetric(k.body.clone().context("SymmetricVerificationKey has no KeyValue")?)),
        "x509certtokenverificationkey" => {
            let der = k.body.as_deref().and_then(base64_any).context("X509CertTokenVerificationKey has no base64 RawBody")?;
            use base64::Engine;
            Ok(KeySpec::X509Pem(format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", base64::engine::general_purpose::STANDARD.encode(der))))
        }
        "rsatokenverificationkey" => {
            let (n, e) = match (&k.modulus, &k.exponent, &k.body) {
                (Some(n), Some(e), _) => (n.clone(), e.clone()),
                (_, _, Some(body)) => rsa_raw_body(body)?,
                _ => anyhow::bail!("RsaTokenVerificationKey has neither RawBody nor Modulus and Exponent"),
            };
            let n = base64_any(&n).context("RsaTokenVerificationKey: the modulus is not base64")?;
            let e = base64_any(&e).context("RsaTokenVerificationKey: the exponent is not base64")?;
            let pem = sealcast_drm::auth::rsa_public_key_pem(&n, &e).context("RsaTokenVerificationKey: empty modulus or exponent")?;
            Ok(KeySpec::RsaPem(pem))
        }
        "" => anyhow::bail!("the verification key has no i:type"),
        _ => anyhow::bail!("verification key type '{}' is not supported (SymmetricVerificationKey, X509CertTokenVerificationKey, RsaTokenVerificationKey)", k.kind.chars().filter(|c| c.is_ascii_alphanumeric()).take(64).collect::<String>()),
    }
}

/// An `RsaTokenVerificationKey`'s `RawBody`: base64 of `{"e": …, "n": …}` (the v2 SDK) or of
/// `<RSAKeyValue><Modulus>…</Modulus><Exponent>…</Exponent></RSAKeyValue>` (.NET's
/// `ToXmlString`): (modulus, exponent), each base64.
fn rsa_raw_body(body: &str) -> anyhow::Result<(String, String)> {
    let bytes = base64_any(body).context("RsaTokenVerificationKey: RawBody is not base64")?;
    let text = String::from_utf8(bytes).ok().context("RsaTokenVerificationKey: RawBody is not UTF-8 text")?;
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&text) {
        let part = |name: &str| o.get(name).and_then(Value::as_str).map(str::to_string);
        return Ok((part("n").context("RsaTokenVerificationKey: RawBody has no \"n\"")?, part("e").context("RsaTokenVerificationKey: RawBody has no \"e\"")?));
    }
    let member = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].trim().to_string())
    };
    match (member("Modulus"), member("Exponent")) {
        (Some(n), Some(e)) => Ok((n, e)),
        _ => anyhow::bail!("RsaTokenVerificationKey: RawBody is neither {{\"e\", \"n\"}} JSON nor an RSAKeyValue"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = r#"xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.microsoft.com/Azure/MediaServices/KeyDelivery/TokenRestrictionTemplate/v1""#;

    fn b64(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn template(alternates: &str, primary: &str, kind: &str) -> String {
        format!(r#"<TokenRestrictionTemplate {NS}><AlternateVerificationKeys>{alternates}</AlternateVerificationKeys><Audience>urn:test</Audience><Issuer>http://testissuer.com/</Issuer><PrimaryVerificationKey {primary}<RequiredClaims><TokenClaim><ClaimType>urn:microsoft:azure:mediaservices:contentkeyidentifier</ClaimType><ClaimValue i:nil="true"/></TokenClaim><TokenClaim><ClaimType>sub</ClaimType><ClaimValue>viewer</ClaimValue></TokenClaim></RequiredClaims>{kind}</TokenRestrictionTemplate>"#)
    }

    fn symmetric(bytes: &[u8]) -> String {
        format!(r#"i:type="SymmetricVerificationKey"><KeyValue>{}</KeyValue></PrimaryVerificationKey>"#, b64(bytes))
    }

    /// An RSA-2048 public key's (n, e).
    fn rsa_components() -> (Vec<u8>, Vec<u8>) {
        use aws_lc_rs::signature::KeyPair;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = pair.public_key().as_ref().to_vec(); // PKCS#1 RSAPublicKey
        let (_, body, _) = tlv(&der);
        let (_, n, rest) = tlv(body);
        let (_, e, _) = tlv(rest);
        (n.to_vec(), e.to_vec())
    }

    fn tlv(d: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, hdr) = match d[1] {
            l if l < 0x80 => (l as usize, 2),
            0x81 => (d[2] as usize, 3),
            0x82 => (((d[2] as usize) << 8) | d[3] as usize, 4),
            _ => panic!("long"),
        };
        (d[0], &d[hdr..hdr + len], &d[hdr + len..])
    }

    #[test]
    fn symmetric_primary_and_alternates_in_order() {
        let alt = format!(r#"<TokenVerificationKey i:type="SymmetricVerificationKey"><KeyValue>{}</KeyValue></TokenVerificationKey>"#, b64(&[2; 32]));
        let t = token_template(&template(&alt, &symmetric(&[1; 32]), "<TokenType>JWT</TokenType>")).unwrap();
        assert_eq!(t.token_type, TokenType::Jwt);
        assert!(t.content_key_claim);
        assert_eq!(t.required_claims, vec![RequiredClaim { name: "sub".into(), value: Some("viewer".into()) }]);
        let keys: Vec<&KeySpec> = t.keys.iter().map(|k| &k.spec).collect();
        assert_eq!(keys, vec![&KeySpec::Symmetric(b64(&[1; 32])), &KeySpec::Symmetric(b64(&[2; 32]))]);
        AuthorizationPolicyConfig::TokenRestricted(t).build_inline().unwrap();
        // No TokenType: SWT, as the SDK reads its old format.
        assert_eq!(token_template(&template("", &symmetric(&[1; 32]), "")).unwrap().token_type, TokenType::Swt);
    }

    #[test]
    fn rsa_keys_as_the_sdk_writes_them() {
        let (n, e) = rsa_components();
        // InitFromRSAParameters: RawBody = UTF-8 of an indented JObject {"e", "n"}.
        let json = format!("{{\r\n  \"e\": \"{}\",\r\n  \"n\": \"{}\"\r\n}}", b64(&e), b64(&n));
        for kind in ["RsaTokenVerificationKey", "RSATokenVerificationKey", "d4p1:RsaTokenVerificationKey"] {
            let primary = format!(r#"i:type="{kind}"><RawBody>{}</RawBody></PrimaryVerificationKey>"#, b64(json.as_bytes()));
            let t = token_template(&template("", &primary, "<TokenType>JWT</TokenType>")).unwrap();
            assert!(matches!(&t.keys[0].spec, KeySpec::RsaPem(p) if p.contains("BEGIN RSA PUBLIC KEY")), "{kind}");
            AuthorizationPolicyConfig::TokenRestricted(t).build_inline().unwrap();
        }
        // .NET's RSAKeyValue XML in RawBody, and Modulus/Exponent members.
        let xml = format!("<RSAKeyValue><Modulus>{}</Modulus><Exponent>{}</Exponent></RSAKeyValue>", b64(&n), b64(&e));
        let alt = format!(r#"<TokenVerificationKey i:type="RsaTokenVerificationKey"><RawBody>{}</RawBody></TokenVerificationKey><TokenVerificationKey i:type="RsaTokenVerificationKey"><Exponent>{}</Exponent><Modulus>{}</Modulus></TokenVerificationKey>"#, b64(xml.as_bytes()), b64(&e), b64(&n));
        let t = token_template(&template(&alt, &symmetric(&[1; 32]), "<TokenType>JWT</TokenType>")).unwrap();
        assert_eq!(t.keys.len(), 3);
        assert!(t.keys[1..].iter().all(|k| matches!(&k.spec, KeySpec::RsaPem(_))));
        AuthorizationPolicyConfig::TokenRestricted(t).build_inline().unwrap();
        // A short RSA key is refused when the policy is built; an SWT template takes none.
        let short = format!(r#"i:type="RsaTokenVerificationKey"><Modulus>{}</Modulus><Exponent>AQAB</Exponent></PrimaryVerificationKey>"#, b64(&[0xc1; 128]));
        let t = token_template(&template("", &short, "<TokenType>JWT</TokenType>")).unwrap();
        assert!(AuthorizationPolicyConfig::TokenRestricted(t).build_inline().is_err());
    }

    #[test]
    fn refusals_name_the_element_and_no_key() {
        let secret = b64(&[7; 32]);
        let err = |xml: &str| format!("{:#}", token_template(xml).unwrap_err());
        let e = err(&template("", r#"i:type="RsaTokenVerificationKey"><RawBody>bm90IGpzb24=</RawBody></PrimaryVerificationKey>"#, ""));
        assert!(e.contains("PrimaryVerificationKey") && e.contains("RawBody"), "{e}");
        let alt = format!(r#"<TokenVerificationKey i:type="SymmetricVerificationKey"><KeyValue>{secret}</KeyValue></TokenVerificationKey><TokenVerificationKey i:type="Mystery"><RawBody>{secret}</RawBody></TokenVerificationKey>"#);
        let e = err(&template(&alt, &symmetric(&[1; 32]), ""));
        assert!(e.contains("AlternateVerificationKeys[1]") && e.contains("Mystery") && !e.contains(&secret), "{e}");
        let openid = format!(r#"<TokenRestrictionTemplate {NS}><Audience>a</Audience><Issuer>http://i/</Issuer><OpenIdConnectDiscoveryDocument><OpenIdDiscoveryUri>https://sts/.well-known/openid-configuration</OpenIdDiscoveryUri></OpenIdConnectDiscoveryDocument><PrimaryVerificationKey i:nil="true"/><TokenType>JWT</TokenType></TokenRestrictionTemplate>"#);
        assert!(err(&openid).contains("OpenIdConnectDiscoveryDocument"));
        let nine: String = (0..8).map(|_| format!(r#"<TokenVerificationKey i:type="SymmetricVerificationKey"><KeyValue>{secret}</KeyValue></TokenVerificationKey>"#)).collect();
        assert!(err(&template(&nine, &symmetric(&[1; 32]), "")).contains("at most 8"));
        assert!(err(&template("", &symmetric(&[1; 32]), "<TokenType>SAML</TokenType>")).contains("TokenType"));
    }

    #[test]
    fn only_a_baseline_http_option_lets_a_key_out_in_clear() {
        let open = serde_json::json!([{ "Name": "Open", "KeyRestrictionType": 0, "Requirements": null }]);
        let fairplay = serde_json::json!({ "KeyDeliveryType": 4, "Restrictions": open });
        let playready = serde_json::json!({ "KeyDeliveryType": 1, "Restrictions": open });
        let baseline = serde_json::json!({ "KeyDeliveryType": 2, "Restrictions": open });
        assert_eq!(authorization_of(&[&fairplay, &playready]).unwrap(), None);
        assert_eq!(authorization_of(&[&fairplay, &baseline]).unwrap(), Some(AuthorizationPolicyConfig::Open {}));
        assert!(authorization_of(&[]).is_err());
    }

    #[test]
    fn fairplay_urls_become_skd() {
        let mut l = LicenseUrls::default();
        license_urls(Some(&Value::String(r#"[{"Key":10,"Value":"https://origin.example/FairPlay/?x=1"}]"#.into())), &mut l);
        assert_eq!(l.fairplay.as_deref(), Some("skd://origin.example/FairPlay/?KID={kid}"));
        license_urls(Some(&Value::String(r#"[{"Key":9,"Value":"skd://k/1"}]"#.into())), &mut l);
        assert_eq!(l.fairplay.as_deref(), Some("skd://k/1"));
    }
}
