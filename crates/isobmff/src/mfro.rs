//! `mfro`: movie fragment random access offset, the last box of an `mfra`, placed at the very
//! end of a file so a reader can find the `mfra` from the file's tail.

use crate::fourcc::types::MFRO;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Movie fragment random access offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mfro {
    /// Version (0 is the only one defined).
    pub version: u8,
    /// Flags (none defined).
    pub flags: u32,
    /// Size of the enclosing `mfra` box, header included.
    pub parent_size: u32,
}

impl Mfro {
    /// Bytes of a whole `mfro` box.
    pub const SIZE: u64 = 16;
}

impl Atom for Mfro {
    const TYPE: FourCC = MFRO;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        let parent_size = r.u32()?;
        r.finish()?;
        Ok(Mfro { version, flags, parent_size })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | self.flags);
        out.put_u32(self.parent_size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        // The mfro ffmpeg wrote at the end of fixtures/demo/video_180p.cmfv.
        let m: Mfro = crate::testutil::round_trip("000000106d66726f000000000000008f");
        assert_eq!(m.parent_size, 143);
    }
}
