//! Box headers and iteration over sibling boxes.

use crate::{Error, FourCC, Result};

/// A parsed box header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    /// Box type.
    pub typ: FourCC,
    /// Whole box size, header included.
    pub size: u64,
    /// Header length: 8, 16 (64-bit size), plus 16 for `uuid` boxes' user type is NOT included.
    pub header_len: u8,
    /// The size field was 0: the box runs to the end of its parent (or the file).
    pub to_end: bool,
}

impl BoxHeader {
    /// Parses the header at the start of `buf`. `Ok(None)` when fewer than 8 bytes remain.
    ///
    /// `remaining` is how many bytes the box may span from its start (its parent's end or the
    /// file's length); a size of 0 ("to the end") is resolved against it. The box is NOT
    /// required to fit in `buf`: index building reads headers of boxes it will skip.
    pub fn parse(buf: &[u8], remaining: u64) -> Result<Option<BoxHeader>> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let typ = FourCC([buf[4], buf[5], buf[6], buf[7]]);
        let (size, header_len) = match size32 {
            0 => (remaining, 8u8),
            1 => {
                if buf.len() < 16 {
                    return Err(Error::Truncated { what: typ, need: 16, have: buf.len() as u64 });
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[8..16]);
                (u64::from_be_bytes(b), 16u8)
            }
            n => (n as u64, 8u8),
        };
        if size < header_len as u64 || size > remaining {
            return Err(Error::BadSize { what: typ, size });
        }
        Ok(Some(BoxHeader { typ, size, header_len, to_end: size32 == 0 }))
    }
}

/// Iterates over the boxes laid one after another in a byte slice, yielding each header with
/// its body. A box that claims more bytes than the slice holds is an error, not a panic.
pub struct BoxIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BoxIter<'a> {
    /// Iterates over the boxes in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        BoxIter { buf, pos: 0, failed: false }
    }
    /// Offset of the next box within the slice.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BoxIter<'a> {
    type Item = Result<(BoxHeader, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let h = match BoxHeader::parse(rest, rest.len() as u64) {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.failed = true;
                return Some(Err(Error::Truncated { what: FourCC::default(), need: 8, have: rest.len() as u64 }));
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        // size <= rest.len() was checked by parse (remaining = rest.len()).
        let body = &rest[h.header_len as usize..h.size as usize];
        self.pos += h.size as usize;
        Some(Ok((h, body)))
    }
}

/// Finds the first child box of type `typ` among the boxes in `buf`; its body.
pub fn find(buf: &[u8], typ: FourCC) -> Result<Option<&[u8]>> {
    for item in BoxIter::new(buf) {
        let (h, body) = item?;
        if h.typ == typ {
            return Ok(Some(body));
        }
    }
    Ok(None)
}

/// Like [`find`] but the box is required.
pub fn require(buf: &[u8], typ: FourCC) -> Result<&[u8]> {
    find(buf, typ)?.ok_or(Error::Missing(typ))
}

/// Follows a path of container types from `buf` (e.g. `[MDIA, MINF, STBL, STSD]`).
pub fn require_path<'a>(mut buf: &'a [u8], path: &[FourCC]) -> Result<&'a [u8]> {
    for &t in path {
        buf = require(buf, t)?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::hex;

    #[test]
    fn iterates_and_bounds() {
        let b = hex("0000000c 66726565 01020304 00000008 736b6970");
        let v: Vec<_> = BoxIter::new(&b).map(|r| r.unwrap()).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0.typ, FourCC::new(b"free"));
        assert_eq!(v[0].1, &[1, 2, 3, 4]);
        assert_eq!(v[1].1.len(), 0);
    }

    #[test]
    fn hostile_sizes_are_errors() {
        for h in ["000000ff 66726565 00", "00000004 66726565", "00000001 66726565 00000000", "00000001 66726565 ffffffffffffffff"] {
            let b = hex(h);
            let r: Vec<_> = BoxIter::new(&b).collect();
            assert!(r.iter().any(|x| x.is_err()), "{h}");
        }
    }

    #[test]
    fn large_size_and_size_zero() {
        let b = hex("00000001 6d646174 0000000000000012 aabb");
        let (h, body) = BoxIter::new(&b).next().unwrap().unwrap();
        assert_eq!((h.size, h.header_len, body), (18, 16, &[0xaa, 0xbb][..]));
        let h = BoxHeader::parse(&hex("00000000 6d646174"), 100).unwrap().unwrap();
        assert_eq!(h.size, 100);
    }
}
