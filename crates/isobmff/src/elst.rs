//! `elst`: edit list (we read the first edit's media time to align tracks).

use crate::fourcc::types::ELST;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// One edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    /// Duration in the movie timescale.
    pub segment_duration: u64,
    /// Start in media time; -1 for an empty edit.
    pub media_time: i64,
    /// Rate, 16.16 integer and fraction.
    pub media_rate: u32,
}

/// Edit list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elst {
    /// Version.
    pub version: u8,
    /// Edits.
    pub entries: Vec<Edit>,
}

impl Atom for Elst {
    const TYPE: FourCC = ELST;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, _) = r.version_flags()?;
        let n = r.u32()?;
        let n = r.check_count(n as u64, if version == 1 { 20 } else { 12 })?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let (segment_duration, media_time) =
                if version == 1 { (r.u64()?, r.i64()?) } else { (r.u32()? as u64, r.i32()? as i64) };
            entries.push(Edit { segment_duration, media_time, media_rate: r.u32()? });
        }
        r.finish()?;
        Ok(Elst { version, entries })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32((self.version as u32) << 24);
        out.put_u32(self.entries.len() as u32);
        for e in &self.entries {
            if self.version == 1 {
                out.put_u64(e.segment_duration);
                out.put_u64(e.media_time as u64);
            } else {
                out.put_u32(e.segment_duration as u32);
                out.put_i32(e.media_time as i32);
            }
            out.put_u32(e.media_rate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let e: Elst = crate::testutil::round_trip("0000001c656c737400000000000000010000271000000bb800010000");
        assert_eq!(e.entries[0].media_time, 3000);
    }
}
