//! Storage encryption at rest, end to end through `Store::read_range`: files encrypted by an
//! independent implementation (RustCrypto `ctr::Ctr64BE<aes::Aes256>`) read back clear, for any
//! byte range, through every read path (pread, mmap, `object_store`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ctr::cipher::{KeyIvInit, StreamCipher};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use proptest::prelude::*;
use sealcast_storage::{FileEncryption, LocalRead, Store};

const KEY: [u8; 32] = *b"0123456789abcdef0123456789ABCDEF";
const IV: [u8; 8] = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33];
const LEN: usize = 70_001;

fn clear() -> Vec<u8> {
    // Deterministic, not periodic in 16: a mis-aligned keystream cannot pass by accident.
    let mut x = 0x1234_5678u32;
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Encrypted by the oracle: counter block = IV || 64-bit BE block counter from 0.
fn oracle_encrypt(clear: &[u8]) -> Vec<u8> {
    let mut counter = [0u8; 16];
    counter[..8].copy_from_slice(&IV);
    let mut v = clear.to_vec();
    ctr::Ctr64BE::<aes::Aes256>::new(&KEY.into(), &counter.into()).apply_keystream(&mut v);
    v
}

fn enc() -> FileEncryption {
    FileEncryption { key_id: "storage-key-1".into(), key: KEY.to_vec(), iv: IV }
}

struct Fixture {
    stores: Vec<(&'static str, Store)>,
    clear: Vec<u8>,
}

fn fixture(tag: &str, rt: &tokio::runtime::Runtime) -> Fixture {
    let dir = std::env::temp_dir().join(format!("sealcast-enc-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("vod/a")).unwrap();
    let clear = clear();
    let encrypted = oracle_encrypt(&clear);
    assert_ne!(encrypted, clear);
    std::fs::write(dir.join("vod/a/video.cmfv"), &encrypted).unwrap();
    std::fs::write(dir.join("vod/a/plain.cmfv"), &clear).unwrap();
    let mem = Arc::new(object_store::memory::InMemory::new());
    rt.block_on(async {
        mem.put(&"vod/a/video.cmfv".into(), PutPayload::from(encrypted.clone())).await.unwrap();
        mem.put(&"vod/a/plain.cmfv".into(), PutPayload::from(clear.clone())).await.unwrap();
    });
    let mem: Arc<dyn ObjectStore> = mem;
    let stores = vec![
        ("pread", Store::local(&dir).unwrap()),
        ("mmap", Store::local_with(&dir, LocalRead::Mmap).unwrap()),
        ("object_store", Store::new(mem)),
    ];
    for (_, s) in &stores {
        assert_eq!(s.set_encrypted_files([("vod/a/video.cmfv".to_string(), enc())]).unwrap(), 1);
    }
    Fixture { stores, clear }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_ranges_decrypt_to_the_clear_bytes(a in 0usize..=LEN, b in 0usize..=LEN) {
        use std::sync::OnceLock;
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        static FX: OnceLock<Fixture> = OnceLock::new();
        let rt = RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap());
        let fx = FX.get_or_init(|| fixture("prop", rt));
        let (start, end) = (a.min(b), a.max(b));
        for (name, s) in &fx.stores {
            let got = rt.block_on(s.read_range("vod/a/video.cmfv", start as u64..end as u64)).unwrap();
            prop_assert_eq!(&got[..], &fx.clear[start..end], "{} {}..{}", name, start, end);
            // Files not registered read as stored.
            let plain = rt.block_on(s.read_range("vod/a/plain.cmfv", start as u64..end as u64)).unwrap();
            prop_assert_eq!(&plain[..], &fx.clear[start..end]);
        }
    }
}

/// An empty range reads as no bytes from every store (object stores refuse an empty HTTP
/// range; proptest found it), and still reports a missing object as missing.
#[test]
fn empty_ranges_read_as_no_bytes_and_missing_files_stay_missing() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let fx = fixture("empty", &rt);
    for (name, s) in &fx.stores {
        for path in ["vod/a/video.cmfv", "vod/a/plain.cmfv"] {
            for at in [0u64, 13_046, LEN as u64] {
                let got = rt.block_on(s.read_range(path, at..at)).unwrap_or_else(|e| panic!("{name} {path} {at}: {e}"));
                assert!(got.is_empty(), "{name} {path} {at}");
            }
        }
        let missing = rt.block_on(s.read_range("vod/a/missing.cmfv", 0..0));
        assert!(matches!(missing, Err(sealcast_storage::Error::NotFound(_))), "{name}: {missing:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn edges_registration_and_counters() {
    let dir = std::env::temp_dir().join(format!("sealcast-enc-edges-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("vod/a")).unwrap();
    let clear = clear();
    std::fs::write(dir.join("vod/a/video.cmfv"), oracle_encrypt(&clear)).unwrap();
    let s = Store::local(&dir).unwrap();
    // Before registration the stored (encrypted) bytes come back.
    assert_ne!(&s.read_range("vod/a/video.cmfv", 0..64).await.unwrap()[..], &clear[..64]);
    s.register_encrypted("vod/a/video.cmfv", enc()).unwrap();
    assert_eq!(s.encryption_key_id("vod/a/video.cmfv").as_deref(), Some("storage-key-1"));
    for (a, b) in [(0, 0), (0, 1), (15, 16), (16, 17), (1, 15), (17, 47), (LEN - 1, LEN), (0, LEN)] {
        assert_eq!(&s.read_range("vod/a/video.cmfv", a as u64..b as u64).await.unwrap()[..], &clear[a..b], "{a}..{b}");
    }
    assert!(s.counters().bytes_decrypted.load(Ordering::Relaxed) > 0);
    // A clone shares the registry; replacing the set drops the file from it.
    let c = s.clone();
    c.set_encrypted_files(Vec::new()).unwrap();
    assert!(s.encryption_key_id("vod/a/video.cmfv").is_none());
    // A bad key is refused whole, naming the file, and the current set stays.
    s.register_encrypted("vod/a/video.cmfv", enc()).unwrap();
    let mut bad = enc();
    bad.key = vec![0; 31];
    let e = s.set_encrypted_files([("vod/a/other.cmfv".to_string(), bad.clone())]).unwrap_err();
    assert!(e.to_string().contains("vod/a/other.cmfv"));
    assert!(!format!("{bad:?}").contains("000000"), "keys never in Debug output");
    assert!(s.encryption_key_id("vod/a/video.cmfv").is_some());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Once the fragment cache is seven eighths full, a fragment of a local file stored clear is
/// read into the caller's own buffer and left out of the cache (the page cache holds it) until
/// it misses again soon, but a storage-encrypted one is cached at its first miss, so its bytes
/// are decrypted once.
#[tokio::test(flavor = "current_thread")]
async fn fragments_skip_the_cache_only_when_a_miss_is_a_plain_copy_seen_once() {
    let dir = std::env::temp_dir().join(format!("sealcast-enc-frag-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("vod/a")).unwrap();
    let clear = clear();
    std::fs::write(dir.join("vod/a/video.cmfv"), oracle_encrypt(&clear)).unwrap();
    std::fs::write(dir.join("vod/a/plain.cmfv"), &clear).unwrap();
    // Room for both 4,900-byte fragments (weight: bytes + key + 160), not with an eighth spare.
    let s = Store::local(&dir).unwrap().with_fragment_cache(11_000);
    s.register_encrypted("vod/a/video.cmfv", enc()).unwrap();
    let reads = || s.counters().range_reads.load(Ordering::Relaxed);
    for name in ["video.cmfv", "plain.cmfv"] {
        let info = s.head(&format!("vod/a/{name}")).await.unwrap();
        let before = reads();
        s.sync_fragment_cache();
        let first = s.read_fragment(&info, 100..5000).await.unwrap();
        assert_eq!(&first[..], &clear[100..5000], "{name}");
        let again = s.read_fragment(&info, 100..5000).await.unwrap();
        assert_eq!(&again[..], &clear[100..5000], "{name}");
        if name == "video.cmfv" {
            assert_eq!(reads(), before + 1, "a storage-encrypted fragment is decrypted once and cached");
            assert!(again.try_into_mut().is_err(), "the cached copy is shared");
        } else {
            assert!(first.try_into_mut().is_ok(), "a plain local fragment missed once is the caller's own buffer");
            assert_eq!(reads(), before + 2, "and not cached");
            assert!(again.try_into_mut().is_err(), "missed again within the window: cached, shared");
            s.read_fragment(&info, 100..5000).await.unwrap();
            assert_eq!(reads(), before + 2, "and a hit from then on");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
