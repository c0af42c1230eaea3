//! `co64`: 64-bit chunk offsets (ISO/IEC 14496-12 §8.7.5), for files over 4 GiB.

use crate::fourcc::types::CO64;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// 64-bit chunk offset box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Co64 {
    /// File offset of each chunk.
    pub offsets: Vec<u64>,
}

impl Atom for Co64 {
    const TYPE: FourCC = CO64;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let _ = r.version_flags()?;
        let n = r.u32()?;
        let n = r.check_count(n as u64, 8)?;
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            offsets.push(r.u64()?);
        }
        r.finish()?;
        Ok(Co64 { offsets })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.offsets.len() as u32);
        for o in &self.offsets {
            out.put_u64(*o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Co64 = crate::testutil::round_trip("00000020 636f3634 00000000 00000002 0000000100000000 0000000000001f00");
        assert_eq!(s.offsets, vec![1 << 32, 0x1f00]);
    }
}
