//! Subtitles over HTTP (issue 15, part 3): WebVTT and TTML side files of the `ladder` fixture
//! served as HLS subtitle renditions (segmented WebVTT lined up with the video) and DASH text
//! AdaptationSets; languages from the `.ism`, the file name or the document; hostile files
//! answered with errors while the asset's media keeps playing; the delivery policy deciding
//! per protocol, never encrypting text.

use std::sync::Arc;

use axum::body::Body;
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sealcast_origin::catalog::TomlCatalog;
use sealcast_origin::config::Config;
use sealcast_origin::server::{router, AppState};
use sealcast_storage::Store;
use tower::ServiceExt;

async fn get(st: &Arc<AppState>, uri: &str) -> (StatusCode, http::HeaderMap, String) {
    let r = router(st.clone()).oneshot(Request::builder().method(Method::GET).uri(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    (parts.status, parts.headers, String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned())
}

async fn ok(st: &Arc<AppState>, uri: &str) -> (http::HeaderMap, String) {
    let (s, h, b) = get(st, uri).await;
    assert_eq!(s, StatusCode::OK, "{uri}: {b}");
    (h, b)
}

fn fixtures() -> Arc<AppState> {
    let fx = sealcast_testkit::fixtures_dir();
    AppState::with_store(&Config { root: fx.clone(), ..Config::default() }, Store::local(&fx).unwrap())
}

fn temp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sealcast-subs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn extinfs(playlist: &str) -> Vec<&str> {
    playlist.lines().filter(|l| l.starts_with("#EXTINF:")).collect()
}

#[tokio::test]
async fn hls_subtitle_renditions_line_up_with_the_video() {
    let st = fixtures();
    let (_, master) = ok(&st, "/ladder/master.m3u8").await;
    assert!(master.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subs_en/text.m3u8\"\n"), "{master}");
    // The TTML file's language comes from its xml:lang.
    assert!(master.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"French\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subs/text.m3u8\"\n"), "{master}");
    let variants: Vec<&str> = master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF:")).collect();
    assert!(!variants.is_empty() && variants.iter().all(|v| v.contains(",SUBTITLES=\"subs\",")), "{master}");
    let (_, master_ts) = ok(&st, "/ladder/master-ts.m3u8").await;
    assert!(master_ts.contains("URI=\"subs_en/text-ts.m3u8\""), "{master_ts}");

    // One WebVTT segment per video segment, with the video's durations.
    let (h, text) = ok(&st, "/ladder/subs_en/text.m3u8").await;
    assert_eq!(h[header::CONTENT_TYPE], "application/vnd.apple.mpegurl");
    let (_, video) = ok(&st, "/ladder/video_360p/index.m3u8").await;
    assert_eq!(extinfs(&text), extinfs(&video));
    assert!(text.contains("\n1.vtt\n") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    let (_, text_ts) = ok(&st, "/ladder/subs_en/text-ts.m3u8").await;
    assert!(text_ts.contains("\nts1.vtt\n"), "{text_ts}");

    // Segment 1 [0, 2 s): c1 and c2; segment 2 [2, 4 s): c2 again (it crosses 2 s);
    // segment 3 [4, 6 s): c3, which starts on the boundary.
    let (h, s1) = ok(&st, "/ladder/subs_en/1.vtt").await;
    assert_eq!(h[header::CONTENT_TYPE], "text/vtt; charset=utf-8");
    assert!(s1.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\nSTYLE\n::cue(.hl) { color: yellow; }\n\n"), "{s1}");
    assert!(s1.contains("c1\n00:00:00.500 --> 00:00:01.500\n<c.hl>Hello</c>, ladder.\n\n"), "{s1}");
    assert!(s1.contains("c2\n00:00:01.800 --> 00:00:02.600 line:10% align:start\nCrosses the 2 s boundary\n<i>second line</i>\n\n"), "{s1}");
    let (_, s2) = ok(&st, "/ladder/subs_en/2.vtt").await;
    assert!(s2.contains("c2\n00:00:01.800") && !s2.contains("c1\n") && !s2.contains("c3\n"), "{s2}");
    let (_, s3) = ok(&st, "/ladder/subs_en/3.vtt").await;
    assert!(s3.contains("c3\n00:00:04.000 --> 00:00:05.250 position:30%,line-left size:40%\n") && !s3.contains("c2\n"), "{s3}");
    // The MPEG-TS timeline: cue time 0 is PTS 10 s, where our muxer puts presentation time 0.
    let (_, t1) = ok(&st, "/ladder/subs_en/ts1.vtt").await;
    assert!(t1.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n"), "{t1}");
    let n = extinfs(&text).len();
    assert_eq!(get(&st, &format!("/ladder/subs_en/{}.vtt", n + 1)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&st, "/ladder/nope/1.vtt").await.0, StatusCode::NOT_FOUND);

    // TTML converted: regions become positions, text escaped, frames counted at 25 fps.
    let (_, f1) = ok(&st, "/ladder/subs/1.vtt").await;
    assert!(f1.contains("00:00:00.600 --> 00:00:01.400 line:90%,end position:10%,line-left size:80%\nBonjour, échelle.\n"), "{f1}");
    assert!(f1.contains("00:00:01.900 --> 00:00:02.700 line:10% position:10%,line-left size:80% align:center\nTraverse la limite\nde 2 s\n"), "{f1}");
    let (_, whole) = ok(&st, "/ladder/subs/text.vtt").await;
    assert!(whole.starts_with("WEBVTT\n\n") && !whole.contains("X-TIMESTAMP-MAP"), "{whole}");
    assert!(whole.contains("00:00:04.000 --> 00:00:05.200") && whole.contains("00:00:07.500 --> 00:00:09.900 line:90%,end position:10%,line-left size:80%\nPresque la fin &amp; échappé\n"), "{whole}");
}

#[tokio::test]
async fn dash_text_adaptation_sets() {
    let st = fixtures();
    let (_, mpd) = ok(&st, "/ladder/manifest.mpd").await;
    assert!(mpd.contains("contentType=\"text\" lang=\"en\">\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n      <Representation id=\"subs_en\" mimeType=\"text/vtt\""), "{mpd}");
    assert!(mpd.contains("<BaseURL>subs_en/text.vtt</BaseURL>") && mpd.contains("<BaseURL>subs/text.vtt</BaseURL>") && mpd.contains("lang=\"fr\""), "{mpd}");
    let (h, whole) = ok(&st, "/ladder/subs_en/text.vtt").await;
    assert!(h[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
    assert!(whole.contains("c4\n00:00:07.500 --> 00:00:09.900\nNear the end &amp; escaped\n"), "{whole}");
    // Assets without subtitle files: no text anywhere (their manifests stay as they were).
    let (_, demo) = ok(&st, "/demo/manifest.mpd").await;
    assert!(!demo.contains("text/vtt") && !demo.contains("stpp"));
    let (_, demo) = ok(&st, "/demo/master.m3u8").await;
    assert!(!demo.contains("SUBTITLES"));
}

/// `dash_text` picks the text Representations of the MPD: both formats by default, or one
/// (shaka-player lists a track per Representation, so an operator whose viewers use it can
/// offer one format per language); the segments stay servable whatever the MPD offers.
#[tokio::test]
async fn dash_text_formats_follow_the_config() {
    use sealcast_origin::config::DashTextConfig;
    let fx = sealcast_testkit::fixtures_dir();
    let mpd = |mode| {
        let fx = fx.clone();
        async move {
            let st = AppState::with_store(&Config { root: fx.clone(), dash_text: mode, ..Config::default() }, Store::local(&fx).unwrap());
            let (_, mpd) = ok(&st, "/ladder/manifest.mpd").await;
            ok(&st, "/ladder/subs_en/stpp/init.mp4").await;
            ok(&st, "/ladder/subs_en/text.vtt").await;
            let sets = mpd.matches("contentType=\"text\"").count();
            (sets, mpd.matches("mimeType=\"text/vtt\"").count(), mpd.matches("codecs=\"stpp.ttml.im1t\"").count(), mpd)
        }
    };
    let (sets, vtt, stpp, m) = mpd(DashTextConfig::Both).await;
    assert!(sets == 2 && vtt == 2 && stpp == 2, "{m}");
    let (sets, vtt, stpp, m) = mpd(DashTextConfig::Webvtt).await;
    assert!(sets == 2 && vtt == 2 && stpp == 0, "{m}");
    let (sets, vtt, stpp, m) = mpd(DashTextConfig::Imsc1).await;
    assert!(sets == 2 && vtt == 0 && stpp == 2, "{m}");
    let cfg: Config = toml::from_str("dash_text = \"imsc1\"").unwrap();
    assert_eq!(cfg.dash_text, DashTextConfig::Imsc1);
    assert!(toml::from_str::<Config>("dash_text = \"srt\"").is_err());
}

/// The boxes of `buf` at top level: (type, body).
fn top_boxes(buf: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= buf.len() {
        let size = u32::from_be_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && at + size <= buf.len(), "box at {at}: size {size}");
        out.push((String::from_utf8_lossy(&buf[at + 4..at + 8]).into_owned(), &buf[at + 8..at + size]));
        at += size;
    }
    assert_eq!(at, buf.len());
    out
}

async fn bytes(st: &Arc<AppState>, uri: &str) -> (http::HeaderMap, Vec<u8>) {
    let r = router(st.clone()).oneshot(Request::builder().method(Method::GET).uri(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = r.into_parts();
    assert_eq!(parts.status, StatusCode::OK, "{uri}");
    (parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
}

/// The `stpp` Representation: one IMSC1 document per video segment, cues cut to it, on the
/// media timeline (`tfdt` = the segment's start in ms, cue times absolute).
#[tokio::test]
async fn dash_stpp_segments_line_up_with_the_video() {
    let st = fixtures();
    let (_, mpd) = ok(&st, "/ladder/manifest.mpd").await;
    assert!(
        mpd.contains("<Representation id=\"subs_en/stpp\" mimeType=\"application/mp4\" codecs=\"stpp.ttml.im1t\"") && mpd.contains("initialization=\"subs_en/stpp/init.mp4\" media=\"subs_en/stpp/$Number$.m4s\""),
        "{mpd}"
    );
    let (h, init) = bytes(&st, "/ladder/subs_en/stpp/init.mp4").await;
    assert_eq!(h[header::CONTENT_TYPE], "application/mp4");
    let types: Vec<String> = top_boxes(&init).into_iter().map(|b| b.0).collect();
    assert_eq!(types, ["ftyp", "moov"]);
    let text = String::from_utf8_lossy(&init);
    assert!(text.contains("subt") && text.contains("sthd") && text.contains("stpp") && text.contains("http://www.w3.org/ns/ttml\0"), "{text}");
    let (_, video) = ok(&st, "/ladder/video_360p/index.m3u8").await;
    let n = extinfs(&video).len();
    let mut docs = Vec::new();
    for i in 1..=n {
        let (_, seg) = bytes(&st, &format!("/ladder/subs_en/stpp/{i}.m4s")).await;
        let boxes = top_boxes(&seg);
        assert_eq!(boxes.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(), ["styp", "moof", "mdat"]);
        let moof = boxes[1].1;
        // tfdt (version 0 or 1): its time is the segment's start in ms.
        let at = moof.windows(4).position(|w| w == b"tfdt").unwrap();
        let t = match moof[at + 4] {
            0 => u32::from_be_bytes(moof[at + 8..at + 12].try_into().unwrap()) as u64,
            _ => u64::from_be_bytes(moof[at + 8..at + 16].try_into().unwrap()),
        };
        assert_eq!(t, (i as u64 - 1) * 2000, "segment {i}");
        docs.push(String::from_utf8(boxes[2].1.to_vec()).unwrap());
    }
    assert!(docs[0].contains("<p begin=\"00:00:00.500\" end=\"00:00:01.500\">Hello, ladder.</p>"), "{}", docs[0]);
    assert!(docs[0].contains("<p begin=\"00:00:01.800\" end=\"00:00:02.000\">Crosses the 2 s boundary<br/><span tts:fontStyle=\"italic\">second line</span></p>"), "{}", docs[0]);
    assert!(docs[1].contains("<p begin=\"00:00:02.000\" end=\"00:00:02.600\">Crosses") && !docs[1].contains("Hello"), "{}", docs[1]);
    assert!(docs[2].contains("<p begin=\"00:00:04.000\" end=\"00:00:05.250\">Starts on a boundary</p>"), "{}", docs[2]);
    assert!(docs.iter().any(|d| d.contains(">Near the end &amp; escaped</p>")));
    assert!(docs.iter().all(|d| d.contains("xml:lang=\"en\"") && d.contains("ttp:profile=\"http://www.w3.org/ns/ttml/profile/imsc1/text\"")));
    assert_eq!(get(&st, &format!("/ladder/subs_en/stpp/{}.m4s", n + 1)).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&st, "/ladder/subs_en/stpp/0.m4s").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&st, "/ladder/nope/stpp/init.mp4").await.0, StatusCode::NOT_FOUND);
    // TTML source: its xml:lang, through the same writer.
    let (_, f) = bytes(&st, "/ladder/subs/stpp/1.m4s").await;
    let f = String::from_utf8_lossy(&f);
    assert!(f.contains("xml:lang=\"fr\"") && f.contains(">Bonjour, échelle.</p>"), "{f}");
}

#[tokio::test]
async fn language_from_the_server_manifest_first() {
    let dir = temp("ism");
    let fx = sealcast_testkit::fixtures_dir();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::copy(fx.join("demo/video_180p.cmfv"), dir.join("a/video_180p.cmfv")).unwrap();
    std::fs::write(dir.join("a/movie_fr.vtt"), "WEBVTT\n\n00:01.000 --> 00:02.000\nsvenska\n").unwrap();
    std::fs::write(dir.join("a/other.en.vtt"), "WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n").unwrap();
    std::fs::write(
        dir.join("a/a.ism"),
        r#"<?xml version="1.0" encoding="utf-8"?><smil xmlns="http://www.w3.org/2001/SMIL20/Language"><body><switch>
        <video src="video_180p.cmfv" systemBitrate="120000"/><textstream src="movie_fr.vtt" systemLanguage="swe"/></switch></body></smil>"#,
    )
    .unwrap();
    let st = AppState::with_store(&Config { root: dir.clone(), ..Config::default() }, Store::local(&dir).unwrap());
    let (_, master) = ok(&st, "/a/master.m3u8").await;
    assert!(master.contains("NAME=\"Swedish\",LANGUAGE=\"sv\"") && master.contains("URI=\"movie_fr/text.m3u8\""), "{master}");
    assert!(master.contains("NAME=\"English\",LANGUAGE=\"en\"") && master.contains("URI=\"other_en/text.m3u8\""), "{master}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn hostile_subtitles_are_errors_and_the_media_still_plays() {
    let dir = temp("hostile");
    let fx = sealcast_testkit::fixtures_dir();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::copy(fx.join("demo/video_180p.cmfv"), dir.join("a/video_180p.cmfv")).unwrap();
    for f in ["not_vtt.vtt", "laughs.ttml", "absurd_time.vtt", "huge.vtt"] {
        std::fs::copy(fx.join("hostile/subtitles").join(f), dir.join("a").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    // Over the 4 MiB bound by its listed size: never read (sparse here).
    std::fs::OpenOptions::new().write(true).open(dir.join("a/huge.vtt")).unwrap().set_len(5 << 20).unwrap();
    std::fs::write(dir.join("a/good.en.vtt"), "WEBVTT\n\n00:01.000 --> 00:02.000\nfine\n").unwrap();
    let st = AppState::with_store(&Config { root: dir.clone(), ..Config::default() }, Store::local(&dir).unwrap());
    let (_, master) = ok(&st, "/a/master.m3u8").await;
    assert_eq!(master.matches("TYPE=SUBTITLES").count(), 1, "only the good file is listed: {master}");
    let (_, mpd) = ok(&st, "/a/manifest.mpd").await;
    assert_eq!(mpd.matches("contentType=\"text\"").count(), 1, "{mpd}");
    ok(&st, "/a/video_180p/1.m4s").await;
    for (track, why) in [("not_vtt", "not WebVTT"), ("laughs", "document type declaration"), ("absurd_time", "past the 100 h limit"), ("huge", "more than the 4194304")] {
        for file in ["text.vtt", "1.vtt", "text.m3u8", "stpp/init.mp4", "stpp/1.m4s"] {
            let (s, h, b) = get(&st, &format!("/a/{track}/{file}")).await;
            assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{track}/{file}: {b}");
            assert_eq!(h[header::CONTENT_TYPE], "application/json");
            assert!(b.contains(&format!("{track}.")) && b.contains(why), "{track}: {b}");
        }
    }
    ok(&st, "/a/good_en/1.vtt").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn policy_blocks_text_with_its_protocol_and_never_encrypts_it() {
    let dir = temp("policy");
    let fx = sealcast_testkit::fixtures_dir();
    let cat = dir.join("catalog.toml");
    std::fs::write(
        &cat,
        r#"
[[asset]]
path = "ladder"
dash = "DynamicCommonEncryption"
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5d9", key = "69eaa802a6763af979e8d1940fb88392" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5da", key = "69eaa802a6763af979e8d1940fb88393" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5db", key = "69eaa802a6763af979e8d1940fb88394", kind = "CommonEncryptionCbcs" },
  { kid = "abba271e8bcf552bbd2e86a434a9a5dc", key = "69eaa802a6763af979e8d1940fb88395", kind = "CommonEncryptionCbcs" },
]

[[asset]]
path = "demo"
hls = "DynamicCommonEncryptionCbcs"
keys = [
  { kid = "abba271e8bcf552bbd2e86a434a9a5db", key = "69eaa802a6763af979e8d1940fb88394", kind = "CommonEncryptionCbcs" },
]
"#,
    )
    .unwrap();
    let cfg = Config { root: fx.clone(), allow_clear_without_policy: false, catalog: Some(cat.clone()), ..Config::default() };
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    let st = AppState::with_parts(&cfg, Store::local(&fx).unwrap(), toml.clone(), Some(toml));
    // DASH encrypted with cenc: its text is served, clear; HLS is not named: its text is blocked.
    let (_, mpd) = ok(&st, "/ladder/manifest.mpd").await;
    assert!(mpd.contains("<BaseURL>subs_en/text.vtt</BaseURL>") && mpd.contains("cenc:default_KID"), "{mpd}");
    let (_, whole) = ok(&st, "/ladder/subs_en/text.vtt").await;
    assert!(whole.contains("Hello"));
    for uri in ["/ladder/master.m3u8", "/ladder/subs_en/text.m3u8", "/ladder/subs_en/1.vtt", "/ladder/subs_en/ts1.vtt", "/ladder/subs/text-ts.m3u8"] {
        assert_eq!(get(&st, uri).await.0, StatusCode::FORBIDDEN, "{uri}");
    }
    // IMSC1 in fMP4 is DASH's too: clear under cenc.
    let (h, init) = bytes(&st, "/ladder/subs_en/stpp/init.mp4").await;
    assert!(!init.windows(4).any(|w| w == b"sinf" || w == b"pssh") && h[header::CONTENT_TYPE] == "application/mp4");
    let (_, seg) = bytes(&st, "/ladder/subs_en/stpp/1.m4s").await;
    assert!(String::from_utf8_lossy(&seg).contains("Hello, ladder.") && !seg.windows(4).any(|w| w == b"senc"));
    // No encrypted text exists at all.
    assert_eq!(get(&st, "/ladder/subs_en/cenc/text.m3u8").await.0, StatusCode::NOT_FOUND);
    // (This names track `cenc` of an asset `ladder/subs_en`, which has no policy: refused.)
    assert_eq!(get(&st, "/ladder/subs_en/cenc/stpp/init.mp4").await.0, StatusCode::FORBIDDEN);
    let _ = std::fs::remove_dir_all(dir);
}

/// A policy naming HLS only: the HLS text is served, the DASH text (WebVTT file and stpp) is 403.
#[tokio::test]
async fn stpp_is_refused_where_the_policy_does_not_name_dash() {
    let dir = temp("policy-hls");
    let fx = sealcast_testkit::fixtures_dir();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::copy(fx.join("demo/video_180p.cmfv"), dir.join("a/video_180p.cmfv")).unwrap();
    std::fs::write(dir.join("a/subs.en.vtt"), "WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n").unwrap();
    let cat = dir.join("catalog.toml");
    std::fs::write(&cat, "[[asset]]\npath = \"a\"\nhls = \"NoDynamicEncryption\"\n").unwrap();
    let cfg = Config { root: dir.clone(), allow_clear_without_policy: false, catalog: Some(cat.clone()), ..Config::default() };
    let toml = Arc::new(TomlCatalog::load(&cat).unwrap());
    let st = AppState::with_parts(&cfg, Store::local(&dir).unwrap(), toml.clone(), Some(toml));
    ok(&st, "/a/subs_en/1.vtt").await;
    for uri in ["/a/manifest.mpd", "/a/subs_en/text.vtt", "/a/subs_en/stpp/init.mp4", "/a/subs_en/stpp/1.m4s"] {
        assert_eq!(get(&st, uri).await.0, StatusCode::FORBIDDEN, "{uri}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
