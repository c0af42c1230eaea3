//! `frma`: the sample entry type a protected entry had before it became `encv`/`enca`.

use sealcast_isobmff::{Atom, FourCC, Reader, Result};

use super::types::FRMA;

/// Original format box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frma {
    /// data_format (`avc1`, `hvc1`, `mp4a`, …).
    pub data_format: FourCC,
}

impl Atom for Frma {
    const TYPE: FourCC = FRMA;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let data_format = r.fourcc()?;
        r.finish()?;
        Ok(Frma { data_format })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.data_format.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let f: Frma = crate::testutil::round_trip("0000000c 66726d61 61766331");
        assert_eq!(f.data_format, FourCC::new(b"avc1"));
    }
}
