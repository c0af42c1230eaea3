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

use super::keys::VerificationKey;
use super::Refusal;

/// The header fields we route on; everything else is left to `jsonwebtoken`, which also
/// refuses `crit` extensions it does not understand.
#[derive(Deserialize)]
struct HeaderView {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// Verifies the signature with the keys of `keys` the header selects (see [`candidates`]),
/// in policy order (primary first), and returns the claims object of the first that accepts it.
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

    // At most MAX_UNNAMED_KEYS signature checks per token (bounded when the policy is built).
    // HMACs are compared in constant time by aws-lc (`hmac::verify`).
    for key in candidates(keys, alg, header.kid.as_deref())? {
        match jsonwebtoken::decode::<Value>(token, key, &validation) {
            Ok(data) => {
                return match data.claims {
                    Value::Object(claims) => Ok(claims),
                    _ => Err(Refusal::Malformed),
                }
            }
            // Another key may have signed it: try the next one.
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            // Structure, base64 or JSON faults: the same under every key.
            Err(_) => return Err(Refusal::Malformed),
        }
    }
    Err(Refusal::BadSignature)
}

/// The keys that may check a token signed with `alg` and naming `kid` in its header, in
/// policy order.
///
/// The algorithm is fixed by the key type (a JWKS entry's by its key), so only keys of
/// `alg` count. Among them:
///
/// * a token whose `kid` names a key gets that key alone;
/// * otherwise it gets every key of `alg` that has no `kid` of its own — the primary and
///   alternate keys of an Azure Media Services `TokenRestrictionTemplate`, which tokens do
///   not name, tried in turn as AMS tries them (primary first). A policy has at most
///   [`MAX_UNNAMED_KEYS`](super::keys::MAX_UNNAMED_KEYS) of those per algorithm (checked when
///   it is built), so a token costs at most that many signature checks;
/// * a token without a `kid` against keys that all have one gets the lone key of `alg`
///   (one-key policies need no `kid`s in tokens), and is refused
///   ([`Refusal::KeyIdRequired`]) when there are several.
fn candidates<'a>(
    keys: &'a [VerificationKey],
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<Vec<&'a DecodingKey>, Refusal> {
    let of_alg: Vec<(Option<&str>, &DecodingKey)> =
        keys.iter().flat_map(|k| k.slots()).filter(|(a, ..)| *a == alg).map(|(_, kid, key)| (kid, key)).collect();
    if of_alg.is_empty() {
        return Err(Refusal::Algorithm);
    }
    if let Some(want) = kid {
        if let Some((_, key)) = of_alg.iter().find(|(k, _)| *k == Some(want)) {
            return Ok(vec![key]);
        }
    }
    let unnamed: Vec<&DecodingKey> = of_alg.iter().filter(|(k, _)| k.is_none()).map(|(_, key)| *key).collect();
    match (kid, unnamed.is_empty(), of_alg.as_slice()) {
        (_, false, _) => Ok(unnamed),
        (Some(_), true, _) => Err(Refusal::UnknownKey),
        (None, true, [(_, key)]) => Ok(vec![key]),
        (None, true, _) => Err(Refusal::KeyIdRequired),
    }
}
