//! The crate's error type.

use crate::FourCC;

/// A fault found while decoding boxes. Carries the box type so callers can say where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than a field or box needs.
    #[error("{what}: truncated (needs {need} bytes, has {have})")]
    Truncated { what: FourCC, need: u64, have: u64 },
    /// A size field smaller than its own header, or pointing outside its parent.
    #[error("{what}: invalid box size {size}")]
    BadSize { what: FourCC, size: u64 },
    /// A box of another type where one was required.
    #[error("expected '{expected}' box, found '{found}'")]
    UnexpectedBox { expected: FourCC, found: FourCC },
    /// A box we require is missing.
    #[error("missing '{0}' box")]
    Missing(FourCC),
    /// A version or flag combination we do not support.
    #[error("{what}: unsupported {detail}")]
    Unsupported { what: FourCC, detail: &'static str },
    /// A field value that makes no sense (a count larger than the box, a zero timescale, …).
    #[error("{what}: invalid {detail}")]
    Invalid { what: FourCC, detail: &'static str },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
