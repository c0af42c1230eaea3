//! `ftyp` / `styp`: brands.

use crate::fourcc::types::FTYP;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// File type box body (also the body of `styp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ftyp {
    /// Major brand.
    pub major_brand: FourCC,
    /// Minor version.
    pub minor_version: u32,
    /// Compatible brands.
    pub compatible_brands: Vec<FourCC>,
}

impl Atom for Ftyp {
    const TYPE: FourCC = FTYP;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let major_brand = r.fourcc()?;
        let minor_version = r.u32()?;
        let n = r.check_count((r.remaining() / 4) as u64, 4)?;
        let compatible_brands = (0..n).map(|_| r.fourcc()).collect::<Result<_>>()?;
        r.finish()?;
        Ok(Ftyp { major_brand, minor_version, compatible_brands })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.major_brand.0);
        out.put_u32(self.minor_version);
        for b in &self.compatible_brands {
            out.extend_from_slice(&b.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let f: Ftyp = crate::testutil::round_trip("0000001c6674797069736f360000020069736f36636d66636d703431");
        assert_eq!(f.major_brand, FourCC::new(b"iso6"));
        assert_eq!(f.compatible_brands.len(), 3);
    }
}
