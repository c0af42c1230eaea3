//! HTTP semantics shared by every media response: ETag and `If-None-Match`, `Range` and
//! `If-Range`, `HEAD`, `Last-Modified`, `Cache-Control`.

use std::sync::OnceLock;
use std::time::SystemTime;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::body::{slice_chunks, ChunkBody};

/// A complete representation to send.
pub struct Representation {
    /// Body chunks.
    pub parts: Vec<Bytes>,
    /// Or a body made as it is sent, and its size (then `parts` is empty): answered whole, as
    /// RFC 9110 14.2 lets a server ignore `Range` (its makers serve ranges from `parts`).
    pub made: Option<(u64, Body)>,
    /// Content-Type.
    pub content_type: &'static str,
    /// Strong entity tag, quoted (see [`etag`]).
    pub etag: HeaderValue,
    /// Source modification time, as an HTTP date (see [`http_date`]).
    pub last_modified: HeaderValue,
    /// Cache-Control value.
    pub cache_control: HeaderValue,
}

/// A cached manifest: its body, its ETag and, once it has been answered in full, that answer's
/// headers, cloned for every plain `GET` or `HEAD` after it. A cached manifest is the most
/// frequent small response; building its eight headers one insert at a time (each hashed and
/// probed) was a sixth of its instructions (benches/README.md).
pub struct Cached {
    /// Body.
    pub body: Bytes,
    /// Strong ETag, quoted.
    pub etag: HeaderValue,
    /// The headers of the full `200` and what they were made for: a caller passing another
    /// content type, `Last-Modified` or `Cache-Control` gets its answer built anew, never
    /// headers made for other values.
    full: OnceLock<Full>,
}

/// The full `200` of a [`Cached`] manifest, made once.
struct Full {
    content_type: &'static str,
    last_modified: HeaderValue,
    cache_control: HeaderValue,
    headers: HeaderMap,
    /// The same headers as HTTP/1.1 lines, when they can stand for the whole map there.
    wire: Option<WireHead>,
}

/// A response's header lines as the HTTP/1.1 loop writes them (`name: value\r\n` each), made
/// once for a cached answer and shared by every response of it: the loop copies them after
/// the status line, where cloning the header map (two allocations and a clone per line) and
/// writing it out line by line were a fifth of a cached manifest's instructions beside
/// `/healthz` (benches/README.md).
///
/// It travels beside its response in an [`Answer`], whose map is then empty: only the loop
/// that asks for lines ([`Wire::Lines`]) gets them, so hyper and the in-process router see
/// every header in the map as always. (Not a response extension: the extension map's three
/// allocations cost a third of what the lines save.) It never holds a line the loop sets or
/// drops itself (`Connection`, `Date`, `Transfer-Encoding`), and it holds `Content-Length`:
/// the loop's framing rules need nothing from the map.
#[derive(Clone)]
pub struct WireHead(pub(crate) Bytes);

/// A response as the request path hands it to its connection: for [`Wire::Lines`], a cached
/// answer's headers may come as `lines`, its map then empty. A response replaced on the way
/// (an error, a refusal over budget) is a new `Answer` without lines.
pub struct Answer<B = Body> {
    /// Status, body and the headers not in `lines`.
    pub response: http::Response<B>,
    /// The rest of the headers, prebuilt.
    pub lines: Option<WireHead>,
}

impl<B> From<http::Response<B>> for Answer<B> {
    fn from(response: http::Response<B>) -> Self {
        Answer { response, lines: None }
    }
}

impl WireHead {
    /// `headers` as lines, or `None` when they hold a line the loop would set or drop itself,
    /// or no `Content-Length`.
    fn of(headers: &HeaderMap) -> Option<WireHead> {
        let own = [header::CONNECTION, header::DATE, header::TRANSFER_ENCODING];
        if !headers.contains_key(header::CONTENT_LENGTH) || own.iter().any(|n| headers.contains_key(n)) {
            return None;
        }
        let mut lines = Vec::with_capacity(512);
        crate::h1::header_lines(headers, &mut lines, |_| false);
        Some(WireHead(Bytes::from(lines)))
    }
}

/// How the caller wants a cached answer's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// In the response's header map (hyper, the in-process router).
    Map,
    /// As a [`WireHead`]: the HTTP/1.1 loop ([`crate::h1`]), which writes them as they are.
    Lines,
    /// As for [`Wire::Lines`], over a plain TCP socket, which can also take ranges of a local
    /// file the way they lie in the page cache ([`crate::body::SendFile`]).
    Files,
}

impl Wire {
    /// Whether a cached answer's headers may come as lines.
    pub fn lines(self) -> bool {
        matches!(self, Wire::Lines | Wire::Files)
    }
}

impl Cached {
    /// `body` with its ETag.
    pub fn new(body: Bytes, etag: HeaderValue) -> Cached {
        Cached { body, etag, full: OnceLock::new() }
    }

    /// The `200` with the whole body (or none, for `HEAD`) when the request asks for nothing
    /// else: no `If-None-Match`, no `Range` (so no `If-Range` either). Its headers are those
    /// [`respond`] gives, with CORS ([`crate::server::cors`]), in its map or, for
    /// [`Wire::Lines`], as a [`WireHead`]. `None`: answer with [`respond`].
    pub fn full_answer(&self, method: &Method, headers: &HeaderMap, content_type: &'static str, last_modified: &HeaderValue, cache_control: &HeaderValue, wire: Wire) -> Option<Answer> {
        if has_any(headers, &[header::IF_NONE_MATCH, header::RANGE]) {
            return None;
        }
        let full = self.full.get_or_init(|| {
            let rep = Representation { parts: vec![self.body.clone()], made: None, content_type, etag: self.etag.clone(), last_modified: last_modified.clone(), cache_control: cache_control.clone() };
            let mut head = respond(&Method::GET, &HeaderMap::new(), rep).into_parts().0.headers;
            crate::server::cors(&mut head);
            Full { content_type, last_modified: last_modified.clone(), cache_control: cache_control.clone(), wire: WireHead::of(&head), headers: head }
        });
        // The values are clones of the ones the headers were made from (the asset's and the
        // configuration's) until either changes: the same bytes, nothing to compare.
        let same = |a: &HeaderValue, b: &HeaderValue| std::ptr::eq(a.as_bytes(), b.as_bytes()) || a == b;
        if full.content_type != content_type || !same(&full.last_modified, last_modified) || !same(&full.cache_control, cache_control) {
            return None;
        }
        let body = if method == Method::HEAD { Body::empty() } else { Body::from(self.body.clone()) };
        let mut response = Response::new(body);
        match (&full.wire, wire.lines()) {
            (Some(lines), true) => Some(Answer { response, lines: Some(lines.clone()) }),
            _ => {
                *response.headers_mut() = full.headers.clone();
                Some(response.into())
            }
        }
    }
}

/// Whether a request's `headers` hold any of `names`. A player's request carries a handful of
/// headers: comparing each one's name with the few asked for is cheaper than hashing and
/// probing for each name (callgrind: ~20 instructions for a one-line request against ~250 for
/// two lookups); a longer map is probed instead.
fn has_any(headers: &HeaderMap, names: &[header::HeaderName]) -> bool {
    if headers.keys_len() > 8 {
        return names.iter().any(|n| headers.contains_key(n));
    }
    headers.keys().any(|k| names.contains(k))
}

/// Builds a strong ETag from the source identity and what was asked of it (the request
/// path, or for manifests the manifest kind, so every URL form of one manifest shares it).
pub fn etag(identity: &str, request: &str) -> HeaderValue {
    let h = xxhash_rust::xxh3::xxh3_128(format!("sealcast/1\n{identity}\n{request}").as_bytes());
    HeaderValue::from_str(&format!("\"{h:032x}\"")).expect("quoted hex is a valid header value")
}

/// An HTTP date header value.
/// HTTP dates have four-digit years: a file time past 9999-12-31T23:59:59Z (a bad clock, a
/// hostile store) is sent as that last second rather than panicking the formatter.
pub fn http_date(t: SystemTime) -> HeaderValue {
    const LAST: u64 = 253_402_300_799;
    let t = t.min(std::time::UNIX_EPOCH + std::time::Duration::from_secs(LAST));
    HeaderValue::from_str(&httpdate::fmt_http_date(t)).expect("an HTTP date is a valid header value")
}

/// Whether an `If-None-Match` list names `etag` (or is `*`).
pub(crate) fn matches_any(list: &str, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    list.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == bare)
}

/// A single byte range resolved against a length.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeReq {
    /// No usable Range header: send everything.
    Full,
    /// `start..end` (end exclusive).
    Part(u64, u64),
    /// Cannot be satisfied.
    Unsatisfiable,
}

/// Parses a `Range` header for a body of `len` bytes. Multiple ranges are answered with the
/// whole body (allowed by RFC 9110 §14.2) since players never ask for them.
pub fn parse_range(v: &str, len: u64) -> RangeReq {
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return RangeReq::Full };
    if spec.contains(',') {
        return RangeReq::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeReq::Full };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeReq::Unsatisfiable,
            Ok(n) => Some((len.saturating_sub(n), len)),
            Err(_) => None,
        },
        (false, _) => match (a.parse::<u64>(), if b.is_empty() { Ok(u64::MAX) } else { b.parse::<u64>() }) {
            (Ok(s), Ok(e)) if s <= e => {
                if s >= len {
                    return RangeReq::Unsatisfiable;
                }
                Some((s, e.saturating_add(1).min(len)))
            }
            _ => None,
        },
        _ => None,
    };
    match parsed {
        Some((s, e)) if s < e => RangeReq::Part(s, e),
        Some(_) => RangeReq::Unsatisfiable,
        None => RangeReq::Full,
    }
}

/// Answers `method` + `headers` with `rep`, honouring conditionals and ranges.
///
/// The response is put together directly (no `http::response::Builder`, whose every header
/// goes through a fallible conversion) into a header map sized once for what it will hold:
/// this runs for every manifest and segment, and a cached manifest is little more than it.
pub fn respond(method: &Method, headers: &HeaderMap, rep: Representation) -> Response {
    let etag = rep.etag;
    let lm = rep.last_modified;
    let etag_str = etag.to_str().unwrap_or_default();
    // ETag, Last-Modified, Cache-Control, Accept-Ranges, Content-Type, Content-Length,
    // Content-Range, and room for what the layers add (CORS, request id, timing).
    let base = |status: StatusCode, body: Body| {
        let mut r = Response::new(body);
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.reserve(12);
        h.insert(header::ETAG, etag.clone());
        h.insert(header::LAST_MODIFIED, lm.clone());
        h.insert(header::CACHE_CONTROL, rep.cache_control.clone());
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        r
    };
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if matches_any(inm, etag_str) {
            return base(StatusCode::NOT_MODIFIED, Body::empty());
        }
    }
    // A made body is answered whole (RFC 9110 14.2 lets a server ignore `Range`).
    let (len, made) = match rep.made {
        Some((len, body)) => (len, Some(body)),
        None => (rep.parts.iter().map(|p| p.len() as u64).sum(), None),
    };
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag_str || v.trim() == lm.to_str().unwrap_or_default());
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_ok && made.is_none() => parse_range(r, len),
        _ => RangeReq::Full,
    };
    let (status, parts, clen, crange) = match range {
        RangeReq::Full => (StatusCode::OK, rep.parts, len, None),
        RangeReq::Part(s, e) => (StatusCode::PARTIAL_CONTENT, slice_chunks(&rep.parts, s, e), e - s, Some(format!("bytes {s}-{}/{len}", e - 1))),
        RangeReq::Unsatisfiable => {
            let mut r = base(StatusCode::RANGE_NOT_SATISFIABLE, Body::empty());
            // Invariant: "bytes */" and decimal digits are visible ASCII, always a valid value.
            r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("digits are a valid header value"));
            return r;
        }
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else if let Some(made) = made {
        made
    } else if parts.len() == 1 {
        // Manifests and init segments: one buffer, no chunk queue to allocate.
        Body::from(parts.into_iter().next().expect("checked: exactly one part"))
    } else {
        Body::new(ChunkBody::new(parts))
    };
    let mut r = base(status, body);
    let h = r.headers_mut();
    // Invariant: content types are the crate's own constants (`video/mp4`, ...), valid header
    // values; `from_static` checks them and would fail on the first request in any test.
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(rep.content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(clen));
    if let Some(cr) = crange {
        // Invariant: "bytes ", digits, '-' and '/' are visible ASCII, always a valid value.
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&cr).expect("digits are a valid header value"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_any_scans_short_maps_and_probes_long_ones_alike() {
        let names = [header::IF_NONE_MATCH, header::RANGE];
        for lines in [0usize, 1, 8, 9, 40] {
            let mut h = HeaderMap::new();
            for i in 0..lines {
                h.insert(header::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(), HeaderValue::from_static("1"));
            }
            assert!(!has_any(&h, &names), "{lines} lines");
            h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
            assert!(has_any(&h, &names), "{lines} lines and Range");
            assert!(!has_any(&h, &[header::IF_NONE_MATCH]), "{lines} lines");
        }
    }

    #[test]
    fn a_cached_answer_is_the_built_one_and_only_for_plain_requests() {
        let body = Bytes::from_static(b"<MPD/>");
        let c = Cached::new(body.clone(), etag("f|1|2|", "manifest/0"));
        let (lm, cc) = (http_date(SystemTime::UNIX_EPOCH), HeaderValue::from_static("public, max-age=5"));
        let built = |method: &Method| {
            let rep = Representation { parts: vec![body.clone()], made: None, content_type: "application/dash+xml", etag: c.etag.clone(), last_modified: lm.clone(), cache_control: cc.clone() };
            let mut r = respond(method, &HeaderMap::new(), rep);
            crate::server::cors(r.headers_mut());
            r
        };
        let plain = HeaderMap::from_iter([(header::HOST, HeaderValue::from_static("h"))]);
        for method in [Method::GET, Method::HEAD] {
            // Twice: the first builds the headers, the second clones them.
            for _ in 0..2 {
                let want = built(&method);
                let a = c.full_answer(&method, &plain, "application/dash+xml", &lm, &cc, Wire::Map).expect("a plain request");
                assert!(a.lines.is_none(), "hyper and the router get every header in the map");
                let r = a.response;
                assert_eq!(r.status(), StatusCode::OK);
                assert_eq!(r.headers(), want.headers(), "{method}");
                let size = http_body::Body::size_hint(r.body()).exact();
                assert_eq!(size, Some(if method == Method::HEAD { 0 } else { body.len() as u64 }));
                // As lines: the same headers, written as the HTTP/1.1 loop writes a map.
                let a = c.full_answer(&method, &plain, "application/dash+xml", &lm, &cc, Wire::Lines).expect("a plain request");
                assert!(a.response.headers().is_empty(), "no header of its own beside its lines");
                let mut lines = Vec::new();
                crate::h1::header_lines(want.headers(), &mut lines, |_| false);
                assert_eq!(a.lines.map(|w| w.0), Some(Bytes::from(lines)), "{method}");
                assert_eq!(a.response.status(), StatusCode::OK);
                assert_eq!(http_body::Body::size_hint(a.response.body()).exact(), size);
            }
        }
        assert_eq!(built(&Method::GET).headers()[header::CONTENT_LENGTH], "6");
        for (name, value) in [(header::IF_NONE_MATCH, "\"x\""), (header::RANGE, "bytes=0-1")] {
            let asks = HeaderMap::from_iter([(name.clone(), HeaderValue::from_static(value))]);
            assert!(c.full_answer(&Method::GET, &asks, "application/dash+xml", &lm, &cc, Wire::Lines).is_none(), "{name} is answered by respond");
        }
        // Headers made for other values are not handed out for these.
        let other = HeaderValue::from_static("no-store");
        assert!(c.full_answer(&Method::GET, &plain, "application/dash+xml", &lm, &other, Wire::Lines).is_none());
        assert!(c.full_answer(&Method::GET, &plain, "application/vnd.apple.mpegurl", &lm, &cc, Wire::Lines).is_none());
        assert!(c.full_answer(&Method::GET, &plain, "application/dash+xml", &http_date(SystemTime::now()), &cc, Wire::Lines).is_none());
    }

    #[test]
    fn lines_stand_for_a_map_only_when_the_loop_needs_nothing_else_from_it() {
        let mut h = HeaderMap::new();
        h.insert(header::ETAG, HeaderValue::from_static("\"e\""));
        assert!(WireHead::of(&h).is_none(), "no Content-Length: the loop would have to frame the body");
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(3u64));
        assert_eq!(&WireHead::of(&h).expect("ETag and Content-Length").0[..], b"etag: \"e\"\r\ncontent-length: 3\r\n");
        for own in [header::CONNECTION, header::DATE, header::TRANSFER_ENCODING] {
            let mut with = h.clone();
            with.insert(own.clone(), HeaderValue::from_static("x"));
            assert!(WireHead::of(&with).is_none(), "{own} is the loop's to set or drop");
        }
    }

    #[test]
    fn dates_past_year_9999_do_not_panic() {
        let far = std::time::UNIX_EPOCH + std::time::Duration::from_secs(300_000_000_000);
        assert_eq!(http_date(far), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeReq::Part(0, 10));
        assert_eq!(parse_range("bytes=90-", 100), RangeReq::Part(90, 100));
        assert_eq!(parse_range("bytes=-10", 100), RangeReq::Part(90, 100));
        assert_eq!(parse_range("bytes=-1000", 100), RangeReq::Part(0, 100));
        assert_eq!(parse_range("bytes=95-200", 100), RangeReq::Part(95, 100));
        assert_eq!(parse_range("bytes=100-", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 100), RangeReq::Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeReq::Full);
        assert_eq!(parse_range("items=0-1", 100), RangeReq::Full);
        assert_eq!(parse_range("bytes=x-y", 100), RangeReq::Full);
    }
    #[test]
    fn etags_compare_weakly_for_none_match() {
        let e = etag("f|1|2|", "/a/b");
        let e = e.to_str().unwrap();
        assert!(matches_any(&format!("W/{e}"), e));
        assert!(matches_any(&format!("\"x\", {e}"), e));
        assert!(!matches_any("\"x\"", e));
        assert_ne!(etag("f|1|2|", "/a/b"), etag("f|1|3|", "/a/b"));
    }
}
