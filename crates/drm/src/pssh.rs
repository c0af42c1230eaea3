//! The ISO/IEC 23001-7 `pssh` box, written whole.
//!
//! ```text
//! FullBox('pssh', version, flags = 0)
//!   u8[16]  SystemID
//!   v1 only: u32 KID_count; u8[16] KID[KID_count]
//!   u32     DataSize; u8[DataSize] Data
//! ```
//!
//! It lives here rather than in the box crate because the same bytes go to three places:
//! the init segment, DASH `cenc:pssh` (base64 of the full box) and HLS `data:` URIs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::{Error, Result};
use crate::kid::{Kid, SystemId};

/// Upper bound on a `pssh` box we build or parse: far above any real one (a PlayReady
/// Object is ≤ 15 KB) and small enough that hostile input cannot make us allocate much.
pub const MAX_PSSH_BOX_SIZE: usize = 64 * 1024;

/// Size of the fixed part: box header (8) + version/flags (4) + SystemID (16) + DataSize (4).
const FIXED: usize = 8 + 4 + 16 + 4;

/// A `pssh` box. Fields are private so version and KID list always agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsshBox {
    system_id: SystemId,
    version: u8,
    kids: Vec<Kid>,
    data: Vec<u8>,
}

impl PsshBox {
    /// A version 0 box (no KID list), e.g. Widevine or PlayReady.
    pub fn v0(system_id: SystemId, data: Vec<u8>) -> Result<Self> {
        let b = PsshBox { system_id, version: 0, kids: Vec::new(), data };
        b.check_size()?;
        Ok(b)
    }

    /// A version 1 box listing `kids`, e.g. the W3C Common system with empty data.
    pub fn v1(system_id: SystemId, kids: Vec<Kid>, data: Vec<u8>) -> Result<Self> {
        let b = PsshBox { system_id, version: 1, kids, data };
        b.check_size()?;
        Ok(b)
    }

    /// The DRM system.
    pub fn system_id(&self) -> SystemId {
        self.system_id
    }

    /// 0 or 1.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The KID list (empty for version 0).
    pub fn kids(&self) -> &[Kid] {
        &self.kids
    }

    /// The system-specific data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Total box size in bytes.
    pub fn size(&self) -> usize {
        let kid_part = if self.version == 1 { 4 + 16 * self.kids.len() } else { 0 };
        FIXED + kid_part + self.data.len()
    }

    /// The whole box, header included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size = self.size();
        let mut out = Vec::with_capacity(size);
        // Sizes were bounded by MAX_PSSH_BOX_SIZE at construction, so they fit in u32.
        out.extend_from_slice(&(size as u32).to_be_bytes());
        out.extend_from_slice(b"pssh");
        out.extend_from_slice(&[self.version, 0, 0, 0]);
        out.extend_from_slice(self.system_id.as_bytes());
        if self.version == 1 {
            out.extend_from_slice(&(self.kids.len() as u32).to_be_bytes());
            for kid in &self.kids {
                out.extend_from_slice(kid.as_bytes());
            }
        }
        out.extend_from_slice(&(self.data.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.data);
        debug_assert_eq!(out.len(), size);
        out
    }

    /// Base64 (standard alphabet, padded) of the whole box: DASH `cenc:pssh`, CPIX `PSSH`,
    /// HLS `data:text/plain;base64,` URIs.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.to_bytes())
    }

    /// Decodes exactly one `pssh` box occupying all of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        if buf.len() > MAX_PSSH_BOX_SIZE {
            return Err(Error::TooLarge { what: "pssh box", got: buf.len(), limit: MAX_PSSH_BOX_SIZE });
        }
        let mut r = Cursor { buf, pos: 0 };
        let size = r.u32()? as usize;
        if size == 1 || size == 0 {
            return Err(Error::MalformedPssh("64-bit or open-ended box size"));
        }
        if size != buf.len() {
            return Err(Error::MalformedPssh("box size does not match the bytes given"));
        }
        if r.take(4)? != b"pssh" {
            return Err(Error::MalformedPssh("not a pssh box"));
        }
        let version = r.take(4)?[0]; // take(4) returned exactly 4 bytes
        if version > 1 {
            return Err(Error::MalformedPssh("unknown pssh version"));
        }
        let system_id = SystemId(r.array16()?);
        let mut kids = Vec::new();
        if version == 1 {
            let count = r.u32()? as usize;
            // Bound by what is left before allocating anything.
            if count > r.remaining() / 16 {
                return Err(Error::MalformedPssh("KID count exceeds box"));
            }
            kids.reserve_exact(count);
            for _ in 0..count {
                kids.push(Kid(r.array16()?));
            }
        }
        let data_size = r.u32()? as usize;
        if data_size != r.remaining() {
            return Err(Error::MalformedPssh("data size does not match box size"));
        }
        let data = r.take(data_size)?.to_vec();
        Ok(PsshBox { system_id, version, kids, data })
    }

    fn check_size(&self) -> Result<()> {
        // Compare counts before multiplying so a huge KID list cannot overflow.
        if self.kids.len() > MAX_PSSH_BOX_SIZE / 16 || self.data.len() > MAX_PSSH_BOX_SIZE {
            return Err(Error::TooLarge { what: "pssh box", got: usize::MAX, limit: MAX_PSSH_BOX_SIZE });
        }
        let size = self.size();
        if size > MAX_PSSH_BOX_SIZE {
            return Err(Error::TooLarge { what: "pssh box", got: size, limit: MAX_PSSH_BOX_SIZE });
        }
        Ok(())
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::MalformedPssh("truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?; // exactly 4 bytes
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn array16(&mut self) -> Result<[u8; 16]> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kid::hex;

    #[test]
    fn v0_layout() {
        let b = PsshBox::v0(SystemId::WIDEVINE, vec![0xaa, 0xbb]).unwrap();
        assert_eq!(
            hex(&b.to_bytes()),
            concat!("00000022", "70737368", "00000000", "edef8ba979d64acea3c827dcd51d21ed", "00000002", "aabb")
        );
        assert_eq!(PsshBox::parse(&b.to_bytes()).unwrap(), b);
    }

    #[test]
    fn v1_layout() {
        let kid = Kid::parse("abba271e-8bcf-552b-bd2e-86a434a9a5d9").unwrap();
        let b = PsshBox::v1(SystemId::W3C_COMMON, vec![kid], Vec::new()).unwrap();
        assert_eq!(
            hex(&b.to_bytes()),
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
        assert_eq!(b.size(), 0x34);
        assert_eq!(PsshBox::parse(&b.to_bytes()).unwrap(), b);
        assert_eq!(b.to_base64(), STANDARD.encode(b.to_bytes()));
    }

    #[test]
    fn parse_rejects_hostile() {
        let good = PsshBox::v1(SystemId::W3C_COMMON, vec![Kid([7; 16])], vec![1, 2, 3]).unwrap().to_bytes();
        // Every truncation fails cleanly.
        for n in 0..good.len() {
            assert!(PsshBox::parse(&good[..n]).is_err(), "truncated to {n}");
        }
        // A KID count far beyond the box.
        let mut bad = good.clone();
        bad[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(PsshBox::parse(&bad), Err(Error::MalformedPssh("KID count exceeds box")));
        // Data size disagreeing with the box size.
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 7..n - 3].copy_from_slice(&9u32.to_be_bytes());
        assert!(PsshBox::parse(&bad).is_err());
        // Version 2, wrong type, 64-bit size.
        let mut bad = good.clone();
        bad[8] = 2;
        assert!(PsshBox::parse(&bad).is_err());
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(b"moov");
        assert!(PsshBox::parse(&bad).is_err());
        let mut bad = good;
        bad[0..4].copy_from_slice(&1u32.to_be_bytes());
        assert!(PsshBox::parse(&bad).is_err());
    }

    #[test]
    fn size_bounds() {
        assert!(PsshBox::v0(SystemId::PLAYREADY, vec![0; MAX_PSSH_BOX_SIZE]).is_err());
        assert!(PsshBox::v1(SystemId::W3C_COMMON, vec![Kid([0; 16]); 5000], Vec::new()).is_err());
        assert!(PsshBox::v0(SystemId::PLAYREADY, vec![0; 1000]).is_ok());
    }
}
