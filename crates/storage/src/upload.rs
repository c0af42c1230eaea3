//! Uploads for `sealcast ingest`: a local file streamed to the store in fixed-size chunks,
//! optionally storage-encrypted on the way, in constant memory whatever the file's size.
//!
//! Files up to one chunk are one PUT; larger ones a multipart upload with a few parts in
//! flight (each part is a read buffer encrypted in place and handed over without a copy).
//! A failed multipart upload is aborted, so no partial object is left behind.

use std::io::Read;
use std::path::Path as FsPath;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use sealcast_cenc::storage::{StorageCipher, IV_LEN};

use crate::{Error, FileEncryption, Result, Store};

/// Upload chunk size: above S3's 5 MiB minimum part size, large enough for full-speed AES.
pub const CHUNK: usize = 8 << 20;
/// Parts in flight per upload; memory is about `CHUNK * (PARTS_IN_FLIGHT + 1)`.
pub const PARTS_IN_FLIGHT: usize = 4;

/// A fresh random AES-256 key from the system's secure random generator.
pub fn random_key() -> Result<[u8; 32]> {
    let mut k = [0u8; 32];
    aws_lc_rs::rand::fill(&mut k).map_err(|_| Error::Unavailable("random generator failed".into()))?;
    Ok(k)
}

/// A fresh random 8-byte storage IV.
pub fn random_iv() -> Result<[u8; IV_LEN]> {
    let mut iv = [0u8; IV_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::Unavailable("random generator failed".into()))?;
    Ok(iv)
}

/// 16 random bytes (a key ID).
pub fn random_id() -> Result<[u8; 16]> {
    let mut id = [0u8; 16];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| Error::Unavailable("random generator failed".into()))?;
    Ok(id)
}

impl Store {
    /// Streams the local file `src` to `dest` (a path relative to the store root), encrypting
    /// it at rest with `enc` when given. `progress` is called with the byte count of every chunk
    /// once the store has it. Returns the bytes uploaded.
    pub async fn upload_file(&self, src: &FsPath, dest: &str, enc: Option<&FileEncryption>, progress: &(dyn Fn(u64) + Sync)) -> Result<u64> {
        let cipher = enc.map(|e| StorageCipher::new(&e.key, e.iv).map_err(|err| Error::Encryption { path: dest.to_string(), detail: err.to_string() })).transpose()?;
        let io = |e: std::io::Error| Error::Unavailable(format!("{}: {e}", src.display()));
        let mut file = std::fs::File::open(src).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let (backend, inner) = self.backend(dest);
        let location = Path::from(inner);
        let mut offset = 0u64;
        // Reads are local and fast; they run on this task between part uploads, which keeps
        // at most PARTS_IN_FLIGHT + 1 chunks in memory.
        let mut next_chunk = |offset: u64| -> Result<Vec<u8>> {
            let want = (len - offset).min(CHUNK as u64) as usize;
            let mut buf = Vec::new();
            buf.try_reserve_exact(want).map_err(|_| Error::Unavailable(format!("cannot allocate {want} bytes")))?;
            (&mut file).take(want as u64).read_to_end(&mut buf).map_err(io)?;
            if buf.len() != want {
                return Err(Error::ShortRead { path: src.display().to_string(), want: want as u64, got: buf.len() as u64 });
            }
            if let Some(c) = &cipher {
                c.apply_at(offset, &mut buf).map_err(|e| Error::Encryption { path: dest.to_string(), detail: e.to_string() })?;
            }
            Ok(buf)
        };
        if len <= CHUNK as u64 {
            let buf = next_chunk(0)?;
            backend.put(&location, PutPayload::from(buf)).await?;
            progress(len);
            return Ok(len);
        }
        let mut upload = backend.put_multipart(&location).await?;
        let result: Result<()> = async {
            let mut in_flight = FuturesUnordered::new();
            while offset < len {
                let buf = next_chunk(offset)?;
                let n = buf.len() as u64;
                offset += n;
                let part = upload.put_part(PutPayload::from(buf));
                in_flight.push(async move { part.await.map(|()| n) });
                while in_flight.len() >= PARTS_IN_FLIGHT {
                    // Invariant: the set is non-empty inside this loop.
                    if let Some(r) = in_flight.next().await {
                        progress(r?);
                    }
                }
            }
            while let Some(r) = in_flight.next().await {
                progress(r?);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                upload.complete().await?;
                Ok(len)
            }
            Err(e) => {
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// Writes `data` as the object at `path` (a path relative to the store root) in one
    /// request: small metadata objects such as sidecar indexes, never media.
    pub async fn put_bytes(&self, path: &str, data: Bytes) -> Result<()> {
        let (backend, inner) = self.backend(path);
        backend.put(&Path::from(inner), PutPayload::from(data)).await?;
        Ok(())
    }

    /// Deletes the object at `path` (ingest's clean-up after a failed upload).
    pub async fn delete(&self, path: &str) -> Result<()> {
        let (backend, inner) = self.backend(path);
        Ok(backend.delete(&Path::from(inner)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn uploads_small_and_multipart_files_encrypted_and_clear() {
        let dir = std::env::temp_dir().join(format!("sealcast-upload-{}", std::process::id()));
        let src = dir.join("src");
        let dst = dir.join("dst");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let store = Store::local(&dst).unwrap();
        for (name, size) in [("small.cmfv", 1000usize), ("big.cmfv", 2 * CHUNK + 12345), ("empty.cmfv", 0)] {
            let clear: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(src.join(name), &clear).unwrap();
            let enc = FileEncryption { key_id: "k".into(), key: random_key().unwrap().to_vec(), iv: random_iv().unwrap() };
            let seen = AtomicU64::new(0);
            let n = store.upload_file(&src.join(name), &format!("a/{name}"), Some(&enc), &|b| {
                seen.fetch_add(b, Ordering::Relaxed);
            }).await.unwrap();
            assert_eq!((n, seen.load(Ordering::Relaxed)), (size as u64, size as u64));
            let stored = std::fs::read(dst.join("a").join(name)).unwrap();
            assert_eq!(stored.len(), size);
            if size > 0 {
                assert_ne!(stored, clear);
            }
            store.register_encrypted(&format!("a/{name}"), enc).unwrap();
            assert_eq!(&store.read_range(&format!("a/{name}"), 0..size as u64).await.unwrap()[..], &clear[..]);
            // Clear upload: stored as is.
            store.upload_file(&src.join(name), &format!("b/{name}"), None, &|_| {}).await.unwrap();
            assert_eq!(std::fs::read(dst.join("b").join(name)).unwrap(), clear);
        }
        store.delete("b/small.cmfv").await.unwrap();
        assert!(!dst.join("b/small.cmfv").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod bench {
    use super::*;

    /// `cargo test --release -p sealcast-storage -- --ignored --nocapture ingest_throughput`:
    /// storage-encrypting upload of a 1 GiB file to a local folder (`SEALCAST_BENCH_DIR`,
    /// default the temp dir), the bulk of what `sealcast ingest --encrypt` does. The first
    /// pass allocates the destination (slow on tmpfs); later passes overwrite it.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "benchmark, run by hand (benches/README.md): timings, no assertions; upload correctness is tested by crates/origin/tests/ingest.rs"]
    async fn ingest_throughput() {
        let base = std::env::var_os("SEALCAST_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("sealcast-ingest-bench-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dst")).unwrap();
        let src = dir.join("src.cmfv");
        let size = 1usize << 30;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&src).unwrap();
            let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 13 % 256) as u8).collect();
            for _ in 0..size / CHUNK {
                f.write_all(&chunk).unwrap();
            }
        }
        let store = Store::local(&dir.join("dst")).unwrap();
        for enc in [true, false, true, false] {
            let e = FileEncryption { key_id: "k".into(), key: random_key().unwrap().to_vec(), iv: random_iv().unwrap() };
            let t = std::time::Instant::now();
            store.upload_file(&src, "a/out.cmfv", enc.then_some(&e), &|_| {}).await.unwrap();
            let s = t.elapsed().as_secs_f64();
            println!("upload {} 1 GiB: {:.2} s = {:.2} GB/s", if enc { "encrypted" } else { "clear" }, s, size as f64 / s / 1e9);
        }
        // The floor for anything that must pass the bytes through user space: read 8 MiB
        // chunks into one reused buffer and write them to a fresh file, no encryption.
        for _ in 0..2 {
            use std::io::{Read, Write};
            let t = std::time::Instant::now();
            let mut r = std::fs::File::open(&src).unwrap();
            let mut w = std::fs::File::create(dir.join("dst/copy.bin")).unwrap();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n]).unwrap();
            }
            drop(w);
            let s = t.elapsed().as_secs_f64();
            println!("plain user-space copy 1 GiB (read + write, one buffer): {:.2} GB/s", size as f64 / s / 1e9);
            std::fs::remove_file(dir.join("dst/copy.bin")).unwrap();
        }
        // Pure cipher speed for comparison.
        let c = StorageCipher::new(&random_key().unwrap(), [0; 8]).unwrap();
        let mut buf = vec![0u8; CHUNK];
        let t = std::time::Instant::now();
        for i in 0..128u64 {
            c.apply_at(i * CHUNK as u64, &mut buf).unwrap();
        }
        let s = t.elapsed().as_secs_f64();
        println!("AES-256-CTR in memory: {:.2} GB/s", (128 * CHUNK) as f64 / s / 1e9);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
