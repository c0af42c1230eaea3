//! `cbcs` encryption of many CBC chains at once.
//!
//! CBC is serial within a chain: each block's input needs the ciphertext of the block before
//! it, so one chain runs at the latency of AES (aws-lc's CBC here: ~1.9 GB/s, against ~11
//! GB/s for CTR, whose blocks are independent). But `cbcs` restarts the chain from the
//! constant IV in every protected range (each subsample's protected bytes, or each whole
//! audio sample, is its own chain: Shaka Packager and mp4ff encrypt so, FORMATS.md), and a
//! fragment holds dozens to hundreds of them. Here up to [`LANES`] chains advance together, one block each per step,
//! and the step's blocks go through AES in one call that keeps the AES units busy the way
//! CTR does (RustCrypto's `encrypt_blocks`, eight blocks in flight with AES-NI). aws-lc has
//! no call for several independent chains (its multi-block CBC is internal to TLS), and
//! RustCrypto's block modes chain one message at a time, so the interleaving is written
//! here; the AES itself is the crate's.
//!
//! The output is exactly that of encrypting each chain on its own: the same blocks, the
//! same chaining, in a different order in time. Tests hold it to RustCrypto's `cbc` over
//! each chain separately.

use ::aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use ::aes::Aes128Enc;

use crate::aes::BLOCK;
use crate::error::{Error, Result};
use crate::Pattern;

/// Chains in flight per step: what AES-NI keeps in its pipeline (RustCrypto's parallel
/// block count on x86-64).
pub(crate) const LANES: usize = 8;

/// One `cbcs` chain: `blocks` whole 16-byte blocks from byte `start` of the buffer, of
/// which the pattern's crypt blocks are encrypted, chained from the constant IV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chain {
    pub start: usize,
    pub blocks: usize,
}

/// An expanded AES-128 key for `cbcs` (zeroed on drop, RustCrypto's `zeroize` feature).
pub(crate) struct CbcsKey(Aes128Enc);

/// A chain in progress: where its next crypt block is, where its whole blocks end, how
/// many crypt blocks are left in the current run, and the last ciphertext block.
#[derive(Clone, Copy)]
struct Lane {
    at: usize,
    end: usize,
    run: usize,
    prev: u128,
}

impl CbcsKey {
    pub(crate) fn new(key: &[u8; 16]) -> Self {
        CbcsKey(Aes128Enc::new(GenericArray::from_slice(key)))
    }

    /// Encrypts the crypt blocks of every chain of `chains` in `buf`, each chain on its own
    /// from `iv` along `pattern` (the first `crypt` blocks of every `crypt + skip`; with no
    /// skip, every block). Chains must not overlap; one that does not fit in `buf` is an
    /// error, and then nothing is encrypted.
    pub(crate) fn encrypt(&self, iv: [u8; 16], pattern: Pattern, buf: &mut [u8], chains: &[Chain]) -> Result<()> {
        for c in chains {
            let fits = c.blocks.checked_mul(BLOCK).and_then(|n| n.checked_add(c.start)).is_some_and(|end| end <= buf.len());
            if !fits {
                return Err(Error::Param("cbcs chain outside its buffer"));
            }
        }
        // With no skip blocks a run never ends: every block is a crypt block.
        let (crypt, skip) = if pattern.is_full() { (usize::MAX, 0) } else { (pattern.crypt as usize, pattern.skip as usize * BLOCK) };
        let iv = u128::from_ne_bytes(iv);
        let start = |c: &Chain| Lane { at: c.start, end: c.start + c.blocks * BLOCK, run: crypt, prev: iv };
        let mut queue = chains.iter().filter(|c| c.blocks > 0);
        let mut lanes = [Lane { at: 0, end: 0, run: 0, prev: 0 }; LANES];
        let mut live = 0;
        for (l, c) in lanes.iter_mut().zip(&mut queue) {
            *l = start(c);
            live += 1;
        }
        let mut blocks = [GenericArray::<u8, _>::default(); LANES];
        while live > 0 {
            // Lanes 0..live are in progress (a finished lane takes the next chain, or the
            // last live lane's place).
            for (l, b) in lanes[..live].iter().zip(&mut blocks) {
                *b = (load(buf, l.at) ^ l.prev).to_ne_bytes().into();
            }
            self.0.encrypt_blocks(&mut blocks[..live]);
            let mut k = 0;
            while k < live {
                let l = &mut lanes[k];
                let b: [u8; BLOCK] = blocks[k].into();
                buf[l.at..l.at + BLOCK].copy_from_slice(&b);
                l.prev = u128::from_ne_bytes(b);
                l.at += BLOCK;
                l.run -= 1;
                if l.run == 0 {
                    l.at += skip;
                    l.run = crypt;
                }
                if l.at < l.end {
                    k += 1;
                    continue;
                }
                match queue.next() {
                    Some(c) => {
                        *l = start(c);
                        k += 1;
                    }
                    None => {
                        // The last live lane takes this place; its block (not yet stored)
                        // moves with it.
                        live -= 1;
                        lanes[k] = lanes[live];
                        blocks[k] = blocks[live];
                    }
                }
            }
        }
        Ok(())
    }
}

/// The 16 bytes at `at` of `buf` (in bounds: checked by the caller).
fn load(buf: &[u8], at: usize) -> u128 {
    let mut b = [0u8; BLOCK];
    b.copy_from_slice(&buf[at..at + BLOCK]);
    u128::from_ne_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cbc::cipher::{BlockEncryptMut, KeyIvInit};
    use proptest::prelude::*;

    /// Each chain alone, with RustCrypto's CBC over its crypt blocks gathered in order.
    fn one_by_one(key: [u8; 16], iv: [u8; 16], p: Pattern, buf: &mut [u8], chains: &[Chain]) {
        for c in chains {
            let idx: Vec<usize> = (0..c.blocks).filter(|b| p.is_full() || (b % (p.crypt as usize + p.skip as usize)) < p.crypt as usize).collect();
            let mut enc = cbc::Encryptor::<::aes::Aes128>::new(&key.into(), &iv.into());
            for b in idx {
                let at = c.start + b * BLOCK;
                enc.encrypt_block_mut(GenericArray::from_mut_slice(&mut buf[at..at + BLOCK]));
            }
        }
    }

    /// Disjoint chains over a buffer of `len` bytes from a list of (gap, length) pairs.
    fn chains_of(pieces: &[(usize, usize)], len: usize) -> Vec<Chain> {
        let mut at = 0;
        let mut out = Vec::new();
        for &(gap, n) in pieces {
            let start = at + gap;
            let blocks = n / BLOCK;
            if start + blocks * BLOCK > len {
                break;
            }
            out.push(Chain { start, blocks });
            at = start + n;
        }
        out
    }

    proptest! {
        #[test]
        fn lanes_equal_each_chain_alone(
            pieces in proptest::collection::vec((0usize..40, 0usize..700), 0..40),
            crypt in 0u8..4, skip in 0u8..12, seed: u8,
        ) {
            let p = if crypt == 0 { Pattern::FULL } else { Pattern { crypt, skip } };
            let len = 20_000;
            let orig: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let chains = chains_of(&pieces, len);
            let (key, iv) = ([seed ^ 0x5a; 16], [seed.wrapping_add(7); 16]);
            let mut want = orig.clone();
            one_by_one(key, iv, p, &mut want, &chains);
            let mut got = orig.clone();
            CbcsKey::new(&key).encrypt(iv, p, &mut got, &chains).unwrap();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_chain_past_the_end_is_refused_and_nothing_changes() {
        let mut buf = vec![7u8; 64];
        let key = CbcsKey::new(&[1; 16]);
        let chains = [Chain { start: 0, blocks: 2 }, Chain { start: 40, blocks: 2 }];
        assert!(key.encrypt([0; 16], Pattern::VIDEO, &mut buf, &chains).is_err());
        assert_eq!(buf, vec![7u8; 64]);
        assert!(key.encrypt([0; 16], Pattern::VIDEO, &mut buf, &[Chain { start: usize::MAX, blocks: usize::MAX }]).is_err());
    }

    #[test]
    fn more_chains_than_lanes_of_every_length() {
        // 3 × LANES chains of 0..3 × LANES blocks: lanes finish and refill at every step.
        let mut chains = Vec::new();
        let mut at = 0;
        for n in 0..3 * LANES {
            chains.push(Chain { start: at, blocks: n });
            at += n * BLOCK + 3;
        }
        let orig: Vec<u8> = (0..at).map(|i| i as u8).collect();
        for p in [Pattern::VIDEO, Pattern::FULL, Pattern { crypt: 2, skip: 1 }] {
            let mut want = orig.clone();
            one_by_one([9; 16], [4; 16], p, &mut want, &chains);
            let mut got = orig.clone();
            CbcsKey::new(&[9; 16]).encrypt([4; 16], p, &mut got, &chains).unwrap();
            assert_eq!(got, want, "{p:?}");
        }
    }
}
