//! `tfhd`: track fragment header with optional defaults.

use crate::fourcc::types::TFHD;
use crate::writer::Put;
use crate::{Atom, FourCC, Reader, Result};

/// Track fragment header. Optional fields are present when their flag is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tfhd {
    /// Track ID.
    pub track_id: u32,
    /// Explicit base data offset (flag 0x1).
    pub base_data_offset: Option<u64>,
    /// Sample description index (0x2).
    pub sample_description_index: Option<u32>,
    /// Default sample duration (0x8).
    pub default_sample_duration: Option<u32>,
    /// Default sample size (0x10).
    pub default_sample_size: Option<u32>,
    /// Default sample flags (0x20).
    pub default_sample_flags: Option<u32>,
    /// duration-is-empty (0x10000).
    pub duration_is_empty: bool,
    /// default-base-is-moof (0x20000).
    pub default_base_is_moof: bool,
}

impl Tfhd {
    /// The flags word implied by which fields are present.
    pub fn flags(&self) -> u32 {
        (self.base_data_offset.is_some() as u32)
            | (self.sample_description_index.is_some() as u32) << 1
            | (self.default_sample_duration.is_some() as u32) << 3
            | (self.default_sample_size.is_some() as u32) << 4
            | (self.default_sample_flags.is_some() as u32) << 5
            | (self.duration_is_empty as u32) << 16
            | (self.default_base_is_moof as u32) << 17
    }
}

impl Atom for Tfhd {
    const TYPE: FourCC = TFHD;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (_, f) = r.version_flags()?;
        let t = Tfhd {
            track_id: r.u32()?,
            base_data_offset: if f & 1 != 0 { Some(r.u64()?) } else { None },
            sample_description_index: if f & 2 != 0 { Some(r.u32()?) } else { None },
            default_sample_duration: if f & 8 != 0 { Some(r.u32()?) } else { None },
            default_sample_size: if f & 0x10 != 0 { Some(r.u32()?) } else { None },
            default_sample_flags: if f & 0x20 != 0 { Some(r.u32()?) } else { None },
            duration_is_empty: f & 0x10000 != 0,
            default_base_is_moof: f & 0x20000 != 0,
        };
        r.finish()?;
        Ok(t)
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.flags());
        out.put_u32(self.track_id);
        if let Some(v) = self.base_data_offset {
            out.put_u64(v);
        }
        for v in [self.sample_description_index, self.default_sample_duration, self.default_sample_size, self.default_sample_flags]
            .into_iter()
            .flatten()
        {
            out.put_u32(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t: Tfhd = crate::testutil::round_trip("00000020746668640002003a0000000100000001000004000000009402000000");
        assert_eq!((t.default_sample_duration, t.default_base_is_moof), (Some(1024), true));
        let t: Tfhd = crate::testutil::round_trip("0000001c7466686400020038000000010000020000000a2201010000");
        assert_eq!(t.sample_description_index, None);
    }
}
