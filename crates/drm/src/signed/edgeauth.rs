//! Akamai EdgeAuth tokens (token auth 2.0), as Akamai's own generator (`akamai-edgeauth`)
//! writes them: `name=value` fields joined by `~`, in the order
//! `ip`, `st`, `exp`, `acl` | (none, for URL tokens), `id`, `data`, `hmac`.
//!
//! The MAC is HMAC (SHA-256 by default, SHA-1 if configured) keyed with the hex-decoded key
//! over the token text before `~hmac=`, followed for URL tokens by `~url=<path>` (the path is
//! not in the token; the request's is used) and, when a salt is configured, `~salt=<salt>`.
//! It is written as lowercase hex and compared in constant time.
//!
//! With `escape_early` (a generator option), the generator percent-encodes `ip`, `id`, `data`
//! and the URL before signing (Python's `quote_plus`, hex in lowercase); the token text is
//! verified as written either way, and the request path is encoded the same way for the MAC of
//! a URL token.
//!
//! A token grants access when its MAC verifies under one of the policy's keys (several for
//! rotation), `st <= now < exp` (each widened by the skew), `ip`, when present, is the
//! viewer's address, and the request path matches one of the `!`-separated `acl` patterns
//! (`*` and `?` wildcards). A URL token that is used on another path fails its MAC, so it is
//! refused as `bad_signature`.

use std::net::IpAddr;

use aws_lc_rs::hmac;

use super::{wildcard, Reason, MAX_CREDENTIAL_BYTES};

/// The token names looked for by default (query parameter, cookie or header): Akamai's
/// `hdnts` and the generator's default `__token__`.
pub const DEFAULT_TOKEN_NAMES: [&str; 2] = ["hdnts", "__token__"];

/// The HMAC of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256 (Akamai's default).
    Sha256,
    /// HMAC-SHA1.
    Sha1,
}

/// The verification keys of a policy (a key, or several while one is rotated out).
#[derive(Clone)]
pub struct Keys {
    keys: Vec<hmac::Key>,
    algorithm: Algorithm,
    salt: Option<String>,
    escape_early: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("edgeauth::Keys").field("keys", &self.keys.len()).field("algorithm", &self.algorithm).field("salt", &self.salt.as_ref().map(|_| "***")).finish()
    }
}

impl Keys {
    /// Keys from hex strings (as Akamai's property manager shows them: an even number of hex
    /// digits, at least 16 bytes).
    pub fn from_hex(hex_keys: &[&str], algorithm: Algorithm, salt: Option<String>) -> Result<Keys, &'static str> {
        if hex_keys.is_empty() {
            return Err("at least one key is needed");
        }
        let alg = match algorithm {
            Algorithm::Sha256 => hmac::HMAC_SHA256,
            Algorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        };
        let keys = hex_keys
            .iter()
            .map(|h| {
                let bytes = zeroize::Zeroizing::new(hex_decode(h.trim()).ok_or("key must be an even number of hex digits")?);
                if bytes.len() < 16 {
                    return Err("key must be at least 16 bytes (32 hex digits)");
                }
                Ok(hmac::Key::new(alg, &bytes))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keys { keys, algorithm, salt, escape_early: false })
    }

    /// Tokens made with the generator's `escape_early` option.
    pub fn with_escape_early(mut self, on: bool) -> Keys {
        self.escape_early = on;
        self
    }
}

impl Keys {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key (never, once built).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The fields of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Token<'a> {
    /// `ip`: the viewer address it is bound to.
    pub ip: Option<&'a str>,
    /// `st`: start, seconds since the epoch.
    pub start: Option<u64>,
    /// `exp`: end, seconds since the epoch (required).
    pub expires: u64,
    /// `acl`: `!`-separated path patterns; absent for URL tokens.
    pub acl: Option<&'a str>,
    /// `id`: session ID.
    pub id: Option<&'a str>,
    /// `data`: payload.
    pub data: Option<&'a str>,
    /// The text the MAC covers (everything before `~hmac=`).
    signed: &'a str,
    /// `hmac`, hex.
    hmac: &'a str,
}

impl<'a> Token<'a> {
    /// Parses a token (already percent-decoded). Refused as malformed: unknown or repeated
    /// fields, `hmac` missing or not last, no `exp`, non-numeric times, over
    /// [`MAX_CREDENTIAL_BYTES`]. A URL token may carry `url=` itself (some generators write
    /// it); it is then part of what the MAC covers, and must equal the request path.
    pub fn parse(text: &'a str) -> Option<(Token<'a>, Option<&'a str>)> {
        if text.is_empty() || text.len() > MAX_CREDENTIAL_BYTES {
            return None;
        }
        let (signed, hmac) = text.rsplit_once("~hmac=")?;
        if hmac.is_empty() || hmac.len() > 128 || !hmac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut t = Token { signed, hmac, ..Token::default() };
        let mut url = None;
        let mut seen = [false; 7];
        let mut exp = None;
        for field in signed.split('~') {
            let (k, v) = field.split_once('=')?;
            let slot = ["ip", "st", "exp", "acl", "id", "data", "url"].iter().position(|n| *n == k)?;
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
            match slot {
                0 => t.ip = Some(v),
                1 => t.start = Some(epoch(v)?),
                2 => exp = Some(epoch(v)?),
                3 => t.acl = Some(v),
                4 => t.id = Some(v),
                5 => t.data = Some(v),
                _ => url = Some(v),
            }
        }
        t.expires = exp?;
        if t.acl.is_some() && url.is_some() {
            return None;
        }
        Some((t, url))
    }

    /// Whether the token is an ACL token (valid for every path its patterns match; a URL
    /// token is valid for one path only).
    pub fn is_acl(&self) -> bool {
        self.acl.is_some()
    }
}

/// What a token is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The request path as sent (percent-encoded as sent).
    pub path: &'a str,
    /// The viewer's address, when known.
    pub client_ip: Option<IpAddr>,
    /// Now, seconds since the epoch.
    pub now: u64,
    /// Allowed clock skew, seconds.
    pub skew: u64,
}

/// Verifies `text` (a percent-decoded token value); on success, whether it is an ACL token.
pub fn verify(text: &str, check: &Check<'_>, keys: &Keys) -> Result<bool, Reason> {
    let (t, url_field) = Token::parse(text).ok_or(Reason::BadSignature)?;
    let mac = hex_decode(t.hmac).ok_or(Reason::BadSignature)?;
    // The MAC input: the token as written, then (URL tokens) the path, then the salt.
    let mut msg = String::with_capacity(t.signed.len() + check.path.len() + 16);
    msg.push_str(t.signed);
    if t.acl.is_none() && url_field.is_none() {
        msg.push_str("~url=");
        if keys.escape_early {
            quote_plus_lower(check.path, &mut msg);
        } else {
            msg.push_str(check.path);
        }
    }
    if let Some(s) = &keys.salt {
        msg.push_str("~salt=");
        msg.push_str(s);
    }
    if !keys.keys.iter().any(|k| hmac::verify(k, msg.as_bytes(), &mac).is_ok()) {
        return Err(Reason::BadSignature);
    }
    if check.now >= t.expires.saturating_add(check.skew) {
        return Err(Reason::Expired);
    }
    if t.start.is_some_and(|st| check.now.saturating_add(check.skew) < st) {
        return Err(Reason::NotYetValid);
    }
    if let Some(ip) = t.ip {
        let want: Option<IpAddr> = ip.parse().ok();
        let norm = |a: IpAddr| match a {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
            v4 => v4,
        };
        if want.is_none() || want.map(norm) != check.client_ip.map(norm) {
            return Err(Reason::IpMismatch);
        }
    }
    match (t.acl, url_field) {
        (Some(acl), _) if !acl.split('!').any(|p| wildcard::matches(p, check.path)) => Err(Reason::ResourceMismatch),
        (None, Some(u)) if u != check.path => Err(Reason::ResourceMismatch),
        _ => Ok(t.is_acl()),
    }
}

/// Python's `quote_plus(s)` with its `%XX` escapes in lowercase, as the generator's
/// `escape_early` writes: letters, digits and `_.-~` stay, a space becomes `+`, every other
/// byte `%xx`.
fn quote_plus_lower(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

fn epoch(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "52a152a152a152a152a152a152a152a1";

    /// Signs like the generator: `fields` joined by `~`, MAC over them plus extras.
    fn sign(fields: &str, extra: &str, key_hex: &str, alg: hmac::Algorithm) -> String {
        let k = hmac::Key::new(alg, &hex_decode(key_hex).unwrap());
        let tag = hmac::sign(&k, format!("{fields}{extra}").as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{fields}~hmac={hex}")
    }

    fn check(path: &str, now: u64) -> Check<'_> {
        Check { path, client_ip: Some("192.0.2.1".parse().unwrap()), now, skew: 0 }
    }

    #[test]
    fn parses_generator_fields() {
        let (t, url) = Token::parse("ip=192.0.2.1~st=100~exp=200~acl=/vod/*!/live/*~id=s1~data=x~hmac=ab").unwrap();
        assert_eq!((t.ip, t.start, t.expires, t.acl, t.id, t.data, url), (Some("192.0.2.1"), Some(100), 200, Some("/vod/*!/live/*"), Some("s1"), Some("x"), None));
        for bad in [
            "",
            "exp=200",
            "exp=200~hmac=",
            "exp=200~hmac=zz",
            "st=1~hmac=ab",
            "exp=x~hmac=ab",
            "exp=200~exp=300~hmac=ab",
            "exp=200~foo=1~hmac=ab",
            "exp=200~acl=/a~url=/a~hmac=ab",
            "exp=200~noequals~hmac=ab",
            "exp=9999999999999~hmac=ab",
        ] {
            assert!(Token::parse(bad).is_none(), "{bad}");
        }
        assert!(Token::parse(&"a".repeat(MAX_CREDENTIAL_BYTES + 1)).is_none());
    }

    #[test]
    fn acl_tokens_verify_and_refuse_by_reason() {
        let keys = Keys::from_hex(&[KEY], Algorithm::Sha256, None).unwrap();
        let tok = sign("st=100~exp=200~acl=/vod/movie/*", "", KEY, hmac::HMAC_SHA256);
        assert_eq!(verify(&tok, &check("/vod/movie/v/1.m4s", 150), &keys), Ok(true));
        assert_eq!(verify(&tok, &check("/vod/other/x", 150), &keys), Err(Reason::ResourceMismatch));
        assert_eq!(verify(&tok, &check("/vod/movie/x", 200), &keys), Err(Reason::Expired));
        assert_eq!(verify(&tok, &check("/vod/movie/x", 99), &keys), Err(Reason::NotYetValid));
        // Skew widens both ends.
        assert_eq!(verify(&tok, &Check { skew: 10, ..check("/vod/movie/x", 205) }, &keys), Ok(true));
        assert_eq!(verify(&tok, &Check { skew: 10, ..check("/vod/movie/x", 91) }, &keys), Ok(true));
        // Tampered: a field changed after signing.
        assert_eq!(verify(&tok.replace("exp=200", "exp=900"), &check("/vod/movie/x", 150), &keys), Err(Reason::BadSignature));
        // Another key.
        let other = sign("exp=200~acl=/*", "", "00112233445566778899aabbccddeeff", hmac::HMAC_SHA256);
        assert_eq!(verify(&other, &check("/x", 1), &keys), Err(Reason::BadSignature));
        // Rotation: either key verifies.
        let both = Keys::from_hex(&["00112233445566778899aabbccddeeff", KEY], Algorithm::Sha256, None).unwrap();
        assert_eq!(verify(&other, &check("/x", 1), &both), Ok(true));
        // Several ACLs.
        let multi = sign("exp=200~acl=/a/*!/b/*", "", KEY, hmac::HMAC_SHA256);
        assert_eq!(verify(&multi, &check("/b/x", 1), &keys), Ok(true));
        assert_eq!(verify(&multi, &check("/c/x", 1), &keys), Err(Reason::ResourceMismatch));
    }

    #[test]
    fn url_tokens_ip_and_salt() {
        let keys = Keys::from_hex(&[KEY], Algorithm::Sha256, None).unwrap();
        let tok = sign("ip=192.0.2.1~exp=200", "~url=/vod/m/manifest.mpd", KEY, hmac::HMAC_SHA256);
        assert_eq!(verify(&tok, &check("/vod/m/manifest.mpd", 1), &keys), Ok(false));
        assert_eq!(verify(&tok, &check("/vod/m/other.mpd", 1), &keys), Err(Reason::BadSignature));
        let elsewhere = Check { client_ip: Some("198.51.100.9".parse().unwrap()), ..check("/vod/m/manifest.mpd", 1) };
        assert_eq!(verify(&tok, &elsewhere, &keys), Err(Reason::IpMismatch));
        assert_eq!(verify(&tok, &Check { client_ip: None, ..check("/vod/m/manifest.mpd", 1) }, &keys), Err(Reason::IpMismatch));
        let salted = Keys::from_hex(&[KEY], Algorithm::Sha1, Some("pepper".into())).unwrap();
        let tok = sign("exp=200~acl=/*", "~salt=pepper", KEY, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY);
        assert_eq!(verify(&tok, &check("/any", 1), &salted), Ok(true));
        assert_eq!(verify(&tok, &check("/any", 1), &keys), Err(Reason::BadSignature));
        assert!(!format!("{salted:?}").contains("pepper"));
    }

    #[test]
    fn escape_early_url_tokens() {
        let mut q = String::new();
        quote_plus_lower("/vod/a b/ü.mpd", &mut q);
        assert_eq!(q, "%2fvod%2fa+b%2f%c3%bc.mpd");
        let keys = Keys::from_hex(&[KEY], Algorithm::Sha256, None).unwrap().with_escape_early(true);
        let tok = sign("exp=200", "~url=%2fvod%2fm%2fmanifest.mpd", KEY, hmac::HMAC_SHA256);
        assert_eq!(verify(&tok, &check("/vod/m/manifest.mpd", 1), &keys), Ok(false));
        let plain = Keys::from_hex(&[KEY], Algorithm::Sha256, None).unwrap();
        assert_eq!(verify(&tok, &check("/vod/m/manifest.mpd", 1), &plain), Err(Reason::BadSignature));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Keys::from_hex(&[], Algorithm::Sha256, None).is_err());
        assert!(Keys::from_hex(&["abc"], Algorithm::Sha256, None).is_err());
        assert!(Keys::from_hex(&["00112233"], Algorithm::Sha256, None).is_err());
        assert!(Keys::from_hex(&["zz112233445566778899aabbccddeeff"], Algorithm::Sha256, None).is_err());
    }

    proptest::proptest! {
        #[test]
        fn hostile_tokens_never_panic(s in "[a-z=~!/*0-9.:]{0,80}", p in "[/a-z*]{0,12}") {
            let keys = Keys::from_hex(&[KEY], Algorithm::Sha256, None).unwrap();
            let _ = verify(&s, &check(&p, 5), &keys);
            let _ = verify(&format!("exp=9~acl={p}~hmac={s}"), &check(&p, 5), &keys);
        }
    }
}
