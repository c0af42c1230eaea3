//! Protecting an init segment: each audio/video sample entry is renamed (`avc1` → `encv`,
//! `mp4a` → `enca`, …) and gets a `sinf` (`frma`, `schm`, `schi`/`tenc`) appended after
//! its other children; `pssh` boxes may be appended to the `moov`. Every other byte is
//! kept (the raw box tree re-encodes untouched boxes exactly).

use sealcast_isobmff::fourcc::types::*;
use sealcast_isobmff::tree::RawBox;
use sealcast_isobmff::{tkhd::Tkhd, Atom, FourCC};

use crate::boxes::types::{ENCA, ENCV, PSSH, SINF};
use crate::boxes::{Pssh, Sinf, Tenc};
use crate::encrypt::TrackProtection;
use crate::error::{Error, Result};
use crate::Scheme;

/// What [`protect_init`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProtection {
    /// Only the `trak` with this ID (`None`: every audio/video `trak`; a CMAF init has one).
    pub track_id: Option<u32>,
    /// Scheme for `schm`.
    pub scheme: Scheme,
    /// The `tenc`.
    pub tenc: Tenc,
    /// `pssh` boxes to append to the `moov` (may be empty: DASH can carry them in the MPD).
    pub pssh: Vec<Pssh>,
}

impl TrackProtection {
    /// The [`InitProtection`] for this track, with `pssh` boxes to add.
    pub fn init_protection(&self, track_id: Option<u32>, pssh: Vec<Pssh>) -> InitProtection {
        InitProtection { track_id, scheme: self.scheme(), tenc: self.tenc(), pssh }
    }
}

/// Rewrites a clear init segment (`ftyp` + `moov`) into its protected form.
pub fn protect_init(init: &[u8], p: &InitProtection) -> Result<Vec<u8>> {
    let mut boxes = RawBox::parse_all(init)?;
    let moov = boxes.iter_mut().find(|b| b.typ == MOOV).ok_or_else(|| Error::Init("no moov".into()))?;
    moov.to_end = false;
    let mut protected = 0;
    for trak in moov.children.iter_mut().flatten().filter(|b| b.typ == TRAK) {
        if let Some(want) = p.track_id {
            let tkhd = trak.child(TKHD).ok_or(Error::Box(sealcast_isobmff::Error::Missing(TKHD)))?;
            let mut v = Vec::new();
            tkhd.encode(&mut v);
            if Tkhd::decode(&v)?.track_id != want {
                continue;
            }
        }
        protected += protect_trak(trak, p)?;
    }
    if protected == 0 {
        return Err(Error::Init(match p.track_id {
            Some(id) => format!("no audio or video sample entry in track {id}"),
            None => "no audio or video sample entry".into(),
        }));
    }
    if let Some(children) = moov.children.as_mut() {
        for x in &p.pssh {
            children.push(RawBox::leaf(PSSH, body(x.to_vec())));
        }
    }
    let mut out = Vec::with_capacity(init.len() + 128 + 64 * p.pssh.len());
    for b in &boxes {
        b.encode(&mut out);
    }
    Ok(out)
}

/// A box's body, from its encoding with a 32-bit header.
fn body(mut whole: Vec<u8>) -> Vec<u8> {
    whole.drain(..8);
    whole
}

/// Protects the sample entries of one `trak`; how many it protected.
fn protect_trak(trak: &mut RawBox<'_>, p: &InitProtection) -> Result<usize> {
    let mut node = trak;
    for t in [MDIA, MINF, STBL, STSD] {
        // Sizes change along the path: a "to the end" size would no longer be right.
        node.to_end = false;
        node = match node.child_mut(t) {
            Some(c) => c,
            None => return Ok(0),
        };
    }
    node.to_end = false;
    let mut n = 0;
    for entry in node.children.iter_mut().flatten() {
        let new = match &entry.typ.0 {
            b"avc1" | b"avc3" | b"hvc1" | b"hev1" => ENCV,
            b"mp4a" => {
                // The tree reads a version 0 AudioSampleEntry; QuickTime v1/v2 entries are longer.
                if entry.prefix.get(8..10) != Some(&[0, 0][..]) {
                    return Err(Error::Init(format!("audio sample entry '{}' is not version 0", entry.typ)));
                }
                ENCA
            }
            b"encv" | b"enca" => return Err(Error::Init(format!("sample entry '{}' is already protected", entry.typ))),
            _ => continue,
        };
        let original: FourCC = entry.typ;
        let sinf = Sinf::new(original, p.scheme.fourcc(), p.tenc.clone());
        let children = entry.children.as_mut().ok_or(Error::UnsupportedEntry(original))?;
        children.push(RawBox::leaf(SINF, body(sinf.to_vec())));
        entry.typ = new;
        entry.to_end = false;
        n += 1;
    }
    Ok(n)
}
