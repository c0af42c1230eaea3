//! AES primitives over aws-lc: CTR with the 64-bit block counter that CENC (and storage
//! encryption) specify, and CBC without padding. CENC uses AES-128; storage encryption uses
//! AES-256 (AES-128 accepted), so CTR takes either key size.
//!
//! aws-lc rather than RustCrypto: it is about twice as fast on this machine class
//! (ARCHITECTURE.md); RustCrypto stays as the independent oracle in the tests. The one
//! exception is `cbcs`, whose many short chains go through RustCrypto's parallel AES
//! (`src/lanes.rs` says why); the goldens made by aws-lc and the Shaka Packager and ffmpeg
//! decryptions hold it to the same bytes.
//!
//! The keys are aws-lc's own `AES_KEY` schedules, driven through `aws-lc-sys` (the library
//! `aws-lc-rs` is built on, the same build): `aws-lc-rs` offers CTR and CBC only in place,
//! and an output encrypted from a source other requests share (a cached fragment) then pays
//! a copy of every byte before the cipher runs. aws-lc's `AES_ctr128_encrypt` and
//! `AES_cbc_encrypt` take separate input and output, so the cipher reads the shared source
//! and writes the response in one pass ([`CtrStream::extend_from`]). Same kernels
//! (AES-NI/VAES) as `aws-lc-rs` uses in place. The `unsafe` is confined to `RawKey`.
//!
//! Keys are expanded once ([`AesCtr::new`], [`AesCbc::new`]) and then used from any number
//! of threads: every call takes its IV or counter block as an argument and keeps no state.

use std::mem::MaybeUninit;

use aws_lc_sys::{AES_cbc_encrypt, AES_ctr128_encrypt, AES_set_encrypt_key, AES_ENCRYPT, AES_KEY};
use zeroize::Zeroize;

use crate::error::{Error, Result};

/// AES block size in bytes.
pub const BLOCK: usize = 16;

/// An expanded AES encryption key (aws-lc's `AES_KEY`), zeroed on drop. Its methods are the
/// only `unsafe` in this crate: each passes aws-lc pointers into live slices of the stated
/// length, and the key and IV buffers aws-lc reads and writes are owned here.
struct RawKey(AES_KEY);

impl RawKey {
    /// Expands a 16- or 32-byte key (callers check the length).
    fn new(bytes: &[u8]) -> Result<Self> {
        debug_assert!(matches!(bytes.len(), 16 | 32));
        // aws-lc picks its AES implementation from CPU features detected at initialisation.
        aws_lc_rs::init();
        let mut key = MaybeUninit::<AES_KEY>::zeroed();
        // SAFETY: `bytes` holds `bits / 8` readable bytes; `key` is writable, and an all-zero
        // `AES_KEY` (integers only) is a valid value whatever the call does.
        let rc = unsafe { AES_set_encrypt_key(bytes.as_ptr(), (bytes.len() * 8) as _, key.as_mut_ptr()) };
        if rc != 0 {
            return Err(Error::Crypto("key setup"));
        }
        // SAFETY: zero-initialised above, and set by aws-lc.
        Ok(RawKey(unsafe { key.assume_init() }))
    }

    /// CTR keystream from counter block `counter` (all 128 bits incremented per block, so
    /// callers split at a 64-bit wrap) XORed over `len` bytes from `src` to `dst`; `src` and
    /// `dst` are the same buffer (in place) or do not overlap.
    ///
    /// # Safety
    /// `src` readable and `dst` writable for `len` bytes; equal or disjoint.
    unsafe fn ctr(&self, counter: [u8; 16], src: *const u8, dst: *mut u8, len: usize) {
        let (mut ivec, mut ecount, mut num) = (counter, [0u8; BLOCK], 0u32);
        // SAFETY: the caller's contract for `src`/`dst`; the key, counter and keystream
        // buffers are local and 16 bytes each, `num` starts at 0 (no keystream carried in).
        unsafe { AES_ctr128_encrypt(src, dst, len, &self.0, ivec.as_mut_ptr(), ecount.as_mut_ptr(), &mut num) };
        ecount.zeroize();
    }

    /// CBC from `iv` over `len` bytes (a whole number of blocks, callers check) from `src`
    /// to `dst` (same buffer or disjoint); the last ciphertext block, or `iv` when `len` is 0.
    ///
    /// # Safety
    /// As [`Self::ctr`], and `len` a multiple of [`BLOCK`] (aws-lc pads a partial last block
    /// and writes a whole one).
    unsafe fn cbc(&self, iv: [u8; 16], src: *const u8, dst: *mut u8, len: usize) -> [u8; 16] {
        debug_assert_eq!(len % BLOCK, 0);
        let mut ivec = iv;
        // SAFETY: the caller's contract; `ivec` is a local 16-byte buffer aws-lc updates to
        // the last ciphertext block.
        unsafe { AES_cbc_encrypt(src, dst, len, &self.0, ivec.as_mut_ptr(), AES_ENCRYPT as _) };
        ivec
    }
}

impl Drop for RawKey {
    fn drop(&mut self) {
        self.0.rd_key.zeroize();
    }
}

/// AES-CTR (AES-128 or AES-256) with a 16-byte counter block whose high 8 bytes stay fixed and whose low 8
/// bytes are a big-endian block counter wrapping modulo 2^64 (ISO/IEC 23001-7 §9.5.2;
/// Shaka Packager and ffmpeg both increment only the low half).
pub struct AesCtr {
    key: RawKey,
}

impl AesCtr {
    /// Expands an AES-128 `key`.
    pub fn new(key_bytes: &[u8; 16]) -> Result<Self> {
        Ok(AesCtr { key: RawKey::new(key_bytes)? })
    }

    /// Expands an AES-128 (16-byte) or AES-256 (32-byte) key; any other length is refused.
    pub fn with_key(key_bytes: &[u8]) -> Result<Self> {
        match key_bytes.len() {
            16 | 32 => Ok(AesCtr { key: RawKey::new(key_bytes)? }),
            _ => Err(Error::Param("AES key must be 16 or 32 bytes")),
        }
    }

    /// XORs `data` with the keystream that starts at `counter` (the first block's counter
    /// block). A final partial block uses the head of its keystream block.
    pub fn apply(&self, counter: [u8; 16], data: &mut [u8]) -> Result<()> {
        let p = data.as_mut_ptr();
        // SAFETY: in place over `data`'s own bytes.
        self.each_run(counter, data.len(), |c, at, n| unsafe { self.key.ctr(c, p.add(at), p.add(at), n) });
        Ok(())
    }

    /// Appends `src` XORed with the keystream that starts at `counter` to `dst`, reading
    /// `src` once and writing `dst` once.
    pub fn extend_from(&self, counter: [u8; 16], src: &[u8], dst: &mut Vec<u8>) {
        dst.reserve(src.len());
        let spare = dst.spare_capacity_mut();
        let (s, d) = (src.as_ptr(), spare.as_mut_ptr().cast::<u8>());
        // SAFETY: `src` is a live slice of `src.len()` bytes and `spare` has at least as many
        // writable (uninitialised) bytes after `reserve`; a shared and an exclusive borrow
        // cannot overlap.
        self.each_run(counter, src.len(), |c, at, n| unsafe { self.key.ctr(c, s.add(at), d.add(at), n) });
        // SAFETY: the keystream calls above wrote all `src.len()` bytes.
        unsafe { dst.set_len(dst.len() + src.len()) };
    }

    /// Calls `run(counter block, offset, length)` over `len` bytes, split where the low half
    /// of the counter wraps (aws-lc carries into all 128 bits; CENC's high half never sees
    /// a carry). One run unless the counter starts within `len / 16` blocks of the wrap.
    fn each_run(&self, counter: [u8; 16], len: usize, mut run: impl FnMut([u8; 16], usize, usize)) {
        let mut hi = [0u8; 8];
        hi.copy_from_slice(&counter[..8]);
        let mut lo = u64::from_be_bytes(lo_half(&counter));
        let mut at = 0usize;
        while at < len {
            let blocks_to_wrap = (u64::MAX - lo) as u128 + 1;
            let n = (blocks_to_wrap * BLOCK as u128).min((len - at) as u128) as usize;
            run(counter_block(hi, lo), at, n);
            lo = lo.wrapping_add(n.div_ceil(BLOCK) as u64);
            at += n;
        }
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
        let (ks, from, n) = self.take_left(data.len())?;
        for (b, k) in data[..n].iter_mut().zip(&ks[from..from + n]) {
            *b ^= k;
        }
        let rest = &mut data[n..];
        if !rest.is_empty() {
            self.key.apply(counter_block(self.hi, self.lo), rest)?;
            self.advance(rest.len());
        }
        Ok(())
    }

    /// Appends `src` XORed with the next `src.len()` keystream bytes to `dst`: out of place,
    /// one read of `src` and one write of `dst` ([`AesCtr::extend_from`]).
    pub fn extend_from(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Result<()> {
        let (ks, from, n) = self.take_left(src.len())?;
        dst.extend(src[..n].iter().zip(&ks[from..from + n]).map(|(b, k)| b ^ k));
        let rest = &src[n..];
        if !rest.is_empty() {
            self.key.extend_from(counter_block(self.hi, self.lo), rest, dst);
            self.advance(rest.len());
        }
        Ok(())
    }

    /// The unused keystream of the block the previous range ended inside, for the first
    /// `len` bytes of the next: (that keystream block, first unused byte, bytes it covers),
    /// marked used. Nothing when the previous range ended on a block boundary.
    fn take_left(&mut self, len: usize) -> Result<([u8; BLOCK], usize, usize)> {
        let mut ks = [0u8; BLOCK];
        if self.used == BLOCK || len == 0 {
            return Ok((ks, 0, 0));
        }
        self.key.apply(counter_block(self.hi, self.lo.wrapping_sub(1)), &mut ks)?;
        let (from, n) = (self.used, (BLOCK - self.used).min(len));
        self.used += n;
        Ok((ks, from, n))
    }

    /// Moves past `n` bytes of keystream taken from fresh blocks starting at `lo`.
    fn advance(&mut self, n: usize) {
        self.lo = self.lo.wrapping_add(n.div_ceil(BLOCK) as u64);
        self.used = match n % BLOCK {
            0 => BLOCK,
            r => r,
        };
    }
}

/// AES-128-CBC encryption without padding.
pub struct AesCbc {
    key: RawKey,
}

impl AesCbc {
    /// Expands `key`.
    pub fn new(key_bytes: &[u8; 16]) -> Result<Self> {
        Ok(AesCbc { key: RawKey::new(key_bytes)? })
    }

    /// Encrypts `data` (a whole number of blocks) in place, chaining from `iv`.
    pub fn encrypt(&self, iv: [u8; 16], data: &mut [u8]) -> Result<()> {
        self.encrypt_chained(iv, data).map(drop)
    }

    /// [`Self::encrypt`], returning the last ciphertext block (`iv` for no data): what the
    /// next piece of the same chain starts from.
    pub(crate) fn encrypt_chained(&self, iv: [u8; 16], data: &mut [u8]) -> Result<[u8; 16]> {
        if data.len() & (BLOCK - 1) != 0 {
            return Err(Error::Param("CBC data must be whole 16-byte blocks"));
        }
        let p = data.as_mut_ptr();
        // SAFETY: in place over `data`, a whole number of blocks (checked above).
        Ok(unsafe { self.key.cbc(iv, p, p, data.len()) })
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
        self.last = self.cbc.encrypt_chained(self.last, data)?;
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
        // Out of place, ranges alternating with in-place ones, continuing inside blocks.
        let mut out = Vec::new();
        let mut s = CtrStream::new(&k, iv);
        let mut at = 0;
        for (i, n) in [5usize, 11, 0, 33, 16, 1, 234].into_iter().enumerate() {
            if i % 2 == 0 {
                s.extend_from(&src[at..at + n], &mut out).unwrap();
            } else {
                let mut piece = src[at..at + n].to_vec();
                s.apply(&mut piece).unwrap();
                out.extend_from_slice(&piece);
            }
            at += n;
        }
        assert_eq!(at, 300);
        assert_eq!(out, want);
    }

    #[test]
    fn ctr_out_of_place_matches_rustcrypto_including_the_64_bit_wrap() {
        let key = [7u8; 16];
        let k = AesCtr::new(&key).unwrap();
        for lo in [0u64, u64::MAX - 2, u64::MAX] {
            let mut iv = [0x5au8; 16];
            iv[8..].copy_from_slice(&lo.to_be_bytes());
            let src: Vec<u8> = (0..1000u32).map(|i| (i * 13) as u8).collect();
            let mut want = src.clone();
            oracle(&key, iv, &mut want);
            let mut out = vec![1u8, 2, 3];
            k.extend_from(iv, &src, &mut out);
            assert_eq!(&out[..3], &[1, 2, 3]);
            assert_eq!(&out[3..], &want[..], "lo={lo}");
        }
    }

    #[test]
    fn aes_256_ctr_matches_rustcrypto() {
        let key = [0x42u8; 32];
        let iv = [0x11u8; 16];
        let src: Vec<u8> = (0..77u32).map(|i| i as u8).collect();
        let mut got = src.clone();
        AesCtr::with_key(&key).unwrap().apply(iv, &mut got).unwrap();
        let mut want = src.clone();
        ctr::Ctr64BE::<aes::Aes256>::new(&key.into(), &iv.into()).apply_keystream(&mut want);
        assert_eq!(got, want);
        assert!(AesCtr::with_key(&[0u8; 24]).is_err());
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
