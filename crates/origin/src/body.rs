//! A response body made of `Bytes` chunks (our headers plus slices of the storage read), so
//! media bytes reach the socket without being copied into one buffer.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use sealcast_package::fmp4::FilePart;
use sealcast_package::ts;
use sealcast_storage::LocalFile;

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

/// A clear media segment whose sample bytes are ranges of a local source file
/// ([`sealcast_package::fmp4::write_segment_in_place`]). The HTTP/1.1 loop over plain TCP
/// sends the ranges from the page cache with `sendfile` ([`SendFile`], [`crate::h1`]); any
/// other connection (TLS, HTTP/2, the in-process router) reads them as the body
/// ([`FileBody`]). Both send the same bytes.
pub struct FileSend {
    /// The source file, the version the segment was built from.
    pub file: LocalFile,
    /// Our boxes and the file's ranges, in order.
    pub parts: Vec<FilePart>,
    /// Their total size.
    pub len: u64,
}

/// The most of a file range a [`FileBody`] reads at once, so what it holds stays bounded
/// whatever the segment's size.
pub const FILE_READ: u64 = 256 * 1024;

impl FileSend {
    /// `parts` of `file`.
    pub fn new(file: LocalFile, parts: Vec<FilePart>) -> Self {
        let len = parts.iter().map(FilePart::len).sum();
        FileSend { file, parts, len }
    }

    /// The memory the response holds while it is sent, which is what response budgets count:
    /// our boxes, and of the file's bytes (page cache, not ours, when `sendfile` sends them)
    /// at most two [`FILE_READ`]s, one being written while the next is read ([`FileBody`] on a
    /// connection that cannot send files).
    pub fn held(&self) -> u64 {
        let ours: u64 = self.parts.iter().filter_map(|p| if let FilePart::Ours(b) = p { Some(b.len() as u64) } else { None }).sum();
        ours + (self.len - ours).min(2 * FILE_READ)
    }
}

/// A response extension: the response's body is this [`FileSend`], for a connection that
/// sends the file's ranges itself (then the body is dropped unread).
#[derive(Clone)]
pub struct SendFile(pub Arc<FileSend>);

/// A [`FileSend`] as a body: our boxes as they are, each file range read when it is reached,
/// [`FILE_READ`] at most at a time.
pub struct FileBody {
    send: Arc<FileSend>,
    next: usize,
    /// What is left of the file range being sent.
    range: std::ops::Range<u64>,
    reading: Option<BoxFuture<'static, sealcast_storage::Result<Bytes>>>,
    remaining: u64,
}

impl FileBody {
    /// A body over `send`.
    pub fn new(send: Arc<FileSend>) -> Self {
        let remaining = send.len;
        FileBody { send, next: 0, range: 0..0, reading: None, remaining }
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if this.reading.is_none() {
            if this.range.is_empty() {
                let Some(part) = this.send.parts.get(this.next) else { return Poll::Ready(None) };
                this.next += 1;
                match part {
                    FilePart::Ours(b) => {
                        this.remaining -= b.len() as u64;
                        return Poll::Ready(Some(Ok(Frame::data(b.clone()))));
                    }
                    FilePart::Source(r) => this.range = r.clone(),
                }
            }
            let end = this.range.end.min(this.range.start + FILE_READ);
            let r = this.range.start..end;
            this.range.start = end;
            let send = this.send.clone();
            this.reading = Some(Box::pin(async move { send.file.read(r).await }));
        }
        let Some(reading) = this.reading.as_mut() else { return Poll::Ready(None) };
        let got = std::task::ready!(reading.as_mut().poll(cx));
        this.reading = None;
        match got {
            Ok(b) => {
                this.remaining -= b.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            // The file changed under the segment: cut the response rather than finish it wrong.
            Err(e) => Poll::Ready(Some(Err(std::io::Error::other(e.to_string())))),
        }
    }
    fn is_end_stream(&self) -> bool {
        self.remaining == 0
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

    /// A file-range body read (any connection but plain HTTP/1.1) gives the bytes `sendfile`
    /// would: our parts as they are, each range read from the file, [`FILE_READ`] at most per
    /// frame; its size hint counts down to 0, and budgets count our parts and two reads. A
    /// file cut short fails the body rather than ending it early.
    #[tokio::test]
    async fn file_bodies_read_the_ranges_they_name() {
        use http_body_util::BodyExt;
        let dir = std::env::temp_dir().join(format!("sealcast-filebody-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("f"), &data).unwrap();
        let store = sealcast_storage::Store::local(&dir).unwrap();
        let info = store.head("f").await.unwrap();
        let Some(file) = store.open_local(&info).await.unwrap() else {
            assert!(!sealcast_storage::files_offered());
            return;
        };
        let parts = vec![FilePart::Ours(Bytes::from_static(b"ab")), FilePart::Source(5..600_000), FilePart::Source(650_000..700_000), FilePart::Ours(Bytes::from_static(b"z"))];
        let send = Arc::new(FileSend::new(file, parts));
        assert_eq!(send.held(), 3 + 2 * FILE_READ);
        let want = [&b"ab"[..], &data[5..600_000], &data[650_000..], b"z"].concat();
        let mut body = FileBody::new(send.clone());
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(want.len() as u64));
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() as u64 <= FILE_READ, "a frame of {} bytes", data.len());
            got.extend_from_slice(&data);
            assert_eq!(http_body::Body::size_hint(&body).exact(), Some((want.len() - got.len()) as u64));
        }
        assert_eq!(got, want);
        std::fs::OpenOptions::new().write(true).open(dir.join("f")).unwrap().set_len(620_000).unwrap();
        assert!(FileBody::new(send).collect().await.is_err(), "a file cut short must fail the body");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
