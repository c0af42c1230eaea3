//! The crate's one error type.

use crate::kid::Kid;

/// Everything that can go wrong in this crate.
///
/// Variants carry enough context (which KID, which element, which limit) for an operator
/// to fix the input without a debugger. None of them ever carries key bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A KID does not parse, or a content key has a length its kind does not allow or is
    /// not the 128-bit key an operation needs (the key vocabulary's own faults).
    #[error(transparent)]
    Key(#[from] sealcast_cenc::KeyError),

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
    MalformedPssh(String),

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
