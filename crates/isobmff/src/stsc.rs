//! `stsc`: sample to chunk (ISO/IEC 14496-12 §8.7.4): runs of chunks with the same number of
//! samples, each run starting at `first_chunk` and lasting until the next entry's.

use crate::fourcc::types::STSC;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// From chunk `first_chunk` (from 1) on, `samples_per_chunk` samples per chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StscEntry {
    /// First chunk of the run, from 1.
    pub first_chunk: u32,
    /// Samples in each of its chunks.
    pub samples_per_chunk: u32,
    /// Sample description index, from 1.
    pub sample_description_index: u32,
}

/// Sample-to-chunk box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stsc {
    /// Runs; `first_chunk` must increase (a reader checks it).
    pub entries: Vec<StscEntry>,
}

impl Atom for Stsc {
    const TYPE: FourCC = STSC;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let _ = r.version_flags()?;
        let n = r.u32()?;
        let n = r.check_count(n as u64, 12)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(StscEntry { first_chunk: r.u32()?, samples_per_chunk: r.u32()?, sample_description_index: r.u32()? });
        }
        r.finish()?;
        Ok(Stsc { entries })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            out.put_u32(e.first_chunk);
            out.put_u32(e.samples_per_chunk);
            out.put_u32(e.sample_description_index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let s: Stsc = crate::testutil::round_trip("00000028 73747363 00000000 00000002 00000001 00000002 00000001 00000095 00000001 00000001");
        assert_eq!(s.entries[1], StscEntry { first_chunk: 149, samples_per_chunk: 1, sample_description_index: 1 });
    }
}
