//! PlayReady Object (PRO) and PlayReady Header (`WRMHEADER`).
//!
//! The PRO is little-endian: `u32` total length, `u16` record count, then records of
//! `u16` type, `u16` length and value. We write one record of type 1, the `WRMHEADER` XML
//! in UTF-16LE without a byte-order mark. The header spec requires explicit closing tags
//! and attributes in alphabetical order; we write no whitespace between elements.
//!
//! Header version per use:
//!
//! * `cenc`, one key → **4.0.0.0** (readable by every PlayReady client):
//!   `PROTECTINFO{KEYLEN=16, ALGID=AESCTR}`, then `KID`, `CHECKSUM`, `LA_URL`.
//! * `cenc` with several keys, or `cbcs` → **4.3.0.0** (PlayReady 4+, the first version
//!   with `AESCBC`): `PROTECTINFO{KIDS{KID ALGID CHECKSUM? VALUE}}`, then `LA_URL`.
//!   `AESCBC` KIDs carry no checksum.
//!
//! KID values are base64 of the Microsoft GUID byte layout ([`Kid::to_playready_bytes`]).
//! The checksum is the first 8 bytes of AES-128-ECB(content key, that GUID layout) — the
//! same computation Azure Media Services uses for its `ContentKey` checksum.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::{Error, Result};
use crate::key::{ContentKey, Scheme};
use crate::kid::{Kid, SystemId};
use crate::pssh::{bounded, Pssh};
use crate::xml::{check_embeddable, escape};

/// XML namespace of `WRMHEADER`.
pub const PLAYREADY_HEADER_NS: &str = "http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader";

/// The header spec says a PRO "should not exceed 15 KB"; we enforce it.
pub const MAX_PRO_SIZE: usize = 15 * 1024;

/// PRO record type of a PlayReady Header.
const RECORD_PLAYREADY_HEADER: u16 = 1;

/// The PlayReady KID checksum: first 8 bytes of AES-128-ECB(key, GUID-layout KID).
pub fn checksum(kid: Kid, key: &[u8; 16]) -> [u8; 8] {
    let cipher = Aes128::new(key.into());
    let mut block = kid.to_playready_bytes().into();
    cipher.encrypt_block(&mut block);
    let mut out = [0u8; 8];
    out.copy_from_slice(&block[..8]);
    out
}

/// A PlayReady Header under construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayReadyHeader {
    scheme: Scheme,
    /// KIDs with their checksums (`None` for `cbcs`).
    kids: Vec<(Kid, Option<[u8; 8]>)>,
    la_url: Option<String>,
}

impl PlayReadyHeader {
    /// A header for `keys` under `scheme`. For `cenc` the keys' bytes are used for the
    /// checksums (and must be 128-bit); for `cbcs` only their KIDs.
    pub fn new<'a>(scheme: Scheme, keys: impl IntoIterator<Item = &'a ContentKey>) -> Result<Self> {
        let mut kids = Vec::new();
        for k in keys {
            let sum = match scheme {
                Scheme::Cenc => Some(checksum(k.kid(), k.aes128_bytes()?)),
                Scheme::Cbcs => None,
            };
            kids.push((k.kid(), sum));
        }
        if kids.is_empty() {
            return Err(Error::NoKids { what: "PlayReady header" });
        }
        Ok(PlayReadyHeader { scheme, kids, la_url: None })
    }

    /// Sets the licence acquisition URL (`LA_URL`).
    pub fn with_la_url(mut self, url: &str) -> Result<Self> {
        check_embeddable("PlayReady LA_URL", url, false)?;
        self.la_url = Some(url.to_owned());
        Ok(self)
    }

    /// `"4.0.0.0"` or `"4.3.0.0"` (see the module docs).
    pub fn version(&self) -> &'static str {
        if self.scheme == Scheme::Cenc && self.kids.len() == 1 {
            "4.0.0.0"
        } else {
            "4.3.0.0"
        }
    }

    /// The `WRMHEADER` XML text.
    pub fn to_xml(&self) -> String {
        let version = self.version();
        let mut x = format!(r#"<WRMHEADER xmlns="{PLAYREADY_HEADER_NS}" version="{version}"><DATA><PROTECTINFO>"#);
        if version == "4.0.0.0" {
            // `new` refuses an empty key list, so there is a first KID.
            let (kid, sum) = self.kids[0];
            x.push_str("<KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO>");
            x.push_str(&format!("<KID>{}</KID>", STANDARD.encode(kid.to_playready_bytes())));
            if let Some(sum) = sum {
                x.push_str(&format!("<CHECKSUM>{}</CHECKSUM>", STANDARD.encode(sum)));
            }
        } else {
            let algid = match self.scheme {
                Scheme::Cenc => "AESCTR",
                Scheme::Cbcs => "AESCBC",
            };
            x.push_str("<KIDS>");
            for (kid, sum) in &self.kids {
                // Attributes in alphabetical order: ALGID, CHECKSUM, VALUE.
                x.push_str(&format!(r#"<KID ALGID="{algid}""#));
                if let Some(sum) = sum {
                    x.push_str(&format!(r#" CHECKSUM="{}""#, STANDARD.encode(sum)));
                }
                x.push_str(&format!(r#" VALUE="{}"></KID>"#, STANDARD.encode(kid.to_playready_bytes())));
            }
            x.push_str("</KIDS></PROTECTINFO>");
        }
        if let Some(u) = &self.la_url {
            x.push_str(&format!("<LA_URL>{}</LA_URL>", escape(u)));
        }
        x.push_str("</DATA></WRMHEADER>");
        x
    }

    /// The PlayReady Object bytes (DASH `mspr:pro`, Smooth `ProtectionHeader`, HLS
    /// `data:text/plain;charset=UTF-16;base64,…`, `pssh` data).
    pub fn to_pro(&self) -> Result<Vec<u8>> {
        let utf16: Vec<u8> = self.to_xml().encode_utf16().flat_map(u16::to_le_bytes).collect();
        let total = 4 + 2 + 2 + 2 + utf16.len();
        if total > MAX_PRO_SIZE {
            return Err(Error::TooLarge { what: "PlayReady Object", got: total, limit: MAX_PRO_SIZE });
        }
        let mut pro = Vec::with_capacity(total);
        // Both fit: total <= MAX_PRO_SIZE < u16::MAX.
        pro.extend_from_slice(&(total as u32).to_le_bytes());
        pro.extend_from_slice(&1u16.to_le_bytes());
        pro.extend_from_slice(&RECORD_PLAYREADY_HEADER.to_le_bytes());
        pro.extend_from_slice(&(utf16.len() as u16).to_le_bytes());
        pro.extend_from_slice(&utf16);
        Ok(pro)
    }

    /// A version 0 PlayReady `pssh` box whose data is the PRO (as Shaka Packager writes it).
    pub fn to_pssh_box(&self) -> Result<Pssh> {
        bounded(Pssh::new(SystemId::PLAYREADY, Vec::new(), self.to_pro()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyKind;
    use sealcast_cenc::kid::hex;

    // FORMATS.md 3.3 verified vector.
    const KID: &str = "abba271e-8bcf-552b-bd2e-86a434a9a5d9";
    const KEY: [u8; 16] =
        [0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83, 0x92];

    fn key(kind: KeyKind) -> ContentKey {
        ContentKey::aes128(Kid::parse(KID).unwrap(), kind, KEY)
    }

    #[test]
    fn verified_vector() {
        let kid = Kid::parse(KID).unwrap();
        assert_eq!(STANDARD.encode(kid.to_playready_bytes()), "Hie6q8+LK1W9LoakNKml2Q==");
        assert_eq!(STANDARD.encode(checksum(kid, &KEY)), "BB31ycMlSig=");
    }

    #[test]
    fn cenc_single_key_is_4_0() {
        let k = key(KeyKind::CommonEncryption);
        let h =
            PlayReadyHeader::new(Scheme::Cenc, [&k]).unwrap().with_la_url("https://lic.example/pr?a=1&b=2").unwrap();
        assert_eq!(
            h.to_xml(),
            concat!(
                r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.0.0.0">"#,
                "<DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID></PROTECTINFO>",
                "<KID>Hie6q8+LK1W9LoakNKml2Q==</KID><CHECKSUM>BB31ycMlSig=</CHECKSUM>",
                "<LA_URL>https://lic.example/pr?a=1&amp;b=2</LA_URL>",
                "</DATA></WRMHEADER>"
            )
        );
    }

    #[test]
    fn cbcs_is_4_3_without_checksum() {
        let k = key(KeyKind::CommonEncryptionCbcs);
        let h = PlayReadyHeader::new(Scheme::Cbcs, [&k]).unwrap().with_la_url("https://lic.example/pr").unwrap();
        assert_eq!(
            h.to_xml(),
            concat!(
                r#"<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" version="4.3.0.0">"#,
                r#"<DATA><PROTECTINFO><KIDS><KID ALGID="AESCBC" VALUE="Hie6q8+LK1W9LoakNKml2Q=="></KID></KIDS></PROTECTINFO>"#,
                "<LA_URL>https://lic.example/pr</LA_URL></DATA></WRMHEADER>"
            )
        );
    }

    #[test]
    fn cenc_many_keys_is_4_3_with_checksums() {
        let a = key(KeyKind::CommonEncryption);
        let b = ContentKey::aes128(Kid([0x22; 16]), KeyKind::CommonEncryption, [0x33; 16]);
        let h = PlayReadyHeader::new(Scheme::Cenc, [&a, &b]).unwrap();
        assert_eq!(h.version(), "4.3.0.0");
        let x = h.to_xml();
        assert!(
            x.contains(r#"<KID ALGID="AESCTR" CHECKSUM="BB31ycMlSig=" VALUE="Hie6q8+LK1W9LoakNKml2Q=="></KID>"#),
            "{x}"
        );
        assert_eq!(x.matches("<KID ").count(), 2);
    }

    #[test]
    fn pro_layout() {
        let k = key(KeyKind::CommonEncryption);
        let h = PlayReadyHeader::new(Scheme::Cenc, [&k]).unwrap();
        let pro = h.to_pro().unwrap();
        let xml_len = h.to_xml().len() * 2; // ASCII only, so UTF-16 doubles it
        assert_eq!(pro.len(), 10 + xml_len);
        assert_eq!(u32::from_le_bytes(pro[0..4].try_into().unwrap()) as usize, pro.len());
        assert_eq!(&pro[4..8], &[1, 0, 1, 0]);
        assert_eq!(u16::from_le_bytes([pro[8], pro[9]]) as usize, xml_len);
        assert_eq!(&pro[10..14], &[b'<', 0, b'W', 0]);
        let pssh = h.to_pssh_box().unwrap();
        assert_eq!(pssh.system_id, SystemId::PLAYREADY);
        assert_eq!(pssh.data, pro);
        assert!(hex(&sealcast_isobmff::Atom::to_vec(&pssh)).starts_with("00000"));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(PlayReadyHeader::new(Scheme::Cenc, []).is_err());
        let s = ContentKey::new(Kid([1; 16]), KeyKind::StorageEncryption, &[0; 32]).unwrap();
        assert!(PlayReadyHeader::new(Scheme::Cenc, [&s]).is_err());
        let k = key(KeyKind::CommonEncryption);
        let h = PlayReadyHeader::new(Scheme::Cenc, [&k]).unwrap();
        assert!(h.clone().with_la_url("https://a\n<evil/>").is_err());
        let long = format!("https://lic.example/{}", "a".repeat(MAX_PRO_SIZE));
        assert!(matches!(h.with_la_url(&long).unwrap().to_pro(), Err(Error::TooLarge { .. })));
    }
}
