//! A response body made of `Bytes` chunks (our headers plus slices of the storage read), so
//! media bytes reach the socket without being copied into one buffer.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use sealcast_package::ts;

/// Chunks sent in order, with an exact size hint (so Content-Length is known).
pub struct ChunkBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl ChunkBody {
    /// A body over `chunks`.
    pub fn new(chunks: Vec<Bytes>) -> Self {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        ChunkBody { chunks: chunks.into(), remaining }
    }
}

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.chunks.pop_front() {
            Some(c) => {
                self.remaining -= c.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(c))))
            }
            None => Poll::Ready(None),
        }
    }
    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A clear TS segment sent as it is made, a piece of about [`ts::TS_PIECE`] at a time
/// ([`ts::TsPieces`]); exact size hint. A piece that cannot be made (a bug:
/// everything was checked before the first) is an error, which cuts the connection.
pub struct PiecesBody {
    pieces: ts::TsPieces,
}

impl PiecesBody {
    /// A body over `pieces`.
    pub fn new(pieces: ts::TsPieces) -> Self {
        PiecesBody { pieces }
    }
}

impl http_body::Body for PiecesBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.pieces.next_piece(ts::TS_PIECE) {
            Ok(Some(p)) => Poll::Ready(Some(Ok(Frame::data(p)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(std::io::Error::other(e.to_string())))),
        }
    }
    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.pieces.remaining() as u64)
    }
}

/// The chunks covering bytes `start..end` of the concatenation of `parts`.
pub fn slice_chunks(parts: &[Bytes], start: u64, end: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    for p in parts {
        let (a, b) = (pos, pos + p.len() as u64);
        pos = b;
        if b <= start || a >= end {
            continue;
        }
        let s = start.max(a) - a;
        let e = end.min(b) - a;
        out.push(p.slice(s as usize..e as usize));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn slices_across_chunks() {
        let parts = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg"), Bytes::from_static(b"h")];
        let cat = |v: Vec<Bytes>| v.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>();
        assert_eq!(cat(slice_chunks(&parts, 2, 6)), b"cdef");
        assert_eq!(cat(slice_chunks(&parts, 0, 8)), b"abcdefgh");
        assert_eq!(cat(slice_chunks(&parts, 7, 8)), b"h");
    }
}
