//! `stsd` sample entries: the fields a packager needs (size, channels, rate) and the codec
//! configuration boxes (`avcC`, `hvcC`, `esds`, …) as raw bytes.

use crate::fourcc::types::*;
use crate::tree::RawBox;
use crate::{Error, FourCC, Reader, Result};

/// What kind of sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// VisualSampleEntry.
    Visual {
        /// Coded width.
        width: u16,
        /// Coded height.
        height: u16,
    },
    /// AudioSampleEntry.
    Audio {
        /// Channel count.
        channels: u16,
        /// Sample size in bits.
        sample_size: u16,
        /// Sample rate (integer part of the 16.16 field).
        sample_rate: u32,
    },
    /// Any other entry, not interpreted.
    Other,
}

/// One sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleEntry {
    /// The entry's four-character code (`avc1`, `hvc1`, `mp4a`, `encv`, …).
    pub fourcc: FourCC,
    /// Fields by kind.
    pub kind: EntryKind,
    /// Child boxes (type, body).
    pub children: Vec<(FourCC, Vec<u8>)>,
}

impl SampleEntry {
    /// Body of the first child of type `t`.
    pub fn child(&self, t: FourCC) -> Option<&[u8]> {
        self.children.iter().find(|(c, _)| *c == t).map(|(_, b)| b.as_slice())
    }
}

/// Decodes the sample entries of an `stsd` box (as a parsed tree node).
pub fn sample_entries(stsd: &RawBox<'_>) -> Result<Vec<SampleEntry>> {
    let children = stsd.children.as_ref().ok_or(Error::Missing(STSD))?;
    let mut out = Vec::with_capacity(children.len());
    for e in children {
        let prefix = e.body();
        let kind = match &e.typ.0 {
            b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"encv" => {
                let mut r = Reader::new(prefix, e.typ);
                r.skip(8 + 16)?;
                EntryKind::Visual { width: r.u16()?, height: r.u16()? }
            }
            b"mp4a" | b"enca" => {
                let mut r = Reader::new(prefix, e.typ);
                r.skip(8)?;
                let version = r.u16()?;
                if version != 0 {
                    return Err(Error::Unsupported { what: e.typ, detail: "audio sample entry version" });
                }
                r.skip(6)?;
                let channels = r.u16()?;
                let sample_size = r.u16()?;
                r.skip(4)?;
                EntryKind::Audio { channels, sample_size, sample_rate: r.u32()? >> 16 }
            }
            _ => EntryKind::Other,
        };
        let children = e
            .children
            .iter()
            .flatten()
            .map(|c| {
                let mut v = Vec::new();
                c.encode(&mut v);
                let h = if c.large { 16 } else { 8 };
                (c.typ, v[h..].to_vec())
            })
            .collect();
        out.push(SampleEntry { fourcc: e.typ, kind, children });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    #[test]
    fn audio_entry() {
        // stsd { mp4a { esds(short) } }, as ffmpeg writes it (trimmed esds).
        let mut mp4a = hex("000000000000000100000000000000000002001000000000bb800000");
        mp4a.extend_from_slice(&hex("0000000c65736473 00000000"));
        let mut stsd_body = hex("0000000000000001");
        crate::write_box(&mut stsd_body, MP4A, |o| o.extend_from_slice(&mp4a));
        let mut stsd = Vec::new();
        crate::write_box(&mut stsd, STSD, |o| o.extend_from_slice(&stsd_body));
        let tree = RawBox::parse_all(&stsd).unwrap();
        let e = sample_entries(&tree[0]).unwrap();
        assert_eq!(e[0].kind, EntryKind::Audio { channels: 2, sample_size: 16, sample_rate: 48000 });
        assert_eq!(e[0].child(ESDS), Some(&[0u8, 0, 0, 0][..]));
    }
}
