//! AES-128-CBC over many independent messages at once, each under its own key and IV
//! ("multi-buffer" encryption, the technique of Intel's ipsec-mb job manager).
//!
//! HLS AES-128 (RFC 8216 §4.3.2.4) makes a whole segment one CBC chain, and CBC is serial
//! within a chain: each block waits for the one before it to leave AES, so one segment runs
//! at the latency of the AES unit (aws-lc: ~1.9 GB/s on an Intel Xeon whose CTR makes ~11).
//! An origin under load builds many segments at the same time, though, of any titles and
//! keys; their chains are independent. Here up to [`LANES`] messages advance together, one
//! block each per step, so the AES unit pipelines eight blocks as it does for CTR (measured
//! 8.3 GB/s for eight 1 MiB messages under eight keys, against 1.6–1.9 for one chain).
//!
//! Written here because no crate does it: aws-lc's multi-block CBC is internal to its TLS
//! stitching and takes one key; RustCrypto's `encrypt_blocks` pipelines blocks under one
//! key only (its per-block call under eight keys does not overlap: 0.9 GB/s). The AES-NI
//! rounds are the CPU's instructions (`core::arch`), the key schedule the standard one
//! (FIPS 197 §5.2 through `AESKEYGENASSIST`); tests hold every message's bytes to aws-lc's
//! CBC over that message alone. Without AES-NI (another architecture, an old CPU) each
//! message goes through aws-lc alone, the same bytes.
//!
//! The `unsafe` is confined to the `ni` module: intrinsics behind a run-time CPU check, and
//! raw pointers into the messages' own slices, each checked to hold whole blocks first.

use crate::aes::{AesCbc, BLOCK};
use crate::error::{Error, Result};

/// Messages in flight per step: enough to fill the AES unit's pipeline (its latency over
/// its issue rate, 4–8 on current x86 cores) and few enough to keep the chaining values in
/// registers.
pub const LANES: usize = 8;

/// An AES-128 key expanded for [`encrypt_many`] (and for aws-lc, for the padded last block
/// and CPUs without AES-NI). Round keys are zeroed on drop.
pub struct MultiKey {
    cbc: AesCbc,
    #[cfg(target_arch = "x86_64")]
    ni: Option<ni::RoundKeys>,
}

impl MultiKey {
    /// Expands `key`.
    pub fn new(key: &[u8; 16]) -> Result<Self> {
        Ok(MultiKey {
            cbc: AesCbc::new(key)?,
            #[cfg(target_arch = "x86_64")]
            ni: ni::RoundKeys::new(key),
        })
    }

    /// The same key as a plain one-chain CBC key.
    pub fn cbc(&self) -> &AesCbc {
        &self.cbc
    }

    /// A key that takes the path of CPUs without AES-NI (tests of that path).
    #[cfg(test)]
    fn portable(key: &[u8; 16]) -> Self {
        MultiKey {
            cbc: AesCbc::new(key).unwrap(),
            #[cfg(target_arch = "x86_64")]
            ni: None,
        }
    }
}

/// One message of [`encrypt_many`]: `data` (whole blocks) encrypted in place under `key`,
/// chained from `iv`; afterwards `iv` is its last ciphertext block (the IV it was, for no
/// data), where a continuation or the padded last block chains from.
pub struct Message<'a> {
    /// The message's key.
    pub key: &'a MultiKey,
    /// The IV, then the last ciphertext block.
    pub iv: [u8; BLOCK],
    /// The message, a whole number of blocks.
    pub data: &'a mut [u8],
}

/// Encrypts every message of `msgs` in place, each as AES-128-CBC alone would. A message
/// that is not a whole number of blocks is an error, and then none is encrypted.
pub fn encrypt_many(msgs: &mut [Message<'_>]) -> Result<()> {
    if msgs.iter().any(|m| m.data.len() % BLOCK != 0) {
        return Err(Error::Param("CBC data must be whole 16-byte blocks"));
    }
    #[cfg(target_arch = "x86_64")]
    if ni::encrypt(msgs).is_some() {
        return Ok(());
    }
    for m in msgs.iter_mut() {
        m.iv = m.key.cbc.encrypt_chained(m.iv, m.data)?;
    }
    Ok(())
}

/// One segment of [`encrypt_padded_many`].
pub struct Padded<'a> {
    /// The key.
    pub key: &'a MultiKey,
    /// The IV.
    pub iv: [u8; BLOCK],
    /// The clear segment.
    pub data: Vec<u8>,
}

/// HLS AES-128 whole-segment encryption (CBC with PKCS#7 padding) of many segments
/// together: for each, its whole blocks encrypted where they lie and returned, and its last
/// partial block with the padding as the second, 16-byte part — what
/// [`AesCbc::encrypt_padded`] gives for each alone.
pub fn encrypt_padded_many(mut jobs: Vec<Padded<'_>>) -> Result<Vec<(Vec<u8>, [u8; BLOCK])>> {
    let whole = |data: &[u8]| data.len() - data.len() % BLOCK;
    let mut msgs: Vec<Message<'_>> = jobs
        .iter_mut()
        .map(|j| {
            let n = whole(&j.data);
            Message { key: j.key, iv: j.iv, data: &mut j.data[..n] }
        })
        .collect();
    encrypt_many(&mut msgs)?;
    let last: Vec<[u8; BLOCK]> = msgs.into_iter().map(|m| m.iv).collect();
    // The rest after the whole blocks, padded, chained from each message's last block.
    jobs.into_iter()
        .zip(last)
        .map(|(mut j, last)| {
            let n = whole(&j.data);
            let tail = j.key.cbc.chain(last).finish(&j.data[n..])?;
            j.data.truncate(n);
            Ok((j.data, tail))
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
mod ni {
    use std::arch::x86_64::*;

    use super::{Message, BLOCK, LANES};

    /// The eleven AES-128 round keys in the form `AESENC` takes.
    pub(super) struct RoundKeys([__m128i; 11]);

    impl RoundKeys {
        /// `None` when the CPU has no AES-NI.
        pub(super) fn new(key: &[u8; 16]) -> Option<Self> {
            if !std::arch::is_x86_feature_detected!("aes") {
                return None;
            }
            // SAFETY: SSE2 is part of x86-64; AES-NI was detected above.
            unsafe {
                let mut rk = RoundKeys([_mm_setzero_si128(); 11]);
                expand(key, &mut rk.0);
                Some(rk)
            }
        }
    }

    impl Drop for RoundKeys {
        fn drop(&mut self) {
            for k in &mut self.0 {
                // SAFETY: a valid, aligned element of our own array; volatile so the zeroing
                // is not optimised away.
                unsafe { std::ptr::write_volatile(k, _mm_setzero_si128()) };
            }
        }
    }

    /// One step of the key schedule (FIPS 197 §5.2): `assist` is `AESKEYGENASSIST` of the
    /// previous round key, whose top word is RotWord(SubWord(w3)) ^ Rcon.
    #[target_feature(enable = "aes")]
    unsafe fn next(prev: __m128i, assist: __m128i) -> __m128i {
        let t = _mm_shuffle_epi32(assist, 0xff);
        let mut k = prev;
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
        _mm_xor_si128(k, t)
    }

    /// Expands `key` into `rk` in place (no copy of the schedule left elsewhere).
    #[target_feature(enable = "aes")]
    unsafe fn expand(key: &[u8; 16], rk: &mut [__m128i; 11]) {
        rk[0] = _mm_loadu_si128(key.as_ptr().cast());
        macro_rules! round {
            ($i:literal, $rcon:literal) => {
                rk[$i] = next(rk[$i - 1], _mm_aeskeygenassist_si128::<$rcon>(rk[$i - 1]))
            };
        }
        round!(1, 0x01);
        round!(2, 0x02);
        round!(3, 0x04);
        round!(4, 0x08);
        round!(5, 0x10);
        round!(6, 0x20);
        round!(7, 0x40);
        round!(8, 0x80);
        round!(9, 0x1b);
        round!(10, 0x36);
    }

    /// A message in a lane: where its next block is, how many blocks are left, its last
    /// ciphertext block and its round keys.
    #[derive(Clone, Copy)]
    struct Lane {
        at: *mut u8,
        left: usize,
        prev: __m128i,
        rk: *const __m128i,
        msg: usize,
    }

    /// [`super::encrypt_many`] with AES-NI, for messages of whole blocks; `None`, with nothing
    /// encrypted, when a key has no round keys (no AES-NI).
    pub(super) fn encrypt(msgs: &mut [Message<'_>]) -> Option<()> {
        // Raw lanes first, so nothing borrows the messages while their bytes are written.
        let mut todo: Vec<Lane> = Vec::with_capacity(msgs.len());
        for (i, m) in msgs.iter_mut().enumerate() {
            let rk = m.key.ni.as_ref()?;
            // SAFETY: an unaligned load of 16 bytes from a 16-byte array.
            let prev = unsafe { _mm_loadu_si128(m.iv.as_ptr().cast()) };
            todo.push(Lane { at: m.data.as_mut_ptr(), left: m.data.len() / BLOCK, prev, rk: rk.0.as_ptr(), msg: i });
        }
        // SAFETY: AES-NI is present (every key has round keys, made only once it was
        // detected); each lane points into its own message's slice with `left` whole blocks
        // after it, and the slices do not overlap (they are distinct `&mut`s).
        let ends = unsafe { run(&todo) };
        for (m, end) in msgs.iter_mut().zip(ends) {
            // SAFETY: a 16-byte store into a 16-byte array.
            unsafe { _mm_storeu_si128(m.iv.as_mut_ptr().cast(), end) };
        }
        Some(())
    }

    /// Runs every lane of `todo` to its end, up to [`LANES`] at a time (a finished one makes
    /// room for the next); returns each message's last ciphertext block.
    #[target_feature(enable = "aes")]
    unsafe fn run(todo: &[Lane]) -> Vec<__m128i> {
        let mut ends: Vec<__m128i> = todo.iter().map(|l| l.prev).collect();
        let mut queue = todo.iter().filter(|l| l.left > 0);
        let mut lanes = [Lane { at: std::ptr::null_mut(), left: 0, prev: _mm_setzero_si128(), rk: std::ptr::null(), msg: 0 }; LANES];
        let mut live = 0;
        loop {
            while live < LANES {
                let Some(l) = queue.next() else { break };
                lanes[live] = *l;
                live += 1;
            }
            if live == 0 {
                return ends;
            }
            // Every live lane goes as far as the shortest, then the finished ones leave.
            let steps = lanes[..live].iter().map(|l| l.left).min().unwrap_or(0);
            match live {
                1 => step::<1>(&mut lanes, steps),
                2 => step::<2>(&mut lanes, steps),
                3 => step::<3>(&mut lanes, steps),
                4 => step::<4>(&mut lanes, steps),
                5 => step::<5>(&mut lanes, steps),
                6 => step::<6>(&mut lanes, steps),
                7 => step::<7>(&mut lanes, steps),
                _ => step::<8>(&mut lanes, steps),
            }
            let mut i = 0;
            while i < live {
                if lanes[i].left == 0 {
                    ends[lanes[i].msg] = lanes[i].prev;
                    live -= 1;
                    lanes[i] = lanes[live];
                } else {
                    i += 1;
                }
            }
        }
    }

    /// `blocks` blocks of each of the first `N` lanes, one block of every lane per round of
    /// the loop so their AES rounds overlap in the pipeline.
    #[target_feature(enable = "aes")]
    unsafe fn step<const N: usize>(lanes: &mut [Lane; LANES], blocks: usize) {
        let mut prev: [__m128i; N] = std::array::from_fn(|l| lanes[l].prev);
        let at: [*mut u8; N] = std::array::from_fn(|l| lanes[l].at);
        let rk: [*const __m128i; N] = std::array::from_fn(|l| lanes[l].rk);
        for b in 0..blocks {
            let off = b * BLOCK;
            let mut x: [__m128i; N] = std::array::from_fn(|l| _mm_xor_si128(_mm_xor_si128(_mm_loadu_si128(at[l].add(off).cast()), prev[l]), *rk[l]));
            for r in 1..10 {
                for l in 0..N {
                    x[l] = _mm_aesenc_si128(x[l], *rk[l].add(r));
                }
            }
            for l in 0..N {
                prev[l] = _mm_aesenclast_si128(x[l], *rk[l].add(10));
                _mm_storeu_si128(at[l].add(off).cast(), prev[l]);
            }
        }
        for l in 0..N {
            lanes[l].prev = prev[l];
            lanes[l].at = at[l].add(blocks * BLOCK);
            lanes[l].left -= blocks;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alone(key: &[u8; 16], iv: [u8; 16], data: &[u8]) -> (Vec<u8>, [u8; 16]) {
        AesCbc::new(key).unwrap().encrypt_padded(iv, data.to_vec()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any number of messages (more than the lanes), of any length, some sharing a key,
        /// come out as each alone under aws-lc, padded and not.
        #[test]
        fn many_equal_each_alone(
            msgs in proptest::collection::vec((0usize..4, any::<[u8; 16]>(), 0usize..3000, any::<u8>()), 0..30),
            keys in proptest::collection::vec(any::<[u8; 16]>(), 4),
            portable in any::<bool>(),
        ) {
            let multi: Vec<MultiKey> = keys.iter().map(|k| if portable { MultiKey::portable(k) } else { MultiKey::new(k).unwrap() }).collect();
            let clear: Vec<Vec<u8>> = msgs.iter().map(|&(_, _, len, seed)| (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()).collect();
            let want: Vec<_> = msgs.iter().zip(&clear).map(|(&(k, iv, _, _), c)| alone(&keys[k], iv, c)).collect();
            let jobs = msgs.iter().zip(&clear).map(|(&(k, iv, _, _), c)| Padded { key: &multi[k], iv, data: c.clone() }).collect();
            let got = encrypt_padded_many(jobs).unwrap();
            prop_assert_eq!(&got, &want);
            // Unpadded: whole blocks only, and the last block is handed back.
            let mut bufs: Vec<Vec<u8>> = clear.iter().map(|c| c[..c.len() / 16 * 16].to_vec()).collect();
            let mut m: Vec<Message<'_>> = bufs.iter_mut().zip(&msgs).map(|(b, &(k, iv, _, _))| Message { key: &multi[k], iv, data: b }).collect();
            encrypt_many(&mut m).unwrap();
            for ((msg, (body, _)), &(_, iv, _, _)) in m.iter().zip(&want).zip(&msgs) {
                prop_assert_eq!(&msg.data[..], &body[..]);
                let last = if body.is_empty() { iv } else { body[body.len() - 16..].try_into().unwrap() };
                prop_assert_eq!(msg.iv, last);
            }
        }
    }

    #[test]
    fn a_message_of_part_blocks_is_refused_and_none_is_encrypted() {
        let key = MultiKey::new(&[7; 16]).unwrap();
        let (mut a, mut b) = (vec![1u8; 64], vec![2u8; 65]);
        let mut m = [Message { key: &key, iv: [0; 16], data: &mut a }, Message { key: &key, iv: [0; 16], data: &mut b }];
        assert!(encrypt_many(&mut m).is_err());
        assert_eq!((a, b), (vec![1u8; 64], vec![2u8; 65]));
    }

    /// FIPS 197 Appendix B's example vector, through the AES-NI key schedule and rounds (one
    /// block from a zero IV is the plain block cipher).
    #[test]
    fn fips_197_vector() {
        let key = [0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c];
        let mut block = [0x32, 0x43, 0xf6, 0xa8, 0x88, 0x5a, 0x30, 0x8d, 0x31, 0x31, 0x98, 0xa2, 0xe0, 0x37, 0x07, 0x34];
        let k = MultiKey::new(&key).unwrap();
        encrypt_many(&mut [Message { key: &k, iv: [0; 16], data: &mut block }]).unwrap();
        assert_eq!(block, [0x39, 0x25, 0x84, 0x1d, 0x02, 0xdc, 0x09, 0xfb, 0xdc, 0x11, 0x85, 0x97, 0x19, 0x6a, 0x0b, 0x32]);
    }
}
