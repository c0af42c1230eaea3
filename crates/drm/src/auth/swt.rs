//! Simple Web Token: `name=value&…&HMACSHA256=<urlencoded base64 MAC>`.
//!
//! The MAC is HMAC-SHA256 over every byte before `&HMACSHA256=`, keyed with the symmetric
//! key bytes (FORMATS.md 6.4, the AMS SDK's `GenerateTestToken`). It is checked with
//! aws-lc's constant-time `hmac::verify` before any claim is decoded.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::keys::{KeyMaterial, VerificationKey};
use super::Refusal;

const SIGNATURE_FIELD: &str = "&HMACSHA256=";

/// Verifies the MAC with the policy's symmetric keys (primary first) and returns the
/// claims as JSON strings under their decoded names.
pub(super) fn verify(keys: &[VerificationKey], token: &str) -> Result<Map<String, Value>, Refusal> {
    let at = token.rfind(SIGNATURE_FIELD).ok_or(Refusal::Malformed)?;
    let (signed, signature) = (&token[..at], &token[at + SIGNATURE_FIELD.len()..]);
    if signed.is_empty() {
        return Err(Refusal::Malformed);
    }
    let signature = form_decode(signature).ok_or(Refusal::Malformed)?;
    let signature =
        STANDARD.decode(&signature).or_else(|_| STANDARD_NO_PAD.decode(&signature)).map_err(|_| Refusal::Malformed)?;

    let mut any_key = false;
    let mut verified = false;
    for key in keys {
        if let KeyMaterial::Symmetric { swt, .. } = &key.material {
            any_key = true;
            if hmac::verify(swt, signed.as_bytes(), &signature).is_ok() {
                verified = true;
                break;
            }
        }
    }
    if !verified {
        return Err(if any_key { Refusal::BadSignature } else { Refusal::Algorithm });
    }

    let mut claims = Map::new();
    for pair in signed.split('&') {
        let (name, value) = pair.split_once('=').ok_or(Refusal::Malformed)?;
        let name = form_decode(name).filter(|n| !n.is_empty()).ok_or(Refusal::Malformed)?;
        let value = form_decode(value).ok_or(Refusal::Malformed)?;
        // A repeated name would let two readers of the same token disagree: refuse it.
        if claims.insert(name, Value::String(value)).is_some() {
            return Err(Refusal::Malformed);
        }
    }
    Ok(claims)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; the result
/// must be UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hi = (hex[0] as char).to_digit(16)?;
                let lo = (hex[1] as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("%2"), None);
        assert_eq!(form_decode("%zz"), None);
        assert_eq!(form_decode("%ff"), None);
        assert_eq!(form_decode(""), Some(String::new()));
    }
}
