//! AES primitives over `aws-lc-rs`: CTR with the 64-bit block counter that CENC (and
//! storage encryption) specify, and CBC without padding. CENC uses AES-128; storage
//! encryption uses AES-256 (AES-128 accepted), so CTR takes either key size.
//!
//! `aws-lc-rs` rather than RustCrypto: it is about twice as fast on this machine class
//! (ARCHITECTURE.md); RustCrypto stays as the independent oracle in the tests.
//!
//! Keys are expanded once ([`AesCtr::new`], [`AesCbc::new`]) and then used from any number
//! of threads: every call takes its IV or counter block as an argument and keeps no state.

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128, AES_256};
use aws_lc_rs::iv::FixedLength;

use crate::error::{Error, Result};

/// AES block size in bytes.
pub const BLOCK: usize = 16;

fn key(bytes: &[u8; 16]) -> Result<UnboundCipherKey> {
    UnboundCipherKey::new(&AES_128, bytes).map_err(|_| Error::Crypto("key setup"))
}

/// AES-CTR (AES-128 or AES-256) with a 16-byte counter block whose high 8 bytes stay fixed and whose low 8
/// bytes are a big-endian block counter wrapping modulo 2^64 (ISO/IEC 23001-7 §9.5.2;
/// Shaka Packager and ffmpeg both increment only the low half).
pub struct AesCtr {
    key: EncryptingKey,
}

impl AesCtr {
    /// Expands an AES-128 `key`.
    pub fn new(key_bytes: &[u8; 16]) -> Result<Self> {
        Ok(AesCtr { key: EncryptingKey::ctr(key(key_bytes)?).map_err(|_| Error::Crypto("CTR key setup"))? })
    }

    /// Expands an AES-128 (16-byte) or AES-256 (32-byte) key; any other length is refused.
    pub fn with_key(key_bytes: &[u8]) -> Result<Self> {
        let alg = match key_bytes.len() {
            16 => &AES_128,
            32 => &AES_256,
            _ => return Err(Error::Param("AES key must be 16 or 32 bytes")),
        };
        let k = UnboundCipherKey::new(alg, key_bytes).map_err(|_| Error::Crypto("key setup"))?;
        Ok(AesCtr { key: EncryptingKey::ctr(k).map_err(|_| Error::Crypto("CTR key setup"))? })
    }

    /// XORs `data` with the keystream that starts at `counter` (the first block's counter
    /// block). A final partial block uses the head of its keystream block.
    pub fn apply(&self, counter: [u8; 16], data: &mut [u8]) -> Result<()> {
        let mut hi = [0u8; 8];
        hi.copy_from_slice(&counter[..8]);
        let mut lo = u64::from_be_bytes(lo_half(&counter));
        let mut rest = data;
        while !rest.is_empty() {
            // The library increments all 128 bits; split the call where the low half wraps so
            // the high half never sees a carry.
            let blocks_to_wrap = (u64::MAX - lo) as u128 + 1;
            let n = (blocks_to_wrap * BLOCK as u128).min(rest.len() as u128) as usize;
            let (now, later) = rest.split_at_mut(n);
            let ctx = EncryptionContext::Iv128(FixedLength::from(counter_block(hi, lo)));
            self.key.less_safe_encrypt(now, ctx).map_err(|_| Error::Crypto("CTR"))?;
            lo = lo.wrapping_add(n.div_ceil(BLOCK) as u64);
            rest = later;
        }
        Ok(())
    }
}

fn lo_half(c: &[u8; 16]) -> [u8; 8] {
    let mut lo = [0u8; 8];
    lo.copy_from_slice(&c[8..]);
    lo
}

fn counter_block(hi: [u8; 8], lo: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi);
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b
}

/// A CTR keystream position that survives across disjoint byte ranges: CENC continues one
/// sample's keystream over all its protected ranges, even when a range ends mid-block.
///
/// Each range is one library call (the library handles a final partial block). Only when a
/// later range must continue inside that partial block is its keystream block computed
/// again, so whole-sample audio and block-aligned video ranges cost one call each.
pub struct CtrStream<'k> {
    key: &'k AesCtr,
    hi: [u8; 8],
    /// Counter of the next unused keystream block.
    lo: u64,
    /// Bytes of keystream block `lo - 1` already used; `BLOCK` when none are left.
    used: usize,
}

impl<'k> CtrStream<'k> {
    /// Starts the keystream at counter block `counter`.
    pub fn new(key: &'k AesCtr, counter: [u8; 16]) -> Self {
        let mut hi = [0u8; 8];
        hi.copy_from_slice(&counter[..8]);
        CtrStream { key, hi, lo: u64::from_be_bytes(lo_half(&counter)), used: BLOCK }
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    pub fn apply(&mut self, data: &mut [u8]) -> Result<()> {
        let mut d = data;
        if self.used < BLOCK && !d.is_empty() {
            let mut ks = [0u8; BLOCK];
            self.key.apply(counter_block(self.hi, self.lo.wrapping_sub(1)), &mut ks)?;
            let n = (BLOCK - self.used).min(d.len());
            for (b, k) in d[..n].iter_mut().zip(&ks[self.used..self.used + n]) {
                *b ^= k;
            }
            self.used += n;
            d = &mut d[n..];
        }
        if !d.is_empty() {
            self.key.apply(counter_block(self.hi, self.lo), d)?;
            self.lo = self.lo.wrapping_add(d.len().div_ceil(BLOCK) as u64);
            self.used = match d.len() % BLOCK {
                0 => BLOCK,
                r => r,
            };
        }
        Ok(())
    }
}

/// AES-128-CBC encryption without padding.
pub struct AesCbc {
    key: EncryptingKey,
}

impl AesCbc {
    /// Expands `key`.
    pub fn new(key_bytes: &[u8; 16]) -> Result<Self> {
        Ok(AesCbc { key: EncryptingKey::cbc(key(key_bytes)?).map_err(|_| Error::Crypto("CBC key setup"))? })
    }

    /// Encrypts `data` (a whole number of blocks) in place, chaining from `iv`.
    pub fn encrypt(&self, iv: [u8; 16], data: &mut [u8]) -> Result<()> {
        if data.len() & (BLOCK - 1) != 0 {
            return Err(Error::Param("CBC data must be whole 16-byte blocks"));
        }
        if data.is_empty() {
            return Ok(());
        }
        let ctx = EncryptionContext::Iv128(FixedLength::from(iv));
        self.key.less_safe_encrypt(data, ctx).map_err(|_| Error::Crypto("CBC"))?;
        Ok(())
    }

    /// HLS AES-128 whole-segment encryption (RFC 8216 §4.3.2.4: AES-128-CBC with PKCS#7
    /// padding), in place and without growing the buffer: the whole blocks are encrypted where
    /// they lie and returned, and the last partial block plus its padding is the second,
    /// 16-byte result. Their concatenation is the encrypted segment.
    pub fn encrypt_padded(&self, iv: [u8; 16], data: Vec<u8>) -> Result<(Vec<u8>, [u8; 16])> {
        self.chain(iv).finish_from(data, 0)
    }

    /// CBC from `iv` over data handed in pieces (see [`CbcChain`]).
    pub fn chain(&self, iv: [u8; 16]) -> CbcChain<'_> {
        CbcChain { cbc: self, last: iv }
    }
}

/// AES-128-CBC over a message handed in consecutive pieces of whole blocks, so each piece
/// can be encrypted while it is still in cache (e.g. as a muxer writes it), then
/// [`Self::finish`]ed with PKCS#7 padding: the same bytes as one [`AesCbc::encrypt_padded`].
pub struct CbcChain<'k> {
    cbc: &'k AesCbc,
    /// The IV, then the last ciphertext block: what the next block chains from.
    last: [u8; BLOCK],
}

impl CbcChain<'_> {
    /// Encrypts the next piece of the message (a whole number of blocks) in place.
    pub fn encrypt(&mut self, data: &mut [u8]) -> Result<()> {
        self.cbc.encrypt(self.last, data)?;
        if let Some(last) = data.last_chunk::<BLOCK>() {
            self.last = *last;
        }
        Ok(())
    }

    /// Ends a message held in `data` whose first `from` bytes went through [`Self::encrypt`]
    /// already: the whole blocks after them encrypted in place, the rest padded into the last
    /// block ([`Self::finish`]). Returns the whole blocks and that last block, as
    /// [`AesCbc::encrypt_padded`] does.
    pub fn finish_from(mut self, mut data: Vec<u8>, from: usize) -> Result<(Vec<u8>, [u8; BLOCK])> {
        let whole = data.len() - data.len() % BLOCK;
        let todo = data.get_mut(from..whole).ok_or(Error::Param("CBC: more handed over than the message holds"))?;
        self.encrypt(todo)?;
        let tail = self.finish(&data[whole..])?;
        data.truncate(whole);
        Ok((data, tail))
    }

    /// The message's last block: `rest` (under one block, what follows the pieces) padded
    /// (PKCS#7: a whole block of padding when `rest` is empty), encrypted.
    pub fn finish(self, rest: &[u8]) -> Result<[u8; BLOCK]> {
        if rest.len() >= BLOCK {
            return Err(Error::Param("CBC: the rest after the pieces must be under one block"));
        }
        let mut tail = [0u8; BLOCK];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()..].fill((BLOCK - rest.len()) as u8);
        self.cbc.encrypt(self.last, &mut tail)?;
        Ok(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctr::cipher::{KeyIvInit, StreamCipher};

    type Oracle = ctr::Ctr64BE<aes::Aes128>;

    fn oracle(key: &[u8; 16], iv: [u8; 16], data: &mut [u8]) {
        Oracle::new(key.into(), &iv.into()).apply_keystream(data);
    }

    #[test]
    fn cbc_in_pieces_equals_one_pass() {
        let cbc = AesCbc::new(&[3u8; 16]).unwrap();
        let iv = [5u8; 16];
        for len in [0usize, 1, 15, 16, 17, 188 * 7, 188 * 100 + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let (body, tail) = cbc.encrypt_padded(iv, data.clone()).unwrap();
            let whole = len - len % 16;
            let mut pieces = data.clone();
            let mut chain = cbc.chain(iv);
            let mut at = 0usize;
            for step in [16usize, 48, 4096, usize::MAX] {
                let end = at.saturating_add(step).min(whole);
                chain.encrypt(&mut pieces[at..end]).unwrap();
                at = end;
            }
            assert_eq!(chain.finish(&pieces[whole..]).unwrap(), tail, "{len}");
            assert_eq!(&pieces[..whole], &body[..], "{len}");
        }
        assert!(cbc.chain(iv).finish(&[0u8; 16]).is_err());
    }

    #[test]
    fn padded_cbc_matches_rustcrypto_pkcs7() {
        use cbc::cipher::{BlockEncryptMut, KeyIvInit};
        let key = [7u8; 16];
        let iv = [9u8; 16];
        for n in [0usize, 1, 15, 16, 17, 100, 4096] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let (body, tail) = AesCbc::new(&key).unwrap().encrypt_padded(iv, data.clone()).unwrap();
            let mut buf = data.clone();
            buf.resize(n + 16, 0);
            let want = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
                .encrypt_padded_mut::<cbc::cipher::block_padding::Pkcs7>(&mut buf, n)
                .unwrap();
            assert_eq!([body, tail.to_vec()].concat(), want, "length {n}");
        }
    }

    #[test]
    fn ctr_matches_rustcrypto_including_the_64_bit_wrap() {
        let key = [7u8; 16];
        let k = AesCtr::new(&key).unwrap();
        for lo in [0u64, 5, u64::MAX - 2, u64::MAX] {
            let mut iv = [0xabu8; 16];
            iv[8..].copy_from_slice(&lo.to_be_bytes());
            let src: Vec<u8> = (0..200u32).map(|i| (i * 31) as u8).collect();
            let (mut a, mut b) = (src.clone(), src.clone());
            k.apply(iv, &mut a).unwrap();
            oracle(&key, iv, &mut b);
            assert_eq!(a, b, "lo={lo}");
        }
    }

    #[test]
    fn stream_continues_across_odd_ranges() {
        let key = [3u8; 16];
        let k = AesCtr::new(&key).unwrap();
        let iv = [9u8; 16];
        let src: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut want = src.clone();
        oracle(&key, iv, &mut want);
        let mut got = src.clone();
        let mut s = CtrStream::new(&k, iv);
        let mut at = 0;
        for n in [1usize, 15, 16, 3, 40, 0, 17, 208] {
            s.apply(&mut got[at..at + n]).unwrap();
            at += n;
        }
        assert_eq!(at, 300);
        assert_eq!(got, want);
    }

    #[test]
    fn cbc_matches_rustcrypto() {
        use cbc::cipher::{BlockEncryptMut, KeyIvInit};
        let key = [1u8; 16];
        let iv = [2u8; 16];
        let src: Vec<u8> = (0..64u32).map(|i| i as u8).collect();
        let mut a = src.clone();
        AesCbc::new(&key).unwrap().encrypt(iv, &mut a).unwrap();
        let mut b = src.clone();
        cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .encrypt_padded_mut::<cbc::cipher::block_padding::NoPadding>(&mut b, 64)
            .unwrap();
        assert_eq!(a, b);
        assert!(AesCbc::new(&key).unwrap().encrypt(iv, &mut [0u8; 15]).is_err());
    }
}
