//! The TOML catalog: a file, or every `*.toml` in a folder, validated whole at start-up and on
//! `SIGHUP`; a reload that fails validation keeps the previous catalog and says why.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use serde::Deserialize;
use sealcast_drm::auth::{AuthorizationPolicy, AuthorizationPolicyConfig};
use sealcast_drm::{ContentKey, Kid, KeyKind};

use crate::access::{AccessPolicy, AccessPolicyConfig};

use super::{AssetPolicy, Catalog, Delivery, KeyGrant, LicenseUrls, StorageEncryption};

/// The TOML catalog (a file, or every `*.toml` in a folder).
pub struct TomlCatalog {
    source: PathBuf,
    current: RwLock<Arc<Snapshot>>,
}

/// One validated load of the catalog.
#[derive(Default)]
struct Snapshot {
    /// By lowercased path: (the path as written, its policy).
    assets: HashMap<String, (String, Arc<AssetPolicy>)>,
    keys: HashMap<Kid, KeyGrant>,
    /// Access policies by lowercased asset path.
    access: HashMap<String, Arc<AccessPolicy>>,
    /// Access policies by lowercased path prefix, longest first.
    access_rules: Vec<(String, Arc<AccessPolicy>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default, rename = "asset")]
    assets: Vec<AssetToml>,
    /// Named authorization policies of this file's keys.
    #[serde(default)]
    authorization: HashMap<String, AuthorizationPolicyConfig>,
    /// Named access policies of this file's assets and rules.
    #[serde(default)]
    access: HashMap<String, AccessPolicyConfig>,
    /// Access policies of every asset under a path prefix (`[[access_rule]]`).
    #[serde(default, rename = "access_rule")]
    access_rules: Vec<AccessRuleToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessRuleToml {
    /// A folder path; the rule covers it and everything under it.
    prefix: String,
    /// A name from this file's `[access.*]`.
    access: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetToml {
    path: String,
    /// Protocols not named are blocked.
    dash: Option<Delivery>,
    hls: Option<Delivery>,
    smooth: Option<Delivery>,
    #[serde(default)]
    clear_lead_secs: u32,
    #[serde(default)]
    license: LicenseUrls,
    #[serde(default)]
    keys: Vec<KeyToml>,
    /// A CPIX 2.3 document (path relative to the catalog file) supplying the keys.
    cpix: Option<PathBuf>,
    /// Storage encryption at rest (written by `sealcast ingest`).
    storage: Option<StorageToml>,
    /// Default authorization policy (a name from this file's `[authorization.*]`) of the
    /// asset's keys that name none (CPIX keys included).
    authorization: Option<String>,
    #[serde(default)]
    carry_token: bool,
    /// Access policy (a name from this file's `[access.*]`); else the longest
    /// `[[access_rule]]` prefix covering the path, else the server's default.
    access: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageToml {
    key_id: String,
    /// Hex (64 digits for AES-256, 32 for AES-128).
    key: String,
    files: Vec<StorageFileToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageFileToml {
    name: String,
    /// Hex (16 digits).
    iv: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyToml {
    kid: String,
    /// Hex (32 digits).
    key: String,
    #[serde(default = "default_kind")]
    kind: KindToml,
    /// Authorization policy name (from this file's `[authorization.*]`).
    authorization: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
enum KindToml {
    CommonEncryption,
    CommonEncryptionCbcs,
    EnvelopeEncryption,
}

fn default_kind() -> KindToml {
    KindToml::CommonEncryption
}

impl TomlCatalog {
    /// Loads and validates the catalog at `source`.
    pub fn load(source: &Path) -> anyhow::Result<TomlCatalog> {
        let map = load_all(source)?;
        Ok(TomlCatalog { source: source.to_path_buf(), current: RwLock::new(Arc::new(map)) })
    }

    /// Loads the catalog again; on any error the current one stays in force.
    pub fn reload(&self) -> anyhow::Result<usize> {
        let map = load_all(&self.source)?;
        let n = map.assets.len();
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the data is whole.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(n)
    }

    /// Number of assets with a policy.
    pub fn len(&self) -> usize {
        self.current.read().unwrap_or_else(|e| e.into_inner()).assets.len()
    }

    /// Whether no asset has a policy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TomlCatalog {
    /// Every asset of the catalog with its policy, by path.
    pub fn assets(&self) -> Vec<(String, Arc<AssetPolicy>)> {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut v: Vec<(String, Arc<AssetPolicy>)> = cur.assets.values().cloned().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Every storage-encrypted file of the catalog, by path under the storage root, with its
    /// key and IV: what [`apply_storage_encryption`] registers with the store.
    pub fn storage_files(&self) -> Vec<(String, sealcast_storage::FileEncryption)> {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut v = Vec::new();
        for (asset, p) in cur.assets.values() {
            if let Some(s) = &p.storage {
                for (name, iv) in &s.files {
                    v.push((format!("{asset}/{name}"), sealcast_storage::FileEncryption { key_id: s.key_id.to_string(), key: s.key.clone(), iv: *iv }));
                }
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// Makes `store` decrypt the catalog's storage-encrypted files (replacing whatever it was
/// told before). Call it after loading the catalog and after every successful reload;
/// returns how many files are registered.
pub fn apply_storage_encryption(catalog: &TomlCatalog, store: &sealcast_storage::Store) -> anyhow::Result<usize> {
    store.set_encrypted_files(catalog.storage_files()).map_err(|e| anyhow::anyhow!("{e}"))
}

impl Catalog for TomlCatalog {
    fn policy(&self, path: &str) -> Option<Arc<AssetPolicy>> {
        // Keyed by the lowercased path: on a case-insensitive store `/VOD/MOVIE/…` reads the
        // files of `vod/movie`, so it must get that asset's policy too.
        self.current.read().unwrap_or_else(|e| e.into_inner()).assets.get(&path.to_ascii_lowercase()).map(|(_, p)| p.clone())
    }

    fn key(&self, kid: Kid) -> Option<KeyGrant> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).keys.get(&kid).cloned()
    }

    fn access(&self, path: &str) -> Option<Arc<AccessPolicy>> {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        let path = path.to_ascii_lowercase();
        if let Some(p) = cur.access.get(&path) {
            return Some(p.clone());
        }
        cur.access_rules.iter().find(|(prefix, _)| path == *prefix || path.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'))).map(|(_, p)| p.clone())
    }
}

fn load_all(source: &Path) -> anyhow::Result<Snapshot> {
    let files: Vec<PathBuf> = if source.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(source)
            .with_context(|| format!("reading catalog folder {}", source.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        v.sort();
        v
    } else {
        vec![source.to_path_buf()]
    };
    let mut out = HashMap::new();
    let mut access_of = HashMap::new();
    let mut access_rules: Vec<(String, Arc<AccessPolicy>)> = Vec::new();
    let mut grants: HashMap<Kid, (KeyGrant, String)> = HashMap::new();
    // IVs must be unique per key across the whole catalog, not just within an asset.
    let mut ivs = std::collections::HashSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading catalog {}", f.display()))?;
        let parsed: FileToml = toml::from_str(&text).with_context(|| format!("parsing catalog {}", f.display()))?;
        let dir = f.parent().unwrap_or(Path::new("."));
        let mut auth = HashMap::new();
        for (name, cfg) in &parsed.authorization {
            let built = cfg
                .build(|p| std::fs::read_to_string(dir.join(p)))
                .map_err(|e| anyhow::anyhow!("catalog {}: authorization '{name}': {e}", f.display()))?;
            auth.insert(name.clone(), Arc::new(built));
        }
        let mut access = HashMap::new();
        for (name, cfg) in &parsed.access {
            let built = cfg.build(crate::access::reader(dir)).map_err(|e| anyhow::anyhow!("catalog {}: access '{name}': {e}", f.display()))?;
            access.insert(name.clone(), Arc::new(built));
        }
        let named = |n: &str| access.get(n).cloned().ok_or_else(|| anyhow::anyhow!("catalog {}: access '{n}' is not defined in this file", f.display()));
        for r in &parsed.access_rules {
            if sealcast_storage::AssetPath::parse(&format!("/{}", r.prefix)).is_err() {
                bail!("catalog {}: access_rule prefix '{}' must be a plain folder path", f.display(), r.prefix);
            }
            let prefix = r.prefix.to_ascii_lowercase();
            if access_rules.iter().any(|(p, _)| *p == prefix) {
                bail!("catalog {}: access_rule prefix '{}' is listed twice", f.display(), r.prefix);
            }
            access_rules.push((prefix, named(&r.access)?));
        }
        for a in parsed.assets {
            let path = a.path.clone();
            if let Some(n) = &a.access {
                access_of.insert(path.to_ascii_lowercase(), named(n)?);
            }
            let (policy, key_auth) = validate(a, dir, &auth).with_context(|| format!("catalog {}: asset '{path}'", f.display()))?;
            for (k, name) in policy.keys.iter().zip(key_auth) {
                // One KID, one key and one policy across the whole catalog: the key service
                // looks keys up by KID alone.
                let tag = format!("{}#{}", f.display(), name.as_deref().unwrap_or(""));
                let grant = KeyGrant { key: k.clone(), policy: name.as_ref().and_then(|n| auth.get(n).cloned()) };
                match grants.get(&k.kid()) {
                    Some((g, t)) if g.key != grant.key || *t != tag => {
                        bail!("catalog {}: asset '{path}': key {} is listed elsewhere with other key bytes or another authorization policy", f.display(), k.kid())
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
                        bail!("catalog {}: asset '{path}': file '{name}' reuses an IV already used with key {}", f.display(), s.key_id);
                    }
                }
            }
            if out.insert(path.to_ascii_lowercase(), (path.clone(), Arc::new(policy))).is_some() {
                bail!("catalog {}: asset '{path}' is listed twice (paths compare case-insensitively)", f.display());
            }
        }
    }
    // Longest prefix first, so the most specific rule wins.
    access_rules.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
    Ok(Snapshot { assets: out, keys: grants.into_iter().map(|(k, (g, _))| (k, g)).collect(), access: access_of, access_rules })
}

/// Validates one asset; also returns each key's authorization policy name.
fn validate(a: AssetToml, dir: &Path, auth: &HashMap<String, Arc<AuthorizationPolicy>>) -> anyhow::Result<(AssetPolicy, Vec<Option<String>>)> {
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
        let bytes = hex(&k.key).ok_or_else(|| anyhow::anyhow!("key of {kid}: expected 32 hex digits"))?;
        let kind = match k.kind {
            KindToml::CommonEncryption => KeyKind::CommonEncryption,
            KindToml::CommonEncryptionCbcs => KeyKind::CommonEncryptionCbcs,
            KindToml::EnvelopeEncryption => KeyKind::EnvelopeEncryption,
        };
        keys.push(ContentKey::new(kid, kind, &bytes).map_err(|e| anyhow::anyhow!("key of {kid}: {e}"))?);
    }
    if let Some(cpix) = &a.cpix {
        if !keys.is_empty() {
            bail!("give keys either inline or in a CPIX document, not both");
        }
        let p = dir.join(cpix);
        let xml = std::fs::read(&p).with_context(|| format!("reading CPIX {}", p.display()))?;
        // The CPIX document's per-key scheme decides the kind; the policy's DASH scheme
        // (else cenc) is the default for keys that do not say.
        let default_kind = [a.dash, a.hls, a.smooth].iter().flatten().find_map(|d| d.key_kind()).unwrap_or(KeyKind::CommonEncryption);
        let doc = sealcast_drm::cpix::parse_cpix(&xml, default_kind).map_err(|e| anyhow::anyhow!("CPIX {}: {e}", p.display()))?;
        keys = doc.keys.iter().map(|k| k.key.clone()).collect();
        key_auth = vec![a.authorization.clone(); keys.len()];
        cpix_doc = Some(Arc::new(doc));
    }
    let mut seen = std::collections::HashSet::new();
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
    let storage = a.storage.as_ref().map(validate_storage).transpose()?;
    Ok((AssetPolicy { dash: a.dash, hls: a.hls, smooth: a.smooth, clear_lead_secs: a.clear_lead_secs, license: a.license, keys, storage, carry_token: a.carry_token, cpix: cpix_doc }, key_auth))
}

fn validate_storage(s: &StorageToml) -> anyhow::Result<StorageEncryption> {
    let key_id = Kid::parse(&s.key_id).map_err(|e| anyhow::anyhow!("storage.key_id '{}': {e}", s.key_id))?;
    let key = match s.key.trim().len() {
        64 | 32 => hex_n(&s.key, s.key.trim().len() / 2),
        _ => None,
    }
    .ok_or_else(|| anyhow::anyhow!("storage key of {key_id}: expected 64 (AES-256) or 32 (AES-128) hex digits"))?;
    if s.files.is_empty() {
        bail!("storage lists no files");
    }
    let mut names = std::collections::HashSet::new();
    let mut ivs = std::collections::HashSet::new();
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
    Ok(StorageEncryption { key_id, key, files })
}

/// `n` bytes from exactly `2n` hex digits.
fn hex_n(s: &str, n: usize) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() != 2 * n || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..n).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..16).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = r#"
[[asset]]
path = "vod/movie"
dash = "DynamicCommonEncryption"
hls = "DynamicCommonEncryptionCbcs"
license = { clearkey = "https://keys.example/clearkey" }
keys = [
  { kid = "abba271e-8bcf-552b-bd2e-86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5da", key = "69eaa802a6763af979e8d1940fb88393", kind = "CommonEncryptionCbcs" },
]
"#;

    #[test]
    fn loads_validates_and_reloads() {
        let dir = std::env::temp_dir().join(format!("sealcast-catalog-{}", std::process::id()));
        let p = write(&dir, "c.toml", GOOD);
        let c = TomlCatalog::load(&p).unwrap();
        let pol = c.policy("vod/movie").unwrap();
        assert_eq!((pol.dash, pol.hls, pol.smooth), (Some(Delivery::DynamicCommonEncryption), Some(Delivery::DynamicCommonEncryptionCbcs), None));
        assert_eq!(pol.keys_for(Delivery::DynamicCommonEncryption).len(), 1);
        assert!(c.policy("other").is_none());
        // Keys never show in debug output.
        assert!(!format!("{pol:?}").contains("69eaa802"));
        // A broken reload keeps the old catalog.
        write(&dir, "c.toml", "[[asset]]\npath = \"vod/movie\"\ndash = \"DynamicCommonEncryption\"\n");
        assert!(c.reload().is_err());
        assert!(c.policy("vod/movie").is_some());
        // A folder of files works too.
        write(&dir, "c.toml", GOOD);
        write(&dir, "d.toml", "[[asset]]\npath = \"clear/one\"\n");
        let f = TomlCatalog::load(&dir).unwrap();
        assert_eq!(f.len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    const STORAGE: &str = r#"
[[asset]]
path = "vod/enc"
storage = { key_id = "0b5e2c1a-9d3f-4e8a-b7c6-d5e4f3a2b1c0", key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", files = [
  { name = "video.cmfv", iv = "0011223344556677" },
  { name = "audio.cmfa", iv = "8899aabbccddeeff" },
] }
"#;

    #[test]
    fn storage_encryption_loads_and_registers() {
        let dir = std::env::temp_dir().join(format!("sealcast-catalog-st-{}", std::process::id()));
        let p = write(&dir, "c.toml", STORAGE);
        let c = TomlCatalog::load(&p).unwrap();
        let pol = c.policy("vod/enc").unwrap();
        let st = pol.storage.as_ref().unwrap();
        assert_eq!((st.key.len(), st.files.len()), (32, 2));
        assert!(!format!("{pol:?}").contains("0001020304"));
        let files = c.storage_files();
        assert_eq!(files[0].0, "vod/enc/audio.cmfa");
        assert_eq!(files[1].1.iv, [0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
        let store = sealcast_storage::Store::local(&dir).unwrap();
        assert_eq!(apply_storage_encryption(&c, &store).unwrap(), 2);
        assert_eq!(store.encryption_key_id("vod/enc/video.cmfv").as_deref(), Some("0b5e2c1a-9d3f-4e8a-b7c6-d5e4f3a2b1c0"));
        for (bad, why) in [
            (STORAGE.replace("8899aabbccddeeff", "0011223344556677"), "IV reuse"),
            (STORAGE.replace("audio.cmfa", "../audio.cmfa"), "path"),
            (STORAGE.replace("\"8899aabbccddeeff\"", "\"8899\""), "short iv"),
            (STORAGE.replace("1c1d1e1f", "1c1d1e"), "short key"),
            (STORAGE.replace("name = \"audio.cmfa\"", "name = \"video.cmfv\""), "twice"),
            (format!("{STORAGE}\n[[asset]]\npath = \"vod/enc2\"\nstorage = {{ key_id = \"0b5e2c1a-9d3f-4e8a-b7c6-d5e4f3a2b1c0\", key = \"000102030405060708090a0b0c0d0e0f\", files = [{{ name = \"v.cmfv\", iv = \"0011223344556677\" }}] }}\n"), "IV reuse across assets"),
        ] {
            let p = write(&dir, "c.toml", &bad);
            let e = TomlCatalog::load(&p).err().unwrap_or_else(|| panic!("{why}: accepted"));
            assert!(!format!("{e:#}").contains("0001020304"), "{why}: key leaked into the error");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_bad_catalogs() {
        let dir = std::env::temp_dir().join(format!("sealcast-catalog-bad-{}", std::process::id()));
        for (bad, why) in [
            ("[[asset]]\npath = \"../x\"\n", "path"),
            ("[[asset]]\npath = \"a\"\nhls = \"DynamicCommonEncryptionCbcs\"\nkeys = [{ kid = \"abba271e8bcf552bbd2e86a434a9a5d9\", key = \"69eaa802a6763af979e8d1940fb88392\" }]\n", "no cbcs key"),
            ("[[asset]]\npath = \"a\"\nkeys = [{ kid = \"nope\", key = \"69eaa802a6763af979e8d1940fb88392\" }]\n", "kid"),
            ("[[asset]]\npath = \"a\"\nkeys = [{ kid = \"abba271e8bcf552bbd2e86a434a9a5d9\", key = \"69ea\" }]\n", "short key"),
            ("[[asset]]\npath = \"a\"\nbogus = 1\n", "unknown field"),
            ("[[asset]]\npath = \"a\"\n[[asset]]\npath = \"a\"\n", "duplicate"),
            ("[[asset]]\npath = \"vod/A\"\n[[asset]]\npath = \"vod/a\"\n", "duplicate but for case"),
            ("[authorization.v]\ntype = \"TokenRestricted\"\ntoken_type = \"Jwt\"\nissuer = \"i\"\naudience = \"a\"\nkeys = [ { symmetric = \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMy\" } ]\nskew_secs = 86400\n", "skew over an hour"),
            ("[[asset]]\npath = \"a\"\ndash = \"Rot13\"\n", "unknown delivery"),
            ("[[asset]]\npath = \"a\"\nlicense = { clearkey = \"x\\\"y\" }\n", "bad url"),
        ] {
            let p = write(&dir, "c.toml", bad);
            let e = TomlCatalog::load(&p).err().unwrap_or_else(|| panic!("{why}: accepted"));
            assert!(!format!("{e:#}").contains("69eaa802"), "{why}: key leaked into the error");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn access_policies_by_asset_then_longest_prefix() {
        let dir = std::env::temp_dir().join(format!("sealcast-catalog-access-{}", std::process::id()));
        let text = r#"
[access.open]
mode = "open"
[access.ea]
mode = "signed"
edgeauth = { keys = ["52a152a152a152a152a152a152a152a1"] }
[[access_rule]]
prefix = "vod"
access = "ea"
[[access_rule]]
prefix = "vod/free"
access = "open"
[[asset]]
path = "vod/free/paid"
access = "ea"
"#;
        let c = TomlCatalog::load(&write(&dir, "c.toml", text)).unwrap();
        let signed = |p: &str| c.access(p).map(|a| a.is_signed());
        assert_eq!(signed("vod/movie"), Some(true));
        assert_eq!(signed("VOD/Movie"), Some(true), "paths compare case-insensitively");
        assert_eq!(signed("vod/free/x"), Some(false), "the longest prefix wins");
        assert_eq!(signed("vod/free/paid"), Some(true), "the asset's own policy wins");
        assert_eq!(signed("vodka/x"), None, "a prefix covers whole path segments only");
        assert_eq!(signed("other"), None);
        for (bad, why) in [
            (text.replace("access = \"ea\"\n[[access_rule]]", "access = \"nope\"\n[[access_rule]]"), "unknown name"),
            (text.replace("prefix = \"vod/free\"", "prefix = \"vod\""), "prefix twice"),
            (text.replace("prefix = \"vod/free\"", "prefix = \"../x\""), "bad prefix"),
            (text.replace("mode = \"open\"", "mode = \"closed\""), "bad mode"),
            (text.replace("52a152a1", "52a1"), "bad key"),
        ] {
            let e = TomlCatalog::load(&write(&dir, "c.toml", &bad)).err().unwrap_or_else(|| panic!("{why}: accepted"));
            assert!(!format!("{e:#}").contains("52a152a1"), "{why}: key material in the error");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
