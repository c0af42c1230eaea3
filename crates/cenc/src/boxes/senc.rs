//! `senc`: per-sample IVs and subsample maps of one track fragment (ISO/IEC 23001-7 §7.2).

use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, Error, FourCC, Reader, Result};

use super::types::SENC;
use crate::subsample::Subsample;

/// The aux info of one sample.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SencSample {
    /// The IV; only the first `iv_size` bytes of the box are meaningful (the rest are 0).
    pub iv: [u8; 16],
    /// Subsamples (written when the box has [`Senc::USE_SUBSAMPLES`]).
    pub subsamples: Vec<Subsample>,
}

/// Sample encryption box.
///
/// Its IV size is not in the box: it comes from `tenc` (or `seig`), so it is a field here
/// and [`Senc::decode_with_iv_size`] takes it. [`Atom::decode`] guesses it (8, 16, then 0:
/// the first that parses exactly), which is enough for tests and dumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Senc {
    /// Version (0).
    pub version: u8,
    /// Flags: [`Senc::USE_SUBSAMPLES`].
    pub flags: u32,
    /// Per-sample IV size: 0, 8 or 16.
    pub iv_size: u8,
    /// One entry per sample of the fragment.
    pub samples: Vec<SencSample>,
}

impl Senc {
    /// Flag: every sample carries a subsample map.
    pub const USE_SUBSAMPLES: u32 = 0x2;

    /// An empty `senc`.
    pub fn new(iv_size: u8, subsamples: bool) -> Self {
        Senc { version: 0, flags: if subsamples { Self::USE_SUBSAMPLES } else { 0 }, iv_size, samples: Vec::new() }
    }

    /// Whether samples carry subsample maps.
    pub fn has_subsamples(&self) -> bool {
        self.flags & Self::USE_SUBSAMPLES != 0
    }

    /// Bytes of aux info of one sample (what `saiz` lists).
    pub fn aux_size(&self, s: &SencSample) -> usize {
        self.iv_size as usize + if self.has_subsamples() { 2 + 6 * s.subsamples.len() } else { 0 }
    }

    /// Whether no sample has any aux info (constant IV, whole-sample encryption): then
    /// `saiz`/`saio` are omitted (ISO/IEC 23001-7 says they should be, Shaka Packager does).
    pub fn is_aux_empty(&self) -> bool {
        self.iv_size == 0 && !self.has_subsamples()
    }

    /// Decodes a whole `senc` box whose per-sample IVs are `iv_size` bytes.
    pub fn decode_with_iv_size(buf: &[u8], iv_size: u8) -> Result<Self> {
        let mut it = sealcast_isobmff::BoxIter::new(buf);
        let (h, body) = it.next().ok_or(Error::Missing(SENC))??;
        if h.typ != SENC {
            return Err(Error::UnexpectedBox { expected: SENC, found: h.typ });
        }
        Self::decode_body_with(&mut Reader::new(body, SENC), iv_size)
    }

    fn decode_body_with(r: &mut Reader<'_>, iv_size: u8) -> Result<Self> {
        if !matches!(iv_size, 0 | 8 | 16) {
            return Err(Error::Invalid { what: SENC, detail: "IV size" });
        }
        let (version, flags) = r.version_flags()?;
        let count = r.u32()?;
        let subs = flags & Self::USE_SUBSAMPLES != 0;
        let min = iv_size as u64 + if subs { 2 } else { 0 };
        let n = r.check_count(count as u64, min)?;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = SencSample::default();
            s.iv[..iv_size as usize].copy_from_slice(r.take(iv_size as usize)?);
            if subs {
                let k = r.u16()?;
                let k = r.check_count(k as u64, 6)?;
                s.subsamples.reserve_exact(k);
                for _ in 0..k {
                    s.subsamples.push(Subsample { clear: r.u16()?, protected: r.u32()? });
                }
            }
            samples.push(s);
        }
        r.finish()?;
        Ok(Senc { version, flags, iv_size, samples })
    }
}

impl Atom for Senc {
    const TYPE: FourCC = SENC;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let body = r.take(r.remaining())?;
        let mut last = Error::Invalid { what: SENC, detail: "no IV size fits" };
        for iv_size in [8, 16, 0] {
            match Self::decode_body_with(&mut Reader::new(body, SENC), iv_size) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.reserve(8 + self.samples.iter().map(|s| self.aux_size(s)).sum::<usize>());
        out.put_u32(((self.version as u32) << 24) | (self.flags & 0x00ff_ffff));
        out.put_u32(self.samples.len() as u32);
        let subs = self.has_subsamples();
        for s in &self.samples {
            out.extend_from_slice(&s.iv[..self.iv_size as usize]);
            if subs {
                out.put_u16(s.subsamples.len() as u16);
                for x in &s.subsamples {
                    out.put_u16(x.clear);
                    out.put_u32(x.protected);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, round_trip};

    #[test]
    fn round_trips() {
        // Two samples, 8-byte IVs, subsamples (the first with two entries).
        let h = "00000036 73656e63 00000002 00000002
                 0123456789abcdef 0002 0010 00000100 0005 00000000
                 0123456789abcdf0 0001 0060 00000020";
        let s: Senc = round_trip(h);
        assert_eq!(s.iv_size, 8);
        assert_eq!(s.samples[0].subsamples, vec![Subsample { clear: 16, protected: 256 }, Subsample { clear: 5, protected: 0 }]);
        assert_eq!(s.aux_size(&s.samples[0]), 8 + 2 + 12);
        assert_eq!(Senc::decode_with_iv_size(&hex(h), 8).unwrap(), s);
        assert!(Senc::decode_with_iv_size(&hex(h), 16).is_err());
        // Whole-sample cenc audio: IVs only.
        let s: Senc = round_trip("00000020 73656e63 00000000 00000002 0123456789abcdef 0123456789abcdf0");
        assert!(!s.has_subsamples());
        // cbcs audio as Shaka Packager writes it: a count and nothing else.
        let s = Senc::decode_with_iv_size(&hex("00000010 73656e63 00000000 0000005e"), 0).unwrap();
        assert_eq!((s.samples.len(), s.is_aux_empty()), (94, true));
        assert_eq!(s.to_vec(), hex("00000010 73656e63 00000000 0000005e"));
    }

    #[test]
    fn hostile_counts() {
        assert!(Senc::decode_with_iv_size(&hex("00000010 73656e63 00000002 ffffffff"), 8).is_err());
        assert!(Senc::decode_with_iv_size(&hex("00000018 73656e63 00000002 00000001 0123456789abcdef"), 8).is_err());
        assert!(Senc::decode_with_iv_size(&hex("0000001a 73656e63 00000002 00000001 0123456789abcdef ffff"), 8).is_err());
    }
}
