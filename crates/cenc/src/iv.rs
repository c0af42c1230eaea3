//! Deterministic IVs: the same request gives the same bytes on every node, and no two
//! samples encrypted under one key share an AES-CTR counter block.
//!
//! # Construction (`cenc`)
//!
//! Per track, a 64-bit `base` = the first 8 bytes of
//! `SHA-256("sealcast/cenc-iv/v1" || 0x00 || KID || track_ID (u32 BE) || len(context) (u64 BE) || context)`.
//! The IV of a sample is `base + index (mod 2^64)`, written big-endian, where `index` is a
//! number unique to the sample within its track: the packager uses the sample's absolute
//! decode time (known for every fragment of a segment request, from `tfdt`, without
//! counting the samples before it). `context` names the content (asset and file), so two
//! assets that share a key and a track ID still get unrelated bases.
//!
//! The counter block of a sample is `IV || block counter` (8 + 8 bytes, the counter from 0),
//! for 8-byte IVs as the spec says, and also for 16-byte IVs, which we write as the 8-byte
//! IV followed by eight zero bytes. So:
//!
//! * within a track, two samples never share a counter block: their indexes differ, so the
//!   high halves of their counter blocks differ, and a sample would need 2^64 blocks for its
//!   own counter to wrap;
//! * across tracks (or contents) under one key, the bases are independent pseudo-random
//!   64-bit values; two tracks whose indexes span `n` and `m` values collide only if their
//!   ranges `[base, base + n)` overlap, which has probability about `(n + m) / 2^64`
//!   (for two 2-hour 90 kHz tracks, below 10^-10).
//!
//! `context` must change whenever the bytes a sample index maps to could change: include
//! the file's identity *and version* (e.g. its path and ETag, or a content hash), and any
//! configurable subsample rule (a different clear prefix shifts which bytes meet which
//! keystream block). Re-encrypting different plaintext under the same key, context, track
//! and index would reuse keystream.
//!
//! The IV is derived from public values (KID, track, context), never from key bytes: an IV
//! is public anyway (it travels in `senc`), and CTR needs uniqueness, not secrecy.
//!
//! # `cbcs`
//!
//! `cbcs` uses one constant IV per track (`tenc`); [`constant_iv`] derives it the same way
//! under another label, so it too is stable across nodes without being stored.

use aws_lc_rs::digest::{Context, SHA256};

/// Per-track IV source for `cenc`: `base + index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IvDeriver {
    base: u64,
}

fn hash(label: &[u8], kid: &[u8; 16], context: &[u8], track_id: u32) -> [u8; 32] {
    let mut h = Context::new(&SHA256);
    h.update(label);
    h.update(&[0]);
    h.update(kid);
    h.update(&track_id.to_be_bytes());
    h.update(&(context.len() as u64).to_be_bytes());
    h.update(context);
    let mut out = [0u8; 32];
    out.copy_from_slice(h.finish().as_ref());
    out
}

impl IvDeriver {
    /// Derives the base for a track from the key's KID, a content name and the track ID.
    pub fn derive(kid: &[u8; 16], context: &[u8], track_id: u32) -> Self {
        let d = hash(b"sealcast/cenc-iv/v1", kid, context, track_id);
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        IvDeriver { base: u64::from_be_bytes(b) }
    }

    /// A fixed base (tests, or an IV given by configuration as Shaka Packager's `--iv`).
    pub const fn from_base(base: u64) -> Self {
        IvDeriver { base }
    }

    /// The base.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The 8-byte IV of the sample with `index`.
    pub fn iv(&self, index: u64) -> [u8; 8] {
        self.base.wrapping_add(index).to_be_bytes()
    }

    /// The first counter block of the sample with `index`: its IV, then a zero block counter.
    pub fn counter_block(&self, index: u64) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..8].copy_from_slice(&self.iv(index));
        c
    }
}

/// The constant `cbcs` IV of a track.
pub fn constant_iv(kid: &[u8; 16], context: &[u8], track_id: u32) -> [u8; 16] {
    let d = hash(b"sealcast/cbcs-iv/v1", kid, context, track_id);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&d[..16]);
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_separated() {
        let kid = [0xab; 16];
        let a = IvDeriver::derive(&kid, b"movie/video.cmfv", 1);
        // Pinned (and recomputed with Python's hashlib from the construction in the module
        // docs): a change here changes every encrypted byte we serve, and CDN caches.
        assert_eq!(a.base(), 0xf3d0_45e4_6340_c13d);
        assert_eq!(constant_iv(&kid, b"movie/video.cmfv", 1)[..4], [0xec, 0x00, 0xbf, 0x54]);
        assert_ne!(a.base(), IvDeriver::derive(&kid, b"movie/video.cmfv", 2).base());
        assert_ne!(a.base(), IvDeriver::derive(&kid, b"movie/audio.cmfa", 1).base());
        assert_ne!(a.base(), IvDeriver::derive(&[0xac; 16], b"movie/video.cmfv", 1).base());
        // Length-prefixed context: moving bytes between context and nothing else changes it.
        assert_ne!(IvDeriver::derive(&kid, b"a", 1), IvDeriver::derive(&kid, b"a\0", 1));
        assert_ne!(constant_iv(&kid, b"x", 1)[..8], a.iv(0));
        let f = IvDeriver::from_base(u64::MAX);
        assert_eq!(f.iv(1), [0; 8]);
        assert_eq!(f.counter_block(2)[..], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
