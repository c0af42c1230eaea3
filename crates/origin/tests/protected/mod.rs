//! The protected outputs the goldens pin: the storage root of copies of the fixtures and
//! every URL with its golden file (shared by the golden test and the catalog database test,
//! which serves the same catalog from the database and must answer the same bytes).

#![allow(dead_code)]

use std::path::PathBuf;

use sealcast_testkit::fixtures_dir;

/// Assets of the golden root: (asset name, fixture folder it is a copy of).
pub const ASSETS: [(&str, &str); 5] = [("demo", "demo"), ("demo_aes", "demo"), ("demo_lead", "demo"), ("hevc", "hevc"), ("multi", "multi")];

/// Every URL pinned, with the golden file its body goes to (`None`: status and headers only:
/// refusals, whose JSON bodies are not part of the contract, and protocols a policy does not
/// name, whose status the index pins).
pub const URLS: &[(&str, Option<&str>)] = &[
    // demo: DASH cenc, HLS cbcs (fMP4 and SAMPLE-AES TS), Smooth PIFF.
    ("/demo/manifest.mpd", Some("demo.mpd")),
    ("/demo/master.m3u8", Some("demo_master.m3u8")),
    ("/demo/master-ts.m3u8", Some("demo_master-ts.m3u8")),
    ("/demo/Manifest", Some("demo.ismc")),
    ("/demo/video_180p/cenc/init.mp4", Some("demo_video_180p_cenc_init.mp4")),
    ("/demo/video_180p/cenc/1.m4s", Some("demo_video_180p_cenc_1.m4s")),
    ("/demo/video_360p/cenc/init.mp4", Some("demo_video_360p_cenc_init.mp4")),
    ("/demo/video_360p/cenc/2.m4s", Some("demo_video_360p_cenc_2.m4s")),
    ("/demo/audio_en/cenc/init.mp4", Some("demo_audio_en_cenc_init.mp4")),
    ("/demo/audio_en/cenc/1.m4s", Some("demo_audio_en_cenc_1.m4s")),
    ("/demo/video_180p/cbcs/index.m3u8", Some("demo_video_180p_cbcs.m3u8")),
    ("/demo/video_180p/cbcs/init.mp4", Some("demo_video_180p_cbcs_init.mp4")),
    ("/demo/video_180p/cbcs/1.m4s", Some("demo_video_180p_cbcs_1.m4s")),
    ("/demo/audio_fr/cbcs/init.mp4", Some("demo_audio_fr_cbcs_init.mp4")),
    ("/demo/audio_fr/cbcs/1.m4s", Some("demo_audio_fr_cbcs_1.m4s")),
    ("/demo/video_180p/cbcs/ts.m3u8", Some("demo_video_180p_cbcs-ts.m3u8")),
    ("/demo/video_180p/cbcs/1.ts", Some("demo_video_180p_sample-aes_1.ts")),
    ("/demo/audio_fr/cbcs/ts.m3u8", Some("demo_audio_fr_cbcs-ts.m3u8")),
    ("/demo/audio_fr/cbcs/2.ts", Some("demo_audio_fr_sample-aes_2.ts")),
    ("/demo/video_180p/cbcs/iframes.m3u8", Some("demo_video_180p_cbcs_iframes.m3u8")),
    ("/demo/video_180p/cbcs/iframes-ts.m3u8", Some("demo_video_180p_cbcs_iframes-ts.m3u8")),
    ("/demo/audio_fr/cbcs/iframes.m3u8", None),
    ("/demo/QualityLevels(125684)/Fragments(video=0)", Some("demo_video_piff_0.piff")),
    ("/demo/QualityLevels(66915)/Fragments(audio_eng=3840)", Some("demo_audio_eng_piff_3840.piff")),
    // The same asset under Azure Media Services forms.
    ("/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cenc)", Some("demo.mpd")),
    ("/loc1/demo.ism/manifest(format=m3u8-cmaf,encryption=cbcs-aapl)", Some("demo_master.m3u8")),
    ("/loc1/demo.ism/manifest(format=m3u8-aapl)", Some("demo_master-ts.m3u8")),
    ("/loc1/demo.ism/manifest", Some("demo.ismc")),
    ("/loc1/demo.ism/manifest(encryption=cenc)", Some("demo.ismc")),
    // Refusals: clear routes of encrypted protocols, schemes the policy does not use.
    ("/demo/video_180p/1.m4s", None),
    ("/demo/video_180p/init.mp4", None),
    ("/demo/video_180p/index.m3u8", None),
    ("/demo/video_180p/1.ts", None),
    ("/demo/video_180p/aes/1.ts", None),
    ("/demo/video_180p/cenc/1.ts", None),
    ("/demo/video_180p/cenc/ts.m3u8", None),
    ("/demo/video_180p/cenc/99.m4s", None),
    ("/loc1/demo.ism/manifest(format=mpd-time-csf,encryption=cbcs-aapl)", None),
    ("/loc1/demo.ism/manifest(format=m3u8-aapl,encryption=cbc)", None),
    ("/loc1/demo.ism/QualityLevels(1)/Fragments(video=0,encryption=cenc)", None),
    // demo_aes: HLS AES-128 over TS and fMP4; playlists that carry the viewer's token.
    ("/demo_aes/master.m3u8", Some("demo_aes_master.m3u8")),
    ("/demo_aes/master-ts.m3u8", Some("demo_aes_master-ts.m3u8")),
    ("/demo_aes/master.m3u8?token=viewer-token", Some("demo_aes_master_token.m3u8")),
    ("/demo_aes/video_180p/aes/index.m3u8", Some("demo_aes_video_180p_aes.m3u8")),
    ("/demo_aes/video_180p/aes/index.m3u8?token=viewer-token", Some("demo_aes_video_180p_aes_token.m3u8")),
    ("/demo_aes/video_180p/aes/ts.m3u8", Some("demo_aes_video_180p_aes-ts.m3u8")),
    ("/demo_aes/video_180p/aes/init.mp4", Some("demo_aes_video_180p_aes_init.mp4")),
    ("/demo_aes/video_180p/aes/1.m4s", Some("demo_aes_video_180p_aes_1.m4s.aes")),
    ("/demo_aes/video_180p/aes/1.ts", Some("demo_aes_video_180p_aes_1.ts.aes")),
    ("/demo_aes/audio_fr/aes/ts.m3u8", Some("demo_aes_audio_fr_aes-ts.m3u8")),
    ("/demo_aes/video_180p/aes/iframes-ts.m3u8", Some("demo_aes_video_180p_aes_iframes-ts.m3u8")),
    ("/demo_aes/video_180p/aes/i1.ts", None),
    ("/demo_aes/video_180p/i1.ts", None),
    ("/demo_aes/audio_fr/aes/3.ts", Some("demo_aes_audio_fr_aes_3.ts.aes")),
    ("/demo_aes/manifest.mpd", None),
    ("/demo_aes/Manifest", None),
    ("/demo_aes/video_180p/1.ts", None),
    ("/demo_aes/video_180p/cbcs/1.m4s", None),
    // demo_lead: cenc with a 3 s clear lead (clear fragments point at a clear sample entry).
    ("/demo_lead/manifest.mpd", Some("demo_lead.mpd")),
    ("/demo_lead/video_180p/cenc/init.mp4", Some("demo_lead_video_180p_cenc_init.mp4")),
    ("/demo_lead/video_180p/cenc/1.m4s", Some("demo_lead_video_180p_cenc_1.m4s")),
    ("/demo_lead/video_180p/cenc/3.m4s", Some("demo_lead_video_180p_cenc_3.m4s")),
    // hevc: cenc DASH, cbcs HLS fMP4 (no SAMPLE-AES for HEVC), PIFF Smooth.
    ("/hevc/manifest.mpd", Some("hevc.mpd")),
    ("/hevc/master.m3u8", Some("hevc_master.m3u8")),
    ("/hevc/Manifest", Some("hevc.ismc")),
    ("/hevc/video/cenc/init.mp4", Some("hevc_video_cenc_init.mp4")),
    ("/hevc/video/cenc/1.m4s", Some("hevc_video_cenc_1.m4s")),
    ("/hevc/video/cbcs/index.m3u8", Some("hevc_video_cbcs.m3u8")),
    ("/hevc/video/cbcs/init.mp4", Some("hevc_video_cbcs_init.mp4")),
    ("/hevc/video/cbcs/2.m4s", Some("hevc_video_cbcs_2.m4s")),
    // SAMPLE-AES TS without the HEVC video (fMP4 only); its TS resources do not exist.
    ("/hevc/master-ts.m3u8", Some("hevc_master-ts.m3u8")),
    ("/hevc/video/cbcs/ts.m3u8", None),
    ("/hevc/video/cbcs/1.ts", None),
    // multi: one file with several tracks; cbcs DASH and HLS, PIFF Smooth.
    ("/multi/manifest.mpd", Some("multi.mpd")),
    ("/multi/master.m3u8", Some("multi_master.m3u8")),
    ("/multi/Manifest", Some("multi.ismc")),
    ("/multi/movie_1/cbcs/init.mp4", Some("multi_video_cbcs_init.mp4")),
    ("/multi/movie_1/cbcs/1.m4s", Some("multi_video_cbcs_1.m4s")),
    ("/multi/movie_1/cbcs/1.ts", Some("multi_video_sample-aes_1.ts")),
];

/// A storage root holding byte copies of the fixtures under the golden asset names.
pub fn golden_root(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("sealcast-golden-protected-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (name, from) in ASSETS {
        let dst = root.join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(fixtures_dir().join(from)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    root
}

