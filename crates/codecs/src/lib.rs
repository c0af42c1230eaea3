//! Codec configuration parsing: what manifests (RFC 6381 `codecs`), subsample maps and the
//! TS muxer need from `avcC`, `hvcC` and `esds`. Pure code, no IO.

pub mod aac;
pub mod adts;
pub mod avc;
pub mod hevc;
pub mod nal;

/// Media type of a track: what packaging (manifests, MIME types) and key assignment (an
/// audio key, video keys by quality) both decide on. The order (video first) is the order
/// manifests list adaptation sets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackKind {
    /// Video.
    Video,
    /// Audio.
    Audio,
}

impl TrackKind {
    /// `video` / `audio`, as DASH contentType and MIME types use.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }
}

/// A fault in a codec configuration record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record ends before a field it declares.
    #[error("{0}: truncated")]
    Truncated(&'static str),
    /// A field value we cannot use.
    #[error("{0}: invalid {1}")]
    Invalid(&'static str, &'static str),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bounded byte cursor for configuration records.
pub(crate) struct Cur<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Self {
        Cur { b, what }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.b.len() {
            return Err(Error::Truncated(self.what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.b
    }
}
