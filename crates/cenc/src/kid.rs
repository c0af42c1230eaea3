//! Key IDs and DRM system IDs: 16-byte UUIDs in their several spellings.
//!
//! CENC (`tenc`, `pssh`, `cenc:default_KID`), CPIX and Widevine all use the UUID bytes in
//! network (big-endian) order. Microsoft's GUID layout — PlayReady `<KID>`, `.NET`
//! `Guid.ToByteArray()` and hence the AMS checksum — stores the first three fields
//! little-endian. [`Kid::to_playready_bytes`] is the only place that swap happens.

use std::fmt;
use std::str::FromStr;

use crate::error::KeyError;

type Result<T> = std::result::Result<T, KeyError>;

/// A content key identifier: 16 bytes in CENC (big-endian UUID) order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 16]);

/// A DRM system identifier (`pssh` SystemID, `urn:uuid:` in DASH): 16 bytes, big-endian UUID order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SystemId(pub [u8; 16]);

impl Kid {
    /// The 16 bytes in CENC order.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses a GUID (`8-4-4-4-12`, optionally in braces), 32 hex digits, or either behind a
    /// `urn:uuid:` or Azure Media Services `nb:kid:UUID:` prefix. Case-insensitive.
    pub fn parse(s: &str) -> Result<Self> {
        parse_uuid(s).map(Kid)
    }

    /// Parses exactly 32 hex digits (no hyphens).
    pub fn from_hex(s: &str) -> Result<Self> {
        if s.len() != 32 {
            return Err(invalid(s, "expected 32 hex digits"));
        }
        decode_hex16(s.as_bytes()).map(Kid).ok_or_else(|| invalid(s, "not hex"))
    }

    /// Lowercase 32 hex digits, no hyphens (HLS `KEYID=0x…` without the prefix).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Lowercase GUID string `8-4-4-4-12` (what `cenc:default_KID` and CPIX `@kid` carry).
    /// Same as `Display`.
    pub fn to_guid_string(&self) -> String {
        self.to_string()
    }

    /// The Microsoft GUID byte layout: bytes 0–3, 4–5 and 6–7 reversed, 8–15 unchanged.
    /// PlayReady `<KID>`/`VALUE` are base64 of these bytes.
    pub fn to_playready_bytes(&self) -> [u8; 16] {
        swap_guid(self.0)
    }

    /// Inverse of [`Kid::to_playready_bytes`].
    pub fn from_playready_bytes(bytes: [u8; 16]) -> Self {
        Kid(swap_guid(bytes))
    }
}

impl SystemId {
    /// Widevine.
    pub const WIDEVINE: SystemId = SystemId(hex16("edef8ba979d64acea3c827dcd51d21ed"));
    /// PlayReady.
    pub const PLAYREADY: SystemId = SystemId(hex16("9a04f07998404286ab92e65be0885f95"));
    /// W3C Common PSSH box format (used by ClearKey in `pssh` boxes).
    pub const W3C_COMMON: SystemId = SystemId(hex16("1077efecc0b24d02ace33c1e52e2fb4b"));
    /// DASH-IF ClearKey scheme used in MPD `ContentProtection@schemeIdUri`.
    pub const DASHIF_CLEARKEY: SystemId = SystemId(hex16("e2719d58a985b3c9781ab030af78d30e"));
    /// FairPlay, as mp4ff and HLS tooling write it. (Older Shaka Packager used
    /// `29701fe4-…`; FairPlay does not read `pssh` boxes, so this only labels CPIX entries.)
    pub const FAIRPLAY: SystemId = SystemId(hex16("94ce86fb07ff4f43adb893d2fa968ca2"));

    /// Parses like [`Kid::parse`].
    pub fn parse(s: &str) -> Result<Self> {
        parse_uuid(s).map(SystemId)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// `urn:uuid:<lowercase guid>` as DASH `schemeIdUri` wants it.
    pub fn urn(&self) -> String {
        format!("urn:uuid:{self}")
    }
}

impl fmt::Display for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_guid(&self.0, f)
    }
}

impl fmt::Debug for Kid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kid({self})")
    }
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_guid(&self.0, f)
    }
}

impl fmt::Debug for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemId({self})")
    }
}

impl FromStr for Kid {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self> {
        Kid::parse(s)
    }
}

impl FromStr for SystemId {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self> {
        SystemId::parse(s)
    }
}

fn fmt_guid(b: &[u8; 16], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let h = hex(b);
    write!(f, "{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn swap_guid(mut b: [u8; 16]) -> [u8; 16] {
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

fn invalid(s: &str, reason: &'static str) -> KeyError {
    // Truncated: the input is untrusted and ends up in logs.
    KeyError::InvalidKid { input: s.chars().take(64).collect(), reason }
}

fn parse_uuid(input: &str) -> Result<[u8; 16]> {
    let mut s = input.trim();
    for prefix in ["urn:uuid:", "nb:kid:UUID:"] {
        // `get` rather than indexing: untrusted input may put a multi-byte char across the cut.
        if s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix)) {
            s = &s[prefix.len()..];
        }
    }
    if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        s = inner;
    }
    let b = s.as_bytes();
    match b.len() {
        32 => decode_hex16(b).ok_or_else(|| invalid(input, "not hex")),
        36 => {
            // Hyphens exactly at the GUID field boundaries; nowhere else.
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return Err(invalid(input, "hyphens not at 8-4-4-4-12 positions"));
            }
            let mut digits = [0u8; 32];
            let mut n = 0;
            for (i, &c) in b.iter().enumerate() {
                if ![8, 13, 18, 23].contains(&i) {
                    digits[n] = c;
                    n += 1;
                }
            }
            decode_hex16(&digits).ok_or_else(|| invalid(input, "not hex"))
        }
        _ => Err(invalid(input, "expected a GUID (8-4-4-4-12) or 32 hex digits")),
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes 32 hex digits; `None` on any non-hex byte or wrong length.
pub(crate) fn decode_hex16(b: &[u8]) -> Option<[u8; 16]> {
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
    }
    Some(out)
}

/// Lowercase hex of any bytes (for logs, tests and KID spellings; never for key bytes).
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[usize::from(x >> 4)] as char);
        s.push(DIGITS[usize::from(x & 0xf)] as char);
    }
    s
}

/// Compile-time hex for the system ID constants. Panics (at compile time) on bad input.
const fn hex16(s: &str) -> [u8; 16] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex in system id constant"),
        }
    }
    let b = s.as_bytes();
    assert!(b.len() == 32);
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "abba271e-8bcf-552b-bd2e-86a434a9a5d9";

    #[test]
    fn guid_round_trip_and_spellings() {
        let kid = Kid::parse(VECTOR).unwrap();
        assert_eq!(kid.to_string(), VECTOR);
        assert_eq!(kid.to_hex(), "abba271e8bcf552bbd2e86a434a9a5d9");
        for spelling in [
            "ABBA271E-8BCF-552B-BD2E-86A434A9A5D9",
            "{abba271e-8bcf-552b-bd2e-86a434a9a5d9}",
            "abba271e8bcf552bbd2e86a434a9a5d9",
            "urn:uuid:abba271e-8bcf-552b-bd2e-86a434a9a5d9",
            "nb:kid:UUID:abba271e-8bcf-552b-bd2e-86a434a9a5d9",
            " abba271e-8bcf-552b-bd2e-86a434a9a5d9 ",
        ] {
            assert_eq!(Kid::parse(spelling).unwrap(), kid, "{spelling}");
        }
        assert_eq!(Kid::from_hex("abba271e8bcf552bbd2e86a434a9a5d9").unwrap(), kid);
        assert_eq!(format!("{kid:?}"), format!("Kid({VECTOR})"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "abba271e-8bcf-552b-bd2e-86a434a9a5d",
            "abba271e8-bcf-552b-bd2e-86a434a9a5d9",
            "abba271e-8bcf-552b-bd2e-86a434a9a5dg",
            "abba271e-8bcf-552b-bd2e-86a434a9a5d9a",
            "zz",
            "абвг271e-8bcf-552b-bd2e-86a434a9a5d9",
        ] {
            assert!(Kid::parse(bad).is_err(), "{bad}");
        }
        assert!(Kid::from_hex(VECTOR).is_err());
    }

    #[test]
    fn playready_byte_order() {
        // FORMATS.md 3.3: GUID-swapped bytes 1e27baab cf8b 2b55 bd2e86a434a9a5d9.
        let kid = Kid::parse(VECTOR).unwrap();
        assert_eq!(hex(&kid.to_playready_bytes()), "1e27baabcf8b2b55bd2e86a434a9a5d9");
        assert_eq!(Kid::from_playready_bytes(kid.to_playready_bytes()), kid);
    }

    #[test]
    fn system_ids() {
        assert_eq!(SystemId::WIDEVINE.to_string(), "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed");
        assert_eq!(SystemId::PLAYREADY.to_string(), "9a04f079-9840-4286-ab92-e65be0885f95");
        assert_eq!(SystemId::W3C_COMMON.to_string(), "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b");
        assert_eq!(SystemId::DASHIF_CLEARKEY.urn(), "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e");
        assert_eq!(SystemId::parse("9A04F079-9840-4286-AB92-E65BE0885F95").unwrap(), SystemId::PLAYREADY);
    }
}
