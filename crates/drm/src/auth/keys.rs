//! Token verification keys: parsed once when a policy is built, never printed.
//!
//! The algorithm a key verifies is fixed by the key's type here — HS256 (and SWT's
//! HMACSHA256) for a symmetric key, RS256 for RSA, ES256 for EC P-256 — never by a token's
//! header. That is what defeats algorithm confusion: an `HS256` token finds no HMAC key
//! in a policy that holds only an RSA public key, however the attacker got the PEM bytes.
//!
//! PEM, SPKI and X.509 are read by a small bounded DER walker of our own, so
//! `jsonwebtoken` runs without its `use_pem` feature (no `pem`/`simple_asn1`, whose
//! certificate handling takes "the first bit string it finds").

use std::fmt;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::PolicyError;

/// Largest PEM text or JWKS document accepted (both come from the operator, but a
/// misconfigured path could point at anything).
pub const MAX_KEY_DOCUMENT_BYTES: usize = 256 * 1024;
/// Most keys one JWKS may contribute; every candidate key costs a signature check.
pub const MAX_JWKS_KEYS: usize = 32;
/// Most keys of one algorithm without a `kid` in a JWT policy, and most keys of an SWT
/// policy: each is tried in turn on a token that names no key (Azure Media Services' primary
/// and alternate verification keys), so this bounds the signature checks one token costs.
pub const MAX_UNNAMED_KEYS: usize = 8;
/// Shortest symmetric key accepted (RFC 7518 §3.2 wants at least the hash size for HS256;
/// 16 bytes is the floor we enforce so short test passwords are refused at startup).
pub const MIN_SYMMETRIC_KEY_BYTES: usize = 16;

/// One verification key of a token-restricted policy (primary or alternate).
///
/// A JWT names the key that signed it with its header's `kid`: the key's own
/// ([`VerificationKey::with_kid`]) or, for a JWKS, an entry's. See `jwt.rs` for how exactly
/// one key is picked per token.
///
/// `Debug` prints the kind of key and its `kid`s — never key bytes.
#[derive(Clone)]
pub struct VerificationKey {
    pub(crate) material: KeyMaterial,
    /// The `kid` tokens signed with this key carry (JWKS keys have theirs per entry).
    pub(crate) kid: Option<String>,
}

#[derive(Clone)]
pub(crate) enum KeyMaterial {
    /// HS256 for JWT, HMACSHA256 for SWT (aws-lc's key holds precomputed HMAC state, ~1 KiB).
    Symmetric { jwt: DecodingKey, swt: Box<hmac::Key> },
    /// RS256.
    Rsa(DecodingKey),
    /// ES256 (P-256).
    Ec(DecodingKey),
    /// RS256/ES256 keys picked by the token header's `kid`.
    Jwks(Vec<JwkEntry>),
}

#[derive(Clone)]
pub(crate) struct JwkEntry {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

impl VerificationKey {
    /// A symmetric key (JWT HS256, SWT HMACSHA256) from its raw bytes.
    pub fn symmetric(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() < MIN_SYMMETRIC_KEY_BYTES {
            return Err(PolicyError::key("symmetric", "shorter than 16 bytes"));
        }
        let jwt = DecodingKey::from_secret(bytes).map_err(|_| PolicyError::key("symmetric", "empty"))?;
        let swt = Box::new(hmac::Key::new(hmac::HMAC_SHA256, bytes));
        Ok(VerificationKey { material: KeyMaterial::Symmetric { jwt, swt }, kid: None })
    }

    /// A symmetric key given as base64 (standard or URL-safe alphabet, padded or not), as
    /// Azure Media Services shows it.
    pub fn symmetric_base64(text: &str) -> Result<Self, PolicyError> {
        let text = text.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(zeroize::Zeroizing::new)
            .ok_or_else(|| PolicyError::key("symmetric", "not base64"))?;
        Self::symmetric(&bytes)
    }

    /// An RSA public key (RS256) in PEM: SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`.
    pub fn rsa_pem(pem: &str) -> Result<Self, PolicyError> {
        const WHAT: &str = "rsa_pem";
        let (label, der) = pem_block(pem).ok_or_else(|| PolicyError::key(WHAT, "no PEM block"))?;
        let pkcs1 = match label {
            "PUBLIC KEY" => match spki(&der).ok_or_else(|| PolicyError::key(WHAT, "bad SubjectPublicKeyInfo"))? {
                Spki::Rsa(pkcs1) => pkcs1.to_vec(),
                Spki::EcP256(_) => return Err(PolicyError::key(WHAT, "an EC key, not RSA (use ec_pem)")),
            },
            "RSA PUBLIC KEY" => der,
            _ => return Err(PolicyError::key(WHAT, "expected PUBLIC KEY or RSA PUBLIC KEY")),
        };
        Ok(VerificationKey { material: KeyMaterial::Rsa(rsa_key(WHAT, &pkcs1)?), kid: None })
    }

    /// An EC P-256 public key (ES256) in PEM (SPKI `PUBLIC KEY`).
    pub fn ec_pem(pem: &str) -> Result<Self, PolicyError> {
        const WHAT: &str = "ec_pem";
        let (label, der) = pem_block(pem).ok_or_else(|| PolicyError::key(WHAT, "no PEM block"))?;
        if label != "PUBLIC KEY" {
            return Err(PolicyError::key(WHAT, "expected PUBLIC KEY"));
        }
        match spki(&der).ok_or_else(|| PolicyError::key(WHAT, "bad SubjectPublicKeyInfo or not P-256"))? {
            Spki::EcP256(point) => Ok(VerificationKey { material: KeyMaterial::Ec(DecodingKey::from_ec_der(point)), kid: None }),
            Spki::Rsa(_) => Err(PolicyError::key(WHAT, "an RSA key, not EC (use rsa_pem)")),
        }
    }

    /// The public key of an X.509 certificate in PEM: RS256 for an RSA key, ES256 for EC
    /// P-256. The certificate is only a container for the key (as in Azure Media Services'
    /// `X509CertTokenVerificationKey`): its validity period and chain are not checked.
    pub fn x509_pem(pem: &str) -> Result<Self, PolicyError> {
        const WHAT: &str = "x509_pem";
        let (label, der) = pem_block(pem).ok_or_else(|| PolicyError::key(WHAT, "no PEM block"))?;
        if label != "CERTIFICATE" {
            return Err(PolicyError::key(WHAT, "expected CERTIFICATE"));
        }
        let spki_der = certificate_spki(&der).ok_or_else(|| PolicyError::key(WHAT, "bad certificate"))?;
        let material = match spki(spki_der).ok_or_else(|| PolicyError::key(WHAT, "key is neither RSA nor EC P-256"))? {
            Spki::Rsa(pkcs1) => KeyMaterial::Rsa(rsa_key(WHAT, pkcs1)?),
            Spki::EcP256(point) => KeyMaterial::Ec(DecodingKey::from_ec_der(point)),
        };
        Ok(VerificationKey { material, kid: None })
    }

    /// A JSON Web Key Set. RSA keys verify RS256 and EC P-256 keys ES256; keys marked for
    /// encryption (`"use": "enc"`), with another `alg`, or of other types/curves are skipped.
    /// At least one usable key must remain.
    pub fn jwks_json(json: &str) -> Result<Self, PolicyError> {
        const WHAT: &str = "jwks";
        if json.len() > MAX_KEY_DOCUMENT_BYTES {
            return Err(PolicyError::key(WHAT, "document too large"));
        }
        let set: JwkSet = serde_json::from_str(json).map_err(|_| PolicyError::key(WHAT, "not a JWK set"))?;
        let mut entries = Vec::new();
        for jwk in &set.keys {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let (alg, key) = match &jwk.algorithm {
                AlgorithmParameters::RSA(p) => {
                    let Ok(key) = DecodingKey::from_rsa_components(&p.n, &p.e) else { continue };
                    (Algorithm::RS256, key)
                }
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    let Ok(key) = DecodingKey::from_ec_components(&p.x, &p.y) else { continue };
                    // x and y must each be 32 bytes: 0x04 || x || y.
                    if key.try_get_as_bytes().map(<[u8]>::len) != Ok(65) {
                        continue;
                    }
                    (Algorithm::ES256, key)
                }
                _ => continue,
            };
            let declared_ok = match jwk.common.key_algorithm {
                None => true,
                Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
                Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
                Some(_) => false,
            };
            if !declared_ok {
                continue;
            }
            if entries.len() == MAX_JWKS_KEYS {
                return Err(PolicyError::key(WHAT, "more than 32 usable keys"));
            }
            entries.push(JwkEntry { kid: jwk.common.key_id.clone(), alg, key });
        }
        if entries.is_empty() {
            return Err(PolicyError::key(WHAT, "no RS256 or ES256 (P-256) signing key"));
        }
        Ok(VerificationKey { material: KeyMaterial::Jwks(entries), kid: None })
    }

    /// Names this key `kid`, as the JWT header of tokens signed with it will. A JWKS's keys
    /// are named by their entries, not here.
    pub fn with_kid(mut self, kid: &str) -> Result<Self, PolicyError> {
        if kid.is_empty() {
            return Err(PolicyError::key("kid", "empty"));
        }
        if matches!(self.material, KeyMaterial::Jwks(_)) {
            return Err(PolicyError::key("jwks", "a JWKS names its keys itself (each entry's kid)"));
        }
        self.kid = Some(kid.to_owned());
        Ok(self)
    }

    /// The algorithms this key verifies with the `kid` of each, one pair per key it holds (a
    /// JWKS holds several).
    pub(crate) fn slots(&self) -> Vec<(Algorithm, Option<&str>, &DecodingKey)> {
        match &self.material {
            KeyMaterial::Symmetric { jwt, .. } => vec![(Algorithm::HS256, self.kid.as_deref(), jwt)],
            KeyMaterial::Rsa(k) => vec![(Algorithm::RS256, self.kid.as_deref(), k)],
            KeyMaterial::Ec(k) => vec![(Algorithm::ES256, self.kid.as_deref(), k)],
            KeyMaterial::Jwks(entries) => entries.iter().map(|e| (e.alg, e.kid.as_deref(), &e.key)).collect(),
        }
    }

    /// Whether this key can check SWT tokens (only symmetric keys can).
    pub fn is_symmetric(&self) -> bool {
        matches!(self.material, KeyMaterial::Symmetric { .. })
    }
}

/// Every secret a key holds wipes itself when dropped: `jsonwebtoken`'s `DecodingKey`
/// zeroizes its bytes, and aws-lc's HMAC key state is cleansed (`HMAC_CTX_cleanup`). Public
/// keys are not secret but go the same way.
impl zeroize::ZeroizeOnDrop for VerificationKey {}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kid = self.kid.as_deref().unwrap_or("-");
        match &self.material {
            KeyMaterial::Symmetric { .. } => write!(f, "VerificationKey::Symmetric(kid {kid:?}, [redacted])"),
            KeyMaterial::Rsa(_) => write!(f, "VerificationKey::Rsa(kid {kid:?}, RS256)"),
            KeyMaterial::Ec(_) => write!(f, "VerificationKey::Ec(kid {kid:?}, ES256)"),
            KeyMaterial::Jwks(entries) => {
                let kids: Vec<&str> = entries.iter().map(|e| e.kid.as_deref().unwrap_or("-")).collect();
                f.debug_tuple("VerificationKey::Jwks").field(&kids).finish()
            }
        }
    }
}

/// An RSA public key given by its modulus and public exponent (unsigned big-endian bytes, as
/// a JWK's `n`/`e` or .NET's `RSAParameters` hold them) as PKCS#1 `RSA PUBLIC KEY` PEM, the
/// text [`VerificationKey::rsa_pem`] (and the `rsa_pem` key of a policy) reads. `None` for an
/// empty modulus or exponent. The key is checked when the policy is built, not here.
pub fn rsa_public_key_pem(modulus: &[u8], exponent: &[u8]) -> Option<String> {
    fn integer(out: &mut Vec<u8>, bytes: &[u8]) {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let bytes = &bytes[start..];
        let pad = bytes.first().is_some_and(|b| b & 0x80 != 0);
        out.push(INTEGER);
        der_length(out, bytes.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(bytes);
    }
    if modulus.iter().all(|&b| b == 0) || exponent.iter().all(|&b| b == 0) {
        return None;
    }
    let mut body = Vec::with_capacity(modulus.len() + exponent.len() + 16);
    integer(&mut body, modulus);
    integer(&mut body, exponent);
    let mut der = vec![SEQUENCE];
    der_length(&mut der, body.len());
    der.extend_from_slice(&body);
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    Some(format!("-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n", lines.join("\n")))
}

/// A DER definite length.
fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - start) as u8);
        out.extend_from_slice(&bytes[start..]);
    }
}

/// Checks a PKCS#1 `RSAPublicKey` and wraps it; refuses moduli under 2048 bits (aws-lc
/// would refuse them at verification time anyway, silently, as a bad signature).
fn rsa_key(what: &'static str, pkcs1: &[u8]) -> Result<DecodingKey, PolicyError> {
    let bad = || PolicyError::key(what, "bad RSAPublicKey");
    let (tag, body, rest) = tlv(pkcs1).ok_or_else(bad)?;
    if tag != SEQUENCE || !rest.is_empty() {
        return Err(bad());
    }
    let (tag, n, rest) = tlv(body).ok_or_else(bad)?;
    let (tag_e, _e, rest) = tlv(rest).ok_or_else(bad)?;
    if tag != INTEGER || tag_e != INTEGER || !rest.is_empty() {
        return Err(bad());
    }
    let n = n.strip_prefix(&[0]).unwrap_or(n);
    if n.len() < 256 {
        return Err(PolicyError::key(what, "RSA modulus shorter than 2048 bits"));
    }
    Ok(DecodingKey::from_rsa_der(pkcs1))
}

/// The first PEM block in `text`: its label and decoded body.
pub(crate) fn pem_block(text: &str) -> Option<(&str, Vec<u8>)> {
    if text.len() > MAX_KEY_DOCUMENT_BYTES {
        return None;
    }
    let start = text.find("-----BEGIN ")?;
    let after = &text[start + "-----BEGIN ".len()..];
    let label_end = after.find("-----")?;
    let label = &after[..label_end];
    let body_and_rest = &after[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body_and_rest.find(&end_marker)?;
    let body: String = body_and_rest[..body_end].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(body).ok()?;
    Some((label, der))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xa0;

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// One DER TLV: `(tag, contents, rest)`. Single-byte tags, definite lengths up to 4 length
/// bytes, every length checked against the input.
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, tail) = rest.split_at(n);
        rest = tail;
        bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

pub(crate) enum Spki<'a> {
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(&'a [u8]),
    /// Uncompressed P-256 point (65 bytes, `0x04 || x || y`).
    EcP256(&'a [u8]),
}

/// Reads a DER `SubjectPublicKeyInfo` (the whole TLV).
pub(crate) fn spki(der: &[u8]) -> Option<Spki<'_>> {
    let (tag, body, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, alg_id, rest) = tlv(body)?;
    let (tag_bits, bits, _) = tlv(rest)?;
    if tag != SEQUENCE || tag_bits != BIT_STRING {
        return None;
    }
    let (unused, key) = bits.split_first()?;
    if *unused != 0 {
        return None;
    }
    let (tag, oid, params) = tlv(alg_id)?;
    if tag != OID {
        return None;
    }
    if oid == OID_RSA_ENCRYPTION {
        Some(Spki::Rsa(key))
    } else if oid == OID_EC_PUBLIC_KEY {
        let (tag, curve, _) = tlv(params)?;
        (tag == OID && curve == OID_PRIME256V1 && key.len() == 65 && key[0] == 0x04).then_some(Spki::EcP256(key))
    } else {
        None
    }
}

/// The `subjectPublicKeyInfo` TLV of a DER X.509 certificate.
/// The SubjectPublicKeyInfo (DER) of an X.509 certificate (DER), as RSA-OAEP encryption to a
/// certificate needs it.
pub fn certificate_spki_der(der: &[u8]) -> Option<&[u8]> {
    certificate_spki(der)
}

pub(crate) fn certificate_spki(der: &[u8]) -> Option<&[u8]> {
    let (tag, cert, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    // [0] version (optional), serialNumber, signature, issuer, validity, subject.
    if tbs.first() == Some(&CONTEXT_0) {
        tbs = tlv(tbs)?.2;
    }
    for _ in 0..5 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, _, rest) = tlv(tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    Some(&tbs[..tbs.len() - rest.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walker_refuses_short_and_indefinite_lengths() {
        assert!(tlv(&[0x30]).is_none());
        assert!(tlv(&[0x30, 0x80, 0x00, 0x00]).is_none());
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(tlv(&[0x30, 0x82, 0xff, 0xff, 0x00]).is_none());
        assert_eq!(tlv(&[0x02, 0x01, 0x05, 0xaa]), Some((0x02, &[0x05][..], &[0xaa][..])));
    }

    #[test]
    fn verification_keys_zeroize_on_drop() {
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<VerificationKey>();
        zeroized_on_drop::<DecodingKey>();
    }

    #[test]
    fn rsa_components_make_a_pkcs1_key() {
        let n = [&[0xc5u8][..], &[0x11; 255]].concat();
        let pem = rsa_public_key_pem(&[&[0u8, 0][..], &n].concat(), &[0x01, 0x00, 0x01]).unwrap();
        let (label, der) = pem_block(&pem).unwrap();
        assert_eq!(label, "RSA PUBLIC KEY");
        let (tag, body, rest) = tlv(&der).unwrap();
        assert_eq!((tag, rest.len()), (SEQUENCE, 0));
        let (_, n_der, rest) = tlv(body).unwrap();
        assert_eq!(n_der, [&[0u8][..], &n].concat(), "leading zeros dropped, one added for the sign bit");
        assert_eq!(tlv(rest).unwrap().1, [1, 0, 1]);
        assert!(VerificationKey::rsa_pem(&pem).is_ok());
        assert!(rsa_public_key_pem(&[0, 0], &[1]).is_none());
        // Under 2048 bits is refused when the key is built.
        assert!(VerificationKey::rsa_pem(&rsa_public_key_pem(&[0xc5; 128], &[3]).unwrap()).is_err());
    }

    #[test]
    fn short_symmetric_key_is_refused_and_debug_is_redacted() {
        assert!(VerificationKey::symmetric(b"short").is_err());
        let key = VerificationKey::symmetric(b"0123456789abcdef0123456789abcdef").unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("0123"), "{shown}");
    }
}
