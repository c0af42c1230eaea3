//! The storage decryption adapter: which files are encrypted at rest, with which key and IV,
//! and decryption of ranged reads in place.
//!
//! The cipher itself is pure code in [`sealcast_cenc::storage`]; this module only keeps the
//! per-file registry and owns the read buffers it decrypts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use sealcast_cenc::storage::{StorageCipher, IV_LEN};

use crate::{Error, Result};

/// How one stored file is encrypted at rest. `Debug` never shows the key; the key is wiped
/// when dropped.
#[derive(Clone, PartialEq, Eq, zeroize::ZeroizeOnDrop)]
pub struct FileEncryption {
    /// The storage key's ID (as the catalog names it; logged, never secret).
    #[zeroize(skip)]
    pub key_id: String,
    /// AES-256 (32 bytes) or AES-128 (16 bytes) key.
    pub key: Vec<u8>,
    /// The file's 8-byte IV (counter block bytes 0-7), unique per file per key.
    pub iv: [u8; IV_LEN],
}

impl std::fmt::Debug for FileEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let iv: String = self.iv.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("FileEncryption").field("key_id", &self.key_id).field("key", &"<redacted>").field("iv", &iv).finish()
    }
}

/// One registered file: its key ID and expanded cipher.
pub(crate) struct Decryptor {
    key_id: String,
    cipher: StorageCipher,
}

impl Decryptor {
    fn new(path: &str, f: FileEncryption) -> Result<Decryptor> {
        let cipher = StorageCipher::new(&f.key, f.iv).map_err(|e| Error::Encryption { path: path.to_string(), detail: e.to_string() })?;
        Ok(Decryptor { key_id: f.key_id.clone(), cipher })
    }

    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Decrypts `data`, read at byte `offset` of the file. When the buffer is ours alone (a
    /// `pread` into a fresh buffer, most `object_store` bodies) it is decrypted in place and
    /// handed back; a shared one (a slice of a memory map) is copied once, then decrypted.
    pub(crate) fn decrypt(&self, path: &str, offset: u64, data: Bytes) -> Result<Bytes> {
        let fail = |e: sealcast_cenc::Error| Error::Encryption { path: path.to_string(), detail: e.to_string() };
        match data.try_into_mut() {
            Ok(mut m) => {
                self.cipher.apply_at(offset, &mut m).map_err(fail)?;
                Ok(m.freeze())
            }
            Err(shared) => {
                let mut v = shared.to_vec();
                self.cipher.apply_at(offset, &mut v).map_err(fail)?;
                Ok(Bytes::from(v))
            }
        }
    }
}

/// Registered files by path. Reads of a store with no encrypted files skip the lock.
#[derive(Default)]
pub(crate) struct Registry {
    any: AtomicBool,
    files: RwLock<Arc<HashMap<String, Arc<Decryptor>>>>,
}

impl Registry {
    pub(crate) fn get(&self, path: &str) -> Option<Arc<Decryptor>> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the map is whole.
        self.files.read().unwrap_or_else(|e| e.into_inner()).get(path).cloned()
    }

    pub(crate) fn replace(&self, files: impl IntoIterator<Item = (String, FileEncryption)>) -> Result<usize> {
        let mut map = HashMap::new();
        for (path, f) in files {
            let d = Decryptor::new(&path, f)?;
            map.insert(path, Arc::new(d));
        }
        let n = map.len();
        *self.files.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        self.any.store(n > 0, Ordering::Release);
        Ok(n)
    }

    pub(crate) fn insert(&self, path: &str, f: FileEncryption) -> Result<()> {
        let d = Arc::new(Decryptor::new(path, f)?);
        let mut guard = self.files.write().unwrap_or_else(|e| e.into_inner());
        let mut map = (**guard).clone();
        map.insert(path.to_string(), d);
        *guard = Arc::new(map);
        self.any.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_zeroize_on_drop() {
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<FileEncryption>();
    }

    #[test]
    fn owned_buffers_are_decrypted_in_place_and_shared_ones_copied() {
        let f = FileEncryption { key_id: "k".into(), key: vec![3; 32], iv: [4; 8] };
        assert!(!format!("{f:?}").contains("0303"));
        let d = Decryptor::new("a/b", f).unwrap();
        let b = Bytes::from(vec![0u8; 100]);
        let ptr = b.as_ptr();
        let out = d.decrypt("a/b", 7, b).unwrap();
        assert_eq!(out.as_ptr(), ptr, "owned buffer must not be copied");
        let shared = Bytes::from(vec![0u8; 100]);
        let keep = shared.clone();
        let out2 = d.decrypt("a/b", 7, shared).unwrap();
        assert_eq!(out, out2);
        assert!(keep.iter().all(|&b| b == 0), "a shared buffer is never written");
        let bad = FileEncryption { key_id: "k".into(), key: vec![1; 20], iv: [0; 8] };
        let e = Decryptor::new("a/b", bad).err().unwrap();
        assert!(e.to_string().contains("a/b"));
    }
}
