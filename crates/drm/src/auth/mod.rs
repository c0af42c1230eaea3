//! Content key authorization policies and token checks (Azure Media Services'
//! `ContentKeyAuthorizationPolicy` model): pure code, no IO, no clock.
//!
//! A key is delivered when its [`AuthorizationPolicy`] passes: [`AuthorizationPolicy::Open`],
//! or [`AuthorizationPolicy::TokenRestricted`] with a JWT or SWT that
//!
//! 1. is at most [`MAX_TOKEN_BYTES`] long (checked before anything is parsed);
//! 2. is signed by one of the policy's [`VerificationKey`]s. The algorithm is fixed by the
//!    key type (HS256/HMACSHA256 for a symmetric key, RS256 for RSA, ES256 for EC P-256), so
//!    `alg: none` and HS256-signed-with-the-public-key tokens find no key. A JWT whose
//!    header's `kid` names a key is checked against that key alone; otherwise against each
//!    key of its algorithm that has no `kid` of its own, primary first, then the alternates
//!    (Azure Media Services' rotation: its tokens name no key). An SWT has no header: its MAC
//!    is checked with each symmetric key in the same order. A policy holds at most
//!    [`MAX_UNNAMED_KEYS`] such keys per algorithm, which bounds the checks one token costs.
//!    MACs are compared in constant time (aws-lc's `hmac::verify`, also under
//!    `jsonwebtoken`);
//! 3. has not expired and is already valid at `now_unix`, within `skew_secs`
//!    (JWT `exp`/`nbf`, SWT `ExpiresOn`), and carries an expiry unless the policy waives it;
//! 4. names the policy's issuer and audience (JWT `iss`/`aud`, `aud` may be an array;
//!    SWT `Issuer`/`Audience`);
//! 5. carries every required claim, with the required value where one is given;
//! 6. if it carries [`CONTENT_KEY_CLAIM`], names the requested KID there (GUID with or
//!    without dashes, any case). A policy with `content_key_claim = true` also refuses tokens
//!    without the claim, as AMS does. (AMS ignores the claim when the policy does not ask for
//!    it; we are stricter: a token limited to one key never opens another.)
//!
//! Steps 1–4 fail with status 401 (no usable credentials), steps 5–6 with 403 (a genuine
//! token that does not grant this key). See [`Refusal`] for the reason strings, which are
//! safe to put in a response body, a log line or a metric label: none echoes token content.
//!
//! Policies come from configuration as [`AuthorizationPolicyConfig`] (serde, TOML-friendly,
//! `deny_unknown_fields`). Key files are read by the caller: [`AuthorizationPolicyConfig::build`]
//! takes a loader closure, so this crate stays free of IO:
//!
//! ```toml
//! authorization = { type = "TokenRestricted", token_type = "Jwt", issuer = "https://sts.example",
//!   audience = "urn:sealcast", keys = [ { symmetric = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==" },
//!   { rsa_pem_file = "keys/rsa_public.pem", kid = "sts-2026" } ], required_claims = [ { name = "sub" },
//!   { name = "role", value = "premium" } ], skew_secs = 60, content_key_claim = true }
//! ```

mod config;
mod jwt;
pub(crate) mod keys;
mod swt;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::kid::Kid;

pub use config::{AuthorizationPolicyConfig, KeyConfig, KeySpec, TokenRequirementsConfig};
pub use keys::{
    certificate_spki_der, rsa_public_key_pem, VerificationKey, MAX_JWKS_KEYS, MAX_KEY_DOCUMENT_BYTES, MAX_UNNAMED_KEYS,
    MIN_SYMMETRIC_KEY_BYTES,
};

/// Longest token examined; longer ones are refused ([`Refusal::TooLarge`]) unparsed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Default allowed clock skew, seconds.
pub const DEFAULT_SKEW_SECS: u64 = 300;

/// Azure Media Services' claim limiting a token to one content key (value: the KID GUID).
/// The same name is used in JWT and SWT.
pub const CONTENT_KEY_CLAIM: &str = "urn:microsoft:azure:mediaservices:contentkeyidentifier";

/// Who may receive a content key.
#[derive(Clone, Debug)]
pub enum AuthorizationPolicy {
    /// Anyone (no token needed; a token, if sent, is ignored).
    Open,
    /// Only bearers of a valid token.
    TokenRestricted(TokenRequirements),
}

/// The kind of token a token-restricted policy accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenType {
    /// JSON Web Token (RFC 7519), compact JWS: HS256, RS256 or ES256.
    Jwt,
    /// Simple Web Token: form-encoded claims signed with `HMACSHA256`.
    Swt,
}

/// A claim the token must carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredClaim {
    /// Claim name (JWT: the JSON member; SWT: the form field name).
    pub name: String,
    /// Required value; `None` = presence is enough. A JSON string must equal it; a number
    /// or boolean must print as it; an array must contain a matching element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a token-restricted policy demands of a token.
///
/// Built from configuration by [`AuthorizationPolicyConfig::build`], which also checks that
/// there is at least one key and that SWT policies have only symmetric keys.
#[derive(Clone, Debug)]
pub struct TokenRequirements {
    /// JWT or SWT.
    pub token_type: TokenType,
    /// Required issuer (`iss` / `Issuer`), compared exactly.
    pub issuer: String,
    /// Required audience (`aud` / `Audience`), compared exactly.
    pub audience: String,
    /// Primary verification key first, then the alternates.
    pub keys: Vec<VerificationKey>,
    /// Claims the token must carry.
    pub required_claims: Vec<RequiredClaim>,
    /// Allowed clock skew for expiry and not-before, seconds.
    pub skew_secs: u64,
    /// Refuse tokens without [`CONTENT_KEY_CLAIM`] (a present claim is always checked).
    pub content_key_claim: bool,
    /// Refuse tokens without an expiry (`exp` / `ExpiresOn`).
    pub require_expiry: bool,
}

/// Why a key request was refused. [`Refusal::status`] is the HTTP status,
/// [`Refusal::reason`] a short fixed string for the body, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// No token (or an empty one) for a token-restricted key.
    MissingToken,
    /// Token longer than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not a well-formed token of the policy's type (structure, base64, JSON, claim types).
    Malformed,
    /// The token's algorithm is not one the policy's keys verify (`none`, HS256 against an
    /// RSA/EC key, anything but HS256/RS256/ES256).
    Algorithm,
    /// The JWT's `kid` names no key of the policy.
    UnknownKey,
    /// The JWT has no `kid` and the policy has several keys for its algorithm, each with a
    /// `kid` of its own.
    KeyIdRequired,
    /// No verification key accepts the signature.
    BadSignature,
    /// Expired (beyond the allowed skew).
    Expired,
    /// Not valid yet (`nbf` beyond the allowed skew).
    NotYetValid,
    /// The token has no expiry and the policy requires one.
    NoExpiry,
    /// Issuer missing or not the policy's.
    WrongIssuer,
    /// Audience missing or not the policy's.
    WrongAudience,
    /// A required claim is missing (403).
    MissingClaim,
    /// A required claim has another value (403).
    WrongClaimValue,
    /// The policy requires the content-key claim and the token has none (403).
    MissingContentKeyClaim,
    /// The token's content-key claim names another key (403).
    WrongContentKey,
}

impl Refusal {
    /// Every refusal, e.g. to register one metric series per reason up front.
    pub const ALL: [Refusal; 16] = [
        Refusal::MissingToken,
        Refusal::TooLarge,
        Refusal::Malformed,
        Refusal::Algorithm,
        Refusal::UnknownKey,
        Refusal::KeyIdRequired,
        Refusal::BadSignature,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::NoExpiry,
        Refusal::WrongIssuer,
        Refusal::WrongAudience,
        Refusal::MissingClaim,
        Refusal::WrongClaimValue,
        Refusal::MissingContentKeyClaim,
        Refusal::WrongContentKey,
    ];

    /// HTTP status: 401 when the request carries no acceptable credentials, 403 when the
    /// token is genuine and current but does not grant this key.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MissingClaim
            | Refusal::WrongClaimValue
            | Refusal::MissingContentKeyClaim
            | Refusal::WrongContentKey => 403,
            _ => 401,
        }
    }

    /// A short fixed reason (`snake_case`), never containing token content.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MissingToken => "token_missing",
            Refusal::TooLarge => "token_too_large",
            Refusal::Malformed => "token_malformed",
            Refusal::Algorithm => "token_algorithm",
            Refusal::UnknownKey => "token_unknown_key",
            Refusal::KeyIdRequired => "token_kid_missing",
            Refusal::BadSignature => "token_signature",
            Refusal::Expired => "token_expired",
            Refusal::NotYetValid => "token_not_yet_valid",
            Refusal::NoExpiry => "token_no_expiry",
            Refusal::WrongIssuer => "token_issuer",
            Refusal::WrongAudience => "token_audience",
            Refusal::MissingClaim => "claim_missing",
            Refusal::WrongClaimValue => "claim_value",
            Refusal::MissingContentKeyClaim => "content_key_claim_missing",
            Refusal::WrongContentKey => "content_key_mismatch",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for Refusal {}

/// A policy that cannot be built from its configuration (checked once, at startup).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// A verification key could not be parsed or is unsuitable.
    #[error("verification key{} ({what}): {reason}", index.map(|i| format!(" #{i}")).unwrap_or_default())]
    Key {
        /// Position in the policy's `keys` (0 = primary), when known.
        index: Option<usize>,
        /// The key spec kind (`rsa_pem`, `jwks`, ...).
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The loader could not read a key file.
    #[error("verification key #{index}: cannot read {path:?}: {reason}")]
    Load {
        /// Position in the policy's `keys`.
        index: usize,
        /// The path as configured.
        path: String,
        /// The loader's error.
        reason: String,
    },
    /// A token-restricted policy without keys.
    #[error("a token-restricted policy needs at least one verification key")]
    NoKeys,
    /// SWT tokens are HMAC-signed; a public key cannot check them.
    #[error("verification key #{index}: SWT policies take symmetric keys only")]
    SwtNeedsSymmetric {
        /// Position in the policy's `keys`.
        index: usize,
    },
    /// Another policy field is unusable.
    #[error("authorization policy: {0}")]
    Invalid(&'static str),
}

impl PolicyError {
    pub(crate) fn key(what: &'static str, reason: &'static str) -> Self {
        PolicyError::Key { index: None, what, reason }
    }
}

impl AuthorizationPolicy {
    /// Decides whether the bearer of `token` may receive key `kid` at `now_unix`.
    /// Same as [`authorize`].
    pub fn authorize(&self, token: Option<&str>, kid: Kid, now_unix: u64) -> Result<(), Refusal> {
        authorize(self, token, kid, now_unix)
    }

    /// Checks `token` once (steps 1–5: signature, times, issuer, audience, required claims)
    /// and returns what it grants, to be asked per key with [`Granted::permits`] (step 6).
    /// A request for several keys under one policy (a ClearKey licence) verifies its token
    /// once this way rather than once per key.
    pub fn check_token(&self, token: Option<&str>, now_unix: u64) -> Result<Granted, Refusal> {
        let req = match self {
            AuthorizationPolicy::Open => return Ok(Granted { keys: KeyLimit::Any }),
            AuthorizationPolicy::TokenRestricted(req) => req,
        };
        let token = match token {
            None | Some("") => return Err(Refusal::MissingToken),
            Some(t) if t.len() > MAX_TOKEN_BYTES => return Err(Refusal::TooLarge),
            Some(t) => t,
        };
        let (claims, names) = match req.token_type {
            TokenType::Jwt => (jwt::verify(&req.keys, token)?, &JWT_NAMES),
            TokenType::Swt => (swt::verify(&req.keys, token)?, &SWT_NAMES),
        };
        check_claims(req, &claims, names, now_unix)?;
        let keys = match present(&claims, CONTENT_KEY_CLAIM) {
            None if req.content_key_claim => KeyLimit::ClaimMissing,
            None => KeyLimit::Any,
            Some(Value::String(s)) => Kid::parse(s.trim()).map_or(KeyLimit::Unusable, KeyLimit::Only),
            Some(_) => KeyLimit::Unusable,
        };
        Ok(Granted { keys })
    }
}

/// What a checked token (or an open policy) grants: the keys it may receive.
/// From [`AuthorizationPolicy::check_token`]; holds no token content but the KID it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    keys: KeyLimit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyLimit {
    /// Any key of the policy.
    Any,
    /// Only the key its content-key claim names.
    Only(Kid),
    /// None: the policy requires the content-key claim and the token has none.
    ClaimMissing,
    /// None: the content-key claim is not a KID.
    Unusable,
}

impl Granted {
    /// Whether the grant covers key `kid` (step 6: the content-key claim).
    pub fn permits(&self, kid: Kid) -> Result<(), Refusal> {
        match &self.keys {
            KeyLimit::Any => Ok(()),
            KeyLimit::Only(k) if *k == kid => Ok(()),
            KeyLimit::ClaimMissing => Err(Refusal::MissingContentKeyClaim),
            KeyLimit::Only(_) | KeyLimit::Unusable => Err(Refusal::WrongContentKey),
        }
    }
}

/// Decides whether the bearer of `token` (already taken out of the `Authorization: Bearer`
/// header or the `token` query parameter, and URL-decoded) may receive key `kid` at
/// `now_unix` (seconds since the Unix epoch, from the caller's clock).
pub fn authorize(policy: &AuthorizationPolicy, token: Option<&str>, kid: Kid, now_unix: u64) -> Result<(), Refusal> {
    policy.check_token(token, now_unix)?.permits(kid)
}

/// Where a token type keeps its registered claims.
struct ClaimNames {
    issuer: &'static str,
    audience: &'static str,
    expiry: &'static str,
    not_before: Option<&'static str>,
    /// SWT carries times as decimal strings; JWT must use JSON numbers.
    string_dates: bool,
}

const JWT_NAMES: ClaimNames =
    ClaimNames { issuer: "iss", audience: "aud", expiry: "exp", not_before: Some("nbf"), string_dates: false };
const SWT_NAMES: ClaimNames =
    ClaimNames { issuer: "Issuer", audience: "Audience", expiry: "ExpiresOn", not_before: None, string_dates: true };

/// Everything after the signature but the content-key claim: times, issuer, audience (401),
/// then required claims (403).
fn check_claims(req: &TokenRequirements, claims: &Map<String, Value>, names: &ClaimNames, now: u64) -> Result<(), Refusal> {
    match present(claims, names.expiry) {
        None if req.require_expiry => return Err(Refusal::NoExpiry),
        None => {}
        // Expired once `now` reaches `exp` (RFC 7519 4.1.4), moved later by the skew.
        Some(v) if now >= numeric_date(v, names.string_dates)?.saturating_add(req.skew_secs) => {
            return Err(Refusal::Expired)
        }
        Some(_) => {}
    }
    if let Some(v) = names.not_before.and_then(|n| present(claims, n)) {
        if numeric_date(v, names.string_dates)? > now.saturating_add(req.skew_secs) {
            return Err(Refusal::NotYetValid);
        }
    }
    match present(claims, names.issuer) {
        Some(Value::String(s)) if *s == req.issuer => {}
        _ => return Err(Refusal::WrongIssuer),
    }
    let audience_ok = match present(claims, names.audience) {
        Some(Value::String(s)) => *s == req.audience,
        Some(Value::Array(items)) => items.iter().any(|a| a.as_str() == Some(req.audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(Refusal::WrongAudience);
    }
    for claim in &req.required_claims {
        let value = present(claims, &claim.name).ok_or(Refusal::MissingClaim)?;
        if let Some(want) = &claim.value {
            if !claim_matches(value, want) {
                return Err(Refusal::WrongClaimValue);
            }
        }
    }
    Ok(())
}

/// A claim's value; JSON `null` counts as absent.
fn present<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    claims.get(name).filter(|v| !v.is_null())
}

/// RFC 7519 NumericDate (integer or fractional seconds), or SWT's decimal string.
fn numeric_date(v: &Value, strings: bool) -> Result<u64, Refusal> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64).map(|f| f as u64))
            .ok_or(Refusal::Malformed),
        Value::String(s) if strings && !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| Refusal::Malformed)
        }
        _ => Err(Refusal::Malformed),
    }
}

fn claim_matches(value: &Value, want: &str) -> bool {
    match value {
        Value::String(s) => s == want,
        Value::Number(n) => n.to_string() == want,
        Value::Bool(b) => b.to_string() == want,
        Value::Array(items) => items.iter().any(|item| !item.is_array() && claim_matches(item, want)),
        _ => false,
    }
}
