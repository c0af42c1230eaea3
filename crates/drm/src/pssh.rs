//! The ISO/IEC 23001-7 `pssh` box as DRM signalling carries it.
//!
//! The box type itself is [`sealcast_cenc::boxes::Pssh`] (one type for the init segment and
//! for signalling). What signalling adds lives here: a size bound on boxes we build or read
//! from outside (a CPIX `PSSH` element), the "exactly one box" rule for such input, and the
//! base64 form that DASH `cenc:pssh`, CPIX `PSSH` and HLS `data:` URIs carry.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sealcast_isobmff::Atom as _;

pub use sealcast_cenc::boxes::Pssh;

use crate::error::{Error, Result};

/// The `pssh` box type under the name this crate has always exported it by.
pub type PsshBox = Pssh;

/// Upper bound on a `pssh` box we build or parse: far above any real one (a PlayReady
/// Object is ≤ 15 KB) and small enough that hostile input cannot make us allocate much.
pub const MAX_PSSH_BOX_SIZE: usize = 64 * 1024;

/// Size of the fixed part: box header (8) + version/flags (4) + SystemID (16) + DataSize (4).
const FIXED: usize = 8 + 4 + 16 + 4;

/// Total size of `p` encoded, computed without encoding it.
pub fn size(p: &Pssh) -> usize {
    let kid_part = if p.version == 1 { 4 + 16 * p.kids.len() } else { 0 };
    FIXED + kid_part + p.data.len()
}

/// `p`, if its encoding stays within [`MAX_PSSH_BOX_SIZE`]: what every builder here returns,
/// so a huge KID list or system data is an error rather than a box nobody can use.
pub fn bounded(p: Pssh) -> Result<Pssh> {
    // Compare counts before multiplying so a huge KID list cannot overflow.
    if p.kids.len() > MAX_PSSH_BOX_SIZE / 16 || p.data.len() > MAX_PSSH_BOX_SIZE {
        return Err(Error::TooLarge { what: "pssh box", got: usize::MAX, limit: MAX_PSSH_BOX_SIZE });
    }
    let size = size(&p);
    if size > MAX_PSSH_BOX_SIZE {
        return Err(Error::TooLarge { what: "pssh box", got: size, limit: MAX_PSSH_BOX_SIZE });
    }
    Ok(p)
}

/// Decodes exactly one `pssh` box occupying all of `buf` (32-bit size field), at most
/// [`MAX_PSSH_BOX_SIZE`] bytes.
pub fn parse(buf: &[u8]) -> Result<Pssh> {
    if buf.len() > MAX_PSSH_BOX_SIZE {
        return Err(Error::TooLarge { what: "pssh box", got: buf.len(), limit: MAX_PSSH_BOX_SIZE });
    }
    // A box reader accepts a 64-bit or "to the end" size and ignores what follows the box;
    // a signalled `pssh` is copied into manifests as it is, so it must be exactly one box.
    let declared = buf.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if declared != Some(buf.len()) {
        return Err(Error::MalformedPssh("box size does not match the bytes given".into()));
    }
    Pssh::decode(buf).map_err(|e| Error::MalformedPssh(e.to_string()))
}

/// Base64 (standard alphabet, padded) of the whole box: DASH `cenc:pssh`, CPIX `PSSH`,
/// HLS `data:text/plain;base64,` URIs.
pub fn to_base64(p: &Pssh) -> String {
    STANDARD.encode(p.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kid::{Kid, SystemId};
    use sealcast_cenc::kid::hex;

    #[test]
    fn v0_layout() {
        let b = bounded(Pssh::new(SystemId::WIDEVINE, Vec::new(), vec![0xaa, 0xbb])).unwrap();
        assert_eq!(
            hex(&b.to_vec()),
            concat!("00000022", "70737368", "00000000", "edef8ba979d64acea3c827dcd51d21ed", "00000002", "aabb")
        );
        assert_eq!(parse(&b.to_vec()).unwrap(), b);
    }

    #[test]
    fn v1_layout() {
        let kid = Kid::parse("abba271e-8bcf-552b-bd2e-86a434a9a5d9").unwrap();
        let b = bounded(Pssh::common(vec![kid])).unwrap();
        assert_eq!(
            hex(&b.to_vec()),
            concat!(
                "00000034",
                "70737368",
                "01000000",
                "1077efecc0b24d02ace33c1e52e2fb4b",
                "00000001",
                "abba271e8bcf552bbd2e86a434a9a5d9",
                "00000000"
            )
        );
        assert_eq!(size(&b), 0x34);
        assert_eq!(parse(&b.to_vec()).unwrap(), b);
        assert_eq!(to_base64(&b), STANDARD.encode(b.to_vec()));
    }

    #[test]
    fn parse_rejects_hostile() {
        let good = Pssh::new(SystemId::W3C_COMMON, vec![Kid([7; 16])], vec![1, 2, 3]).to_vec();
        // Every truncation fails cleanly.
        for n in 0..good.len() {
            assert!(parse(&good[..n]).is_err(), "truncated to {n}");
        }
        // A KID count far beyond the box.
        let mut bad = good.clone();
        bad[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(parse(&bad), Err(Error::MalformedPssh(_))));
        // Data size disagreeing with the box size.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 7..n - 3].copy_from_slice(&9u32.to_be_bytes());
        assert!(parse(&bad).is_err());
        // Version 2, wrong type, 64-bit size, trailing bytes after the box.
        let mut bad = good.clone();
        bad[8] = 2;
        assert!(parse(&bad).is_err());
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(b"moov");
        assert!(parse(&bad).is_err());
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&1u32.to_be_bytes());
        assert!(parse(&bad).is_err());
        let mut bad = good;
        bad.push(0);
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn size_bounds() {
        assert!(bounded(Pssh::new(SystemId::PLAYREADY, Vec::new(), vec![0; MAX_PSSH_BOX_SIZE])).is_err());
        assert!(bounded(Pssh::common(vec![Kid([0; 16]); 5000])).is_err());
        assert!(bounded(Pssh::new(SystemId::PLAYREADY, Vec::new(), vec![0; 1000])).is_ok());
    }
}
