//! `sinf` (protection scheme information) and its `schi` (scheme information) container.

use sealcast_isobmff::{write_box, Atom, BoxIter, Error, FourCC, Reader, Result};

use super::types::{FRMA, SCHI, SCHM, SINF, TENC};
use super::{Frma, Schm, Tenc};

/// Protection scheme information: `frma`, `schm`, `schi { tenc }`.
///
/// Written in that order (Shaka Packager's and mp4ff's). Children we do not model are kept
/// as whole boxes and written after the known ones, so a decode-encode keeps every byte but
/// may reorder unknown boxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sinf {
    /// Original format.
    pub frma: Frma,
    /// Scheme type.
    pub schm: Option<Schm>,
    /// `tenc` inside `schi`; `schi` is written when this or `schi_extra` is present.
    pub tenc: Option<Tenc>,
    /// Other `schi` children, whole boxes.
    pub schi_extra: Vec<Vec<u8>>,
    /// Other `sinf` children, whole boxes.
    pub extra: Vec<Vec<u8>>,
}

impl Sinf {
    /// A Common Encryption `sinf`.
    pub fn new(original: FourCC, scheme: FourCC, tenc: Tenc) -> Self {
        Sinf { frma: Frma { data_format: original }, schm: Some(Schm::common(scheme)), tenc: Some(tenc), schi_extra: Vec::new(), extra: Vec::new() }
    }
}

fn whole(body: &[u8], h: &sealcast_isobmff::BoxHeader) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    write_box(&mut v, h.typ, |o| o.extend_from_slice(body));
    v
}

impl Atom for Sinf {
    const TYPE: FourCC = SINF;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let body = r.take(r.remaining())?;
        let (mut frma, mut schm, mut tenc, mut schi_extra, mut extra) = (None, None, None, Vec::new(), Vec::new());
        for item in BoxIter::new(body) {
            let (h, b) = item?;
            match h.typ {
                FRMA => frma = Some(Frma::decode_body(&mut Reader::new(b, FRMA))?),
                SCHM => schm = Some(Schm::decode_body(&mut Reader::new(b, SCHM))?),
                SCHI => {
                    for item in BoxIter::new(b) {
                        let (h, b) = item?;
                        if h.typ == TENC && tenc.is_none() {
                            tenc = Some(Tenc::decode_body(&mut Reader::new(b, TENC))?);
                        } else {
                            schi_extra.push(whole(b, &h));
                        }
                    }
                }
                _ => extra.push(whole(b, &h)),
            }
        }
        let frma = frma.ok_or(Error::Missing(FRMA))?;
        Ok(Sinf { frma, schm, tenc, schi_extra, extra })
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        self.frma.encode(out);
        if let Some(s) = &self.schm {
            s.encode(out);
        }
        if self.tenc.is_some() || !self.schi_extra.is_empty() {
            write_box(out, SCHI, |o| {
                if let Some(t) = &self.tenc {
                    t.encode(o);
                }
                for x in &self.schi_extra {
                    o.extend_from_slice(x);
                }
            });
        }
        for x in &self.extra {
            out.extend_from_slice(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::round_trip;

    #[test]
    fn round_trips_shaka_packager_sinf() {
        // The sinf Shaka Packager 3.8 writes for cbcs H.264 with the ORACLES.md test values.
        let s: Sinf = round_trip(
            "00000061 73696e66 0000000c 66726d61 61766331 00000014 7363686d 00000000 63626373 00010000
             00000039 73636869 00000031 74656e63 01000000 00190100 abba271e8bcf552bbd2e86a434a9a5d9
             10 0123456789abcdef0123456789abcdef",
        );
        assert_eq!(s.frma.data_format, FourCC::new(b"avc1"));
        let t = s.tenc.clone().unwrap();
        assert_eq!(s, Sinf::new(FourCC::new(b"avc1"), FourCC::new(b"cbcs"), t));
        // Unknown children survive.
        let s: Sinf = round_trip("00000024 73696e66 0000000c 66726d61 6d703461 00000010 73636869 00000008 66726565");
        assert_eq!(s.schi_extra.len(), 1);
    }
}
