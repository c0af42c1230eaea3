//! Subsample maps: which bytes of a sample stay clear and which are protected.
//!
//! # The rule (length-prefixed H.264 / HEVC)
//!
//! Every NAL unit that is not a coded slice (parameter sets, SEI, AUD, …) stays clear. A
//! coded slice keeps its first `clear_prefix` bytes clear — counted from the start of its
//! length field, so the length, the NAL header and (in practice) the slice header are
//! readable — and the rest is protected:
//!
//! * `cenc`: the protected part is shortened to a whole number of 16-byte blocks, the
//!   misaligned bytes joining the clear part (CMAF requires aligned protected ranges for
//!   `cenc`). A slice shorter than `clear_prefix + 16` stays clear.
//! * `cbcs`: the protected part is the whole rest of the NAL unit; the pattern leaves a
//!   trailing partial block clear by itself. A slice shorter than `clear_prefix + 16` stays
//!   clear.
//!
//! The default prefix, [`DEFAULT_CLEAR_PREFIX`] = 96 bytes, is the Bento4 / mp4ff choice for
//! `cenc`. We do not parse slice headers (that needs full SPS/PPS parsing): a fixed prefix
//! is what Bento4 and mp4ff ship for `cenc`, and decryptors follow whatever `senc` says.
//! Shaka Packager instead clears exactly length + NAL header + slice header; the ISO text
//! for `cbcs` asks protection to start right after the slice header, which a fixed prefix
//! only approximates (it may start later; slice headers longer than the prefix — rare, e.g.
//! HEVC slices with many entry points — would start earlier). A caller with a slice-header
//! parser can pass its own map to `FragmentEncryptor::encrypt_sample_with_map`.
//!
//! Clear runs longer than 65535 bytes are split into `(65535, 0)` entries, and consecutive
//! clear NAL units are merged into the next protected one's clear count, as Shaka Packager
//! and mp4ff do. A non-empty sample always gets at least one entry: a subsample count of 0
//! means "whole sample encrypted" to ffmpeg.

use sealcast_codecs::nal::NalCodec;

use crate::error::{Error, Result};

/// One subsample: `clear` bytes left as they are, then `protected` encrypted bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Subsample {
    /// BytesOfClearData.
    pub clear: u16,
    /// BytesOfProtectedData.
    pub protected: u32,
}

/// How a track's samples are laid out, as far as encryption cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleFormat {
    /// H.264 in `avc1`/`avc3` samples: NAL units with 1-, 2- or 4-byte length prefixes.
    Avc {
        /// Bytes of each length prefix (`avcC` lengthSizeMinusOne + 1).
        nal_length_size: u8,
    },
    /// HEVC in `hvc1`/`hev1` samples: NAL units with 1-, 2- or 4-byte length prefixes.
    Hevc {
        /// Bytes of each length prefix (`hvcC` lengthSizeMinusOne + 1).
        nal_length_size: u8,
    },
    /// Whole-sample encryption, no subsamples: AAC and other audio.
    Whole,
}

impl SampleFormat {
    /// Whether samples are video NAL units (subsample encryption, pattern under `cbcs`).
    pub fn is_video(self) -> bool {
        !matches!(self, SampleFormat::Whole)
    }

    fn nal_length_size(self) -> Option<u8> {
        match self {
            SampleFormat::Avc { nal_length_size } | SampleFormat::Hevc { nal_length_size } => Some(nal_length_size),
            SampleFormat::Whole => None,
        }
    }

    /// Checks the NAL length size.
    pub fn validate(self) -> Result<()> {
        match self.nal_length_size() {
            None | Some(1 | 2 | 4) => Ok(()),
            Some(_) => Err(Error::Param("nal_length_size must be 1, 2 or 4")),
        }
    }

    fn nal_codec(self) -> Option<NalCodec> {
        match self {
            SampleFormat::Avc { .. } => Some(NalCodec::Avc),
            SampleFormat::Hevc { .. } => Some(NalCodec::Hevc),
            SampleFormat::Whole => None,
        }
    }

    /// Whether a NAL unit whose first header byte is `b0` is a coded slice (VCL).
    fn is_slice(self, b0: u8) -> bool {
        self.nal_codec().is_some_and(|c| c.is_vcl(c.nal_type(b0)))
    }

    fn nal_header_len(self) -> usize {
        self.nal_codec().map_or(1, NalCodec::header_len)
    }
}

/// Clear bytes at the start of each protected slice NAL unit, length field included.
pub const DEFAULT_CLEAR_PREFIX: usize = 96;

/// How protected ranges are cut from slice NAL units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SliceRule {
    /// Bytes kept clear from the start of the length field (at least length + NAL header).
    pub clear_prefix: usize,
    /// Shorten protected ranges to whole 16-byte blocks (`cenc`), or not (`cbcs`).
    pub align: bool,
}

/// Appends the subsample map of one length-prefixed video sample to `out`.
///
/// `sample_index` only names the sample in errors. For [`SampleFormat::Whole`] nothing is
/// appended (whole-sample encryption has no map).
pub fn nal_subsamples(format: SampleFormat, rule: SliceRule, sample: &[u8], sample_index: usize, out: &mut Vec<Subsample>) -> Result<()> {
    let Some(nls) = format.nal_length_size() else { return Ok(()) };
    format.validate()?;
    let nls = nls as usize;
    // Never protect the length field or the NAL header.
    let prefix = rule.clear_prefix.max(nls + format.nal_header_len());
    let first = out.len();
    let mut clear: u64 = 0;
    let mut at = 0usize;
    while at < sample.len() {
        let have = sample.len() - at;
        if have < nls {
            return Err(Error::NalOverrun { sample: sample_index, offset: at, len: nls as u64, have });
        }
        let len = sample[at..at + nls].iter().fold(0u64, |a, &b| (a << 8) | b as u64);
        let have = have - nls;
        if len > have as u64 {
            return Err(Error::NalOverrun { sample: sample_index, offset: at, len, have });
        }
        // len <= have, so it fits in usize.
        let total = nls + len as usize;
        let slice = len > 0 && format.is_slice(sample[at + nls]);
        let mut protected = 0usize;
        if slice && total >= prefix + 16 {
            protected = total - prefix;
            if rule.align {
                protected &= !15;
            }
        }
        if protected > 0 {
            push(out, clear + (total - protected) as u64, protected as u64)?;
            clear = 0;
        } else {
            clear += total as u64;
        }
        at += total;
    }
    if clear > 0 || (out.len() == first && !sample.is_empty()) {
        push(out, clear, 0)?;
    }
    Ok(())
}

/// Appends `(clear, protected)`, splitting clear runs over 65535 bytes.
fn push(out: &mut Vec<Subsample>, mut clear: u64, protected: u64) -> Result<()> {
    let protected = u32::try_from(protected).map_err(|_| Error::TooLarge { what: "BytesOfProtectedData", value: protected })?;
    while clear > u16::MAX as u64 {
        out.push(Subsample { clear: u16::MAX, protected: 0 });
        clear -= u16::MAX as u64;
    }
    out.push(Subsample { clear: clear as u16, protected });
    Ok(())
}

/// Checks that a map covers a sample of `len` bytes exactly.
pub fn check_cover(subs: &[Subsample], len: usize, sample_index: usize) -> Result<()> {
    let covered: u64 = subs.iter().map(|s| s.clear as u64 + s.protected as u64).sum();
    if covered != len as u64 {
        return Err(Error::SubsampleMismatch { sample: sample_index, covered, len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CENC: SliceRule = SliceRule { clear_prefix: DEFAULT_CLEAR_PREFIX, align: true };
    const CBCS: SliceRule = SliceRule { clear_prefix: DEFAULT_CLEAR_PREFIX, align: false };

    fn nal(nls: usize, header: &[u8], body_len: usize) -> Vec<u8> {
        let len = header.len() + body_len;
        let mut v = len.to_be_bytes()[8 - nls..].to_vec();
        v.extend_from_slice(header);
        v.extend(std::iter::repeat_n(0xee, body_len));
        v
    }

    fn map(f: SampleFormat, r: SliceRule, s: &[u8]) -> Vec<(u16, u32)> {
        let mut out = Vec::new();
        nal_subsamples(f, r, s, 0, &mut out).unwrap();
        check_cover(&out, s.len(), 0).unwrap();
        out.into_iter().map(|s| (s.clear, s.protected)).collect()
    }

    #[test]
    fn avc_parameter_sets_clear_slices_protected() {
        let avc = SampleFormat::Avc { nal_length_size: 4 };
        // AUD(9), SPS(7), PPS(8), IDR slice(5) of 4+1+1000 bytes.
        let mut s = nal(4, &[0x09], 1);
        s.extend(nal(4, &[0x67], 20));
        s.extend(nal(4, &[0x68], 3));
        s.extend(nal(4, &[0x65], 1000));
        let clear_before = 6 + 25 + 8;
        // cenc: 1005 - 96 = 909 -> 896 protected, 109 clear.
        assert_eq!(map(avc, CENC, &s), vec![(clear_before + 109, 896)]);
        // cbcs: no alignment.
        assert_eq!(map(avc, CBCS, &s), vec![(clear_before + 96, 909)]);
    }

    #[test]
    fn small_slices_and_trailing_clear() {
        let avc = SampleFormat::Avc { nal_length_size: 2 };
        let mut s = nal(2, &[0x41], 50); // too small: clear
        s.extend(nal(2, &[0x41], 300));
        s.extend(nal(2, &[0x06], 10)); // trailing SEI
        // second slice: total 303, protected (303-96)&!15 = 192, clear 111.
        assert_eq!(map(avc, CENC, &s), vec![(53 + 111, 192), (13, 0)]);
        // a sample of only small slices: one all-clear entry
        assert_eq!(map(avc, CENC, &nal(2, &[0x41], 5)), vec![(8, 0)]);
        assert_eq!(map(avc, CENC, &[]), vec![]);
    }

    #[test]
    fn hevc_types_and_long_clear_runs() {
        let hevc = SampleFormat::Hevc { nal_length_size: 4 };
        // VPS (32<<1), a 70000-byte SEI (39<<1) then an IDR_W_RADL slice (19<<1).
        let mut s = nal(4, &[0x40, 0x01], 10);
        s.extend(nal(4, &[0x4e, 0x01], 70000));
        s.extend(nal(4, &[0x26, 0x01], 200));
        // slice: 206 bytes, (206 - 96) & !15 = 96 protected, 110 clear.
        let clear: u64 = 16 + 70006 + 110;
        let m = map(hevc, CENC, &s);
        assert_eq!(m[0], (65535, 0));
        assert_eq!(m[1], ((clear - 65535) as u16, 96));
    }

    #[test]
    fn nal_length_sizes_and_hostile_lengths() {
        for nls in [1usize, 2, 4] {
            let f = SampleFormat::Avc { nal_length_size: nls as u8 };
            let s = nal(nls, &[0x65], 200);
            let m = map(f, CBCS, &s);
            assert_eq!(m, vec![(96, (nls + 201 - 96) as u32)]);
            let mut bad = s.clone();
            bad.truncate(s.len() - 1);
            let mut out = Vec::new();
            assert!(matches!(nal_subsamples(f, CBCS, &bad, 3, &mut out), Err(Error::NalOverrun { sample: 3, .. })));
        }
        assert!(nal_subsamples(SampleFormat::Avc { nal_length_size: 3 }, CBCS, &[0; 8], 0, &mut Vec::new()).is_err());
        // A prefix smaller than length + header is raised to it.
        let f = SampleFormat::Hevc { nal_length_size: 4 };
        let m = map(f, SliceRule { clear_prefix: 0, align: false }, &nal(4, &[0x02, 0x01], 30));
        assert_eq!(m, vec![(6, 30)]);
    }
}
