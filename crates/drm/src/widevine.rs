//! Widevine `pssh` data: the `WidevinePsshData` protobuf (proto2), hand-encoded.
//!
//! Only the fields a packager with raw keys fills are written, in field-number order:
//!
//! | field | # | wire type |
//! |---|---|---|
//! | key_id | 2 | length-delimited, repeated (16-byte KIDs) |
//! | provider | 3 | length-delimited (string) |
//! | content_id | 4 | length-delimited (bytes) |
//! | protection_scheme | 9 | varint (FourCC as big-endian u32) |

use crate::error::{Error, Result};
use crate::key::Scheme;
use crate::kid::{Kid, SystemId};
use crate::pssh::{bounded, Pssh};

/// The Widevine header carried in the `pssh` data and in HLS `data:` URIs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct WidevinePsshData {
    /// KIDs the licence should cover (field 2). At least one.
    pub key_ids: Vec<Kid>,
    /// Content provider name, if the licence service wants it (field 3).
    pub provider: Option<String>,
    /// Content ID, if the licence service wants it (field 4).
    pub content_id: Option<Vec<u8>>,
    /// Protection scheme FourCC (field 9).
    pub protection_scheme: Option<Scheme>,
}

impl WidevinePsshData {
    /// KIDs plus scheme: what a packager with raw keys writes.
    pub fn new(key_ids: Vec<Kid>, scheme: Scheme) -> Self {
        WidevinePsshData { key_ids, provider: None, content_id: None, protection_scheme: Some(scheme) }
    }

    /// The protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 * self.key_ids.len() + 16);
        for kid in &self.key_ids {
            field_bytes(&mut out, 2, kid.as_bytes());
        }
        if let Some(p) = &self.provider {
            field_bytes(&mut out, 3, p.as_bytes());
        }
        if let Some(c) = &self.content_id {
            field_bytes(&mut out, 4, c);
        }
        if let Some(s) = self.protection_scheme {
            varint(&mut out, (9 << 3) as u64);
            varint(&mut out, u64::from(s.fourcc().as_u32()));
        }
        out
    }

    /// A version 0 Widevine `pssh` box (as Shaka Packager writes it) carrying this data.
    pub fn to_pssh_box(&self) -> Result<Pssh> {
        if self.key_ids.is_empty() {
            return Err(Error::NoKids { what: "Widevine pssh" });
        }
        bounded(Pssh::new(SystemId::WIDEVINE, Vec::new(), self.encode()))
    }
}

fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_cenc::kid::hex;

    fn kid() -> Kid {
        Kid::parse("abba271e-8bcf-552b-bd2e-86a434a9a5d9").unwrap()
    }

    // Expected bytes worked out by hand from the protobuf wire format:
    //   key (tag) byte = field_number << 3 | wire_type
    //   field 2, wire type 2 -> 0x12; length 16 -> 0x10
    //   field 4, wire type 2 -> 0x22
    //   field 9, wire type 0 -> 0x48
    //   'cenc' = 0x63656e63; 7-bit groups from the low end: 0x63, 0x5c, 0x15, 0x1b, 0x06
    //     -> e3 dc 95 9b 06 (continuation bit on all but the last)
    //   'cbcs' = 0x63626373; groups 0x73, 0x46, 0x09, 0x1b, 0x06 -> f3 c6 89 9b 06
    #[test]
    fn encodes_kid_and_cenc() {
        let d = WidevinePsshData::new(vec![kid()], Scheme::Cenc);
        assert_eq!(hex(&d.encode()), "1210abba271e8bcf552bbd2e86a434a9a5d948e3dc959b06");
    }

    #[test]
    fn encodes_two_kids_content_id_cbcs() {
        let d = WidevinePsshData {
            key_ids: vec![kid(), Kid([0x11; 16])],
            provider: Some("sc".into()),
            content_id: Some(b"movie".to_vec()),
            protection_scheme: Some(Scheme::Cbcs),
        };
        assert_eq!(
            hex(&d.encode()),
            concat!(
                "1210",
                "abba271e8bcf552bbd2e86a434a9a5d9",
                "1210",
                "11111111111111111111111111111111",
                "1a02",
                "7363", // field 3 "sc"
                "2205",
                "6d6f766965", // field 4 "movie"
                "48",
                "f3c6899b06"
            )
        );
    }

    #[test]
    fn pssh_box_is_v0() {
        let b = WidevinePsshData::new(vec![kid()], Scheme::Cenc).to_pssh_box().unwrap();
        assert_eq!(b.version, 0);
        assert_eq!(b.system_id, SystemId::WIDEVINE);
        assert_eq!(
            hex(&sealcast_isobmff::Atom::to_vec(&b)),
            concat!(
                "00000038",
                "70737368",
                "00000000",
                "edef8ba979d64acea3c827dcd51d21ed",
                "00000018",
                "1210abba271e8bcf552bbd2e86a434a9a5d948e3dc959b06"
            )
        );
        assert!(WidevinePsshData::default().to_pssh_box().is_err());
    }

    #[test]
    fn long_lengths_use_multibyte_varints() {
        let d = WidevinePsshData { content_id: Some(vec![0; 300]), ..Default::default() };
        let e = d.encode();
        // 300 = 0b10_0101100 -> ac 02
        assert_eq!(&e[..3], &[0x22, 0xac, 0x02]);
        assert_eq!(e.len(), 3 + 300);
    }
}
