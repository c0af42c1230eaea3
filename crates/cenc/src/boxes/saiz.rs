//! `saiz`: the size of each sample's auxiliary information (here: its `senc` entry).

use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, FourCC, Reader, Result};

use super::types::SAIZ;
use super::Senc;
use crate::error::Error as CencError;

/// Sample auxiliary information sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saiz {
    /// Version (0).
    pub version: u8,
    /// Flags; bit 0 says `aux_info_type` and its parameter are present.
    pub flags: u32,
    /// aux_info_type and aux_info_type_parameter (flags bit 0).
    pub aux_info_type: Option<(FourCC, u32)>,
    /// default_sample_info_size; 0 when sizes are listed per sample.
    pub default_size: u8,
    /// sample_count.
    pub sample_count: u32,
    /// Per-sample sizes when `default_size` is 0.
    pub sizes: Vec<u8>,
}

impl Saiz {
    /// The `saiz` describing a `senc`: one default size when every sample's entry has the
    /// same size, else a table. No aux_info_type (CENC readers assume `cenc` then).
    pub fn for_senc(senc: &Senc) -> Result<Self, CencError> {
        let mut sizes = Vec::with_capacity(senc.samples.len());
        for s in &senc.samples {
            let n = senc.aux_size(s);
            sizes.push(u8::try_from(n).map_err(|_| CencError::TooLarge { what: "per-sample aux info size (saiz)", value: n as u64 })?);
        }
        let sample_count = u32::try_from(sizes.len()).map_err(|_| CencError::TooLarge { what: "saiz sample_count", value: sizes.len() as u64 })?;
        let uniform = sizes.first().filter(|&&f| sizes.iter().all(|&s| s == f)).copied();
        Ok(match uniform {
            Some(d) if d > 0 => Saiz { version: 0, flags: 0, aux_info_type: None, default_size: d, sample_count, sizes: Vec::new() },
            _ => Saiz { version: 0, flags: 0, aux_info_type: None, default_size: 0, sample_count, sizes },
        })
    }

    /// Encoded size of the whole box.
    pub fn encoded_len(&self) -> usize {
        8 + 4 + if self.aux_info_type.is_some() { 8 } else { 0 } + 1 + 4 + self.sizes.len()
    }
}

impl Atom for Saiz {
    const TYPE: FourCC = SAIZ;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        let aux_info_type = if flags & 1 != 0 { Some((r.fourcc()?, r.u32()?)) } else { None };
        let default_size = r.u8()?;
        let sample_count = r.u32()?;
        let sizes = if default_size == 0 {
            let n = r.check_count(sample_count as u64, 1)?;
            r.take(n)?.to_vec()
        } else {
            Vec::new()
        };
        r.finish()?;
        Ok(Saiz { version, flags, aux_info_type, default_size, sample_count, sizes })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | (self.flags & 0x00ff_ffff));
        if let Some((t, p)) = self.aux_info_type {
            out.extend_from_slice(&t.0);
            out.put_u32(p);
        }
        out.put_u8(self.default_size);
        out.put_u32(self.sample_count);
        if self.default_size == 0 {
            out.extend_from_slice(&self.sizes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::SencSample;
    use crate::subsample::Subsample;
    use crate::testutil::round_trip;

    #[test]
    fn round_trips() {
        // Shaka Packager, cbcs video: every sample 8 bytes (one subsample, no IV), 50 samples.
        let s: Saiz = round_trip("00000011 7361697a 00000000 08 00000032");
        assert_eq!((s.default_size, s.sample_count), (8, 50));
        let s: Saiz = round_trip("00000014 7361697a 00000000 00 00000003 0e1410");
        assert_eq!(s.sizes, vec![14, 20, 16]);
        let s: Saiz = round_trip("00000019 7361697a 00000001 63656e63 00000000 10 00000004");
        assert_eq!(s.aux_info_type, Some((FourCC::new(b"cenc"), 0)));
        assert_eq!(s.encoded_len(), 0x19);
    }

    #[test]
    fn from_senc() {
        let one = SencSample { iv: [0; 16], subsamples: vec![Subsample { clear: 1, protected: 16 }] };
        let two = SencSample { iv: [0; 16], subsamples: vec![Subsample::default(); 2] };
        let mut senc = Senc::new(8, true);
        senc.samples = vec![one.clone(), one.clone()];
        let z = Saiz::for_senc(&senc).unwrap();
        assert_eq!((z.default_size, z.sample_count, z.sizes.len()), (16, 2, 0));
        senc.samples.push(two);
        let z = Saiz::for_senc(&senc).unwrap();
        assert_eq!((z.default_size, &z.sizes[..]), (0, &[16u8, 16, 22][..]));
        assert_eq!(z.encoded_len(), z.to_vec().len());
        senc.samples.push(SencSample { iv: [0; 16], subsamples: vec![Subsample::default(); 50] });
        assert!(Saiz::for_senc(&senc).is_err());
    }
}
