//! `stz2`: compact sample sizes (ISO/IEC 14496-12 §8.7.3.3): 4, 8 or 16 bits per sample.

use crate::fourcc::types::STZ2;
use crate::writer::Put;
use crate::{Atom, Error, FourCC, Reader, Result};

/// Compact sample size box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stz2 {
    /// Bits per entry: 4, 8 or 16.
    pub field_size: u8,
    /// Per-sample sizes.
    pub sizes: Vec<u32>,
}

impl Atom for Stz2 {
    const TYPE: FourCC = STZ2;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let _ = r.version_flags()?;
        let field_size = (r.u32()? & 0xff) as u8;
        let count = r.u32()? as u64;
        let bytes = match field_size {
            4 => count.div_ceil(2),
            8 => count,
            16 => count.saturating_mul(2),
            _ => return Err(Error::Invalid { what: STZ2, detail: "field size is not 4, 8 or 16" }),
        };
        r.check_count(bytes, 1)?;
        let mut sizes = Vec::with_capacity(count as usize);
        let mut i = 0;
        while i < count {
            match field_size {
                4 => {
                    let b = r.u8()?;
                    sizes.push((b >> 4) as u32);
                    if i + 1 < count {
                        sizes.push((b & 0xf) as u32);
                    }
                    i += 2;
                }
                8 => {
                    sizes.push(r.u8()? as u32);
                    i += 1;
                }
                _ => {
                    sizes.push(r.u16()? as u32);
                    i += 1;
                }
            }
        }
        r.finish()?;
        Ok(Stz2 { field_size, sizes })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.field_size as u32);
        out.put_u32(self.sizes.len() as u32);
        match self.field_size {
            4 => {
                for pair in self.sizes.chunks(2) {
                    let lo = pair.get(1).copied().unwrap_or(0);
                    out.push(((pair[0] as u8) << 4) | (lo as u8 & 0xf));
                }
            }
            8 => out.extend(self.sizes.iter().map(|s| *s as u8)),
            _ => {
                for s in &self.sizes {
                    out.put_u16(*s as u16);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Stz2 = crate::testutil::round_trip("00000016 73747a32 00000000 00000004 00000003 ab c0");
        assert_eq!(s.sizes, vec![0xa, 0xb, 0xc]);
        let s: Stz2 = crate::testutil::round_trip("00000018 73747a32 00000000 00000010 00000002 0102 0304");
        assert_eq!(s.sizes, vec![0x102, 0x304]);
    }
    #[test]
    fn bad_field_size_is_refused() {
        assert!(Stz2::decode(&crate::testutil::hex("00000014 73747a32 00000000 00000005 00000000")).is_err());
    }
}
