//! PIFF's sample encryption box: a `uuid` box with extended type
//! `A2394F52-5A9B-4F14-A244-6C427C648DF4` (PIFF 1.1 §5.3.2.1), what Smooth Streaming clients
//! and PlayReady devices read where CENC has `senc`.
//!
//! After the extended type the body is a `senc` body (version, flags, sample_count, then per
//! sample the IV and, with flag 0x2, the subsample map), except that flag 0x1 inserts an
//! override of the track's defaults (AlgorithmID u24, IV_size u8, KID[16]) before
//! sample_count. We never write the override (the `tenc` carries the defaults), but decode it
//! so a box that has one is not misread.

use sealcast_isobmff::fourcc::types::UUID;
use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, Error, FourCC, Reader, Result};

use super::types::SENC;
use super::Senc;

/// The extended type of the PIFF sample encryption box.
pub const PIFF_SENC_UUID: [u8; 16] = [0xa2, 0x39, 0x4f, 0x52, 0x5a, 0x9b, 0x4f, 0x14, 0xa2, 0x44, 0x6c, 0x42, 0x7c, 0x64, 0x8d, 0xf4];

/// Bytes from the start of a PIFF sample encryption box without override (32-bit size form)
/// to its first per-sample byte: header (8), extended type (16), version and flags (4),
/// sample_count (4). This is where `saio` points.
pub const PIFF_SENC_AUX_START: u64 = 32;

/// PIFF's per-fragment override of the track's protection defaults (flag 0x1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiffOverride {
    /// AlgorithmID: 0 clear, 1 AES-128-CTR, 2 AES-128-CBC.
    pub algorithm_id: u32,
    /// Per-sample IV size (0, 8 or 16).
    pub iv_size: u8,
    /// KID.
    pub kid: [u8; 16],
}

/// The PIFF sample encryption box: a [`Senc`] under PIFF's `uuid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiffSenc {
    /// Version, flags (without the override bit, which [`PiffSenc::override_`] stands for),
    /// IV size and per-sample entries.
    pub senc: Senc,
    /// Override of the track defaults (flag 0x1).
    pub override_: Option<PiffOverride>,
}

impl PiffSenc {
    /// Flag: AlgorithmID, IV size and KID follow the flags.
    pub const OVERRIDE: u32 = 0x1;

    /// The box for `senc`'s entries, without override.
    pub fn new(senc: Senc) -> Self {
        PiffSenc { senc, override_: None }
    }

    /// Decodes a whole box whose per-sample IVs are `iv_size` bytes (unless the box
    /// overrides it).
    pub fn decode_with_iv_size(buf: &[u8], iv_size: u8) -> Result<Self> {
        let mut it = sealcast_isobmff::BoxIter::new(buf);
        let (h, body) = it.next().ok_or(Error::Missing(UUID))??;
        if h.typ != UUID {
            return Err(Error::UnexpectedBox { expected: UUID, found: h.typ });
        }
        Self::decode_body_with(&mut Reader::new(body, UUID), Some(iv_size))
    }

    /// Encoded size of the whole box (32-bit size form).
    pub fn encoded_len(&self) -> usize {
        self.aux_start() as usize + self.senc.samples.iter().map(|s| self.senc.aux_size(s)).sum::<usize>()
    }

    /// Bytes from the start of the box to its first per-sample byte.
    pub fn aux_start(&self) -> u64 {
        PIFF_SENC_AUX_START + if self.override_.is_some() { 20 } else { 0 }
    }

    /// `iv_size`: `None` guesses it as [`Senc`]'s [`Atom::decode`] does.
    fn decode_body_with(r: &mut Reader<'_>, iv_size: Option<u8>) -> Result<Self> {
        if r.take(16)? != PIFF_SENC_UUID {
            return Err(Error::Invalid { what: UUID, detail: "not the PIFF sample encryption box" });
        }
        let (version, flags) = r.version_flags()?;
        let override_ = if flags & Self::OVERRIDE != 0 {
            let algorithm_id = r.u24()?;
            let iv_size = r.u8()?;
            let mut kid = [0u8; 16];
            kid.copy_from_slice(r.take(16)?);
            Some(PiffOverride { algorithm_id, iv_size, kid })
        } else {
            None
        };
        // The rest is a senc body without its version and flags: rebuild a senc box around
        // it (a copy, but decoding is for tests, dumps and checks, not the serving path).
        let rest = r.take(r.remaining())?;
        let mut senc_box = Vec::with_capacity(12 + rest.len());
        let size = u32::try_from(12 + rest.len()).map_err(|_| Error::Invalid { what: UUID, detail: "box too large" })?;
        senc_box.put_u32(size);
        senc_box.extend_from_slice(&SENC.0);
        senc_box.put_u32(((version as u32) << 24) | (flags & !Self::OVERRIDE & 0x00ff_ffff));
        senc_box.extend_from_slice(rest);
        let senc = match (override_.map(|o| o.iv_size), iv_size) {
            (Some(n), _) | (None, Some(n)) => Senc::decode_with_iv_size(&senc_box, n)?,
            (None, None) => Senc::decode(&senc_box)?,
        };
        Ok(PiffSenc { senc, override_ })
    }
}

impl Atom for PiffSenc {
    const TYPE: FourCC = UUID;

    /// Without the track's `tenc` the IV size is guessed (see [`Senc`]); use
    /// [`PiffSenc::decode_with_iv_size`] when it is known.
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        Self::decode_body_with(r, None)
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PIFF_SENC_UUID);
        let Some(o) = self.override_ else {
            self.senc.encode_body(out);
            return;
        };
        // Version and flags, the override, then the senc body after its own version/flags.
        let at = out.len();
        self.senc.encode_body(out);
        let flags = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) | Self::OVERRIDE;
        out[at..at + 4].copy_from_slice(&flags.to_be_bytes());
        let mut fields = Vec::with_capacity(20);
        fields.put_u32((o.algorithm_id << 8) | o.iv_size as u32);
        fields.extend_from_slice(&o.kid);
        out.splice(at + 4..at + 4, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::SencSample;
    use crate::subsample::Subsample;
    use crate::testutil::{hex, round_trip};

    #[test]
    fn round_trips() {
        // Video: flags 2, two samples, 8-byte IVs, subsample maps.
        let h = "00000046 75756964 a2394f525a9b4f14a2446c427c648df4 00000002 00000002
                 0123456789abcdef 0002 0010 00000100 0005 00000000
                 0123456789abcdf0 0001 0060 00000020";
        let p: PiffSenc = round_trip(h);
        assert_eq!((p.senc.iv_size, p.senc.samples.len(), p.override_), (8, 2, None));
        assert_eq!(p.senc.samples[1].subsamples, vec![Subsample { clear: 0x60, protected: 0x20 }]);
        assert_eq!(p.encoded_len(), 0x46);
        assert_eq!(PiffSenc::decode_with_iv_size(&hex(h), 8).unwrap(), p);
        // The per-sample data starts where saio is told it does.
        let b = hex(h);
        assert_eq!(&b[PIFF_SENC_AUX_START as usize..][..8], &hex("0123456789abcdef")[..]);
        // Audio: flags 0, IVs only.
        let p: PiffSenc = round_trip("00000030 75756964 a2394f525a9b4f14a2446c427c648df4 00000000 00000002 0123456789abcdef 0123456789abcdf0");
        assert!(!p.senc.has_subsamples());
        // Override: AlgorithmID 1, IV size 16, a KID; one sample.
        let h = "00000044 75756964 a2394f525a9b4f14a2446c427c648df4 00000001 00000110 abba271e8bcf552bbd2e86a434a9a5d9
                 00000001 0123456789abcdef0000000000000000";
        let p: PiffSenc = round_trip(h);
        assert_eq!(p.override_.map(|o| (o.algorithm_id, o.iv_size)), Some((1, 16)));
        assert_eq!((p.senc.iv_size, p.senc.flags, p.aux_start()), (16, 0, 52));
        assert_eq!(p.encoded_len(), 0x44);
    }

    #[test]
    fn built_from_senc() {
        let mut senc = Senc::new(8, true);
        let mut iv = [7u8; 16];
        iv[8..].fill(0); // only the first iv_size bytes are kept
        senc.samples.push(SencSample { iv, subsamples: vec![Subsample { clear: 5, protected: 16 }] });
        let p = PiffSenc::new(senc.clone());
        let b = p.to_vec();
        assert_eq!(b.len(), p.encoded_len());
        assert_eq!(&b[24..], &senc.to_vec()[8..], "a senc body after the extended type");
        assert_eq!(PiffSenc::decode_with_iv_size(&b, 8).unwrap(), p);
    }

    #[test]
    fn hostile() {
        // Another uuid.
        assert!(PiffSenc::decode(&hex("00000020 75756964 6d1d9b0542d544e680e2141daff757b2 00000000 00000000")).is_err());
        // Short extended type, huge counts, truncated override.
        assert!(PiffSenc::decode(&hex("00000010 75756964 a2394f525a9b4f14")).is_err());
        assert!(PiffSenc::decode_with_iv_size(&hex("00000020 75756964 a2394f525a9b4f14a2446c427c648df4 00000002 ffffffff"), 8).is_err());
        assert!(PiffSenc::decode_with_iv_size(&hex("00000024 75756964 a2394f525a9b4f14a2446c427c648df4 00000001 00000108 abba271e"), 8).is_err());
        // An override IV size senc does not allow.
        let h = "00000034 75756964 a2394f525a9b4f14a2446c427c648df4 00000001 00000107 abba271e8bcf552bbd2e86a434a9a5d9 00000000";
        assert!(PiffSenc::decode_with_iv_size(&hex(h), 8).is_err());
    }
}
