//! `stsz`: sample sizes (ISO/IEC 14496-12 §8.7.3.2): one size for all, or one per sample.

use crate::fourcc::types::STSZ;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Sample size box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stsz {
    /// Size of every sample when not 0; then `sizes` is empty and `sample_count` is declared
    /// only (a reader bounds it by the bytes the samples would take).
    pub sample_size: u32,
    /// Number of samples.
    pub sample_count: u32,
    /// Per-sample sizes when `sample_size` is 0.
    pub sizes: Vec<u32>,
}

impl Atom for Stsz {
    const TYPE: FourCC = STSZ;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let _ = r.version_flags()?;
        let sample_size = r.u32()?;
        let sample_count = r.u32()?;
        let mut sizes = Vec::new();
        if sample_size == 0 {
            let n = r.check_count(sample_count as u64, 4)?;
            sizes.reserve_exact(n);
            for _ in 0..n {
                sizes.push(r.u32()?);
            }
        }
        r.finish()?;
        Ok(Stsz { sample_size, sample_count, sizes })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.sample_size);
        out.put_u32(self.sample_count);
        for s in &self.sizes {
            out.put_u32(*s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Stsz = crate::testutil::round_trip("0000001c 7374737a 00000000 00000000 00000002 00001234 00000010");
        assert_eq!(s.sizes, vec![0x1234, 16]);
        let s: Stsz = crate::testutil::round_trip("00000014 7374737a 00000000 00000006 00989680");
        assert_eq!((s.sample_size, s.sample_count, s.sizes.len()), (6, 10_000_000, 0));
    }
    #[test]
    fn count_beyond_the_box_is_refused() {
        assert!(Stsz::decode(&crate::testutil::hex("00000018 7374737a 00000000 00000000 00989680 00000010")).is_err());
    }
}
