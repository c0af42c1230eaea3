//! Smooth Streaming: the client manifest read back, and every fragment it names written,
//! re-parsed and compared with the source samples.

use std::sync::Arc;

use bytes::Bytes;
use quick_xml::events::Event;
use sealcast_isobmff::trex::Trex;
use sealcast_isobmff::{tfdt::Tfdt, Atom, BoxIter};
use sealcast_package::asset::SourceFile;
use sealcast_package::index::index_bytes;
use sealcast_package::track::CodecConfig;
use sealcast_package::{fmp4, ism, smooth, Asset, AssetTrack, PackageOptions, TrackKind};
use sealcast_testkit::{fixture, golden};

fn asset(dir: &str, files: &[&str], with_ism: Option<&str>) -> Asset {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|f| SourceFile { name: f.to_string(), index: Arc::new(index_bytes(&fixture(&format!("{dir}/{f}")), 4096).unwrap()) })
        .collect();
    let ism = with_ism.map(|i| ism::parse(&fixture(&format!("{dir}/{i}"))).unwrap());
    Asset::build(&files, ism.as_deref(), PackageOptions::default()).unwrap()
}

fn demo() -> Asset {
    asset("demo", &["audio_en.cmfa", "audio_fr.cmfa", "video_180p.cmfv", "video_360p.cmfv"], Some("demo.ism"))
}

/// Every fixture asset with the folder its files live in.
fn all() -> Vec<(&'static str, Asset)> {
    vec![("demo", demo()), ("multi", asset("multi", &["movie.ismv"], None)), ("hevc", asset("hevc", &["video.mp4", "audio.mp4"], None))]
}

/// What a client reads from the manifest.
#[derive(Debug, Default)]
struct Stream {
    attrs: Vec<(String, String)>,
    levels: Vec<Vec<(String, String)>>,
    /// (t, d) of every chunk, implicit times filled in as MS-SSTR says.
    chunks: Vec<(u64, u64)>,
}

impl Stream {
    fn attr(&self, k: &str) -> &str {
        get(&self.attrs, k).unwrap_or_else(|| panic!("StreamIndex without {k}"))
    }
}

fn get<'a>(a: &'a [(String, String)], k: &str) -> Option<&'a str> {
    a.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn attrs(e: &quick_xml::events::BytesStart<'_>) -> Vec<(String, String)> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap();
            (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), a.unescape_value().unwrap().into_owned())
        })
        .collect()
}

fn parse_manifest(xml: &str) -> (Vec<(String, String)>, Vec<Stream>) {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut root = Vec::new();
    let mut out: Vec<Stream> = Vec::new();
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"SmoothStreamingMedia" => root = attrs(&e),
                b"StreamIndex" => out.push(Stream { attrs: attrs(&e), ..Default::default() }),
                b"QualityLevel" => out.last_mut().unwrap().levels.push(attrs(&e)),
                b"c" => {
                    let a = attrs(&e);
                    let st = out.last_mut().unwrap();
                    let t = get(&a, "t").map(|v| v.parse().unwrap()).unwrap_or_else(|| st.chunks.last().map_or(0, |(t, d)| t + d));
                    assert!(get(&a, "r").is_none(), "no repeat counts");
                    st.chunks.push((t, get(&a, "d").expect("every chunk has d").parse().unwrap()));
                }
                other => panic!("unexpected element {}", String::from_utf8_lossy(other)),
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (root, out)
}

fn track_of<'a>(a: &'a Asset, st: &Stream, level: &[(String, String)]) -> &'a AssetTrack {
    let bitrate: u32 = get(level, "Bitrate").unwrap().parse().unwrap();
    let t0 = st.chunks[0].0;
    let (t, seg) = smooth::find_fragment(a, st.attr("Name"), bitrate, t0).expect("first chunk resolves");
    assert_eq!(seg, 0);
    t
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[test]
fn manifest_chunks_match_tracks() {
    for (_, a) in all() {
        let xml = smooth::write_manifest(&a);
        let (root, streams) = parse_manifest(&xml);
        assert_eq!(get(&root, "TimeScale"), Some("10000000"));
        assert_eq!((get(&root, "MajorVersion"), get(&root, "MinorVersion")), (Some("2"), Some("0")));
        let want = a.tracks.iter().map(|t| (t.duration as u128 * 10_000_000 / t.track().info.timescale as u128) as f64).fold(0.0, f64::max);
        let got: f64 = get(&root, "Duration").unwrap().parse().unwrap();
        assert!((got - want).abs() <= 1.0, "Duration {got} vs {want}");
        let mut seen = 0;
        for st in &streams {
            assert_eq!(st.attr("Chunks").parse::<usize>().unwrap(), st.chunks.len());
            assert_eq!(st.attr("QualityLevels").parse::<usize>().unwrap(), st.levels.len());
            assert_eq!(st.attr("Url"), format!("QualityLevels({{bitrate}})/Fragments({}={{start time}})", st.attr("Name")));
            let mut bitrates: Vec<&str> = st.levels.iter().map(|l| get(l, "Bitrate").unwrap()).collect();
            bitrates.sort();
            bitrates.dedup();
            assert_eq!(bitrates.len(), st.levels.len(), "bitrates unique in {}", st.attr("Name"));
            // Contiguous chunks.
            for w in st.chunks.windows(2) {
                assert_eq!(w[0].0 + w[0].1, w[1].0);
            }
            for (i, l) in st.levels.iter().enumerate() {
                assert_eq!(get(l, "Index"), Some(i.to_string().as_str()));
                let t = track_of(&a, st, l);
                seen += 1;
                assert_eq!(st.attr("TimeScale"), t.track().info.timescale.to_string());
                assert_eq!(st.attr("Type"), t.kind().as_str());
                // t/d are the track's own segment times: the sum is its duration.
                assert_eq!(st.chunks.iter().map(|c| c.1).sum::<u64>(), t.duration, "{}", t.name);
                assert_eq!(st.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), t.segments.iter().map(|s| s.decode_time + smooth::delay(&a, t)).collect::<Vec<_>>());
                let info = &t.track().info;
                let cpd = get(l, "CodecPrivateData").unwrap();
                match &info.config {
                    CodecConfig::Avc(c) => {
                        assert_eq!(get(l, "FourCC"), Some("H264"));
                        assert!(cpd.starts_with("0000000167") || cpd.starts_with("0000000127"), "{cpd}");
                        assert_eq!(cpd, format!("00000001{}00000001{}", hex(&c.sps[0]), hex(&c.pps[0])));
                        assert_eq!(get(l, "MaxWidth"), Some(info.width.to_string().as_str()));
                    }
                    CodecConfig::Hevc(c) => {
                        assert!(matches!(get(l, "FourCC"), Some("HVC1" | "HEV1")));
                        assert_eq!(cpd, format!("00000001{}00000001{}00000001{}", hex(&c.vps[0]), hex(&c.sps[0]), hex(&c.pps[0])));
                    }
                    CodecConfig::Aac { raw, .. } => {
                        assert_eq!(get(l, "FourCC"), Some("AACL"));
                        assert_eq!(cpd, hex(raw));
                        assert_eq!(get(l, "SamplingRate"), Some(info.sample_rate.to_string().as_str()));
                        assert_eq!(get(l, "Channels"), Some(info.channels.to_string().as_str()));
                        assert_eq!((get(l, "AudioTag"), get(l, "BitsPerSample"), get(l, "PacketSize")), (Some("255"), Some("16"), Some("4")));
                    }
                }
            }
        }
        assert_eq!(seen, a.tracks.len(), "every track is a quality level");
    }
}

#[test]
fn demo_streams_are_grouped_and_named() {
    let a = demo();
    let s = smooth::streams(&a);
    let names: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.levels.len())).collect();
    assert_eq!(names, [("video", 2), ("audio_eng", 1), ("audio_fra", 1)]);
    assert_eq!(s[1].language.as_deref(), Some("eng"));
    // The demo video has negative composition offsets (trun v1): the fragment test then
    // covers the shift into version 0.
    assert!(s[0].levels[0].track.dts_shift() > 0);
}

#[test]
fn unknown_fragments_are_none() {
    let a = demo();
    let s = smooth::streams(&a);
    let v = &s[0];
    let (b, t1) = (v.levels[0].bitrate, v.chunks()[1].decode_time + v.offset);
    assert!(smooth::find_fragment(&a, "video", b, t1).is_some());
    assert!(smooth::find_fragment(&a, "video", b, t1 + 1).is_none());
    assert!(smooth::find_fragment(&a, "video", b + 7, t1).is_none());
    assert!(smooth::find_fragment(&a, "Video", b, t1).is_none());
    assert!(smooth::find_fragment(&a, "nope", b, t1).is_none());
    assert!(smooth::find_fragment(&a, "video", b, u64::MAX).is_none());
}

/// Reads the `tfxd` box out of a `traf` body: (version, time, duration).
fn tfxd(traf: &[u8]) -> Option<(u8, u64, u64)> {
    for item in BoxIter::new(traf) {
        let (h, body) = item.unwrap();
        if h.typ.0 == *b"uuid" && body[..16] == smooth::TFXD_UUID {
            let v = body[16];
            let b = &body[20..];
            return Some(if v == 1 {
                (v, u64::from_be_bytes(b[..8].try_into().unwrap()), u64::from_be_bytes(b[8..16].try_into().unwrap()))
            } else {
                (v, u32::from_be_bytes(b[..4].try_into().unwrap()) as u64, u32::from_be_bytes(b[4..8].try_into().unwrap()) as u64)
            });
        }
    }
    None
}

#[test]
fn fragments_carry_their_chunk_and_source_samples() {
    for (dir, a) in all() {
        for st in smooth::streams(&a) {
            for level in &st.levels {
                let t = level.track;
                let file = fixture(&format!("{dir}/{}", t.file));
                let shift = t.dts_shift() as i64;
                for c in st.chunks() {
                    let ct = c.decode_time + st.offset;
                    let (track, i) = smooth::find_fragment(&a, &st.name, level.bitrate, ct).unwrap();
                    assert!(std::ptr::eq(track, t));
                    let (s, e) = t.segment_range(i).unwrap();
                    let data = file.slice(s as usize..e as usize);
                    let frags = fmp4::read_segment(t, i, &data, s).unwrap();
                    let out = smooth::write_fragment(&frags, &data, s, t, smooth::delay(&a, t)).unwrap();
                    // The mdat payload is slices of the source, not copies.
                    assert!(out.parts[1..].iter().all(|p| data.as_ptr_range().contains(&p.as_ptr())));
                    let bytes = Bytes::from(out.concat());
                    let boxes: Vec<_> = BoxIter::new(&bytes).map(|b| b.unwrap()).collect();
                    assert_eq!(boxes.iter().map(|(h, _)| h.typ.to_string()).collect::<Vec<_>>(), ["moof", "mdat"], "{} @ {}", t.name, ct);
                    let moof_len = boxes[0].0.size as usize;
                    // Self-contained: all-zero trex defaults, as a client-built moov has.
                    let tf = sealcast_package::fragment::read_track_fragment(&bytes[..moof_len], 0, t.track().info.track_id, &Trex::default()).unwrap().expect("traf for the track");
                    assert_eq!(tf.runs.len(), 1, "one trun");
                    assert_eq!(tf.decode_time, Some(ct), "tfdt");
                    assert!(!tf.tfhd.default_base_is_moof && tf.tfhd.base_data_offset.is_none() && tf.tfhd.sample_description_index.is_none());
                    assert_eq!(tf.runs[0].trun.version, 0);
                    // tfxd: version 1, this chunk's t and d.
                    let traf = BoxIter::new(boxes[0].1).map(|b| b.unwrap()).find(|(h, _)| h.typ.0 == *b"traf").unwrap().1;
                    assert_eq!(tfxd(traf), Some((1, ct, c.duration)));
                    let tfdt = BoxIter::new(traf).map(|b| b.unwrap()).find(|(h, _)| h.typ.0 == *b"tfdt").unwrap();
                    assert_eq!(Tfdt::decode_body(&mut sealcast_isobmff::Reader::new(tfdt.1, tfdt.0.typ)).unwrap().base_media_decode_time, ct);
                    // Same samples, same bytes.
                    let src: Vec<_> = frags.iter().flat_map(|f| f.traf.samples.iter()).collect();
                    assert_eq!(tf.samples.len(), src.len());
                    assert_eq!(tf.duration(), c.duration);
                    for (x, y) in tf.samples.iter().zip(&src) {
                        assert_eq!((x.size, x.duration, x.flags, x.cto), (y.size, y.duration, y.flags, y.cto + shift));
                        assert_eq!(&bytes[x.offset as usize..][..x.size as usize], &file[y.offset as usize..][..y.size as usize]);
                    }
                    let last = tf.samples.last().unwrap();
                    assert_eq!(last.offset + last.size as u64, bytes.len() as u64, "mdat holds exactly the samples");
                }
            }
        }
    }
}

#[test]
fn manifest_matches_golden() {
    let a = demo();
    golden("demo.ismc", smooth::write_manifest(&a).as_bytes());
    // The HEVC and multi-track fixtures too: FourCCs, grouping, names.
    golden("hevc.ismc", smooth::write_manifest(&asset("hevc", &["video.mp4", "audio.mp4"], None)).as_bytes());
    assert!(smooth::streams(&demo()).iter().all(|s| s.levels.iter().all(|l| l.track.kind() == s.kind)));
    assert_eq!(smooth::streams(&demo())[0].kind, TrackKind::Video);
}
