//! HTTP/1.1 for the requests an origin mostly gets: `GET`, `HEAD` and `OPTIONS` without a
//! body, read with `httparse` and answered with one vectored write.
//!
//! Why not hyper for these: callgrind put hyper's dispatcher (its per-request header-read
//! timer, `Incoming` body, header encoding and buffered writes) at about half of the
//! instructions a cached manifest costs (benches/README.md). No crate offers a smaller
//! HTTP/1.1 server connection that fits our watchdog and budgets, so this loop is written
//! here; hyper stays for everything else.
//!
//! A connection starts here and is handed to hyper — with every byte read so far, at a request
//! boundary — the first time it sends anything else: a request with a body (`Content-Length`
//! other than 0, or `Transfer-Encoding`), `Expect`, `Upgrade`, `CONNECT`, or the HTTP/2 preface.
//! From then on hyper serves the connection to its end. Requests answered here go through the
//! same [`crate::listen`] service as hyper's (request accounting, response budgets, the single
//! handler), so both answer alike (`tests/http.rs`).
//!
//! What this loop enforces itself: a request head is at most `max_header_bytes` and 100 header
//! lines (else 431 and close), malformed heads get 400 and close, and the head's first byte
//! is recorded so the connection's watchdog can cut heads slower than `header_read_timeout`.
//! Keep-alive follows RFC 9112 §9.3 (`Connection: close`; HTTP/1.0 only with
//! `Connection: keep-alive`). Responses of unknown length are sent chunked (HTTP/1.1) or
//! delimited by closing the connection (HTTP/1.0).

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use sealcast_package::fmp4::FilePart;
use sealcast_storage::LocalFile;

use crate::body::{FileSend, SendFile};
use crate::listen::Guarded;
use crate::respond::{Wire, WireHead};

/// Header lines a request head may have (hyper's default too).
const MAX_HEADERS: usize = 100;

/// The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Bytes read from the socket at a time.
const READ: usize = 8 * 1024;

/// Body chunks gathered into one `writev` at most (well under `IOV_MAX`).
const MAX_SLICES: usize = 64;

/// Slices of a small answer's `writev` (the head and up to three body chunks).
const FEW_SLICES: usize = 4;

/// Body bytes gathered before they are written, for bodies that arrive in pieces.
const GATHER: usize = 256 * 1024;

/// How a connection left this loop.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// It is finished: closed by either side, or cut after an error answer.
    Close,
    /// hyper must serve it from here, starting with the bytes left in the buffer.
    Hyper,
}

/// A request head, parsed and owned.
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    /// The head as it came (the values above are slices of it).
    raw: Bytes,
    wants: Wants,
}

/// What the head asks of the connection.
struct Wants {
    /// hyper must take the connection from this request on.
    hyper: bool,
    /// The client asked to close (or did not ask HTTP/1.0 keep-alive).
    close: bool,
}

// Not boxed: a head is parsed for every request, and boxing it would allocate for each.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Complete(Head),
    Partial,
    /// Answer this status and close.
    Refuse(StatusCode),
}

/// Serves requests on `io` until it closes or must go to hyper. `buf` holds bytes read and
/// not yet used; on [`Next::Hyper`] they start the request hyper is to read.
pub(crate) async fn serve<I>(io: &mut I, buf: &mut BytesMut, svc: &Guarded, max_head: usize) -> io::Result<Next>
where
    I: AsyncRead + AsyncWrite + SendFiles + Unpin,
{
    let state = svc.conn_state();
    let wire = if io.sends_files() { Wire::Files } else { Wire::Lines };
    // The response head and body chunks of each answer, kept for the connection's next one.
    let mut out = Out::default();
    loop {
        // The request head.
        let mut seen = 0;
        let head = loop {
            if buf.len() > seen {
                match step(buf, &mut seen, max_head) {
                    Step::Head(h) => break h,
                    Step::Hyper => return Ok(Next::Hyper),
                    Step::Refuse(status) => {
                        refuse(io, svc, status).await?;
                        return Ok(Next::Close);
                    }
                    Step::More => state.head_started(),
                }
            } else if buf.is_empty() && state.closing.load(Ordering::Acquire) {
                return Ok(Next::Close);
            }
            buf.reserve(READ);
            if io.read_buf(buf).await? == 0 {
                // The peer closed; a partial head is dropped, as hyper does.
                return Ok(Next::Close);
            }
        };
        state.head_done();
        let wants = &head.wants;
        if wants.hyper {
            // The head goes back in front of what follows it, as it came.
            let mut again = BytesMut::with_capacity(head.raw.len() + buf.len());
            again.extend_from_slice(&head.raw);
            again.extend_from_slice(buf);
            *buf = again;
            return Ok(Next::Hyper);
        }
        let is_head = head.method == Method::HEAD;
        let asks_close = head.wants.close;
        let version = head.version;
        let mut req = Request::new(Body::empty());
        *req.method_mut() = head.method;
        *req.uri_mut() = head.uri;
        *req.version_mut() = head.version;
        *req.headers_mut() = head.headers;
        let res = svc.respond(req, false, usize::MAX, wire).await;
        let close = asks_close || state.closing.load(Ordering::Acquire);
        let closed = write_response(io, res.response, res.lines.as_ref(), version, is_head, close, &mut out).await?;
        if closed {
            return Ok(Next::Close);
        }
    }
}

/// What the bytes read so far make of the next request.
#[allow(clippy::large_enum_variant)] // as `Parsed`: no allocation per request
enum Step {
    /// A whole head (taken out of the buffer).
    Head(Head),
    /// The HTTP/2 preface (or enough of it): hyper reads the rest and serves the connection.
    Hyper,
    /// Answer this and close.
    Refuse(StatusCode),
    /// Read more.
    More,
}

/// Looks at `buf` after a read. `seen`: bytes of `buf` known not to end a head, so a head that
/// trickles in a byte at a time is parsed again only when a line ends, not per byte (at most
/// `MAX_HEADERS` + 2 parses before it completes or is refused).
fn step(buf: &mut BytesMut, seen: &mut usize, max_head: usize) -> Step {
    let n = buf.len().min(H2_PREFACE.len());
    if n >= 4 && buf[..n] == H2_PREFACE[..n] {
        return Step::Hyper;
    }
    let parsed = if buf[(*seen).min(buf.len())..].contains(&b'\n') {
        parse(buf, max_head)
    } else if buf.len() >= max_head {
        Parsed::Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    } else {
        Parsed::Partial
    };
    match parsed {
        Parsed::Complete(h) => {
            *seen = 0;
            Step::Head(h)
        }
        Parsed::Refuse(status) => Step::Refuse(status),
        Parsed::Partial => {
            *seen = buf.len();
            Step::More
        }
    }
}

/// Parses the head at the start of `buf`; on success it is taken out of `buf`.
fn parse(buf: &mut BytesMut, max_head: usize) -> Parsed {
    let mut slots: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS] = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) if n <= max_head => n,
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => return Parsed::Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Ok(httparse::Status::Partial) if buf.len() < max_head => return Parsed::Partial,
        Ok(httparse::Status::Partial) => return Parsed::Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(_) => return Parsed::Refuse(StatusCode::BAD_REQUEST),
    };
    // Where each piece lies in `buf`, so the values can be slices of one shared buffer.
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize - base, s.len());
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Parsed::Refuse(StatusCode::BAD_REQUEST);
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Refuse(StatusCode::BAD_REQUEST);
    };
    let version = if minor == 1 { Version::HTTP_11 } else { Version::HTTP_10 };
    let wants = wants(version, &method, req.headers);
    let path = at(path.as_bytes());
    let mut spans: Vec<(HeaderName, (usize, usize))> = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            return Parsed::Refuse(StatusCode::BAD_REQUEST);
        };
        spans.push((name, at(h.value)));
    }
    let head = buf.split_to(len).freeze();
    let slice = |(start, n): (usize, usize)| head.slice(start..start + n);
    let Ok(uri) = Uri::from_maybe_shared(slice(path)) else {
        return Parsed::Refuse(StatusCode::BAD_REQUEST);
    };
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name, span) in spans {
        let Ok(value) = HeaderValue::from_maybe_shared(slice(span)) else {
            return Parsed::Refuse(StatusCode::BAD_REQUEST);
        };
        headers.append(name, value);
    }
    Parsed::Complete(Head { method, uri, version, headers, raw: head, wants })
}

/// What the header lines ask of the connection, from the raw lines (cheaper than looking
/// each name up again in the map).
fn wants(version: Version, method: &Method, lines: &[httparse::Header<'_>]) -> Wants {
    let mut hyper = *method == Method::CONNECT;
    let (mut close, mut keep_alive) = (false, false);
    for h in lines {
        let name = h.name.as_bytes();
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        if is(b"content-length") {
            hyper |= h.value != b"0";
        } else if is(b"transfer-encoding") || is(b"expect") || is(b"upgrade") {
            hyper = true;
        } else if is(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let close = close || version == Version::HTTP_10 && !keep_alive;
    Wants { hyper, close }
}

/// Answers a head that cannot be served with `status`, counted like any response; the
/// connection closes after it.
async fn refuse<I: AsyncWrite + SendFiles + Unpin>(io: &mut I, svc: &Guarded, status: StatusCode) -> io::Result<()> {
    svc.metrics().response(status.as_u16());
    let body = Bytes::from(format!("{}\n", status.canonical_reason().unwrap_or("refused")));
    let body_len = body.len();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    write_response(io, res, None, Version::HTTP_11, false, true, &mut Out::default()).await.map(|_| ())
}

/// Where a response is put together before it is written: the head's bytes and the body's
/// chunks. One per connection, emptied after each response and kept (no allocation per
/// response once the first has sized them).
#[derive(Default)]
pub(crate) struct Out {
    head: Vec<u8>,
    bufs: Vec<Bytes>,
}

/// Writes `res`, with `lines` after its status line when its headers come prebuilt
/// ([`WireHead`]: they hold `Content-Length` and none of the lines this loop sets or drops
/// itself); returns whether the connection is to close after it.
async fn write_response<I, B>(io: &mut I, res: Response<B>, lines: Option<&WireHead>, version: Version, is_head: bool, mut close: bool, out: &mut Out) -> io::Result<bool>
where
    I: AsyncWrite + SendFiles + Unpin,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, mut body) = res.into_parts();
    let status = parts.status;
    let headers = parts.headers;
    // No body at all for these (RFC 9110 §6.4.1); hyper leaves out their Content-Length too.
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    // What the handler's headers say about framing and the connection, in one pass over them
    // (cheaper than looking each name up in the map).
    let (mut has_length, mut has_connection, mut dated) = (lines.is_some(), false, false);
    for (name, value) in &headers {
        if name == header::CONTENT_LENGTH {
            has_length = true;
        } else if name == header::CONNECTION {
            has_connection = true;
            close |= value.as_bytes().eq_ignore_ascii_case(b"close");
        } else if name == header::DATE {
            dated = true;
        }
    }
    let length = !bodiless && !is_head && !has_length;
    // Unknown length: chunked for HTTP/1.1, else the end of the connection ends the body.
    let chunked = length && version == Version::HTTP_11;
    if length && !chunked {
        close = true;
    }
    let keep_alive = !close && version == Version::HTTP_10;
    // Lines the map has that this answer replaces or must not send: framing of a bodiless
    // answer, a `Transfer-Encoding` where chunked is set here, `Connection` where HTTP/1.0
    // keep-alive is.
    let dropped = |name: &HeaderName| {
        (bodiless && (name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING))
            || (chunked && name == header::TRANSFER_ENCODING)
            || (keep_alive && name == header::CONNECTION)
    };
    let Out { head, bufs } = out;
    head.clear();
    bufs.clear();
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    if let Some(lines) = lines {
        head.extend_from_slice(&lines.0);
    }
    header_lines(&headers, head, dropped);
    if chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close && version == Version::HTTP_11 && !has_connection {
        head.extend_from_slice(b"connection: close\r\n");
    } else if keep_alive {
        head.extend_from_slice(b"connection: keep-alive\r\n");
    }
    if !dated {
        head.extend_from_slice(b"date: ");
        date(|d| head.extend_from_slice(d));
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut head_sent = 0;
    // A body of file ranges the socket can take itself: sent from the page cache, the body
    // dropped unread (it would have read the same ranges).
    let send = parts.extensions.get::<SendFile>().filter(|s| io.sends_files() && status == StatusCode::OK && !bodiless && !is_head && !chunked && body.size_hint().exact() == Some(s.0.len));
    if let Some(send) = send {
        send_file(io, head, &mut head_sent, bufs, &send.0).await?;
    } else if !bodiless && !is_head {
        let mut gathered = 0usize;
        loop {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(f)) => f,
                // A body that fails mid-way cannot be finished: cut the connection, so the
                // client sees a short response rather than a wrong one.
                Some(Err(e)) => return Err(io::Error::other(e.into())),
            };
            let Ok(data) = frame.into_data() else { continue };
            if data.is_empty() {
                continue;
            }
            gathered += data.len();
            if chunked {
                bufs.push(Bytes::from(format!("{:x}\r\n", data.len())));
                bufs.push(data);
                bufs.push(Bytes::from_static(b"\r\n"));
            } else {
                bufs.push(data);
            }
            if gathered >= GATHER || bufs.len() + 4 > MAX_SLICES {
                write_all(io, head, &mut head_sent, bufs).await?;
                gathered = 0;
            }
        }
        if chunked {
            bufs.push(Bytes::from_static(b"0\r\n\r\n"));
        }
    }
    write_all(io, head, &mut head_sent, bufs).await?;
    io.flush().await?;
    // The body (and with it the request's accounting) goes now that it is sent.
    drop(body);
    Ok(close)
}

/// A connection that may take ranges of a local file itself (plain TCP: `sendfile`).
pub(crate) trait SendFiles {
    /// Whether it can.
    fn sends_files(&self) -> bool {
        false
    }
    /// One send of up to `len` bytes at `offset` of `file`; `Ready(Ok(0))` at its end.
    fn poll_send_file(&mut self, _cx: &mut std::task::Context<'_>, _file: &LocalFile, _offset: u64, _len: usize) -> std::task::Poll<io::Result<usize>> {
        std::task::Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }
}

impl SendFiles for tokio::net::TcpStream {
    fn sends_files(&self) -> bool {
        true
    }

    fn poll_send_file(&mut self, cx: &mut std::task::Context<'_>, file: &LocalFile, offset: u64, len: usize) -> std::task::Poll<io::Result<usize>> {
        use std::os::fd::AsFd;
        use std::task::Poll;
        loop {
            std::task::ready!(self.poll_write_ready(cx))?;
            // `try_io` clears the readiness on `WouldBlock`: the next poll waits again.
            match self.try_io(tokio::io::Interest::WRITABLE, || file.send_to(self.as_fd(), offset, len)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }
}

impl<I> SendFiles for tokio_rustls::server::TlsStream<I> {}
impl SendFiles for tokio::io::DuplexStream {}

/// Most bytes one `sendfile` is asked for (Linux sends at most this much per call anyway).
const MAX_SEND: u64 = 0x7fff_f000;

/// Writes what is left of `head`, then `send`'s parts: our boxes gathered with it into one
/// `writev`, each file range with `sendfile` once the page cache holds all of it (a range
/// that is not held is read in on the blocking pool first, so the runtime thread never waits
/// for the disk). A file that ends before a range does (truncated in place while sent) is an
/// error: the connection is cut, never finished with other bytes.
async fn send_file<I: AsyncWrite + SendFiles + Unpin>(io: &mut I, head: &[u8], sent: &mut usize, bufs: &mut Vec<Bytes>, send: &FileSend) -> io::Result<()> {
    for part in &send.parts {
        match part {
            FilePart::Ours(b) => bufs.push(b.clone()),
            FilePart::Source(r) => {
                write_all(io, head, sent, bufs).await?;
                if !send.file.resident(r.clone()) {
                    send.file.warm(r.clone()).await.map_err(io::Error::other)?;
                }
                let mut at = r.start;
                while at < r.end {
                    let len = (r.end - at).min(MAX_SEND) as usize;
                    let n = std::future::poll_fn(|cx| io.poll_send_file(cx, &send.file, at, len)).await?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} ended at {at}, before the range sent from it", send.file.path())));
                    }
                    at += n as u64;
                }
            }
        }
    }
    write_all(io, head, sent, bufs).await
}

/// Appends `headers` to `out` as HTTP/1.1 lines, leaving out those `dropped` names.
pub(crate) fn header_lines(headers: &HeaderMap, out: &mut Vec<u8>, dropped: impl Fn(&HeaderName) -> bool) {
    for (name, value) in headers {
        if dropped(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes what is left of `head` (from `*sent` on) and then every byte of `bufs` with as few
/// `writev` calls as the socket allows, then empties `bufs` (the head stays, marked sent). The
/// slices of each call are gathered on the stack.
async fn write_all<I: AsyncWrite + Unpin>(io: &mut I, head: &[u8], sent: &mut usize, bufs: &mut Vec<Bytes>) -> io::Result<()> {
    let mut first = 0;
    loop {
        let rest = &head[(*sent).min(head.len())..];
        if rest.is_empty() && first >= bufs.len() {
            break;
        }
        // A small answer (head and a body chunk or two) fills a few slices: filling 64 empty
        // ones first cost more than the rest of the gathering (callgrind).
        let n = if bufs.len() - first < FEW_SLICES {
            writev_some::<_, FEW_SLICES>(io, rest, &bufs[first..]).await?
        } else {
            writev_some::<_, MAX_SLICES>(io, rest, &bufs[first..]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = rest.len().min(n);
        *sent += from_head;
        let mut left = n - from_head;
        while left > 0 {
            let b = &mut bufs[first];
            if left >= b.len() {
                left -= b.len();
                first += 1;
            } else {
                let _ = b.split_to(left);
                left = 0;
            }
        }
        while first < bufs.len() && bufs[first].is_empty() {
            first += 1;
        }
    }
    bufs.clear();
    Ok(())
}

/// One `writev` of `rest` and then of as many of `bufs` as `N` slices hold, the slices on the
/// stack; the bytes written.
async fn writev_some<I: AsyncWrite + Unpin, const N: usize>(io: &mut I, rest: &[u8], bufs: &[Bytes]) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); N];
    let mut k = 0;
    if !rest.is_empty() {
        slices[0] = IoSlice::new(rest);
        k = 1;
    }
    for b in bufs {
        if k == N {
            break;
        }
        slices[k] = IoSlice::new(b);
        k += 1;
    }
    io.write_vectored(&slices[..k]).await
}

/// Gives `f` the current `Date` value, formatted once a second per thread.
fn date(f: impl FnOnce(&[u8])) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHED: RefCell<(u64, HeaderValue)> = const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, crate::respond::http_date(now));
        }
        f(c.1.as_bytes())
    })
}

/// Feeds arbitrary bytes to the head reader in pieces (the first byte picks their size) and
/// checks it against one parse of the whole input (fuzz entry point:
/// `fuzz/fuzz_targets/http1.rs`, replayed by `tests/fuzz_replay.rs`): never a panic; a head
/// found in pieces is the head found whole, and what follows it stays in the buffer; a head is
/// never longer than the limit nor has more than `MAX_HEADERS` lines; a refusal in pieces is a
/// refusal whole.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let Some((&piece, data)) = data.split_first() else { return };
    let piece = usize::from(piece % 64) + 1;
    for max_head in [64, 1024] {
        let mut whole = BytesMut::from(data);
        let once = step(&mut whole, &mut 0, max_head);
        let mut buf = BytesMut::new();
        let mut seen = 0;
        let mut fed = 0;
        let found = loop {
            if fed == data.len() {
                break Step::More;
            }
            let end = (fed + piece).min(data.len());
            buf.extend_from_slice(&data[fed..end]);
            fed = end;
            match step(&mut buf, &mut seen, max_head) {
                Step::More => continue,
                other => break other,
            }
        };
        if let Step::More = found {
            assert!(buf.len() < max_head, "an undecided head is held only under the limit");
        }
        match (&found, &once) {
            (Step::Head(a), Step::Head(b)) => {
                assert_eq!(a.raw, b.raw, "the same head in pieces and whole");
                assert!(a.raw.len() <= max_head && a.headers.len() <= MAX_HEADERS);
                assert_eq!((&a.method, &a.uri, a.version, &a.headers), (&b.method, &b.uri, b.version, &b.headers));
                assert_eq!([&a.raw[..], &buf[..]].concat(), data[..fed], "nothing lost or added");
                assert_eq!(&whole[..], &data[a.raw.len()..]);
            }
            // A 431 in pieces can come from the length alone before the line that the whole
            // input refuses for another reason.
            (Step::Refuse(a), Step::Refuse(b)) => assert!(a == b || *a == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "{a} in pieces, {b} whole"),
            (Step::Hyper, Step::Hyper) | (Step::More, Step::More) => {}
            // Four bytes of the HTTP/2 preface are enough to hand over; hyper tells the rest.
            (Step::Hyper, _) if data.starts_with(b"PRI ") => {}
            // Pieces wait for a line's end before they parse again: bytes after the last one
            // that the whole input refuses may still be waiting in pieces (bounded below).
            (Step::More, Step::Refuse(_)) => {}
            _ => panic!("pieces and whole disagree on {data:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &[u8]) -> Parsed {
        parse(&mut BytesMut::from(raw), 64 * 1024)
    }

    #[test]
    fn heads_parse_into_shared_slices() {
        let mut buf = BytesMut::from(&b"GET /a/b.mpd?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing: v1\r\nx-thing: v2\r\n\r\nGET /next"[..]);
        let Parsed::Complete(h) = parse(&mut buf, 1024) else { panic!("not parsed") };
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri.path(), "/a/b.mpd");
        assert_eq!(h.uri.query(), Some("x=1"));
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.headers.get_all("x-thing").iter().collect::<Vec<_>>(), ["v1", "v2"]);
        assert_eq!(&buf[..], b"GET /next", "the rest stays for the next request");
    }

    #[test]
    fn bad_and_oversized_heads_are_refused() {
        assert!(matches!(parsed(b"GET /a HTTP/1.1\r\nHo st: h\r\n\r\n"), Parsed::Refuse(StatusCode::BAD_REQUEST)));
        assert!(matches!(parsed(b"GET /a HTTP/3.0\r\n\r\n"), Parsed::Refuse(StatusCode::BAD_REQUEST)));
        assert!(matches!(parsed(b"GET /a HTTP/1.1\r\nHost: h\r\n"), Parsed::Partial));
        let many: Vec<u8> = [&b"GET / HTTP/1.1\r\n"[..], &b"a: b\r\n".repeat(MAX_HEADERS + 1), b"\r\n"].concat();
        assert!(matches!(parsed(&many), Parsed::Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)));
        let long: Vec<u8> = [&b"GET / HTTP/1.1\r\nx: "[..], &vec![b'a'; 2000], b"\r\n"].concat();
        assert!(matches!(parse(&mut BytesMut::from(&long[..]), 1024), Parsed::Refuse(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)));
    }

    #[test]
    fn bodies_upgrades_and_expectations_go_to_hyper_and_keep_alive_follows_the_version() {
        let w = |raw: &[u8]| match parsed(raw) {
            Parsed::Complete(h) => h.wants,
            _ => panic!("not parsed"),
        };
        assert!(!w(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").hyper);
        assert!(w(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").hyper);
        assert!(w(b"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\n").hyper);
        assert!(w(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").hyper);
        assert!(w(b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n").hyper);
        assert!(w(b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").hyper);
        assert!(!w(b"GET / HTTP/1.1\r\n\r\n").close);
        assert!(w(b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").close);
        assert!(w(b"GET / HTTP/1.0\r\n\r\n").close);
        assert!(!w(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").close);
    }
}

#[cfg(test)]
mod writes {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// What `write_response` puts on the wire for a body of unknown length, and whether it
    /// closes after.
    async fn wire(version: Version) -> (String, bool) {
        let frames = futures::stream::iter([Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(b"hello "))), Ok(http_body::Frame::data(Bytes::from_static(b"world")))]);
        let res = Response::new(http_body_util::StreamBody::new(frames));
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let close = write_response(&mut a, res, None, version, false, false, &mut Out::default()).await.unwrap();
        drop(a);
        let mut out = String::new();
        b.read_to_string(&mut out).await.unwrap();
        (out, close)
    }

    /// A socket that takes a few bytes at a time: the head and the body are written whole and
    /// in order whatever each `writev` takes, and the connection's buffers are reused empty.
    #[tokio::test]
    async fn short_writes_lose_nothing_and_the_buffers_are_reused() {
        let (mut a, mut b) = tokio::io::duplex(7);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut out = Out::default();
        for body in ["first body, in one piece", "second"] {
            let mut res = Response::new(http_body_util::Full::new(Bytes::from_static(body.as_bytes())));
            res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            assert!(!write_response(&mut a, res, None, Version::HTTP_11, false, false, &mut out).await.unwrap());
            assert!(out.bufs.is_empty(), "no body chunk is kept after its response");
        }
        drop(a);
        let got = String::from_utf8(reader.await.unwrap()).unwrap();
        let answers: Vec<&str> = got.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
        assert_eq!(answers.len(), 2, "{got}");
        assert!(answers[0].starts_with("content-length: 24\r\ndate: ") && answers[0].ends_with("\r\n\r\nfirst body, in one piece"), "{got}");
        assert!(answers[1].starts_with("content-length: 6\r\ndate: ") && answers[1].ends_with("\r\n\r\nsecond"), "{got}");
    }

    /// A response whose headers come as prebuilt lines goes on the wire as the same response
    /// with them in its map, for every version and keep-alive choice, `HEAD` included.
    #[tokio::test]
    async fn prebuilt_lines_are_written_as_the_map_would_be() {
        let mut map = HeaderMap::new();
        map.insert(header::ETAG, HeaderValue::from_static("\"e\""));
        map.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=2"));
        map.insert(header::CONTENT_LENGTH, HeaderValue::from(5u64));
        let mut lines = Vec::new();
        header_lines(&map, &mut lines, |_| false);
        for (version, is_head, close) in [(Version::HTTP_11, false, false), (Version::HTTP_11, true, true), (Version::HTTP_10, false, false), (Version::HTTP_10, false, true)] {
            let mut sent = Vec::new();
            for prebuilt in [false, true] {
                let mut res = Response::new(http_body_util::Full::new(Bytes::from_static(b"hello")));
                let wire = prebuilt.then(|| WireHead(Bytes::from(lines.clone())));
                if !prebuilt {
                    *res.headers_mut() = map.clone();
                }
                let (mut a, mut b) = tokio::io::duplex(1 << 16);
                let closes = write_response(&mut a, res, wire.as_ref(), version, is_head, close, &mut Out::default()).await.unwrap();
                drop(a);
                let mut out = String::new();
                b.read_to_string(&mut out).await.unwrap();
                // The Date line may tick between the two.
                let out: Vec<&str> = out.split("\r\n").filter(|l| !l.starts_with("date: ")).collect();
                sent.push((out.join("\r\n"), closes));
            }
            assert_eq!(sent[0], sent[1], "{version:?} HEAD {is_head} close {close}");
            assert!(sent[1].0.contains("\r\netag: \"e\"\r\n"), "{}", sent[1].0);
        }
    }

    #[tokio::test]
    async fn bodies_of_unknown_length_are_chunked_or_end_with_the_connection() {
        let (out, close) = wire(Version::HTTP_11).await;
        assert!(!close);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ndate: "), "{out}");
        assert!(out.ends_with("\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"), "{out}");
        let (out, close) = wire(Version::HTTP_10).await;
        assert!(close, "HTTP/1.0 has no chunks: the end of the connection ends the body");
        assert!(!out.contains("transfer-encoding") && out.ends_with("\r\n\r\nhello world"), "{out}");
    }

    /// A body of file ranges goes out whole, our boxes around it; a file cut short while it
    /// is sent (truncated in place) cuts the response: an error, and the client gets fewer
    /// bytes than the `Content-Length`, never other ones.
    #[tokio::test]
    async fn file_ranges_are_sent_whole_and_a_file_cut_short_cuts_the_response() {
        use std::sync::Arc;
        let dir = std::env::temp_dir().join(format!("sealcast-h1-sendfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 4099) as u8).collect();
        std::fs::write(dir.join("seg.bin"), &data).unwrap();
        let store = sealcast_storage::Store::local(&dir).unwrap();
        let info = store.head("seg.bin").await.unwrap();
        let Some(file) = store.open_local(&info).await.unwrap() else {
            assert!(!sealcast_storage::files_offered(), "a local clear file is offered where the kernel can tell what is cached");
            return;
        };
        let parts = vec![FilePart::Ours(Bytes::from_static(b"head")), FilePart::Source(10..(2 << 20) + 5), FilePart::Ours(Bytes::from_static(b"mid")), FilePart::Source((2 << 20) + 5..3 << 20)];
        let send = Arc::new(FileSend::new(file, parts));
        let want: Vec<u8> = [&b"head"[..], &data[10..(2 << 20) + 5], b"mid", &data[(2 << 20) + 5..]].concat();
        assert_eq!(send.len, want.len() as u64);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        for cut in [false, true] {
            if cut {
                std::fs::OpenOptions::new().write(true).open(dir.join("seg.bin")).unwrap().set_len(1 << 20).unwrap();
            }
            let client = tokio::spawn(async move {
                let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
                let mut got = Vec::new();
                let _ = c.read_to_end(&mut got).await;
                got
            });
            let (mut server, _) = l.accept().await.unwrap();
            let mut res = Response::new(crate::body::FileBody::new(send.clone()));
            res.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(send.len));
            res.extensions_mut().insert(SendFile(send.clone()));
            let r = write_response(&mut server, res, None, Version::HTTP_11, false, true, &mut Out::default()).await;
            drop(server);
            let got = client.await.unwrap();
            let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            if cut {
                assert!(r.is_err(), "a file cut short must fail the response");
                assert!(got.len() - split < want.len() && got[split..] == want[..got.len() - split], "cut short, and only the right bytes before the cut");
            } else {
                assert!(r.unwrap(), "asked to close");
                assert!(got[split..] == want[..], "sent from the file differs");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
