//! Configuration: TOML file, then command-line flags, validated once at start-up into typed
//! values. Libraries never read the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Storage root: a local folder holding asset folders.
    pub root: PathBuf,
    /// Target segment duration in milliseconds (segments are whole source fragments).
    pub segment_duration_ms: u32,
    /// Bytes read per request while indexing a file (`moov`, `sidx`, `moof` headers).
    pub index_read_ahead: u64,
    /// How local files are read: `pread` (default, safe whatever happens to the files) or
    /// `mmap` (no copy; files must be replaced, never truncated in place, while served).
    pub local_read: LocalReadMode,
    /// Cache sizes and lifetimes.
    pub cache: CacheConfig,
    /// `Cache-Control` values sent to players and CDNs.
    pub cache_control: CacheControlConfig,
    /// The catalog (policies and keys): a TOML file or a folder of them. Without one, no asset
    /// has a policy.
    pub catalog: Option<PathBuf>,
    /// Serve assets that have no policy in clear. With it off, only assets the catalog lists
    /// are served at all.
    pub allow_clear_without_policy: bool,
    /// Azure Media Services locators: locator ID (the first path segment of
    /// `/{locator}/{name}.ism/manifest`) to asset path under the root. Until the management
    /// API exists, this is how AMS URLs find their asset.
    pub locators: std::collections::BTreeMap<String, String>,
    /// Terminate TLS (HTTPS, HTTP/2 through ALPN) with this certificate and key. Without it
    /// the server speaks plain HTTP (local use, or behind a TLS-terminating proxy).
    pub tls: Option<TlsConfig>,
}

/// TLS certificate and key files (PEM).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// See [`Config::local_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalReadMode {
    /// `pread` into a fresh buffer.
    #[default]
    Pread,
    /// Memory-mapped files.
    Mmap,
}

/// Cache settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Byte budget of file indexes (init segments and fragment tables).
    pub index_bytes: u64,
    /// Byte budget of built assets with their cached manifests.
    pub asset_bytes: u64,
    /// Seconds an asset's file listing is trusted before storage is asked again; a changed
    /// file is picked up after at most this long.
    pub asset_ttl_secs: u64,
}

/// Cache-Control header values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheControlConfig {
    /// For media and init segments (immutable for a given source file).
    pub segments: String,
    /// For manifests and playlists.
    pub manifests: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("literal address parses"),
            root: default_root(),
            segment_duration_ms: 2000,
            index_read_ahead: 64 * 1024,
            local_read: LocalReadMode::default(),
            cache: CacheConfig::default(),
            cache_control: CacheControlConfig::default(),
            locators: Default::default(),
            catalog: None,
            allow_clear_without_policy: true,
            tls: None,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { index_bytes: 256 << 20, asset_bytes: 64 << 20, asset_ttl_secs: 5 }
    }
}

impl Default for CacheControlConfig {
    fn default() -> Self {
        CacheControlConfig { segments: "public, max-age=31536000, immutable".into(), manifests: "public, max-age=5".into() }
    }
}

/// The repo's fixtures when run from a checkout, else the current folder.
fn default_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    if here.is_dir() {
        here
    } else {
        PathBuf::from(".")
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(p: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", p.display()))
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.root.is_dir() {
            bail!("storage root {} is not a folder", self.root.display());
        }
        if !(100..=60_000).contains(&self.segment_duration_ms) {
            bail!("segment_duration_ms must be between 100 and 60000");
        }
        if !(1024..=64 << 20).contains(&self.index_read_ahead) {
            bail!("index_read_ahead must be between 1 KiB and 64 MiB");
        }
        for (id, asset) in &self.locators {
            let ok_id = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_id {
                bail!("locator ID '{id}' must be 1-128 letters, digits, '-' or '_'");
            }
            if sealcast_storage::AssetPath::parse(&format!("/{asset}")).is_err() {
                bail!("locator '{id}' points at '{asset}', which is not a plain path under the root");
            }
        }
        for (n, v) in [("segments", &self.cache_control.segments), ("manifests", &self.cache_control.manifests)] {
            if http::HeaderValue::from_str(v).is_err() {
                bail!("cache_control.{n} is not a valid header value");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn example_config_parses() {
        let c: Config = toml::from_str(include_str!("../../../deploy/sealcast.example.toml")).unwrap();
        assert_eq!(c.segment_duration_ms, 2000);
    }

    #[test]
    fn example_catalog_loads() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/catalog.example.toml");
        let c = crate::catalog::TomlCatalog::load(&p).unwrap();
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nbogus = 1").is_err());
        let c: Config = toml::from_str("[cache]\nindex_bytes = 1024\n[cache_control]\nmanifests = \"no-cache\"").unwrap();
        assert_eq!((c.cache.index_bytes, c.cache_control.manifests.as_str()), (1024, "no-cache"));
    }
}
