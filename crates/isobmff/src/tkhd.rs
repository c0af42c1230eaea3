//! `tkhd`: track ID and presentation size.

use crate::fourcc::types::TKHD;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Track header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tkhd {
    /// Version.
    pub version: u8,
    /// Flags (enabled, in movie, …).
    pub flags: u32,
    /// Creation time.
    pub creation_time: u64,
    /// Modification time.
    pub modification_time: u64,
    /// Track ID.
    pub track_id: u32,
    /// Duration in the movie timescale.
    pub duration: u64,
    /// reserved, layer, alternate group, volume, matrix (52 bytes), untouched.
    pub middle: Vec<u8>,
    /// Width, 16.16 fixed point.
    pub width: u32,
    /// Height, 16.16 fixed point.
    pub height: u32,
}

impl Atom for Tkhd {
    const TYPE: FourCC = TKHD;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        let creation_time = r.u32_or_u64(version)?;
        let modification_time = r.u32_or_u64(version)?;
        let track_id = r.u32()?;
        r.skip(4)?;
        let duration = r.u32_or_u64(version)?;
        let middle = r.take(52)?.to_vec();
        let width = r.u32()?;
        let height = r.u32()?;
        r.finish()?;
        Ok(Tkhd { version, flags, creation_time, modification_time, track_id, duration, middle, width, height })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | self.flags);
        let put = |o: &mut Vec<u8>, v: u64| if self.version == 1 { o.put_u64(v) } else { o.put_u32(v as u32) };
        put(out, self.creation_time);
        put(out, self.modification_time);
        out.put_u32(self.track_id);
        out.put_u32(0);
        put(out, self.duration);
        out.extend_from_slice(&self.middle);
        out.put_u32(self.width);
        out.put_u32(self.height);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t: Tkhd = crate::testutil::round_trip("0000005c746b6864000000030000000000000000000000010000000000000000000000000000000000000000000000000001000000000000000000000000000000010000000000000000000000000000400000000280000001680000");
        assert_eq!((t.track_id, t.width >> 16, t.height >> 16), (1, 640, 360));
    }
}
