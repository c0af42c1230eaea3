//! `mfhd`: fragment sequence number.

use crate::fourcc::types::MFHD;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Movie fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mfhd {
    /// Sequence number.
    pub sequence_number: u32,
}

impl Atom for Mfhd {
    const TYPE: FourCC = MFHD;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        r.version_flags()?;
        let sequence_number = r.u32()?;
        r.finish()?;
        Ok(Mfhd { sequence_number })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(self.sequence_number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let m: Mfhd = crate::testutil::round_trip("000000106d6668640000000000000001");
        assert_eq!(m.sequence_number, 1);
    }
}
