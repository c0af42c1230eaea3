//! `stss`: sync sample table (ISO/IEC 14496-12 §8.6.2). Absent: every sample is a sync sample.

use crate::fourcc::types::STSS;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Sync sample box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stss {
    /// Sample numbers (from 1) of the sync samples, in increasing order.
    pub samples: Vec<u32>,
}

impl Atom for Stss {
    const TYPE: FourCC = STSS;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let _ = r.version_flags()?;
        let n = r.u32()?;
        let n = r.check_count(n as u64, 4)?;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            samples.push(r.u32()?);
        }
        r.finish()?;
        Ok(Stss { samples })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.samples.len() as u32);
        for s in &self.samples {
            out.put_u32(*s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Stss = crate::testutil::round_trip("0000001c 73747373 00000000 00000003 00000001 00000033 00000065");
        assert_eq!(s.samples, vec![1, 51, 101]);
    }
}
