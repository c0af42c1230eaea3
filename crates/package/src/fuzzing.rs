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
use sealcast_isobmff::tree::RawBox;

use crate::asset::{Asset, SourceFile};
use crate::index::{index_bytes, FileIndex};
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

/// Panics when indexing the same bytes with different read sizes gave different answers.
fn assert_same_index(a: &crate::Result<FileIndex>, b: &crate::Result<FileIndex>) {
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
