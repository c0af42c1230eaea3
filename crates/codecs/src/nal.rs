//! NAL unit types: what sample encryption (which NAL units are coded slices) and the TS
//! muxer (access unit delimiters, parameter sets) need to know about a NAL unit from its
//! header, for H.264 (ITU-T H.264 Table 7-1) and HEVC (ITU-T H.265 Table 7-1).

/// Whose NAL unit header layout applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NalCodec {
    /// H.264: one header byte, `nal_unit_type` in its low 5 bits.
    Avc,
    /// HEVC: two header bytes, `nal_unit_type` in bits 1-6 of the first.
    Hevc,
}

impl NalCodec {
    /// Bytes of the NAL unit header.
    pub const fn header_len(self) -> usize {
        match self {
            NalCodec::Avc => 1,
            NalCodec::Hevc => 2,
        }
    }

    /// `nal_unit_type` from the first header byte.
    pub const fn nal_type(self, b0: u8) -> u8 {
        match self {
            NalCodec::Avc => b0 & 0x1f,
            NalCodec::Hevc => (b0 >> 1) & 0x3f,
        }
    }

    /// Whether NAL units of type `t` are coded slices (VCL).
    pub const fn is_vcl(self, t: u8) -> bool {
        match self {
            // 1 non-IDR slice, 2-4 data partitions A-C, 5 IDR slice.
            NalCodec::Avc => matches!(t, 1..=5),
            // 0-31 are VCL (0-9 and 16-21 in use, the rest reserved VCL).
            NalCodec::Hevc => t < 32,
        }
    }

    /// Whether NAL units of type `t` are access unit delimiters.
    pub const fn is_aud(self, t: u8) -> bool {
        match self {
            NalCodec::Avc => t == 9,
            NalCodec::Hevc => t == 35,
        }
    }

    /// Whether NAL units of type `t` are sequence parameter sets.
    pub const fn is_sps(self, t: u8) -> bool {
        match self {
            NalCodec::Avc => t == 7,
            NalCodec::Hevc => t == 33,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NalCodec::{Avc, Hevc};

    #[test]
    fn types_from_header_bytes() {
        // H.264: forbidden_zero_bit, nal_ref_idc (2 bits), nal_unit_type (5 bits).
        assert_eq!(Avc.nal_type(0x65), 5); // IDR slice, nal_ref_idc 3
        assert_eq!(Avc.nal_type(0x67), 7); // SPS
        assert_eq!(Avc.nal_type(0x09), 9); // AUD
                                           // HEVC: forbidden_zero_bit, nal_unit_type (6 bits), then layer id and temporal id.
        assert_eq!(Hevc.nal_type(0x26), 19); // IDR_W_RADL
        assert_eq!(Hevc.nal_type(0x42), 33); // SPS
        assert_eq!(Hevc.nal_type(0x46), 35); // AUD
        assert_eq!((Avc.header_len(), Hevc.header_len()), (1, 2));
    }

    #[test]
    fn classes() {
        let avc_vcl: Vec<u8> = (0..32).filter(|&t| Avc.is_vcl(t)).collect();
        assert_eq!(avc_vcl, [1, 2, 3, 4, 5]);
        let hevc_vcl: Vec<u8> = (0..64).filter(|&t| Hevc.is_vcl(t)).collect();
        assert_eq!(hevc_vcl, (0..32).collect::<Vec<u8>>());
        assert!(Avc.is_sps(7) && !Avc.is_sps(8) && Avc.is_aud(9) && !Avc.is_aud(35));
        assert!(Hevc.is_sps(33) && !Hevc.is_sps(7) && Hevc.is_aud(35) && !Hevc.is_aud(9));
    }
}
