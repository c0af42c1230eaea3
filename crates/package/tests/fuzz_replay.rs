//! Replays the fuzz seeds and every input that once crashed a fuzz target (`fuzz/seeds/`,
//! `fuzz/regressions/`) through the same entry points the targets call, under plain
//! `cargo test` on stable. See `fuzz/README.md`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sealcast_package::fuzzing::{fuzz_boxes, fuzz_cenc_boxes, fuzz_file, fuzz_ism, fuzz_protect};
use sealcast_package::index::index_bytes;
use sealcast_package::{Asset, PackageOptions};

use sealcast_testkit::{fuzz_inputs as inputs, replay_fuzz_inputs as replay};

fn fuzz_dir() -> PathBuf {
    sealcast_testkit::repo_root().join("fuzz")
}

#[test]
fn index_seeds_and_regressions_do_not_panic() {
    replay("index", fuzz_file);
}

#[test]
fn boxes_seeds_and_regressions_do_not_panic() {
    replay("boxes", fuzz_boxes);
}

#[test]
fn protect_seeds_and_regressions_do_not_panic() {
    replay("protect", fuzz_protect);
}

#[test]
fn cenc_boxes_seeds_and_regressions_do_not_panic() {
    replay("cenc_boxes", fuzz_cenc_boxes);
}

#[test]
fn ism_seeds_and_regressions_do_not_panic() {
    replay("ism", fuzz_ism);
}

/// Every `.ism` seed parses, so the target starts from documents that reach the round trip.
#[test]
fn ism_seeds_parse() {
    for p in inputs("seeds", "ism") {
        let tracks = sealcast_package::ism::parse(&std::fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!tracks.is_empty());
    }
}

proptest::proptest! {
    // SMIL-shaped text with hostile values (entities, quotes, markup characters, numbers
    // with signs): the stable stand-in for coverage-guided runs of the `ism` target.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
    #[test]
    fn random_smil(doc in "<smil><body>(<(video|audio) src=\"[a-z&;#0-9<>'. ]{0,8}\"( systemBitrate=\"[+0-9]{0,11}\")?( systemLanguage=\"[a-z&;'\"]{0,6}\")?>(<param name=\"(trackID|trackName|other)\" value=\"[a-z0-9&;#x]{0,8}\"/>){0,3}</(video|audio)>){0,3}</body></smil>") {
        fuzz_ism(doc.as_bytes());
    }
}

/// Writes `fuzz/seeds/cenc_boxes/`: from each `protect` seed, the protected init segment
/// (`cenc` with a `pssh`), and the protection boxes of its first encrypted CMAF segment
/// (`cenc` and `cbcs`) and Smooth fragment (PIFF), one box per file. Run by
/// `fuzz/make_seeds.sh`; deterministic (fixed keys and IVs).
#[test]
#[ignore = "writes seed files; run by fuzz/make_seeds.sh"]
fn write_cenc_boxes_seeds() {
    use sealcast_cenc::boxes::Pssh;
    use sealcast_cenc::init::protect_init;
    use sealcast_cenc::{iv, ContentKey, IvDeriver, KeyKind, Kid, TrackProtection};
    use sealcast_isobmff::tree::RawBox;
    use sealcast_package::protect::{sample_format, write_segment_encrypted};
    use sealcast_package::{fmp4, smooth};

    fn save(dir: &Path, name: &str, b: &RawBox<'_>, kinds: &mut std::collections::BTreeSet<String>) {
        let typ = b.typ.to_string();
        let piff = typ == "uuid" && b.body().starts_with(&sealcast_cenc::boxes::PIFF_SENC_UUID);
        let wanted = piff || ["senc", "saiz", "saio", "pssh", "tenc", "sinf", "schm", "frma"].contains(&typ.as_str());
        if wanted && kinds.insert(format!("{name}_{typ}")) {
            let mut out = Vec::new();
            b.encode(&mut out);
            std::fs::write(dir.join(format!("{name}_{typ}.bin")), out).unwrap();
        }
        for c in b.children.iter().flatten() {
            save(dir, name, c, kinds);
        }
    }

    let dir = fuzz_dir().join("seeds/cenc_boxes");
    std::fs::create_dir_all(&dir).unwrap();
    let key = ContentKey::aes128(Kid([0x5c; 16]), KeyKind::CommonEncryption, [0xa7; 16]);
    for p in inputs("seeds", "protect") {
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        let data = Bytes::from(std::fs::read(&p).unwrap());
        let index = index_bytes(&data, 4096).unwrap();
        let files = [sealcast_package::asset::SourceFile { name: "seed.mp4".into(), index: std::sync::Arc::new(index) }];
        let asset = Asset::build(&files, None, PackageOptions::default()).unwrap();
        for t in &asset.tracks {
            let info = &t.track().info;
            let name = format!("{stem}_{}", t.name);
            let mut kinds = std::collections::BTreeSet::new();
            let cenc = TrackProtection::cenc(&key, sample_format(info), IvDeriver::derive(key.kid().as_bytes(), b"fuzz", info.track_id)).unwrap();
            let cbcs = TrackProtection::cbcs(&key, sample_format(info), iv::constant_iv(key.kid().as_bytes(), b"fuzz", info.track_id)).unwrap();
            let init = protect_init(&t.track().init, &cenc.init_protection(None, vec![Pssh::common(vec![key.kid()])])).unwrap();
            std::fs::write(dir.join(format!("{name}_init.mp4")), &init).unwrap();
            for b in RawBox::parse_all(&init).unwrap() {
                save(&dir, &format!("{name}_init"), &b, &mut kinds);
            }
            let (s, e) = t.segment_range(0).unwrap();
            let range = data.slice(s as usize..e as usize);
            let frags = fmp4::read_segment(t, 0, &range, s).unwrap();
            let trex = info.trex.default_sample_description_index;
            for (label, prot) in [("cenc", &cenc), ("cbcs", &cbcs)] {
                let seg = write_segment_encrypted(&frags, range.clone(), s, prot, 0, trex).unwrap().concat();
                for b in RawBox::parse_all(&seg).unwrap() {
                    save(&dir, &format!("{name}_{label}"), &b, &mut kinds);
                }
            }
            let frag = smooth::write_fragment_encrypted(&frags, range.clone(), s, t, smooth::delay(&asset, t), &cenc).unwrap().concat();
            for b in RawBox::parse_all(&frag).unwrap() {
                save(&dir, &format!("{name}_piff"), &b, &mut kinds);
            }
        }
    }
}

/// The seeds are only worth having if some of them get past the index into the segment
/// writer; otherwise the fuzzer would start with no coverage of the later stages.
#[test]
fn some_index_seeds_reach_the_segment_writer() {
    let mut packaged = 0;
    for p in inputs("seeds", "index") {
        let data = Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())));
        let Ok(index) = index_bytes(&data, 4096) else { continue };
        let files = [sealcast_package::asset::SourceFile { name: "seed.mp4".into(), index: std::sync::Arc::new(index) }];
        let asset = Asset::build(&files, None, PackageOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if asset.tracks.iter().all(|t| t.segments.len() >= 2) {
            packaged += 1;
        }
    }
    assert!(packaged >= 3, "only {packaged} index seeds package into two or more segments per track");
}
