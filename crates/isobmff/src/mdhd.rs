//! `mdhd`: media timescale, duration and language.

use crate::fourcc::types::MDHD;
use crate::writer::Put;
use crate::{Atom, Error, FourCC, Reader, Result};

/// Media header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mdhd {
    /// Version.
    pub version: u8,
    /// Creation time.
    pub creation_time: u64,
    /// Modification time.
    pub modification_time: u64,
    /// Media timescale (ticks per second); never zero.
    pub timescale: u32,
    /// Duration in the media timescale (0 for fragmented files).
    pub duration: u64,
    /// ISO 639-2/T language code, e.g. `*b"eng"`.
    pub language: [u8; 3],
    /// pre_defined.
    pub pre_defined: u16,
}

impl Atom for Mdhd {
    const TYPE: FourCC = MDHD;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, _) = r.version_flags()?;
        let creation_time = r.u32_or_u64(version)?;
        let modification_time = r.u32_or_u64(version)?;
        let timescale = r.u32()?;
        if timescale == 0 {
            return Err(Error::Invalid { what: MDHD, detail: "zero timescale" });
        }
        let duration = r.u32_or_u64(version)?;
        let l = r.u16()?;
        let c = |s: u16| (((l >> s) & 0x1f) as u8).wrapping_add(0x60);
        let language = [c(10), c(5), c(0)];
        let pre_defined = r.u16()?;
        r.finish()?;
        Ok(Mdhd { version, creation_time, modification_time, timescale, duration, language, pre_defined })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32((self.version as u32) << 24);
        let put = |o: &mut Vec<u8>, v: u64| if self.version == 1 { o.put_u64(v) } else { o.put_u32(v as u32) };
        put(out, self.creation_time);
        put(out, self.modification_time);
        out.put_u32(self.timescale);
        put(out, self.duration);
        let p = |c: u8| (c.wrapping_sub(0x60) & 0x1f) as u16;
        out.put_u16((p(self.language[0]) << 10) | (p(self.language[1]) << 5) | p(self.language[2]));
        out.put_u16(self.pre_defined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let m: Mdhd = crate::testutil::round_trip("000000206d6468640000000000000000000000000000bb800000000015c70000");
        assert_eq!((m.timescale, &m.language), (48000, b"eng"));
        assert!(Mdhd::decode(&crate::testutil::hex("000000206d646864000000000000000000000000000000000000000015c70000")).is_err());
    }
}
