//! The TOML catalog: a file, or every `*.toml` in a folder, validated whole at start-up and on
//! `SIGHUP`; a reload that fails validation keeps the previous catalog and says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use sealcast_drm::Kid;

use super::doc::{CatalogDoc, Locator, Resolve, Snapshot};
use super::{AssetPolicy, Catalog, KeyGrant};

/// The TOML catalog (a file, or every `*.toml` in a folder).
pub struct TomlCatalog {
    source: PathBuf,
    current: RwLock<Arc<Snapshot>>,
}

/// Files named in a TOML catalog are relative to it; it holds no sealed secrets (those need
/// the database store's key-encryption key).
pub struct FilesBeside<'a>(pub &'a Path);

impl Resolve for FilesBeside<'_> {
    fn file(&self, rel: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.0.join(rel))
    }
    fn unwrap(&self, _: &str, _: &str) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
        anyhow::bail!("a wrapped key needs the key-encryption key of the database it came from: import this file with `sealcast catalog import`")
    }
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
        let n = map.len();
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the data is whole.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        Ok(n)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Number of assets with a policy.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether no asset has a policy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every asset of the catalog with its policy, by path.
    pub fn assets(&self) -> Vec<(String, Arc<AssetPolicy>)> {
        self.snapshot().assets()
    }

    /// Every storage-encrypted file of the catalog, by path under the storage root, with its
    /// key and IV: what [`apply_storage_encryption`](super::apply_storage_encryption) registers
    /// with the store.
    pub fn storage_files(&self) -> Vec<(String, sealcast_storage::FileEncryption)> {
        self.snapshot().storage_files()
    }
}

impl Catalog for TomlCatalog {
    fn policy(&self, path: &str) -> Option<Arc<AssetPolicy>> {
        // Keyed by the lowercased path: on a case-insensitive store `/VOD/MOVIE/…` reads the
        // files of `vod/movie`, so it must get that asset's policy too.
        self.snapshot().policy(path)
    }

    fn key(&self, kid: Kid) -> Option<KeyGrant> {
        self.snapshot().keys.get(&kid).cloned()
    }

    fn locator(&self, id: &str) -> Option<Locator> {
        self.snapshot().locators.get(id).cloned()
    }

    fn storage_files(&self) -> Vec<(String, sealcast_storage::FileEncryption)> {
        self.snapshot().storage_files()
    }

    fn access(&self, path: &str) -> Option<Arc<crate::access::AccessPolicy>> {
        self.snapshot().access(path)
    }
}

/// The files of a catalog source: the file, or every `*.toml` of the folder in name order.
pub fn catalog_files(source: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if source.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(source)
            .with_context(|| format!("reading catalog folder {}", source.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        v.sort();
        Ok(v)
    } else {
        Ok(vec![source.to_path_buf()])
    }
}

/// Reads and parses one catalog file.
pub fn read_doc(f: &Path) -> anyhow::Result<CatalogDoc> {
    let text = std::fs::read_to_string(f).with_context(|| format!("reading catalog {}", f.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing catalog {}", f.display()))
}

fn load_all(source: &Path) -> anyhow::Result<Snapshot> {
    let files = catalog_files(source)?;
    let docs: Vec<(PathBuf, CatalogDoc)> = files.into_iter().map(|f| read_doc(&f).map(|d| (f, d))).collect::<anyhow::Result<_>>()?;
    let resolvers: Vec<FilesBeside> = docs.iter().map(|(f, _)| FilesBeside(f.parent().unwrap_or(Path::new(".")))).collect();
    let list: Vec<(String, &CatalogDoc, &dyn Resolve)> = docs.iter().zip(&resolvers).map(|((f, d), r)| (f.display().to_string(), d, r as &dyn Resolve)).collect();
    Snapshot::build(&list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Delivery;

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
        assert_eq!(crate::catalog::apply_storage_encryption(&c, &store).unwrap(), 2);
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
