//! JWT (compact JWS) signature check with `jsonwebtoken`; claims are checked by the caller.
//!
//! `jsonwebtoken`'s own time checks read the system clock, so they are switched off
//! (`validate_exp`/`validate_nbf` false, no required spec claims) and `exp`/`nbf`/`iss`/`aud`
//! are judged in `super::check_claims` against the `now` the caller passed in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::keys::{KeyMaterial, VerificationKey};
use super::Refusal;

/// The header fields we route on; everything else is left to `jsonwebtoken`, which also
/// refuses `crit` extensions it does not understand.
#[derive(Deserialize)]
struct HeaderView {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Verifies the signature with the first of `keys` that fits the header and returns the
/// claims object.
pub(super) fn verify(keys: &[VerificationKey], token: &str) -> Result<Map<String, Value>, Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let header = URL_SAFE_NO_PAD.decode(header).map_err(|_| Refusal::Malformed)?;
    let header: HeaderView = serde_json::from_slice(&header).map_err(|_| Refusal::Malformed)?;
    // Only what our key types verify; `none` (any spelling) and every other name stop here.
    let alg = match header.alg.as_str() {
        "HS256" => Algorithm::HS256,
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        _ => return Err(Refusal::Algorithm),
    };

    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;

    let (candidates, kid_miss) = candidates(keys, alg, header.kid.as_deref());
    for key in &candidates {
        match jsonwebtoken::decode::<Value>(token, key, &validation) {
            Ok(data) => {
                return match data.claims {
                    Value::Object(claims) => Ok(claims),
                    _ => Err(Refusal::Malformed),
                }
            }
            // Wrong key (rotation) or forged: try the next candidate.
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
            // Structure, base64 or JSON faults: no other key will do better.
            Err(_) => return Err(Refusal::Malformed),
        }
    }
    match (candidates.is_empty(), kid_miss) {
        (true, true) => Err(Refusal::UnknownKey),
        (true, false) => Err(Refusal::Algorithm),
        (false, _) => Err(Refusal::BadSignature),
    }
}

/// The decoding keys whose fixed algorithm is `alg`, in policy order. JWKS keys are also
/// filtered by the header's `kid` when it has one. The flag tells that a JWKS had keys of
/// this algorithm but none with that `kid`.
fn candidates<'a>(keys: &'a [VerificationKey], alg: Algorithm, kid: Option<&str>) -> (Vec<&'a DecodingKey>, bool) {
    let mut picked = Vec::new();
    let mut kid_miss = false;
    for key in keys {
        match (&key.material, alg) {
            (KeyMaterial::Symmetric { jwt, .. }, Algorithm::HS256) => picked.push(jwt),
            (KeyMaterial::Rsa(k), Algorithm::RS256) | (KeyMaterial::Ec(k), Algorithm::ES256) => picked.push(k),
            (KeyMaterial::Jwks(entries), _) => {
                let before = picked.len();
                let mut same_alg = false;
                for e in entries.iter().filter(|e| e.alg == alg) {
                    same_alg = true;
                    if kid.is_none() || e.kid.as_deref() == kid {
                        picked.push(&e.key);
                    }
                }
                kid_miss |= same_alg && picked.len() == before;
            }
            _ => {}
        }
    }
    (picked, kid_miss)
}
