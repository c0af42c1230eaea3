//! H.264 decoder configuration (`avcC`, ISO/IEC 14496-15 §5.3.3).

use crate::{Cur, Error, Result};

/// The parts of an `avcC` record we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// AVCProfileIndication.
    pub profile: u8,
    /// profile_compatibility.
    pub compatibility: u8,
    /// AVCLevelIndication.
    pub level: u8,
    /// Bytes of each NAL length prefix in samples (1, 2 or 4).
    pub nal_length_size: u8,
    /// Sequence parameter sets.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter sets.
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    /// Parses an `avcC` box body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut c = Cur::new(body, "avcC");
        if c.u8()? != 1 {
            return Err(Error::Invalid("avcC", "configurationVersion"));
        }
        let profile = c.u8()?;
        let compatibility = c.u8()?;
        let level = c.u8()?;
        let nal_length_size = (c.u8()? & 3) + 1;
        if nal_length_size == 3 {
            return Err(Error::Invalid("avcC", "lengthSizeMinusOne"));
        }
        let nsps = c.u8()? & 0x1f;
        let mut sps = Vec::with_capacity(nsps as usize);
        for _ in 0..nsps {
            let n = c.u16()? as usize;
            sps.push(c.take(n)?.to_vec());
        }
        let npps = c.u8()?;
        let mut pps = Vec::with_capacity(npps as usize);
        for _ in 0..npps {
            let n = c.u16()? as usize;
            pps.push(c.take(n)?.to_vec());
        }
        Ok(AvcConfig { profile, compatibility, level, nal_length_size, sps, pps })
    }

    /// RFC 6381 codec string, e.g. `avc1.64001e`; `fourcc` is the sample entry type.
    pub fn codec_string(&self, fourcc: &str) -> String {
        format!("{fourcc}.{:02x}{:02x}{:02x}", self.profile, self.compatibility, self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
    #[test]
    fn parses_ffmpeg_avcc() {
        let b = hex("0164001effe1001a6764001eacd940a02ff97011000003000100000300320f162d9601000468efbcb0fdf8f800");
        let c = AvcConfig::parse(&b).unwrap();
        assert_eq!(c.codec_string("avc1"), "avc1.64001e");
        assert_eq!((c.nal_length_size, c.sps.len(), c.pps.len()), (4, 1, 1));
        assert_eq!(c.sps[0][0] & 0x1f, 7);
        assert!(AvcConfig::parse(&b[..20]).is_err());
    }
}
