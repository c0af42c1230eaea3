//! `tenc`: a track's default encryption parameters (ISO/IEC 23001-7 §8.2).

use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, Error, FourCC, Reader, Result};

use super::types::TENC;

/// Track encryption defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenc {
    /// 0 (`cenc`, `cbc1`) or 1 (`cens`, `cbcs`: carries the pattern).
    pub version: u8,
    /// Flags (0; kept as read).
    pub flags: u32,
    /// The first reserved byte (0; kept as read).
    pub reserved: u8,
    /// default_crypt_byte_block (version 1; kept as read in version 0, where it is reserved).
    pub crypt_byte_block: u8,
    /// default_skip_byte_block (as above).
    pub skip_byte_block: u8,
    /// default_isProtected (1 for encrypted tracks).
    pub is_protected: u8,
    /// default_Per_Sample_IV_Size: 0 (constant IV), 8 or 16.
    pub per_sample_iv_size: u8,
    /// default_KID.
    pub kid: [u8; 16],
    /// default_constant_IV (8 or 16 bytes), present when protected with no per-sample IV.
    pub constant_iv: Option<Vec<u8>>,
}

impl Tenc {
    /// `cenc` defaults: version 0, per-sample IVs of `iv_size` bytes.
    pub fn cenc(kid: [u8; 16], iv_size: u8) -> Self {
        Tenc { version: 0, flags: 0, reserved: 0, crypt_byte_block: 0, skip_byte_block: 0, is_protected: 1, per_sample_iv_size: iv_size, kid, constant_iv: None }
    }

    /// `cbcs` defaults: version 1, pattern `crypt:skip`, a 16-byte constant IV.
    pub fn cbcs(kid: [u8; 16], crypt: u8, skip: u8, constant_iv: [u8; 16]) -> Self {
        Tenc {
            version: 1,
            flags: 0,
            reserved: 0,
            crypt_byte_block: crypt,
            skip_byte_block: skip,
            is_protected: 1,
            per_sample_iv_size: 0,
            kid,
            constant_iv: Some(constant_iv.to_vec()),
        }
    }
}

impl Atom for Tenc {
    const TYPE: FourCC = TENC;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        if version > 1 {
            return Err(Error::Unsupported { what: TENC, detail: "version" });
        }
        let reserved = r.u8()?;
        let pattern = r.u8()?;
        let is_protected = r.u8()?;
        let per_sample_iv_size = r.u8()?;
        let mut kid = [0u8; 16];
        kid.copy_from_slice(r.take(16)?);
        let constant_iv = if is_protected == 1 && per_sample_iv_size == 0 {
            let n = r.u8()? as usize;
            Some(r.take(n)?.to_vec())
        } else {
            None
        };
        r.finish()?;
        Ok(Tenc { version, flags, reserved, crypt_byte_block: pattern >> 4, skip_byte_block: pattern & 0xf, is_protected, per_sample_iv_size, kid, constant_iv })
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | (self.flags & 0x00ff_ffff));
        out.put_u8(self.reserved);
        out.put_u8((self.crypt_byte_block << 4) | (self.skip_byte_block & 0xf));
        out.put_u8(self.is_protected);
        out.put_u8(self.per_sample_iv_size);
        out.extend_from_slice(&self.kid);
        if let Some(iv) = &self.constant_iv {
            out.put_u8(iv.len() as u8);
            out.extend_from_slice(iv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, round_trip};

    #[test]
    fn round_trips() {
        // cbcs video as Shaka Packager 3.8 writes it (pattern 1:9, 16-byte constant IV).
        let t: Tenc = round_trip("00000031 74656e63 01000000 00190100 abba271e8bcf552bbd2e86a434a9a5d9 10 0123456789abcdef0123456789abcdef");
        assert_eq!((t.crypt_byte_block, t.skip_byte_block, t.per_sample_iv_size), (1, 9, 0));
        assert_eq!(t, Tenc::cbcs(hex16("abba271e8bcf552bbd2e86a434a9a5d9"), 1, 9, hex16("0123456789abcdef0123456789abcdef")));
        // cenc, 8-byte IVs.
        let t: Tenc = round_trip("00000020 74656e63 00000000 00000108 abba271e8bcf552bbd2e86a434a9a5d9");
        assert_eq!(t, Tenc::cenc(hex16("abba271e8bcf552bbd2e86a434a9a5d9"), 8));
        // Truncated constant IV.
        assert!(Tenc::decode(&hex("00000022 74656e63 01000000 00000100 abba271e8bcf552bbd2e86a434a9a5d9 10 01")).is_err());
    }

    fn hex16(s: &str) -> [u8; 16] {
        hex(s).try_into().unwrap()
    }
}
