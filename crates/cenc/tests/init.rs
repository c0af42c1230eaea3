//! `protect_init` on the fixtures' init segments: only the sample entry type changes and a
//! `sinf` (and optional `pssh`) is added; every other byte is kept.

use std::path::Path;

use sealcast_cenc::boxes::types::{ENCA, ENCV, SINF};
use sealcast_cenc::boxes::{Pssh, Sinf};
use sealcast_cenc::init::{protect_init, InitProtection};
use sealcast_cenc::{ContentKey, Error, IvDeriver, KeyKind, Kid, SampleFormat, Scheme, TrackProtection};
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::tree::{RawBox, STSD_PATH};
use sealcast_isobmff::{Atom, FourCC};

const KEY: ContentKey = ContentKey::aes128(
    Kid([0xab, 0xba, 0x27, 0x1e, 0x8b, 0xcf, 0x55, 0x2b, 0xbd, 0x2e, 0x86, 0xa4, 0x34, 0xa9, 0xa5, 0xd9]),
    KeyKind::CommonEncryption,
    [0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83, 0x92],
);
const IV: [u8; 16] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

/// `ftyp` + `moov` of a fixture.
fn init_of(rel: &str) -> Vec<u8> {
    let src = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)).unwrap();
    let mut out = Vec::new();
    for b in RawBox::parse_all(&src).unwrap() {
        if b.typ == FTYP || b.typ == MOOV {
            b.encode(&mut out);
        }
    }
    out
}

/// Undoes what protect_init did, from its output alone: must give the input back.
fn unprotect(out: &[u8]) -> (Vec<u8>, Sinf) {
    let mut boxes = RawBox::parse_all(out).unwrap();
    let moov = boxes.iter_mut().find(|b| b.typ == MOOV).unwrap();
    moov.children.as_mut().unwrap().retain(|c| c.typ != FourCC::new(b"pssh"));
    let trak = moov.child_mut(TRAK).unwrap();
    let stsd = trak.path_mut(&STSD_PATH).unwrap();
    let entry = &mut stsd.children.as_mut().unwrap()[0];
    assert!(entry.typ == ENCV || entry.typ == ENCA);
    let children = entry.children.as_mut().unwrap();
    let sinf = children.pop().unwrap();
    assert_eq!(sinf.typ, SINF);
    let mut v = Vec::new();
    sinf.encode(&mut v);
    let sinf = Sinf::decode(&v).unwrap();
    entry.typ = sinf.frma.data_format;
    let mut back = Vec::new();
    for b in &boxes {
        b.encode(&mut back);
    }
    (back, sinf)
}

#[test]
fn only_the_entry_type_and_sinf_change() {
    for (rel, format, original) in [
        ("demo/video_180p.cmfv", SampleFormat::Avc { nal_length_size: 4 }, AVC1),
        ("demo/audio_en.cmfa", SampleFormat::Whole, MP4A),
        ("hevc/video.mp4", SampleFormat::Hevc { nal_length_size: 4 }, HVC1),
    ] {
        let init = init_of(rel);
        for p in [TrackProtection::cenc(&KEY, format, IvDeriver::from_base(1)).unwrap(), TrackProtection::cbcs(&KEY, format, IV).unwrap()] {
            let ip = p.init_protection(None, vec![Pssh::common(vec![KEY.kid()])]);
            let out = protect_init(&init, &ip).unwrap();
            let (back, sinf) = unprotect(&out);
            assert_eq!(back, init, "{rel}: bytes other than the entry type and sinf changed");
            assert_eq!(sinf, p.sinf(original));
            assert_eq!(out.len(), init.len() + p.sinf(original).to_vec().len() + Pssh::common(vec![KEY.kid()]).to_vec().len());
            // Protecting twice is refused.
            assert!(matches!(protect_init(&out, &ip), Err(Error::Init(_))));
        }
    }
}

#[test]
fn our_sinf_is_shaka_packagers() {
    // The sinf Shaka Packager 3.8 writes for cbcs H.264 with the ORACLES.md test values
    // (`--protection_scheme cbcs --iv 0123456789abcdef0123456789abcdef`).
    let shaka = "00000061 73696e66 0000000c 66726d61 61766331 00000014 7363686d 00000000 63626373 00010000
                 00000039 73636869 00000031 74656e63 01000000 00190100 abba271e8bcf552bbd2e86a434a9a5d9
                 10 0123456789abcdef0123456789abcdef";
    let shaka: Vec<u8> = shaka.split_whitespace().collect::<String>().as_bytes().chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap()).collect();
    let p = TrackProtection::cbcs(&KEY, SampleFormat::Avc { nal_length_size: 4 }, IV).unwrap();
    assert_eq!(p.sinf(AVC1).to_vec(), shaka);
}

#[test]
fn track_selection() {
    let init = init_of("demo/video_180p.cmfv");
    let p = TrackProtection::cenc(&KEY, SampleFormat::Avc { nal_length_size: 4 }, IvDeriver::from_base(1)).unwrap();
    assert!(protect_init(&init, &p.init_protection(Some(1), vec![])).is_ok());
    assert!(matches!(protect_init(&init, &p.init_protection(Some(2), vec![])), Err(Error::Init(_))));
    let ip = InitProtection { track_id: None, scheme: Scheme::Cenc, tenc: p.tenc(), pssh: vec![], clear_entry: false };
    assert!(protect_init(b"not an mp4", &ip).is_err());
}
