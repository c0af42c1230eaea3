//! The crate's one error type.

use crate::kid::Kid;

/// Everything that can go wrong in this crate.
///
/// Variants carry enough context (which KID, which element, which limit) for an operator
/// to fix the input without a debugger. None of them ever carries key bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
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

    /// Key assignment was asked for tracks but no content key was given.
    #[error("no content keys to assign to {tracks} track(s)")]
    NoKeys {
        /// How many tracks were waiting for a key.
        tracks: usize,
    },

    /// A builder was given no KIDs where at least one is required.
    #[error("{what} needs at least one key id")]
    NoKids {
        /// The builder concerned.
        what: &'static str,
    },

    /// A built or parsed object exceeds a size or count bound.
    #[error("{what} too large: {got} > limit {limit}")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// The measured size or count.
        got: usize,
        /// The bound.
        limit: usize,
    },

    /// Text that would be embedded in a manifest or playlist contains characters that
    /// would break out of its quoting (quotes, line breaks, control characters).
    #[error("{what} contains a character not allowed here: {input:?}")]
    UnsafeText {
        /// Which value.
        what: &'static str,
        /// The offending text (truncated to 64 characters).
        input: String,
    },

    /// A `pssh` box could not be decoded.
    #[error("malformed pssh box: {0}")]
    MalformedPssh(&'static str),

    /// The CPIX document is not well-formed XML or has the wrong shape.
    #[error("CPIX: {0}")]
    Cpix(String),

    /// The CPIX document carries content keys encrypted with a document key.
    #[error("encrypted CPIX keys are not supported yet (content key {kid}); deliver the CPIX document with pskc:PlainValue keys over a secure channel")]
    EncryptedCpixKey {
        /// The first encrypted key found.
        kid: Kid,
    },

    /// The CPIX document uses a feature this crate deliberately does not implement
    /// (key hierarchies, key rotation, label filters, unknown filters, ...).
    #[error("CPIX feature not supported: {0}")]
    CpixUnsupported(String),

    /// CPIX usage rules cannot be applied to the given tracks.
    #[error("CPIX usage rules: {0}")]
    UsageRules(String),

    /// A ClearKey license request is malformed or violates a bound.
    #[error("ClearKey license request: {0}")]
    ClearKeyRequest(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Truncates untrusted text for inclusion in an error message.
pub(crate) fn snippet(s: &str) -> String {
    s.chars().take(64).collect()
}
