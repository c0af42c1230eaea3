//! `trex`: per-track fragment defaults.

use crate::fourcc::types::TREX;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Track extends defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trex {
    /// Track ID.
    pub track_id: u32,
    /// Default sample description index.
    pub default_sample_description_index: u32,
    /// Default sample duration.
    pub default_sample_duration: u32,
    /// Default sample size.
    pub default_sample_size: u32,
    /// Default sample flags.
    pub default_sample_flags: u32,
}

impl Atom for Trex {
    const TYPE: FourCC = TREX;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        r.version_flags()?;
        let t = Trex {
            track_id: r.u32()?,
            default_sample_description_index: r.u32()?,
            default_sample_duration: r.u32()?,
            default_sample_size: r.u32()?,
            default_sample_flags: r.u32()?,
        };
        r.finish()?;
        Ok(t)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.track_id);
        out.put_u32(self.default_sample_description_index);
        out.put_u32(self.default_sample_duration);
        out.put_u32(self.default_sample_size);
        out.put_u32(self.default_sample_flags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t: Trex = crate::testutil::round_trip("0000002074726578000000000000000100000001000000000000000000000000");
        assert_eq!(t.track_id, 1);
    }
}
