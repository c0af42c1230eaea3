//! Length-prefixed NAL units (ISO/IEC 14496-15) to Annex-B byte stream (ITU-T H.264 /
//! H.265 Annex B) with access unit delimiters and in-band parameter sets.

use bytes::Bytes;
use sealcast_codecs::nal::NalCodec;

/// Start code written before every NAL unit. Always four bytes, so a sample with
/// 4-byte length prefixes keeps its size.
pub(crate) const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// PMT stream_type of a video stream.
pub(crate) fn stream_type(kind: NalCodec) -> u8 {
    match kind {
        NalCodec::Avc => 0x1B,
        NalCodec::Hevc => 0x24,
    }
}

/// Per-stream video settings resolved once per segment.
pub(crate) struct VideoConfig<'a> {
    pub kind: NalCodec,
    pub nal_length_size: usize,
    /// VPS, SPS, PPS in that order (H.264 has no VPS).
    param_sets: [&'a [Bytes]; 3],
    /// Annex-B size of all parameter sets.
    param_sets_len: usize,
}

/// What one sample becomes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuPlan {
    /// Annex-B bytes of the whole access unit (AUD, parameter sets, NAL units).
    pub es_len: usize,
    /// Whether the configuration's parameter sets go in after the AUD.
    pub insert_param_sets: bool,
    /// HEVC: nuh_temporal_id_plus1 of the first VCL NAL unit (the AUD must match it).
    temporal_id_plus1: u8,
}

/// NAL framing errors; the caller adds stream and sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FramingError {
    Truncated {
        offset: usize,
    },
    Overrun {
        offset: usize,
        declared: u64,
        available: usize,
    },
}

impl<'a> VideoConfig<'a> {
    pub(crate) fn h264(sps: &'a [Bytes], pps: &'a [Bytes], nal_length_size: u8) -> Self {
        Self::new(NalCodec::Avc, [&[], sps, pps], nal_length_size)
    }

    pub(crate) fn hevc(
        vps: &'a [Bytes],
        sps: &'a [Bytes],
        pps: &'a [Bytes],
        nal_length_size: u8,
    ) -> Self {
        Self::new(NalCodec::Hevc, [vps, sps, pps], nal_length_size)
    }

    fn new(kind: NalCodec, param_sets: [&'a [Bytes]; 3], nal_length_size: u8) -> Self {
        let param_sets_len = param_sets
            .iter()
            .flat_map(|s| s.iter())
            // Empty parameter sets are skipped when written (`param_sets`), so not counted.
            .filter(|p| !p.is_empty())
            .map(|p| START_CODE.len() + p.len())
            .sum();
        VideoConfig {
            kind,
            nal_length_size: usize::from(nal_length_size),
            param_sets,
            param_sets_len,
        }
    }

    /// Configuration parameter sets, empty ones skipped.
    pub(crate) fn param_sets(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.param_sets
            .iter()
            .flat_map(|s| s.iter())
            .map(|p| &p[..])
            .filter(|p| !p.is_empty())
    }

    /// NAL units of `data` that go into the output: zero-length units and AUDs dropped.
    pub(crate) fn nals<'d>(
        &self,
        data: &'d [u8],
    ) -> impl Iterator<Item = Result<&'d [u8], FramingError>> + 'd {
        let kind = self.kind;
        NalIter {
            data,
            pos: 0,
            size: self.nal_length_size,
        }
        .filter(move |r| match r {
            Ok(nal) => !nal.is_empty() && !kind.is_aud(kind.nal_type(nal[0])),
            Err(_) => true,
        })
    }

    /// Validates the framing of one sample and sizes its access unit.
    pub(crate) fn plan(&self, data: &[u8], keyframe: bool) -> Result<AuPlan, FramingError> {
        let mut es_len = self.aud_len();
        let mut has_sps = false;
        let mut temporal_id_plus1 = 0;
        for nal in self.nals(data) {
            let nal = nal?;
            let t = self.kind.nal_type(nal[0]);
            has_sps |= self.kind.is_sps(t);
            if self.kind == NalCodec::Hevc
                && temporal_id_plus1 == 0
                && self.kind.is_vcl(t)
                && nal.len() > 1
            {
                temporal_id_plus1 = nal[1] & 0x07;
            }
            es_len += START_CODE.len() + nal.len();
        }
        // Parameter sets in the sample mean the encoder sends them in-band: leave them be.
        let insert_param_sets = keyframe && !has_sps && self.param_sets_len > 0;
        if insert_param_sets {
            es_len += self.param_sets_len;
        }
        Ok(AuPlan {
            es_len,
            insert_param_sets,
            temporal_id_plus1: temporal_id_plus1.max(1),
        })
    }

    fn aud_len(&self) -> usize {
        match self.kind {
            NalCodec::Avc => 6,
            NalCodec::Hevc => 7,
        }
    }

    /// Start code and access unit delimiter: H.264 primary_pic_type 7 (any slice type),
    /// HEVC pic_type 2 (I, P and B slices), each followed by the RBSP stop bit.
    pub(crate) fn aud(&self, plan: &AuPlan) -> ([u8; 7], usize) {
        match self.kind {
            NalCodec::Avc => ([0, 0, 0, 1, 0x09, 0xF0, 0], 6),
            NalCodec::Hevc => ([0, 0, 0, 1, 35 << 1, plan.temporal_id_plus1, 0x50], 7),
        }
    }
}

/// Walks `[length][NAL]...` with `size`-byte big-endian lengths.
struct NalIter<'d> {
    data: &'d [u8],
    pos: usize,
    size: usize,
}

impl<'d> Iterator for NalIter<'d> {
    type Item = Result<&'d [u8], FramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos;
        let rest = &self.data[offset..];
        let Some(prefix) = rest.get(..self.size) else {
            self.pos = self.data.len();
            return Some(Err(FramingError::Truncated { offset }));
        };
        let declared = prefix.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
        let available = rest.len() - self.size;
        if declared > available as u64 {
            self.pos = self.data.len();
            return Some(Err(FramingError::Overrun {
                offset,
                declared,
                available,
            }));
        }
        // declared <= available, so it fits usize and the slice is in bounds.
        let len = declared as usize;
        let start = self.size;
        self.pos = offset + start + len;
        Some(Ok(&rest[start..start + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(size: usize, nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u64).to_be_bytes()[8 - size..]);
            v.extend_from_slice(n);
        }
        v
    }

    fn annexb(cfg: &VideoConfig<'_>, data: &[u8], key: bool) -> Vec<u8> {
        let plan = cfg.plan(data, key).unwrap();
        let (aud, n) = cfg.aud(&plan);
        let mut v = aud[..n].to_vec();
        if plan.insert_param_sets {
            for p in cfg.param_sets() {
                v.extend_from_slice(&START_CODE);
                v.extend_from_slice(p);
            }
        }
        for nal in cfg.nals(data) {
            v.extend_from_slice(&START_CODE);
            v.extend_from_slice(nal.unwrap());
        }
        assert_eq!(v.len(), plan.es_len);
        v
    }

    #[test]
    fn h264_keyframe_gets_aud_and_parameter_sets() {
        let sps = [Bytes::from_static(&[0x67, 0x42, 0xC0, 0x1E])];
        let pps = [Bytes::from_static(&[0x68, 0xCE, 0x3C, 0x80])];
        for size in [1, 2, 4] {
            let cfg = VideoConfig::h264(&sps, &pps, size as u8);
            // An AUD in the sample is dropped; a zero-length NAL is dropped.
            let data = sample(
                size,
                &[&[0x09, 0x10], &[0x06, 0x05, 0x01], &[], &[0x65, 0x88, 0x84]],
            );
            assert_eq!(
                annexb(&cfg, &data, true),
                [
                    &[0, 0, 0, 1, 0x09, 0xF0][..],
                    &[0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E],
                    &[0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80],
                    &[0, 0, 0, 1, 0x06, 0x05, 0x01],
                    &[0, 0, 0, 1, 0x65, 0x88, 0x84],
                ]
                .concat()
            );
            // Non-keyframe: AUD only.
            let data = sample(size, &[&[0x41, 0x9A]]);
            assert_eq!(
                annexb(&cfg, &data, false),
                [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0x9A]
            );
        }
    }

    #[test]
    fn in_band_sps_is_not_duplicated() {
        let sps = [Bytes::from_static(&[0x67, 0x42])];
        let pps = [Bytes::from_static(&[0x68, 0xCE])];
        let cfg = VideoConfig::h264(&sps, &pps, 4);
        let data = sample(4, &[&[0x67, 0x64], &[0x68, 0xEE], &[0x65, 0x88]]);
        assert_eq!(
            annexb(&cfg, &data, true),
            [
                0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 0x64, 0, 0, 0, 1, 0x68, 0xEE, 0, 0, 0, 1,
                0x65, 0x88
            ]
        );
        // 4-byte prefixes: the access unit is the sample plus the 6-byte AUD.
        assert_eq!(cfg.plan(&data, true).unwrap().es_len, data.len() + 6);
    }

    #[test]
    fn hevc_aud_takes_temporal_id_of_first_vcl() {
        let vps = [Bytes::from_static(&[0x40, 0x01, 0x0C])];
        let sps = [Bytes::from_static(&[0x42, 0x01, 0x01])];
        let pps = [Bytes::from_static(&[0x44, 0x01, 0xC1])];
        let cfg = VideoConfig::hevc(&vps, &sps, &pps, 4);
        // Prefix SEI (tid 0), then a TRAIL_R slice with nuh_temporal_id_plus1 = 3.
        let data = sample(
            4,
            &[
                &[0x46, 0x01, 0x50],
                &[0x4E, 0x01, 0x05],
                &[0x02, 0x03, 0xAA],
            ],
        );
        assert_eq!(
            annexb(&cfg, &data, false),
            [
                &[0, 0, 0, 1, 0x46, 0x03, 0x50][..],
                &[0, 0, 0, 1, 0x4E, 0x01, 0x05],
                &[0, 0, 0, 1, 0x02, 0x03, 0xAA]
            ]
            .concat()
        );
        // IDR_W_RADL keyframe: VPS, SPS, PPS after the AUD.
        let data = sample(4, &[&[0x26, 0x01, 0xAF]]);
        assert_eq!(
            annexb(&cfg, &data, true),
            [
                &[0, 0, 0, 1, 0x46, 0x01, 0x50][..],
                &[0, 0, 0, 1, 0x40, 0x01, 0x0C],
                &[0, 0, 0, 1, 0x42, 0x01, 0x01],
                &[0, 0, 0, 1, 0x44, 0x01, 0xC1],
                &[0, 0, 0, 1, 0x26, 0x01, 0xAF],
            ]
            .concat()
        );
    }

    #[test]
    fn framing_errors() {
        let cfg = VideoConfig::h264(&[], &[], 4);
        assert_eq!(
            cfg.plan(&[0, 0, 0, 2, 0x65, 0x88, 0, 0], true).unwrap_err(),
            FramingError::Truncated { offset: 6 }
        );
        assert_eq!(
            cfg.plan(&[0xFF, 0xFF, 0xFF, 0xFF, 0x65], true).unwrap_err(),
            FramingError::Overrun {
                offset: 0,
                declared: 0xFFFF_FFFF,
                available: 1
            }
        );
        let cfg = VideoConfig::h264(&[], &[], 2);
        assert_eq!(
            cfg.plan(&[0, 1, 0x65, 0, 3, 1], false).unwrap_err(),
            FramingError::Overrun {
                offset: 3,
                declared: 3,
                available: 1
            }
        );
        // No configured parameter sets: nothing to insert.
        assert!(!cfg.plan(&[0, 1, 0x65], true).unwrap().insert_param_sets);
    }
}
