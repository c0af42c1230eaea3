//! Progressive download: a track file of the asset served as a file, whole or by `Range`
//! (RFC 9110 §14), with an `ETag` from the file's identity (the same under the clean and the
//! Azure Media Services URL, so caches share it). Storage-encrypted files leave decrypted:
//! the store decrypts whatever range is read (AES-CTR is random access), and only a policy
//! naming `ProgressiveDownload` lets a file out ([`crate::decide`]).
//!
//! Bytes are streamed from storage in reads of [`CHUNK`]: a download of a two-hour file must
//! not hold the file in memory. The first read is made before the response starts, so a
//! missing or changed file is an HTTP error rather than a cut body.

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};

use super::{Ctx, Reply};
use crate::assets::Loaded;
use crate::error::ApiError;
use crate::respond::{etag, http_date, matches_any, parse_range, RangeReq};

/// Bytes per storage read of a download.
const CHUNK: u64 = 4 << 20;

/// `GET /{asset}/{name}`: track file `name` of `loaded`.
pub async fn file(ctx: &Ctx<'_>, loaded: &Loaded, name: &str) -> Result<Reply, ApiError> {
    let info = loaded.files.get(name).ok_or_else(|| ApiError::NotFound(format!("file '{name}' of asset '{}'", loaded.path)))?.clone();
    let tag = etag(&info.identity(), "download");
    let tag_str = tag.to_str().unwrap_or_default().to_string();
    let modified = http_date(info.last_modified);
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let content_type = if matches!(ext.as_str(), "m4a" | "cmfa" | "isma") { "audio/mp4" } else { "video/mp4" };
    let head = |status: StatusCode| {
        let mut b = http::Response::builder().status(status);
        let h = b.headers_mut().expect("builder has no error yet");
        h.insert(header::ETAG, tag.clone());
        h.insert(header::LAST_MODIFIED, modified.clone());
        h.insert(header::CACHE_CONTROL, ctx.st.seg_cc.clone());
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        b
    };
    let header_str = |n: header::HeaderName| ctx.headers.get(n).and_then(|v| v.to_str().ok());
    if header_str(header::IF_NONE_MATCH).is_some_and(|v| matches_any(v, &tag_str)) {
        return Ok(Reply::Response(head(StatusCode::NOT_MODIFIED).body(Body::empty()).expect("valid response")));
    }
    let len = info.size;
    let if_range_ok = header_str(header::IF_RANGE).is_none_or(|v| v.trim() == tag_str || v.trim() == modified.to_str().unwrap_or_default());
    let range = match header_str(header::RANGE) {
        Some(r) if if_range_ok => parse_range(r, len),
        _ => RangeReq::Full,
    };
    let (status, start, end) = match range {
        RangeReq::Full => (StatusCode::OK, 0, len),
        RangeReq::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e),
        RangeReq::Unsatisfiable => {
            let r = head(StatusCode::RANGE_NOT_SATISFIABLE).header(header::CONTENT_RANGE, format!("bytes */{len}")).body(Body::empty()).expect("valid response");
            return Ok(Reply::Response(r));
        }
    };
    let mut b = head(status).header(header::CONTENT_TYPE, content_type).header(header::CONTENT_LENGTH, end - start);
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(header::CONTENT_RANGE, format!("bytes {start}-{}/{len}", end - 1));
    }
    if ctx.method == Method::HEAD || start == end {
        return Ok(Reply::Response(b.body(Body::empty()).expect("valid response")));
    }
    let store = ctx.st.assets.store().clone();
    let first_end = end.min(start.saturating_add(CHUNK));
    let first = store.read_version(&info, start..first_end).await.map_err(ApiError::from)?;
    let rest = futures::stream::try_unfold(first_end, move |pos| {
        let (store, info) = (store.clone(), info.clone());
        async move {
            if pos >= end {
                return Ok(None);
            }
            let next = end.min(pos.saturating_add(CHUNK));
            let bytes = store.read_version(&info, pos..next).await?;
            Ok::<_, sealcast_storage::Error>(Some((bytes, next)))
        }
    });
    let body = futures::StreamExt::chain(futures::stream::once(async move { Ok::<Bytes, sealcast_storage::Error>(first) }), rest);
    Ok(Reply::Response(b.body(Body::from_stream(body)).expect("valid response")))
}
