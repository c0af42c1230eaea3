//! Storage encryption at rest (Azure Media Services' `StorageEncrypted` asset option): the
//! whole file is AES-CTR encrypted, AES-256 keys (AES-128 accepted).
//!
//! The 16-byte counter block of file block `n` (bytes `16n..16n+16`) is the file's 8-byte IV
//! in bytes 0-7 and `n` as a 64-bit big-endian counter in bytes 8-15, starting at 0 and
//! wrapping to 0 after `0xFFFF_FFFF_FFFF_FFFF` without touching bytes 0-7. So any byte range
//! is decrypted from its offset alone, without reading what precedes it. CTR is its own
//! inverse: the same call encrypts (ingest) and decrypts (origin reads).
//!
//! Pure: no IO, no key lookup. The caller owns the buffers; everything is done in place.

use crate::aes::{AesCtr, BLOCK};
use crate::error::Result;

/// Length of a storage-encryption IV in bytes.
pub const IV_LEN: usize = 8;

/// The counter block of file block `block`: `iv` then `block` big-endian.
///
/// The keystream for the block after `block` uses `block.wrapping_add(1)`: the counter wraps
/// within bytes 8-15 and never carries into the IV.
pub fn counter_block(iv: [u8; IV_LEN], block: u64) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..IV_LEN].copy_from_slice(&iv);
    c[IV_LEN..].copy_from_slice(&block.to_be_bytes());
    c
}

/// One file's storage cipher: its expanded key and IV. Cheap to share between threads (every
/// call takes its position as an argument). `Debug` never shows the key.
pub struct StorageCipher {
    ctr: AesCtr,
    iv: [u8; IV_LEN],
}

impl std::fmt::Debug for StorageCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageCipher").field("key", &"<redacted>").field("iv", &crate::kid::hex(&self.iv)).finish()
    }
}

impl StorageCipher {
    /// Expands `key` (16 or 32 bytes) for the file with `iv`.
    pub fn new(key: &[u8], iv: [u8; IV_LEN]) -> Result<Self> {
        Ok(StorageCipher { ctr: AesCtr::with_key(key)?, iv })
    }

    /// The file's IV.
    pub fn iv(&self) -> [u8; IV_LEN] {
        self.iv
    }

    /// XORs `data`, which sits at byte `offset` of the file, with the file's keystream:
    /// encrypts clear bytes and decrypts encrypted ones. A first and last partial block are
    /// handled; nothing before `offset` is needed.
    pub fn apply_at(&self, offset: u64, data: &mut [u8]) -> Result<()> {
        let mut block = offset / BLOCK as u64;
        let skip = (offset % BLOCK as u64) as usize;
        let mut rest = data;
        if skip != 0 && !rest.is_empty() {
            // Only the tail of this keystream block applies: compute the block alone.
            let mut ks = [0u8; BLOCK];
            self.ctr.apply(counter_block(self.iv, block), &mut ks)?;
            let n = (BLOCK - skip).min(rest.len());
            for (b, k) in rest[..n].iter_mut().zip(&ks[skip..skip + n]) {
                *b ^= k;
            }
            rest = &mut rest[n..];
            block = block.wrapping_add(1);
        }
        self.apply_blocks(block, rest)
    }

    /// XORs `data` with the keystream starting at block counter `block` (block-aligned data).
    /// Past counter `u64::MAX` the counter wraps to 0 and the IV half stays as it is.
    pub fn apply_blocks(&self, block: u64, data: &mut [u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.ctr.apply(counter_block(self.iv, block), data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

    const KEY: [u8; 32] = [0x5a; 32];
    const IV: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn oracle_at(key: &[u8; 32], iv: [u8; 8], offset: u64, data: &mut [u8]) {
        let mut c = ctr::Ctr64BE::<aes::Aes256>::new(key.into(), &counter_block(iv, 0).into());
        c.seek(offset);
        c.apply_keystream(data);
    }

    #[test]
    fn counter_block_layout_and_wrap() {
        assert_eq!(counter_block(IV, 0), [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(counter_block(IV, 0x0102), [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(counter_block(IV, u64::MAX), [1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(counter_block(IV, u64::MAX.wrapping_add(1)), counter_block(IV, 0));
    }

    #[test]
    fn keystream_wraps_at_two_to_the_64_without_touching_the_iv() {
        let c = StorageCipher::new(&KEY, IV).unwrap();
        // Four blocks starting two before the wrap: counters MAX-1, MAX, 0, 1.
        let mut got = vec![0u8; 64];
        c.apply_blocks(u64::MAX - 1, &mut got).unwrap();
        let mut want = vec![0u8; 64];
        for (i, b) in [u64::MAX - 1, u64::MAX, 0, 1].into_iter().enumerate() {
            // Each block on its own: its counter block is exactly IV || b.
            c.apply_blocks(b, &mut want[16 * i..16 * i + 16]).unwrap();
        }
        assert_eq!(got, want);
        // And RustCrypto's Ctr64BE, which wraps the low half too, agrees.
        let mut oracle = vec![0u8; 64];
        ctr::Ctr64BE::<aes::Aes256>::new(&KEY.into(), &counter_block(IV, u64::MAX - 1).into()).apply_keystream(&mut oracle);
        assert_eq!(got, oracle);
        // Block 0 after the wrap is the file's first block.
        let mut first = vec![0u8; 16];
        c.apply_at(0, &mut first).unwrap();
        assert_eq!(&got[32..48], &first[..]);
    }

    #[test]
    fn ranges_match_the_oracle_and_round_trip() {
        let clear: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let c = StorageCipher::new(&KEY, IV).unwrap();
        let mut enc = clear.clone();
        c.apply_at(0, &mut enc).unwrap();
        let mut want = clear.clone();
        oracle_at(&KEY, IV, 0, &mut want);
        assert_eq!(enc, want);
        for (a, b) in [(0usize, 1usize), (1, 2), (15, 17), (16, 32), (3, 1000), (999, 1000), (500, 500), (17, 33)] {
            let mut part = enc[a..b].to_vec();
            c.apply_at(a as u64, &mut part).unwrap();
            assert_eq!(part, &clear[a..b], "{a}..{b}");
        }
    }

    #[test]
    fn aes_128_keys_work_and_other_sizes_are_refused() {
        let k = [9u8; 16];
        let c = StorageCipher::new(&k, IV).unwrap();
        let mut a = vec![0u8; 40];
        c.apply_at(5, &mut a).unwrap();
        let mut b = vec![0u8; 40];
        let mut o = ctr::Ctr64BE::<aes::Aes128>::new(&k.into(), &counter_block(IV, 0).into());
        o.seek(5u64);
        o.apply_keystream(&mut b);
        assert_eq!(a, b);
        assert!(StorageCipher::new(&[0u8; 24], IV).is_err());
        assert!(!format!("{c:?}").contains("0909"));
    }
}
