//! The HTTP server: URL grammar, handlers, CORS, and `run(listener, shutdown)` so tests can
//! start it in-process on `127.0.0.1:0`.
//!
//! URL grammar (the asset is a folder path under the storage root, any depth):
//! - `/{asset}/manifest.mpd`, `/{asset}/master.m3u8` (HLS fMP4), `/{asset}/master-ts.m3u8` (HLS TS)
//! - `/{asset}/{track}/index.m3u8`, `/{asset}/{track}/init.mp4`, `/{asset}/{track}/{n}.m4s`
//! - `/{asset}/{track}/ts.m3u8`, `/{asset}/{track}/{n}.ts`
//! - `/{asset}/Manifest`, `/{asset}/QualityLevels({bitrate})/Fragments({stream}={time})` (Smooth)
//! - Azure Media Services forms under `/{locator}/{name}.ism/` (see [`crate::ams`]), with the
//!   locator mapped to an asset by configuration; anything else under such a prefix is served
//!   by the routes above, so relative URLs in AMS-served manifests resolve.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use sealcast_package::{fmp4, manifest, smooth, ts, PackageOptions, TrackKind};
use sealcast_storage::{AssetPath, PathError, Store};

use crate::ams;
use crate::assets::{Assets, Loaded, ManifestSlot};
use crate::catalog::{AssetPolicy, Catalog, Delivery, NoCatalog, TomlCatalog};
use crate::protection::{AssetCrypto, Encryption, SchemeCrypto};
use sealcast_package::manifest::hls::HlsProtection;
use sealcast_package::protect;
use crate::config::Config;
use crate::error::ApiError;
use crate::respond::{etag, http_date, respond, Representation};

/// Shared state of a running server.
pub struct AppState {
    /// Assets and caches.
    pub assets: Assets,
    seg_cc: HeaderValue,
    manifest_cc: HeaderValue,
    locators: std::collections::BTreeMap<String, String>,
    /// Policies and keys.
    pub catalog: Arc<dyn Catalog>,
    /// The TOML catalog, when that is what `catalog` is (for reloads).
    pub toml_catalog: Option<Arc<TomlCatalog>>,
    allow_clear: bool,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

/// Which protocol a request serves, for the delivery policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Dash,
    Hls,
    Smooth,
    /// fMP4/CMAF init and media segments: shared by DASH and HLS-fMP4.
    Cmaf,
}

impl AppState {
    /// State from a validated configuration.
    pub fn new(cfg: &Config) -> anyhow::Result<Arc<AppState>> {
        let toml = cfg.catalog.as_ref().map(|p| TomlCatalog::load(p).map(Arc::new)).transpose()?;
        let catalog: Arc<dyn Catalog> = match &toml {
            Some(t) => t.clone(),
            None => Arc::new(NoCatalog),
        };
        let mode = match cfg.local_read {
            crate::config::LocalReadMode::Pread => sealcast_storage::LocalRead::Pread,
            crate::config::LocalReadMode::Mmap => sealcast_storage::LocalRead::Mmap,
        };
        // The local root plus every `[[store]]` routed in (S3, Azure, GCS), guarded by `[storage]`.
        let store = cfg.open_store(mode)?;
        // Storage-encrypted files of the catalog read clear through the store.
        if let Some(t) = &toml {
            let n = crate::catalog::apply_storage_encryption(t, &store)?;
            if n > 0 {
                tracing::info!(files = n, "storage-encrypted files registered");
            }
        }
        Ok(Self::with_parts(cfg, store, catalog, toml))
    }

    /// State over a given store (tests use a temp dir or an in-memory store).
    pub fn with_store(cfg: &Config, store: Store) -> Arc<AppState> {
        Self::with_parts(cfg, store, Arc::new(NoCatalog), None)
    }

    /// State over a given store and catalog (`toml`: the same catalog when it is the TOML one,
    /// so `SIGHUP` can reload it).
    pub fn with_parts(cfg: &Config, store: Store, catalog: Arc<dyn Catalog>, toml: Option<Arc<TomlCatalog>>) -> Arc<AppState> {
        let assets = Assets::new(
            store,
            PackageOptions { segment_target_ms: cfg.segment_duration_ms },
            cfg.index_read_ahead,
            cfg.cache.index_bytes,
            cfg.cache.asset_bytes,
            Duration::from_secs(cfg.cache.asset_ttl_secs.max(1)),
        )
        .with_negative_ttl(Duration::from_millis(cfg.cache.negative_ttl_ms))
        .with_fragment_cache(cfg.cache.fragment_bytes);
        Arc::new(AppState {
            assets,
            seg_cc: HeaderValue::from_str(&cfg.cache_control.segments).expect("validated at start-up"),
            manifest_cc: HeaderValue::from_str(&cfg.cache_control.manifests).expect("validated at start-up"),
            locators: cfg.locators.clone(),
            catalog,
            toml_catalog: toml,
            allow_clear: cfg.allow_clear_without_policy,
            metrics: Default::default(),
        })
    }
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Serves until `shutdown` resolves, under the default connection limits (see
/// [`crate::listen::serve`] for other limits and TLS).
pub async fn run(listener: tokio::net::TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    crate::listen::serve(listener, state, None, crate::listen::Limits::default(), shutdown).await
}

async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let mut r = handle_inner(&st, req).await;
    st.metrics.response(r.status().as_u16());
    // CORS for browser players: content is public, so any origin may read it. Static headers
    // rather than a layer: no `Vary`, nothing computed per request.
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Content-Length, Content-Range, ETag, Accept-Ranges, Last-Modified"));
    r
}

async fn handle_inner(st: &AppState, req: Request) -> Response {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        // Preflight (Range, conditional and Authorization headers make requests non-simple).
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, POST, OPTIONS"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Range, If-None-Match, If-Range, If-Modified-Since, Authorization, Content-Type"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        return r;
    }
    if method == Method::POST && req.uri().path() == "/clearkey" {
        let (parts, body) = req.into_parts();
        // Licence requests are small; anything larger is refused before it is buffered.
        let limited = http_body_util::Limited::new(body, sealcast_drm::clearkey::MAX_LICENSE_REQUEST_BYTES);
        let Ok(bytes) = http_body_util::BodyExt::collect(limited).await.map(|c| c.to_bytes()) else {
            return ApiError::BadRequest("licence request too large or unreadable".into()).into_response();
        };
        return crate::keys::clearkey_route(st, &parts.headers, parts.uri.query(), &bytes);
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        return r;
    }
    let (parts, _) = req.into_parts();
    let path = parts.uri.path();
    if let Some(kid) = path.strip_prefix("/key/") {
        return crate::keys::key_route(st, &parts.headers, parts.uri.query(), kid);
    }
    if path == "/metrics" {
        let mut r = (StatusCode::OK, st.metrics.render()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    }
    let query = parts.uri.query();
    let mut res = route(st, &method, &parts.headers, path, query).await;
    if matches!(res, Err(ApiError::SourceChanged(_))) {
        // A source file was replaced after it was indexed; its asset is gone from the cache,
        // so one more try answers from the new version (a second change answers 503).
        res = route(st, &method, &parts.headers, path, query).await;
    }
    match res {
        Ok(r) => r,
        Err(e) => {
            match &e {
                ApiError::Content { asset, detail } => tracing::warn!(asset = %asset, fault = %detail, "cannot package asset"),
                ApiError::Storage(_) | ApiError::StorageBusy { .. } | ApiError::StorageTimeout(_) | ApiError::StorageUpstream(_) => tracing::warn!(path = %path, error = %e, "storage fault"),
                _ => tracing::debug!(path = %path, error = %e, "request refused"),
            }
            e.into_response()
        }
    }
}

async fn route(st: &AppState, method: &Method, headers: &http::HeaderMap, path: &str, query: Option<&str>) -> Result<Response, ApiError> {
    if path == "/" {
        return Err(ApiError::NotFound("no asset named".into()));
    }
    if path == "/healthz" {
        return Ok((StatusCode::OK, "ok\n").into_response());
    }
    let p = AssetPath::parse(path).map_err(|e| match e {
        PathError::Traversal => ApiError::BadRequest("path traversal is not allowed".into()),
        _ => ApiError::BadRequest("malformed path".into()),
    })?;
    let mut segs: Vec<String> = p.into_segments();
    // Azure Media Services: /{locator}/{name}.ism/...
    if segs.len() >= 3 && segs[1].to_ascii_lowercase().ends_with(".ism") {
        if let Some(target) = st.locators.get(&segs[0]) {
            // As in AMS, the `.ism` name must be the asset's server manifest, when it has one.
            let loaded = st.assets.get(target).await?;
            if loaded.ism_name.as_deref().is_some_and(|n| !n.eq_ignore_ascii_case(&segs[1])) {
                return Err(ApiError::NotFound(format!("no server manifest '{}' under this locator", segs[1])));
            }
            let asset: Vec<String> = target.split('/').map(str::to_string).collect();
            match ams::parse(&segs).map_err(|e| ApiError::BadRequest(e.to_string()))? {
                Some(req) => return ams_route(st, method, headers, path, query, &asset.join("/"), req).await,
                None => segs = asset.into_iter().chain(segs.drain(2..)).collect(),
            }
        }
    }
    clean_route(st, method, headers, path, query, &segs).await
}

#[allow(clippy::too_many_arguments)]
async fn clean_route(st: &AppState, method: &Method, headers: &http::HeaderMap, path: &str, query: Option<&str>, segs: &[String]) -> Result<Response, ApiError> {
    let join = |r: std::ops::Range<usize>| segs[r].join("/");
    let n = segs.len();
    let last = segs.last().map(String::as_str).unwrap_or_default();
    if n >= 2 && last == "Manifest" {
        return manifest_route(st, method, headers, path, query, &join(0..n - 1), ManifestSlot::Smooth).await;
    }
    if n >= 3 && segs[n - 2].starts_with("QualityLevels(") && last.starts_with("Fragments(") {
        // Same grammar as the AMS form: parse through it so both accept exactly the same URLs.
        let fake = ["_".to_string(), "_.ism".to_string(), segs[n - 2].clone(), last.to_string()];
        return match ams::parse(&fake).map_err(|e| ApiError::BadRequest(e.to_string()))? {
            Some(ams::AmsRequest { kind: ams::AmsKind::Fragment { bitrate, stream, time, format: None, .. }, .. }) => {
                smooth_fragment(st, method, headers, path, &join(0..n - 2), &stream, bitrate, time).await
            }
            _ => Err(ApiError::NotFound(format!("no route for '{path}'"))),
        };
    }
    if n >= 2 {
        let slot = match last {
            "manifest.mpd" => Some(ManifestSlot::Mpd),
            "master.m3u8" => Some(ManifestSlot::Master),
            "master-ts.m3u8" => Some(ManifestSlot::MasterTs),
            _ => None,
        };
        if let Some(slot) = slot {
            return manifest_route(st, method, headers, path, query, &join(0..n - 1), slot).await;
        }
    }
    if n < 3 {
        return Err(ApiError::NotFound(format!("no route for '{path}'")));
    }
    // `{asset}/{track}/{cenc|cbcs}/…`: encrypted init, segments and HLS media playlists. (So
    // a track file may not be called `cenc` or `cbcs`.)
    if n >= 4 {
        if let Some(m) = Encryption::from_path(&segs[n - 2]) {
            return encrypted_track_route(st, method, headers, path, query, &join(0..n - 3), &segs[n - 3], m, last).await;
        }
    }
    let asset_path = join(0..n - 2);
    let proto = match last {
        "index.m3u8" | "ts.m3u8" => Proto::Hls,
        l if l.ends_with(".ts") => Proto::Hls,
        _ => Proto::Cmaf,
    };
    check_clear(st, &asset_path, proto)?;
    let loaded = st.assets.get(&asset_path).await?;
    let tname = &segs[n - 2];
    let (ti, track) = loaded
        .asset
        .tracks
        .iter()
        .enumerate()
        .find(|(_, t)| &t.name == tname)
        .ok_or_else(|| ApiError::NotFound(format!("track '{tname}'")))?;
    let mime = match track.kind() {
        TrackKind::Video => "video/mp4",
        TrackKind::Audio => "audio/mp4",
    };
    let info = loaded.files.get(&track.file).ok_or_else(|| ApiError::NotFound(track.file.clone()))?;
    match last {
        "index.m3u8" => {
            let body = loaded.manifest(ManifestSlot::Media(ti), |_| manifest::hls::write_media(track, manifest::hls::FMP4));
            Ok(manifest_response(st, method, headers, &loaded, body, HLS_TYPE))
        }
        "ts.m3u8" => {
            let body = loaded.manifest(ManifestSlot::MediaTs(ti), |_| manifest::hls::write_media(track, manifest::hls::TS));
            Ok(manifest_response(st, method, headers, &loaded, body, HLS_TYPE))
        }
        "init.mp4" => Ok(segment_response(st, method, headers, vec![track.track().init.clone()], mime, &info.identity(), path, info.last_modified)),
        _ => {
            let (stem, is_ts) = match (last.strip_suffix(".m4s"), last.strip_suffix(".ts")) {
                (Some(d), _) => (d, false),
                (_, Some(d)) => (d, true),
                _ => return Err(ApiError::NotFound(format!("no route for '{path}'"))),
            };
            let num = segment_number(stem).ok_or_else(|| ApiError::NotFound(format!("no route for '{path}'")))?;
            if num == 0 || num > track.segments.len() {
                return Err(ApiError::NotFound(format!("segment {num} of track '{tname}'")));
            }
            let (start, end) = track.segment_range(num - 1).ok_or_else(|| ApiError::NotFound(format!("segment {num}")))?;
            let data = st.assets.read_source(&loaded, &track.file, start..end).await?;
            let content = |file: &str, e: sealcast_package::Error| ApiError::Content { asset: loaded.path.clone(), detail: format!("{file}: {e}") };
            let frags = fmp4::read_segment(track, num - 1, &data, start).map_err(|e| content(&track.file, e))?;
            let (parts, content_type, identity) = if is_ts {
                ts_segment(st, &loaded, track, num, &frags, &data, start, None).await.map(|(b, ct, id)| (vec![Bytes::from(b)], ct, id))?
            } else {
                (fmp4::write_segment(&frags, &data, start).map_err(|e| content(&track.file, e))?.parts, mime, info.identity())
            };
            Ok(segment_response(st, method, headers, parts, content_type, &identity, path, info.last_modified))
        }
    }
}

/// Refuses clear output where the asset's policy encrypts `proto` (its encrypted files live
/// under `{track}/{cenc|cbcs|aes}/`), and assets without a policy unless clear is allowed: an
/// asset is never served clear by mistake.
fn check_clear(st: &AppState, asset: &str, proto: Proto) -> Result<(), ApiError> {
    let Some(p) = policy_of(st, asset)? else { return Ok(()) };
    let clear = match proto {
        Proto::Dash => p.dash == Delivery::NoDynamicEncryption,
        Proto::Hls => p.hls == Delivery::NoDynamicEncryption,
        Proto::Smooth => p.smooth == Delivery::NoDynamicEncryption,
        Proto::Cmaf => p.dash == Delivery::NoDynamicEncryption || p.hls == Delivery::NoDynamicEncryption,
    };
    if clear {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("the delivery policy of '{asset}' does not allow clear {proto:?} output")))
    }
}

/// The asset's policy; `None` when it has none and clear output is allowed without one.
fn policy_of(st: &AppState, asset: &str) -> Result<Option<Arc<AssetPolicy>>, ApiError> {
    match st.catalog.policy(asset) {
        Some(p) => Ok(Some(p)),
        None if st.allow_clear => Ok(None),
        None => Err(ApiError::Forbidden(format!("asset '{asset}' has no delivery policy"))),
    }
}

/// The protection of `loaded` under `policy`, built on first use and whenever the policy
/// changes (a catalog reload hands out new policy `Arc`s).
fn crypto_of(loaded: &Loaded, policy: Arc<AssetPolicy>) -> Result<Arc<AssetCrypto>, ApiError> {
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

/// Encrypted init segments, media segments and HLS media playlists of one track under
/// method `m`, which the asset's policy must use for a protocol that serves them.
#[allow(clippy::too_many_arguments)]
async fn encrypted_track_route(st: &AppState, method: &Method, headers: &http::HeaderMap, path: &str, query: Option<&str>, asset: &str, tname: &str, m: Encryption, last: &str) -> Result<Response, ApiError> {
    let not_offered = || ApiError::Forbidden(format!("the delivery policy of '{asset}' does not offer {} here", m.path()));
    let policy = st.catalog.policy(asset).ok_or_else(|| if st.allow_clear { ApiError::NotFound(format!("asset '{asset}' is not encrypted")) } else { ApiError::Forbidden(format!("asset '{asset}' has no delivery policy")) })?;
    let uses = |d: Delivery| Encryption::of(d) == Some(m);
    let hls_only = matches!(last, "index.m3u8" | "ts.m3u8") || last.ends_with(".ts") || m == Encryption::Aes128;
    let allowed = if hls_only { uses(policy.hls) } else { uses(policy.dash) || uses(policy.hls) };
    if !allowed {
        return Err(not_offered());
    }
    let loaded = st.assets.get(asset).await?;
    let (ti, track) = loaded.asset.tracks.iter().enumerate().find(|(_, t)| t.name == tname).ok_or_else(|| ApiError::NotFound(format!("track '{tname}'")))?;
    let crypto = crypto_of(&loaded, policy)?;
    let sc = crypto.method(m).ok_or_else(not_offered)?;
    let tc = &sc.tracks[ti];
    let info = loaded.files.get(&track.file).ok_or_else(|| ApiError::NotFound(track.file.clone()))?;
    // The KID is part of what a response depends on (never the key: ETags are public).
    let identity = format!("{}\n{}", info.identity(), tc.kid.to_hex());
    let mime = if track.kind() == TrackKind::Video { "video/mp4" } else { "audio/mp4" };
    let content = |e: sealcast_package::Error| ApiError::Content { asset: loaded.path.clone(), detail: format!("{}: {e}", track.file) };
    match last {
        "index.m3u8" | "ts.m3u8" => {
            let ts = last == "ts.m3u8";
            let (kind, flavor) = if ts { (ManifestSlot::MediaTs(ti), manifest::hls::TS) } else { (ManifestSlot::Media(ti), manifest::hls::FMP4) };
            if ts && m == Encryption::Cenc {
                return Err(ApiError::Forbidden("HLS over MPEG-TS with cenc is not offered".into()));
            }
            if ts && m == Encryption::Cbcs && tc.sample_aes.is_none() {
                return Err(ApiError::Forbidden(format!("SAMPLE-AES over MPEG-TS is defined for H.264 and AAC only, not track '{tname}'")));
            }
            let body = sc.manifest(&loaded, kind, |a, sc| {
                let t = &sc.tracks[ti];
                match &t.envelope {
                    Some(env) => {
                        let kid = t.kid;
                        let ext = flavor.segment_ext;
                        let line = |i: usize| sealcast_drm::hls::aes128(&env.key_uri, Some(env.iv(kid, ext, i + 1))).unwrap_or_default();
                        manifest::hls::write_media_with(&a.tracks[ti], flavor, &[], Some(&line))
                    }
                    None if ts => manifest::hls::write_media_with(&a.tracks[ti], flavor, &t.ts_key_lines, None),
                    None => manifest::hls::write_media_with(&a.tracks[ti], flavor, &sc.hls.tracks[ti].key_lines, None),
                }
            });
            if let (true, Some(token)) = (crypto.policy.carry_token, crate::keys::query_token(query)) {
                let uris: Vec<&str> = tc.envelope.as_ref().map(|e| e.key_uri.as_str()).into_iter().chain(tc.sample_aes_uri.as_deref()).collect();
                return Ok(private_playlist(carry_token_keys(&body.0, &uris, &token)));
            }
            Ok(manifest_response(st, method, headers, &loaded, body, HLS_TYPE))
        }
        "init.mp4" => Ok(segment_response(st, method, headers, vec![tc.init.clone()], mime, &identity, path, info.last_modified)),
        _ => {
            let (ext, is_ts) = if last.ends_with(".ts") { (".ts", true) } else { (".m4s", false) };
            let num = last.strip_suffix(ext).and_then(segment_number).ok_or_else(|| ApiError::NotFound(format!("no route for '{path}'")))?;
            if num == 0 || num > track.segments.len() {
                return Err(ApiError::NotFound(format!("segment {num} of track '{tname}'")));
            }
            let (start, end) = track.segment_range(num - 1).ok_or_else(|| ApiError::NotFound(format!("segment {num}")))?;
            let data = st.assets.read_source(&loaded, &track.file, start..end).await?;
            let frags = fmp4::read_segment(track, num - 1, &data, start).map_err(content)?;
            let (parts, ct, identity) = match (&tc.envelope, &tc.prot) {
                (Some(env), _) => {
                    let (clear, ct, identity) = if is_ts {
                        let (body, ct, id) = ts_segment(st, &loaded, track, num, &frags, &data, start, None).await?;
                        (body, ct, format!("{id}\n{}", tc.kid.to_hex()))
                    } else {
                        (fmp4::write_segment(&frags, &data, start).map_err(content)?.concat(), mime, identity)
                    };
                    let iv = env.iv(tc.kid, &ext[1..], num);
                    let enc = env.encrypt(iv, clear).map_err(|e| ApiError::Content { asset: loaded.path.clone(), detail: format!("AES-128: {e}") })?;
                    (enc, ct, identity)
                }
                (None, Some(_)) if is_ts => {
                    let Some(sa) = tc.sample_aes else {
                        return Err(ApiError::Forbidden(format!("SAMPLE-AES over MPEG-TS is defined for H.264 and AAC only, not track '{tname}'")));
                    };
                    let (body, ct, id) = ts_segment(st, &loaded, track, num, &frags, &data, start, Some(sa)).await?;
                    (vec![Bytes::from(body)], ct, format!("{id}\n{}", tc.kid.to_hex()))
                }
                (None, Some(prot)) => {
                    let body = protect::write_segment_encrypted(&frags, data, start, prot, tc.clear_until, track.track().info.trex.default_sample_description_index).map_err(content)?;
                    (body.parts, mime, identity)
                }
                (None, None) => return Err(ApiError::NotFound(format!("no route for '{path}'"))),
            };
            Ok(segment_response(st, method, headers, parts, ct, &identity, path, info.last_modified))
        }
    }
}

/// `uri` with `token` added as a query parameter.
fn with_token(uri: &str, token: &str) -> String {
    let enc = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC);
    format!("{uri}{}token={enc}", if uri.contains('?') { '&' } else { '?' })
}

/// A multivariant playlist whose media playlist URIs carry the viewer's token.
fn carry_token_master(body: &[u8], token: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        if !line.starts_with('#') {
            out.push_str(&with_token(line, token));
        } else if let Some((head, rest)) = line.split_once(",URI=\"").filter(|_| line.starts_with("#EXT-X-MEDIA:")) {
            let (uri, tail) = rest.split_once('"').unwrap_or((rest, ""));
            out.push_str(&format!("{head},URI=\"{}\"{tail}", with_token(uri, token)));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// A media playlist whose key URIs (those in `uris`) carry the viewer's token.
fn carry_token_keys(body: &[u8], uris: &[&str], token: &str) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for u in uris {
        text = text.replace(&format!("URI=\"{u}\""), &format!("URI=\"{}\"", with_token(u, token)));
    }
    text
}

/// A playlist made for one viewer: never stored by shared caches.
fn private_playlist(body: String) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(HLS_TYPE));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    r
}

/// The number in a segment name's stem (`{n}` of `{n}.m4s`): 1-9 ASCII digits, nothing else.
fn segment_number(stem: &str) -> Option<usize> {
    if stem.is_empty() || stem.len() > 9 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

const HLS_TYPE: &str = "application/vnd.apple.mpegurl";
const SMOOTH_TYPE: &str = "application/vnd.ms-sstr+xml";

/// The protected Smooth manifest (PlayReady `Protection` header).
fn smooth_manifest(a: &sealcast_package::Asset, sc: &SchemeCrypto) -> String {
    smooth::write_manifest_with(a, sc.smooth.as_deref())
}

/// Serves one of the asset-level manifests from the asset's manifest cache.
#[allow(clippy::too_many_arguments)]
async fn manifest_route(st: &AppState, method: &Method, headers: &http::HeaderMap, path: &str, query: Option<&str>, asset: &str, slot: ManifestSlot) -> Result<Response, ApiError> {
    manifest_route_enc(st, method, headers, path, query, asset, slot, None).await
}

/// [`manifest_route`], with the Azure Media Services `encryption=` choice when the URL has
/// one: it must be what the policy gives that protocol, else 403 (never clear by mistake).
#[allow(clippy::too_many_arguments)]
async fn manifest_route_enc(st: &AppState, method: &Method, headers: &http::HeaderMap, path: &str, query: Option<&str>, asset: &str, slot: ManifestSlot, asked: Option<ams::AmsEncryption>) -> Result<Response, ApiError> {
    let proto = match slot {
        ManifestSlot::Mpd => Proto::Dash,
        ManifestSlot::Smooth => Proto::Smooth,
        _ => Proto::Hls,
    };
    let policy = policy_of(st, asset)?;
    let delivery = policy.as_ref().map_or(Delivery::NoDynamicEncryption, |p| match proto {
        Proto::Dash => p.dash,
        Proto::Smooth => p.smooth,
        _ => p.hls,
    });
    let scheme = Encryption::of(delivery);
    if let Some(e) = asked {
        let wanted = match e {
            ams::AmsEncryption::Cenc | ams::AmsEncryption::Piff => Some(Encryption::Cenc),
            ams::AmsEncryption::CbcsAapl => Some(Encryption::Cbcs),
            ams::AmsEncryption::Cbc => Some(Encryption::Aes128),
        };
        if wanted.is_none() || wanted != scheme {
            return Err(ApiError::Forbidden(format!("encryption={e} is not offered by this asset's delivery policy")));
        }
    }
    if let (Some(scheme), Some(policy)) = (scheme, policy) {
        let loaded = st.assets.get(asset).await?;
        let refuse = |what: &str| ApiError::Forbidden(format!("{what} with {} is not offered", scheme.path()));
        let (kind, ct): (ManifestSlot, &'static str) = match slot {
            ManifestSlot::Mpd => (ManifestSlot::Mpd, "application/dash+xml"),
            ManifestSlot::Master => (ManifestSlot::Master, HLS_TYPE),
            ManifestSlot::MasterTs if scheme != Encryption::Cenc => (ManifestSlot::MasterTs, HLS_TYPE),
            ManifestSlot::MasterTs => return Err(refuse("HLS over MPEG-TS")),
            ManifestSlot::Smooth if scheme == Encryption::Cenc => (ManifestSlot::Smooth, SMOOTH_TYPE),
            ManifestSlot::Smooth => return Err(refuse("Smooth Streaming")),
            ManifestSlot::Media(_) | ManifestSlot::MediaTs(_) => return Err(ApiError::NotFound(path.to_string())),
        };
        let crypto = crypto_of(&loaded, policy)?;
        let sc = crypto.method(scheme).ok_or_else(|| refuse("this protocol"))?;
        if matches!(kind, ManifestSlot::MasterTs) && scheme == Encryption::Cbcs && sc.tracks.iter().any(|t| t.sample_aes.is_none()) {
            return Err(ApiError::Forbidden("SAMPLE-AES over MPEG-TS is defined for H.264 and AAC only".into()));
        }
        let carry = crypto.policy.carry_token;
        let body = sc.manifest(&loaded, kind, |a, sc| match kind {
            ManifestSlot::Mpd => manifest::dash::write_mpd_with(a, Some(&sc.dash)),
            ManifestSlot::Master => manifest::hls::write_master_with(a, manifest::hls::FMP4, Some(&sc.hls)),
            // Session keys describe the fMP4 (cbcs) keys; TS media playlists carry their own.
            ManifestSlot::MasterTs => manifest::hls::write_master_with(a, manifest::hls::TS, Some(&HlsProtection { session_keys: Vec::new(), tracks: sc.hls.tracks.clone() })),
            _ => smooth_manifest(a, sc),
        });
        if let (true, ManifestSlot::Master | ManifestSlot::MasterTs, Some(token)) = (carry, kind, crate::keys::query_token(query)) {
            // The viewer's token goes on to the media playlists (which put it on their key
            // URIs), never to segments; the playlist is then the viewer's own.
            return Ok(private_playlist(carry_token_master(&body.0, &token)));
        }
        return Ok(manifest_response(st, method, headers, &loaded, body, ct));
    }
    let loaded = st.assets.get(asset).await?;
    let (ct, build): (&'static str, fn(&sealcast_package::Asset) -> String) = match slot {
        ManifestSlot::Mpd => ("application/dash+xml", manifest::dash::write_mpd),
        ManifestSlot::Master => (HLS_TYPE, |a| manifest::hls::write_master(a, manifest::hls::FMP4)),
        ManifestSlot::MasterTs => (HLS_TYPE, |a| manifest::hls::write_master(a, manifest::hls::TS)),
        ManifestSlot::Smooth => (SMOOTH_TYPE, smooth::write_manifest),
        ManifestSlot::Media(_) | ManifestSlot::MediaTs(_) => return Err(ApiError::NotFound(path.to_string())),
    };
    Ok(manifest_response(st, method, headers, &loaded, loaded.manifest(slot, build), ct))
}

/// Answers an Azure Media Services URL for the asset a locator maps to.
#[allow(clippy::too_many_arguments)]
async fn ams_route(st: &AppState, method: &Method, headers: &http::HeaderMap, path: &str, query: Option<&str>, asset: &str, req: ams::AmsRequest) -> Result<Response, ApiError> {
    use ams::{AmsFormat as F, AmsKind as K};
    match req.kind {
        K::Manifest { format, encryption, .. } => {
            let slot = match format {
                F::Smooth | F::SmoothV20 => ManifestSlot::Smooth,
                F::HlsTs | F::HlsTsV3 => ManifestSlot::MasterTs,
                F::HlsCmaf => ManifestSlot::Master,
                F::DashCsf | F::DashCmaf => ManifestSlot::Mpd,
            };
            manifest_route_enc(st, method, headers, path, query, asset, slot, encryption).await
        }
        K::Fragment { bitrate, stream, time, format: None, encryption: None, .. } => smooth_fragment(st, method, headers, path, asset, &stream, bitrate, time).await,
        K::Fragment { encryption: Some(e), .. } => Err(ApiError::Forbidden(format!("encryption={e} is not offered by this asset's delivery policy"))),
        // Our manifests reference segments by the clean grammar, never these forms.
        _ => Err(ApiError::NotFound(format!("no such resource '{path}'"))),
    }
}

/// A Smooth Streaming fragment: the chunk at `time` of the quality level `bitrate` of `stream`.
#[allow(clippy::too_many_arguments)]
async fn smooth_fragment(st: &AppState, method: &Method, headers: &http::HeaderMap, path: &str, asset: &str, stream: &str, bitrate: u32, time: u64) -> Result<Response, ApiError> {
    let policy = policy_of(st, asset)?;
    let method_of = policy.as_ref().and_then(|p| Encryption::of(p.smooth));
    let loaded = st.assets.get(asset).await?;
    let (track, seg) = smooth::find_fragment(&loaded.asset, stream, bitrate, time).ok_or_else(|| ApiError::NotFound(format!("fragment {stream}={time} at {bitrate}")))?;
    // Smooth protection is PIFF (`cenc`): fragments keep their URLs, encrypted as the policy says.
    let crypto = match (method_of, policy) {
        (None, _) | (_, None) => None,
        (Some(Encryption::Cenc), Some(p)) => Some(crypto_of(&loaded, p)?),
        (Some(m), _) => return Err(ApiError::Forbidden(format!("Smooth Streaming with {} is not offered", m.path()))),
    };
    let info = loaded.files.get(&track.file).ok_or_else(|| ApiError::NotFound(track.file.clone()))?;
    let (start, end) = track.segment_range(seg).ok_or_else(|| ApiError::NotFound(format!("fragment {stream}={time}")))?;
    let data = st.assets.read_source(&loaded, &track.file, start..end).await?;
    let content = |e: sealcast_package::Error| ApiError::Content { asset: loaded.path.clone(), detail: format!("{}: {e}", track.file) };
    let frags = fmp4::read_segment(track, seg, &data, start).map_err(content)?;
    let delay = smooth::delay(&loaded.asset, track);
    let mime = if track.kind() == TrackKind::Video { "video/mp4" } else { "audio/mp4" };
    let tc = crypto.as_ref().and_then(|c| c.method(Encryption::Cenc)).and_then(|sc| {
        let ti = loaded.asset.tracks.iter().position(|t| std::ptr::eq(t, track))?;
        sc.tracks.get(ti)
    });
    let (body, identity) = match (crypto.is_some(), tc.and_then(|t| t.prot.as_ref().map(|p| (t, p)))) {
        (false, _) => (smooth::write_fragment(&frags, &data, start, track, delay).map_err(content)?, info.identity()),
        (true, Some((tc, prot))) => (smooth::write_fragment_encrypted(&frags, data, start, track, delay, prot).map_err(content)?, format!("{}\n{}", info.identity(), tc.kid.to_hex())),
        (true, None) => return Err(ApiError::Content { asset: loaded.path.clone(), detail: "no protection for this track".into() }),
    };
    Ok(segment_response(st, method, headers, body.parts, mime, &identity, path, info.last_modified))
}

/// A segment-like response (init, media segment, fragment): long cache lifetime, ETag from the
/// source identity and the request path.
#[allow(clippy::too_many_arguments)]
fn segment_response(
    st: &AppState,
    method: &Method,
    headers: &http::HeaderMap,
    parts: Vec<Bytes>,
    content_type: &'static str,
    identity: &str,
    path: &str,
    modified: std::time::SystemTime,
) -> Response {
    respond(
        method,
        headers,
        Representation { parts, content_type, etag: etag(identity, path), last_modified: http_date(modified), cache_control: st.seg_cc.clone() },
    )
}

/// Builds TS segment `num` of `track`: a video segment gets the asset's default audio muxed
/// in (one more ranged read, of the audio fragments overlapping its decode span); an audio
/// track's segment is audio only; `sample_aes` encrypts it (Apple SAMPLE-AES). Returns body,
/// type and the identity the ETag derives from.
#[allow(clippy::too_many_arguments)]
async fn ts_segment(
    st: &AppState,
    loaded: &Loaded,
    track: &sealcast_package::AssetTrack,
    num: usize,
    frags: &[fmp4::SourceFragment],
    data: &Bytes,
    start: u64,
    sample_aes: Option<ts::SampleAesParams>,
) -> Result<(Vec<u8>, &'static str, String), ApiError> {
    let content = |file: &str, e: sealcast_package::Error| ApiError::Content { asset: loaded.path.clone(), detail: format!("{file}: {e}") };
    let seg = &track.segments[num - 1];
    let mut identity = loaded.files.get(&track.file).map(|i| i.identity()).unwrap_or_default();
    let main = ts::TsInput { codec: ts::codec(track), timescale: track.track().info.timescale, samples: ts::samples(frags, data, start, 0, u64::MAX, track.dts_shift()).map_err(|e| content(&track.file, e))? };
    let audio = (track.kind() == TrackKind::Video).then(|| loaded.asset.tracks.iter().find(|t| t.kind() == TrackKind::Audio)).flatten();
    let Some(a) = audio else {
        let out = ts::write_segment_with(&[main], num, sample_aes).map_err(|e| content(&track.file, e))?;
        return Ok((out, if track.kind() == TrackKind::Video { "video/mp2t" } else { "audio/mp2t" }, identity));
    };
    // The video segment's decode span in the audio timescale; first and last segments are
    // open-ended so every audio sample lands in exactly one segment.
    let (vts, ats) = (track.track().info.timescale as u128, a.track().info.timescale as u128);
    let conv = |t: u64| (t as u128 * ats / vts).min(u64::MAX as u128) as u64;
    let from = if num == 1 { 0 } else { conv(seg.decode_time) };
    let to = if num == track.segments.len() { u64::MAX } else { conv(seg.decode_time + seg.duration) };
    let mut inputs = vec![main];
    let audio_data;
    if let Some((range, s, e)) = a.fragments_between(from, to) {
        let ainfo = loaded.files.get(&a.file).ok_or_else(|| ApiError::NotFound(a.file.clone()))?;
        identity.push('\n');
        identity.push_str(&ainfo.identity());
        audio_data = st.assets.read_source(loaded, &a.file, s..e).await?;
        let af = fmp4::read_fragments(a, range, &audio_data, s).map_err(|e| content(&a.file, e))?;
        inputs.push(ts::TsInput { codec: ts::codec(a), timescale: a.track().info.timescale, samples: ts::samples(&af, &audio_data, s, from, to, 0).map_err(|e| content(&a.file, e))? });
    }
    let out = ts::write_segment_with(&inputs, num, sample_aes).map_err(|e| content(&track.file, e))?;
    Ok((out, "video/mp2t", identity))
}

fn manifest_response(st: &AppState, method: &Method, headers: &http::HeaderMap, loaded: &Loaded, (body, etag): (Bytes, HeaderValue), ct: &'static str) -> Response {
    respond(
        method,
        headers,
        Representation {
            parts: vec![body],
            content_type: ct,
            etag,
            last_modified: loaded.last_modified_header.clone(),
            cache_control: st.manifest_cc.clone(),
        },
    )
}

/// Finds asset folders under the root (breadth-first, bounded), for the start-up banner.
pub async fn discover(store: &Store, max_depth: usize, max_assets: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut level = vec![String::new()];
    for _ in 0..max_depth {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(subs) = store.list_subdirs(dir).await else { continue };
            for s in subs {
                if let Ok(files) = store.list_dir(&s).await {
                    if files.iter().any(|f| f.path.rsplit_once('.').is_some_and(|(_, e)| ["mp4", "cmfv", "cmfa", "ismv", "isma"].contains(&e))) {
                        out.push(s.clone());
                        if out.len() >= max_assets {
                            return out;
                        }
                    }
                }
                next.push(s);
            }
        }
        level = next;
    }
    out
}
