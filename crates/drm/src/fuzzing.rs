//! Entry points for the fuzz targets in `fuzz/` that read DRM input (tokens, ClearKey licence
//! requests, CPIX documents, `pssh` boxes), and for the replay test that runs their seeds and
//! saved crashes under plain `cargo test` (`tests/fuzz_replay.rs`).
//!
//! As in `sealcast_package::fuzzing`, they live in the library so a crash found by libFuzzer
//! on nightly replays on stable, against the code the server runs. Each must return normally
//! on every input; a panic — an unchecked index, an overflow, or one of the assertions below
//! — is a bug. The assertions state what must hold for every input the parsers accept.

use std::sync::LazyLock;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;

use crate::auth::{
    AuthorizationPolicy, AuthorizationPolicyConfig, KeyConfig, KeySpec, Refusal, TokenRequirementsConfig, TokenType,
};
use crate::clearkey::{license_response, parse_license_request, MAX_REQUEST_KIDS};
use crate::cpix::parse_cpix;
use crate::groups::TrackDesc;
use crate::key::{ContentKey, KeyKind};
use crate::kid::Kid;
use crate::pssh;
use sealcast_isobmff::Atom as _;

/// Issuer and audience of the fuzz policies.
pub const FUZZ_ISSUER: &str = "https://sts.sealcast.test";
/// See [`FUZZ_ISSUER`].
pub const FUZZ_AUDIENCE: &str = "urn:sealcast:keys";
/// The symmetric key of the HS256 and SWT policies, and what the `J`/`S` modes of
/// [`fuzz_token`] sign with (the secret of `tests/tokens.rs`; it protects nothing).
pub const FUZZ_SECRET: &[u8] = b"sealcast-test-hs256-secret-32by!";
/// The KID every fuzzed token asks for.
pub const FUZZ_KID: Kid =
    Kid([0xab, 0xba, 0x27, 0x1e, 0x8b, 0xcf, 0x55, 0x2b, 0xbd, 0x2e, 0x86, 0xa4, 0x34, 0xa9, 0xa5, 0xd9]);
/// The `now` every fuzzed token is judged at (2030-03-17).
pub const FUZZ_NOW: u64 = 1_900_000_000;

/// The three token policies, built once: HS256 JWT (a required `sub`, a required `role`
/// value), SWT (two symmetric keys, content-key claim required), and public-key JWT (an RSA
/// SPKI PEM, the test JWKS with an RSA and an EC key, an EC X.509 certificate). Public keys
/// come from `tests/keys/` (throw-away keys, see its README).
struct Policies {
    hs256: AuthorizationPolicy,
    swt: AuthorizationPolicy,
    public: AuthorizationPolicy,
}

static POLICIES: LazyLock<Policies> = LazyLock::new(|| {
    let secret = STANDARD.encode(FUZZ_SECRET);
    let other = STANDARD.encode(b"a-different-secret-of-32-bytes!!");
    let policy = |token_type, keys: Vec<KeyConfig>, claims: &str, content_key_claim| {
        let required_claims = serde_json::from_str(claims).expect("fixed claim list is valid JSON");
        let cfg = AuthorizationPolicyConfig::TokenRestricted(TokenRequirementsConfig {
            token_type,
            issuer: FUZZ_ISSUER.into(),
            audience: FUZZ_AUDIENCE.into(),
            keys,
            required_claims,
            skew_secs: 60,
            content_key_claim,
            require_expiry: true,
        });
        // Fixed inputs: a failure here is a broken test key, not a fuzz finding.
        cfg.build_inline().expect("fuzz policy builds")
    };
    Policies {
        hs256: policy(
            TokenType::Jwt,
            vec![KeySpec::Symmetric(secret.clone()).into()],
            r#"[{"name":"sub"},{"name":"role","value":"premium"}]"#,
            false,
        ),
        swt: policy(TokenType::Swt, vec![KeySpec::Symmetric(other).into(), KeySpec::Symmetric(secret).into()], "[]", true),
        public: policy(
            TokenType::Jwt,
            // Two RS256 and two ES256 keys: the PEM and the certificate need kids of their own.
            vec![
                KeyConfig { spec: KeySpec::RsaPem(include_str!("../tests/keys/rsa_public.pem").into()), kid: Some("rsa-1".into()) },
                KeySpec::Jwks(include_str!("../tests/keys/jwks.json").into()).into(),
                KeyConfig { spec: KeySpec::X509Pem(include_str!("../tests/keys/ec_cert.pem").into()), kid: Some("ec-cert".into()) },
            ],
            "[]",
            false,
        ),
    }
});

/// Token checks. The first byte picks the mode, the rest is the input:
///
/// * `J`: the rest is a JWT payload (any bytes), which this function signs HS256 with
///   [`FUZZ_SECRET`]; the HS256 policy judges it. This is how the fuzzer reaches the claim
///   checks (times, issuer, audience, required claims, content-key claim), which sit behind
///   a MAC it cannot forge. Asserts that an accepted token carries the policy's issuer and
///   audience, an expiry, `sub` and `role`, read back independently.
/// * `S`: the same for an SWT body (`name=value&…`), signed HMACSHA256, judged by the SWT
///   policy.
/// * anything else: the rest is a token as a client sends it, judged by all three
///   policies. Without a key the fuzzer cannot make a valid signature, so every answer must
///   be a refusal from before the signature check passed (missing, too large, malformed,
///   algorithm, unknown key, bad signature): never `Ok`, never a claim or expiry refusal,
///   which would mean a forged token got past the signature.
pub fn fuzz_token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let p = &*POLICIES;
    match mode {
        b'J' => {
            if let Some(Ok(())) = signed_token_outcome(data) {
                let claims: Value = serde_json::from_slice(rest).expect("accepted JWT payload is JSON");
                let get = |n: &str| claims.get(n).filter(|v| !v.is_null());
                assert_eq!(get("iss").and_then(Value::as_str), Some(FUZZ_ISSUER), "accepted JWT with another issuer");
                let aud_ok = match get("aud") {
                    Some(Value::String(s)) => s == FUZZ_AUDIENCE,
                    Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(FUZZ_AUDIENCE)),
                    _ => false,
                };
                assert!(aud_ok, "accepted JWT without the audience");
                assert!(get("exp").is_some_and(Value::is_number), "accepted JWT without a numeric expiry");
                assert!(get("sub").is_some() && get("role").is_some(), "accepted JWT without a required claim");
            }
        }
        b'S' => {
            if let Some(Ok(())) = signed_token_outcome(data) {
                // `signed_token_outcome` only judges UTF-8 bodies.
                let body = String::from_utf8_lossy(rest);
                let field = |name: &str| {
                    body.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(k, _)| percent_decode(k) == name)
                        .map(|(_, v)| percent_decode(v))
                };
                assert_eq!(field("Issuer").as_deref(), Some(FUZZ_ISSUER), "accepted SWT with another issuer");
                assert_eq!(field("Audience").as_deref(), Some(FUZZ_AUDIENCE), "accepted SWT with another audience");
                assert!(field("ExpiresOn").is_some(), "accepted SWT without ExpiresOn");
                let claim = field(crate::auth::CONTENT_KEY_CLAIM).expect("accepted SWT without the content-key claim");
                assert_eq!(Kid::parse(claim.trim()).ok(), Some(FUZZ_KID), "accepted SWT for another key");
            }
        }
        _ => {
            let token = String::from_utf8_lossy(rest);
            for (name, policy) in [("HS256", &p.hs256), ("SWT", &p.swt), ("public-key", &p.public)] {
                match policy.authorize(Some(&token), FUZZ_KID, FUZZ_NOW) {
                    Err(
                        Refusal::MissingToken
                        | Refusal::TooLarge
                        | Refusal::Malformed
                        | Refusal::Algorithm
                        | Refusal::UnknownKey
                        | Refusal::BadSignature,
                    ) => {}
                    other => panic!("{name} policy: a token the fuzzer made got past the signature check: {other:?}"),
                }
            }
        }
    }
}

/// For the `J` and `S` modes of [`fuzz_token`]: signs the rest of `data` as that mode does
/// and returns the policy's answer; `None` for other modes (and for an SWT body that is not
/// UTF-8, which no client can send).
pub fn signed_token_outcome(data: &[u8]) -> Option<Result<(), Refusal>> {
    let (&mode, rest) = data.split_first()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, FUZZ_SECRET);
    match mode {
        b'J' => {
            let signing_input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(rest)
            );
            let tag = hmac::sign(&key, signing_input.as_bytes());
            let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
            Some(POLICIES.hs256.authorize(Some(&token), FUZZ_KID, FUZZ_NOW))
        }
        b'S' => {
            let body = std::str::from_utf8(rest).ok()?;
            let tag = hmac::sign(&key, body.as_bytes());
            let sig: String = STANDARD.encode(tag.as_ref()).bytes().map(|b| format!("%{b:02X}")).collect();
            Some(POLICIES.swt.authorize(Some(&format!("{body}&HMACSHA256={sig}")), FUZZ_KID, FUZZ_NOW))
        }
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding for the SWT assertions, written apart from
/// the one under test; bytes that do not decode are kept as they are.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push((hex(b[i + 1]).unwrap_or(0) * 16 + hex(b[i + 2]).unwrap_or(0)) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A ClearKey licence request body. Asserts that an accepted request names 1 to
/// [`MAX_REQUEST_KIDS`] distinct KIDs and that the licence written for them is JSON listing
/// each KID once.
pub fn fuzz_clearkey(data: &[u8]) {
    let Ok(req) = parse_license_request(data) else { return };
    assert!((1..=MAX_REQUEST_KIDS).contains(&req.kids.len()), "{} kids accepted", req.kids.len());
    for (i, k) in req.kids.iter().enumerate() {
        assert!(!req.kids[..i].contains(k), "duplicate kid {k} kept");
    }
    let keys: Vec<ContentKey> =
        req.kids.iter().map(|&k| ContentKey::aes128(k, KeyKind::CommonEncryption, [7; 16])).collect();
    let body = license_response(&keys, req.session_type).expect("licence for 128-bit keys");
    let v: Value = serde_json::from_str(&body).expect("licence is JSON");
    let listed = v["keys"].as_array().map_or(0, Vec::len);
    assert_eq!(listed, req.kids.len(), "licence lists another number of keys than requested");
}

/// Tracks to assign CPIX keys to: audio with and without channel count and bitrate, video
/// from SD to UHD2.
const CPIX_TRACKS: [TrackDesc; 6] = [
    TrackDesc::audio(),
    TrackDesc { channels: Some(6), bitrate: Some(384_000), ..TrackDesc::audio() },
    TrackDesc::video(640, 360),
    TrackDesc { bitrate: Some(5_000_000), ..TrackDesc::video(1920, 1080) },
    TrackDesc::video(3840, 2160),
    TrackDesc::video(7680, 4320),
];

/// A CPIX document, read with each default key kind. Asserts, for a document that parses,
/// that KIDs are unique, that every DRM system and usage rule names a key of the document,
/// that every `pssh` box re-encodes to one that parses to the same box, and that key
/// assignment (for all tracks, and for each alone) never panics and only returns indices of
/// keys.
pub fn fuzz_cpix(data: &[u8]) {
    for kind in [KeyKind::CommonEncryption, KeyKind::CommonEncryptionCbcs] {
        let Ok(doc) = parse_cpix(data, kind) else { continue };
        for (i, k) in doc.keys.iter().enumerate() {
            assert!(doc.keys[..i].iter().all(|o| o.key.kid() != k.key.kid()), "duplicate key {}", k.key.kid());
        }
        for d in &doc.drm_systems {
            assert!(doc.key(d.kid).is_some(), "DRMSystem for unknown key {}", d.kid);
            assert!(doc.signalling(d.kid, d.system_id).is_some());
            if let Some(p) = &d.pssh {
                assert_eq!(pssh::parse(&p.to_vec()).as_ref(), Ok(p), "pssh from CPIX does not round-trip");
            }
        }
        for r in &doc.usage_rules {
            assert!(doc.key(r.kid).is_some(), "usage rule for unknown key {}", r.kid);
        }
        let sets = std::iter::once(&CPIX_TRACKS[..]).chain(CPIX_TRACKS.chunks(1));
        for tracks in sets {
            if let Ok(idx) = doc.assign_keys(tracks) {
                assert_eq!(idx.len(), tracks.len(), "one key per track");
                assert!(idx.iter().all(|&i| i < doc.keys.len()), "key index out of range");
            }
        }
    }
}

/// Signed-URL input (`signed` target), by the first byte:
/// `P` a CloudFront custom policy (the rest, as decoded bytes; also, as a URL, the canned
/// policy of it, which must parse back to it); `B` CloudFront base64 (must
/// round-trip when it decodes); `W` a wildcard pattern and a text (`\n`-separated); `I` a CIDR
/// and an address; `E` an EdgeAuth token checked against a path (`\n`-separated); `C` the
/// CloudFront check of query-like fields (`Expires`/`Policy`, `Signature`, `Key-Pair-Id`,
/// URL, `\n`-separated) against a ring holding one EC key. Asserts what holds for any input:
/// a literal pattern matches exactly itself, `*` matches everything, an accepted EdgeAuth
/// token has not expired at `now`.
pub fn fuzz_signed(data: &[u8]) {
    use crate::signed::{cloudfront, edgeauth, wildcard, Cidr, NoCache};
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(5, '\n');
    let mut next = || parts.next().unwrap_or("");
    match mode {
        b'P' => {
            let _ = cloudfront::Policy::parse(rest);
            // The canned policy we rebuild for any URL is a policy we parse back to that URL.
            let canned = cloudfront::canned_policy(&text, FUZZ_NOW);
            let p = cloudfront::Policy::parse(canned.as_bytes()).expect("a canned policy parses");
            assert_eq!((p.resource.as_deref(), p.less_than, p.greater_than, p.source), (Some(&*text), FUZZ_NOW, None, None));
        }
        b'B' => {
            if let Some(bytes) = cloudfront::url_b64_decode(&text) {
                assert_eq!(cloudfront::url_b64_decode(&cloudfront::url_b64_encode(&bytes)).as_deref(), Some(&bytes[..]));
            }
        }
        b'W' => {
            let (p, t) = (next(), next());
            let _ = wildcard::matches(p, t);
            if !p.contains(['*', '?']) {
                assert_eq!(wildcard::matches(p, t), p == t);
            }
            assert!(wildcard::matches("*", t));
        }
        b'I' => {
            let (c, a) = (next(), next());
            if let (Some(c), Ok(a)) = (Cidr::parse(c), a.parse()) {
                let _ = c.contains(a);
            }
        }
        b'E' => {
            static KEYS: LazyLock<edgeauth::Keys> = LazyLock::new(|| edgeauth::Keys::from_hex(&["52a152a152a152a152a152a152a152a1"], edgeauth::Algorithm::Sha256, None).expect("a valid key"));
            let (tok, path) = (next(), next());
            let check = edgeauth::Check { path, client_ip: "192.0.2.1".parse().ok(), now: FUZZ_NOW, skew: 0 };
            if edgeauth::verify(tok, &check, &KEYS).is_ok() {
                let (t, _) = edgeauth::Token::parse(tok).expect("an accepted token parses");
                assert!(t.expires > FUZZ_NOW);
            }
        }
        b'C' => {
            static RING: LazyLock<cloudfront::KeyRing> = LazyLock::new(|| {
                let mut r = cloudfront::KeyRing::new();
                r.add("K1", cloudfront::PublicKey::EcP256([&[4u8][..], &[7u8; 64]].concat())).expect("a valid ID");
                r
            });
            let (exp_or_policy, sig, id, url) = (next(), next(), next(), next());
            let (expires, policy) = if exp_or_policy.bytes().all(|b| b.is_ascii_digit()) { (Some(exp_or_policy), None) } else { (None, Some(exp_or_policy)) };
            let p = cloudfront::Params { expires, policy, signature: Some(sig), key_pair_id: Some(id), hash_algorithm: None };
            let check = cloudfront::Check { url, client_ip: None, now: FUZZ_NOW, skew: 0 };
            // Nothing verifies under a point that is not on the curve.
            assert!(cloudfront::verify(&p, &check, &RING, &NoCache).is_err());
        }
        _ => {}
    }
}

/// One `pssh` box. Asserts that a box that parses re-encodes to exactly the input (flags
/// included), and that its base64 decodes to the same bytes.
pub fn fuzz_pssh(data: &[u8]) {
    let Ok(p) = pssh::parse(data) else { return };
    let bytes = p.to_vec();
    assert_eq!(bytes, data, "pssh round trip is not exact");
    assert_eq!(bytes.len(), pssh::size(&p));
    assert_eq!(STANDARD.decode(pssh::to_base64(&p)).ok(), Some(bytes));
}
