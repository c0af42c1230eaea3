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
    /// Also keep a clear copy of each protected sample entry, after it (entry index 2 for a
    /// single-entry track), for clear-lead fragments whose `tfhd` points at it, as Shaka
    /// Packager writes clear lead.
    pub clear_entry: bool,
}

impl TrackProtection {
    /// The [`InitProtection`] for this track, with `pssh` boxes to add.
    pub fn init_protection(&self, track_id: Option<u32>, pssh: Vec<Pssh>) -> InitProtection {
        InitProtection { track_id, scheme: self.scheme(), tenc: self.tenc(), pssh, clear_entry: false }
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
        // A size-0 ("to the end") box kept for the round trip would, no longer last,
        // swallow what we append after it.
        if let Some(last) = children.last_mut().filter(|_| !p.pssh.is_empty()) {
            last.to_end = false;
        }
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
    let mut clear_copies = Vec::new();
    for (i, entry) in node.children.iter_mut().flatten().enumerate() {
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
        if p.clear_entry {
            let mut copy = entry.clone();
            copy.to_end = false;
            clear_copies.push((i, copy));
        }
        let sinf = Sinf::new(original, p.scheme.fourcc(), p.tenc.clone());
        let children = entry.children.as_mut().ok_or(Error::UnsupportedEntry(original))?;
        // As for the moov's pssh boxes: a "to the end" last child would swallow the sinf.
        if let Some(last) = children.last_mut() {
            last.to_end = false;
        }
        children.push(RawBox::leaf(SINF, body(sinf.to_vec())));
        entry.typ = new;
        entry.to_end = false;
        n += 1;
    }
    if !clear_copies.is_empty() {
        let children = node.children.get_or_insert_with(Vec::new);
        // Insert from the back so earlier indexes stay valid.
        for (i, copy) in clear_copies.into_iter().rev() {
            children.insert(i + 1, copy);
        }
        let count = children.len() as u32;
        // stsd prefix: version/flags (4) + entry_count (4).
        let prefix = node.prefix.to_mut();
        if prefix.len() != 8 {
            return Err(Error::Init("stsd header is not 8 bytes".into()));
        }
        prefix[4..8].copy_from_slice(&count.to_be_bytes());
    }
    Ok(n)
}
