//! Entry points for the fuzz targets in `fuzz/` and for the replay test that runs their seeds
//! and saved crashes under plain `cargo test`.
//!
//! They live in the library, not in `fuzz/`, so that a crash found by libFuzzer on nightly
//! replays as an ordinary test on stable, and so that the pipeline they drive cannot drift
//! from the one the server runs. Both must return normally on every input: errors are the
//! expected answer to garbage. A panic — an unchecked index, an overflow (fuzz builds keep
//! overflow checks, like our release profile), or one of the assertions below — is a bug.
//!
//! Besides "no panic", each function asserts invariants that hold for every input the
//! parsers accept; those are what make the fuzzer find wrong answers, not just crashes.

use std::sync::Arc;

use bytes::Bytes;
use sealcast_cenc::boxes::{Frma, PiffSenc, Pssh, Saio, Saiz, Schm, Senc, Sinf, Tenc, PIFF_SENC_UUID};
use sealcast_cenc::init::{protect_init, InitProtection};
use sealcast_cenc::{iv, ContentKey, IvDeriver, KeyKind, Kid, TrackProtection};
use sealcast_isobmff::fourcc::types::{MDAT, MOOF, TRAF, TRUN, UUID};
use sealcast_isobmff::tree::RawBox;
use sealcast_isobmff::{Atom, FourCC};

use crate::asset::{Asset, AssetTrack, SourceFile};
use crate::index::{index_bytes, FileIndex};
use crate::protect::{sample_format, write_segment_encrypted};
use crate::{fmp4, ism, manifest, smooth, ts, PackageOptions};

/// Read sizes the index is built with. 64 is the builder's floor and splits nearly every
/// box across reads; 4096 is what the tests and the server use. The builder is sans-IO, so
/// how the file is cut into reads must not change the index.
const READ_AHEADS: [u64; 2] = [64, 4096];

/// Runs `data` through the whole pipeline, as one track file of an asset: index it with
/// each of [`READ_AHEADS`], and if it indexes, build the asset, write the DASH, HLS and
/// Smooth manifests, the init segments, and for every segment whose source range lies
/// within `data` the CMAF segment, the Smooth fragment and the MPEG-TS segment.
///
/// Asserts, besides not panicking, that the index does not depend on the read size, that
/// every init segment, CMAF segment and Smooth fragment we write parses back as a box tree,
/// and that every TS segment is whole 188-byte packets.
pub fn fuzz_file(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    let mut results = READ_AHEADS.iter().map(|&ra| index_bytes(&data, ra));
    // The iterator yields exactly READ_AHEADS.len() >= 1 items.
    let first = results.next().expect("READ_AHEADS is not empty");
    for other in results {
        assert_same_index(&first, &other);
    }
    // One read holding the whole file never takes the mfra path: the walk's table, which
    // every table built without walking must lie within the file like.
    let walked = index_bytes(&data, data.len().max(1) as u64);
    if let (Ok(a), Ok(b)) = (&first, &walked) {
        for fi in [a, b] {
            assert_table_within_file(fi);
        }
    }
    let Ok(index) = first else { return };
    let files = [SourceFile { name: "fuzz.mp4".into(), index: Arc::new(index) }];
    let Ok(asset) = Asset::build(&files, None, PackageOptions::default()) else { return };

    // Manifests: only "does not panic"; their content is covered by the golden tests.
    let _ = manifest::dash::write_mpd(&asset);
    let _ = smooth::write_manifest(&asset);
    for flavor in [manifest::hls::FMP4, manifest::hls::TS] {
        let _ = manifest::hls::write_master(&asset, flavor);
        for track in &asset.tracks {
            let _ = manifest::hls::write_media(track, flavor);
        }
    }
    for track in &asset.tracks {
        let init = &track.track().init;
        assert!(RawBox::parse_all(init).is_ok(), "init segment of track '{}' does not parse", track.name);
        for i in 0..track.segments.len() {
            let Some((start, end)) = track.segment_range(i) else { continue };
            // Ranges are as the index claims them; the server would read them from storage
            // and get a short read past the end. Skip what we do not hold.
            if start > end || end > data.len() as u64 {
                continue;
            }
            let range = data.slice(start as usize..end as usize);
            let Ok(frags) = fmp4::read_segment(track, i, &range, start) else { continue };
            if let Ok(seg) = fmp4::write_segment(&frags, &range, start) {
                assert!(RawBox::parse_all(&seg.concat()).is_ok(), "CMAF segment {i} of track '{}' does not parse", track.name);
            }
            if let Ok(frag) = smooth::write_fragment(&frags, &range, start, track, smooth::delay(&asset, track)) {
                assert!(RawBox::parse_all(&frag.concat()).is_ok(), "Smooth fragment {i} of track '{}' does not parse", track.name);
            }
            // One stream per TS segment, as the server writes audio-only renditions.
            let Ok(samples) = ts::samples(&frags, &range, start, 0, u64::MAX, track.dts_shift()) else { continue };
            let input = ts::TsInput { codec: ts::codec(track), timescale: track.track().info.timescale, samples };
            if let Ok(seg) = ts::write_segment(&[input], i + 1) {
                assert!(seg.len() % 188 == 0 && seg.chunks(188).all(|p| p[0] == 0x47), "TS segment {i} of track '{}' is not whole 188-byte packets", track.name);
            }
        }
    }
}

/// Runs `data` as a progressive (non-fragmented) MP4 through the sample-table path: index
/// it with each of [`READ_AHEADS`] and, when it indexes as progressive, check every
/// fragment the tables were cut into against the [`TrackFragment`](crate::fragment::TrackFragment)
/// synthesized for it, then write each segment (CMAF) and read it back.
///
/// Asserts that the fragments account for every sample exactly once, that each synthesized
/// fragment has the fragment's sample count, bytes, duration and key frame, that its samples
/// lie inside the fragment's byte span and the file, and that a written segment reads back
/// to the same sample sizes, durations and composition offsets.
pub fn fuzz_progressive(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    let mut results = READ_AHEADS.iter().map(|&ra| index_bytes(&data, ra));
    let first = results.next().expect("READ_AHEADS is not empty");
    for other in results {
        assert_same_index(&first, &other);
    }
    let Ok(index) = first else { return };
    for t in &index.tracks {
        let Some(table) = &t.samples else { continue };
        // The table's fragments come first (movie fragments may follow them).
        let from_table = &t.fragments[..table.fragments()];
        let total: u64 = from_table.iter().map(|f| f.samples as u64).sum();
        assert_eq!(total, table.len() as u64, "track {}: fragments hold {total} samples, the table {}", t.info.track_id, table.len());
        for (i, f) in from_table.iter().enumerate() {
            let tf = table.track_fragment(i, f, t.info.track_id).expect("every fragment of the index can be synthesized");
            assert_eq!(tf.samples.len(), f.samples as usize);
            assert_eq!(tf.media_bytes(), f.media_bytes);
            assert_eq!(tf.duration(), f.duration);
            assert_eq!(tf.samples.first().is_some_and(|s| s.is_sync()), f.keyframe);
            for s in &tf.samples {
                assert!(s.offset >= f.offset && s.offset + s.size as u64 <= f.offset + f.size, "sample outside its fragment's span");
                assert!(s.offset + s.size as u64 <= data.len() as u64, "sample outside the file");
            }
        }
    }
    let files = [SourceFile { name: "fuzz.mp4".into(), index: Arc::new(index) }];
    let Ok(asset) = Asset::build(&files, None, PackageOptions::default()) else { return };
    for track in &asset.tracks {
        for i in 0..track.segments.len() {
            let Some((start, end)) = track.segment_range(i) else { continue };
            let range = data.slice(start as usize..end as usize);
            let frags = fmp4::read_segment(track, i, &range, start).expect("a progressive segment reads from its own span");
            let seg = Bytes::from(fmp4::write_segment(&frags, &range, start).expect("a synthesized fragment writes").concat());
            let mut pos = 0usize;
            let mut n = 0;
            for item in sealcast_isobmff::BoxIter::new(&seg) {
                let (h, _) = item.expect("our segment parses");
                if h.typ == MOOF {
                    let back = crate::fragment::read_track_fragment(&seg[pos..pos + h.size as usize], pos as u64, track.track().info.track_id, &track.track().info.trex)
                        .expect("our moof reads back")
                        .expect("our moof holds the track");
                    let src = &frags[n].traf.samples;
                    assert_eq!(back.samples.iter().map(|s| (s.size, s.duration, s.cto, s.is_sync())).collect::<Vec<_>>(), src.iter().map(|s| (s.size, s.duration, s.cto, s.is_sync())).collect::<Vec<_>>());
                    n += 1;
                }
                pos += h.size as usize;
            }
            assert_eq!(n, frags.len());
        }
    }
}

/// Runs `data` through the raw box tree parser and the `.ism` (SMIL) parser.
///
/// Asserts that a box tree that parses encodes back to exactly `data`: the tree is how we
/// rewrite init segments while passing every byte we do not touch through unchanged.
pub fn fuzz_boxes(data: &[u8]) {
    if let Ok(boxes) = RawBox::parse_all(data) {
        let mut out = Vec::with_capacity(data.len());
        for b in &boxes {
            b.encode(&mut out);
        }
        if out != data {
            // Show where the encodings part, which names the header that changed.
            let at = out.iter().zip(data).position(|(a, b)| a != b).unwrap_or(out.len().min(data.len()));
            let near = |b: &[u8]| b[at.saturating_sub(8).min(b.len())..(at + 16).min(b.len())].to_vec();
            panic!(
                "box tree round trip is not exact: {} bytes in, {} out, first difference at byte {at}\n in[{}..]: {:02x?}\nout[{}..]: {:02x?}",
                data.len(),
                out.len(),
                at.saturating_sub(8),
                near(data),
                at.saturating_sub(8),
                near(&out)
            );
        }
    }
    let _ = ism::parse(data);
}

/// One `.ism` server manifest. Asserts that a manifest that parses names at least one
/// track, and that its tracks written back as SMIL (every value escaped) parse to the same
/// tracks: names, languages and track names survive XML escaping both ways.
pub fn fuzz_ism(data: &[u8]) {
    let Ok(tracks) = ism::parse(data) else { return };
    assert!(!tracks.is_empty(), "a parsed .ism names no track");
    let smil = ism_to_smil(&tracks);
    match ism::parse(smil.as_bytes()) {
        Ok(again) => assert_eq!(again, tracks, "tracks changed through SMIL:\n{smil}"),
        Err(e) => panic!("SMIL of parsed tracks does not parse ({e}):\n{smil}"),
    }
}

/// Arbitrary bytes as a subtitle file (first byte `T`: TTML, else WebVTT, both on the rest).
/// Invariants for what parses: cues sorted by start, each ending after it starts and within
/// the time limit; the WebVTT we write (whole and as segments) parses back to the same cues
/// and header, so what players get is exactly what was read.
pub fn fuzz_text(data: &[u8]) {
    use crate::text::{TextDoc, TextFormat, TextLimits};
    let (format, body) = match data.split_first() {
        Some((b'T', rest)) => (TextFormat::Ttml, rest),
        Some((_, rest)) => (TextFormat::WebVtt, rest),
        None => return,
    };
    let limits = TextLimits { max_cues: 2000, ..TextLimits::default() };
    let Ok(doc) = TextDoc::parse(body, format, limits) else { return };
    for w in doc.cues.windows(2) {
        assert!(w[0].start_ms <= w[1].start_ms, "cues out of order");
    }
    for c in &doc.cues {
        assert!(c.start_ms < c.end_ms && c.end_ms <= limits.max_time_ms, "{c:?}");
    }
    let whole = doc.to_webvtt();
    let again = TextDoc::parse(whole.as_bytes(), TextFormat::WebVtt, limits).unwrap_or_else(|e| panic!("our WebVTT does not parse ({e}):\n{whole}"));
    assert_eq!((&again.header, &again.cues), (&doc.header, &doc.cues), "WebVTT round trip changed the cues:\n{whole}");
    let mid = doc.cues.get(doc.cues.len() / 2).map_or(0, |c| c.start_ms);
    for (a, b) in [(0, mid), (mid, u64::MAX)] {
        let seg = doc.segment(a, b, 900_000);
        let got = TextDoc::parse(seg.as_bytes(), TextFormat::WebVtt, limits).unwrap_or_else(|e| panic!("segment does not parse ({e}):\n{seg}"));
        let want: Vec<_> = doc.cues.iter().filter(|c| c.start_ms < b && c.end_ms > a).cloned().collect();
        assert_eq!(got.cues, want, "segment [{a}, {b}) holds other cues");
    }
}

/// `tracks` as an AMS-style SMIL document: one element per track, `trackID` and
/// `trackName` as `param` children. Written here, independently of the parser.
fn ism_to_smil(tracks: &[ism::IsmTrack]) -> String {
    fn esc(v: &str) -> String {
        v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
    }
    let mut s = String::from("<?xml version=\"1.0\"?><smil xmlns=\"http://www.w3.org/2001/SMIL20/Language\"><body><switch>");
    for t in tracks {
        let el = t.kind.as_str();
        s.push_str(&format!("<{el} src=\"{}\"", esc(&t.src)));
        if let Some(b) = t.bitrate {
            s.push_str(&format!(" systemBitrate=\"{b}\""));
        }
        if let Some(l) = &t.language {
            s.push_str(&format!(" systemLanguage=\"{}\"", esc(l)));
        }
        s.push('>');
        if let Some(id) = t.track_id {
            s.push_str(&format!("<param name=\"trackID\" value=\"{id}\" valuetype=\"data\"/>"));
        }
        if let Some(n) = &t.track_name {
            s.push_str(&format!("<param name=\"trackName\" value=\"{}\" valuetype=\"data\"/>", esc(n)));
        }
        s.push_str(&format!("</{el}>"));
    }
    s.push_str("</switch></body></smil>");
    s
}

/// The content key of [`fuzz_protect`] (fixed: the fuzzer varies the media, not the key).
const FUZZ_KEY_BYTES: [u8; 16] = [0xa7; 16];
const FUZZ_KEY: ContentKey = ContentKey::aes128(Kid([0x5c; 16]), KeyKind::CommonEncryption, FUZZ_KEY_BYTES);

/// Runs `data` as one track file through every encrypting writer: if it indexes and builds
/// an asset, each track's init goes through `protect_init` (`cenc` with a `pssh`; `cbcs`
/// with a clear sample entry for clear lead), and every segment whose range lies within
/// `data` is written as a protected CMAF segment with a fixed `cenc` and a fixed `cbcs`
/// [`TrackProtection`] (the latter with one second of clear lead), as a protected Smooth
/// fragment (`cenc`, PIFF), and as an MPEG-TS segment with SAMPLE-AES.
///
/// Asserts, besides not panicking, that every protected init and fragment parses back as a
/// box tree; that an encrypted CMAF segment or Smooth fragment has the same samples (count
/// and `mdat` bytes) as its clear twin; that each encrypted `traf`'s `senc` (or PIFF box)
/// has one entry per sample, its `saiz` the same count, and its `saio` points at its first
/// entry; and that every TS segment is whole 188-byte packets.
pub fn fuzz_protect(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    let Ok(index) = index_bytes(&data, 4096) else { return };
    let files = [SourceFile { name: "fuzz.mp4".into(), index: Arc::new(index) }];
    let Ok(asset) = Asset::build(&files, None, PackageOptions::default()) else { return };
    for track in &asset.tracks {
        let info = &track.track().info;
        let format = sample_format(info);
        let cenc = TrackProtection::cenc(&FUZZ_KEY, format, IvDeriver::derive(FUZZ_KEY.kid().as_bytes(), b"fuzz", info.track_id));
        let cbcs = TrackProtection::cbcs(&FUZZ_KEY, format, iv::constant_iv(FUZZ_KEY.kid().as_bytes(), b"fuzz", info.track_id));
        // A layout the encryptor cannot take (odd NAL length size) is refused when the
        // server sets up protection, before any request: nothing further to run.
        let (Ok(cenc), Ok(cbcs)) = (cenc, cbcs) else { continue };
        let init = &track.track().init;
        let mut ip = cenc.init_protection(None, vec![Pssh::common(vec![FUZZ_KEY.kid()])]);
        check_protected_init(init, &ip, &track.name);
        ip = cbcs.init_protection(Some(info.track_id), Vec::new());
        ip.clear_entry = true;
        check_protected_init(init, &ip, &track.name);

        let clear_lead = u64::from(info.timescale);
        let trex_index = info.trex.default_sample_description_index;
        let sample_aes = ts::SampleAesParams { key: FUZZ_KEY_BYTES, iv: [0x3e; 16] };
        for i in 0..track.segments.len() {
            let Some((start, end)) = track.segment_range(i) else { continue };
            if start > end || end > data.len() as u64 {
                continue;
            }
            let range = data.slice(start as usize..end as usize);
            let Ok(frags) = fmp4::read_segment(track, i, &range, start) else { continue };
            let samples: usize = frags.iter().map(|f| f.traf.samples.len()).sum();
            let what = |kind: &str| format!("{kind} {i} of track '{}'", track.name);
            // The clear writers are the reference; where they refuse, so may the others.
            if let Ok(clear) = fmp4::write_segment(&frags, &range, start) {
                let clear = fragment_shape(&clear.concat(), &what("clear CMAF segment"));
                assert_eq!(clear.samples, samples, "{}: trun sample count", what("clear CMAF segment"));
                for (p, clear_until, kind) in [(&cenc, 0, "cenc CMAF segment"), (&cbcs, clear_lead, "cbcs CMAF segment")] {
                    // `range.clone()` shares the buffer, so the writer encrypts out of place
                    // and `range` stays clear for the next writer.
                    if let Ok(seg) = write_segment_encrypted(&frags, range.clone(), start, p, clear_until, trex_index) {
                        // A buffer of its own is encrypted in place: the same bytes.
                        let own = write_segment_encrypted(&frags, Bytes::copy_from_slice(&range), start, p, clear_until, trex_index).map(|s| s.concat());
                        assert_eq!(own.ok().as_deref(), Some(&seg.concat()[..]), "{}: in place and out of place differ", what(kind));
                        let enc = fragment_shape(&seg.concat(), &what(kind));
                        assert_eq!((enc.samples, enc.mdat_bytes), (clear.samples, clear.mdat_bytes), "{}: samples differ from the clear segment", what(kind));
                        assert_eq!(enc.iv_sizes(), p.iv_size(), "{}: senc IV size", what(kind));
                    }
                }
            }
            if let Ok(clear) = smooth::write_fragment(&frags, &range, start, track, smooth::delay(&asset, track)) {
                let clear = fragment_shape(&clear.concat(), &what("clear Smooth fragment"));
                if let Ok(frag) = smooth::write_fragment_encrypted(&frags, range.clone(), start, track, smooth::delay(&asset, track), &cenc) {
                    let enc = fragment_shape(&frag.concat(), &what("cenc Smooth fragment"));
                    assert_eq!((enc.samples, enc.mdat_bytes), (clear.samples, clear.mdat_bytes), "{}: samples differ from the clear fragment", what("cenc Smooth fragment"));
                    assert!(enc.protected_trafs > 0, "{}: no PIFF sample encryption box", what("cenc Smooth fragment"));
                }
            }
            check_sample_aes(track, &frags, &range, start, i, sample_aes.clone());
        }
    }
}

/// `protect_init` on an init segment we wrote: the output must parse as a box tree and
/// still hold a `moov`.
fn check_protected_init(init: &[u8], ip: &InitProtection, track: &str) {
    use sealcast_isobmff::fourcc::types::{MDIA, MINF, MOOV, STBL, STSD, TRAK};
    let Ok(out) = protect_init(init, ip) else { return };
    let boxes = RawBox::parse_all(&out).unwrap_or_else(|e| panic!("protected init of track '{track}' does not parse: {e}"));
    let moov = boxes.iter().find(|b| b.typ == MOOV).unwrap_or_else(|| panic!("protected init of track '{track}' lost its moov"));
    // What we appended must be there when the output is read back (a size-0 "to the end"
    // box left before it would swallow it).
    let pssh = moov.children.iter().flatten().filter(|b| b.typ == FourCC::new(b"pssh")).count();
    assert!(pssh >= ip.pssh.len(), "protected init of track '{track}': {pssh} pssh boxes read back, {} added", ip.pssh.len());
    for trak in moov.children.iter().flatten().filter(|b| b.typ == TRAK) {
        for entry in trak.path(&[MDIA, MINF, STBL, STSD]).and_then(|s| s.children.as_ref()).into_iter().flatten() {
            if [b"encv", b"enca"].contains(&&entry.typ.0) {
                assert!(entry.child(FourCC::new(b"sinf")).is_some(), "protected init of track '{track}': '{}' without sinf", entry.typ);
            }
        }
    }
}

/// The TS muxer with SAMPLE-AES over one segment (HEVC is refused by the muxer: the format
/// defines no HEVC variant).
fn check_sample_aes(track: &AssetTrack, frags: &[fmp4::SourceFragment], range: &Bytes, start: u64, i: usize, sa: ts::SampleAesParams) {
    let Ok(samples) = ts::samples(frags, range, start, 0, u64::MAX, track.dts_shift()) else { return };
    let input = ts::TsInput { codec: ts::codec(track), timescale: track.track().info.timescale, samples };
    if let Ok(seg) = ts::write_segment_with(&[input], i + 1, Some(sa)) {
        assert!(seg.len() % 188 == 0 && seg.chunks(188).all(|p| p[0] == 0x47), "SAMPLE-AES TS segment {i} of track '{}' is not whole 188-byte packets", track.name);
    }
}

/// What [`fragment_shape`] reads from a written segment or fragment.
struct Shape {
    /// Samples in every `trun` of every `traf`.
    samples: usize,
    /// Bytes in every `mdat` body.
    mdat_bytes: usize,
    /// `traf`s with a `senc` or PIFF sample encryption box.
    protected_trafs: usize,
    /// The IV sizes of those boxes (all must agree).
    iv_size: Option<u8>,
}

impl Shape {
    fn iv_sizes(&self) -> u8 {
        self.iv_size.unwrap_or(0)
    }
}

/// Parses a written segment as a box tree (panicking if it does not parse) and checks each
/// protected `traf`: the sample encryption box decodes with one entry per `trun` sample,
/// `saiz` has the same count, and the single `saio` offset (from the `moof` start) is where
/// the box's first per-sample entry is.
fn fragment_shape(seg: &[u8], what: &str) -> Shape {
    let boxes = RawBox::parse_all(seg).unwrap_or_else(|e| panic!("{what} does not parse: {e}"));
    let mut shape = Shape { samples: 0, mdat_bytes: 0, protected_trafs: 0, iv_size: None };
    for b in &boxes {
        if b.typ == MDAT {
            shape.mdat_bytes += b.body().len();
        }
        if b.typ != MOOF {
            continue;
        }
        // Positions are from the moof's first byte; our writers use 32-bit headers.
        let mut pos = header_len(b);
        for traf in b.children.iter().flatten() {
            let traf_start = pos;
            pos += traf.encoded_len() as usize;
            if traf.typ != TRAF {
                continue;
            }
            let mut at = traf_start + header_len(traf);
            let (mut trun_samples, mut enc, mut saiz, mut saio) = (0usize, None, None, None);
            for c in traf.children.iter().flatten() {
                let mut bytes = Vec::new();
                c.encode(&mut bytes);
                if c.typ == TRUN {
                    let count = c.body().get(4..8).unwrap_or_else(|| panic!("{what}: short trun"));
                    trun_samples += u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
                } else if c.typ == FourCC::new(b"senc") {
                    let s = Atom::decode(&bytes).unwrap_or_else(|e: sealcast_isobmff::Error| panic!("{what}: senc does not decode: {e}"));
                    let s: Senc = s;
                    enc = Some((s.samples.len(), s.iv_size, at + header_len(c) + 8));
                } else if c.typ == UUID && c.body().starts_with(&PIFF_SENC_UUID) {
                    let s = <PiffSenc as Atom>::decode(&bytes).unwrap_or_else(|e| panic!("{what}: PIFF sample encryption box does not decode: {e}"));
                    enc = Some((s.senc.samples.len(), s.senc.iv_size, at + s.aux_start() as usize + header_len(c) - 8));
                } else if c.typ == FourCC::new(b"saiz") {
                    saiz = Some(Saiz::decode(&bytes).unwrap_or_else(|e| panic!("{what}: saiz does not decode: {e}")));
                } else if c.typ == FourCC::new(b"saio") {
                    saio = Some(Saio::decode(&bytes).unwrap_or_else(|e| panic!("{what}: saio does not decode: {e}")));
                }
                at += bytes.len();
            }
            shape.samples += trun_samples;
            let Some((entries, iv_size, first_entry)) = enc else { continue };
            shape.protected_trafs += 1;
            assert!(shape.iv_size.is_none_or(|s| s == iv_size), "{what}: trafs with different IV sizes");
            shape.iv_size = Some(iv_size);
            assert_eq!(entries, trun_samples, "{what}: sample encryption entries vs trun samples");
            if let Some(z) = saiz {
                assert_eq!(z.sample_count as usize, trun_samples, "{what}: saiz sample count vs trun samples");
            }
            if let Some(o) = saio {
                assert_eq!(o.offsets, [first_entry as u64], "{what}: saio does not point at the first sample encryption entry");
            }
        }
    }
    shape
}

/// Header length of a box as it encodes.
fn header_len(b: &RawBox<'_>) -> usize {
    if b.large {
        16
    } else {
        8
    }
}

/// Runs `data` through the Common Encryption box decoders and `protect_init`.
///
/// Asserts that `senc` and PIFF's sample encryption box, decoded with each IV size (and with
/// the size guessed), and every other decoded protection box (`pssh`, `tenc`, `sinf`,
/// `schm`, `frma`, `saiz`, `saio`) encode to bytes that decode to the same value; and that a
/// protected init parses back as a box tree.
pub fn fuzz_cenc_boxes(data: &[u8]) {
    for iv_size in [0, 8, 16] {
        if let Ok(s) = Senc::decode_with_iv_size(data, iv_size) {
            assert_eq!(Senc::decode_with_iv_size(&s.to_vec(), iv_size).as_ref().ok(), Some(&s), "senc (IV size {iv_size}) round trip");
        }
        if let Ok(s) = PiffSenc::decode_with_iv_size(data, iv_size) {
            assert_eq!(PiffSenc::decode_with_iv_size(&s.to_vec(), iv_size).as_ref().ok(), Some(&s), "PIFF senc (IV size {iv_size}) round trip");
            assert_eq!(s.to_vec().len(), s.encoded_len(), "PIFF senc encoded_len");
        }
    }
    if let Ok(s) = Senc::decode(data) {
        assert_eq!(Senc::decode_with_iv_size(&s.to_vec(), s.iv_size).as_ref().ok(), Some(&s), "senc (guessed IV size) round trip");
    }
    if let Ok(s) = <PiffSenc as Atom>::decode(data) {
        assert_eq!(PiffSenc::decode_with_iv_size(&s.to_vec(), s.senc.iv_size).as_ref().ok(), Some(&s), "PIFF senc (guessed IV size) round trip");
    }
    round_trip::<Pssh>(data);
    round_trip::<Tenc>(data);
    round_trip::<Sinf>(data);
    round_trip::<Schm>(data);
    round_trip::<Frma>(data);
    round_trip::<Saiz>(data);
    round_trip::<Saio>(data);

    let cenc = TrackProtection::cenc(&FUZZ_KEY, sealcast_cenc::SampleFormat::Whole, IvDeriver::derive(FUZZ_KEY.kid().as_bytes(), b"fuzz", 1));
    // Fixed, valid parameters: an error here is not a fuzz finding.
    let cenc = cenc.expect("fixed cenc parameters");
    check_protected_init(data, &cenc.init_protection(None, vec![Pssh::common(vec![FUZZ_KEY.kid()])]), "input");
    let mut ip = cenc.init_protection(Some(1), Vec::new());
    ip.clear_entry = true;
    check_protected_init(data, &ip, "input");
}

/// A box that decodes must encode to bytes that decode to the same value.
fn round_trip<A: Atom + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(a) = A::decode(data) {
        let again = A::decode(&a.to_vec());
        assert_eq!(again.as_ref().ok(), Some(&a), "{} round trip", A::TYPE);
    }
}

/// Panics when indexing the same bytes with different read sizes gave different answers.
fn assert_same_index(a: &crate::Result<FileIndex>, b: &crate::Result<FileIndex>) {
    // A read size may decide whether the head read reaches the file's tail, hence whether the
    // mfra path is tried: the two tables are then built from different sources (a lying
    // tfra that passes the checks is trusted, like a sidx) and compared only for sanity.
    if let (Ok(x), Ok(y)) = (a, b) {
        if x.method != y.method {
            assert_table_within_file(x);
            assert_table_within_file(y);
            return;
        }
    }
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.file_len, b.file_len);
            assert_eq!(a.tracks.len(), b.tracks.len(), "read size changed the track count");
            for (x, y) in a.tracks.iter().zip(&b.tracks) {
                assert_eq!(x.info, y.info, "read size changed the track info");
                assert_eq!(x.init, y.init, "read size changed the init segment of track {}", x.info.track_id);
                assert_eq!(x.fragments, y.fragments, "read size changed the fragments of track {}", x.info.track_id);
            }
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("read size changed the outcome: {:?} vs {:?}", a.as_ref().map(|_| "indexed"), b.as_ref().map(|_| "indexed")),
    }
}

/// Every fragment of every track lies within the file, in increasing offsets and decode
/// times that do not overlap.
fn assert_table_within_file(fi: &FileIndex) {
    for t in &fi.tracks {
        for (k, f) in t.fragments.iter().enumerate() {
            assert!(f.offset.checked_add(f.size).is_some_and(|e| e <= fi.file_len), "fragment {k} past the end of the file ({:?})", fi.method);
            if k > 0 {
                let p = &t.fragments[k - 1];
                assert!(f.offset > p.offset, "fragment offsets not increasing at {k} ({:?})", fi.method);
                // The walk keeps what the moofs say (a tfdt may go back); tables built
                // without walking are checked to follow on.
                if matches!(fi.method, crate::IndexMethod::Mfra | crate::IndexMethod::Sidecar) {
                    assert!(f.decode_time >= p.decode_time.saturating_add(p.duration), "decode times overlap at {k} ({:?})", fi.method);
                }
            }
        }
    }
}

/// The fuzz input as the `mfra` at the end of a small valid fragmented file (the 180p demo
/// file's first two fragments, embedded), so the fuzzer works on `mfro`/`mfra`/`tfra`
/// decoding and checking rather than on finding a valid head: then [`fuzz_file`].
pub fn fuzz_mfra(tail: &[u8]) {
    static BASE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(|| {
        let f = include_bytes!("../../../fixtures/demo/video_180p.cmfv");
        // ftyp, moov, two moof+mdat pairs: up to the third moof (61495, see fixtures).
        f[..61495].to_vec()
    });
    let mut data = base.clone();
    data.extend_from_slice(tail);
    fuzz_file(&data);
}

/// Arbitrary bytes as a sidecar index, checksummed so the decoder gets past the checksum and
/// keyed by what its own header names (so it is not refused as stale): decoded within the
/// default limits and, when it decodes, turned into an index and an asset.
pub fn fuzz_sidecar(data: &[u8]) {
    use crate::sidecar;
    let mut v = data.to_vec();
    let sum = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x0100_0000_01b3));
    v.extend_from_slice(&sum.to_be_bytes());
    let size = data.get(8..16).map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or_default()));
    let klen = data.get(16..18).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
    let key = data.get(18..18 + klen).map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
    let source = sidecar::SourceKey { size, key };
    let limits = crate::index::IndexLimits { max_bytes: 16 << 20 };
    let Ok(sc) = sidecar::decode(&Bytes::from(v), &source, limits) else { return };
    let Ok(fi) = sidecar::to_index(sc, size, limits) else { return };
    assert_table_within_file(&fi);
    let files = [SourceFile { name: "fuzz.cmfv".into(), index: Arc::new(fi) }];
    if let Ok(asset) = Asset::build(&files, None, PackageOptions::default()) {
        let _ = manifest::dash::write_mpd(&asset);
        let _ = manifest::hls::write_master(&asset, manifest::hls::FMP4);
    }
}
