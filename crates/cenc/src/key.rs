//! Content keys: KID, key bytes and what the key is for; the Common Encryption schemes.
//!
//! These live here, below `sealcast-drm`, so the encryptors take the same key type the
//! key sources, key delivery and DRM signalling use; `sealcast_drm::key` re-exports them.

use std::fmt;

use sealcast_isobmff::FourCC;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::KeyError;
use crate::kid::Kid;

type Result<T> = std::result::Result<T, KeyError>;

/// What a content key is used for (the Azure Media Services `ContentKeyType` values
/// sealcast supports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// ISO 23001-7 `cenc` (AES-CTR) sample encryption; PlayReady/Widevine/ClearKey.
    CommonEncryption,
    /// ISO 23001-7 `cbcs` (AES-CBC pattern) sample encryption; FairPlay/Widevine/PlayReady 4+.
    CommonEncryptionCbcs,
    /// HLS AES-128 whole-segment encryption (the key is served by sealcast's key route).
    EnvelopeEncryption,
    /// At-rest AES-CTR encryption of asset files (AES-128 or AES-256).
    StorageEncryption,
}

impl KeyKind {
    /// The name used in configuration and error messages (the AMS spelling).
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::CommonEncryption => "CommonEncryption",
            KeyKind::CommonEncryptionCbcs => "CommonEncryptionCbcs",
            KeyKind::EnvelopeEncryption => "EnvelopeEncryption",
            KeyKind::StorageEncryption => "StorageEncryption",
        }
    }

    /// The sample-encryption scheme a key of this kind drives, if any.
    pub const fn scheme(self) -> Option<Scheme> {
        match self {
            KeyKind::CommonEncryption => Some(Scheme::Cenc),
            KeyKind::CommonEncryptionCbcs => Some(Scheme::Cbcs),
            _ => None,
        }
    }

    /// The key kind for a sample-encryption scheme.
    pub const fn for_scheme(scheme: Scheme) -> Self {
        match scheme {
            Scheme::Cenc => KeyKind::CommonEncryption,
            Scheme::Cbcs => KeyKind::CommonEncryptionCbcs,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Common Encryption scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// AES-128-CTR, per-sample IVs, full protected ranges (DASH, Widevine, PlayReady): `'cenc'`.
    Cenc,
    /// AES-128-CBC, constant IV, 1:9 pattern for video (FairPlay, HLS fMP4, Widevine): `'cbcs'`.
    Cbcs,
}

impl Scheme {
    /// The four-character code (`schm` scheme_type, Widevine protection_scheme).
    pub const fn fourcc(self) -> FourCC {
        FourCC::new(match self {
            Scheme::Cenc => b"cenc",
            Scheme::Cbcs => b"cbcs",
        })
    }

    /// The four-character code as text (DASH `mp4protection@value`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Cenc => "cenc",
            Scheme::Cbcs => "cbcs",
        }
    }

    /// The HLS `METHOD` for sample encryption with this scheme in fMP4/TS.
    pub const fn hls_method(self) -> &'static str {
        match self {
            Scheme::Cenc => "SAMPLE-AES-CTR",
            Scheme::Cbcs => "SAMPLE-AES",
        }
    }
}

/// Key material. Never printed: `Debug` shows only the length. Wiped (zeroized) when
/// dropped, every clone too; copies the caller makes of [`KeyBytes::as_slice`] are its own.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub enum KeyBytes {
    /// A 128-bit AES key (every kind).
    Aes128([u8; 16]),
    /// A 256-bit AES key (storage encryption only, as AMS used).
    Aes256([u8; 32]),
}

impl KeyBytes {
    /// The raw bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            KeyBytes::Aes128(k) => k,
            KeyBytes::Aes256(k) => k,
        }
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyBytes::Aes128(_) => f.write_str("Aes128(<redacted>)"),
            KeyBytes::Aes256(_) => f.write_str("Aes256(<redacted>)"),
        }
    }
}

/// A content key: its ID, the secret and its kind.
///
/// Fields are private so a `ContentKey` always has a key length its kind allows.
/// `Debug` never prints the key bytes (there is deliberately no `Display`); the key bytes
/// are wiped when the key is dropped.
#[derive(Clone, PartialEq, Eq, ZeroizeOnDrop)]
pub struct ContentKey {
    #[zeroize(skip)]
    kid: Kid,
    key: KeyBytes,
    #[zeroize(skip)]
    kind: KeyKind,
}

impl ContentKey {
    /// Builds a key, checking the length: 16 bytes for every kind, or 32 for
    /// [`KeyKind::StorageEncryption`].
    pub fn new(kid: Kid, kind: KeyKind, key: &[u8]) -> Result<Self> {
        // Filled in place, so no stack copy of the key is left behind.
        let key = match (kind, key.len()) {
            (_, 16) => {
                let mut k = KeyBytes::Aes128([0u8; 16]);
                if let KeyBytes::Aes128(b) = &mut k {
                    b.copy_from_slice(key);
                }
                k
            }
            (KeyKind::StorageEncryption, 32) => {
                let mut k = KeyBytes::Aes256([0u8; 32]);
                if let KeyBytes::Aes256(b) = &mut k {
                    b.copy_from_slice(key);
                }
                k
            }
            (_, got) => {
                let expected = if kind == KeyKind::StorageEncryption { "16 or 32" } else { "16" };
                return Err(KeyError::InvalidKeyLength { kid, kind: kind.name(), expected, got });
            }
        };
        Ok(ContentKey { kid, key, kind })
    }

    /// Shorthand for a 128-bit key (infallible: every kind accepts 16 bytes).
    pub const fn aes128(kid: Kid, kind: KeyKind, key: [u8; 16]) -> Self {
        ContentKey { kid, key: KeyBytes::Aes128(key), kind }
    }

    /// The key ID.
    pub const fn kid(&self) -> Kid {
        self.kid
    }

    /// What the key is for.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key material.
    pub fn key(&self) -> &KeyBytes {
        &self.key
    }

    /// The 128-bit key, or [`KeyError::NotAes128`] for an AES-256 storage key.
    pub fn aes128_bytes(&self) -> Result<&[u8; 16]> {
        match &self.key {
            KeyBytes::Aes128(k) => Ok(k),
            KeyBytes::Aes256(_) => Err(KeyError::NotAes128 { kid: self.kid }),
        }
    }
}

impl fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentKey").field("kid", &self.kid).field("kind", &self.kind).field("key", &self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] =
        [0x69, 0xea, 0xa8, 0x02, 0xa6, 0x76, 0x3a, 0xf9, 0x79, 0xe8, 0xd1, 0x94, 0x0f, 0xb8, 0x83, 0x92];

    #[test]
    fn debug_never_prints_key_bytes() {
        let kid = Kid::parse("abba271e-8bcf-552b-bd2e-86a434a9a5d9").unwrap();
        let k = ContentKey::aes128(kid, KeyKind::CommonEncryption, KEY);
        let s256 = ContentKey::new(kid, KeyKind::StorageEncryption, &[0xa5; 32]).unwrap();
        for dbg in [format!("{k:?}"), format!("{k:#?}"), format!("{s256:?}"), format!("{:?}", k.key())] {
            let lower = dbg.to_lowercase();
            assert!(!lower.contains("69eaa802"), "{dbg}");
            assert!(!lower.contains("a5a5"), "{dbg}");
            // Neither as decimal byte lists.
            assert!(!dbg.contains("105, 234"), "{dbg}");
            assert!(!dbg.contains("165, 165"), "{dbg}");
            assert!(dbg.contains("redacted"), "{dbg}");
        }
        assert!(format!("{k:?}").contains("abba271e-8bcf-552b-bd2e-86a434a9a5d9"));
    }

    /// Key material is wiped on drop (a compile-time check: reading freed memory would prove
    /// nothing reliable).
    #[test]
    fn key_types_zeroize_on_drop() {
        fn zeroized_on_drop<T: ZeroizeOnDrop>() {}
        zeroized_on_drop::<KeyBytes>();
        zeroized_on_drop::<ContentKey>();
        // And `zeroize` really clears the bytes.
        let mut k = KeyBytes::Aes256([0xa5; 32]);
        k.zeroize();
        assert_eq!(k.as_slice(), &[0u8; 32][..]);
    }

    #[test]
    fn key_lengths_per_kind() {
        let kid = Kid([1; 16]);
        assert!(ContentKey::new(kid, KeyKind::CommonEncryption, &[0; 16]).is_ok());
        assert!(ContentKey::new(kid, KeyKind::StorageEncryption, &[0; 32]).is_ok());
        assert!(matches!(
            ContentKey::new(kid, KeyKind::CommonEncryption, &[0; 32]),
            Err(KeyError::InvalidKeyLength { got: 32, .. })
        ));
        assert!(ContentKey::new(kid, KeyKind::StorageEncryption, &[0; 24]).is_err());
        assert!(ContentKey::new(kid, KeyKind::EnvelopeEncryption, &[]).is_err());
        let s = ContentKey::new(kid, KeyKind::StorageEncryption, &[0; 32]).unwrap();
        assert_eq!(s.aes128_bytes(), Err(KeyError::NotAes128 { kid }));
        assert_eq!(s.key().as_slice().len(), 32);
    }

    #[test]
    fn schemes() {
        assert_eq!(Scheme::Cenc.fourcc(), FourCC::new(b"cenc"));
        assert_eq!(Scheme::Cbcs.as_str(), "cbcs");
        assert_eq!(KeyKind::for_scheme(Scheme::Cbcs).scheme(), Some(Scheme::Cbcs));
        assert_eq!(KeyKind::EnvelopeEncryption.scheme(), None);
    }
}
