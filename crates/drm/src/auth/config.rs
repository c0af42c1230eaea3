//! The serde shape of authorization policies, as the origin's configuration and catalog
//! hold them, and the one step that turns it into a checked [`AuthorizationPolicy`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::keys::MAX_UNNAMED_KEYS;
use super::{
    AuthorizationPolicy, PolicyError, RequiredClaim, TokenRequirements, TokenType, VerificationKey, DEFAULT_SKEW_SECS,
};

/// An authorization policy as configured: `{ type = "Open" }` or
/// `{ type = "TokenRestricted", token_type = "Jwt", … }` (see [`TokenRequirementsConfig`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum AuthorizationPolicyConfig {
    /// Anyone may receive the key. (A struct variant so that stray fields next to
    /// `type = "Open"` are refused like everywhere else.)
    Open {},
    /// Only bearers of a valid token.
    TokenRestricted(TokenRequirementsConfig),
}

/// Token requirements as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequirementsConfig {
    /// `"Jwt"` or `"Swt"`.
    pub token_type: TokenType,
    /// Required issuer.
    pub issuer: String,
    /// Required audience.
    pub audience: String,
    /// Primary verification key first, then alternates (rotation).
    pub keys: Vec<KeyConfig>,
    /// Claims the token must carry (`{ name = "sub" }`, `{ name = "role", value = "premium" }`).
    #[serde(default)]
    pub required_claims: Vec<RequiredClaim>,
    /// Allowed clock skew, seconds (default 300).
    #[serde(default = "default_skew")]
    pub skew_secs: u64,
    /// Refuse tokens without the AMS content-key claim (default false; a claim that is
    /// present is always checked against the requested KID).
    #[serde(default)]
    pub content_key_claim: bool,
    /// Refuse tokens without an expiry (default true).
    #[serde(default = "default_true")]
    pub require_expiry: bool,
}

fn default_skew() -> u64 {
    DEFAULT_SKEW_SECS
}

fn default_true() -> bool {
    true
}

/// One verification key as configured: exactly one of these names per table.
/// `*_file` paths are read through the loader given to [`AuthorizationPolicyConfig::build`]
/// (the caller decides what they are relative to).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySpec {
    /// Symmetric key, base64 (HS256 for JWT, HMACSHA256 for SWT). Also spelled `hs256`.
    #[serde(alias = "hs256")]
    Symmetric(String),
    /// RSA public key PEM text (RS256).
    RsaPem(String),
    /// Path of an RSA public key PEM file.
    RsaPemFile(String),
    /// EC P-256 public key PEM text (ES256).
    EcPem(String),
    /// Path of an EC P-256 public key PEM file.
    EcPemFile(String),
    /// X.509 certificate PEM text (RS256 or ES256 by its key).
    X509Pem(String),
    /// Path of an X.509 certificate PEM file.
    X509PemFile(String),
    /// JWKS JSON text.
    Jwks(String),
    /// Path of a JWKS JSON file.
    JwksFile(String),
}

/// One verification key as configured: a [`KeySpec`] and, for JWT policies, the `kid` that
/// tokens signed with it name in their header — `{ hs256 = "…", kid = "2026-06" }`.
///
/// A JWT naming a `kid` in its header is checked against that key alone; keys without a
/// `kid` (at most [`MAX_UNNAMED_KEYS`] per algorithm) are tried in turn for tokens that name
/// none (see [`crate::auth`], step 2). JWKS keys carry their `kid`s in the document. `kid`s
/// are unique per policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyConfig {
    /// The key.
    pub spec: KeySpec,
    /// The JWT header `kid` naming it (not for JWKS keys; SWT tokens name no key).
    pub kid: Option<String>,
}

impl From<KeySpec> for KeyConfig {
    fn from(spec: KeySpec) -> Self {
        KeyConfig { spec, kid: None }
    }
}

/// As a table: the one key name of [`KeySpec`] with its value, and `kid` when set. Anything
/// else in the table (an unknown name, two keys) is refused.
impl Serialize for KeyConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1 + usize::from(self.kid.is_some())))?;
        m.serialize_entry(self.spec.name(), self.spec.value())?;
        if let Some(kid) = &self.kid {
            m.serialize_entry("kid", kid)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for KeyConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let kid = table.remove("kid");
        let mut entries = table.into_iter();
        let (Some((name, value)), None) = (entries.next(), entries.next()) else {
            return Err(D::Error::custom("a verification key is one of symmetric, rsa_pem, rsa_pem_file, ec_pem, ec_pem_file, x509_pem, x509_pem_file, jwks, jwks_file, with an optional kid"));
        };
        let spec = KeySpec::from_name(&name, value).ok_or_else(|| D::Error::unknown_field(&name, KeySpec::NAMES))?;
        Ok(KeyConfig { spec, kid })
    }
}

/// The symmetric secret's text is wiped when the configuration is dropped (after the policy
/// is built, the built key holds the only copy, and wipes it in turn).
impl Drop for KeySpec {
    fn drop(&mut self) {
        if let KeySpec::Symmetric(text) = self {
            zeroize::Zeroize::zeroize(text);
        }
    }
}

impl zeroize::ZeroizeOnDrop for KeySpec {}

impl KeySpec {
    /// The table names of the variants (`hs256` is another name for `symmetric`).
    const NAMES: &'static [&'static str] =
        &["symmetric", "hs256", "rsa_pem", "rsa_pem_file", "ec_pem", "ec_pem_file", "x509_pem", "x509_pem_file", "jwks", "jwks_file"];

    fn from_name(name: &str, v: String) -> Option<KeySpec> {
        Some(match name {
            "symmetric" | "hs256" => KeySpec::Symmetric(v),
            "rsa_pem" => KeySpec::RsaPem(v),
            "rsa_pem_file" => KeySpec::RsaPemFile(v),
            "ec_pem" => KeySpec::EcPem(v),
            "ec_pem_file" => KeySpec::EcPemFile(v),
            "x509_pem" => KeySpec::X509Pem(v),
            "x509_pem_file" => KeySpec::X509PemFile(v),
            "jwks" => KeySpec::Jwks(v),
            "jwks_file" => KeySpec::JwksFile(v),
            _ => return None,
        })
    }

    fn value(&self) -> &str {
        match self {
            KeySpec::Symmetric(v)
            | KeySpec::RsaPem(v)
            | KeySpec::RsaPemFile(v)
            | KeySpec::EcPem(v)
            | KeySpec::EcPemFile(v)
            | KeySpec::X509Pem(v)
            | KeySpec::X509PemFile(v)
            | KeySpec::Jwks(v)
            | KeySpec::JwksFile(v) => v,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            KeySpec::Symmetric(_) => "symmetric",
            KeySpec::RsaPem(_) => "rsa_pem",
            KeySpec::RsaPemFile(_) => "rsa_pem_file",
            KeySpec::EcPem(_) => "ec_pem",
            KeySpec::EcPemFile(_) => "ec_pem_file",
            KeySpec::X509Pem(_) => "x509_pem",
            KeySpec::X509PemFile(_) => "x509_pem_file",
            KeySpec::Jwks(_) => "jwks",
            KeySpec::JwksFile(_) => "jwks_file",
        }
    }
}

/// Shows file paths but no key text (public keys included, to keep logs short).
impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::RsaPemFile(p) | KeySpec::EcPemFile(p) | KeySpec::X509PemFile(p) | KeySpec::JwksFile(p) => {
                write!(f, "{}({p:?})", self.name())
            }
            _ => write!(f, "{}([redacted])", self.name()),
        }
    }
}

impl AuthorizationPolicyConfig {
    /// Parses and checks every key, reading `*_file` keys with `load(path)` — typically
    /// `|p| std::fs::read_to_string(config_dir.join(p))`. Call once at startup or catalog
    /// load; errors name the key's position and kind, never its content.
    pub fn build(
        &self,
        mut load: impl FnMut(&str) -> std::io::Result<String>,
    ) -> Result<AuthorizationPolicy, PolicyError> {
        let cfg = match self {
            AuthorizationPolicyConfig::Open {} => return Ok(AuthorizationPolicy::Open),
            AuthorizationPolicyConfig::TokenRestricted(cfg) => cfg,
        };
        if cfg.issuer.is_empty() {
            return Err(PolicyError::Invalid("issuer is empty"));
        }
        if cfg.audience.is_empty() {
            return Err(PolicyError::Invalid("audience is empty"));
        }
        // Skew forgives clocks that disagree by seconds or minutes; more than an hour would
        // keep expired tokens working (and make `nbf` meaningless).
        if cfg.skew_secs > MAX_SKEW_SECS {
            return Err(PolicyError::Invalid("skew_secs is over 3600 (one hour)"));
        }
        if cfg.keys.is_empty() {
            return Err(PolicyError::NoKeys);
        }
        if cfg.required_claims.iter().any(|c| c.name.is_empty()) {
            return Err(PolicyError::Invalid("required claim with an empty name"));
        }
        let mut keys = Vec::with_capacity(cfg.keys.len());
        for (index, KeyConfig { spec, kid }) in cfg.keys.iter().enumerate() {
            let mut read = |path: &str| {
                load(path).map_err(|e| PolicyError::Load { index, path: path.to_owned(), reason: e.to_string() })
            };
            let key = match spec {
                KeySpec::Symmetric(b64) => VerificationKey::symmetric_base64(b64),
                KeySpec::RsaPem(pem) => VerificationKey::rsa_pem(pem),
                KeySpec::RsaPemFile(path) => VerificationKey::rsa_pem(&read(path)?),
                KeySpec::EcPem(pem) => VerificationKey::ec_pem(pem),
                KeySpec::EcPemFile(path) => VerificationKey::ec_pem(&read(path)?),
                KeySpec::X509Pem(pem) => VerificationKey::x509_pem(pem),
                KeySpec::X509PemFile(path) => VerificationKey::x509_pem(&read(path)?),
                KeySpec::Jwks(json) => VerificationKey::jwks_json(json),
                KeySpec::JwksFile(path) => VerificationKey::jwks_json(&read(path)?),
            }
            .and_then(|k| match kid {
                Some(kid) => k.with_kid(kid),
                None => Ok(k),
            })
            .map_err(|e| match e {
                PolicyError::Key { what, reason, .. } => PolicyError::Key { index: Some(index), what, reason },
                other => other,
            })?;
            if cfg.token_type == TokenType::Swt && !key.is_symmetric() {
                return Err(PolicyError::SwtNeedsSymmetric { index });
            }
            keys.push(key);
        }
        match cfg.token_type {
            TokenType::Jwt => check_jwt_kids(&keys)?,
            // An SWT names no key: each is tried in turn.
            TokenType::Swt if keys.len() > MAX_UNNAMED_KEYS => {
                return Err(PolicyError::Invalid("more than 8 SWT keys (each is tried per token)"))
            }
            TokenType::Swt => {}
        }
        Ok(AuthorizationPolicy::TokenRestricted(TokenRequirements {
            token_type: cfg.token_type,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            keys,
            required_claims: cfg.required_claims.clone(),
            skew_secs: cfg.skew_secs,
            content_key_claim: cfg.content_key_claim,
            require_expiry: cfg.require_expiry,
        }))
    }

    /// Replaces every `*_file` key by its text, read with `load(path)`: the policy then
    /// stands alone (what a database stores). Errors name the key's position, never its content.
    pub fn inline_files(&mut self, mut load: impl FnMut(&str) -> std::io::Result<String>) -> Result<(), PolicyError> {
        let AuthorizationPolicyConfig::TokenRestricted(cfg) = self else { return Ok(()) };
        for (index, k) in cfg.keys.iter_mut().enumerate() {
            let read = |path: &String, load: &mut dyn FnMut(&str) -> std::io::Result<String>| {
                load(path).map_err(|e| PolicyError::Load { index, path: path.clone(), reason: e.to_string() })
            };
            let inline = match &k.spec {
                KeySpec::RsaPemFile(p) => KeySpec::RsaPem(read(p, &mut load)?),
                KeySpec::EcPemFile(p) => KeySpec::EcPem(read(p, &mut load)?),
                KeySpec::X509PemFile(p) => KeySpec::X509Pem(read(p, &mut load)?),
                KeySpec::JwksFile(p) => KeySpec::Jwks(read(p, &mut load)?),
                _ => continue,
            };
            k.spec = inline;
        }
        Ok(())
    }

    /// [`build`](Self::build) for policies whose keys are all inline; a `*_file` key is an
    /// error.
    pub fn build_inline(&self) -> Result<AuthorizationPolicy, PolicyError> {
        self.build(|_| Err(std::io::Error::other("file keys need a loader (use build)")))
    }
}

/// A JWT is checked against the key its header's `kid` names, else against every key of its
/// algorithm without a `kid` (see `jwt::candidates`): refuses policies where a named key
/// could be ambiguous (a `kid` used twice) or where one token could cost more than
/// [`MAX_UNNAMED_KEYS`] signature checks.
fn check_jwt_kids(keys: &[VerificationKey]) -> Result<(), PolicyError> {
    let slots: Vec<_> = keys.iter().flat_map(|k| k.slots()).map(|(alg, kid, _)| (alg, kid)).collect();
    for (i, (alg, kid)) in slots.iter().enumerate() {
        if kid.is_some() && slots[..i].iter().any(|(_, k)| k == kid) {
            return Err(PolicyError::Invalid("two verification keys have the same kid"));
        }
        if kid.is_none() && slots.iter().filter(|(a, k)| a == alg && k.is_none()).count() > MAX_UNNAMED_KEYS {
            return Err(PolicyError::Invalid(
                "more than 8 JWT keys of one algorithm without a kid (each is tried per token; name them with kid)",
            ));
        }
    }
    Ok(())
}

/// The largest allowed clock skew of a token policy, seconds.
pub const MAX_SKEW_SECS: u64 = 3600;
