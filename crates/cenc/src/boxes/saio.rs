//! `saio`: where a fragment's auxiliary information starts (one offset: `senc`'s first
//! per-sample byte, counted from the start of the `moof`).

use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, FourCC, Reader, Result};

use super::types::SAIO;

/// Sample auxiliary information offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saio {
    /// 0 (32-bit offsets) or 1 (64-bit).
    pub version: u8,
    /// Flags; bit 0 says `aux_info_type` and its parameter are present.
    pub flags: u32,
    /// aux_info_type and aux_info_type_parameter (flags bit 0).
    pub aux_info_type: Option<(FourCC, u32)>,
    /// Offsets (one for a fragment whose aux info is contiguous).
    pub offsets: Vec<u64>,
}

impl Saio {
    /// One offset, in the smallest version that holds it.
    pub fn single(offset: u64) -> Self {
        Saio { version: if offset > u32::MAX as u64 { 1 } else { 0 }, flags: 0, aux_info_type: None, offsets: vec![offset] }
    }

    /// Encoded size of the whole box.
    pub fn encoded_len(&self) -> usize {
        8 + 4 + if self.aux_info_type.is_some() { 8 } else { 0 } + 4 + self.offsets.len() * if self.version == 1 { 8 } else { 4 }
    }

    /// Position of the first offset field within the encoded box (header included), for
    /// patching it in place once the `moof` layout is known.
    pub fn first_offset_position(&self) -> usize {
        8 + 4 + if self.aux_info_type.is_some() { 8 } else { 0 } + 4
    }
}

impl Atom for Saio {
    const TYPE: FourCC = SAIO;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        let aux_info_type = if flags & 1 != 0 { Some((r.fourcc()?, r.u32()?)) } else { None };
        let count = r.u32()?;
        let n = r.check_count(count as u64, if version == 1 { 8 } else { 4 })?;
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            offsets.push(r.u32_or_u64(version)?);
        }
        r.finish()?;
        Ok(Saio { version, flags, aux_info_type, offsets })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | (self.flags & 0x00ff_ffff));
        if let Some((t, p)) = self.aux_info_type {
            out.extend_from_slice(&t.0);
            out.put_u32(p);
        }
        out.put_u32(self.offsets.len() as u32);
        for &o in &self.offsets {
            if self.version == 1 {
                out.put_u64(o);
            } else {
                out.put_u32(o as u32);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::round_trip;

    #[test]
    fn round_trips() {
        // Shaka Packager: one offset, 0x2e9 from the moof start.
        let s: Saio = round_trip("00000014 7361696f 00000000 00000001 000002e9");
        assert_eq!(s, Saio::single(0x2e9));
        assert_eq!((s.encoded_len(), s.first_offset_position()), (20, 16));
        let s: Saio = round_trip("00000020 7361696f 01000001 63656e63 00000000 00000001 0000000100000000");
        assert_eq!(s.offsets, vec![1 << 32]);
        assert_eq!(Saio::single(1 << 32).version, 1);
    }
}
