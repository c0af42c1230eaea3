//! Token-restricted key authorization, table-driven: every case mints its own token (HS256
//! with a test secret; RS256/ES256 with the throw-away keys in `tests/keys/`, see its
//! README) and checks the status and reason `authorize` gives. Policies are written as the
//! origin's TOML would hold them, so the serde shape is tested on the way.
//!
//! `jsonwebtoken` mints most of the table, and the verifier is built on it too: a fault both
//! share would pass unseen. So `tests/tokens/independent.json` replays tokens minted without
//! it (Python `hmac`, `openssl dgst -sign`; `tests/tokens/mint.py`), with their verdicts, and
//! every one-byte mutation of valid tokens must be refused unless the signed bytes are the
//! same.

use std::path::Path;
use std::sync::LazyLock;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use sealcast_drm::auth::{
    authorize, AuthorizationPolicy, AuthorizationPolicyConfig, PolicyError, Refusal, CONTENT_KEY_CLAIM, MAX_TOKEN_BYTES,
};
use sealcast_drm::Kid;
use serde_json::{json, Value};

const NOW: u64 = 1_900_000_000;
const ISS: &str = "https://sts.sealcast.test";
const AUD: &str = "urn:sealcast:keys";
/// 32 bytes; base64 `SECRET_B64`.
const SECRET: &[u8] = b"sealcast-test-hs256-secret-32by!";
const OTHER_SECRET: &[u8] = b"a-different-secret-of-32-bytes!!";
const KID: &str = "abba271e-8bcf-552b-bd2e-86a434a9a5d9";
const OTHER_KID: &str = "00112233-4455-6677-8899-aabbccddeeff";

fn keys_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys"))
}

fn read_key(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name)).unwrap()
}

/// The DER body of a one-block PEM file.
fn pem_der(name: &str) -> Vec<u8> {
    let text = read_key(name);
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn kid() -> Kid {
    Kid::parse(KID).unwrap()
}

/// Builds the policy under `authorization` in a TOML document, reading key files from
/// `tests/keys/`.
fn policy(toml_text: &str) -> AuthorizationPolicy {
    policy_result(toml_text).unwrap()
}

fn policy_result(toml_text: &str) -> Result<AuthorizationPolicy, PolicyError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        authorization: AuthorizationPolicyConfig,
    }
    let doc: Doc = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"));
    doc.authorization.build(|path| std::fs::read_to_string(keys_dir().join(path)))
}

fn jwt_policy(keys: &str, extra: &str) -> AuthorizationPolicy {
    policy(&format!(
        r#"authorization = {{ type = "TokenRestricted", token_type = "Jwt", issuer = "{ISS}", audience = "{AUD}", keys = [ {keys} ], skew_secs = 60 {extra} }}"#
    ))
}

fn secret_b64(secret: &[u8]) -> String {
    STANDARD.encode(secret)
}

fn hs_policy() -> AuthorizationPolicy {
    jwt_policy(&format!(r#"{{ hs256 = "{}" }}"#, secret_b64(SECRET)), "")
}

fn claims() -> Value {
    json!({ "iss": ISS, "aud": AUD, "exp": NOW + 600, "nbf": NOW - 10, "sub": "viewer-1" })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base.as_object_mut().unwrap().insert(key.to_owned(), value);
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

fn rs256(claims: &Value, private_pem: &str, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&pem_der(private_pem))).unwrap()
}

fn es256(claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&pem_der("ec_private.pem"))).unwrap()
}

fn hs256_kid(claims: &Value, secret: &[u8], kid: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

/// A JWT from raw header and payload bytes, HS256-signed over whatever they are.
fn hs256_raw(header: &[u8], payload: &[u8], secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An SWT as the AMS SDK's test-token generator writes it.
fn swt(pairs: &[(&str, &str)], secret: &[u8]) -> String {
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
    let body = body.join("&");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body.as_bytes());
    format!("{body}&HMACSHA256={}", form_encode(&STANDARD.encode(tag.as_ref())))
}

fn swt_policy() -> AuthorizationPolicy {
    policy(&format!(
        r#"authorization = {{ type = "TokenRestricted", token_type = "Swt", issuer = "{ISS}", audience = "{AUD}", keys = [ {{ symmetric = "{}" }}, {{ symmetric = "{}" }} ], content_key_claim = true }}"#,
        secret_b64(OTHER_SECRET),
        secret_b64(SECRET)
    ))
}

struct Case {
    name: &'static str,
    policy: AuthorizationPolicy,
    token: Option<String>,
    /// `None` = authorized; otherwise (status, reason).
    expect: Option<(u16, &'static str)>,
}

fn case(
    name: &'static str,
    policy: &AuthorizationPolicy,
    token: impl Into<Option<String>>,
    expect: Option<(u16, &'static str)>,
) -> Case {
    Case { name, policy: policy.clone(), token: token.into(), expect }
}

const OK: Option<(u16, &str)> = None;

fn cases() -> Vec<Case> {
    let hs = hs_policy();
    let rsa = jwt_policy(r#"{ rsa_pem_file = "rsa_public.pem" }"#, "");
    let ec = jwt_policy(r#"{ ec_pem_file = "ec_public.pem" }"#, "");
    let rsa_cert = jwt_policy(r#"{ x509_pem_file = "rsa_cert.pem" }"#, "");
    let ec_cert = jwt_policy(r#"{ x509_pem_file = "ec_cert.pem" }"#, "");
    let jwks = jwt_policy(r#"{ jwks_file = "jwks.json" }"#, "");
    // Rotation: several keys of one algorithm, told apart by `kid`.
    let rotated = jwt_policy(
        &format!(
            r#"{{ rsa_pem_file = "rsa2_public.pem", kid = "rsa-old" }}, {{ hs256 = "{}" }}, {{ rsa_pem_file = "rsa_public.pem", kid = "rsa-new" }}"#,
            secret_b64(OTHER_SECRET)
        ),
        "",
    );
    let hs_rotated = jwt_policy(
        &format!(r#"{{ hs256 = "{}", kid = "old" }}, {{ hs256 = "{}", kid = "new" }}"#, secret_b64(OTHER_SECRET), secret_b64(SECRET)),
        "",
    );
    let claims_policy = jwt_policy(
        &format!(r#"{{ hs256 = "{}" }}"#, secret_b64(SECRET)),
        r#", required_claims = [ { name = "sub" }, { name = "role", value = "premium" } ]"#,
    );
    let kid_policy = jwt_policy(&format!(r#"{{ hs256 = "{}" }}"#, secret_b64(SECRET)), ", content_key_claim = true");
    let rsa_pem_text = read_key("rsa_public.pem");
    let premium = with(claims(), "role", json!("premium"));
    let for_kid = |k: &str| with(claims(), CONTENT_KEY_CLAIM, json!(k));
    let swt_ok = |exp: u64, iss: &str| {
        let exp = exp.to_string();
        vec![
            (CONTENT_KEY_CLAIM, KID.to_owned()),
            ("Audience", AUD.to_owned()),
            ("ExpiresOn", exp),
            ("Issuer", iss.to_owned()),
        ]
    };
    let swt_tok = |pairs: Vec<(&str, String)>, secret: &[u8]| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        swt(&pairs, secret)
    };
    let swt_p = swt_policy();
    let valid_hs = hs256(&claims(), SECRET);

    vec![
        // Valid tokens, every key kind.
        case("valid HS256", &hs, hs256(&claims(), SECRET), OK),
        case("valid RS256 (PEM)", &rsa, rs256(&claims(), "rsa_private.pem", None), OK),
        case("valid ES256 (PEM)", &ec, es256(&claims(), None), OK),
        case("valid RS256 via certificate", &rsa_cert, rs256(&claims(), "rsa_private.pem", None), OK),
        case("valid ES256 via certificate", &ec_cert, es256(&claims(), None), OK),
        case("valid RS256 via JWKS kid", &jwks, rs256(&claims(), "rsa2_private.pem", Some("rsa-2")), OK),
        case("valid ES256 via JWKS kid", &jwks, es256(&claims(), Some("ec-1")), OK),
        case("valid via JWKS without kid", &jwks, rs256(&claims(), "rsa2_private.pem", None), OK),
        case("valid via alternate RSA key", &rotated, rs256(&claims(), "rsa_private.pem", Some("rsa-new")), OK),
        case("valid via alternate symmetric key", &hs_rotated, hs256_kid(&claims(), SECRET, "new"), OK),
        case("valid via the one HS256 key of a rotated policy", &rotated, hs256(&claims(), OTHER_SECRET), OK),
        case(
            "rotated RSA keys, no kid",
            &rotated,
            rs256(&claims(), "rsa_private.pem", None),
            Some((401, "token_kid_missing")),
        ),
        case("rotated symmetric keys, no kid", &hs_rotated, hs256(&claims(), SECRET), Some((401, "token_kid_missing"))),
        case(
            "rotated symmetric keys, kid of the other key",
            &hs_rotated,
            hs256_kid(&claims(), SECRET, "old"),
            Some((401, "token_signature")),
        ),
        case(
            "rotated symmetric keys, unknown kid",
            &hs_rotated,
            hs256_kid(&claims(), SECRET, "newer"),
            Some((401, "token_unknown_key")),
        ),
        case("one key without kid, token with any kid", &hs, hs256_kid(&claims(), SECRET, "whatever"), OK),
        case("audience in an array", &hs, hs256(&with(claims(), "aud", json!(["other", AUD])), SECRET), OK),
        case("no nbf at all", &hs, hs256(&without(claims(), "nbf"), SECRET), OK),
        case("open policy, no token", &AuthorizationPolicy::Open, None, OK),
        // Time.
        case("expired", &hs, hs256(&with(claims(), "exp", json!(NOW - 120)), SECRET), Some((401, "token_expired"))),
        case(
            "expired exactly at exp + skew",
            &hs,
            hs256(&with(claims(), "exp", json!(NOW - 60)), SECRET),
            Some((401, "token_expired")),
        ),
        case("expired within skew", &hs, hs256(&with(claims(), "exp", json!(NOW - 30)), SECRET), OK),
        case(
            "not yet valid",
            &hs,
            hs256(&with(claims(), "nbf", json!(NOW + 120)), SECRET),
            Some((401, "token_not_yet_valid")),
        ),
        case("not yet valid within skew", &hs, hs256(&with(claims(), "nbf", json!(NOW + 30)), SECRET), OK),
        case("fractional exp", &hs, hs256(&with(claims(), "exp", json!((NOW + 600) as f64 + 0.5)), SECRET), OK),
        case("no exp", &hs, hs256(&without(claims(), "exp"), SECRET), Some((401, "token_no_expiry"))),
        case(
            "exp as a string",
            &hs,
            hs256(&with(claims(), "exp", json!("1900000600")), SECRET),
            Some((401, "token_malformed")),
        ),
        case("negative exp", &hs, hs256(&with(claims(), "exp", json!(-5)), SECRET), Some((401, "token_malformed"))),
        // Issuer and audience.
        case(
            "wrong issuer",
            &hs,
            hs256(&with(claims(), "iss", json!("https://evil.test")), SECRET),
            Some((401, "token_issuer")),
        ),
        case("no issuer", &hs, hs256(&without(claims(), "iss"), SECRET), Some((401, "token_issuer"))),
        case(
            "wrong audience",
            &hs,
            hs256(&with(claims(), "aud", json!("urn:other")), SECRET),
            Some((401, "token_audience")),
        ),
        case(
            "audience array without ours",
            &hs,
            hs256(&with(claims(), "aud", json!(["a", "b"])), SECRET),
            Some((401, "token_audience")),
        ),
        // Signatures and algorithms.
        case("bad signature (other secret)", &hs, hs256(&claims(), OTHER_SECRET), Some((401, "token_signature"))),
        case(
            "bad signature (other RSA key)",
            &rsa,
            rs256(&claims(), "rsa2_private.pem", None),
            Some((401, "token_signature")),
        ),
        case(
            "bad signature (tampered payload)",
            &hs,
            {
                let mut parts: Vec<String> = valid_hs.split('.').map(str::to_owned).collect();
                parts[1] = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("admin")).to_string());
                parts.join(".")
            },
            Some((401, "token_signature")),
        ),
        case("alg none", &hs, unsigned(&claims()), Some((401, "token_algorithm"))),
        case(
            "alg None (case)",
            &hs,
            {
                format!(
                    "{}.{}.",
                    URL_SAFE_NO_PAD.encode(br#"{"alg":"None"}"#),
                    URL_SAFE_NO_PAD.encode(claims().to_string())
                )
            },
            Some((401, "token_algorithm")),
        ),
        case("alg none against RSA", &rsa, unsigned(&claims()), Some((401, "token_algorithm"))),
        case(
            "HS256 signed with the RSA public key PEM",
            &rsa,
            hs256(&claims(), rsa_pem_text.as_bytes()),
            Some((401, "token_algorithm")),
        ),
        case(
            "HS256 signed with the certificate PEM",
            &rsa_cert,
            hs256(&claims(), read_key("rsa_cert.pem").as_bytes()),
            Some((401, "token_algorithm")),
        ),
        case(
            "HS256 against a JWKS",
            &jwks,
            hs256(&claims(), read_key("jwks.json").as_bytes()),
            Some((401, "token_algorithm")),
        ),
        case(
            "RS256 token for an EC key",
            &ec,
            rs256(&claims(), "rsa_private.pem", None),
            Some((401, "token_algorithm")),
        ),
        case(
            "HS512 refused",
            &hs,
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims(), &EncodingKey::from_secret(SECRET).unwrap())
                .unwrap(),
            Some((401, "token_algorithm")),
        ),
        case(
            "unknown JWKS kid",
            &jwks,
            rs256(&claims(), "rsa2_private.pem", Some("rsa-9")),
            Some((401, "token_unknown_key")),
        ),
        case(
            "JWKS kid of the wrong key",
            &jwks,
            rs256(&claims(), "rsa_private.pem", Some("rsa-2")),
            Some((401, "token_signature")),
        ),
        // Claims (403).
        case("required claims present", &claims_policy, hs256(&premium, SECRET), OK),
        case(
            "required claim value in an array",
            &claims_policy,
            hs256(&with(claims(), "role", json!(["basic", "premium"])), SECRET),
            OK,
        ),
        case(
            "missing required claim",
            &claims_policy,
            hs256(&without(premium.clone(), "sub"), SECRET),
            Some((403, "claim_missing")),
        ),
        case(
            "required claim null",
            &claims_policy,
            hs256(&with(premium.clone(), "sub", Value::Null), SECRET),
            Some((403, "claim_missing")),
        ),
        case(
            "wrong claim value",
            &claims_policy,
            hs256(&with(claims(), "role", json!("basic")), SECRET),
            Some((403, "claim_value")),
        ),
        case("token for this KID", &kid_policy, hs256(&for_kid(KID), SECRET), OK),
        case(
            "KID claim dashless uppercase",
            &kid_policy,
            hs256(&for_kid(&KID.replace('-', "").to_uppercase()), SECRET),
            OK,
        ),
        case("KID claim uppercase GUID", &kid_policy, hs256(&for_kid(&KID.to_uppercase()), SECRET), OK),
        case(
            "token for another KID",
            &kid_policy,
            hs256(&for_kid(OTHER_KID), SECRET),
            Some((403, "content_key_mismatch")),
        ),
        case(
            "token for another KID, claim not required",
            &hs,
            hs256(&for_kid(OTHER_KID), SECRET),
            Some((403, "content_key_mismatch")),
        ),
        case(
            "KID claim not a GUID",
            &kid_policy,
            hs256(&for_kid("not-a-guid"), SECRET),
            Some((403, "content_key_mismatch")),
        ),
        case(
            "KID claim not a string",
            &kid_policy,
            hs256(&with(claims(), CONTENT_KEY_CLAIM, json!(42)), SECRET),
            Some((403, "content_key_mismatch")),
        ),
        case(
            "KID claim required but absent",
            &kid_policy,
            hs256(&claims(), SECRET),
            Some((403, "content_key_claim_missing")),
        ),
        // Malformed input.
        case("no token", &hs, None, Some((401, "token_missing"))),
        case("empty token", &hs, String::new(), Some((401, "token_missing"))),
        case("truncated token", &hs, valid_hs[..valid_hs.len() / 2].to_owned(), Some((401, "token_malformed"))),
        case("truncated signature", &hs, valid_hs[..valid_hs.len() - 5].to_owned(), Some((401, "token_malformed"))),
        case(
            "oversized token",
            &hs,
            format!("{valid_hs}{}", "A".repeat(MAX_TOKEN_BYTES)),
            Some((401, "token_too_large")),
        ),
        case("garbage base64", &hs, "!!!.@@@.###".to_owned(), Some((401, "token_malformed"))),
        case("four parts", &hs, format!("{valid_hs}.x"), Some((401, "token_malformed"))),
        case(
            "header not JSON",
            &hs,
            format!("{}.e30.AAAA", URL_SAFE_NO_PAD.encode("nope")),
            Some((401, "token_malformed")),
        ),
        case(
            "non-JSON payload, valid MAC",
            &hs,
            hs256_raw(br#"{"alg":"HS256","typ":"JWT"}"#, b"not json", SECRET),
            Some((401, "token_malformed")),
        ),
        case(
            "payload a JSON array, valid MAC",
            &hs,
            hs256_raw(br#"{"alg":"HS256"}"#, b"[1,2]", SECRET),
            Some((401, "token_malformed")),
        ),
        case(
            "unknown crit header, valid MAC",
            &hs,
            hs256_raw(br#"{"alg":"HS256","crit":["exp"]}"#, claims().to_string().as_bytes(), SECRET),
            Some((401, "token_malformed")),
        ),
        case("SWT given to a JWT policy", &hs, swt_tok(swt_ok(NOW + 600, ISS), SECRET), Some((401, "token_malformed"))),
        // SWT.
        case("SWT valid (alternate key)", &swt_p, swt_tok(swt_ok(NOW + 600, ISS), SECRET), OK),
        case("SWT valid, primary key", &swt_p, swt_tok(swt_ok(NOW + 600, ISS), OTHER_SECRET), OK),
        case("SWT expired", &swt_p, swt_tok(swt_ok(NOW - 400, ISS), SECRET), Some((401, "token_expired"))),
        case("SWT expired within default skew", &swt_p, swt_tok(swt_ok(NOW - 200, ISS), SECRET), OK),
        case(
            "SWT bad MAC",
            &swt_p,
            swt_tok(swt_ok(NOW + 600, ISS), b"yet-another-secret-for-the-swt!!"),
            Some((401, "token_signature")),
        ),
        case(
            "SWT tampered",
            &swt_p,
            swt_tok(swt_ok(NOW + 600, ISS), SECRET).replace("ExpiresOn=19", "ExpiresOn=29"),
            Some((401, "token_signature")),
        ),
        case(
            "SWT wrong issuer",
            &swt_p,
            swt_tok(swt_ok(NOW + 600, "https://evil.test"), SECRET),
            Some((401, "token_issuer")),
        ),
        case(
            "SWT for another KID",
            &swt_p,
            {
                let mut pairs = swt_ok(NOW + 600, ISS);
                pairs[0].1 = OTHER_KID.to_owned();
                swt_tok(pairs, SECRET)
            },
            Some((403, "content_key_mismatch")),
        ),
        case(
            "SWT without KID claim",
            &swt_p,
            swt_tok(swt_ok(NOW + 600, ISS)[1..].to_vec(), SECRET),
            Some((403, "content_key_claim_missing")),
        ),
        case(
            "SWT without ExpiresOn",
            &swt_p,
            {
                let mut pairs = swt_ok(NOW + 600, ISS);
                pairs.remove(2);
                swt_tok(pairs, SECRET)
            },
            Some((401, "token_no_expiry")),
        ),
        case(
            "SWT ExpiresOn not a number",
            &swt_p,
            {
                let mut pairs = swt_ok(NOW + 600, ISS);
                pairs[2].1 = "soon".to_owned();
                swt_tok(pairs, SECRET)
            },
            Some((401, "token_malformed")),
        ),
        case(
            "SWT duplicate claim",
            &swt_p,
            {
                let mut pairs = swt_ok(NOW + 600, ISS);
                pairs.push(("Issuer", "https://evil.test".to_owned()));
                swt_tok(pairs, SECRET)
            },
            Some((401, "token_malformed")),
        ),
        case(
            "SWT without signature",
            &swt_p,
            "Issuer=a&Audience=b&ExpiresOn=1".to_owned(),
            Some((401, "token_malformed")),
        ),
        case("SWT signature not base64", &swt_p, "Issuer=a&HMACSHA256=%%%".to_owned(), Some((401, "token_malformed"))),
        case("JWT given to an SWT policy", &swt_p, valid_hs.clone(), Some((401, "token_malformed"))),
    ]
}

#[test]
fn token_table() {
    let mut failures = Vec::new();
    for c in cases() {
        let got = authorize(&c.policy, c.token.as_deref(), kid(), NOW).map_err(|r| (r.status(), r.reason()));
        let want = match c.expect {
            None => Ok(()),
            Some(e) => Err(e),
        };
        if got != want {
            failures.push(format!("{}: got {got:?}, want {want:?}", c.name));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn reasons_are_fixed_and_statuses_are_401_or_403() {
    for r in Refusal::ALL {
        assert!(matches!(r.status(), 401 | 403), "{r:?}");
        assert!(r.reason().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{r:?}");
        assert_eq!(r.to_string(), r.reason());
    }
}

#[test]
fn debug_never_shows_secrets() {
    let b64 = secret_b64(SECRET);
    let cfg: AuthorizationPolicyConfig = toml::from_str(&format!(
        r#"type = "TokenRestricted"
token_type = "Jwt"
issuer = "{ISS}"
audience = "{AUD}"
keys = [ {{ symmetric = "{b64}" }}, {{ rsa_pem_file = "rsa_public.pem" }} ]"#
    ))
    .unwrap();
    let built = cfg.build(|p| std::fs::read_to_string(keys_dir().join(p))).unwrap();
    for shown in [format!("{cfg:?}"), format!("{built:?}"), format!("{built:#?}")] {
        assert!(!shown.contains(&b64), "{shown}");
        assert!(!shown.contains("sealcast-test"), "{shown}");
        assert!(!shown.contains("MII"), "{shown}");
    }
    assert!(format!("{cfg:?}").contains("rsa_public.pem"));
}

#[test]
fn config_shape_and_defaults() {
    let cfg: AuthorizationPolicyConfig = toml::from_str(r#"type = "Open""#).unwrap();
    assert_eq!(cfg, AuthorizationPolicyConfig::Open {});
    assert!(matches!(cfg.build_inline().unwrap(), AuthorizationPolicy::Open));

    let text = format!(
        r#"type = "TokenRestricted"
token_type = "Swt"
issuer = "i"
audience = "a"
keys = [ {{ hs256 = "{}" }} ]"#,
        secret_b64(SECRET)
    );
    let cfg: AuthorizationPolicyConfig = toml::from_str(&text).unwrap();
    let AuthorizationPolicyConfig::TokenRestricted(req) = &cfg else { panic!("{cfg:?}") };
    assert_eq!(req.skew_secs, 300);
    assert!(!req.content_key_claim);
    assert!(req.require_expiry);
    assert!(req.required_claims.is_empty());
    cfg.build_inline().unwrap();

    // Unknown fields are refused, at both levels.
    assert!(toml::from_str::<AuthorizationPolicyConfig>(&format!("{text}\nskew = 5")).is_err());
    assert!(toml::from_str::<AuthorizationPolicyConfig>("type = \"Open\"\nissuer = \"x\"").is_err());
    assert!(toml::from_str::<AuthorizationPolicyConfig>(&text.replace("hs256", "hs999")).is_err());
}

#[test]
fn bad_policies_are_refused_at_build() {
    let base = |token_type: &str, keys: &str| {
        format!(
            r#"authorization = {{ type = "TokenRestricted", token_type = "{token_type}", issuer = "i", audience = "a", keys = [ {keys} ] }}"#
        )
    };
    let err = |token_type: &str, keys: &str| policy_result(&base(token_type, keys)).unwrap_err();

    assert_eq!(err("Jwt", ""), PolicyError::NoKeys);
    assert_eq!(err("Swt", r#"{ rsa_pem_file = "rsa_public.pem" }"#), PolicyError::SwtNeedsSymmetric { index: 0 });
    assert!(matches!(
        err("Jwt", r#"{ hs256 = "c2hvcnQ=" }"#),
        PolicyError::Key { index: Some(0), what: "symmetric", .. }
    ));
    assert!(matches!(err("Jwt", r#"{ hs256 = "***" }"#), PolicyError::Key { index: Some(0), .. }));
    assert!(matches!(err("Jwt", r#"{ rsa_pem_file = "ec_public.pem" }"#), PolicyError::Key { what: "rsa_pem", .. }));
    assert!(matches!(err("Jwt", r#"{ ec_pem_file = "rsa_public.pem" }"#), PolicyError::Key { what: "ec_pem", .. }));
    assert!(matches!(err("Jwt", r#"{ rsa_pem_file = "rsa_private.pem" }"#), PolicyError::Key { what: "rsa_pem", .. }));
    assert!(matches!(err("Jwt", r#"{ x509_pem_file = "rsa_public.pem" }"#), PolicyError::Key { what: "x509_pem", .. }));
    assert!(matches!(err("Jwt", r#"{ jwks = "{\"keys\": []}" }"#), PolicyError::Key { what: "jwks", .. }));
    assert!(matches!(err("Jwt", r#"{ jwks = "not json" }"#), PolicyError::Key { what: "jwks", .. }));
    assert!(matches!(err("Jwt", r#"{ rsa_pem_file = "missing.pem" }"#), PolicyError::Load { index: 0, .. }));
    assert!(matches!(
        err("Jwt", &format!(r#"{{ hs256 = "{}" }}, {{ rsa_pem = "garbage" }}"#, secret_b64(SECRET))),
        PolicyError::Key { index: Some(1), .. }
    ));

    // Keys without a kid are each tried per token: at most 8 per algorithm. Kids are unique
    // per policy.
    let two_hs = format!(r#"{{ hs256 = "{}" }}, {{ hs256 = "{}", kid = "b" }}"#, secret_b64(SECRET), secret_b64(OTHER_SECRET));
    policy(&base("Jwt", &two_hs));
    let nine = vec![format!(r#"{{ hs256 = "{}" }}"#, secret_b64(SECRET)); 9].join(", ");
    assert!(matches!(err("Jwt", &nine), PolicyError::Invalid(m) if m.contains("more than 8")));
    assert!(matches!(err("Swt", &nine), PolicyError::Invalid(m) if m.contains("more than 8")));
    policy(&base("Jwt", &vec![format!(r#"{{ hs256 = "{}" }}"#, secret_b64(SECRET)); 8].join(", ")));
    let same_kid = format!(r#"{{ hs256 = "{}", kid = "a" }}, {{ rsa_pem_file = "rsa_public.pem", kid = "a" }}"#, secret_b64(SECRET));
    assert!(matches!(err("Jwt", &same_kid), PolicyError::Invalid(m) if m.contains("same kid")));
    let jwks_kid = r#"{ rsa_pem_file = "rsa_public.pem", kid = "rsa-2" }, { jwks_file = "jwks.json" }"#;
    assert!(matches!(err("Jwt", jwks_kid), PolicyError::Invalid(m) if m.contains("same kid")));
    assert!(matches!(err("Jwt", r#"{ jwks_file = "jwks.json", kid = "x" }"#), PolicyError::Key { index: Some(0), what: "jwks", .. }));
    assert!(matches!(err("Jwt", r#"{ rsa_pem_file = "rsa_public.pem", kid = "" }"#), PolicyError::Key { what: "kid", .. }));
    // SWT tokens name no key: several symmetric keys are tried in order, no kids needed.
    policy(&base("Swt", &format!(r#"{{ hs256 = "{}" }}, {{ hs256 = "{}" }}"#, secret_b64(SECRET), secret_b64(OTHER_SECRET))));
    // A key table holds one key.
    let two_in_one = format!(r#"authorization = {{ type = "TokenRestricted", token_type = "Jwt", issuer = "i", audience = "a", keys = [ {{ hs256 = "{}", rsa_pem_file = "rsa_public.pem" }} ] }}"#, secret_b64(SECRET));
    assert!(toml::from_str::<toml::Value>(&two_in_one).is_ok());
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        authorization: AuthorizationPolicyConfig,
    }
    assert!(toml::from_str::<Doc>(&two_in_one).is_err());

    // Inline PEM and JWKS text work as well as files; build_inline refuses file keys.
    let inline = format!("{{ rsa_pem = {:?}, kid = \"rsa-1\" }}, {{ jwks = {:?} }}", read_key("rsa_public.pem"), read_key("jwks.json"));
    let cfg = base("Jwt", &inline);
    let p = policy(&cfg);
    assert_eq!(authorize(&p, Some(&rs256(&claims_ia(), "rsa_private.pem", Some("rsa-1"))), kid(), NOW), Ok(()));
    assert_eq!(authorize(&p, Some(&es256(&claims_ia(), Some("ec-1"))), kid(), NOW), Ok(()));
    let cfg: AuthorizationPolicyConfig = toml::from_str(
        r#"type = "TokenRestricted"
token_type = "Jwt"
issuer = "i"
audience = "a"
keys = [ { rsa_pem_file = "rsa_public.pem" } ]"#,
    )
    .unwrap();
    assert!(matches!(cfg.build_inline(), Err(PolicyError::Load { .. })));
}

/// A JWT is checked against one key. A JWKS with two RS256 keys cannot tell which one a JWT
/// without `kid` means: it is refused (401), not tried against each key in turn.
#[test]
fn a_jwt_without_kid_is_refused_when_several_keys_could_check_it() {
    let two = jwt_policy(r#"{ jwks_file = "jwks_two_rsa.json" }"#, "");
    let verdict = |private: &str, kid: Option<&str>| {
        authorize(&two, Some(&rs256(&claims(), private, kid)), self::kid(), NOW).map_err(|r| (r.status(), r.reason()))
    };
    assert_eq!(verdict("rsa2_private.pem", None), Err((401, "token_kid_missing")));
    assert_eq!(verdict("rsa_private.pem", None), Err((401, "token_kid_missing")));
    assert_eq!(verdict("rsa2_private.pem", Some("rsa-2")), Ok(()));
    assert_eq!(verdict("rsa_private.pem", Some("rsa-1")), Ok(()));
    // The kid picks one key; it is the only one tried.
    assert_eq!(verdict("rsa2_private.pem", Some("rsa-1")), Err((401, "token_signature")));
    assert_eq!(verdict("rsa2_private.pem", Some("rsa-9")), Err((401, "token_unknown_key")));
}

/// Azure Media Services' primary and alternate verification keys carry no `kid`, nor do the
/// tokens its customers' STSs sign: each unnamed key of the token's algorithm is tried in turn
/// (primary first). A token signed by any listed key passes; one signed by an unlisted key is
/// refused (401), with HS256, RS256 (PEM, certificate, and n/e components as the v2 SDK's
/// `RsaTokenVerificationKey` holds them) alike.
#[test]
fn unnamed_primary_and_alternate_keys_are_each_tried() {
    const THIRD: &[u8] = b"a-third-secret-nobody-listed-32b";
    let verdict = |p: &AuthorizationPolicy, token: String| authorize(p, Some(&token), kid(), NOW).map_err(|r| (r.status(), r.reason()));
    let hs = jwt_policy(&format!(r#"{{ hs256 = "{}" }}, {{ hs256 = "{}" }}"#, secret_b64(SECRET), secret_b64(OTHER_SECRET)), "");
    assert_eq!(verdict(&hs, hs256(&claims(), SECRET)), Ok(()));
    assert_eq!(verdict(&hs, hs256(&claims(), OTHER_SECRET)), Ok(()));
    assert_eq!(verdict(&hs, hs256_kid(&claims(), OTHER_SECRET, "whatever")), Ok(()));
    assert_eq!(verdict(&hs, hs256(&claims(), THIRD)), Err((401, "token_signature")));
    assert_eq!(verdict(&hs, rs256(&claims(), "rsa_private.pem", None)), Err((401, "token_algorithm")));

    // The RSA key of rsa_public.pem from its JWK components (jwks_two_rsa.json's "rsa-1").
    let jwks: Value = serde_json::from_str(&read_key("jwks_two_rsa.json")).unwrap();
    let rsa1 = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "rsa-1").unwrap();
    let part = |name: &str| URL_SAFE_NO_PAD.decode(rsa1[name].as_str().unwrap()).unwrap();
    let from_components = sealcast_drm::auth::rsa_public_key_pem(&part("n"), &part("e")).unwrap();
    let rsa = jwt_policy(&format!(r#"{{ rsa_pem = {from_components:?} }}, {{ x509_pem_file = "ec_cert.pem" }}, {{ rsa_pem_file = "rsa2_public.pem" }}, {{ hs256 = "{}" }}"#, secret_b64(SECRET)), "");
    assert_eq!(verdict(&rsa, rs256(&claims(), "rsa_private.pem", None)), Ok(()), "primary (n/e components)");
    assert_eq!(verdict(&rsa, rs256(&claims(), "rsa2_private.pem", None)), Ok(()), "alternate");
    assert_eq!(verdict(&rsa, es256(&claims(), None)), Ok(()), "alternate X.509 (EC)");
    assert_eq!(verdict(&rsa, hs256(&claims(), SECRET)), Ok(()), "alternate symmetric");
    let only_primary = jwt_policy(&format!(r#"{{ rsa_pem = {from_components:?} }}"#), "");
    assert_eq!(verdict(&only_primary, rs256(&claims(), "rsa2_private.pem", None)), Err((401, "token_signature")), "unlisted key");
    // A named key is tried only for tokens naming it; unnamed ones for the rest.
    let mixed = jwt_policy(&format!(r#"{{ rsa_pem = {from_components:?} }}, {{ rsa_pem_file = "rsa2_public.pem", kid = "k2" }}"#), "");
    assert_eq!(verdict(&mixed, rs256(&claims(), "rsa2_private.pem", Some("k2"))), Ok(()));
    assert_eq!(verdict(&mixed, rs256(&claims(), "rsa2_private.pem", None)), Err((401, "token_signature")));
    assert_eq!(verdict(&mixed, rs256(&claims(), "rsa_private.pem", Some("k2"))), Err((401, "token_signature")));
    assert_eq!(verdict(&mixed, rs256(&claims(), "rsa_private.pem", None)), Ok(()));

    // SWT: the primary, then the alternates.
    let swt_two = policy(&format!(
        r#"authorization = {{ type = "TokenRestricted", token_type = "Swt", issuer = "{ISS}", audience = "{AUD}", keys = [ {{ hs256 = "{}" }}, {{ hs256 = "{}" }} ] }}"#,
        secret_b64(SECRET),
        secret_b64(OTHER_SECRET)
    ));
    let exp = (NOW + 600).to_string();
    let fields = [("Audience", AUD), ("ExpiresOn", exp.as_str()), ("Issuer", ISS)];
    assert_eq!(verdict(&swt_two, swt(&fields, OTHER_SECRET)), Ok(()));
    assert_eq!(verdict(&swt_two, swt(&fields, SECRET)), Ok(()));
    assert_eq!(verdict(&swt_two, swt(&fields, THIRD)), Err((401, "token_signature")));
}

/// A token is checked once for a request of several keys; what it grants is then asked per
/// key (the content-key claim).
#[test]
fn a_checked_token_is_asked_per_key() {
    let p = jwt_policy(&format!(r#"{{ hs256 = "{}" }}"#, secret_b64(SECRET)), ", content_key_claim = true");
    let other = Kid::parse(OTHER_KID).unwrap();
    let granted = p.check_token(Some(&hs256(&with(claims(), CONTENT_KEY_CLAIM, json!(KID)), SECRET)), NOW).unwrap();
    assert_eq!(granted.permits(kid()), Ok(()));
    assert_eq!(granted.permits(other), Err(Refusal::WrongContentKey));
    let any = hs_policy().check_token(Some(&hs256(&claims(), SECRET)), NOW).unwrap();
    assert_eq!((any.permits(kid()), any.permits(other)), (Ok(()), Ok(())));
    let missing = p.check_token(Some(&hs256(&claims(), SECRET)), NOW).unwrap();
    assert_eq!(missing.permits(kid()), Err(Refusal::MissingContentKeyClaim));
    assert_eq!(p.check_token(Some(&hs256(&claims(), OTHER_SECRET)), NOW), Err(Refusal::BadSignature));
    assert!(AuthorizationPolicy::Open.check_token(None, NOW).unwrap().permits(other).is_ok());
}

fn claims_ia() -> Value {
    json!({ "iss": "i", "aud": "a", "exp": NOW + 60 })
}

/// HS256, JWKS (RS256/ES256) and SWT policies, built once for the property tests.
static FUZZ_POLICIES: LazyLock<[AuthorizationPolicy; 3]> =
    LazyLock::new(|| [hs_policy(), jwt_policy(r#"{ jwks_file = "jwks.json" }"#, ""), swt_policy()]);

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_strings_never_panic_nor_pass(s in "\\PC{0,300}") {
        for p in FUZZ_POLICIES.iter() {
            prop_assert!(authorize(p, Some(&s), kid(), NOW).is_err());
        }
    }

    #[test]
    fn token_shaped_noise_never_panics_nor_passes(
        parts in proptest::collection::vec("[A-Za-z0-9_=+/%&-]{0,80}", 0..5),
        sep in prop_oneof![Just("."), Just("&"), Just("&HMACSHA256=")],
    ) {
        let s = parts.join(sep);
        for p in FUZZ_POLICIES.iter() {
            prop_assert!(authorize(p, Some(&s), kid(), NOW).is_err());
        }
    }

    #[test]
    fn mutated_valid_tokens_never_panic(pos in 0usize..400, byte in any::<u8>(), now in any::<u64>()) {
        let token = hs256(&claims(), SECRET);
        let mut bytes = token.into_bytes();
        let at = pos % bytes.len();
        bytes[at] = byte;
        let s = String::from_utf8_lossy(&bytes);
        let _ = authorize(&FUZZ_POLICIES[0], Some(&s), kid(), now);
        let swt_token = swt(&[("Issuer", ISS), ("Audience", AUD), ("ExpiresOn", "1900000600")], SECRET);
        let mut bytes = swt_token.into_bytes();
        let at = pos % bytes.len();
        bytes[at] = byte;
        let _ = authorize(&FUZZ_POLICIES[2], Some(&String::from_utf8_lossy(&bytes)), kid(), now);
    }
}

// --------------------------------------------------------------------------- independent tokens

#[derive(serde::Deserialize)]
struct Independent {
    now: u64,
    issuer: String,
    audience: String,
    kid: String,
    secret_b64: String,
    cases: Vec<IndependentCase>,
}

#[derive(serde::Deserialize)]
struct IndependentCase {
    name: String,
    policy: String,
    token: String,
    expect: String,
}

fn independent() -> Independent {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tokens/independent.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The policies the fixture's cases name, built from the fixture's own issuer, audience and
/// secret (see `tests/tokens/mint.py`).
fn independent_policy(fx: &Independent, name: &str) -> AuthorizationPolicy {
    let jwt = |keys: &str, extra: &str| {
        policy(&format!(
            r#"authorization = {{ type = "TokenRestricted", token_type = "Jwt", issuer = "{}", audience = "{}", keys = [ {keys} ], skew_secs = 60 {extra} }}"#,
            fx.issuer, fx.audience
        ))
    };
    let hs = format!(r#"{{ hs256 = "{}" }}"#, fx.secret_b64);
    match name {
        "hs" => jwt(&hs, ""),
        "hs_kid" => jwt(&hs, ", content_key_claim = true"),
        "rsa" => jwt(r#"{ rsa_pem_file = "rsa_public.pem" }"#, ""),
        "ec" => jwt(r#"{ ec_pem_file = "ec_public.pem" }"#, ""),
        "jwks" => jwt(r#"{ jwks_file = "jwks.json" }"#, ""),
        "swt" => policy(&format!(
            r#"authorization = {{ type = "TokenRestricted", token_type = "Swt", issuer = "{}", audience = "{}", keys = [ {{ symmetric = "{}" }} ], content_key_claim = true }}"#,
            fx.issuer, fx.audience, fx.secret_b64
        )),
        other => panic!("independent.json names an unknown policy {other:?}"),
    }
}

fn verdict(p: &AuthorizationPolicy, token: &str, kid: Kid, now: u64) -> String {
    match authorize(p, Some(token), kid, now) {
        Ok(()) => "ok".to_owned(),
        Err(r) => r.reason().to_owned(),
    }
}

#[test]
fn independently_minted_tokens_get_their_verdicts() {
    let fx = independent();
    let kid = Kid::parse(&fx.kid).unwrap();
    let mut failures = Vec::new();
    for c in &fx.cases {
        let got = verdict(&independent_policy(&fx, &c.policy), &c.token, kid, fx.now);
        if got != c.expect {
            failures.push(format!("{}: got {got}, want {}", c.name, c.expect));
        }
    }
    assert!(fx.cases.iter().filter(|c| c.expect == "ok").count() >= 5, "the fixture needs valid tokens of every kind");
    assert!(failures.is_empty(), "{} of {} independent token(s) misjudged:\n{}", failures.len(), fx.cases.len(), failures.join("\n"));
}

// --------------------------------------------------------------------------- one-byte mutations

/// base64 that accepts non-canonical trailing bits and optional padding: what a lenient
/// decoder could make of a mutated signature. Only used to decide whether a mutation left
/// the signature's bytes as they were (then accepting is harmless).
fn lenient(alphabet: &base64::alphabet::Alphabet) -> base64::engine::GeneralPurpose {
    use base64::engine::{DecodePaddingMode, GeneralPurposeConfig};
    base64::engine::GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true).with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}

/// `%XX` decoded (either case), every other byte kept: enough to compare SWT signature values.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The signature bytes of a JWT (third segment) or SWT (`HMACSHA256` value), decoded
/// leniently; `None` when it does not decode at all.
fn signature_bytes(token: &str, swt: bool) -> Option<Vec<u8>> {
    if swt {
        let (_, sig) = token.split_once("&HMACSHA256=")?;
        lenient(&base64::alphabet::STANDARD).decode(percent_decode(sig)?).ok()
    } else {
        let mut parts = token.split('.');
        let (_, _, sig, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else { return None };
        lenient(&base64::alphabet::URL_SAFE).decode(sig).ok()
    }
}

/// Every one-byte mutation of `token` (each position, each of the 256 byte values) under
/// policy `p` at `now`: the unchanged token passes; a mutation must be refused unless it
/// only touched the signature's text and that text still decodes to the same signature
/// bytes (base64's unused trailing bits, `%3d` for `%3D`): then, and only then, either
/// verdict is fine. Everything before the signature is signed as text, so every change
/// there must fail. Returns how many mutations were checked to be refused.
fn check_mutations(what: &str, p: &AuthorizationPolicy, token: &str, kid: Kid, now: u64, swt: bool) -> usize {
    assert_eq!(verdict(p, token, kid, now), "ok", "{what}: the unmutated token must pass");
    let sig = signature_bytes(token, swt).unwrap_or_else(|| panic!("{what}: no signature"));
    let sig_start = if swt { token.find("&HMACSHA256=").unwrap() + "&HMACSHA256=".len() } else { token.rfind('.').unwrap() + 1 };
    let (mut refused, mut failures) = (0, Vec::new());
    for at in 0..token.len() {
        for byte in 0..=255u8 {
            let mut b = token.as_bytes().to_vec();
            if b[at] == byte {
                continue;
            }
            b[at] = byte;
            let mutated = String::from_utf8_lossy(&b).into_owned();
            let got = verdict(p, &mutated, kid, now);
            let same_signature = at >= sig_start && signature_bytes(&mutated, swt).as_ref() == Some(&sig) && {
                // and everything before the signature is untouched
                mutated.as_bytes()[..sig_start] == token.as_bytes()[..sig_start]
            };
            if same_signature {
                continue;
            }
            if got == "ok" {
                failures.push(format!("byte {at} {:?} -> {:?}: accepted", token.as_bytes()[at] as char, byte as char));
            } else {
                refused += 1;
            }
        }
    }
    assert!(failures.is_empty(), "{what}: {} mutation(s) of signed bytes accepted:\n{}", failures.len(), failures.join("\n"));
    refused
}

#[test]
fn every_one_byte_mutation_of_a_valid_token_is_refused() {
    // Minted here (jsonwebtoken, our SWT writer) and independently (the fixture).
    let n = check_mutations("HS256 (jsonwebtoken)", &hs_policy(), &hs256(&claims(), SECRET), kid(), NOW, false)
        + check_mutations("ES256 JWKS (jsonwebtoken)", &FUZZ_POLICIES[1], &es256(&claims(), Some("ec-1")), kid(), NOW, false)
        + check_mutations(
            "SWT",
            &swt_policy(),
            &swt(&[(CONTENT_KEY_CLAIM, KID), ("Audience", AUD), ("ExpiresOn", "1900000600"), ("Issuer", ISS)], SECRET),
            kid(),
            NOW,
            true,
        );
    let fx = independent();
    let fkid = Kid::parse(&fx.kid).unwrap();
    let mut m = 0;
    for c in fx.cases.iter().filter(|c| c.expect == "ok" && matches!(c.policy.as_str(), "hs" | "rsa" | "swt")) {
        m += check_mutations(&c.name, &independent_policy(&fx, &c.policy), &c.token, fkid, fx.now, c.policy == "swt");
    }
    assert!(n > 100_000 && m > 100_000, "too few mutations checked ({n} own, {m} independent)");
}

/// The lenient-decoding exception above is not a blind spot: flipping one of the two unused
/// trailing bits of an HS256 signature leaves its bytes the same, and the verifier still
/// refuses the non-canonical text (strict base64, as RFC 7515 section 2 asks).
#[test]
fn non_canonical_signature_text_is_refused_too() {
    let token = hs256(&claims(), SECRET);
    let last = *token.as_bytes().last().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let v = alphabet.iter().position(|&c| c == last).unwrap();
    // 32 bytes in 43 characters: the last one carries 4 bits and 2 unused ones.
    let twin = alphabet[v ^ 1] as char;
    let mutated = format!("{}{twin}", &token[..token.len() - 1]);
    assert_eq!(signature_bytes(&mutated, false), signature_bytes(&token, false), "the twin decodes to the same bytes");
    assert_eq!(verdict(&hs_policy(), &mutated, kid(), NOW), "token_malformed");
}
