//! Every decoder and parser of this crate on arbitrary bytes: errors, never panics.

use proptest::prelude::*;
use sealcast_cenc::boxes::{Frma, Pssh, Saio, Saiz, Schm, Senc, Sinf, Tenc};
use sealcast_cenc::init::protect_init;
use sealcast_cenc::subsample::{nal_subsamples, SliceRule};
use sealcast_cenc::{ContentKey, IvDeriver, KeyKind, Kid, SampleFormat, SampleRange, TrackProtection};
use sealcast_isobmff::Atom;

fn boxed(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn box_decoders(version in 0u8..3, flags in prop::sample::select(vec![0u32, 1, 2, 3, 0xff_ffff]), lens in prop::collection::vec(any::<u8>(), 4),
                    rest in prop::collection::vec(any::<u8>(), 0..120), iv in prop::sample::select(vec![0u8, 8, 16])) {
        // version + flags, then bytes that often look like small counts and sizes.
        let mut body = (((version as u32) << 24) | flags).to_be_bytes().to_vec();
        body.extend(lens.iter().map(|b| b % 4));
        body.extend(rest);
        let _ = Tenc::decode(&boxed(b"tenc", &body));
        let _ = Schm::decode(&boxed(b"schm", &body));
        let _ = Frma::decode(&boxed(b"frma", &body));
        let _ = Sinf::decode(&boxed(b"sinf", &body));
        let _ = Senc::decode(&boxed(b"senc", &body));
        let _ = Senc::decode_with_iv_size(&boxed(b"senc", &body), iv);
        let _ = Saiz::decode(&boxed(b"saiz", &body));
        let _ = Saio::decode(&boxed(b"saio", &body));
        let _ = Pssh::decode(&boxed(b"pssh", &body));
        // Whatever decodes must encode back to the same bytes.
        if let Ok(p) = Pssh::decode(&boxed(b"pssh", &body)) {
            prop_assert_eq!(p.to_vec(), boxed(b"pssh", &body));
        }
        if let Ok(s) = Saiz::decode(&boxed(b"saiz", &body)) {
            prop_assert_eq!(s.to_vec(), boxed(b"saiz", &body));
        }
        if let Ok(s) = Saio::decode(&boxed(b"saio", &body)) {
            prop_assert_eq!(s.to_vec(), boxed(b"saio", &body));
        }
        if let Ok(s) = Schm::decode(&boxed(b"schm", &body)) {
            prop_assert_eq!(s.to_vec(), boxed(b"schm", &body));
        }
        if let Ok(s) = Senc::decode_with_iv_size(&boxed(b"senc", &body), iv) {
            prop_assert_eq!(s.to_vec(), boxed(b"senc", &body));
        }
        if let Ok(t) = Tenc::decode(&boxed(b"tenc", &body)) {
            prop_assert_eq!(t.to_vec(), boxed(b"tenc", &body));
        }
    }

    #[test]
    fn samples(data in prop::collection::vec(any::<u8>(), 0..400), nls in prop::sample::select(vec![1u8, 2, 4]), hevc in any::<bool>()) {
        let f = if hevc { SampleFormat::Hevc { nal_length_size: nls } } else { SampleFormat::Avc { nal_length_size: nls } };
        let mut out = Vec::new();
        let _ = nal_subsamples(f, SliceRule { clear_prefix: 0, align: true }, &data, 0, &mut out);
        // Two samples, the second possibly malformed: on error neither is touched.
        let mut two = vec![0u8, 0, 0, 5, 0x65, 1, 2, 3, 4];
        two.extend_from_slice(&data);
        let k = ContentKey::aes128(Kid([1; 16]), KeyKind::CommonEncryption, [2; 16]);
        for p in [TrackProtection::cenc(&k, f, IvDeriver::from_base(0)).unwrap(), TrackProtection::cbcs(&k, f, [0; 16]).unwrap().with_clear_prefix(0)] {
            let mut d = data.clone();
            let r = [SampleRange { offset: 0, len: d.len(), iv_index: 0 }];
            if p.encryptor().encrypt_samples(&mut d, &r).is_err() {
                // A sample we cannot map is left untouched.
                prop_assert_eq!(&d, &data);
            }
            if nls == 4 {
                let mut t = two.clone();
                let r = [SampleRange { offset: 0, len: 9, iv_index: 0 }, SampleRange { offset: 9, len: data.len(), iv_index: 1 }];
                if p.encryptor().encrypt_samples(&mut t, &r).is_err() {
                    prop_assert_eq!(&t, &two);
                }
            }
        }
    }

    #[test]
    fn init_segments(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let k = ContentKey::aes128(Kid([1; 16]), KeyKind::CommonEncryption, [2; 16]);
        let p = TrackProtection::cbcs(&k, SampleFormat::Whole, [0; 16]).unwrap();
        let _ = protect_init(&data, &p.init_protection(None, vec![]));
        let _ = protect_init(&boxed(b"moov", &data), &p.init_protection(Some(1), vec![]));
    }
}
