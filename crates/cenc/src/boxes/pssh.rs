//! `pssh`: protection system specific header (ISO/IEC 23001-7 §8.1).
//!
//! The one `pssh` type: the init segment, DASH `cenc:pssh`, HLS `data:` URIs and CPIX all
//! carry these bytes. `sealcast_drm::pssh` adds the size bound and base64 those need.

use sealcast_isobmff::writer::Put;
use sealcast_isobmff::{Atom, Error, FourCC, Reader, Result};

use super::types::PSSH;
use crate::kid::{Kid, SystemId};

/// Protection system specific header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pssh {
    /// 0, or 1 with a KID list.
    pub version: u8,
    /// Flags (0; kept as read).
    pub flags: u32,
    /// SystemID.
    pub system_id: SystemId,
    /// KIDs (version 1).
    pub kids: Vec<Kid>,
    /// System-specific data.
    pub data: Vec<u8>,
}

impl Pssh {
    /// A `pssh` in version 1 when `kids` is not empty, else version 0.
    pub fn new(system_id: SystemId, kids: Vec<Kid>, data: Vec<u8>) -> Self {
        Pssh { version: if kids.is_empty() { 0 } else { 1 }, flags: 0, system_id, kids, data }
    }

    /// The W3C common `pssh` for `kids` (what EME ClearKey reads): version 1, no data.
    pub fn common(kids: Vec<Kid>) -> Self {
        Pssh { version: 1, flags: 0, system_id: SystemId::W3C_COMMON, kids, data: Vec::new() }
    }
}

impl Atom for Pssh {
    const TYPE: FourCC = PSSH;
    fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let (version, flags) = r.version_flags()?;
        if version > 1 {
            return Err(Error::Unsupported { what: PSSH, detail: "version" });
        }
        let system_id = SystemId(read16(r)?);
        let mut kids = Vec::new();
        if version == 1 {
            let n = r.u32()?;
            let n = r.check_count(n as u64, 16)?;
            kids.reserve_exact(n);
            for _ in 0..n {
                kids.push(Kid(read16(r)?));
            }
        }
        let n = r.u32()? as usize;
        let data = r.take(n)?.to_vec();
        r.finish()?;
        Ok(Pssh { version, flags, system_id, kids, data })
    }
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.put_u32(((self.version as u32) << 24) | (self.flags & 0x00ff_ffff));
        out.extend_from_slice(self.system_id.as_bytes());
        if self.version == 1 {
            out.put_u32(self.kids.len() as u32);
            for k in &self.kids {
                out.extend_from_slice(k.as_bytes());
            }
        }
        out.put_u32(self.data.len() as u32);
        out.extend_from_slice(&self.data);
    }
}

fn read16(r: &mut Reader<'_>) -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    b.copy_from_slice(r.take(16)?);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{hex, round_trip};

    #[test]
    fn round_trips() {
        // The common-system pssh Shaka Packager 3.8 puts in the init segment.
        let p: Pssh = round_trip("00000034 70737368 01000000 1077efecc0b24d02ace33c1e52e2fb4b 00000001 abba271e8bcf552bbd2e86a434a9a5d9 00000000");
        assert_eq!(p, Pssh::common(vec![Kid(hex("abba271e8bcf552bbd2e86a434a9a5d9").try_into().unwrap())]));
        // Version 0 with data.
        let p: Pssh = round_trip("00000024 70737368 00000000 edef8ba979d64acea3c827dcd51d21ed 00000004 08011234");
        assert_eq!(p, Pssh::new(SystemId::WIDEVINE, vec![], hex("08011234")));
        // A KID count past the end of the box.
        assert!(Pssh::decode(&hex("00000024 70737368 01000000 1077efecc0b24d02ace33c1e52e2fb4b 10000000 00000000")).is_err());
    }
}
