//! ADTS headers from an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1 and 1.A.2.2).
//!
//! The AudioSpecificConfig is read with the same bit reader and object-type rule as
//! [`crate::aac::AudioSpecificConfig`], but strictly: ADTS can only carry what maps onto
//! its fixed fields, and a wrong rate would play at the wrong speed.

use crate::aac::{read_object_type, Bits, SAMPLE_RATES};

/// Largest raw AAC frame an ADTS header can describe (13-bit frame_length, 7-byte header).
pub const MAX_RAW_FRAME: usize = (1 << 13) - 1 - ADTS_HEADER_LEN;
/// ADTS header without CRC (protection_absent = 1).
pub const ADTS_HEADER_LEN: usize = 7;

/// The three fields an ADTS header takes from the AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdtsConfig {
    /// ADTS profile: audio object type minus one (0 Main, 1 LC, 2 SSR, 3 LTP).
    pub profile: u8,
    /// sampling_frequency_index, 0..=12.
    pub sampling_frequency_index: u8,
    /// channel_configuration, 1..=7.
    pub channel_configuration: u8,
}

impl AdtsConfig {
    /// Reads an AudioSpecificConfig.
    ///
    /// HE-AAC (SBR, object type 5) and HE-AACv2 (PS, 29) signalled explicitly map to
    /// their AAC core: the core object type and the core sampling rate, as ADTS carries
    /// them (the decoder finds SBR/PS implicitly). An explicit 24-bit sampling rate is
    /// accepted only when it equals one of the 13 indexed rates; anything else is an
    /// error rather than a guess, since a wrong rate would play at the wrong speed.
    pub fn from_audio_specific_config(asc: &[u8]) -> Result<Self, AudioConfigError> {
        let mut r = Bits::new(asc);
        let mut object_type = read_object_type(&mut r).ok_or(AudioConfigError::Truncated)?;
        let sampling_frequency_index = read_frequency_index(&mut r)?;
        let channel_configuration = r.read(4).ok_or(AudioConfigError::Truncated)? as u8;
        if object_type == 5 || object_type == 29 {
            // Explicit hierarchical signalling: extension rate, then the core type.
            read_frequency_index(&mut r)?;
            object_type = read_object_type(&mut r).ok_or(AudioConfigError::Truncated)?;
        }
        if !(1..=4).contains(&object_type) {
            return Err(AudioConfigError::UnsupportedObjectType(object_type));
        }
        if !(1..=7).contains(&channel_configuration) {
            return Err(AudioConfigError::UnsupportedChannelConfiguration(
                channel_configuration,
            ));
        }
        Ok(AdtsConfig {
            profile: object_type - 1,
            sampling_frequency_index,
            channel_configuration,
        })
    }

    /// The 7-byte ADTS header (MPEG-4, no CRC, buffer fullness 0x7FF = VBR, one raw data
    /// block) for a raw frame of `raw_len` bytes; `None` if the frame is too long.
    pub fn header(&self, raw_len: usize) -> Option<[u8; ADTS_HEADER_LEN]> {
        if raw_len > MAX_RAW_FRAME {
            return None;
        }
        let len = (raw_len + ADTS_HEADER_LEN) as u16;
        let ch = self.channel_configuration;
        Some([
            0xFF,
            // syncword low nibble, ID 0 (MPEG-4), layer 00, protection_absent 1
            0xF1,
            (self.profile << 6) | (self.sampling_frequency_index << 2) | (ch >> 2),
            // channel low bits; original/copy, home, copyright bits all 0; length bits 12..11
            ((ch & 3) << 6) | (len >> 11) as u8,
            (len >> 3) as u8,
            // length bits 2..0, then buffer fullness 0x7FF (11 bits), no. of raw blocks 0
            ((len as u8 & 7) << 5) | 0x1F,
            0xFC,
        ])
    }
}

fn read_frequency_index(r: &mut Bits<'_>) -> Result<u8, AudioConfigError> {
    match r.read(4).ok_or(AudioConfigError::Truncated)? as u8 {
        15 => {
            let hz = r.read(24).ok_or(AudioConfigError::Truncated)?;
            SAMPLE_RATES
                .iter()
                .position(|&f| f == hz)
                .map(|i| i as u8)
                .ok_or(AudioConfigError::UnsupportedFrequency(hz))
        }
        i @ 13..=14 => Err(AudioConfigError::ReservedFrequencyIndex(i)),
        i => Ok(i),
    }
}

/// Why an AudioSpecificConfig cannot become an ADTS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AudioConfigError {
    /// Fewer bits than the syntax needs.
    #[error("truncated")]
    Truncated,
    /// ADTS carries only object types 1..=4 (Main, LC, SSR, LTP), also as the core of HE-AAC.
    #[error("audio object type {0} has no ADTS profile")]
    UnsupportedObjectType(u8),
    /// A reserved sampling_frequency_index (13 or 14).
    #[error("reserved sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    /// An explicit sampling frequency that matches none of the 13 ADTS rates.
    #[error("sampling frequency {0} Hz has no ADTS index")]
    UnsupportedFrequency(u32),
    /// channelConfiguration 0 (program config element) or above 7.
    #[error("channel configuration {0} cannot be carried in ADTS")]
    UnsupportedChannelConfiguration(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_44100_stereo() {
        // 0x1210: object type 2 (LC), index 4 (44.1 kHz), 2 channels.
        let c = AdtsConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert_eq!(
            c,
            AdtsConfig {
                profile: 1,
                sampling_frequency_index: 4,
                channel_configuration: 2
            }
        );
        // A 371-byte raw frame: frame_length 378 = 0x17A.
        let h = c.header(371).unwrap();
        assert_eq!(h, [0xFF, 0xF1, 0x50, 0x80, 0x2F, 0x5F, 0xFC]);
        // Decode the header fields bit by bit, independently of the writer.
        let bits: u64 = h.iter().fold(0, |a, &b| (a << 8) | u64::from(b));
        let field = |from: u32, width: u32| (bits >> (56 - from - width)) & ((1 << width) - 1);
        assert_eq!(field(0, 12), 0xFFF); // syncword
        assert_eq!(field(12, 1), 0); // ID: MPEG-4
        assert_eq!(field(13, 2), 0); // layer
        assert_eq!(field(15, 1), 1); // protection_absent
        assert_eq!(field(16, 2), 1); // profile LC
        assert_eq!(field(18, 4), 4); // sampling_frequency_index
        assert_eq!(field(23, 3), 2); // channel_configuration
        assert_eq!(field(30, 13), 378); // frame_length incl. header
        assert_eq!(field(43, 11), 0x7FF); // buffer fullness
        assert_eq!(field(54, 2), 0); // raw data blocks - 1
    }

    #[test]
    fn lc_48000_stereo_and_mono() {
        let c = AdtsConfig::from_audio_specific_config(&[0x11, 0x90]).unwrap();
        assert_eq!(&c.header(0).unwrap()[..4], &[0xFF, 0xF1, 0x4C, 0x80]);
        let c = AdtsConfig::from_audio_specific_config(&[0x11, 0x88]).unwrap();
        assert_eq!(c.channel_configuration, 1);
    }

    #[test]
    fn he_aac_maps_to_core() {
        // Explicit SBR: type 5, index 6 (24 kHz core), 2 ch, ext index 3 (48 kHz), core type 2.
        // 00101 0110 0010 0011 00010 (pad) -> 0x2B 0x11 0x88 0x00
        let c = AdtsConfig::from_audio_specific_config(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(
            c,
            AdtsConfig {
                profile: 1,
                sampling_frequency_index: 6,
                channel_configuration: 2
            }
        );
    }

    #[test]
    fn explicit_frequency() {
        // 5 + 4 + 24 + 4 = 37 bits, left-aligned into 5 bytes.
        let asc = |hz: u32| {
            let bits: u64 = (2 << 32) | (15 << 28) | (u64::from(hz) << 4) | 2;
            (bits << 3).to_be_bytes()[3..].to_vec()
        };
        let c = AdtsConfig::from_audio_specific_config(&asc(48_000)).unwrap();
        assert_eq!(
            (c.sampling_frequency_index, c.channel_configuration),
            (3, 2)
        );
        assert_eq!(
            AdtsConfig::from_audio_specific_config(&asc(47_999)),
            Err(AudioConfigError::UnsupportedFrequency(47_999))
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(
            AdtsConfig::from_audio_specific_config(&[]),
            Err(AudioConfigError::Truncated)
        );
        assert_eq!(
            AdtsConfig::from_audio_specific_config(&[0x12]),
            Err(AudioConfigError::Truncated)
        );
        // Channel configuration 0 (PCE).
        assert_eq!(
            AdtsConfig::from_audio_specific_config(&[0x12, 0x00]),
            Err(AudioConfigError::UnsupportedChannelConfiguration(0))
        );
        // Object type 42 (USAC) via escape.
        assert_eq!(
            AdtsConfig::from_audio_specific_config(&[0xF9, 0x48, 0x80, 0x00]),
            Err(AudioConfigError::UnsupportedObjectType(42))
        );
        // Reserved frequency index 13.
        assert_eq!(
            AdtsConfig::from_audio_specific_config(&[0x16, 0x90]),
            Err(AudioConfigError::ReservedFrequencyIndex(13))
        );
        let c = AdtsConfig::from_audio_specific_config(&[0x12, 0x10]).unwrap();
        assert!(c.header(MAX_RAW_FRAME).is_some());
        assert!(c.header(MAX_RAW_FRAME + 1).is_none());
    }
}
