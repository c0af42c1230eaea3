//! HEVC decoder configuration (`hvcC`, ISO/IEC 14496-15 §8.3.3).

use crate::{Cur, Error, Result};

/// The parts of an `hvcC` record we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// general_profile_space (0-3).
    pub profile_space: u8,
    /// general_tier_flag.
    pub tier_high: bool,
    /// general_profile_idc.
    pub profile_idc: u8,
    /// general_profile_compatibility_flags.
    pub compatibility: u32,
    /// general_constraint_indicator_flags (6 bytes).
    pub constraints: [u8; 6],
    /// general_level_idc.
    pub level_idc: u8,
    /// Bytes of each NAL length prefix.
    pub nal_length_size: u8,
    /// Video parameter sets.
    pub vps: Vec<Vec<u8>>,
    /// Sequence parameter sets.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter sets.
    pub pps: Vec<Vec<u8>>,
}

impl HevcConfig {
    /// Parses an `hvcC` box body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut c = Cur::new(body, "hvcC");
        if c.u8()? != 1 {
            return Err(Error::Invalid("hvcC", "configurationVersion"));
        }
        let b = c.u8()?;
        let compat = c.take(4)?;
        let compatibility = u32::from_be_bytes([compat[0], compat[1], compat[2], compat[3]]);
        let mut constraints = [0u8; 6];
        constraints.copy_from_slice(c.take(6)?);
        let level_idc = c.u8()?;
        c.take(8)?; // segmentation, parallelism, chroma, bit depths, frame rate
        let nal_length_size = (c.u8()? & 3) + 1;
        if nal_length_size == 3 {
            return Err(Error::Invalid("hvcC", "lengthSizeMinusOne"));
        }
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..c.u8()? {
            let typ = c.u8()? & 0x3f;
            for _ in 0..c.u16()? {
                let n = c.u16()? as usize;
                let nal = c.take(n)?.to_vec();
                match typ {
                    32 => vps.push(nal),
                    33 => sps.push(nal),
                    34 => pps.push(nal),
                    _ => {}
                }
            }
        }
        Ok(HevcConfig {
            profile_space: b >> 6,
            tier_high: b & 0x20 != 0,
            profile_idc: b & 0x1f,
            compatibility,
            constraints,
            level_idc,
            nal_length_size,
            vps,
            sps,
            pps,
        })
    }

    /// RFC 6381 / ISO 14496-15 Annex E codec string, e.g. `hvc1.1.6.L93.90`.
    pub fn codec_string(&self, fourcc: &str) -> String {
        let space = ["", "A", "B", "C"][self.profile_space as usize & 3];
        let last = self.constraints.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let mut s = format!(
            "{fourcc}.{space}{}.{:X}.{}{}",
            self.profile_idc,
            self.compatibility.reverse_bits(),
            if self.tier_high { 'H' } else { 'L' },
            self.level_idc
        );
        for b in &self.constraints[..last] {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn codec_string_main_profile() {
        let mut b = vec![1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        b.extend_from_slice(&[0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]);
        let c = HevcConfig::parse(&b).unwrap();
        assert_eq!(c.codec_string("hvc1"), "hvc1.1.6.L93.90");
        assert_eq!(c.nal_length_size, 4);
        assert!(HevcConfig::parse(&b[..10]).is_err());
    }
}
