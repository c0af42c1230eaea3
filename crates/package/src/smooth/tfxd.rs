//! `tfxd`: the Smooth Streaming fragment's absolute time and duration (MS-SSTR 2.2.4.4,
//! TfxdBox), a `uuid` box with extended type `6D1D9B05-42D5-44E6-80E2-141DAFF757B2` in
//! the `traf`.

use sealcast_isobmff::fourcc::types::UUID;
use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, Error, FourCC, Reader, Result};

/// Extended type of the `tfxd` box (MS-SSTR 2.2.4.4).
pub const TFXD_UUID: [u8; 16] = [0x6d, 0x1d, 0x9b, 0x05, 0x42, 0xd5, 0x44, 0xe6, 0x80, 0xe2, 0x14, 0x1d, 0xaf, 0xf7, 0x57, 0xb2];

/// A `tfxd` box. Times are in the StreamIndex timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tfxd {
    /// 0 (32-bit times) or 1 (64-bit times).
    pub version: u8,
    /// Flags (0; kept as read).
    pub flags: u32,
    /// FragmentAbsoluteTime: the fragment's decode time.
    pub time: u64,
    /// FragmentDuration.
    pub duration: u64,
}

impl Tfxd {
    /// A version 1 box, what we write: 64-bit times never need a range check.
    pub fn new(time: u64, duration: u64) -> Self {
        Tfxd { version: 1, flags: 0, time, duration }
    }
}

impl Atom for Tfxd {
    const TYPE: FourCC = UUID;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        if r.take(16)? != TFXD_UUID {
            return Err(Error::Invalid { what: UUID, detail: "not the tfxd box" });
        }
        let (version, flags) = r.version_flags()?;
        if version > 1 {
            return Err(Error::Unsupported { what: UUID, detail: "tfxd version" });
        }
        let time = r.u32_or_u64(version)?;
        let duration = r.u32_or_u64(version)?;
        r.finish()?;
        Ok(Tfxd { version, flags, time, duration })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&TFXD_UUID);
        out.put_u32(((self.version as u32) << 24) | (self.flags & 0x00ff_ffff));
        if self.version == 1 {
            out.put_u64(self.time);
            out.put_u64(self.duration);
        } else {
            // Version 0 only comes from decoding, so both values fit 32 bits.
            out.put_u32(self.time as u32);
            out.put_u32(self.duration as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn round_trips() {
        // Version 1: time 2002 (0x7d2), duration 1001 (0x3e9) at a 1000 Hz... any timescale.
        let v1 = hex("0000002c 75756964 6d1d9b0542d544e680e2141daff757b2 01000000 00000000000007d2 00000000000003e9");
        let t = Tfxd::decode(&v1).unwrap();
        assert_eq!(t, Tfxd::new(2002, 1001));
        assert_eq!(t.to_vec(), v1);
        let v0 = hex("00000024 75756964 6d1d9b0542d544e680e2141daff757b2 00000000 000007d2 000003e9");
        let t = Tfxd::decode(&v0).unwrap();
        assert_eq!((t.version, t.time, t.duration), (0, 2002, 1001));
        assert_eq!(t.to_vec(), v0);
    }

    #[test]
    fn rejects_other_boxes() {
        // Another uuid (PIFF sample encryption), a truncated body, version 2.
        assert!(Tfxd::decode(&hex("00000024 75756964 a2394f525a9b4f14a2446c427c648df4 00000000 000007d2 000003e9")).is_err());
        assert!(Tfxd::decode(&hex("00000020 75756964 6d1d9b0542d544e680e2141daff757b2 01000000 00000000")).is_err());
        assert!(Tfxd::decode(&hex("0000002c 75756964 6d1d9b0542d544e680e2141daff757b2 02000000 00000000000007d2 00000000000003e9")).is_err());
    }
}
