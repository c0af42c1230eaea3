//! W3C ClearKey: the Common PSSH box and the EME licence request/response JSON.
//!
//! Request (from the CDM): `{"kids":["<base64url KID>",…],"type":"temporary"}`.
//! Response: a JWK set `{"keys":[{"kty":"oct","k":"<base64url key>","kid":"<base64url KID>"}],"type":"temporary"}`.
//! Base64url is written without padding (browsers send and expect it unpadded); on input
//! both forms are accepted.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{snippet, Error, Result};
use crate::key::ContentKey;
use crate::kid::Kid;
use crate::pssh::{bounded, Pssh};

/// Largest licence request body we parse. A request for 64 KIDs is under 2 KiB.
pub const MAX_LICENSE_REQUEST_BYTES: usize = 16 * 1024;
/// Most KIDs one licence request may ask for (an asset has a handful of keys).
pub const MAX_REQUEST_KIDS: usize = 64;

const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The W3C Common `pssh` box for ClearKey: version 1, the KIDs, empty data.
pub fn common_pssh_box(kids: &[Kid]) -> Result<Pssh> {
    if kids.is_empty() {
        return Err(Error::NoKids { what: "W3C Common pssh" });
    }
    bounded(Pssh::common(kids.to_vec()))
}

/// EME session type of a licence request, echoed in the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionType {
    /// `"temporary"` (the default when absent).
    Temporary,
    /// `"persistent-license"`.
    PersistentLicense,
}

impl SessionType {
    fn as_str(self) -> &'static str {
        match self {
            SessionType::Temporary => "temporary",
            SessionType::PersistentLicense => "persistent-license",
        }
    }
}

/// A parsed ClearKey licence request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseRequest {
    /// Requested KIDs, duplicates removed, in request order.
    pub kids: Vec<Kid>,
    /// Requested session type.
    pub session_type: SessionType,
}

#[derive(Deserialize)]
struct RawRequest {
    kids: Vec<String>,
    #[serde(rename = "type")]
    session_type: Option<String>,
}

/// Parses a licence request body, refusing oversized bodies, more than
/// [`MAX_REQUEST_KIDS`] KIDs, KIDs that are not base64url of 16 bytes, and unknown types.
pub fn parse_license_request(body: &[u8]) -> Result<LicenseRequest> {
    let bad = |m: String| Error::ClearKeyRequest(m);
    if body.len() > MAX_LICENSE_REQUEST_BYTES {
        return Err(Error::TooLarge {
            what: "ClearKey licence request",
            got: body.len(),
            limit: MAX_LICENSE_REQUEST_BYTES,
        });
    }
    let raw: RawRequest = serde_json::from_slice(body).map_err(|e| bad(format!("not the expected JSON: {e}")))?;
    if raw.kids.is_empty() {
        return Err(bad("no kids requested".into()));
    }
    if raw.kids.len() > MAX_REQUEST_KIDS {
        return Err(Error::TooLarge { what: "ClearKey requested kids", got: raw.kids.len(), limit: MAX_REQUEST_KIDS });
    }
    let mut kids = Vec::with_capacity(raw.kids.len());
    for k in &raw.kids {
        let bytes = URL_SAFE_ANY_PAD.decode(k).map_err(|_| bad(format!("kid {:?} is not base64url", snippet(k))))?;
        let arr: [u8; 16] =
            bytes.try_into().map_err(|_| bad(format!("kid {:?} does not decode to 16 bytes", snippet(k))))?;
        let kid = Kid(arr);
        if !kids.contains(&kid) {
            kids.push(kid);
        }
    }
    let session_type = match raw.session_type.as_deref() {
        None | Some("temporary") => SessionType::Temporary,
        Some("persistent-license") => SessionType::PersistentLicense,
        Some(other) => return Err(bad(format!("unknown session type {:?}", snippet(other)))),
    };
    Ok(LicenseRequest { kids, session_type })
}

#[derive(Serialize)]
struct Jwk {
    kty: &'static str,
    k: String,
    kid: String,
}

#[derive(Serialize)]
struct JwkSet {
    keys: Vec<Jwk>,
    #[serde(rename = "type")]
    session_type: &'static str,
}

/// Writes the licence JSON for `keys` (which the caller has already authorized).
/// Keys must be 128-bit.
pub fn license_response<'a>(
    keys: impl IntoIterator<Item = &'a ContentKey>,
    session_type: SessionType,
) -> Result<String> {
    let mut jwks = Vec::new();
    for key in keys {
        jwks.push(Jwk {
            kty: "oct",
            k: URL_SAFE_NO_PAD.encode(key.aes128_bytes()?),
            kid: URL_SAFE_NO_PAD.encode(key.kid().as_bytes()),
        });
    }
    let set = JwkSet { keys: jwks, session_type: session_type.as_str() };
    // Serializing plain strings into a String cannot fail.
    serde_json::to_string(&set).map_err(|e| Error::ClearKeyRequest(format!("serializing licence: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyKind;

    const KID: &str = "abba271e-8bcf-552b-bd2e-86a434a9a5d9";
    // base64url of abba271e8bcf552bbd2e86a434a9a5d9, unpadded.
    const KID_B64U: &str = "q7onHovPVSu9LoakNKml2Q";

    #[test]
    fn parses_request() {
        let body = format!(r#"{{"kids":["{KID_B64U}","{KID_B64U}=="],"type":"temporary"}}"#);
        let r = parse_license_request(body.as_bytes()).unwrap();
        assert_eq!(r.kids, vec![Kid::parse(KID).unwrap()]);
        assert_eq!(r.session_type, SessionType::Temporary);
        let r = parse_license_request(br#"{"kids":["AAAAAAAAAAAAAAAAAAAAAA"],"type":"persistent-license"}"#).unwrap();
        assert_eq!(r.session_type, SessionType::PersistentLicense);
        assert_eq!(r.kids, vec![Kid([0; 16])]);
        assert!(parse_license_request(br#"{"kids":["AAAAAAAAAAAAAAAAAAAAAA"]}"#).is_ok());
    }

    #[test]
    fn rejects_bad_requests() {
        let too_many = format!(r#"{{"kids":[{}],"type":"temporary"}}"#, vec![format!("\"{KID_B64U}\""); 65].join(","));
        for bad in [
            &br#"{"kids":["q7onHovPVSu9LoakNKml2Q+/"],"type":"temporary"}"#[..], // standard alphabet
            br#"{"kids":["q7onHovPVSu9LoakNKml"],"type":"temporary"}"#,          // 15 bytes
            br#"{"kids":["q7onHovPVSu9LoakNKml2Q!"],"type":"temporary"}"#,
            br#"{"kids":[],"type":"temporary"}"#,
            br#"{"kids":["AAAAAAAAAAAAAAAAAAAAAA"],"type":"forever"}"#,
            br#"{"kids":"AAAAAAAAAAAAAAAAAAAAAA"}"#,
            br#"{"kids":[1]}"#,
            br#"not json"#,
            br#""#,
            too_many.as_bytes(),
        ] {
            assert!(parse_license_request(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let huge = vec![b' '; MAX_LICENSE_REQUEST_BYTES + 1];
        assert!(matches!(parse_license_request(&huge), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn writes_response() {
        let key = [0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83, 0x92];
        let k = ContentKey::aes128(Kid::parse(KID).unwrap(), KeyKind::CommonEncryption, key);
        assert_eq!(
            license_response([&k], SessionType::Temporary).unwrap(),
            format!(
                r#"{{"keys":[{{"kty":"oct","k":"aeqoAqZ2Ovl56NGUD7iDkg","kid":"{KID_B64U}"}}],"type":"temporary"}}"#
            )
        );
        let s = ContentKey::new(Kid([1; 16]), KeyKind::StorageEncryption, &[0; 32]).unwrap();
        assert!(license_response([&s], SessionType::Temporary).is_err());
    }

    #[test]
    fn common_pssh() {
        let b = common_pssh_box(&[Kid::parse(KID).unwrap()]).unwrap();
        assert_eq!(b.version, 1);
        assert!(b.data.is_empty());
        assert!(common_pssh_box(&[]).is_err());
    }
}
