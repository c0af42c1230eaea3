//! `hdlr`: handler type (`vide`, `soun`, …).

use crate::fourcc::types::HDLR;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Handler reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hdlr {
    /// Handler type.
    pub handler_type: FourCC,
    /// Name bytes (usually NUL-terminated UTF-8), untouched.
    pub name: Vec<u8>,
}

impl Atom for Hdlr {
    const TYPE: FourCC = HDLR;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        r.version_flags()?;
        r.skip(4)?;
        let handler_type = r.fourcc()?;
        r.skip(12)?;
        let name = r.take(r.remaining())?.to_vec();
        Ok(Hdlr { handler_type, name })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(0);
        out.put_u32(0);
        out.extend_from_slice(&self.handler_type.0);
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let h: Hdlr = crate::testutil::round_trip("0000002d68646c72000000000000000076696465000000000000000000000000566964656f48616e646c657200");
        assert_eq!(h.handler_type, FourCC::new(b"vide"));
    }
}
