//! Request paths to storage paths, refusing anything that could leave the storage root.
//!
//! Each segment is percent-decoded once and then must be a plain name: not empty, not `.` or
//! `..`, no `/`, `\` or NUL after decoding, no control characters, not too long. Decoding
//! happens before the check, so `%2e%2e` and `..%2f` are caught too.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A segment is `.` or `..` (possibly encoded), or a separator hides in one.
    #[error("path traversal is not allowed")]
    Traversal,
    /// Empty segment (`//`), control character, bad encoding, or too long.
    #[error("malformed path")]
    Malformed,
}

/// A validated, decoded list of path segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetPath {
    segments: Vec<String>,
}

/// Longest request path we look at.
const MAX_PATH: usize = 2048;

impl AssetPath {
    /// Parses the path of a request URI (`/a/b/c`, without query).
    pub fn parse(uri_path: &str) -> Result<AssetPath, PathError> {
        Ok(AssetPath { segments: AssetPath::segments_of(uri_path)?.into_iter().map(Cow::into_owned).collect() })
    }

    /// The checked segments of `uri_path` as [`AssetPath::parse`] makes them, borrowed from it
    /// where nothing was decoded (nearly every segment of every request: no copy per request).
    pub fn segments_of(uri_path: &str) -> Result<Vec<Cow<'_, str>>, PathError> {
        if uri_path.len() > MAX_PATH || !uri_path.starts_with('/') {
            return Err(PathError::Malformed);
        }
        let mut segments = Vec::with_capacity(4);
        for raw in uri_path[1..].split('/') {
            // Printable ASCII without escapes (nearly every segment of every request) reads
            // as it stands: the checks below, made on the bytes, without decoding.
            if !raw.is_empty() && raw.len() <= 255 && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'%' && b != b'\\') {
                if raw == "." || raw == ".." {
                    return Err(PathError::Traversal);
                }
                segments.push(Cow::Borrowed(raw));
                continue;
            }
            if raw.contains('\\') {
                return Err(PathError::Traversal);
            }
            let seg = percent_decode_str(raw).decode_utf8().map_err(|_| PathError::Malformed)?;
            if seg == "." || seg == ".." || seg.contains('/') || seg.contains('\\') {
                return Err(PathError::Traversal);
            }
            if seg.is_empty() || seg.chars().any(|c| c.is_control()) || seg.len() > 255 {
                return Err(PathError::Malformed);
            }
            segments.push(seg);
        }
        Ok(segments)
    }

    /// Takes the segments.
    pub fn into_segments(self) -> Vec<String> {
        self.segments
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Joins segments `a..b` with `/`.
    pub fn join(&self, range: std::ops::Range<usize>) -> String {
        self.segments[range].join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes() {
        for p in ["/../etc/passwd", "/a/%2e%2e/b", "/a/..%2f..%2fetc", "/a\\b", "/a/%5c..", "/a/%2E%2E", "/./a", "/a/%00b", "/a//b", "a/b", "/a/%ff"] {
            assert!(AssetPath::parse(p).is_err(), "{p}");
        }
        assert_eq!(AssetPath::parse("/vod/2026/movie/manifest.mpd").unwrap().segments().len(), 4);
        assert_eq!(AssetPath::parse("/a%20b/c").unwrap().segments()[0], "a b");
        // Plain segments and escaped ones agree, whichever way each is checked.
        assert_eq!(AssetPath::parse("/a%2Db/c.mpd").unwrap().segments(), AssetPath::parse("/a-b/c.mpd").unwrap().segments());
        let long = format!("/{}", "x".repeat(256));
        assert!(AssetPath::parse(&long).is_err());
        assert!(AssetPath::parse(&long[..256]).is_ok());
        for p in ["/a/.", "/a/..", "/a/%2e", "/a/b/", "/a/\u{7f}"] {
            assert!(AssetPath::parse(p).is_err(), "{p}");
        }
    }
}
