//! The packaging error type.

/// A fault found while indexing or packaging. Every variant is the content's fault (the
/// source files), not the client's: the HTTP layer maps these to a 5xx with the asset named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A box could not be decoded.
    #[error("at byte {offset}: {source}")]
    Box {
        /// File offset of the box (or of the read window) where the fault was found.
        offset: u64,
        /// What was wrong.
        source: sealcast_isobmff::Error,
    },
    /// A codec configuration record could not be decoded.
    #[error("track {track}: {source}")]
    Codec {
        /// Track ID.
        track: u32,
        /// What was wrong.
        source: sealcast_codecs::Error,
    },
    /// The file is not a fragmented MP4 we can serve.
    #[error("{0}")]
    Unsupported(String),
    /// The file ends before a box it declares.
    #[error("truncated file: box at byte {offset} needs {need} bytes, file has {file_len}")]
    Truncated {
        /// Box offset.
        offset: u64,
        /// Bytes the box claims.
        need: u64,
        /// File length.
        file_len: u64,
    },
    /// A server manifest (.ism) could not be read.
    #[error("server manifest: {0}")]
    Ism(String),
    /// The file is over a limit set to bound the memory and work one file may cost
    /// (index size, samples per fragment, segment size or duration).
    #[error("over a limit: {0}")]
    Limit(String),
    /// The caller fed bytes that do not match what was asked for, or asked past the end.
    #[error("read mismatch: {0}")]
    Read(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait At<T> {
    fn at(self, offset: u64) -> Result<T>;
}

impl<T> At<T> for sealcast_isobmff::Result<T> {
    fn at(self, offset: u64) -> Result<T> {
        self.map_err(|source| Error::Box { offset, source })
    }
}
