//! Memory-mapped local files: a bounded table of open mappings, validated on every read.
//!
//! A read resolves and stats its file on the calling task (cheap, answered from the kernel's
//! caches) and slices the file's mapping when it is still that file. Opening and mapping a
//! file — which can wait on a slow disk or a network file system — runs on the blocking pool,
//! once per file version however many reads want it at the same time (one remap at a time
//! per file), and holds no lock another file's reads need: the table lock is only held to
//! find or insert an entry, a file's own lock only to copy or swap its mapping.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;

use crate::{Error, LocalVersion, Result};

/// One mapping of one version of a file.
struct Mapped {
    map: Arc<memmap2::Mmap>,
    len: u64,
    modified: Option<SystemTime>,
}

/// A file's current mapping, and the turn its remaps take (single flight per file).
#[derive(Default)]
struct Entry {
    current: Mutex<Option<Arc<Mapped>>>,
    remap: tokio::sync::Mutex<()>,
}

impl Entry {
    /// The current mapping, if it is of the file version with this size and time.
    fn fresh(&self, len: u64, modified: Option<SystemTime>) -> Option<Arc<Mapped>> {
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        cur.as_ref().filter(|m| m.len == len && m.modified == modified).cloned()
    }
}

/// Called with a file's real path just before it is opened (tests hold an open there).
#[cfg(test)]
pub(crate) type OpenHook = Arc<dyn Fn(&Path) + Send + Sync>;

/// Open mappings by real path, at most `cap` of them (an arbitrary one is dropped when full;
/// a mapping stays alive while responses still hold slices of it).
pub(crate) struct MapCache {
    entries: Mutex<HashMap<PathBuf, Arc<Entry>>>,
    cap: usize,
    #[cfg(test)]
    pub(crate) open_hook: Mutex<Option<OpenHook>>,
}

/// A slice of a mapping that keeps it alive, for `Bytes::from_owner`.
struct Slice {
    map: Arc<memmap2::Mmap>,
    range: Range<usize>,
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

impl MapCache {
    pub(crate) fn new(cap: usize) -> Self {
        MapCache {
            entries: Mutex::new(HashMap::new()),
            cap: cap.max(1),
            #[cfg(test)]
            open_hook: Mutex::new(None),
        }
    }

    /// Bytes `range` of `root/path`. `path` was validated by `AssetPath` (plain segments);
    /// a symlink out of `root` is not found. With `version`, the file must be that version
    /// ([`Error::Changed`] otherwise).
    pub(crate) async fn read(&self, root: &Arc<PathBuf>, path: &str, range: Range<u64>, version: Option<LocalVersion>) -> Result<Bytes> {
        let real = crate::confine::resolve(root, path)?;
        // One stat per read: a replaced or changed file is remapped, never mixed.
        let meta = std::fs::metadata(&real).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(path.to_string()),
            _ => Error::Unavailable(format!("{path}: {e}")),
        })?;
        if let Some(v) = version {
            v.check(path, &meta)?;
        }
        let (len, modified) = (meta.len(), meta.modified().ok());
        check_range(path, &range, len)?;
        let entry = self.entry(real);
        if let Some(m) = entry.fresh(len, modified) {
            return slice(path, m, range);
        }
        // Reads of this file that also find it unmapped wait for this remap, not their own.
        let _turn = entry.remap.lock().await;
        if let Some(m) = entry.fresh(len, modified) {
            return slice(path, m, range);
        }
        let (root, rel) = (root.clone(), path.to_string());
        #[cfg(test)]
        let hook = self.open_hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let m = tokio::task::spawn_blocking(move || {
            #[cfg(test)]
            if let Some(h) = hook {
                h(&root.join(&rel));
            }
            map_file(&root, &rel, version)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("map task failed: {e}")))??;
        *entry.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone());
        // The file may have changed between the stat and the open: `slice` checks the range
        // against what was mapped.
        slice(path, m, range)
    }

    /// The entry of the file at `real`, made (and an arbitrary one dropped when full) if new.
    fn entry(&self, real: PathBuf) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get(&real) {
            return e.clone();
        }
        if entries.len() >= self.cap {
            if let Some(k) = entries.keys().next().cloned() {
                entries.remove(&k);
            }
        }
        entries.entry(real).or_default().clone()
    }
}

/// Opens and maps `root/rel` (blocking): the open file must be inside the root and, with
/// `version`, that version; size and time are the open file's own.
fn map_file(root: &Path, rel: &str, version: Option<LocalVersion>) -> Result<Arc<Mapped>> {
    let f = crate::confine::open(root, rel)?;
    let meta = f.metadata().map_err(|e| Error::Unavailable(format!("{rel}: {e}")))?;
    if let Some(v) = version {
        v.check(rel, &meta)?;
    }
    // SAFETY: the mapping is read-only and private to this process. Its contents may change
    // if the file is rewritten in place (we re-check size and mtime on every read, and
    // document that served files must be replaced, not rewritten); bytes are only ever
    // copied out, never trusted as Rust values.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::Unavailable(format!("{rel}: mmap: {e}")))?;
    Ok(Arc::new(Mapped { len: map.len() as u64, map: Arc::new(map), modified: meta.modified().ok() }))
}

fn check_range(path: &str, range: &Range<u64>, len: u64) -> Result<()> {
    if range.end > len || range.start > range.end {
        return Err(Error::ShortRead { path: path.to_string(), want: range.end.saturating_sub(range.start), got: len.saturating_sub(range.start) });
    }
    Ok(())
}

fn slice(path: &str, m: Arc<Mapped>, range: Range<u64>) -> Result<Bytes> {
    // `m.len` is the mapping's length, so this also bounds the slice.
    check_range(path, &range, m.len)?;
    Ok(Bytes::from_owner(Slice { map: m.map.clone(), range: range.start as usize..range.end as usize }))
}
