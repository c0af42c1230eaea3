//! `ctts`: composition time to sample (ISO/IEC 14496-12 §8.6.1.3). Version 0 offsets are
//! unsigned, version 1 signed (negative offsets, no edit list needed for B-frames).

use crate::fourcc::types::CTTS;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// `count` consecutive samples with composition offset `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CttsEntry {
    /// Samples in the run.
    pub count: u32,
    /// Composition minus decode time (media timescale).
    pub offset: i64,
}

/// Composition offset box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctts {
    /// 0 (unsigned offsets) or 1 (signed).
    pub version: u8,
    /// Runs in decode order.
    pub entries: Vec<CttsEntry>,
}

impl Atom for Ctts {
    const TYPE: FourCC = CTTS;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, _) = r.version_flags()?;
        let n = r.u32()?;
        let n = r.check_count(n as u64, 8)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let count = r.u32()?;
            let raw = r.u32()?;
            // Version 0 is unsigned in the standard; writers that put negative values in a
            // version 0 box exist, but a value over 2^31 is then a lie either way.
            let offset = if version == 0 { raw as i64 } else { raw as i32 as i64 };
            entries.push(CttsEntry { count, offset });
        }
        r.finish()?;
        Ok(Ctts { version, entries })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32((self.version as u32) << 24);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            out.put_u32(e.count);
            out.put_u32(e.offset as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let c: Ctts = crate::testutil::round_trip("00000020 63747473 01000000 00000002 00000001 00000400 00000002 fffffe00");
        assert_eq!(c.entries[1], CttsEntry { count: 2, offset: -512 });
        let c: Ctts = crate::testutil::round_trip("00000018 63747473 00000000 00000001 00000003 fffffe00");
        assert_eq!(c.entries[0].offset, 0xffff_fe00);
    }
}
