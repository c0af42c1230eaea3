//! Sidecar indexes in storage (issue 15): `NAME.sealcast-idx` next to a fragmented track
//! file with neither `sidx` nor `mfra`, so the origin indexes it with one GET of the sidecar
//! instead of walking its `moof`s. Written by `sealcast index FILE…` for files already in
//! storage and by `sealcast ingest`; read by [`crate::assets`]. The format is
//! [`sealcast_package::sidecar`]'s, keyed by the source's size and ETag as the store lists
//! them: a replaced source is never indexed from its old sidecar.
//!
//! Sidecars are written only for files stored clear: a sidecar holds the file's `moov` and
//! fragment table in clear, which for a storage-encrypted file would leave its metadata
//! readable next to it. Such files index from `sidx`/`mfra` or the walk.

use bytes::Bytes;
use sealcast_package::index::IndexLimits;
use sealcast_package::sidecar::{self, SourceKey};
use sealcast_package::{FileIndex, IndexBuilder, IndexMethod, Need};
use sealcast_storage::{ObjectInfo, Store};

use crate::error::ApiError;

/// The version key of a source as a sidecar names it: its ETag, or its modification time
/// for stores that give none.
pub fn source_key(o: &ObjectInfo) -> SourceKey {
    let key = match &o.e_tag {
        // Stores quote ETags in some answers and not in others (Azure Blob lists them bare
        // and sends them quoted in headers): compared without quotes or weak marker.
        Some(e) => e.trim_start_matches("W/").trim_matches('"').to_string(),
        None => format!("mtime:{}", o.last_modified.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()),
    };
    SourceKey { size: o.size, key }
}

/// Storage path of the sidecar of the source at `path`.
pub fn path_of(path: &str) -> String {
    format!("{path}{}", sidecar::SUFFIX)
}

/// Indexes the listed version `o` of a source with ranged reads (as the origin does), and
/// returns its `moov` bytes too (for a sidecar).
pub async fn index_object(store: &Store, o: &ObjectInfo, read_ahead: u64, limits: IndexLimits) -> Result<(FileIndex, Option<Bytes>), ApiError> {
    let mut b = IndexBuilder::new(o.size, read_ahead).with_limits(limits);
    while let Need::Read { offset, len } = b.next_read() {
        // Every read of one index is of the listed version, never a mix.
        let data = store.read_version(o, offset..offset + len).await.map_err(ApiError::from)?;
        b.feed(offset, data).map_err(|e| ApiError::Content { asset: String::new(), detail: e.to_string() })?;
    }
    let moov = b.moov_bytes();
    let fi = b.finish().map_err(|e| ApiError::Content { asset: String::new(), detail: e.to_string() })?;
    Ok((fi, moov))
}

/// The index of source `o` from its sidecar `sc` (one GET), or why not: `Ok(None)` when the
/// sidecar is stale or unreadable (logged: the caller indexes the source itself).
pub async fn read(store: &Store, o: &ObjectInfo, sc: &ObjectInfo, limits: IndexLimits) -> Result<Option<FileIndex>, ApiError> {
    if sc.size > limits.max_bytes {
        tracing::warn!(file = %o.path, sidecar = %sc.path, bytes = sc.size, "sidecar index larger than the index budget of a file; ignoring it");
        return Ok(None);
    }
    let data = match store.read_version(sc, 0..sc.size).await {
        Ok(d) => d,
        Err(sealcast_storage::Error::Changed(_)) | Err(sealcast_storage::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let decoded = match sidecar::decode(&data, &source_key(o), limits) {
        Ok(d) => d,
        Err(e @ sidecar::SidecarError::Stale { .. }) => {
            tracing::warn!(file = %o.path, sidecar = %sc.path, "sidecar index ignored, the source changed since it was written ({e}); run `sealcast index {}` again", o.path);
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(file = %o.path, sidecar = %sc.path, "sidecar index ignored: {e}; run `sealcast index {}` again", o.path);
            return Ok(None);
        }
    };
    match sidecar::to_index(decoded, o.size, limits) {
        Ok(mut fi) => {
            fi.reads = 1;
            Ok(Some(fi))
        }
        Err(e) => {
            tracing::warn!(file = %o.path, sidecar = %sc.path, "sidecar index ignored: {e}; run `sealcast index {}` again", o.path);
            Ok(None)
        }
    }
}

/// What `sealcast index` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A sidecar of `bytes` bytes was written; the walk took `reads` GETs.
    Written {
        /// Sidecar size.
        bytes: usize,
        /// GETs the walk took.
        reads: u32,
        /// Fragments indexed.
        fragments: usize,
    },
    /// The file indexes cheaply without one (`sidx`, `mfra` or `moov`).
    NotNeeded(IndexMethod, u32),
}

/// Indexes the stored file at `path` and writes its sidecar when the file would otherwise be
/// walked (or always, with `force`, for fragmented files).
pub async fn write_for(store: &Store, path: &str, read_ahead: u64, limits: IndexLimits, force: bool) -> anyhow::Result<Outcome> {
    if path.ends_with(sidecar::SUFFIX) {
        anyhow::bail!("{path} is a sidecar index, not a track file");
    }
    if store.encryption_key_id(path).is_some() {
        anyhow::bail!("{path} is storage-encrypted: sidecars (which hold its moov in clear) are written for clear files only");
    }
    let o = store.head(path).await.map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let (fi, moov) = index_object(store, &o, read_ahead, limits).await.map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let walked = fi.method == IndexMethod::Walk && fi.reads > 1 && fi.tracks.iter().all(|t| t.samples.is_none());
    let forced = force && matches!(fi.method, IndexMethod::Walk | IndexMethod::Sidx | IndexMethod::Mfra);
    if !(walked || forced) {
        return Ok(Outcome::NotNeeded(fi.method, fi.reads));
    }
    let moov = moov.ok_or_else(|| anyhow::anyhow!("{path}: no moov"))?;
    let bytes = sidecar::encode(&source_key(&o), &moov, &fi).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let n = bytes.len();
    store.put_bytes(&path_of(path), Bytes::from(bytes)).await.map_err(|e| anyhow::anyhow!("writing {}: {e}", path_of(path)))?;
    Ok(Outcome::Written { bytes: n, reads: fi.reads, fragments: fi.tracks.iter().map(|t| t.fragments.len()).sum() })
}
