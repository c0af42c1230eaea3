//! The catalog as a document: what a TOML catalog file holds and what the database store
//! reads back from its rows, and the one validation that turns documents into the
//! [`Snapshot`] the request path reads. Both stores go through [`Snapshot::build`], so the
//! same catalog gives the same policies, keys, outputs and ETags whichever store holds it.
//!
//! Secrets appear in a document in one of three ways: clear (hex or base64 text, as an
//! operator writes a TOML catalog), wrapped (`key_wrapped`, `cpix_wrapped`,
//! `[authorization_wrapped]`: sealed under the key-encryption key, as the database holds
//! them and `catalog export --with-keys` writes them), or absent (an export without keys, whose
//! import leaves the stored secrets as they are). [`Resolve`] says how a store reads files and
//! opens wrapped secrets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sealcast_drm::auth::{AuthorizationPolicy, AuthorizationPolicyConfig};
use sealcast_drm::{ContentKey, KeyKind, Kid};
use zeroize::Zeroizing;

use super::{AssetPolicy, Delivery, KeyGrant, LicenseUrls, StorageEncryption};

/// One catalog document (a TOML file, or the whole database).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogDoc {
    /// Assets with their delivery policies and keys.
    #[serde(default, rename = "asset", skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<AssetDoc>,
    /// Streaming locators (Azure Media Services' `OnDemandOrigin` locators).
    #[serde(default, rename = "locator", skip_serializing_if = "Vec::is_empty")]
    pub locators: Vec<LocatorDoc>,
    /// Named authorization policies of this document's keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization: BTreeMap<String, AuthorizationPolicyConfig>,
    /// The same, sealed (database, `export --with-keys`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authorization_wrapped: BTreeMap<String, String>,
    /// Named access policies (signed URLs, cookies, tokens) of this document's assets and
    /// rules.
    #[serde(default, skip_serializing)]
    pub access: BTreeMap<String, crate::access::AccessPolicyConfig>,
    /// The same, sealed (database, `export --with-keys`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub access_wrapped: BTreeMap<String, String>,
    /// Access policies of every asset under a path prefix (`[[access_rule]]`).
    #[serde(default, rename = "access_rule", skip_serializing_if = "Vec::is_empty")]
    pub access_rules: Vec<AccessRuleDoc>,
    /// Written by `catalog export` without `--with-keys`: the keys were left out, and an
    /// import takes them from the database for the entries it names.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keys_omitted: bool,
    /// Written by `catalog export --with-keys`: the key its sealed values open with, wrapped by
    /// the exporting database's key-encryption key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_by: Option<SealedBy>,
}

/// `[[access_rule]]`: an access policy for every asset under a folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleDoc {
    /// A folder path; the rule covers it and everything under it.
    pub prefix: String,
    /// A name from the document's `[access.*]`.
    pub access: String,
}

/// The data-encryption key of an exported document, wrapped by a key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedBy {
    /// `local` or `aws_kms`.
    pub kind: String,
    /// Which KEK (a file path or a KMS key; not a secret).
    pub reference: String,
    /// The wrapped key (base64).
    pub wrapped_dek: String,
}

/// One asset's delivery policy, keys and storage encryption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetDoc {
    /// Folder path under the storage root.
    pub path: String,
    /// Protocols not named are blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dash: Option<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hls: Option<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smooth: Option<Delivery>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clear_lead_secs: u32,
    #[serde(default, skip_serializing_if = "is_default")]
    pub license: LicenseUrls,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyDoc>,
    /// A CPIX 2.3 document (path relative to the catalog file) supplying the keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpix: Option<PathBuf>,
    /// The CPIX document itself, sealed (database, `export --with-keys`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpix_wrapped: Option<String>,
    /// Storage encryption at rest (written by `sealcast ingest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageDoc>,
    /// Default authorization policy (a name from `[authorization.*]`) of the asset's keys
    /// that name none (CPIX keys included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub carry_token: bool,
    /// Azure Media Services' `ProgressiveDownload` protocol: track files downloadable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub progressive_download: bool,
    /// Access policy (a name from `[access.*]`); else the longest `[[access_rule]]` prefix
    /// covering the path, else the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

impl AssetDoc {
    /// An entry naming no protocol (which blocks every one).
    pub fn new(path: &str) -> AssetDoc {
        AssetDoc {
            path: path.into(),
            dash: None,
            hls: None,
            smooth: None,
            clear_lead_secs: 0,
            license: LicenseUrls::default(),
            keys: Vec::new(),
            cpix: None,
            cpix_wrapped: None,
            storage: None,
            authorization: None,
            carry_token: false,
            progressive_download: false,
            access: None,
        }
    }
}

/// One content key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDoc {
    pub kid: String,
    /// Hex (32 digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretText>,
    /// The key sealed under the key-encryption key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_wrapped: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: KindDoc,
    /// Authorization policy name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
}

/// A content key's kind, as the catalog spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KindDoc {
    #[default]
    CommonEncryption,
    CommonEncryptionCbcs,
    EnvelopeEncryption,
}

impl KindDoc {
    /// The key kind.
    pub fn kind(self) -> KeyKind {
        match self {
            KindDoc::CommonEncryption => KeyKind::CommonEncryption,
            KindDoc::CommonEncryptionCbcs => KeyKind::CommonEncryptionCbcs,
            KindDoc::EnvelopeEncryption => KeyKind::EnvelopeEncryption,
        }
    }

    /// Azure Media Services' `ContentKeyType` number.
    pub fn ams_type(self) -> i64 {
        match self {
            KindDoc::CommonEncryption => 0,
            KindDoc::EnvelopeEncryption => 4,
            KindDoc::CommonEncryptionCbcs => 6,
        }
    }

    /// From Azure Media Services' `ContentKeyType` number (streaming keys only).
    pub fn from_ams_type(t: i64) -> Option<KindDoc> {
        [KindDoc::CommonEncryption, KindDoc::EnvelopeEncryption, KindDoc::CommonEncryptionCbcs].into_iter().find(|k| k.ams_type() == t)
    }
}

/// Storage encryption at rest: one key, an IV per encrypted file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageDoc {
    pub key_id: String,
    /// Hex (64 digits for AES-256, 32 for AES-128).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<SecretText>,
    /// The key sealed under the key-encryption key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_wrapped: Option<String>,
    pub files: Vec<StorageFileDoc>,
}

/// One storage-encrypted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFileDoc {
    pub name: String,
    /// Hex (16 digits).
    pub iv: String,
}

/// A streaming locator: its ID is the first segment of `/{locator}/{name}.ism/…` URLs; before
/// `start` and from `expiry` on, its URLs answer 404.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocatorDoc {
    pub id: String,
    /// The asset's folder path.
    pub asset: String,
    /// RFC 3339 (`2026-12-03T10:00:00Z`); none: from creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// RFC 3339; none: never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
}

/// Secret text (a key in hex): compared and serialized as given, never shown by `Debug`,
/// wiped when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::ZeroizeOnDrop)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// How a store reads what a document refers to.
pub trait Resolve: Sync {
    /// A file named relative to the document (CPIX documents, PEM and JWKS files).
    fn file(&self, rel: &str) -> std::io::Result<String>;
    /// Opens a sealed secret; `identity` is the record it belongs to (the associated data).
    fn unwrap(&self, sealed: &str, identity: &str) -> anyhow::Result<Zeroizing<Vec<u8>>>;
}

/// The associated data binding a sealed secret to its record, so a sealed value moved to
/// another record does not open.
pub mod identity {
    use sealcast_drm::Kid;

    /// A content key.
    pub fn content_key(kid: Kid, kind: super::KindDoc) -> String {
        format!("content-key/{kid}/{}", kind.ams_type())
    }
    /// A storage key.
    pub fn storage_key(key_id: Kid) -> String {
        format!("storage-key/{key_id}")
    }
    /// An authorization policy's options (its token keys).
    pub fn authorization(name: &str) -> String {
        format!("authorization/{name}")
    }
    /// A protection key's private key.
    pub fn protection_key(thumbprint: &str) -> String {
        format!("protection-key/{thumbprint}")
    }
    /// A content key uploaded through the management API (by its `nb:kid:UUID:` id).
    pub fn uploaded_key(id: &str) -> String {
        format!("uploaded-key/{id}")
    }
    /// An access policy (its EdgeAuth keys).
    pub fn access(name: &str) -> String {
        format!("access/{name}")
    }
    /// An asset's CPIX document.
    pub fn cpix(asset: &str) -> String {
        format!("cpix/{}", asset.to_ascii_lowercase())
    }
}

/// A locator, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator {
    /// The asset's folder path.
    pub asset: String,
    /// Unix seconds from which it answers (inclusive).
    pub start: Option<i64>,
    /// Unix seconds from which it no longer answers.
    pub expiry: Option<i64>,
}

impl Locator {
    /// Whether its URLs answer at `now` (Unix seconds).
    pub fn open_at(&self, now: i64) -> bool {
        self.start.is_none_or(|s| now >= s) && self.expiry.is_none_or(|e| now < e)
    }
}

/// The snapshot's maps, asked on every request: foldhash rather than SipHash (a manifest
/// request looks up two paths; their keys are the operator's, so no one can flood them).
type Lookup<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One validated load of the catalog: what the request path reads.
#[derive(Default)]
pub struct Snapshot {
    /// By lowercased path: (the path as written, its policy).
    pub(crate) assets: Lookup<String, (String, Arc<AssetPolicy>)>,
    pub(crate) keys: Lookup<Kid, KeyGrant>,
    pub(crate) locators: Lookup<String, Locator>,
    /// Access policies by lowercased asset path.
    pub(crate) access: Lookup<String, Arc<crate::access::AccessPolicy>>,
    /// Access policies by lowercased path prefix, longest first.
    pub(crate) access_rules: Vec<(String, Arc<crate::access::AccessPolicy>)>,
}

impl Snapshot {
    /// Validates documents (each with a label for errors and its resolver) as one catalog.
    pub fn build(docs: &[(String, &CatalogDoc, &dyn Resolve)]) -> anyhow::Result<Snapshot> {
        let mut out = Lookup::default();
        let mut grants: HashMap<Kid, (KeyGrant, String)> = HashMap::new();
        // IVs must be unique per key across the whole catalog, not just within an asset.
        let mut ivs = HashSet::new();
        let mut locators = Lookup::default();
        let mut access_of = Lookup::default();
        let mut access_rules: Vec<(String, Arc<crate::access::AccessPolicy>)> = Vec::new();
        for (label, doc, resolve) in docs {
            let auth = build_authorization(doc, *resolve).with_context(|| format!("catalog {label}"))?;
            let mut access = HashMap::new();
            for (name, cfg) in &doc.access {
                let built = cfg.build(|p: &std::path::Path| resolve.file(&p.to_string_lossy())).map_err(|e| anyhow::anyhow!("catalog {label}: access '{name}': {e}"))?;
                access.insert(name.clone(), Arc::new(built));
            }
            for (name, sealed) in &doc.access_wrapped {
                if doc.access.contains_key(name) {
                    bail!("catalog {label}: access '{name}' is given both clear and wrapped");
                }
                let json = resolve.unwrap(sealed, &identity::access(name)).with_context(|| format!("catalog {label}: access '{name}'"))?;
                let cfg: crate::access::AccessPolicyConfig = serde_json::from_slice(&json).map_err(|_| anyhow::anyhow!("catalog {label}: access '{name}': the sealed policy is not an access policy"))?;
                let built = cfg.build(|p: &std::path::Path| resolve.file(&p.to_string_lossy())).map_err(|e| anyhow::anyhow!("catalog {label}: access '{name}': {e}"))?;
                access.insert(name.clone(), Arc::new(built));
            }
            let named = |n: &str| access.get(n).cloned().ok_or_else(|| anyhow::anyhow!("catalog {label}: access '{n}' is not defined in this file"));
            for r in &doc.access_rules {
                if sealcast_storage::AssetPath::parse(&format!("/{}", r.prefix)).is_err() {
                    bail!("catalog {label}: access_rule prefix '{}' must be a plain folder path", r.prefix);
                }
                let prefix = r.prefix.trim_end_matches('/').to_ascii_lowercase();
                if access_rules.iter().any(|(p, _)| *p == prefix) {
                    bail!("catalog {label}: access_rule prefix '{}' is listed twice", r.prefix);
                }
                access_rules.push((prefix, named(&r.access)?));
            }
            for a in &doc.assets {
                if let Some(n) = &a.access {
                    access_of.insert(a.path.to_ascii_lowercase(), named(n)?);
                }
            }
            for a in &doc.assets {
                let path = a.path.clone();
                let (policy, key_auth) = validate(a, *resolve, &auth).with_context(|| format!("catalog {label}: asset '{path}'"))?;
                for (k, name) in policy.keys.iter().zip(key_auth) {
                    // One KID, one key and one policy across the whole catalog: the key service
                    // looks keys up by KID alone.
                    let tag = format!("{label}#{}", name.as_deref().unwrap_or(""));
                    let grant = KeyGrant { key: k.clone(), policy: name.as_ref().and_then(|n| auth.get(n).cloned()) };
                    match grants.get(&k.kid()) {
                        Some((g, t)) if g.key != grant.key || *t != tag => {
                            bail!("catalog {label}: asset '{path}': key {} is listed elsewhere with other key bytes or another authorization policy", k.kid())
                        }
                        Some(_) => {}
                        None => {
                            grants.insert(k.kid(), (grant, tag));
                        }
                    }
                }
                if let Some(s) = &policy.storage {
                    for (name, iv) in &s.files {
                        if !ivs.insert((s.key_id, *iv)) {
                            bail!("catalog {label}: asset '{path}': file '{name}' reuses an IV already used with key {}", s.key_id);
                        }
                    }
                }
                if out.insert(path.to_ascii_lowercase(), (path.clone(), Arc::new(policy))).is_some() {
                    bail!("catalog {label}: asset '{path}' is listed twice (paths compare case-insensitively)");
                }
            }
            for l in &doc.locators {
                let loc = validate_locator(l).with_context(|| format!("catalog {label}: locator '{}'", l.id))?;
                if locators.insert(l.id.clone(), loc).is_some() {
                    bail!("catalog {label}: locator '{}' is listed twice", l.id);
                }
            }
        }
        access_rules.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        Ok(Snapshot { assets: out, keys: grants.into_iter().map(|(k, (g, _))| (k, g)).collect(), locators, access: access_of, access_rules })
    }

    /// Number of assets with a policy.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// Whether no asset has a policy.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// Every asset with its policy, by path.
    pub fn assets(&self) -> Vec<(String, Arc<AssetPolicy>)> {
        let mut v: Vec<(String, Arc<AssetPolicy>)> = self.assets.values().cloned().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Every storage-encrypted file, by path under the storage root, with its key and IV.
    pub fn storage_files(&self) -> Vec<(String, sealcast_storage::FileEncryption)> {
        let mut v = Vec::new();
        for (asset, p) in self.assets.values() {
            if let Some(s) = &p.storage {
                for (name, iv) in &s.files {
                    v.push((format!("{asset}/{name}"), sealcast_storage::FileEncryption { key_id: s.key_id.to_string(), key: s.key.clone(), iv: *iv }));
                }
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The access policy of an asset: its own, else the longest covering `[[access_rule]]`.
    pub fn access(&self, path: &str) -> Option<Arc<crate::access::AccessPolicy>> {
        let path = lowercase(path);
        if let Some(p) = self.access.get(path.as_ref()) {
            return Some(p.clone());
        }
        self.access_rules.iter().find(|(prefix, _)| path == *prefix || path.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'))).map(|(_, p)| p.clone())
    }

    /// The policy of an asset (paths compare case-insensitively).
    pub fn policy(&self, path: &str) -> Option<Arc<AssetPolicy>> {
        self.assets.get(lowercase(path).as_ref()).map(|(_, p)| p.clone())
    }
}

/// `s` in ASCII lower case, copied only when it has an upper-case letter (asked on every
/// request, for paths that are nearly always lower case already).
fn lowercase(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn build_authorization(doc: &CatalogDoc, resolve: &dyn Resolve) -> anyhow::Result<HashMap<String, Arc<AuthorizationPolicy>>> {
    let mut auth = HashMap::new();
    for (name, cfg) in &doc.authorization {
        let built = cfg.build(|p| resolve.file(p)).map_err(|e| anyhow::anyhow!("authorization '{name}': {e}"))?;
        auth.insert(name.clone(), Arc::new(built));
    }
    for (name, sealed) in &doc.authorization_wrapped {
        if doc.authorization.contains_key(name) {
            bail!("authorization '{name}' is given both clear and wrapped");
        }
        let json = resolve.unwrap(sealed, &identity::authorization(name)).with_context(|| format!("authorization '{name}'"))?;
        let cfg: AuthorizationPolicyConfig = serde_json::from_slice(&json).map_err(|_| anyhow::anyhow!("authorization '{name}': the sealed policy is not a policy"))?;
        let built = cfg.build(|p| resolve.file(p)).map_err(|e| anyhow::anyhow!("authorization '{name}': {e}"))?;
        auth.insert(name.clone(), Arc::new(built));
    }
    Ok(auth)
}

/// A secret given clear (hex of `len` bytes, any of `lens`) or sealed; exactly one of them.
fn secret_bytes(clear: &Option<SecretText>, sealed: &Option<String>, lens: &[usize], identity: &str, resolve: &dyn Resolve, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let bytes = match (clear, sealed) {
        (Some(c), None) => {
            let t = c.0.trim();
            lens.iter().find(|n| t.len() == 2 * **n).and_then(|n| hex_n(t, *n)).map(Zeroizing::new).ok_or_else(|| anyhow::anyhow!("{what}: expected {} hex digits", lens.iter().map(|n| (2 * n).to_string()).collect::<Vec<_>>().join(" or ")))?
        }
        (None, Some(s)) => resolve.unwrap(s, identity).with_context(|| what.to_string())?,
        (Some(_), Some(_)) => bail!("{what}: give the key either clear or wrapped, not both"),
        (None, None) => bail!("{what}: no key given (an export without keys only updates what it names)"),
    };
    if !lens.contains(&bytes.len()) {
        bail!("{what}: wrong length");
    }
    Ok(bytes)
}

/// Validates one asset; also returns each key's authorization policy name.
fn validate(a: &AssetDoc, resolve: &dyn Resolve, auth: &HashMap<String, Arc<AuthorizationPolicy>>) -> anyhow::Result<(AssetPolicy, Vec<Option<String>>)> {
    if sealcast_storage::AssetPath::parse(&format!("/{}", a.path)).is_err() {
        bail!("path must be a plain folder path under the storage root");
    }
    let known = |n: &Option<String>| -> anyhow::Result<()> {
        match n {
            Some(n) if !auth.contains_key(n) => bail!("authorization '{n}' is not defined in this file"),
            _ => Ok(()),
        }
    };
    known(&a.authorization)?;
    let mut keys = Vec::new();
    let mut key_auth = Vec::new();
    let mut cpix_doc = None;
    for k in &a.keys {
        known(&k.authorization)?;
        key_auth.push(k.authorization.clone().or_else(|| a.authorization.clone()));
        let kid = Kid::parse(&k.kid).map_err(|e| anyhow::anyhow!("kid '{}': {e}", k.kid))?;
        let bytes = secret_bytes(&k.key, &k.key_wrapped, &[16], &identity::content_key(kid, k.kind), resolve, &format!("key of {kid}"))?;
        keys.push(ContentKey::new(kid, k.kind.kind(), &bytes).map_err(|e| anyhow::anyhow!("key of {kid}: {e}"))?);
    }
    let cpix_xml: Option<Zeroizing<Vec<u8>>> = match (&a.cpix, &a.cpix_wrapped) {
        (Some(p), None) => {
            let p = p.to_string_lossy();
            Some(Zeroizing::new(resolve.file(&p).with_context(|| format!("reading CPIX {p}"))?.into_bytes()))
        }
        (None, Some(s)) => Some(resolve.unwrap(s, &identity::cpix(&a.path)).context("CPIX document")?),
        (Some(_), Some(_)) => bail!("give the CPIX document either as a file or wrapped, not both"),
        (None, None) => None,
    };
    if let Some(xml) = cpix_xml {
        if !keys.is_empty() {
            bail!("give keys either inline or in a CPIX document, not both");
        }
        // The CPIX document's per-key scheme decides the kind; the policy's DASH scheme
        // (else cenc) is the default for keys that do not say.
        let default_kind = [a.dash, a.hls, a.smooth].iter().flatten().find_map(|d| d.key_kind()).unwrap_or(KeyKind::CommonEncryption);
        let doc = sealcast_drm::cpix::parse_cpix(&xml, default_kind).map_err(|e| anyhow::anyhow!("CPIX: {e}"))?;
        keys = doc.keys.iter().map(|k| k.key.clone()).collect();
        key_auth = vec![a.authorization.clone(); keys.len()];
        cpix_doc = Some(Arc::new(doc));
    }
    let mut seen = HashSet::new();
    for k in &keys {
        if !seen.insert((k.kid(), k.kind())) {
            bail!("key {} is listed twice", k.kid());
        }
    }
    for (proto, d) in [("dash", a.dash), ("hls", a.hls), ("smooth", a.smooth)] {
        let Some(d) = d else { continue };
        if let Some(kind) = d.key_kind() {
            if !keys.iter().any(|k| k.kind() == kind) {
                bail!("{proto} uses {d:?} but no {kind} key is given");
            }
        }
    }
    for (proto, d) in [("dash", a.dash), ("smooth", a.smooth)] {
        if d == Some(Delivery::DynamicEnvelopeEncryption) {
            bail!("{proto} cannot use DynamicEnvelopeEncryption (HLS only)");
        }
    }
    for (name, url) in [
        ("widevine", &a.license.widevine),
        ("playready", &a.license.playready),
        ("clearkey", &a.license.clearkey),
        ("fairplay", &a.license.fairplay),
        ("key_delivery", &a.license.key_delivery),
    ] {
        if let Some(u) = url {
            if u.is_empty() || u.chars().any(|c| c.is_control() || c == '"' || c == '<' || c == '>') {
                bail!("license.{name} is not a usable URL");
            }
        }
    }
    let storage = a.storage.as_ref().map(|s| validate_storage(s, resolve)).transpose()?;
    let policy = AssetPolicy {
        dash: a.dash,
        hls: a.hls,
        smooth: a.smooth,
        clear_lead_secs: a.clear_lead_secs,
        license: a.license.clone(),
        keys,
        storage,
        carry_token: a.carry_token,
        cpix: cpix_doc,
        progressive_download: a.progressive_download,
    };
    Ok((policy, key_auth))
}

fn validate_storage(s: &StorageDoc, resolve: &dyn Resolve) -> anyhow::Result<StorageEncryption> {
    let key_id = Kid::parse(&s.key_id).map_err(|e| anyhow::anyhow!("storage.key_id '{}': {e}", s.key_id))?;
    let key = secret_bytes(&s.key, &s.key_wrapped, &[32, 16], &identity::storage_key(key_id), resolve, &format!("storage key of {key_id} (AES-256 or AES-128)"))?;
    if s.files.is_empty() {
        bail!("storage lists no files");
    }
    let mut names = HashSet::new();
    let mut ivs = HashSet::new();
    let mut files = Vec::new();
    for f in &s.files {
        if f.name.contains('/') || sealcast_storage::AssetPath::parse(&format!("/{}", f.name)).is_err() {
            bail!("storage file '{}' must be a plain file name inside the asset folder", f.name);
        }
        let iv: [u8; 8] = hex_n(&f.iv, 8).and_then(|v| v.try_into().ok()).ok_or_else(|| anyhow::anyhow!("storage file '{}': iv must be 16 hex digits", f.name))?;
        if !names.insert(f.name.clone()) {
            bail!("storage file '{}' is listed twice", f.name);
        }
        if !ivs.insert(iv) {
            bail!("storage file '{}' reuses another file's IV", f.name);
        }
        files.push((f.name.clone(), iv));
    }
    Ok(StorageEncryption { key_id, key: key.to_vec(), files })
}

/// Locator IDs are URL path segments.
pub fn valid_locator_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate_locator(l: &LocatorDoc) -> anyhow::Result<Locator> {
    if !valid_locator_id(&l.id) {
        bail!("locator ID must be 1-128 letters, digits, '-' or '_'");
    }
    if sealcast_storage::AssetPath::parse(&format!("/{}", l.asset)).is_err() {
        bail!("asset '{}' is not a plain path under the root", l.asset);
    }
    let time = |t: &Option<String>, what: &str| -> anyhow::Result<Option<i64>> {
        t.as_deref().map(|t| parse_time(t).ok_or_else(|| anyhow::anyhow!("{what} '{t}' is not an RFC 3339 time like 2026-12-03T10:00:00Z"))).transpose()
    };
    let (start, expiry) = (time(&l.start, "start")?, time(&l.expiry, "expiry")?);
    if let (Some(s), Some(e)) = (start, expiry) {
        if e <= s {
            bail!("expiry is not after start");
        }
    }
    Ok(Locator { asset: l.asset.clone(), start, expiry })
}

/// RFC 3339 to Unix seconds.
pub fn parse_time(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp())
}

/// Unix seconds to RFC 3339 (UTC, whole seconds).
pub fn format_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// `n` bytes from exactly `2n` hex digits.
pub(crate) fn hex_n(s: &str, n: usize) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() != 2 * n || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..n).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}
