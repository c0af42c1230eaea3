//! `tfdt`: the decode time of a fragment's first sample.

use crate::fourcc::types::TFDT;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Track fragment decode time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tfdt {
    /// Version: 0 (32-bit) or 1 (64-bit).
    pub version: u8,
    /// Base media decode time.
    pub base_media_decode_time: u64,
}

impl Tfdt {
    /// A `tfdt` with the smallest version that holds `t`.
    pub fn new(t: u64) -> Self {
        Tfdt { version: if t > u32::MAX as u64 { 1 } else { 0 }, base_media_decode_time: t }
    }
}

impl Atom for Tfdt {
    const TYPE: FourCC = TFDT;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, _) = r.version_flags()?;
        let base_media_decode_time = r.u32_or_u64(version)?;
        r.finish()?;
        Ok(Tfdt { version, base_media_decode_time })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32((self.version as u32) << 24);
        if self.version == 1 {
            out.put_u64(self.base_media_decode_time);
        } else {
            out.put_u32(self.base_media_decode_time as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t: Tfdt = crate::testutil::round_trip("0000001474666474010000000000000000000000");
        assert_eq!(t.version, 1);
        let t: Tfdt = crate::testutil::round_trip("00000010746664740000000000015f90");
        assert_eq!(t.base_media_decode_time, 90000);
        assert_eq!(Tfdt::new(1 << 33).version, 1);
    }
}
