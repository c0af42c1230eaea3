//! `stts`: decoding time to sample (ISO/IEC 14496-12 §8.6.1.2), run-length coded durations.

use crate::fourcc::types::STTS;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// `count` consecutive samples of duration `delta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SttsEntry {
    /// Samples in the run.
    pub count: u32,
    /// Their duration (media timescale).
    pub delta: u32,
}

/// Time-to-sample box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stts {
    /// Runs in decode order. Their counts are declared, not backed by bytes: a reader bounds
    /// them by the sample count.
    pub entries: Vec<SttsEntry>,
}

impl Atom for Stts {
    const TYPE: FourCC = STTS;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let _ = r.version_flags()?;
        let n = r.u32()?;
        let n = r.check_count(n as u64, 8)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(SttsEntry { count: r.u32()?, delta: r.u32()? });
        }
        r.finish()?;
        Ok(Stts { entries })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            out.put_u32(e.count);
            out.put_u32(e.delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Stts = crate::testutil::round_trip("00000020 73747473 00000000 00000002 00000118 00000400 00000001 00000200");
        assert_eq!(s.entries, vec![SttsEntry { count: 280, delta: 1024 }, SttsEntry { count: 1, delta: 512 }]);
    }
    #[test]
    fn count_beyond_the_box_is_refused() {
        assert!(Stts::decode(&crate::testutil::hex("00000018 73747473 00000000 00000002 00000118 00000400")).is_err());
    }
}
