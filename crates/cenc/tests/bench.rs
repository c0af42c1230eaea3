//! Throughput of sample encryption against raw AES-CTR, run by hand:
//!
//! ```text
//! cargo test --release -p sealcast-cenc --test bench -- --ignored --nocapture
//! ```
//!
//! Prints GB/s (of sample bytes) for: raw aws-lc AES-128-CTR and RustCrypto `ctr` over
//! one buffer; `cenc` and `cbcs` over synthetic H.264 fragments (subsample maps included);
//! `cbcs` with a fragment's chains encrypted together against one chain after another;
//! small AAC-sized samples, where per-sample overhead shows; and HLS AES-128 segments under
//! different keys one after another against several at once (`multibuf`).

use std::time::Instant;

use ctr::cipher::{KeyIvInit, StreamCipher};
use sealcast_cenc::aes::{AesCbc, AesCtr};
use sealcast_cenc::multibuf::{encrypt_many, Message, MultiKey};
use sealcast_cenc::{ContentKey, IvDeriver, KeyKind, Kid, SampleFormat, SampleRange, TrackProtection};

const KEY_BYTES: [u8; 16] = [2; 16];
const KEY: ContentKey = ContentKey::aes128(Kid([1; 16]), KeyKind::CommonEncryption, KEY_BYTES);

/// Best GB/s of `f` over `bytes` bytes, a few rounds of at least ~0.2 s each.
fn measure(bytes: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let mut n = 0usize;
        while t.elapsed().as_secs_f64() < 0.2 {
            f();
            n += 1;
        }
        best = best.max((bytes * n) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// A fragment of `count` H.264 samples: AUD, SEI and one slice of `slice` bytes each.
fn video_fragment(count: usize, slice: usize) -> (Vec<u8>, Vec<SampleRange>) {
    let mut buf = Vec::new();
    let mut ranges = Vec::new();
    for i in 0..count {
        let start = buf.len();
        for (hdr, len) in [(0x09u8, 2usize), (0x06, 30), (if i == 0 { 0x65 } else { 0x41 }, slice)] {
            buf.extend_from_slice(&(len as u32).to_be_bytes());
            buf.push(hdr);
            buf.extend((1..len).map(|j| (j * 13 + i) as u8));
        }
        ranges.push(SampleRange { offset: start, len: buf.len() - start, iv_index: i as u64 * 3000 });
    }
    (buf, ranges)
}

#[test]
#[ignore]
fn throughput() {
    let mut buf = vec![0x5au8; 8 << 20];
    let len = buf.len();
    let ctr_key = AesCtr::new(&KEY_BYTES).unwrap();
    let raw = measure(len, || ctr_key.apply([7; 16], &mut buf).unwrap());
    println!("raw AES-128-CTR aws-lc,    8 MiB buffer:  {raw:6.2} GB/s");
    let rc = measure(len, || ctr::Ctr64BE::<aes::Aes128>::new(&KEY_BYTES.into(), &[7u8; 16].into()).apply_keystream(&mut buf));
    println!("raw AES-128-CTR RustCrypto, 8 MiB buffer: {rc:6.2} GB/s");
    let cbc_key = AesCbc::new(&KEY_BYTES).unwrap();
    let cbc = measure(len, || cbc_key.encrypt([7; 16], &mut buf).unwrap());
    println!("raw AES-128-CBC aws-lc,    8 MiB buffer:  {cbc:6.2} GB/s");

    let avc = SampleFormat::Avc { nal_length_size: 4 };
    for (label, slice) in [("2 Mbit/s-ish, 8 KiB slices", 8 << 10), ("8 Mbit/s-ish, 32 KiB slices", 32 << 10)] {
        let (mut frag, ranges) = video_fragment(60, slice);
        let n = frag.len();
        for (name, p) in [
            ("cenc", TrackProtection::cenc(&KEY, avc, IvDeriver::from_base(9)).unwrap()),
            ("cbcs", TrackProtection::cbcs(&KEY, avc, [3; 16]).unwrap()),
        ] {
            let mut enc = p.encryptor();
            let g = measure(n, || {
                enc.encrypt_samples(&mut frag, &ranges).unwrap();
            });
            println!("{name} video, 60 samples, {label}: {g:6.2} GB/s of sample bytes ({:.2}x raw CTR)", g / raw);
        }
    }

    // cbcs 1:9 over one fragment's chains: all at once (what the encryptor does) against one
    // chain after another, a CBC call per crypt run (aws-lc, its serial speed above).
    for (label, slice) in [("8 KiB slices", 8 << 10), ("32 KiB slices", 32 << 10)] {
        let (mut frag, ranges) = video_fragment(60, slice);
        let n = frag.len();
        let p = TrackProtection::cbcs(&KEY, avc, [3; 16]).unwrap();
        let mut enc = p.encryptor();
        let lanes = measure(n, || {
            enc.encrypt_samples(&mut frag, &ranges).unwrap();
        });
        // The slice NAL's protected range of each sample, as the subsample map has it.
        let senc = p.encryptor().encrypt_samples(&mut frag.clone(), &ranges).unwrap();
        let chains: Vec<(usize, usize)> = ranges
            .iter()
            .zip(&senc.samples)
            .flat_map(|(r, s)| {
                let mut at = r.offset;
                s.subsamples.iter().map(move |x| {
                    at += x.clear as usize;
                    let c = (at, x.protected as usize);
                    at += x.protected as usize;
                    c
                })
            })
            .collect();
        let serial = measure(n, || {
            for &(at, len) in &chains {
                let mut chain = [3u8; 16];
                let blocks = len / 16;
                let mut b = 0;
                while b < blocks {
                    let run = &mut frag[at + b * 16..at + (b + 1) * 16];
                    cbc_key.encrypt(chain, run).unwrap();
                    chain.copy_from_slice(run);
                    b += 10;
                }
            }
        });
        println!("cbcs 1:9, 60 samples, {label}: chains together {lanes:6.2} GB/s, one after another (a call per crypt block) {serial:6.2} GB/s");
    }

    // AAC-sized samples: 470 samples of ~370 bytes (128 kbit/s at 48 kHz).
    let mut audio = vec![0x11u8; 470 * 371];
    let ranges: Vec<_> = (0..470).map(|i| SampleRange { offset: i * 371, len: 371, iv_index: i as u64 * 1024 }).collect();
    for (name, p) in [
        ("cenc", TrackProtection::cenc(&KEY, SampleFormat::Whole, IvDeriver::from_base(9)).unwrap()),
        ("cbcs", TrackProtection::cbcs(&KEY, SampleFormat::Whole, [3; 16]).unwrap()),
    ] {
        let mut enc = p.encryptor();
        let g = measure(audio.len(), || {
            enc.encrypt_samples(&mut audio, &ranges).unwrap();
        });
        println!("{name} audio, 371-byte samples: {g:6.2} GB/s ({:.0} ns/sample)", 371.0 / g);
    }

    // HLS AES-128: 1 MiB segments (a 4 s, 2 Mbit/s TS segment), each under its own key, one
    // after another (aws-lc) against 1, 2, 4, 8 and 16 at once (multibuf).
    let seg = 1 << 20;
    let keys: Vec<MultiKey> = (0..16u8).map(|i| MultiKey::new(&[i; 16]).unwrap()).collect();
    let mut segs: Vec<Vec<u8>> = (0..16).map(|i| vec![i as u8; seg]).collect();
    let one_by_one = measure(16 * seg, || {
        for (k, s) in keys.iter().zip(segs.iter_mut()) {
            k.cbc().encrypt([7; 16], s).unwrap();
        }
    });
    println!("HLS AES-128, 16 segments of 1 MiB under 16 keys, one after another: {one_by_one:6.2} GB/s");
    for together in [1usize, 2, 4, 8, 16] {
        let g = measure(16 * seg, || {
            for (ks, ss) in keys.chunks(together).zip(segs.chunks_mut(together)) {
                let mut msgs: Vec<Message<'_>> = ks.iter().zip(ss.iter_mut()).map(|(key, s)| Message { key, iv: [7; 16], data: s }).collect();
                encrypt_many(&mut msgs).unwrap();
            }
        });
        println!("HLS AES-128, the same, {together:2} at a time (multibuf): {g:6.2} GB/s ({:.2}x one after another)", g / one_by_one);
    }
}
