//! A raw box tree: containers are split into children, every other box is kept as bytes.
//!
//! This is what lets us rewrite an init segment (keep one `trak`, rename a sample entry, add
//! a `sinf`) while every byte we do not touch — including boxes we do not know — passes
//! through unchanged. Leaves borrow from the input; edits replace them with owned bytes.

use std::borrow::Cow;

use crate::fourcc::types::*;
use crate::{BoxIter, Error, FourCC, Result};

/// One box: type, header form, and either raw body bytes or a prefix plus child boxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBox<'a> {
    /// Box type.
    pub typ: FourCC,
    /// Whether the source used the 64-bit size form (kept for an exact round trip).
    pub large: bool,
    /// Whether the source wrote size 0 ("to the end"); kept for an exact round trip when the
    /// box is still last. Edited trees should clear it.
    pub to_end: bool,
    /// For containers: the bytes before the first child (full-box fields, sample entry
    /// fields, `stsd` entry count). Empty for plain containers; the whole body for leaves.
    pub prefix: Cow<'a, [u8]>,
    /// Child boxes; `None` for leaves.
    pub children: Option<Vec<RawBox<'a>>>,
}

/// How many body bytes precede the children of a container type, or `None` for a leaf.
fn container_prefix(typ: FourCC) -> Option<usize> {
    Some(match &typ.0 {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"mvex" | b"edts" | b"dinf" | b"moof" | b"traf"
        | b"sinf" | b"schi" | b"mfra" => 0,
        // stsd: version/flags + entry_count.
        b"stsd" => 8,
        // VisualSampleEntry: 6 reserved + 2 data_reference_index + 70 bytes of fields.
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" | b"encv" => 78,
        // AudioSampleEntry (v0): 6 + 2 + 20.
        b"mp4a" | b"enca" => 28,
        _ => return None,
    })
}

impl<'a> RawBox<'a> {
    /// Parses every box in `buf` into trees.
    pub fn parse_all(buf: &'a [u8]) -> Result<Vec<RawBox<'a>>> {
        Self::parse_depth(buf, 0)
    }

    fn parse_depth(buf: &'a [u8], depth: u32) -> Result<Vec<RawBox<'a>>> {
        // Bound recursion: hostile input could nest containers deeply.
        if depth > 16 {
            return Err(Error::Invalid { what: FourCC::default(), detail: "boxes nested too deeply" });
        }
        let mut out = Vec::new();
        for item in BoxIter::new(buf) {
            let (h, body) = item?;
            let large = h.header_len == 16;
            let to_end = h.to_end;
            match container_prefix(h.typ) {
                Some(p) if body.len() >= p => out.push(RawBox {
                    typ: h.typ,
                    large,
                    to_end,
                    prefix: Cow::Borrowed(&body[..p]),
                    children: Some(Self::parse_depth(&body[p..], depth + 1)?),
                }),
                Some(_) => return Err(Error::Truncated { what: h.typ, need: 0, have: body.len() as u64 }),
                None => out.push(RawBox { typ: h.typ, large, to_end, prefix: Cow::Borrowed(body), children: None }),
            }
        }
        Ok(out)
    }

    /// A new leaf with an owned body.
    pub fn leaf(typ: FourCC, body: Vec<u8>) -> RawBox<'static> {
        RawBox { typ, large: false, to_end: false, prefix: Cow::Owned(body), children: None }
    }

    /// The leaf's body (or a container's prefix).
    pub fn body(&self) -> &[u8] {
        &self.prefix
    }

    /// First child of type `t`.
    pub fn child(&self, t: FourCC) -> Option<&RawBox<'a>> {
        self.children.as_ref()?.iter().find(|c| c.typ == t)
    }

    /// First child of type `t`, mutable.
    pub fn child_mut(&mut self, t: FourCC) -> Option<&mut RawBox<'a>> {
        self.children.as_mut()?.iter_mut().find(|c| c.typ == t)
    }

    /// Follows a path of child types.
    pub fn path(&self, p: &[FourCC]) -> Option<&RawBox<'a>> {
        let mut b = self;
        for &t in p {
            b = b.child(t)?;
        }
        Some(b)
    }

    /// Follows a path of child types, mutable.
    pub fn path_mut(&mut self, p: &[FourCC]) -> Option<&mut RawBox<'a>> {
        let mut b = self;
        for &t in p {
            b = b.child_mut(t)?;
        }
        Some(b)
    }

    /// Size of the encoded box.
    pub fn encoded_len(&self) -> u64 {
        let body = self.prefix.len() as u64 + self.children.iter().flatten().map(|c| c.encoded_len()).sum::<u64>();
        let h = if self.large || body + 8 > u32::MAX as u64 { 16 } else { 8 };
        body + h
    }

    /// Appends the encoded box to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let size = self.encoded_len();
        if self.to_end && !self.large {
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&self.typ.0);
        } else if self.large || size > u32::MAX as u64 {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&self.typ.0);
            out.extend_from_slice(&size.to_be_bytes());
        } else {
            out.extend_from_slice(&(size as u32).to_be_bytes());
            out.extend_from_slice(&self.typ.0);
        }
        out.extend_from_slice(&self.prefix);
        for c in self.children.iter().flatten() {
            c.encode(out);
        }
    }

    /// Turns every borrowed part into owned data.
    pub fn into_owned(self) -> RawBox<'static> {
        RawBox {
            typ: self.typ,
            large: self.large,
            to_end: self.to_end,
            prefix: Cow::Owned(self.prefix.into_owned()),
            children: self.children.map(|v| v.into_iter().map(RawBox::into_owned).collect()),
        }
    }
}

/// Writes a text dump of a box tree (type, size; nested by indentation), for `inspect` and
/// golden files.
pub fn dump(boxes: &[RawBox<'_>], depth: usize, out: &mut String) {
    use std::fmt::Write;
    for b in boxes {
        let _ = writeln!(out, "{:indent$}{} {}", "", b.typ, b.encoded_len(), indent = depth * 2);
        if let Some(c) = &b.children {
            dump(c, depth + 1, out);
        }
    }
}

/// Paths used by callers that walk a `trak`.
pub const STSD_PATH: [FourCC; 4] = [MDIA, MINF, STBL, STSD];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_round_trip_is_exact() {
        // moov { mvex { trex } , udta(unknown leaf) } with a 64-bit header on udta.
        let trex = crate::testutil::hex("00000020 74726578 00000000 00000001 00000001 00000000 00000000 00010000");
        let mut mvex = vec![0, 0, 0, 0x28, b'm', b'v', b'e', b'x'];
        mvex.extend_from_slice(&trex);
        let udta = crate::testutil::hex("00000001 75647461 0000000000000012 abcd");
        let mut moov = Vec::new();
        crate::write_box(&mut moov, MOOV, |o| {
            o.extend_from_slice(&mvex);
            o.extend_from_slice(&udta);
        });
        let t = RawBox::parse_all(&moov).unwrap();
        let mut out = Vec::new();
        t[0].encode(&mut out);
        assert_eq!(out, moov);
        assert!(t[0].path(&[MVEX, TREX]).is_some());
    }
}
