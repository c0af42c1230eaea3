//! The per-request path of asset URLs, in a handful of short steps:
//!
//! 1. [`crate::route::parse`] has turned the URL into a typed [`AssetRoute`], and
//!    [`crate::access`] has admitted the request (signed URL, cookie or token where the
//!    asset's access policy asks for one) — in [`crate::server`], before anything is read;
//! 2. [`crate::decide::decide`] says, from the asset's delivery policy alone, whether it is
//!    served clear, encrypted with which method, or refused — before anything is read;
//! 3. the asset is loaded (indexes from the cache, or a few ranged reads);
//! 4. a handler ([`manifest`], [`track`], [`smooth`]) reads the bytes it needs and builds a
//!    [`Reply`] with the pure crates;
//! 5. [`Ctx::answer`] turns the reply into the HTTP response (ETag, `Range`, `HEAD`,
//!    conditionals, caching).

pub mod download;
pub mod manifest;
pub mod smooth;
pub mod text;
pub mod track;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::assets::Loaded;
use crate::body::SendFile;
use crate::decide::{decide, Served};
use crate::error::ApiError;
use crate::protection::AssetCrypto;
use crate::respond::{etag, http_date, respond, Answer, Cached, Representation};
use crate::route::{AssetRoute, Resource};
use crate::server::AppState;

/// One request: the server state and what the client sent.
pub struct Ctx<'a> {
    /// Server state.
    pub st: &'a AppState,
    /// `GET` or `HEAD`.
    pub method: &'a Method,
    /// Request headers (conditionals, `Range`, `Authorization`).
    pub headers: &'a HeaderMap,
    /// The request path as sent (segment ETags derive from it).
    pub path: &'a str,
    /// The query string (a viewer's `token`).
    pub query: Option<&'a str>,
    /// A verified query credential that playlists pass on to the URLs they list
    /// ([`crate::access`]).
    pub carry: Option<crate::access::Carry>,
    /// The delivery decision, once made (for the request's metrics and log line).
    pub served: std::sync::OnceLock<Served>,
    /// How the caller takes a cached answer's headers.
    pub wire: crate::respond::Wire,
}

/// What a handler produced.
pub enum Reply {
    /// A response made whole by its handler (a progressive download streams from storage).
    Response(Response),
    /// A segment-like body (init, media segment, fragment): long cache lifetime, ETag from the
    /// source identity and the request path.
    Media {
        /// Body chunks (slices of the source read where possible).
        parts: Vec<Bytes>,
        /// Content-Type.
        content_type: &'static str,
        /// What the bytes derive from (file identities, KID), never secret.
        identity: String,
        /// Source modification time.
        modified: SystemTime,
    },
    /// [`Reply::Media`] whose body is made as it is sent ([`crate::body::PiecesBody`]), or
    /// whose samples are sent from their file ([`crate::body::FileBody`]).
    Made {
        /// The body.
        body: Body,
        /// The body as file ranges, for the connection to send itself when it can (the
        /// `200` only).
        send: Option<SendFile>,
        /// Its size.
        len: u64,
        /// Content-Type.
        content_type: &'static str,
        /// As for [`Reply::Media`].
        identity: String,
        /// Source modification time.
        modified: SystemTime,
    },
    /// A manifest with its ETag (cached with the asset, or built for this request).
    Manifest {
        /// Body and ETag.
        cached: Arc<Cached>,
        /// Content-Type.
        content_type: &'static str,
        /// The asset's `Last-Modified`.
        last_modified: HeaderValue,
    },
    /// A manifest made for one viewer (it carries their token or signed-URL credential): never
    /// stored by any cache.
    Private {
        /// Body.
        body: String,
        /// Content-Type.
        content_type: &'static str,
    },
}

/// HLS playlists.
pub const HLS_TYPE: &str = "application/vnd.apple.mpegurl";
/// Smooth client manifests.
pub const SMOOTH_TYPE: &str = "application/vnd.ms-sstr+xml";
/// DASH MPDs.
pub const DASH_TYPE: &str = "application/dash+xml";

impl Ctx<'_> {
    /// When the client's `If-None-Match` already names what `identity` produces at this path,
    /// the reply (a 304, once answered) made before any read or encryption: revalidations
    /// cost no storage read and no AES.
    pub fn unchanged(&self, identity: &str, content_type: &'static str, modified: SystemTime) -> Option<Reply> {
        let inm = self.headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
        let tag = etag(identity, self.path);
        crate::respond::matches_any(inm, tag.to_str().ok()?).then(|| Reply::Media { parts: Vec::new(), content_type, identity: identity.to_string(), modified })
    }

    /// The HTTP response of `reply`.
    pub fn answer(&self, reply: Reply) -> Answer {
        let rep = match reply {
            Reply::Response(r) => return r.into(),
            Reply::Media { parts, content_type, identity, modified } => {
                Representation { parts, made: None, content_type, etag: etag(&identity, self.path), last_modified: http_date(modified), cache_control: self.st.seg_cc.clone() }
            }
            Reply::Made { body, send, len, content_type, identity, modified } => {
                let rep = Representation { parts: Vec::new(), made: Some((len, body)), content_type, etag: etag(&identity, self.path), last_modified: http_date(modified), cache_control: self.st.seg_cc.clone() };
                let mut r = respond(self.method, self.headers, rep);
                if let Some(send) = send.filter(|_| r.status() == StatusCode::OK && self.method == Method::GET) {
                    r.extensions_mut().insert(send);
                }
                return r.into();
            }
            Reply::Manifest { cached, content_type, last_modified } => {
                let cc = &self.st.manifest_cc;
                if let Some(a) = cached.full_answer(self.method, self.headers, content_type, &last_modified, cc, self.wire) {
                    return a;
                }
                Representation { parts: vec![cached.body.clone()], made: None, content_type, etag: cached.etag.clone(), last_modified, cache_control: cc.clone() }
            }
            Reply::Private { body, content_type } => {
                let mut r = (StatusCode::OK, body).into_response();
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
                return r.into();
            }
        };
        respond(self.method, self.headers, rep).into()
    }
}

/// Answers an asset route: decide, load, build.
pub async fn asset(ctx: &Ctx<'_>, r: &AssetRoute) -> Result<Reply, ApiError> {
    let st = ctx.st;
    // Under an AMS locator the `.ism` name must be the asset's server manifest, when it has one.
    if let Some(ism) = &r.ism {
        let loaded = st.assets.get(&r.asset).await?;
        if loaded.ism_name.as_deref().is_some_and(|n| !n.eq_ignore_ascii_case(ism)) {
            return Err(ApiError::NotFound(format!("no server manifest '{ism}' under this locator")));
        }
    }
    let served = decide(&r.asset, &r.resource, st.catalog.policy(&r.asset), st.allow_clear)?;
    // The same on a retry: the first one stays.
    let _ = ctx.served.set(served.clone());
    let loaded = st.assets.get(&r.asset).await?;
    match &r.resource {
        Resource::Manifest { kind, .. } => manifest::manifest(ctx, &loaded, *kind, served),
        Resource::MediaPlaylist { track, container, .. } => track::playlist(ctx, &loaded, track, *container, served),
        Resource::Init { track, .. } => track::init(&loaded, track, served),
        // The routes that read storage hold big futures: boxed where they run, so a cached
        // manifest's future does not carry them (see `server::future_sizes`).
        Resource::Segment { track, n, container, .. } => Box::pin(track::segment(ctx, &loaded, track, *n, *container, served)).await,
        Resource::IFramePlaylist { track, container, .. } => track::iframe_playlist(ctx, &loaded, track, *container, served),
        Resource::IFrameSegment { track, n, container, .. } => Box::pin(track::iframe_segment(ctx, &loaded, track, *n, *container, served)).await,
        Resource::SmoothFragment { stream, bitrate, time } => Box::pin(smooth::fragment(ctx, &loaded, stream, *bitrate, *time, served)).await,
        Resource::Download { file } => Box::pin(download::file(ctx, &loaded, file)).await,
        Resource::Text { track, file } => text::text(ctx, &loaded, track, *file),
        // Refused by `decide`; never served.
        Resource::AmsEncryptedFragment(e) => Err(ApiError::Forbidden(format!("encryption={e} is not offered by this asset's delivery policy"))),
    }
}

/// The protection of `loaded` under `policy`, built on first use and whenever the policy
/// changes (a catalog reload hands out new policy `Arc`s).
pub fn crypto_of(loaded: &Loaded, policy: Arc<crate::catalog::AssetPolicy>) -> Result<Arc<AssetCrypto>, ApiError> {
    // A poisoned lock only means a panic elsewhere while swapping an Arc; the value is whole.
    if let Some(c) = loaded.crypto.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if Arc::ptr_eq(&c.policy, &policy) {
            return Ok(c.clone());
        }
    }
    // Built outside the lock: a concurrent builder at worst does the same work twice.
    let built = Arc::new(AssetCrypto::build(loaded, policy).map_err(|detail| ApiError::Content { asset: loaded.path.clone(), detail: format!("protection: {detail}") })?);
    *loaded.crypto.lock().unwrap_or_else(|e| e.into_inner()) = Some(built.clone());
    Ok(built)
}

/// The packaging error of `file` of `loaded`, as a 500 naming the asset.
pub fn content(loaded: &Loaded, file: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Content { asset: loaded.path.clone(), detail: format!("{file}: {e}") }
}

/// Served clear or protected: the method and the asset's protection state for it.
pub fn protection(loaded: &Loaded, served: Served) -> Result<Option<(Arc<AssetCrypto>, crate::protection::Encryption)>, ApiError> {
    match served {
        Served::Clear => Ok(None),
        Served::Protected { policy, method } => Ok(Some((crypto_of(loaded, policy)?, method))),
    }
}
