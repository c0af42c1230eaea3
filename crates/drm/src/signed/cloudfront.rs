//! Amazon CloudFront signed URLs and signed cookies, verified as CloudFront does.
//!
//! A signed URL carries `Expires` (canned policy) or `Policy` (custom policy), `Signature` and
//! `Key-Pair-Id`; signed cookies carry the same as `CloudFront-Expires` / `CloudFront-Policy`,
//! `CloudFront-Signature`, `CloudFront-Key-Pair-Id`. The signature is over the policy bytes:
//!
//! * canned: the JSON CloudFront defines, rebuilt here from the URL as requested (without the
//!   signing parameters) and `Expires`, byte for byte:
//!   `{"Statement":[{"Resource":"URL","Condition":{"DateLessThan":{"AWS:EpochTime":N}}}]}`;
//! * custom: the bytes of `Policy` after decoding, as sent (whitespace and key order are the
//!   signer's). One statement; `Resource` (optional: absent means any URL) with `*` and `?`
//!   wildcards; `Condition` with `DateLessThan` (required), `DateGreaterThan` and
//!   `IpAddress.AWS:SourceIp` (CIDR, IPv4 or IPv6). Anything else in the policy is refused.
//!
//! Signatures are RSA PKCS#1 v1.5 (2048 to 8192-bit keys) or ECDSA P-256 (DER as OpenSSL
//! writes it), by the key's type, over SHA-1 — CloudFront's default, verified with aws-lc's
//! "for legacy use" SHA-1 algorithms — or over SHA-256 when the URL says
//! `Hash-Algorithm=SHA256` (cookie `CloudFront-Hash-Algorithm`), as CloudFront allows. Binary
//! values use CloudFront's URL-safe base64: `+`→`-`, `=`→`_`, `/`→`~`.
//!
//! The time window is `DateGreaterThan <= now < DateLessThan`, each widened by the allowed
//! skew. Checks run in a fixed order so each refusal names the first thing wrong: key,
//! signature, policy shape, time, address, resource.

use std::net::IpAddr;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use serde_json::Value;

use super::{digest_of, wildcard, Cidr, Reason, VerifiedSignatures, MAX_CREDENTIAL_BYTES};
use crate::auth::keys::{certificate_spki, pem_block, spki, Spki};

/// Query parameters of a CloudFront signed URL (removed from the URL before it is compared
/// with a policy's resource).
pub const QUERY_PARAMS: [&str; 5] = ["Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm"];

/// The signed-cookie names: expires (canned), policy (custom), signature, key-pair ID, hash
/// algorithm.
pub const COOKIES: [&str; 5] = ["CloudFront-Expires", "CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id", "CloudFront-Hash-Algorithm"];

/// A public key that verifies CloudFront signatures.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA (PKCS#1 `RSAPublicKey` DER): RSA PKCS#1 v1.5 signatures.
    Rsa(Vec<u8>),
    /// EC P-256 (uncompressed point): ECDSA signatures.
    EcP256(Vec<u8>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PublicKey::Rsa(_) => "PublicKey::Rsa",
            PublicKey::EcP256(_) => "PublicKey::EcP256",
        })
    }
}

impl PublicKey {
    /// A key from PEM: SPKI `PUBLIC KEY` (what CloudFront's console takes), PKCS#1
    /// `RSA PUBLIC KEY`, or a `CERTIFICATE` (its key). RSA moduli under 2048 bits are refused.
    pub fn from_pem(pem: &str) -> Result<PublicKey, &'static str> {
        let (label, der) = pem_block(pem).ok_or("no PEM block")?;
        let key = match label {
            "PUBLIC KEY" => match spki(&der).ok_or("not an RSA or EC P-256 SubjectPublicKeyInfo")? {
                Spki::Rsa(k) => PublicKey::Rsa(k.to_vec()),
                Spki::EcP256(p) => PublicKey::EcP256(p.to_vec()),
            },
            "RSA PUBLIC KEY" => PublicKey::Rsa(der),
            "CERTIFICATE" => match certificate_spki(&der).and_then(spki).ok_or("certificate key is neither RSA nor EC P-256")? {
                Spki::Rsa(k) => PublicKey::Rsa(k.to_vec()),
                Spki::EcP256(p) => PublicKey::EcP256(p.to_vec()),
            },
            _ => return Err("expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE"),
        };
        if let PublicKey::Rsa(k) = &key {
            if rsa_modulus_bits(k).is_none_or(|b| b < 2048) {
                return Err("RSA key malformed or shorter than 2048 bits");
            }
        }
        Ok(key)
    }

    fn verify(&self, msg: &[u8], sig: &[u8], sha256: bool) -> bool {
        let alg: &'static dyn signature::VerificationAlgorithm = match (self, sha256) {
            (PublicKey::Rsa(_), false) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            (PublicKey::Rsa(_), true) => &signature::RSA_PKCS1_2048_8192_SHA256,
            (PublicKey::EcP256(_), false) => &signature::ECDSA_P256_SHA1_ASN1,
            (PublicKey::EcP256(_), true) => &signature::ECDSA_P256_SHA256_ASN1,
        };
        let (PublicKey::Rsa(k) | PublicKey::EcP256(k)) = self;
        UnparsedPublicKey::new(alg, k).verify(msg, sig).is_ok()
    }
}

/// The bit length of a PKCS#1 `RSAPublicKey`'s modulus.
fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    let (tag, body, rest) = crate::auth::keys::tlv(pkcs1)?;
    let (tag_n, n, _) = crate::auth::keys::tlv(body)?;
    if tag != 0x30 || tag_n != 0x02 || !rest.is_empty() {
        return None;
    }
    let n = n.strip_prefix(&[0]).unwrap_or(n);
    Some(n.len() * 8)
}

/// The public keys of a policy by key-pair ID (a key group's public key IDs, or legacy
/// `APKA…` key pairs). Several may be active at once: rotation adds the new key, moves
/// signers over, then drops the old one.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    /// ID, key, and the key's fingerprint (SHA-256 of its encoding), which binds cached
    /// verifications to the key material, not just its ID.
    keys: Vec<(String, PublicKey, [u8; 32])>,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// Adds `key` under `id`; an ID may appear once.
    pub fn add(&mut self, id: &str, key: PublicKey) -> Result<(), &'static str> {
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err("key-pair ID must be 1-128 letters, digits, '-' or '_'");
        }
        if self.keys.iter().any(|(i, _, _)| i == id) {
            return Err("key-pair ID listed twice");
        }
        let fingerprint = match &key {
            PublicKey::Rsa(k) => digest_of(&[b"rsa", k]),
            PublicKey::EcP256(p) => digest_of(&[b"ec-p256", p]),
        };
        self.keys.push((id.to_string(), key, fingerprint));
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn get(&self, id: &str) -> Option<(&PublicKey, &[u8; 32])> {
        self.keys.iter().find(|(i, _, _)| i == id).map(|(_, k, f)| (k, f))
    }
}

/// The signing values a request presented (query parameters or cookies), still encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Params<'a> {
    /// `Expires` / `CloudFront-Expires` (canned policy).
    pub expires: Option<&'a str>,
    /// `Policy` / `CloudFront-Policy` (custom policy, URL-safe base64).
    pub policy: Option<&'a str>,
    /// `Signature` / `CloudFront-Signature` (URL-safe base64).
    pub signature: Option<&'a str>,
    /// `Key-Pair-Id` / `CloudFront-Key-Pair-Id`.
    pub key_pair_id: Option<&'a str>,
    /// `Hash-Algorithm` / `CloudFront-Hash-Algorithm`: `SHA1` (the default when absent) or
    /// `SHA256`.
    pub hash_algorithm: Option<&'a str>,
}

impl Params<'_> {
    /// Whether any signing value is present.
    pub fn any(&self) -> bool {
        self.expires.is_some() || self.policy.is_some() || self.signature.is_some() || self.key_pair_id.is_some()
    }
}

/// What the request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The URL as requested (`https://host/path?query`), signing parameters removed.
    pub url: &'a str,
    /// The viewer's address, when known (a policy with an address condition refuses without).
    pub client_ip: Option<IpAddr>,
    /// Now, seconds since the Unix epoch.
    pub now: u64,
    /// Allowed clock skew, seconds.
    pub skew: u64,
}

/// A verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Whether it was a custom policy (which may cover other URLs than this one; a canned
    /// policy covers exactly one URL, so it never carries to others).
    pub custom: bool,
    /// The end of the window (`DateLessThan`), seconds since the epoch.
    pub expires: u64,
}

/// Verifies a CloudFront signed URL or cookie set.
pub fn verify(p: &Params<'_>, check: &Check<'_>, ring: &KeyRing, cache: &dyn VerifiedSignatures) -> Result<Grant, Reason> {
    if !p.any() {
        return Err(Reason::Missing);
    }
    let too_long = |v: Option<&str>| v.is_some_and(|v| v.len() > MAX_CREDENTIAL_BYTES);
    if too_long(p.expires) || too_long(p.policy) || too_long(p.signature) || too_long(p.key_pair_id) {
        return Err(Reason::BadSignature);
    }
    let (Some(sig_text), Some(id)) = (p.signature, p.key_pair_id) else { return Err(Reason::Missing) };
    let sha256 = match p.hash_algorithm {
        None | Some("SHA1") => false,
        Some("SHA256") => true,
        Some(_) => return Err(Reason::BadSignature),
    };
    let (key, fingerprint) = ring.get(id).ok_or(Reason::UnknownKey)?;
    // What the signature covers, as presented: the custom policy's text, or the canned
    // policy's inputs (the URL and the expiry).
    let (custom, covered): (bool, [&[u8]; 2]) = match (p.expires, p.policy) {
        (Some(e), None) => (false, [check.url.as_bytes(), e.as_bytes()]),
        (None, Some(pol)) => (true, [pol.as_bytes(), b""]),
        (Some(_), Some(_)) => return Err(Reason::BadSignature),
        (None, None) => return Err(Reason::Missing),
    };
    let digest = digest_of(&[fingerprint, id.as_bytes(), if custom { b"custom" } else { b"canned" }, if sha256 { b"sha256" } else { b"sha1" }, covered[0], covered[1], sig_text.as_bytes()]);
    let policy = match cache.get(&digest) {
        Some(v) => v,
        None => {
            let sig = url_b64_decode(sig_text).ok_or(Reason::BadSignature)?;
            let policy_bytes = match (p.expires, p.policy) {
                (Some(e), _) => canned_policy(check.url, epoch_digits(e).ok_or(Reason::BadSignature)?).into_bytes(),
                (_, Some(pol)) => url_b64_decode(pol).ok_or(Reason::BadSignature)?,
                (None, None) => return Err(Reason::Missing),
            };
            if !key.verify(&policy_bytes, &sig, sha256) {
                return Err(Reason::BadSignature);
            }
            let parsed = if custom {
                Policy::parse(&policy_bytes).ok_or(Reason::BadSignature)?
            } else {
                Policy { resource: None, less_than: p.expires.and_then(epoch_digits).unwrap_or(0), greater_than: None, source: None }
            };
            let v = std::sync::Arc::new(VerifiedPolicy(parsed));
            cache.insert(digest, v.clone());
            v
        }
    };
    let policy = &policy.0;
    if check.now >= policy.less_than.saturating_add(check.skew) {
        return Err(Reason::Expired);
    }
    if let Some(gt) = policy.greater_than {
        if check.now.saturating_add(check.skew) < gt {
            return Err(Reason::NotYetValid);
        }
    }
    if let Some(net) = policy.source {
        if !check.client_ip.is_some_and(|ip| net.contains(ip)) {
            return Err(Reason::IpMismatch);
        }
    }
    // The canned policy's resource is the URL itself: a changed URL fails its signature.
    if let Some(r) = &policy.resource {
        if !wildcard::matches(r, check.url) {
            return Err(Reason::ResourceMismatch);
        }
    }
    Ok(Grant { custom, expires: policy.less_than })
}

/// A policy whose signature verified (what a [`VerifiedSignatures`] cache holds).
#[derive(Debug, PartialEq, Eq)]
pub struct VerifiedPolicy(Policy);

/// A parsed policy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) resource: Option<String>,
    pub(crate) less_than: u64,
    pub(crate) greater_than: Option<u64>,
    pub(crate) source: Option<Cidr>,
}

impl Policy {
    /// Parses a custom policy: exactly the shape CloudFront defines, nothing else.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Policy> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        let top = v.as_object()?;
        if top.len() != 1 {
            return None;
        }
        let [stmt] = top.get("Statement")?.as_array()?.as_slice() else { return None };
        let stmt = stmt.as_object()?;
        if stmt.keys().any(|k| k != "Resource" && k != "Condition") {
            return None;
        }
        let resource = match stmt.get("Resource") {
            None => None,
            Some(r) => Some(r.as_str()?.to_string()),
        };
        let cond = stmt.get("Condition")?.as_object()?;
        let epoch = |name: &str| -> Option<Option<u64>> {
            match cond.get(name) {
                None => Some(None),
                Some(c) => {
                    let c = c.as_object()?;
                    if c.len() != 1 {
                        return None;
                    }
                    Some(Some(c.get("AWS:EpochTime")?.as_u64()?))
                }
            }
        };
        let less_than = epoch("DateLessThan")??;
        let greater_than = epoch("DateGreaterThan")?;
        let source = match cond.get("IpAddress") {
            None => None,
            Some(c) => {
                let c = c.as_object()?;
                if c.len() != 1 {
                    return None;
                }
                Some(Cidr::parse(c.get("AWS:SourceIp")?.as_str()?)?)
            }
        };
        if cond.keys().any(|k| !matches!(k.as_str(), "DateLessThan" | "DateGreaterThan" | "IpAddress")) {
            return None;
        }
        Some(Policy { resource, less_than, greater_than, source })
    }
}

/// An epoch-seconds value as CloudFront writes it (1-12 ASCII digits).
fn epoch_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The canned policy of `url` expiring at `expires`, byte for byte as CloudFront defines it
/// (the resource JSON-escaped, no whitespace).
pub fn canned_policy(url: &str, expires: u64) -> String {
    let resource = Value::String(url.to_string()).to_string();
    format!("{{\"Statement\":[{{\"Resource\":{resource},\"Condition\":{{\"DateLessThan\":{{\"AWS:EpochTime\":{expires}}}}}}}]}}")
}

/// CloudFront's URL-safe base64: standard base64 with `+`→`-`, `=`→`_`, `/`→`~`.
pub fn url_b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes).chars().map(|c| match c {
        '+' => '-',
        '=' => '_',
        '/' => '~',
        c => c,
    }).collect()
}

/// Decodes CloudFront's URL-safe base64. The standard alphabet's `+`, `/` and `=` are
/// accepted too (some signers leave them; CloudFront does the same), padding may be absent.
pub fn url_b64_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() > MAX_CREDENTIAL_BYTES * 2 {
        return None;
    }
    let std: String = s.chars().map(|c| match c {
        '-' => '+',
        '_' => '=',
        '~' => '/',
        c => c,
    }).collect();
    let trimmed = std.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::NoCache;

    #[test]
    fn url_safe_base64_round_trips() {
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 251) as u8).collect();
            let enc = url_b64_encode(&bytes);
            assert!(!enc.contains(['+', '/', '=']), "{enc}");
            assert_eq!(url_b64_decode(&enc).unwrap(), bytes);
        }
        // CloudFront's alphabet and the standard one decode alike; garbage does not decode.
        assert_eq!(url_b64_decode("-~8_").unwrap(), url_b64_decode("+/8=").unwrap());
        assert_eq!(url_b64_decode("~~~~").unwrap(), vec![0xff, 0xff, 0xff]);
        for bad in ["a", "@@@@", "ab cd", "é", "a===="] {
            assert!(url_b64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn canned_policy_is_cloudfronts_json() {
        // The form in CloudFront's documentation (and what botocore's build_policy writes).
        assert_eq!(
            canned_policy("https://d111111abcdef8.cloudfront.net/horizon.jpg?size=large&license=yes", 1357034400),
            r#"{"Statement":[{"Resource":"https://d111111abcdef8.cloudfront.net/horizon.jpg?size=large&license=yes","Condition":{"DateLessThan":{"AWS:EpochTime":1357034400}}}]}"#
        );
        assert_eq!(canned_policy("a\"b", 1), r#"{"Statement":[{"Resource":"a\"b","Condition":{"DateLessThan":{"AWS:EpochTime":1}}}]}"#);
    }

    #[test]
    fn custom_policies_parse_strictly() {
        let p = Policy::parse(br#"{"Statement":[{"Resource":"https://d/vod/*","Condition":{"DateLessThan":{"AWS:EpochTime":200},"IpAddress":{"AWS:SourceIp":"192.0.2.0/24"},"DateGreaterThan":{"AWS:EpochTime":100}}}]}"#).unwrap();
        assert_eq!(p, Policy { resource: Some("https://d/vod/*".into()), less_than: 200, greater_than: Some(100), source: Cidr::parse("192.0.2.0/24") });
        // Whitespace as in AWS's own examples.
        let spaced = b"{ \r\n \"Statement\": [{ \r\n \"Resource\":\"http://d/demo.php\", \r\n \"Condition\":{ \r\n \"DateLessThan\":{\"AWS:EpochTime\":1296860226}\r\n }\r\n }] \r\n}\r\n";
        assert_eq!(Policy::parse(spaced).unwrap().less_than, 1296860226);
        // No Resource: any URL.
        assert_eq!(Policy::parse(br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#).unwrap().resource, None);
        for bad in [
            &br#"{"Statement":[{"Resource":"x","Condition":{}}]}"#[..],
            br#"{"Statement":[{"Resource":"x"}]}"#,
            br#"{"Statement":[]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5}}},{"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":"5"}}}]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":-5}}}]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5},"Extra":{}}}]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5}},"Effect":"Allow"}]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":"1.2.3.4/40"}}}]}"#,
            br#"{"Statement":[{"Resource":5,"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}]}"#,
            br#"{"Statement":[{"Condition":{"DateLessThan":{"AWS:EpochTime":5}}}],"Other":1}"#,
            b"not json",
            b"",
            b"[1,2]",
        ] {
            assert!(Policy::parse(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn refusals_before_any_key_work() {
        let ring = KeyRing::new();
        let check = Check { url: "https://d/x", client_ip: None, now: 0, skew: 0 };
        assert_eq!(verify(&Params::default(), &check, &ring, &NoCache), Err(Reason::Missing));
        let p = Params { expires: Some("10"), signature: Some("AAAA"), key_pair_id: Some("K1"), policy: None, hash_algorithm: None };
        assert_eq!(verify(&p, &check, &ring, &NoCache), Err(Reason::UnknownKey));
        let p = Params { expires: Some("10"), signature: None, key_pair_id: Some("K1"), policy: None, hash_algorithm: None };
        assert_eq!(verify(&p, &check, &ring, &NoCache), Err(Reason::Missing));
        let long = "A".repeat(MAX_CREDENTIAL_BYTES + 1);
        let p = Params { expires: Some("10"), signature: Some(&long), key_pair_id: Some("K1"), policy: None, hash_algorithm: None };
        assert_eq!(verify(&p, &check, &ring, &NoCache), Err(Reason::BadSignature));
    }

    #[test]
    fn key_ring_refuses_bad_ids_and_keys() {
        let mut ring = KeyRing::new();
        let ec = PublicKey::EcP256(vec![4; 65]);
        assert!(ring.add("", ec.clone()).is_err());
        assert!(ring.add("K 1", ec.clone()).is_err());
        ring.add("K1", ec.clone()).unwrap();
        assert!(ring.add("K1", ec).is_err());
        assert!(PublicKey::from_pem("nothing").is_err());
        assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
        assert!(PublicKey::from_pem("-----BEGIN RSA PUBLIC KEY-----\nMAYCAQMCAQM=\n-----END RSA PUBLIC KEY-----\n").is_err(), "tiny RSA key");
    }

    /// Made with `openssl genrsa 2048` / `openssl ecparam -name prime256v1 -genkey` and
    /// `openssl dgst -sha1 -sign` (RSA) / `-sha256 -sign` (ECDSA, DER) over the canned policy
    /// of the URL below, then CloudFront's base64.
    const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuaM+rUdRb+M/FZ3QN/pn\nLOg5cAJEOcASZBsNvYeySYrpFRZ9ORJjk4T5Noy0vqyXdEfK/azdgoNWWCj9FXwE\npxUU44/HyLKfRAkkPqiCLvoskhEz5Yhw+WAZ1UIkT7mfFpFkAQnN9BueEp8Eslij\nopFoRF3Nx3K06Gva4xqnoaeuQ+AKxoGC4FXulzRQZ5rmYKBqTPlJaw//9138t75P\n9c7/8fCdbyMZvx4s0sMWUZ2xQjYhwlhH6nx1dMqpckjRqpkMO01h51D98GeNFa8k\n7dd4lEN6Oq8G8fLYe9Tw/WjAVVa1GOvfJAYmStVCG4kC/aeHwf+Pb+wt8Bv5UW5p\nWwIDAQAB\n-----END PUBLIC KEY-----";
    const RSA_SIG: &str = "e95EVR4x~LHTdbciU5-4nCgOJElBADxHpY4gO2TA~5rqU7qMb6rBzCqEdC19UxdJe5VDhPKCsCQOxvgPg39cGBPFPRD-RyFRqH9S--~fzNXEBMDbWLWrrMqd5XAg1g3o4uf2OO7IqWTUbuugji7nr1RY1kePXHe6JgqRzNVaIHP5Lw2eZndlHkIeH5C-idCUogay8jIPNecbc6~DB-~DmRxLoxGFApxAzdDEFbl2TOVQLOyia31U6Afa8oH6WDmuJx5s4ksa3~qFaSpqKdpUDWk27z0WuzBMZFvo-i~td3k0sQ~4OaoXu7PgDnESTPtKLlEJbwNNmsvPmoyPuX9Z9g__";
    const EC_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEaWXfQPFQGxf0PZcQxDnjfIwzMvKP\nvMvMr7JDIoMQQW5QMkBcqhgPlChI0r49WKeFTCkeqfP/C6rssI2EDxHj6g==\n-----END PUBLIC KEY-----";
    const EC_SIG: &str = "MEYCIQDHhPP3Lqi36O4t8atLL8qjpv19dfHqvGeFB6l2EsCRQAIhAJXYjW6UQTYGhtYIAL5UR~ie3ZA27B5f8RwzyuwOlRqj";
    const URL: &str = "https://d.example/vod/m/manifest.mpd";

    struct Seen(std::sync::Mutex<Vec<([u8; 32], std::sync::Arc<VerifiedPolicy>)>>);
    impl VerifiedSignatures for Seen {
        fn get(&self, d: &[u8; 32]) -> Option<std::sync::Arc<VerifiedPolicy>> {
            self.0.lock().unwrap().iter().find(|(k, _)| k == d).map(|(_, v)| v.clone())
        }
        fn insert(&self, d: [u8; 32], v: std::sync::Arc<VerifiedPolicy>) {
            self.0.lock().unwrap().push((d, v))
        }
    }

    #[test]
    fn openssl_signatures_verify_and_are_cached() {
        let mut ring = KeyRing::new();
        ring.add("KRSA", PublicKey::from_pem(RSA_PUB).unwrap()).unwrap();
        ring.add("KEC", PublicKey::from_pem(EC_PUB).unwrap()).unwrap();
        let check = Check { url: URL, client_ip: None, now: 1_900_000_000, skew: 0 };
        let seen = Seen(Default::default());
        // The RSA vector is SHA-1 (CloudFront's default), the EC one SHA-256 (`Hash-Algorithm`).
        for (id, sig, hash) in [("KRSA", RSA_SIG, None), ("KEC", EC_SIG, Some("SHA256"))] {
            let p = Params { expires: Some("2000000000"), signature: Some(sig), key_pair_id: Some(id), policy: None, hash_algorithm: hash };
            let other_hash = if hash.is_some() { None } else { Some("SHA256") };
            assert_eq!(verify(&Params { hash_algorithm: other_hash, ..p }, &check, &ring, &NoCache), Err(Reason::BadSignature), "{id}: other hash");
            assert_eq!(verify(&Params { hash_algorithm: Some("MD5"), ..p }, &check, &ring, &NoCache), Err(Reason::BadSignature), "{id}: MD5");
            assert_eq!(verify(&p, &check, &ring, &seen), Ok(Grant { custom: false, expires: 2_000_000_000 }), "{id}");
            assert_eq!(verify(&p, &Check { now: 2_000_000_000, ..check }, &ring, &seen), Err(Reason::Expired), "{id}");
            assert_eq!(verify(&p, &Check { url: "https://d.example/vod/m/other.mpd", ..check }, &ring, &seen), Err(Reason::BadSignature), "{id}");
            assert_eq!(verify(&Params { expires: Some("2000000001"), ..p }, &check, &ring, &seen), Err(Reason::BadSignature), "{id}");
            let swapped = if id == "KRSA" { "KEC" } else { "KRSA" };
            assert_eq!(verify(&Params { key_pair_id: Some(swapped), ..p }, &check, &ring, &seen), Err(Reason::BadSignature), "{id}");
        }
        // Each good signature was remembered once; failures never are.
        assert_eq!(seen.0.lock().unwrap().len(), 2);
        // A cached verification is bound to the key material: the same ID with another key
        // verifies afresh (and fails).
        let mut swapped = KeyRing::new();
        swapped.add("KRSA", PublicKey::from_pem(EC_PUB).unwrap()).unwrap();
        let p = Params { expires: Some("2000000000"), signature: Some(RSA_SIG), key_pair_id: Some("KRSA"), policy: None, hash_algorithm: None };
        assert_eq!(verify(&p, &check, &swapped, &seen), Err(Reason::BadSignature));
        // Cached, the checks that depend on the request still run.
        assert_eq!(verify(&p, &Check { now: 2_000_000_000, ..check }, &ring, &seen), Err(Reason::Expired));
        assert_eq!(seen.0.lock().unwrap().len(), 2);
        // The same policy as a custom policy verifies too (same bytes, same signature).
        let pol = url_b64_encode(canned_policy(URL, 2_000_000_000).as_bytes());
        let p = Params { policy: Some(&pol), signature: Some(RSA_SIG), key_pair_id: Some("KRSA"), expires: None, hash_algorithm: None };
        assert_eq!(verify(&p, &check, &ring, &NoCache).map(|g| g.custom), Ok(true));
        assert_eq!(verify(&p, &Check { url: "https://d.example/vod/m/x", ..check }, &ring, &NoCache), Err(Reason::ResourceMismatch));
    }
}
