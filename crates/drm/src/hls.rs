//! HLS `#EXT-X-KEY` (media playlist) and `#EXT-X-SESSION-KEY` (multivariant playlist)
//! lines, without the trailing newline.
//!
//! | DRM | METHOD | URI | KEYFORMAT |
//! |---|---|---|---|
//! | FairPlay  | `SAMPLE-AES` | `skd://…` | `com.apple.streamingkeydelivery` (no IV: FairPlay carries it with the key) |
//! | Widevine  | `SAMPLE-AES` (cbcs) / `SAMPLE-AES-CTR` (cenc) | `data:text/plain;base64,<whole pssh box>` | `urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed`, plus `KEYID=0x…` |
//! | PlayReady | same as Widevine | `data:text/plain;charset=UTF-16;base64,<PlayReady Object>` | `com.microsoft.playready` |
//! | AES-128   | `AES-128` | the key URL | (identity, omitted) |
//!
//! Every DRM line carries `KEYFORMATVERSIONS="1"`. Attribute order: `METHOD`, `URI`,
//! `KEYID`, `IV`, `KEYFORMAT`, `KEYFORMATVERSIONS`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::{snippet, Error, Result};
use crate::key::Scheme;
use crate::kid::{Kid, SystemId};
use sealcast_cenc::kid::hex;
use crate::pssh::{to_base64, Pssh};
use crate::xml::check_embeddable;

/// `KEYFORMAT` of FairPlay.
pub const FAIRPLAY_KEYFORMAT: &str = "com.apple.streamingkeydelivery";
/// `KEYFORMAT` of PlayReady.
pub const PLAYREADY_KEYFORMAT: &str = "com.microsoft.playready";

/// Which tag to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTag {
    /// `#EXT-X-KEY` in a media playlist.
    Key,
    /// `#EXT-X-SESSION-KEY` in the multivariant playlist (lets players fetch licences early).
    SessionKey,
}

impl KeyTag {
    fn as_str(self) -> &'static str {
        match self {
            KeyTag::Key => "#EXT-X-KEY",
            KeyTag::SessionKey => "#EXT-X-SESSION-KEY",
        }
    }
}

/// The conventional FairPlay key URI for a KID: `skd://` + 32 lowercase hex digits. The
/// FairPlay key server must understand whatever follows `skd://`; use your own URI when it
/// expects something else.
pub fn skd_uri(kid: Kid) -> String {
    format!("skd://{}", kid.to_hex())
}

/// FairPlay: `METHOD=SAMPLE-AES,URI="skd://…",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"`.
pub fn fairplay(tag: KeyTag, skd_uri: &str) -> Result<String> {
    check_embeddable("FairPlay skd URI", skd_uri, true)?;
    if !skd_uri.starts_with("skd://") {
        return Err(Error::UnsafeText { what: "FairPlay key URI (must start with skd://)", input: snippet(skd_uri) });
    }
    Ok(format!(
        r#"{}:METHOD=SAMPLE-AES,URI="{skd_uri}",KEYFORMAT="{FAIRPLAY_KEYFORMAT}",KEYFORMATVERSIONS="1""#,
        tag.as_str()
    ))
}

/// Widevine: the whole `pssh` box as a base64 data URI, and the KID.
pub fn widevine(tag: KeyTag, scheme: Scheme, pssh: &Pssh, kid: Kid, iv: Option<[u8; 16]>) -> String {
    format!(
        r#"{}:METHOD={},URI="data:text/plain;base64,{}",KEYID=0x{}{},KEYFORMAT="{}",KEYFORMATVERSIONS="1""#,
        tag.as_str(),
        scheme.hls_method(),
        to_base64(pssh),
        kid.to_hex(),
        iv_attr(iv),
        SystemId::WIDEVINE.urn(),
    )
}

/// PlayReady: the PlayReady Object as a UTF-16-labelled base64 data URI.
pub fn playready(tag: KeyTag, scheme: Scheme, pro: &[u8], iv: Option<[u8; 16]>) -> String {
    format!(
        r#"{}:METHOD={},URI="data:text/plain;charset=UTF-16;base64,{}"{},KEYFORMAT="{PLAYREADY_KEYFORMAT}",KEYFORMATVERSIONS="1""#,
        tag.as_str(),
        scheme.hls_method(),
        STANDARD.encode(pro),
        iv_attr(iv),
    )
}

/// HLS AES-128 (envelope): `#EXT-X-KEY:METHOD=AES-128,URI="…"[,IV=0x…]`. Without an IV the
/// player uses the media sequence number.
pub fn aes128(key_uri: &str, iv: Option<[u8; 16]>) -> Result<String> {
    check_embeddable("AES-128 key URI", key_uri, true)?;
    Ok(format!(r#"#EXT-X-KEY:METHOD=AES-128,URI="{key_uri}"{}"#, iv_attr(iv)))
}

/// SAMPLE-AES over MPEG-TS with the key from a key delivery URL (the `identity` key format):
/// `#EXT-X-KEY:METHOD=SAMPLE-AES,URI="…",IV=0x…,KEYFORMAT="identity",KEYFORMATVERSIONS="1"`.
/// The IV is stated: it is constant per track (RFC 8216 §5.2 lets players derive one from
/// the media sequence number only when it is absent).
pub fn sample_aes_identity(key_uri: &str, iv: [u8; 16]) -> Result<String> {
    check_embeddable("SAMPLE-AES key URI", key_uri, true)?;
    Ok(format!(r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="{key_uri}"{},KEYFORMAT="identity",KEYFORMATVERSIONS="1""#, iv_attr(Some(iv))))
}

fn iv_attr(iv: Option<[u8; 16]>) -> String {
    iv.map(|iv| format!(",IV=0x{}", hex(&iv))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{ContentKey, KeyKind};
    use crate::playready::PlayReadyHeader;
    use crate::widevine::WidevinePsshData;

    fn kid() -> Kid {
        Kid::parse("abba271e-8bcf-552b-bd2e-86a434a9a5d9").unwrap()
    }

    #[test]
    fn sample_aes_identity_line() {
        let mut iv = [0u8; 16];
        iv[15] = 0xab;
        assert_eq!(
            sample_aes_identity("/key/00", iv).unwrap(),
            r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="/key/00",IV=0x000000000000000000000000000000ab,KEYFORMAT="identity",KEYFORMATVERSIONS="1""#
        );
        assert!(sample_aes_identity("/key/\"\n#EXT-X-ENDLIST", iv).is_err());
    }

    #[test]
    fn fairplay_lines() {
        let uri = skd_uri(kid());
        assert_eq!(uri, "skd://abba271e8bcf552bbd2e86a434a9a5d9");
        assert_eq!(
            fairplay(KeyTag::Key, &uri).unwrap(),
            r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://abba271e8bcf552bbd2e86a434a9a5d9",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1""#
        );
        assert!(fairplay(KeyTag::SessionKey, &uri).unwrap().starts_with("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,"));
        assert!(fairplay(KeyTag::Key, "https://k").is_err());
        assert!(fairplay(KeyTag::Key, "skd://a\"b").is_err());
        assert!(fairplay(KeyTag::Key, "skd://a\n#EXT-X-ENDLIST").is_err());
    }

    #[test]
    fn widevine_line() {
        let pssh = WidevinePsshData::new(vec![kid()], Scheme::Cenc).to_pssh_box().unwrap();
        assert_eq!(
            widevine(KeyTag::Key, Scheme::Cenc, &pssh, kid(), None),
            format!(
                r#"#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,{}",KEYID=0xabba271e8bcf552bbd2e86a434a9a5d9,KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",KEYFORMATVERSIONS="1""#,
                to_base64(&pssh)
            )
        );
        let l = widevine(KeyTag::SessionKey, Scheme::Cbcs, &pssh, kid(), Some([0x01; 16]));
        assert!(l.starts_with("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,"));
        assert!(l.contains(",IV=0x01010101010101010101010101010101,"));
    }

    #[test]
    fn playready_and_aes128_lines() {
        let k = ContentKey::aes128(kid(), KeyKind::CommonEncryptionCbcs, [7; 16]);
        let pro = PlayReadyHeader::new(Scheme::Cbcs, [&k]).unwrap().to_pro().unwrap();
        assert_eq!(
            playready(KeyTag::Key, Scheme::Cbcs, &pro, None),
            format!(
                r#"#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text/plain;charset=UTF-16;base64,{}",KEYFORMAT="com.microsoft.playready",KEYFORMATVERSIONS="1""#,
                STANDARD.encode(&pro)
            )
        );
        assert_eq!(
            aes128("/vod/movie/keys/abba271e8bcf552bbd2e86a434a9a5d9", Some([0xab; 16])).unwrap(),
            r#"#EXT-X-KEY:METHOD=AES-128,URI="/vod/movie/keys/abba271e8bcf552bbd2e86a434a9a5d9",IV=0xabababababababababababababababab"#
        );
        assert!(aes128("k\"", None).is_err());
    }
}
