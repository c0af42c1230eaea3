//! The catalog: per asset, a delivery policy (what each protocol gets: clear, `cenc` or
//! `cbcs`), the content keys and the license URLs players are pointed at.
//!
//! This module is the model and the trait the request path asks ([`Catalog`]); stores
//! implement it: the database ([`db`]: SQLite embedded, PostgreSQL for fleets, every secret
//! sealed under a key-encryption key ([`kek`])), or a read-only TOML file or folder
//! ([`toml_store`], written by `sealcast ingest` through [`write`]). Both read documents
//! ([`doc`]) and validate them the same way into the in-memory [`Snapshot`] every request
//! reads: the request path never queries a database.

use std::sync::Arc;

use sealcast_drm::auth::AuthorizationPolicy;
use sealcast_drm::{ContentKey, Kid};

pub mod ams;
pub mod db;
pub mod doc;
pub mod kek;
pub mod toml_store;
pub mod write;

pub use doc::{CatalogDoc, Locator, Snapshot};
pub use toml_store::TomlCatalog;

pub use sealcast_drm::policy::{Delivery, LicenseUrls};

/// One asset's policy and keys, validated.
#[derive(Debug)]
pub struct AssetPolicy {
    /// DASH delivery; `None`: not named, so blocked (Azure Media Services' rule: an asset with
    /// a delivery policy serves only the protocols it names; clear needs `NoDynamicEncryption`).
    pub dash: Option<Delivery>,
    /// HLS delivery (fMP4 and TS); `None`: blocked.
    pub hls: Option<Delivery>,
    /// Smooth Streaming delivery; `None`: blocked.
    pub smooth: Option<Delivery>,
    /// Seconds served clear at the start of each track.
    pub clear_lead_secs: u32,
    /// License URLs.
    pub license: LicenseUrls,
    /// Content keys, in catalog order (the order key-group assignment follows).
    pub keys: Vec<ContentKey>,
    /// Storage encryption at rest of the asset's files, when they are stored encrypted.
    pub storage: Option<StorageEncryption>,
    /// Carry a `token` query parameter of a playlist request into that playlist's key URIs
    /// (and a multivariant playlist's media playlist URIs), for players that cannot set
    /// headers. Such playlists are then private to the viewer (`no-store`).
    pub carry_token: bool,
    /// The CPIX document the keys came from, when they did: its usage rules decide which key
    /// encrypts which track, and its DRM system signalling (vendor `pssh` boxes) is used as
    /// given.
    pub cpix: Option<Arc<sealcast_drm::cpix::CpixDocument>>,
    /// The asset's track files may be downloaded whole (`GET /{asset}/{file}.mp4`, ranged),
    /// clear, decrypted from storage encryption on the way out: Azure Media Services'
    /// `ProgressiveDownload` delivery protocol. Off: an asset with a policy refuses
    /// downloads (403), so protected content never leaves as a file by default.
    pub progressive_download: bool,
}

/// A content key with the policy that says who may receive it. Keys without a policy are
/// never handed out by the key delivery service.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    /// The key.
    pub key: ContentKey,
    /// Who may receive it.
    pub policy: Option<Arc<AuthorizationPolicy>>,
}

/// An asset's storage encryption at rest: one key, one IV per encrypted file (files not
/// listed are stored clear). `Debug` never shows the key; the key is wiped when dropped.
#[derive(Clone, PartialEq, Eq, zeroize::ZeroizeOnDrop)]
pub struct StorageEncryption {
    /// The storage key's ID.
    #[zeroize(skip)]
    pub key_id: Kid,
    /// AES-256 (32 bytes) or AES-128 (16 bytes) key.
    pub key: Vec<u8>,
    /// File name (inside the asset folder) and its 8-byte IV.
    #[zeroize(skip)]
    pub files: Vec<(String, [u8; 8])>,
}

impl std::fmt::Debug for StorageEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageEncryption").field("key_id", &self.key_id).field("key", &"<redacted>").field("files", &self.files.len()).finish()
    }
}

impl AssetPolicy {
    /// The keys usable for `delivery`, in catalog order.
    pub fn keys_for(&self, delivery: Delivery) -> Vec<&ContentKey> {
        match delivery.key_kind() {
            Some(k) => self.keys.iter().filter(|c| c.kind() == k).collect(),
            None => Vec::new(),
        }
    }
}

/// Source of policies. Implementations must be cheap to query on every request.
pub trait Catalog: Send + Sync {
    /// The policy of the asset at `path` (under the storage root), if it has one.
    fn policy(&self, path: &str) -> Option<Arc<AssetPolicy>>;

    /// A content key by ID, with its authorization policy, for the key delivery service and
    /// the ClearKey licence server. Storage encryption keys are never returned.
    fn key(&self, _kid: Kid) -> Option<KeyGrant> {
        None
    }

    /// A streaming locator by ID (the first segment of `/{locator}/{name}.ism/…`), with its
    /// asset and time window.
    fn locator(&self, _id: &str) -> Option<Locator> {
        None
    }

    /// Every storage-encrypted file, by path under the storage root, with its key and IV.
    fn storage_files(&self) -> Vec<(String, sealcast_storage::FileEncryption)> {
        Vec::new()
    }

    /// Whether the catalog is current (`None`), or why it may not be: a database store that
    /// cannot reach its database serves its last good copy and says so here.
    fn degraded(&self) -> Option<String> {
        None
    }

    /// The access policy of the asset at `path`: its own, else the one of the longest path
    /// prefix that has one; `None`: the server's default applies.
    fn access(&self, _path: &str) -> Option<Arc<crate::access::AccessPolicy>> {
        None
    }
}

/// A shared catalog is a catalog.
impl<T: Catalog + ?Sized> Catalog for Arc<T> {
    fn policy(&self, path: &str) -> Option<Arc<AssetPolicy>> {
        (**self).policy(path)
    }
    fn key(&self, kid: Kid) -> Option<KeyGrant> {
        (**self).key(kid)
    }
    fn locator(&self, id: &str) -> Option<Locator> {
        (**self).locator(id)
    }
    fn storage_files(&self) -> Vec<(String, sealcast_storage::FileEncryption)> {
        (**self).storage_files()
    }
    fn degraded(&self) -> Option<String> {
        (**self).degraded()
    }
    fn access(&self, path: &str) -> Option<Arc<crate::access::AccessPolicy>> {
        (**self).access(path)
    }
}

/// Makes `store` decrypt the catalog's storage-encrypted files (replacing whatever it was
/// told before). Call it after loading the catalog and after every change; returns how many
/// files are registered.
pub fn apply_storage_encryption(catalog: &dyn Catalog, store: &sealcast_storage::Store) -> anyhow::Result<usize> {
    store.set_encrypted_files(catalog.storage_files()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A catalog with no policies: every asset is clear (the embedded default).
pub struct NoCatalog;

impl Catalog for NoCatalog {
    fn policy(&self, _: &str) -> Option<Arc<AssetPolicy>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_zeroize_on_drop() {
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<StorageEncryption>();
    }
}
