//! `sealcast inspect FILE`: box tree and fragment table.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use bytes::Bytes;
use sealcast_isobmff::tree::{dump, RawBox};
use sealcast_isobmff::BoxIter;

/// Prints the top-level boxes (with `moov` and the first `moof` expanded) and, per track, the
/// fragment table.
pub fn run(file: &Path) -> anyhow::Result<()> {
    let data = Bytes::from(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?);
    let mut out = String::new();
    let mut expanded_moof = false;
    let mut pos = 0usize;
    for item in BoxIter::new(&data) {
        let (h, _) = match item {
            Ok(x) => x,
            Err(e) => {
                let _ = writeln!(out, "error at byte {pos}: {e}");
                break;
            }
        };
        let whole = &data[pos..pos + h.size as usize];
        if h.typ.0 == *b"moov" || (h.typ.0 == *b"moof" && !expanded_moof) {
            expanded_moof |= h.typ.0 == *b"moof";
            match RawBox::parse_all(whole) {
                Ok(t) => dump(&t, 0, &mut out),
                Err(e) => {
                    let _ = writeln!(out, "{} {} (unparsable: {e})", h.typ, h.size);
                }
            }
        } else {
            let _ = writeln!(out, "{} {} @{pos}", h.typ, h.size);
        }
        pos += h.size as usize;
    }
    print!("{out}");
    match sealcast_package::index::index_bytes(&data, 64 * 1024) {
        Ok(idx) => {
            for t in &idx.tracks {
                let i = &t.info;
                println!("\ntrack {} {:?} {} timescale {} lang {}", i.track_id, i.kind, i.codec_string, i.timescale, i.language.as_deref().unwrap_or("und"));
                println!("  {:>4} {:>14} {:>10} {:>8} {:>10} {:>10} key", "#", "decode_time", "duration", "pres_off", "offset", "size");
                for (n, f) in t.fragments.iter().enumerate() {
                    println!("  {:>4} {:>14} {:>10} {:>8} {:>10} {:>10} {}", n, f.decode_time, f.duration, f.pres_offset, f.offset, f.size, if f.keyframe { "yes" } else { "no" });
                }
            }
        }
        Err(e) => println!("\nnot servable: {e}"),
    }
    Ok(())
}
