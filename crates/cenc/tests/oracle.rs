//! Our encryption, checked against an independent decryptor written here with RustCrypto's
//! `aes`/`ctr`/`cbc` (random data, random subsample maps, random NAL samples).

use aes::cipher::{BlockDecrypt, KeyInit};
use ctr::cipher::{KeyIvInit, StreamCipher};
use proptest::prelude::*;
use sealcast_cenc::boxes::{Senc, SencSample};
use sealcast_cenc::{ContentKey, IvDeriver, KeyKind, Kid, Pattern, SampleFormat, SampleRange, Subsample, TrackProtection};

const KEY_BYTES: [u8; 16] = [0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83, 0x92];
const KEY: ContentKey = ContentKey::aes128(Kid([0xab; 16]), KeyKind::CommonEncryption, KEY_BYTES);
const CONST_IV: [u8; 16] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

/// ISO/IEC 23001-7 `cenc` decryption of one sample, as a player does it.
fn decrypt_cenc(iv_size: u8, s: &SencSample, subsamples: bool, data: &mut [u8]) {
    let mut counter = [0u8; 16];
    counter[..iv_size as usize].copy_from_slice(&s.iv[..iv_size as usize]);
    let mut c = ctr::Ctr64BE::<aes::Aes128>::new(&KEY_BYTES.into(), &counter.into());
    if !subsamples {
        c.apply_keystream(data);
        return;
    }
    let mut at = 0;
    for x in &s.subsamples {
        at += x.clear as usize;
        c.apply_keystream(&mut data[at..at + x.protected as usize]);
        at += x.protected as usize;
    }
    assert_eq!(at, data.len(), "subsamples cover the sample");
}

/// `cbcs` decryption of one protected range, block by block: block `i` is encrypted when
/// `i mod (crypt + skip) < crypt` (every whole block for 0:0); one CBC chain per range.
fn decrypt_cbcs_range(p: Pattern, data: &mut [u8]) {
    let aes = aes::Aes128::new(&KEY_BYTES.into());
    let period = (p.crypt + p.skip) as usize;
    let mut chain = CONST_IV;
    for (i, b) in data.chunks_exact_mut(16).enumerate() {
        if p.skip == 0 || i % period < p.crypt as usize {
            let c: [u8; 16] = b.try_into().unwrap();
            let mut blk = c.into();
            aes.decrypt_block(&mut blk);
            for (o, (x, y)) in b.iter_mut().zip(blk.iter().zip(chain)) {
                *o = x ^ y;
            }
            chain = c;
        }
    }
}

fn decrypt_cbcs(p: Pattern, s: &SencSample, subsamples: bool, data: &mut [u8]) {
    if !subsamples {
        return decrypt_cbcs_range(Pattern::FULL, data);
    }
    let mut at = 0;
    for x in &s.subsamples {
        at += x.clear as usize;
        decrypt_cbcs_range(p, &mut data[at..at + x.protected as usize]);
        at += x.protected as usize;
    }
    assert_eq!(at, data.len());
}

fn protections(format: SampleFormat) -> Vec<(TrackProtection, &'static str)> {
    let ivs = IvDeriver::derive(KEY.kid().as_bytes(), b"oracle", 1);
    vec![
        (TrackProtection::cenc(&KEY, format, ivs).unwrap(), "cenc8"),
        (TrackProtection::cenc_with_iv_size(&KEY, format, ivs, 16).unwrap(), "cenc16"),
        (TrackProtection::cbcs(&KEY, format, CONST_IV).unwrap(), "cbcs"),
    ]
}

fn decrypt(p: &TrackProtection, senc: &Senc, i: usize, data: &mut [u8]) {
    let s = &senc.samples[i];
    match p.scheme() {
        sealcast_cenc::Scheme::Cenc => decrypt_cenc(senc.iv_size, s, senc.has_subsamples(), data),
        _ => {
            let t = p.tenc();
            decrypt_cbcs(Pattern { crypt: t.crypt_byte_block, skip: t.skip_byte_block }, s, senc.has_subsamples(), data)
        }
    }
}

/// (start, end, is_slice) of each NAL unit of a well-formed sample.
fn nal_units(s: &[u8], nls: usize, hevc: bool) -> Vec<(usize, usize, bool)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < s.len() {
        let len = s[at..at + nls].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        let b0 = s.get(at + nls).copied().unwrap_or(0);
        let slice = len > 0 && if hevc { (b0 >> 1) < 32 } else { matches!(b0 & 0x1f, 1..=5) };
        out.push((at, at + nls + len, slice));
        at += nls + len;
    }
    out
}

/// A random partition into (clear, protected) pairs, and random bytes to fill it.
fn map_and_data() -> impl Strategy<Value = (Vec<Subsample>, Vec<u8>)> {
    prop::collection::vec((0u16..400, 0u32..700), 1..12).prop_flat_map(|pairs| {
        let subs: Vec<Subsample> = pairs.into_iter().map(|(clear, protected)| Subsample { clear, protected }).collect();
        let len: usize = subs.iter().map(|s| s.clear as usize + s.protected as usize).sum();
        (Just(subs), prop::collection::vec(any::<u8>(), len))
    })
}

/// A random length-prefixed sample: (NAL header byte(s), body length) pairs.
fn nal_sample(hevc: bool, nls: usize) -> impl Strategy<Value = Vec<u8>> {
    let types: Vec<u8> = if hevc { vec![0, 1, 19, 21, 32, 33, 34, 35, 39] } else { vec![1, 5, 6, 7, 8, 9, 12] };
    let max = if nls == 1 { 250usize } else { 3000 };
    prop::collection::vec((prop::sample::select(types), 0usize..max, any::<u8>()), 0..6).prop_map(move |nals| {
        let mut v = Vec::new();
        for (t, body, fill) in nals {
            let hdr: Vec<u8> = if hevc { vec![t << 1, 1] } else { vec![0x60 | t] };
            let len = hdr.len() + body;
            v.extend_from_slice(&len.to_be_bytes()[8 - nls..]);
            v.extend_from_slice(&hdr);
            v.extend((0..body).map(|i| fill.wrapping_add(i as u8)));
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_subsample_map_decrypts((subs, data) in map_and_data(), index in any::<u64>()) {
        for (p, name) in protections(SampleFormat::Avc { nal_length_size: 4 }) {
            let mut enc = data.clone();
            let s = p.encryptor().encrypt_sample_with_map(&mut enc, index, &subs, 0).unwrap();
            // Clear bytes untouched.
            let mut at = 0;
            for x in &subs {
                prop_assert_eq!(&enc[at..at + x.clear as usize], &data[at..at + x.clear as usize], "{}", name);
                at += x.clear as usize + x.protected as usize;
            }
            let mut senc = p.new_senc();
            senc.samples.push(s);
            decrypt(&p, &senc, 0, &mut enc);
            prop_assert_eq!(&enc, &data, "{}", name);
        }
    }

    #[test]
    fn nal_samples_decrypt((hevc, nls, samples) in (any::<bool>(), prop::sample::select(vec![1usize, 2, 4]))
                               .prop_flat_map(|(h, n)| (Just(h), Just(n), prop::collection::vec(nal_sample(h, n), 1..4))),
                           seed in any::<u64>()) {
        let format = if hevc { SampleFormat::Hevc { nal_length_size: nls as u8 } } else { SampleFormat::Avc { nal_length_size: nls as u8 } };
        let mut buf = Vec::new();
        let mut ranges = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            ranges.push(SampleRange { offset: buf.len(), len: s.len(), iv_index: seed.wrapping_add(i as u64 * 3000) });
            buf.extend_from_slice(s);
        }
        for (p, name) in protections(format) {
            let mut enc = buf.clone();
            let senc = p.encryptor().encrypt_samples(&mut enc, &ranges).unwrap();
            prop_assert_eq!(senc.samples.len(), ranges.len());
            for (i, r) in ranges.iter().enumerate() {
                let plain = &buf[r.offset..r.offset + r.len];
                let nals = nal_units(plain, nls, hevc);
                let mut at = 0usize;
                for x in &senc.samples[i].subsamples {
                    at += x.clear as usize;
                    if x.protected > 0 {
                        if p.scheme() == sealcast_cenc::Scheme::Cenc {
                            prop_assert_eq!(x.protected % 16, 0, "{}: cenc ranges are whole blocks", name);
                        }
                        // Inside one slice NAL unit, at least 96 bytes after its start.
                        let (start, end, slice) = nals.iter().copied().find(|&(s, e, _)| s <= at && at < e).unwrap();
                        prop_assert!(slice && at - start >= 96 && at + x.protected as usize <= end, "{}: range {}+{} in NAL {}..{}", name, at, x.protected, start, end);
                    }
                    at += x.protected as usize;
                }
                prop_assert_eq!(at, r.len);
                let mut d = enc[r.offset..r.offset + r.len].to_vec();
                decrypt(&p, &senc, i, &mut d);
                prop_assert_eq!(&d[..], plain, "{}", name);
            }
        }
    }

    #[test]
    fn audio_whole_sample(data in prop::collection::vec(any::<u8>(), 0..3000), index in any::<u64>()) {
        for (p, name) in protections(SampleFormat::Whole) {
            let mut enc = data.clone();
            let senc = p.encryptor().encrypt_samples(&mut enc, &[SampleRange { offset: 0, len: data.len(), iv_index: index }]).unwrap();
            prop_assert!(!senc.has_subsamples());
            if p.scheme() == sealcast_cenc::Scheme::Cbcs {
                // The trailing partial block stays clear; no per-sample aux info at all.
                let tail = data.len() / 16 * 16;
                prop_assert_eq!(&enc[tail..], &data[tail..]);
                prop_assert!(senc.is_aux_empty());
            }
            decrypt(&p, &senc, 0, &mut enc);
            prop_assert_eq!(&enc, &data, "{}", name);
        }
    }
}

#[test]
fn known_answer_cenc_audio() {
    // AES-128-CTR of zeros under the ORACLES.md key and IV (counter block
    // 0123456789abcdef || 0): the keystream itself.
    let p = TrackProtection::cenc(&KEY, SampleFormat::Whole, IvDeriver::from_base(0x0123_4567_89ab_cdef)).unwrap();
    let mut buf = [0u8; 20];
    let senc = p.encryptor().encrypt_samples(&mut buf, &[SampleRange { offset: 0, len: 20, iv_index: 0 }]).unwrap();
    assert_eq!(senc.samples[0].iv[..8], 0x0123_4567_89ab_cdefu64.to_be_bytes());
    let mut want = [0u8; 20];
    ctr::Ctr64BE::<aes::Aes128>::new(&KEY_BYTES.into(), &CONST_IV_CTR.into()).apply_keystream(&mut want);
    assert_eq!(buf, want);
}

const CONST_IV_CTR: [u8; 16] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0, 0];
