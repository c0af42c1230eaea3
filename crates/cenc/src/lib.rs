//! Common Encryption (ISO/IEC 23001-7) for a just-in-time origin: `cenc` (AES-128-CTR) and
//! `cbcs` (AES-128-CBC, 1:9 pattern for video) sample encryption, subsample maps for
//! length-prefixed H.264/HEVC, deterministic IVs, and the boxes that signal it all
//! (`sinf`/`frma`/`schm`/`schi`/`tenc`, `pssh`, `senc`/`saiz`/`saio`).
//!
//! Pure code: no IO, no clock, no key lookup. Same inputs, same bytes, on every node.
//!
//! The key vocabulary ([`Kid`], [`SystemId`], [`ContentKey`], [`KeyKind`], [`Scheme`]) and
//! the one `pssh` box type ([`boxes::Pssh`]) live here, the lowest crate that needs them;
//! `sealcast-drm` builds its key sources and DRM signalling on the same types.
//!
//! How the pieces fit (mirroring mp4ff's `InitProtectData` / `FragmentEncryptor` split):
//!
//! * [`TrackProtection`] is built once per (track, key, scheme) and shared read-only: it
//!   holds the expanded AES key, the IV rule and the codec layout, and gives the `tenc`.
//! * [`init::protect_init`] turns a clear init segment into the protected one
//!   (`avc1` → `encv` + `sinf`, …), every other byte untouched.
//! * Per request, [`TrackProtection::encryptor`] gives a [`FragmentEncryptor`] that owns
//!   its scratch buffers; [`FragmentEncryptor::encrypt_samples`] encrypts a fragment's
//!   samples in place and returns the [`boxes::Senc`] entries, and
//!   [`traf::write_aux_boxes`] writes `saiz`, `saio` and `senc` into the `traf` being built.

#![warn(missing_docs)]

pub mod aes;
pub mod boxes;
pub mod encrypt;
pub mod error;
pub mod init;
pub mod iv;
pub mod key;
mod lanes;
pub mod kid;
pub mod multibuf;
pub mod storage;
pub mod subsample;
pub mod traf;

pub use encrypt::{encrypt_samples, FragmentEncryptor, SampleRange, TrackProtection};
pub use error::{Error, KeyError, Result};
pub use iv::IvDeriver;
pub use key::{ContentKey, KeyBytes, KeyKind, Scheme};
pub use kid::{Kid, SystemId};
pub use subsample::{SampleFormat, Subsample};

/// A `cbcs` pattern: encrypt `crypt` 16-byte blocks, leave `skip` clear, repeat. `0:0`
/// means every whole block is encrypted (audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// crypt_byte_block (0-15).
    pub crypt: u8,
    /// skip_byte_block (0-15).
    pub skip: u8,
}

impl Pattern {
    /// The video pattern everyone uses: 1 block in 10.
    pub const VIDEO: Pattern = Pattern { crypt: 1, skip: 9 };
    /// Whole blocks, no pattern: audio under `cbcs`.
    pub const FULL: Pattern = Pattern { crypt: 0, skip: 0 };

    /// Whether every whole block is encrypted.
    pub fn is_full(self) -> bool {
        self.skip == 0
    }

    fn validate(self) -> Result<()> {
        if self.crypt > 15 || self.skip > 15 {
            return Err(Error::Param("pattern blocks must be below 16"));
        }
        if self.crypt == 0 && self.skip != 0 {
            return Err(Error::Param("pattern with skip blocks needs crypt blocks"));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use sealcast_isobmff::Atom;

    /// Parses a hex string with optional whitespace.
    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Decode-then-encode must give the input back, byte for byte.
    pub fn round_trip<A: Atom + std::fmt::Debug>(h: &str) -> A {
        let bytes = hex(h);
        let a = A::decode(&bytes).unwrap_or_else(|e| panic!("decode {}: {e}", A::TYPE));
        assert_eq!(a.to_vec(), bytes, "{} did not round-trip: {:?}", A::TYPE, a);
        a
    }
}
