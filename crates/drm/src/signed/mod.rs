//! Signed URLs and cookies in the formats CDNs use, verified as those CDNs verify them: pure
//! code, no IO, no clock (`now` is passed in).
//!
//! * [`cloudfront`]: Amazon CloudFront signed URLs and cookies (canned and custom policies,
//!   RSA-SHA1 or ECDSA P-256 signatures, key-pair IDs with several keys for rotation).
//! * [`edgeauth`]: Akamai EdgeAuth tokens (`st`, `exp`, `acl`/`url`, `ip`, `id`, `data`,
//!   `hmac`; HMAC-SHA256 with a hex key).
//! * [`wildcard`] and [`Cidr`]: the resource patterns and source-address conditions both use.
//!
//! Every refusal is one of the fixed [`Reason`]s: safe for a response body, a log line and a
//! metric label, since none echoes request content. Nothing here panics on hostile input;
//! credentials longer than [`MAX_CREDENTIAL_BYTES`] are refused before they are parsed.

pub mod cloudfront;
pub mod edgeauth;
pub mod wildcard;

use std::net::IpAddr;

/// Longest signed-URL parameter, cookie or token examined (a custom policy with a long resource
/// fits easily); longer ones are refused as [`Reason::BadSignature`] unparsed.
pub const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// The signature's time window has ended.
    Expired,
    /// The signature's time window has not begun.
    NotYetValid,
    /// The signature does not verify, or the credential is malformed.
    BadSignature,
    /// A genuine signature for other URLs.
    ResourceMismatch,
    /// A genuine signature for another client address.
    IpMismatch,
    /// Signed with a key (key-pair ID) this policy does not know.
    UnknownKey,
    /// No credential of an accepted format was presented.
    Missing,
}

impl Reason {
    /// The fixed reason string (response bodies, logs, metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Expired => "expired",
            Reason::NotYetValid => "not_yet_valid",
            Reason::BadSignature => "bad_signature",
            Reason::ResourceMismatch => "resource_mismatch",
            Reason::IpMismatch => "ip_mismatch",
            Reason::UnknownKey => "unknown_key",
            Reason::Missing => "missing",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Signatures already verified, so a credential that many requests present (every segment of
/// a viewer's session) costs one public-key operation and one policy parse. Entries are keyed
/// by a digest of the credential as presented (the key's fingerprint and ID, the policy or
/// canned URL and expiry, the signature) and hold what the verified policy says; only
/// successes are remembered. The server backs it with a bounded cache.
pub trait VerifiedSignatures: Send + Sync {
    /// The verified policy remembered under `digest`.
    fn get(&self, digest: &[u8; 32]) -> Option<std::sync::Arc<cloudfront::VerifiedPolicy>>;
    /// Remembers `policy` under `digest`.
    fn insert(&self, digest: [u8; 32], policy: std::sync::Arc<cloudfront::VerifiedPolicy>);
}

/// Remembers nothing: every signature is verified every time.
pub struct NoCache;

impl VerifiedSignatures for NoCache {
    fn get(&self, _: &[u8; 32]) -> Option<std::sync::Arc<cloudfront::VerifiedPolicy>> {
        None
    }
    fn insert(&self, _: [u8; 32], _: std::sync::Arc<cloudfront::VerifiedPolicy>) {}
}

/// An IPv4 or IPv6 network (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr[/prefix]`; a bare address is a /32 (IPv4) or /128 (IPv6). Host bits set
    /// under the prefix are ignored, as CloudFront does.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok().filter(|n| *n <= max)?,
            Some(_) => return None,
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 client address (`::ffff:a.b.c.d`,
    /// as dual-stack sockets report IPv4 peers) is compared as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
                IpAddr::V6(v) => u128::from(v),
            }
        };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(self.prefix));
        bits(ip) & mask == bits(self.addr) & mask
    }
}

/// SHA-256 over length-prefixed parts: the cache key of a verified signature.
pub(crate) fn digest_of(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_matches() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let c = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(c.contains(ip("192.0.2.200")) && !c.contains(ip("192.0.3.1")));
        assert!(c.contains(ip("::ffff:192.0.2.7")), "IPv4-mapped peers compare as IPv4");
        assert!(Cidr::parse("203.0.113.5").unwrap().contains(ip("203.0.113.5")));
        assert!(!Cidr::parse("203.0.113.5/32").unwrap().contains(ip("203.0.113.6")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        // Host bits under the prefix are ignored.
        assert!(Cidr::parse("192.0.2.77/24").unwrap().contains(ip("192.0.2.1")));
        for bad in ["", "/", "1.2.3.4/", "1.2.3.4/33", "::/129", "1.2.3.4/-1", "1.2.3/24", "x/8", "1.2.3.4/0008", "1.2.3.4/ 8", "1.2.3.4/8/8"] {
            assert!(Cidr::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn reasons_are_fixed_strings() {
        let all = [Reason::Expired, Reason::NotYetValid, Reason::BadSignature, Reason::ResourceMismatch, Reason::IpMismatch, Reason::UnknownKey, Reason::Missing];
        let names: Vec<&str> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["expired", "not_yet_valid", "bad_signature", "resource_mismatch", "ip_mismatch", "unknown_key", "missing"]);
    }
}
