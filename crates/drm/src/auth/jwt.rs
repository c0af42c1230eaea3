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

/// Verifies the signature with the one key of `keys` the header selects (see [`select`]) and
/// returns the claims object.
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

    // One key, one signature check per token: a token cannot make us try every key.
    let key = select(keys, alg, header.kid.as_deref())?;
    match jsonwebtoken::decode::<Value>(token, key, &validation) {
        Ok(data) => match data.claims {
            Value::Object(claims) => Ok(claims),
            _ => Err(Refusal::Malformed),
        },
        Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => Err(Refusal::BadSignature),
        // Structure, base64 or JSON faults.
        Err(_) => Err(Refusal::Malformed),
    }
}

/// The one key that checks a token signed with `alg` and naming `kid` in its header.
///
/// The algorithm is fixed by the key type (a JWKS entry's by its key), so only keys of
/// `alg` count. Among them:
///
/// * a token with a `kid` gets the key with that `kid`; if there is none, a lone key of
///   `alg` without a `kid` of its own still checks it (one-key policies need no `kid`s);
/// * a token without a `kid` gets the lone key of `alg`, and is refused
///   ([`Refusal::KeyIdRequired`]) when there are several: trying each in turn would let one
///   token cost as many signature checks as the policy has keys.
///
/// `kid`s are unique within a policy and every key of an algorithm that has several has one
/// (checked when the policy is built), so at most one key is ever picked.
fn select<'a>(keys: &'a [VerificationKey], alg: Algorithm, kid: Option<&str>) -> Result<&'a DecodingKey, Refusal> {
    let of_alg: Vec<(Option<&str>, &DecodingKey)> =
        keys.iter().flat_map(|k| k.slots()).filter(|(a, ..)| *a == alg).map(|(_, kid, key)| (kid, key)).collect();
    match (kid, of_alg.as_slice()) {
        (_, []) => Err(Refusal::Algorithm),
        (Some(want), slots) => match slots.iter().find(|(k, _)| *k == Some(want)) {
            Some((_, key)) => Ok(key),
            None => match slots {
                [(None, key)] => Ok(key),
                _ => Err(Refusal::UnknownKey),
            },
        },
        (None, [(_, key)]) => Ok(key),
        (None, _) => Err(Refusal::KeyIdRequired),
    }
}
