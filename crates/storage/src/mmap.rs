//! Memory-mapped local files: a bounded map of open mappings, validated on every read.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;

use crate::{Error, Result};

struct Mapped {
    map: Arc<memmap2::Mmap>,
    len: u64,
    modified: Option<SystemTime>,
}

/// Open mappings by path, at most `cap` of them (an arbitrary one is dropped when full; the
/// mapping stays alive while responses still hold slices of it).
pub(crate) struct MapCache {
    maps: Mutex<HashMap<String, Mapped>>,
    cap: usize,
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
        MapCache { maps: Mutex::new(HashMap::new()), cap: cap.max(1) }
    }

    /// Bytes `range` of `root/path`. `path` was validated by `AssetPath` (plain segments).
    /// With `version`, the file must be that version ([`Error::Changed`] otherwise).
    pub(crate) fn read(&self, root: &Path, path: &str, range: Range<u64>, version: Option<crate::LocalVersion>) -> Result<Bytes> {
        // A symlink out of the root is not found (see `confine.rs`).
        let full = crate::confine::resolve(root, path)?;
        // One stat per read: a replaced or changed file is remapped, never mixed.
        let meta = std::fs::metadata(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(path.to_string()),
            _ => Error::Unavailable(format!("{path}: {e}")),
        })?;
        if let Some(v) = version {
            v.check(path, &meta)?;
        }
        let (len, modified) = (meta.len(), meta.modified().ok());
        if range.end > len || range.start > range.end {
            return Err(Error::ShortRead { path: path.to_string(), want: range.end.saturating_sub(range.start), got: len.saturating_sub(range.start) });
        }
        let map = {
            let mut maps = self.maps.lock().map_err(|_| Error::Unavailable("map cache poisoned".into()))?;
            match maps.get(path) {
                Some(m) if m.len == len && m.modified == modified => m.map.clone(),
                _ => {
                    let (f, _) = crate::confine::open(root, path)?;
                    // SAFETY: the mapping is read-only and private to this process. Its contents
                    // may change if the file is rewritten in place (we re-check size and mtime on
                    // every read, and document that served files must be replaced, not
                    // rewritten); bytes are only ever copied out, never trusted as Rust values.
                    let m = Arc::new(unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::Unavailable(format!("{path}: mmap: {e}")))?);
                    if maps.len() >= self.cap {
                        if let Some(k) = maps.keys().next().cloned() {
                            maps.remove(&k);
                        }
                    }
                    maps.insert(path.to_string(), Mapped { map: m.clone(), len, modified });
                    m
                }
            }
        };
        if range.end as usize > map.len() {
            return Err(Error::ShortRead { path: path.to_string(), want: range.end - range.start, got: (map.len() as u64).saturating_sub(range.start) });
        }
        Ok(Bytes::from_owner(Slice { map, range: range.start as usize..range.end as usize }))
    }
}
