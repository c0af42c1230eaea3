//! `stco`: 32-bit chunk offsets (ISO/IEC 14496-12 §8.7.5); see [`crate::co64`] for 64-bit.

use crate::fourcc::types::STCO;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Chunk offset box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stco {
    /// File offset of each chunk.
    pub offsets: Vec<u32>,
}

impl Atom for Stco {
    const TYPE: FourCC = STCO;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let _ = r.version_flags()?;
        let n = r.u32()?;
        let n = r.check_count(n as u64, 4)?;
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            offsets.push(r.u32()?);
        }
        r.finish()?;
        Ok(Stco { offsets })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.offsets.len() as u32);
        for o in &self.offsets {
            out.put_u32(*o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Stco = crate::testutil::round_trip("00000018 7374636f 00000000 00000002 00001726 00001f00");
        assert_eq!(s.offsets, vec![0x1726, 0x1f00]);
    }
}
