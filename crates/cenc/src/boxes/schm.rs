//! `schm`: the protection scheme (`cenc`, `cbcs`, …) and its version.

use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, FourCC, Reader, Result};

use super::types::SCHM;

/// Scheme type box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schm {
    /// Version (0).
    pub version: u8,
    /// Flags; bit 0 says a scheme URI follows.
    pub flags: u32,
    /// scheme_type.
    pub scheme_type: FourCC,
    /// scheme_version: 0x00010000 for Common Encryption.
    pub scheme_version: u32,
    /// scheme_uri bytes (NUL included) when flags bit 0 is set.
    pub uri: Option<Vec<u8>>,
}

impl Schm {
    /// Common Encryption scheme `scheme` (`cenc`, `cbcs`), version 1.0.
    pub fn common(scheme: FourCC) -> Self {
        Schm { version: 0, flags: 0, scheme_type: scheme, scheme_version: 0x0001_0000, uri: None }
    }
}

impl Atom for Schm {
    const TYPE: FourCC = SCHM;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        let scheme_type = r.fourcc()?;
        let scheme_version = r.u32()?;
        let uri = if flags & 1 != 0 { Some(r.take(r.remaining())?.to_vec()) } else { None };
        r.finish()?;
        Ok(Schm { version, flags, scheme_type, scheme_version, uri })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | (self.flags & 0x00ff_ffff));
        out.extend_from_slice(&self.scheme_type.0);
        out.put_u32(self.scheme_version);
        if let Some(u) = &self.uri {
            out.extend_from_slice(u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::round_trip;

    #[test]
    fn round_trips() {
        let s: Schm = round_trip("00000014 7363686d 00000000 63626373 00010000");
        assert_eq!(s, Schm::common(FourCC::new(b"cbcs")));
        let s: Schm = round_trip("00000018 7363686d 00000001 63656e63 00010000 612e6200");
        assert_eq!(s.uri.as_deref(), Some(&b"a.b\0"[..]));
    }
}
