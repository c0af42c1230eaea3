//! The crate's error type.

use sealcast_isobmff::FourCC;

use crate::kid::Kid;

/// A fault found while building subsample maps, encrypting samples or rewriting boxes.
///
/// Sample and box faults are the content's (the source file's); parameter faults are the
/// caller's (a key or IV of the wrong size, a pattern out of range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A NAL unit's length prefix runs past the end of its sample.
    #[error("sample {sample}: NAL unit at byte {offset} claims {len} bytes but only {have} remain")]
    NalOverrun {
        /// Index of the sample in the call.
        sample: usize,
        /// Offset of the length prefix within the sample.
        offset: usize,
        /// Length the prefix declares (prefix excluded).
        len: u64,
        /// Bytes left after the prefix.
        have: usize,
    },
    /// A sample's byte range lies outside the buffer it was said to be in.
    #[error("sample {sample}: bytes {offset}..{offset}+{len} outside a buffer of {buf_len}")]
    SampleOutOfBounds {
        /// Index of the sample in the call.
        sample: usize,
        /// Start offset given.
        offset: usize,
        /// Length given.
        len: usize,
        /// Buffer length.
        buf_len: usize,
    },
    /// A subsample map does not cover its sample exactly.
    #[error("sample {sample}: subsamples cover {covered} bytes of a {len}-byte sample")]
    SubsampleMismatch {
        /// Index of the sample in the call.
        sample: usize,
        /// Bytes the map covers.
        covered: u64,
        /// Sample length.
        len: usize,
    },
    /// A value does not fit the field that must carry it (per-sample aux info over 255
    /// bytes, more than 65535 subsamples, a `saio` offset past 4 GiB, …).
    #[error("{what}: {value} does not fit")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A parameter the caller chose is not allowed (IV size, pattern, nal length size, …).
    #[error("invalid parameter: {0}")]
    Param(&'static str),
    /// The init segment has no sample entry we can protect.
    #[error("init segment: {0}")]
    Init(String),
    /// A sample entry type we do not know how to protect.
    #[error("init segment: cannot protect sample entry '{0}'")]
    UnsupportedEntry(FourCC),
    /// A box could not be decoded.
    #[error("{0}")]
    Box(#[from] sealcast_isobmff::Error),
    /// A content key cannot be used here (e.g. an AES-256 storage key given to a sample
    /// encryptor).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The AES library refused an operation (it only does so for sizes we check first, so
    /// this means a bug here, not bad input).
    #[error("AES {0} failed")]
    Crypto(&'static str),
}

/// A KID that does not parse, or a content key of the wrong size: the key vocabulary's
/// faults (see [`crate::kid`], [`crate::key`]). `sealcast-drm` passes these on unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A KID (or system ID) string is not a GUID or 32 hex digits.
    #[error("invalid key id {input:?}: {reason}")]
    InvalidKid {
        /// The offending text (truncated to 64 characters).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Key bytes have a length the key kind does not allow.
    #[error("key {kid}: {kind} needs {expected} key bytes, got {got}")]
    InvalidKeyLength {
        /// The key concerned.
        kid: Kid,
        /// The key kind's name.
        kind: &'static str,
        /// The allowed length(s), as text (`"16"`, `"16 or 32"`).
        expected: &'static str,
        /// What was given.
        got: usize,
    },

    /// An operation needed a 128-bit key and the key is another size.
    #[error("key {kid}: a 128-bit AES key is required here")]
    NotAes128 {
        /// The key concerned.
        kid: Kid,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
