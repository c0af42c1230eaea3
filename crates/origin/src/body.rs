//! A response body made of `Bytes` chunks (our headers plus slices of the storage read), so
//! media bytes reach the socket without being copied into one buffer.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

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
