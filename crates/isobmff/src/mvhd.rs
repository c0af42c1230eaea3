//! `mvhd`: movie timescale and duration. Only the fields we use are decoded; the rest of
//! the body is kept as bytes.

use crate::fourcc::types::MVHD;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Movie header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mvhd {
    /// Version (0: 32-bit times, 1: 64-bit).
    pub version: u8,
    /// Flags.
    pub flags: u32,
    /// Creation time.
    pub creation_time: u64,
    /// Modification time.
    pub modification_time: u64,
    /// Movie timescale.
    pub timescale: u32,
    /// Duration in the movie timescale.
    pub duration: u64,
    /// rate, volume, matrix, next_track_ID and the rest, untouched.
    pub rest: Vec<u8>,
}

impl Atom for Mvhd {
    const TYPE: FourCC = MVHD;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        let creation_time = r.u32_or_u64(version)?;
        let modification_time = r.u32_or_u64(version)?;
        let timescale = r.u32()?;
        let duration = r.u32_or_u64(version)?;
        let rest = r.take(r.remaining())?.to_vec();
        Ok(Mvhd { version, flags, creation_time, modification_time, timescale, duration, rest })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | self.flags);
        let put = |o: &mut Vec<u8>, v: u64| if self.version == 1 { o.put_u64(v) } else { o.put_u32(v as u32) };
        put(out, self.creation_time);
        put(out, self.modification_time);
        out.put_u32(self.timescale);
        put(out, self.duration);
        out.extend_from_slice(&self.rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let m: Mvhd = crate::testutil::round_trip("0000006c6d766864000000000000000000000000000003e8000000000001000001000000000000000000000000010000000000000000000000000000000100000000000000000000000000004000000000000000000000000000000000000000000000000000000000000002");
        assert_eq!(m.timescale, 1000);
    }
}
