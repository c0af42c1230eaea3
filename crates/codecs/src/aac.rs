//! AAC configuration: `esds` descriptors (ISO/IEC 14496-1 §7.2.6) and AudioSpecificConfig
//! (ISO/IEC 14496-3 §1.6.2.1).

use crate::{Cur, Error, Result};

/// Sampling frequencies by samplingFrequencyIndex.
pub const SAMPLE_RATES: [u32; 13] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// What an `esds` box tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsdsInfo {
    /// objectTypeIndication (0x40 = MPEG-4 Audio).
    pub object_type_indication: u8,
    /// avgBitrate, bits per second (0 when unknown).
    pub avg_bitrate: u32,
    /// maxBitrate.
    pub max_bitrate: u32,
    /// DecoderSpecificInfo bytes (the AudioSpecificConfig for AAC).
    pub decoder_specific_info: Vec<u8>,
}

/// The parsed AudioSpecificConfig fields we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// audioObjectType (2 = AAC-LC, 5 = SBR, 29 = PS).
    pub object_type: u8,
    /// samplingFrequencyIndex (15 = explicit).
    pub frequency_index: u8,
    /// Sampling frequency in Hz.
    pub sample_rate: u32,
    /// channelConfiguration.
    pub channel_config: u8,
}

fn descriptor<'a>(c: &mut Cur<'a>) -> Result<(u8, &'a [u8])> {
    let tag = c.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = c.u8()?;
        len = (len << 7) | (b & 0x7f) as usize;
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok((tag, c.take(len)?))
}

impl EsdsInfo {
    /// Parses an `esds` box body (version/flags first).
    pub fn parse(body: &[u8]) -> Result<Self> {
        let mut c = Cur::new(body, "esds");
        c.take(4)?;
        let (tag, es) = descriptor(&mut c)?;
        if tag != 3 {
            return Err(Error::Invalid("esds", "ES_Descriptor tag"));
        }
        let mut e = Cur::new(es, "esds");
        e.take(2)?;
        let flags = e.u8()?;
        if flags & 0x80 != 0 {
            e.take(2)?;
        }
        if flags & 0x40 != 0 {
            let n = e.u8()? as usize;
            e.take(n)?;
        }
        if flags & 0x20 != 0 {
            e.take(2)?;
        }
        let (tag, dc) = descriptor(&mut e)?;
        if tag != 4 {
            return Err(Error::Invalid("esds", "DecoderConfigDescriptor tag"));
        }
        let mut d = Cur::new(dc, "esds");
        let object_type_indication = d.u8()?;
        d.take(4)?;
        let mb = d.take(4)?;
        let ab = d.take(4)?;
        let mut decoder_specific_info = Vec::new();
        if !d.rest().is_empty() {
            let (tag, dsi) = descriptor(&mut d)?;
            if tag == 5 {
                decoder_specific_info = dsi.to_vec();
            }
        }
        Ok(EsdsInfo {
            object_type_indication,
            max_bitrate: u32::from_be_bytes([mb[0], mb[1], mb[2], mb[3]]),
            avg_bitrate: u32::from_be_bytes([ab[0], ab[1], ab[2], ab[3]]),
            decoder_specific_info,
        })
    }
}

impl AudioSpecificConfig {
    /// Parses the leading fields of an AudioSpecificConfig.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut bits = Bits::new(b);
        let object_type = read_object_type(&mut bits).ok_or(TRUNCATED)?;
        let frequency_index = bits.read(4).ok_or(TRUNCATED)? as u8;
        let sample_rate = if frequency_index == 15 {
            bits.read(24).ok_or(TRUNCATED)?
        } else {
            *SAMPLE_RATES.get(frequency_index as usize).ok_or(Error::Invalid("AudioSpecificConfig", "samplingFrequencyIndex"))?
        };
        let channel_config = bits.read(4).ok_or(TRUNCATED)? as u8;
        Ok(AudioSpecificConfig { object_type, frequency_index, sample_rate, channel_config })
    }

    /// RFC 6381 codec string, `mp4a.40.<audioObjectType>`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

const TRUNCATED: Error = Error::Truncated("AudioSpecificConfig");

/// audioObjectType, with the escape for types 32 and up; `None` when truncated.
pub(crate) fn read_object_type(bits: &mut Bits<'_>) -> Option<u8> {
    let t = bits.read(5)? as u8;
    if t == 31 {
        return Some(32 + bits.read(6)? as u8);
    }
    Some(t)
}

/// MSB-first bit reader over a short configuration record.
pub(crate) struct Bits<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Bits { b, pos: 0 }
    }

    /// The next `n` bits (at most 32), or `None` past the end.
    pub(crate) fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.b.get(self.pos / 8)?;
            v = (v << 1) | ((byte >> (7 - self.pos % 8)) & 1) as u32;
            self.pos += 1;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
    #[test]
    fn ffmpeg_esds() {
        let b = hex("000000000380808025000100048080801740150000000000fa000000fa000580808005119056e500068080800102");
        let e = EsdsInfo::parse(&b).unwrap();
        assert_eq!((e.object_type_indication, e.avg_bitrate), (0x40, 64000));
        let a = AudioSpecificConfig::parse(&e.decoder_specific_info).unwrap();
        assert_eq!((a.object_type, a.sample_rate, a.channel_config), (2, 48000, 2));
        assert_eq!(a.codec_string(), "mp4a.40.2");
        assert!(EsdsInfo::parse(&b[..12]).is_err());
    }
}
