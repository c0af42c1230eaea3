//! Regression guard against IV reuse: under one key, no two samples — of one track, of two
//! tracks, of two contents — may share an AES-CTR counter block.

use std::collections::HashMap;

use sealcast_cenc::{ContentKey, IvDeriver, KeyKind, Kid, SampleFormat, SampleRange, TrackProtection};

const KEY: ContentKey = ContentKey::aes128(Kid([0xab; 16]), KeyKind::CommonEncryption, [0x69; 16]);

/// Spans are (IV = counter block high half, first low half, end low half, track, sample).
/// Every sample's counter blocks start at low half 0, so two samples overlap iff their high
/// halves are equal; a sample's own counter never wraps into another's (it would need 2^64
/// blocks). We still check it generally: sort by (hi, lo) and compare neighbours.
fn assert_disjoint(spans: &mut [(u64, u64, u64, &'static str, u64)]) {
    spans.sort_unstable();
    for w in spans.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(a.0 != b.0 || a.2 <= b.1, "counter blocks shared: {} sample {} and {} sample {} (IV {:016x})", a.3, a.4, b.3, b.4, a.0);
    }
}

#[test]
fn no_counter_block_shared_over_100k_samples_per_track() {
    const N: u64 = 100_000;
    // (content, track, decode-time step per sample): video at 90 kHz/30 fps, audio at
    // 48 kHz/1024, a second video track, and a second content with the same track ID.
    let tracks: [(&[u8], u32, u64, &'static str); 4] =
        [(b"movie/video.cmfv", 1, 3000, "video"), (b"movie/audio.cmfa", 2, 1024, "audio"), (b"movie/video_hd.cmfv", 3, 3000, "video_hd"), (b"other/video.cmfv", 1, 3000, "other")];
    let mut spans = Vec::with_capacity(4 * N as usize);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for (ctx, id, step, name) in tracks {
        let ivs = IvDeriver::derive(KEY.kid().as_bytes(), ctx, id);
        for i in 0..N {
            // Sample sizes up to 1 MiB (65536 blocks).
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let blocks = (rng % (1 << 20)).div_ceil(16);
            let hi = u64::from_be_bytes(ivs.iv(i * step));
            spans.push((hi, 0, blocks, name, i));
        }
    }
    assert_disjoint(&mut spans);
}

#[test]
fn the_encryptor_uses_the_derived_iv_of_each_sample() {
    // What senc carries must be exactly what the derivation promises, for both IV sizes.
    let ivs = IvDeriver::derive(KEY.kid().as_bytes(), b"movie/audio.cmfa", 2);
    for iv_size in [8u8, 16] {
        let p = TrackProtection::cenc_with_iv_size(&KEY, SampleFormat::Whole, ivs, iv_size).unwrap();
        let mut buf = vec![0u8; 64 * 100];
        let ranges: Vec<_> = (0..100).map(|i| SampleRange { offset: i * 64, len: 64, iv_index: 5_000_000 + i as u64 * 1024 }).collect();
        let senc = p.encryptor().encrypt_samples(&mut buf, &ranges).unwrap();
        let mut seen = HashMap::new();
        for (r, s) in ranges.iter().zip(&senc.samples) {
            assert_eq!(s.iv[..8], ivs.iv(r.iv_index));
            assert_eq!(s.iv[8..], [0u8; 8]);
            assert!(seen.insert(s.iv, r.iv_index).is_none());
        }
        // Equal plaintexts under distinct IVs give distinct ciphertexts (no keystream reuse).
        let mut chunks: Vec<&[u8]> = buf.chunks(64).collect();
        chunks.sort_unstable();
        chunks.dedup();
        assert_eq!(chunks.len(), 100);
    }
}
