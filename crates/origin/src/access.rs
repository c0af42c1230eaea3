//! Access control of asset URLs (issue 17): who may fetch manifests and segments.
//!
//! Two independent gates, both checked in [`crate::server`] before a route is served and
//! before anything is read from storage:
//!
//! 1. **CDN-only origin** ([`OriginGuard`]): with `[access.origin_verify]` configured, every
//!    request but `/healthz` and `/readyz` must carry the named header with one of the
//!    configured secrets (several, for rotation; compared in constant time over their
//!    SHA-256 digests, so neither content nor length leaks through timing).
//! 2. **Access policies** ([`AccessPolicy`]) per asset or path prefix (catalog) with a global
//!    default (config): `open`, or `signed` — a CloudFront signed URL / signed cookies, or an
//!    Akamai EdgeAuth token (query, cookie or header), must verify
//!    ([`sealcast_drm::signed`]). Refusals are 403 with one fixed reason, `no-store`, and a
//!    counter per reason; the credential itself is never logged or echoed.
//!
//! A verified query credential may be **carried** into the URLs a manifest lists (HLS
//! multivariant and media playlists; `carry = true`), for players that cannot send cookies:
//! only credentials that cover other URLs carry (a CloudFront custom policy, an EdgeAuth ACL
//! token), exactly as received; such manifests are the viewer's own (`private, no-store`).
//! Signatures never enter ETags or cache keys: those derive from the path alone.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::bail;
use http::{header, HeaderMap, HeaderName, Uri};
use serde::Deserialize;
use sealcast_drm::signed::{cloudfront, edgeauth, Reason, VerifiedSignatures};

use crate::config::Secret;

/// An access policy as written in the catalog (`[access.NAME]`) or the config
/// (`[access.default]`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicyConfig {
    /// `open` (anyone) or `signed` (a configured format must verify).
    pub mode: AccessMode,
    /// Allowed clock skew in seconds, both ends of a signature's window (at most 3600).
    #[serde(default = "default_skew")]
    pub skew_secs: u64,
    /// Carry a verified query credential into the URLs an HLS playlist lists.
    #[serde(default)]
    pub carry: bool,
    /// The scheme and host CloudFront resources are written against
    /// (`https://d111111abcdef8.cloudfront.net`); default: the request's own (`Host`).
    pub url_base: Option<String>,
    /// CloudFront signed URLs and cookies.
    pub cloudfront: Option<CloudFrontConfig>,
    /// Akamai EdgeAuth tokens.
    pub edgeauth: Option<EdgeAuthConfig>,
}

fn default_skew() -> u64 {
    30
}

/// `open` or `signed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    /// Anyone.
    Open,
    /// A signed URL, cookie or token must verify.
    Signed,
}

/// CloudFront verification keys.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontConfig {
    /// Public keys by key-pair ID (several during rotation).
    pub keys: Vec<CloudFrontKeyConfig>,
}

/// One CloudFront public key: `pem` inline or `pem_file` (relative to the file naming it).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontKeyConfig {
    /// Key-pair ID (a key group's public key ID, or a legacy `APKA…` key pair).
    pub id: String,
    /// PEM text.
    pub pem: Option<String>,
    /// PEM file.
    pub pem_file: Option<PathBuf>,
}

/// EdgeAuth verification keys.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeAuthConfig {
    /// Hex keys (several during rotation).
    pub keys: Vec<Secret>,
    /// `sha256` (default) or `sha1`.
    #[serde(default)]
    pub algorithm: EdgeAlgorithm,
    /// Salt, when the property uses one.
    pub salt: Option<Secret>,
    /// Token names looked for in the query, cookies and headers (default `hdnts`, `__token__`).
    #[serde(default = "default_token_names")]
    pub token_names: Vec<String>,
    /// Tokens are made with the generator's `escape_early` option.
    #[serde(default)]
    pub escape_early: bool,
}

fn default_token_names() -> Vec<String> {
    edgeauth::DEFAULT_TOKEN_NAMES.iter().map(|s| s.to_string()).collect()
}

/// EdgeAuth HMAC algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeAlgorithm {
    /// HMAC-SHA256.
    #[default]
    Sha256,
    /// HMAC-SHA1.
    Sha1,
}

/// A validated access policy.
#[derive(Debug)]
pub struct AccessPolicy {
    /// `None`: open.
    signed: Option<SignedPolicy>,
}

#[derive(Debug)]
struct SignedPolicy {
    skew: u64,
    carry: bool,
    url_base: Option<String>,
    cloudfront: Option<cloudfront::KeyRing>,
    edgeauth: Option<(edgeauth::Keys, Vec<String>)>,
}

impl AccessPolicy {
    /// The open policy.
    pub fn open() -> AccessPolicy {
        AccessPolicy { signed: None }
    }

    /// Whether requests need a signature.
    pub fn is_signed(&self) -> bool {
        self.signed.is_some()
    }

    /// One line for `sealcast catalog check`: `open`, or what a signed policy accepts.
    pub fn describe(&self) -> String {
        let Some(p) = &self.signed else { return "open".into() };
        let mut formats = Vec::new();
        if let Some(r) = &p.cloudfront {
            formats.push(format!("cloudfront ({} key{})", r.len(), if r.len() == 1 { "" } else { "s" }));
        }
        if let Some((k, names)) = &p.edgeauth {
            formats.push(format!("edgeauth ({} key{}, {})", k.len(), if k.len() == 1 { "" } else { "s" }, names.join("/")));
        }
        if formats.is_empty() {
            formats.push("nothing (every request refused)".into());
        }
        format!("signed: {}; skew {} s{}", formats.join(", "), p.skew, if p.carry { "; carried into playlists" } else { "" })
    }
}

impl AccessPolicyConfig {
    /// Validates the policy; `read` loads a `pem_file` (the caller resolves relative paths).
    pub fn build(&self, read: impl Fn(&Path) -> std::io::Result<String>) -> anyhow::Result<AccessPolicy> {
        if self.mode == AccessMode::Open {
            if self.cloudfront.is_some() || self.edgeauth.is_some() || self.carry {
                bail!("an open policy takes no keys and carries nothing");
            }
            return Ok(AccessPolicy::open());
        }
        if self.skew_secs > 3600 {
            bail!("skew_secs must be at most 3600");
        }
        if self.cloudfront.is_none() && self.edgeauth.is_none() {
            bail!("a signed policy needs [cloudfront] or [edgeauth] keys");
        }
        if let Some(b) = &self.url_base {
            let ok = (b.starts_with("https://") || b.starts_with("http://")) && !b.ends_with('/') && b.split("://").nth(1).is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#', ' ']));
            if !ok {
                bail!("url_base must be a scheme and host like https://d111111abcdef8.cloudfront.net (no path, no trailing slash)");
            }
        }
        let cloudfront = match &self.cloudfront {
            None => None,
            Some(c) => {
                if c.keys.is_empty() {
                    bail!("cloudfront.keys is empty");
                }
                let mut ring = cloudfront::KeyRing::new();
                for k in &c.keys {
                    let pem = match (&k.pem, &k.pem_file) {
                        (Some(p), None) => p.clone(),
                        (None, Some(f)) => read(f).map_err(|e| anyhow::anyhow!("cloudfront key '{}': reading {}: {e}", k.id, f.display()))?,
                        _ => bail!("cloudfront key '{}': give one of pem and pem_file", k.id),
                    };
                    let key = cloudfront::PublicKey::from_pem(&pem).map_err(|e| anyhow::anyhow!("cloudfront key '{}': {e}", k.id))?;
                    ring.add(&k.id, key).map_err(|e| anyhow::anyhow!("cloudfront key '{}': {e}", k.id))?;
                }
                Some(ring)
            }
        };
        let edgeauth = match &self.edgeauth {
            None => None,
            Some(e) => {
                let alg = match e.algorithm {
                    EdgeAlgorithm::Sha256 => edgeauth::Algorithm::Sha256,
                    EdgeAlgorithm::Sha1 => edgeauth::Algorithm::Sha1,
                };
                let hex: Vec<&str> = e.keys.iter().map(|k| k.0.as_str()).collect();
                // The error names no key material.
                let keys = edgeauth::Keys::from_hex(&hex, alg, e.salt.as_ref().map(|s| s.0.clone())).map_err(|why| anyhow::anyhow!("edgeauth: {why}"))?.with_escape_early(e.escape_early);
                if e.token_names.is_empty() || e.token_names.iter().any(|n| n.is_empty() || HeaderName::from_bytes(n.as_bytes()).is_err() || n.contains(['=', ';', '&'])) {
                    bail!("edgeauth.token_names must be non-empty names usable as query parameter, cookie and header names");
                }
                Some((keys, e.token_names.clone()))
            }
        };
        Ok(AccessPolicy { signed: Some(SignedPolicy { skew: self.skew_secs, carry: self.carry, url_base: self.url_base.clone(), cloudfront, edgeauth }) })
    }
}

/// `[access]` in the server config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// The policy of assets the catalog gives none (default: open).
    pub default: Option<AccessPolicyConfig>,
    /// Take the viewer's address from this header (its first address, as `X-Forwarded-For`
    /// lists them) instead of the connection's peer. Only trustworthy when the origin is
    /// reachable through the CDN alone (`origin_verify`); otherwise viewers can forge it.
    pub client_ip_header: Option<String>,
    /// The CDN-only origin gate.
    pub origin_verify: Option<OriginVerifyConfig>,
    /// Verified signatures remembered (each verified once while remembered).
    pub signature_cache_entries: u64,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig { default: None, client_ip_header: None, origin_verify: None, signature_cache_entries: 100_000 }
    }
}

/// `[access.origin_verify]`: a header every request must carry with one of `secrets`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginVerifyConfig {
    /// Header name, like `X-Origin-Verify`.
    pub header: String,
    /// Accepted values (several while one is rotated out); at least 16 characters each.
    pub secrets: Vec<Secret>,
}

/// The CDN-only origin gate.
pub struct OriginGuard {
    header: HeaderName,
    digests: Vec<[u8; 32]>,
}

impl OriginGuard {
    fn build(c: &OriginVerifyConfig) -> anyhow::Result<OriginGuard> {
        let header = HeaderName::from_bytes(c.header.as_bytes()).map_err(|_| anyhow::anyhow!("access.origin_verify.header is not a header name"))?;
        if c.secrets.is_empty() || c.secrets.iter().any(|s| s.0.len() < 16) {
            bail!("access.origin_verify.secrets must list at least one secret of 16 characters or more");
        }
        Ok(OriginGuard { header, digests: c.secrets.iter().map(|s| sha256(s.0.as_bytes())).collect() })
    }

    /// Whether `headers` carry one of the secrets. Every secret is compared, in constant time.
    fn admits(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let mut values = headers.get_all(&self.header).iter();
        let (Some(v), None) = (values.next(), values.next()) else {
            return Err("origin_header");
        };
        let got = sha256(v.as_bytes());
        let mut ok = false;
        for d in &self.digests {
            ok |= aws_lc_rs::constant_time::verify_slices_are_equal(&got, d).is_ok();
        }
        if ok {
            Ok(())
        } else {
            Err("origin_header")
        }
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The server's access state: the CDN gate, the default policy, the signature cache.
pub struct Access {
    guard: Option<OriginGuard>,
    default: Arc<AccessPolicy>,
    client_ip_header: Option<HeaderName>,
    verified: SignatureCache,
}

/// Bounded cache of verified signatures (by digest of the credential as presented, holding
/// the verified policy), counting fresh verifications.
struct SignatureCache {
    cache: moka::sync::Cache<[u8; 32], Arc<cloudfront::VerifiedPolicy>>,
    verified: AtomicU64,
}

impl VerifiedSignatures for SignatureCache {
    fn get(&self, d: &[u8; 32]) -> Option<Arc<cloudfront::VerifiedPolicy>> {
        self.cache.get(d)
    }
    fn insert(&self, d: [u8; 32], v: Arc<cloudfront::VerifiedPolicy>) {
        self.verified.fetch_add(1, Ordering::Relaxed);
        self.cache.insert(d, v);
    }
}

/// The connection's peer address, put in each request's extensions by [`crate::listen`].
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// What a request may pass on: the query credential to append to the URLs a playlist lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carry(pub String);

/// One refusal: the reason label (a [`Reason`] or `origin_header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// The request facts a check needs.
pub struct Presented<'a> {
    /// URI as received.
    pub uri: &'a Uri,
    /// Headers.
    pub headers: &'a HeaderMap,
    /// Peer address, if the listener gave one.
    pub peer: Option<SocketAddr>,
}

impl Access {
    /// From the validated config (`read` loads key files of the default policy).
    pub fn new(cfg: &AccessConfig, read: impl Fn(&Path) -> std::io::Result<String>) -> anyhow::Result<Access> {
        let default = match &cfg.default {
            Some(p) => p.build(read).map_err(|e| anyhow::anyhow!("access.default: {e}"))?,
            None => AccessPolicy::open(),
        };
        let client_ip_header = cfg
            .client_ip_header
            .as_deref()
            .map(|h| HeaderName::from_bytes(h.as_bytes()).map_err(|_| anyhow::anyhow!("access.client_ip_header is not a header name")))
            .transpose()?;
        if !(1..=10_000_000).contains(&cfg.signature_cache_entries) {
            bail!("access.signature_cache_entries must be between 1 and 10000000");
        }
        Ok(Access {
            guard: cfg.origin_verify.as_ref().map(OriginGuard::build).transpose()?,
            default: Arc::new(default),
            client_ip_header,
            verified: SignatureCache { cache: moka::sync::Cache::new(cfg.signature_cache_entries), verified: AtomicU64::new(0) },
        })
    }

    /// Refuses every asset request (`missing`): what the server runs with when its access
    /// configuration cannot be built, so a broken configuration fails closed.
    pub fn deny_all() -> Access {
        let mut a = Access::open();
        a.default = Arc::new(AccessPolicy { signed: Some(SignedPolicy { skew: 0, carry: false, url_base: None, cloudfront: None, edgeauth: None }) });
        a
    }

    /// Open everywhere, no gate (the default; tests).
    pub fn open() -> Access {
        Access::new(&AccessConfig::default(), |_| Err(std::io::ErrorKind::NotFound.into())).expect("the default access config is valid")
    }

    /// Signatures verified with a public-key operation so far (cache misses that verified).
    pub fn signatures_verified(&self) -> u64 {
        self.verified.verified.load(Ordering::Relaxed)
    }

    /// The CDN-only gate: `Err` unless the request carries the origin secret (or none is
    /// configured, or it is a health probe).
    pub fn gate(&self, path: &str, headers: &HeaderMap) -> Result<(), Refused> {
        match &self.guard {
            Some(g) if path != "/healthz" && path != "/readyz" => g.admits(headers).map_err(Refused),
            _ => Ok(()),
        }
    }

    /// The policy in force: the catalog's for the asset, else the default.
    pub fn policy_or_default(&self, from_catalog: Option<Arc<AccessPolicy>>) -> Arc<AccessPolicy> {
        from_catalog.unwrap_or_else(|| self.default.clone())
    }

    /// Checks a request against `policy` at `now()`: `Ok(None)` (allowed, nothing to carry),
    /// `Ok(Some(carry))` (allowed, and the playlist may pass the credential on) or the reason
    /// it is refused. The clock is read only for a policy that signs URLs.
    pub fn check(&self, policy: &AccessPolicy, req: &Presented<'_>, now: impl FnOnce() -> u64) -> Result<Option<Carry>, Refused> {
        let Some(p) = &policy.signed else { return Ok(None) };
        let now = now();
        let path = req.uri.path();
        let query = req.uri.query().unwrap_or("");
        let client_ip = self.client_ip(req);
        let pairs: Vec<(&str, &str)> = query.split('&').filter(|kv| !kv.is_empty()).map(|kv| kv.split_once('=').unwrap_or((kv, ""))).collect();
        let cookies = cookies(req.headers);
        let mut first_failure: Option<Reason> = None;
        let mut note = |r: Reason| {
            if first_failure.is_none() {
                first_failure = Some(r);
            }
        };
        // CloudFront: query parameters, then cookies.
        if let Some(ring) = &p.cloudfront {
            let q = |name: &str| pairs.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| pct(v));
            let from_query = [q("Expires"), q("Policy"), q("Signature"), q("Key-Pair-Id"), q("Hash-Algorithm")];
            if from_query[..4].iter().any(Option::is_some) {
                let url = resource_url(p, req, &pairs);
                let params = cloudfront::Params { expires: from_query[0].as_deref(), policy: from_query[1].as_deref(), signature: from_query[2].as_deref(), key_pair_id: from_query[3].as_deref(), hash_algorithm: from_query[4].as_deref() };
                let check = cloudfront::Check { url: &url, client_ip, now, skew: p.skew };
                match cloudfront::verify(&params, &check, ring, &self.verified) {
                    Ok(g) => {
                        let carry = (p.carry && g.custom).then(|| Carry(raw_pairs(&pairs, &cloudfront::QUERY_PARAMS)));
                        return Ok(carry);
                    }
                    Err(r) => note(r),
                }
            }
            let c = |name: &str| cookies.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v);
            let from_cookies = [c(cloudfront::COOKIES[0]), c(cloudfront::COOKIES[1]), c(cloudfront::COOKIES[2]), c(cloudfront::COOKIES[3]), c(cloudfront::COOKIES[4])];
            if from_cookies[..4].iter().any(Option::is_some) {
                let url = resource_url(p, req, &pairs);
                let params = cloudfront::Params { expires: from_cookies[0], policy: from_cookies[1], signature: from_cookies[2], key_pair_id: from_cookies[3], hash_algorithm: from_cookies[4] };
                let check = cloudfront::Check { url: &url, client_ip, now, skew: p.skew };
                match cloudfront::verify(&params, &check, ring, &self.verified) {
                    Ok(_) => return Ok(None),
                    Err(r) => note(r),
                }
            }
        }
        // EdgeAuth: query, cookie, header, under each token name.
        if let Some((keys, names)) = &p.edgeauth {
            let check = edgeauth::Check { path, client_ip, now, skew: p.skew };
            for name in names {
                if let Some((k, v)) = pairs.iter().rev().find(|(k, _)| k == name) {
                    match edgeauth::verify(&pct(v), &check, keys) {
                        Ok(acl) => return Ok((p.carry && acl).then(|| Carry(format!("{k}={v}")))),
                        Err(r) => note(r),
                    }
                }
            }
            for name in names {
                let found = cookies.iter().rev().find(|(k, _)| k == name).map(|(_, v)| pct(v).into_owned()).into_iter().chain(req.headers.get(name.as_str()).and_then(|v| v.to_str().ok()).map(str::to_string));
                for v in found {
                    match edgeauth::verify(&v, &check, keys) {
                        Ok(_) => return Ok(None),
                        Err(r) => note(r),
                    }
                }
            }
        }
        Err(Refused(first_failure.unwrap_or(Reason::Missing).as_str()))
    }

    fn client_ip(&self, req: &Presented<'_>) -> Option<IpAddr> {
        match &self.client_ip_header {
            Some(h) => {
                let v = req.headers.get(h)?.to_str().ok()?;
                let first = v.split(',').next()?.trim();
                // CloudFront-Viewer-Address is `address:port` for IPv6 too (no brackets).
                if h.as_str() == "cloudfront-viewer-address" {
                    return first.rsplit_once(':').and_then(|(a, _)| a.trim_matches(['[', ']']).parse().ok());
                }
                first.parse::<IpAddr>().ok().or_else(|| first.parse::<SocketAddr>().ok().map(|s| s.ip()))
            }
            None => req.peer.map(|p| p.ip()),
        }
    }
}

/// The URL CloudFront signed: `url_base` (or the request's scheme and `Host`), the path as
/// sent, and the query without the signing parameters, in their order and encoding.
fn resource_url(p: &SignedPolicy, req: &Presented<'_>, pairs: &[(&str, &str)]) -> String {
    let base = match &p.url_base {
        Some(b) => b.clone(),
        None => {
            let host = req.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.authority().map(|a| a.as_str())).unwrap_or("");
            let scheme = req.uri.scheme_str().unwrap_or("http");
            format!("{scheme}://{host}")
        }
    };
    let rest: Vec<String> = pairs.iter().filter(|(k, _)| !cloudfront::QUERY_PARAMS.contains(k)).map(|(k, v)| if v.is_empty() { k.to_string() } else { format!("{k}={v}") }).collect();
    let mut url = format!("{base}{}", req.uri.path());
    if !rest.is_empty() {
        url.push('?');
        url.push_str(&rest.join("&"));
    }
    url
}

/// The query pairs named in `names`, as received, joined with `&`.
fn raw_pairs(pairs: &[(&str, &str)], names: &[&str]) -> String {
    pairs.iter().filter(|(k, _)| names.contains(k)).map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Percent-decodes a query value (`+` stays `+`: CloudFront's base64 has none, and EdgeAuth
/// tokens are written unescaped). Values without `%` (the usual case) are not copied.
fn pct(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains('%') {
        percent_encoding::percent_decode_str(v).decode_utf8_lossy()
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// The `Cookie` header pairs (`name=value`, quotes around a value removed).
fn cookies(headers: &HeaderMap) -> Vec<(&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
        .collect()
}

/// Loads a policy's key file relative to `dir`.
pub fn reader(dir: &Path) -> impl Fn(&Path) -> std::io::Result<String> + '_ {
    move |p| std::fs::read_to_string(dir.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "52a152a152a152a152a152a152a152a1";

    fn hmac_hex(msg: &str) -> String {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &(0..16).map(|_| 0x52a1u16).flat_map(|w| w.to_be_bytes()).take(16).collect::<Vec<u8>>());
        aws_lc_rs::hmac::sign(&k, msg.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn edge_policy(carry: bool) -> AccessPolicy {
        let t = format!("mode = \"signed\"\ncarry = {carry}\n[edgeauth]\nkeys = [\"{KEY}\"]\n");
        toml::from_str::<AccessPolicyConfig>(&t).unwrap().build(|_| unreachable!()).unwrap()
    }

    fn req(uri: &str, headers: HeaderMap) -> (Uri, HeaderMap) {
        (uri.parse().unwrap(), headers)
    }

    fn check(a: &Access, p: &AccessPolicy, uri: &str, headers: HeaderMap, now: u64) -> Result<Option<Carry>, Refused> {
        let (uri, headers) = req(uri, headers);
        a.check(p, &Presented { uri: &uri, headers: &headers, peer: Some("192.0.2.1:5000".parse().unwrap()) }, || now)
    }

    #[test]
    fn edgeauth_from_query_cookie_and_header_with_carry() {
        let a = Access::open();
        let fields = "exp=200~acl=/vod/m/*";
        let tok = format!("{fields}~hmac={}", hmac_hex(fields));
        let p = edge_policy(true);
        assert_eq!(check(&a, &p, &format!("/vod/m/master.m3u8?hdnts={tok}"), HeaderMap::new(), 100), Ok(Some(Carry(format!("hdnts={tok}")))));
        assert_eq!(check(&a, &p, &format!("/vod/m/master.m3u8?__token__={tok}"), HeaderMap::new(), 100).map(|c| c.is_some()), Ok(true));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("a=b; hdnts={tok}").parse().unwrap());
        assert_eq!(check(&a, &p, "/vod/m/1.m4s", h, 100), Ok(None));
        let mut h = HeaderMap::new();
        h.insert("hdnts", tok.parse().unwrap());
        assert_eq!(check(&a, &p, "/vod/m/1.m4s", h, 100), Ok(None));
        assert_eq!(check(&a, &p, "/vod/m/1.m4s", HeaderMap::new(), 100), Err(Refused("missing")));
        assert_eq!(check(&a, &p, &format!("/vod/x/1.m4s?hdnts={tok}"), HeaderMap::new(), 100), Err(Refused("resource_mismatch")));
        assert_eq!(check(&a, &p, &format!("/vod/m/1.m4s?hdnts={tok}"), HeaderMap::new(), 300), Err(Refused("expired")));
        // No carry unless configured.
        assert_eq!(check(&a, &edge_policy(false), &format!("/vod/m/1.m4s?hdnts={tok}"), HeaderMap::new(), 100), Ok(None));
        // Open policies admit anything.
        assert_eq!(check(&a, &AccessPolicy::open(), "/x/y/z", HeaderMap::new(), 0), Ok(None));
        assert_eq!(AccessPolicy::open().describe(), "open");
        assert_eq!(p.describe(), "signed: edgeauth (1 key, hdnts/__token__); skew 30 s; carried into playlists");
        assert_eq!(Access::deny_all().default.describe(), "signed: nothing (every request refused); skew 0 s");
    }

    #[test]
    fn origin_gate_compares_secrets() {
        let cfg: AccessConfig = toml::from_str("[origin_verify]\nheader = \"X-Origin-Verify\"\nsecrets = [\"0123456789abcdef-old\", \"0123456789abcdef-new\"]").unwrap();
        let a = Access::new(&cfg, |_| unreachable!()).unwrap();
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-origin-verify", v.parse().unwrap());
            h
        };
        assert!(a.gate("/vod/m/manifest.mpd", &with("0123456789abcdef-new")).is_ok());
        assert!(a.gate("/vod/m/manifest.mpd", &with("0123456789abcdef-old")).is_ok());
        assert_eq!(a.gate("/vod/m/manifest.mpd", &with("0123456789abcdef-xxx")), Err(Refused("origin_header")));
        assert_eq!(a.gate("/vod/m/manifest.mpd", &HeaderMap::new()), Err(Refused("origin_header")));
        assert!(a.gate("/healthz", &HeaderMap::new()).is_ok() && a.gate("/readyz", &HeaderMap::new()).is_ok());
        assert!(toml::from_str::<AccessConfig>("[origin_verify]\nheader = \"X\"\nsecrets = [\"short\"]").map(|c| Access::new(&c, |_| unreachable!()).is_err()).unwrap());
        // Secrets never show in Debug.
        assert!(!format!("{cfg:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn bad_policies_are_refused() {
        for bad in [
            "mode = \"signed\"\n",
            "mode = \"open\"\ncarry = true\n",
            "mode = \"signed\"\nskew_secs = 7200\n[edgeauth]\nkeys = [\"52a152a152a152a152a152a152a152a1\"]\n",
            "mode = \"signed\"\nurl_base = \"https://x/\"\n[edgeauth]\nkeys = [\"52a152a152a152a152a152a152a152a1\"]\n",
            "mode = \"signed\"\n[edgeauth]\nkeys = [\"52a1\"]\n",
            "mode = \"signed\"\n[edgeauth]\nkeys = [\"52a152a152a152a152a152a152a152a1\"]\ntoken_names = [\"a=b\"]\n",
            "mode = \"signed\"\n[cloudfront]\nkeys = []\n",
            "mode = \"signed\"\n[cloudfront]\nkeys = [{ id = \"K1\", pem = \"nope\" }]\n",
            "mode = \"signed\"\n[cloudfront]\nkeys = [{ id = \"K1\" }]\n",
        ] {
            let built = toml::from_str::<AccessPolicyConfig>(bad).map_err(|e| e.to_string()).and_then(|c| c.build(|_| Err(std::io::ErrorKind::NotFound.into())).map_err(|e| e.to_string()));
            let e = built.expect_err(bad);
            assert!(!e.contains("52a152a1"), "key material in an error: {e}");
        }
        assert!(toml::from_str::<AccessPolicyConfig>("mode = \"signed\"\nbogus = 1").is_err());
    }

    #[test]
    fn client_address_from_header_or_peer() {
        let ip = |header: Option<&str>, value: &str| {
            let cfg = AccessConfig { client_ip_header: header.map(str::to_string), ..Default::default() };
            let a = Access::new(&cfg, |_| unreachable!()).unwrap();
            let (uri, mut headers) = req("/x", HeaderMap::new());
            if let Some(h) = header {
                headers.insert(HeaderName::from_bytes(h.as_bytes()).unwrap(), value.parse().unwrap());
            }
            a.client_ip(&Presented { uri: &uri, headers: &headers, peer: Some("192.0.2.1:5000".parse().unwrap()) })
        };
        let v = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(ip(None, ""), v("192.0.2.1"));
        assert_eq!(ip(Some("X-Forwarded-For"), "203.0.113.7, 10.0.0.1"), v("203.0.113.7"));
        assert_eq!(ip(Some("X-Forwarded-For"), "2001:db8::7"), v("2001:db8::7"));
        assert_eq!(ip(Some("X-Forwarded-For"), "garbage"), None, "a header that is set but unreadable is no address");
        assert_eq!(ip(Some("CloudFront-Viewer-Address"), "198.51.100.10:46532"), v("198.51.100.10"));
        assert_eq!(ip(Some("CloudFront-Viewer-Address"), "2001:db8::10:46532"), v("2001:db8::10"));
    }

    #[test]
    fn resource_url_drops_only_signing_params() {
        let p = SignedPolicy { skew: 0, carry: false, url_base: None, cloudfront: None, edgeauth: None };
        let (uri, mut headers) = req("/vod/m/1.m4s?a=1&Expires=5&b&Signature=x&Key-Pair-Id=K&c=%7E", HeaderMap::new());
        headers.insert(header::HOST, "origin.example:8080".parse().unwrap());
        let pairs: Vec<(&str, &str)> = uri.query().unwrap().split('&').map(|kv| kv.split_once('=').unwrap_or((kv, ""))).collect();
        let r = Presented { uri: &uri, headers: &headers, peer: None };
        assert_eq!(resource_url(&p, &r, &pairs), "http://origin.example:8080/vod/m/1.m4s?a=1&b&c=%7E");
        let p = SignedPolicy { url_base: Some("https://d.cloudfront.net".into()), ..p };
        assert_eq!(resource_url(&p, &r, &pairs[1..2]), "https://d.cloudfront.net/vod/m/1.m4s");
    }

    /// Cost of one check, in-process (`cargo test --release -p sealcast-origin --lib
    /// access::tests::check_cost -- --ignored --nocapture`): a CloudFront custom policy whose
    /// signature is already cached, and an EdgeAuth ACL token. Figures in benches/README.md.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn check_cost() {
        let rsa_pub = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuaM+rUdRb+M/FZ3QN/pn\nLOg5cAJEOcASZBsNvYeySYrpFRZ9ORJjk4T5Noy0vqyXdEfK/azdgoNWWCj9FXwE\npxUU44/HyLKfRAkkPqiCLvoskhEz5Yhw+WAZ1UIkT7mfFpFkAQnN9BueEp8Eslij\nopFoRF3Nx3K06Gva4xqnoaeuQ+AKxoGC4FXulzRQZ5rmYKBqTPlJaw//9138t75P\n9c7/8fCdbyMZvx4s0sMWUZ2xQjYhwlhH6nx1dMqpckjRqpkMO01h51D98GeNFa8k\n7dd4lEN6Oq8G8fLYe9Tw/WjAVVa1GOvfJAYmStVCG4kC/aeHwf+Pb+wt8Bv5UW5p\nWwIDAQAB\n-----END PUBLIC KEY-----\n";
        // The custom-policy form of the canned policy signed in drm's cloudfront tests.
        let sig = "e95EVR4x~LHTdbciU5-4nCgOJElBADxHpY4gO2TA~5rqU7qMb6rBzCqEdC19UxdJe5VDhPKCsCQOxvgPg39cGBPFPRD-RyFRqH9S--~fzNXEBMDbWLWrrMqd5XAg1g3o4uf2OO7IqWTUbuugji7nr1RY1kePXHe6JgqRzNVaIHP5Lw2eZndlHkIeH5C-idCUogay8jIPNecbc6~DB-~DmRxLoxGFApxAzdDEFbl2TOVQLOyia31U6Afa8oH6WDmuJx5s4ksa3~qFaSpqKdpUDWk27z0WuzBMZFvo-i~td3k0sQ~4OaoXu7PgDnESTPtKLlEJbwNNmsvPmoyPuX9Z9g__";
        let policy = cloudfront::url_b64_encode(cloudfront::canned_policy("https://d.example/vod/m/manifest.mpd", 2_000_000_000).as_bytes());
        let t = format!("mode = \"signed\"\nurl_base = \"https://d.example\"\n[cloudfront]\nkeys = [{{ id = \"KRSA\", pem = \"{}\" }}]\n", rsa_pub.replace('\n', "\\n"));
        let p = toml::from_str::<AccessPolicyConfig>(&t).unwrap().build(|_| unreachable!()).unwrap();
        let a = Access::open();
        let uri = format!("/vod/m/manifest.mpd?Policy={policy}&Signature={sig}&Key-Pair-Id=KRSA");
        let fields = "exp=2000000000~acl=/vod/m/*";
        let tok = format!("{fields}~hmac={}", hmac_hex(fields));
        let e = edge_policy(false);
        let euri = format!("/vod/m/manifest.mpd?hdnts={tok}");
        for (name, pol, u) in [("cloudfront custom, cached", &p, &uri), ("edgeauth acl", &e, &euri)] {
            assert_eq!(check(&a, pol, u, HeaderMap::new(), 1_900_000_000), Ok(None), "{name}");
            let n = 200_000;
            let start = std::time::Instant::now();
            for _ in 0..n {
                let _ = std::hint::black_box(check(&a, pol, u, HeaderMap::new(), 1_900_000_000));
            }
            println!("{name}: {:.2} µs per check", start.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        assert_eq!(a.signatures_verified(), 1, "one RSA verification for all of them");
    }
}
