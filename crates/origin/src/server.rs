//! The HTTP shell: shared state, `run(listener, shutdown)` (so tests can start it in-process
//! on `127.0.0.1:0`), CORS and metrics around every answer, and dispatch of the typed
//! [`Route`] (the URL grammar is [`crate::route`]; asset URLs go through
//! [`crate::handlers`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use sealcast_storage::Store;

use crate::assets::Assets;
use crate::catalog::{Catalog, NoCatalog, TomlCatalog};
use crate::config::Config;
use crate::error::ApiError;
use crate::handlers::{self, Ctx};
use crate::route::{self, Route, RouteError};

/// Where the server reads the time (token expiry): the system clock, or a fixed or stepped
/// one in tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Shared state of a running server.
pub struct AppState {
    /// Assets and caches.
    pub assets: Assets,
    pub(crate) seg_cc: HeaderValue,
    pub(crate) manifest_cc: HeaderValue,
    locators: std::collections::BTreeMap<String, String>,
    /// Policies and keys.
    pub catalog: Arc<dyn Catalog>,
    /// The TOML catalog, when that is what `catalog` is (for reloads).
    pub toml_catalog: Option<Arc<TomlCatalog>>,
    /// The database catalog, when that is what `catalog` is (for metrics).
    pub db_catalog: Option<Arc<crate::catalog::db::DbCatalog>>,
    pub(crate) allow_clear: bool,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
    /// Access control: the CDN-only gate, the default policy, verified signatures.
    pub access: crate::access::Access,
    clock: Clock,
}

impl AppState {
    /// State from a validated configuration.
    pub fn new(cfg: &Config) -> anyhow::Result<Arc<AppState>> {
        let toml = cfg.catalog.as_ref().map(|p| TomlCatalog::load(p).map(Arc::new)).transpose()?;
        let catalog: Arc<dyn Catalog> = match &toml {
            Some(t) => t.clone(),
            None => Arc::new(NoCatalog),
        };
        // The local root plus every `[[store]]` routed in (S3, Azure, GCS), guarded by `[storage]`.
        let store = cfg.open_store(local_read(cfg))?;
        // Storage-encrypted files of the catalog read clear through the store.
        if let Some(t) = &toml {
            let n = crate::catalog::apply_storage_encryption(t.as_ref(), &store)?;
            if n > 0 {
                tracing::info!(files = n, "storage-encrypted files registered");
            }
            for (asset, p) in t.assets() {
                if p.storage.is_some() {
                    for (proto, verdict) in crate::decide::describe(&asset, Some(p.clone()), cfg.allow_clear_without_policy) {
                        if verdict == "clear" {
                            tracing::warn!(asset = %asset, protocol = proto, "served clear although encrypted at rest (its policy says NoDynamicEncryption)");
                        }
                    }
                }
            }
        }
        Ok(Self::with_parts(cfg, store, catalog, toml))
    }

    /// State from a validated configuration with its catalog store opened: the database (by
    /// default SQLite in `data_dir`, its key-encryption key created beside it on first start),
    /// or a TOML catalog.
    pub async fn open(cfg: &Config) -> anyhow::Result<Arc<AppState>> {
        use crate::catalog::db::{Database, DbCatalog};
        use crate::catalog::kek::{init_local_kek, KekSource};
        let crate::config::CatalogStore::Database { url, kek, create_kek } = cfg.catalog_store()? else { return Self::new(cfg) };
        if let (true, KekSource::Local(p)) = (create_kek, &kek) {
            if init_local_kek(p)? {
                tracing::warn!(kek = %p.display(), "created a new key-encryption key for the embedded catalog database: back it up (without it the database's keys cannot be opened) or configure `kek`");
            }
        }
        let store = cfg.open_store(local_read(cfg))?;
        let db = Arc::new(Database::open(&url, &kek).await?);
        let cat = DbCatalog::start(db, Some(store.clone()), Duration::from_millis(cfg.catalog_poll_ms), true).await?;
        tracing::info!(database = %cat.database().shown_url(), assets = cat.assets().len(), version = cat.version(), "catalog database opened");
        let mut state = Self::with_parts(cfg, store, cat.clone(), None);
        // `with_parts` just made the Arc: nothing else holds it yet.
        Arc::get_mut(&mut state).expect("not shared yet").db_catalog = Some(cat);
        Ok(state)
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
            cfg.package_options(),
            cfg.index_read_ahead,
            cfg.cache.index_bytes,
            cfg.cache.asset_bytes,
            Duration::from_secs(cfg.cache.asset_ttl_secs.max(1)),
        )
        .with_negative_ttl(Duration::from_millis(cfg.cache.negative_ttl_ms))
        .with_limits(&cfg.content_limits)
        .with_fragment_cache(cfg.cache.fragment_bytes);
        Arc::new(AppState {
            assets,
            seg_cc: HeaderValue::from_str(&cfg.cache_control.segments).expect("validated at start-up"),
            manifest_cc: HeaderValue::from_str(&cfg.cache_control.manifests).expect("validated at start-up"),
            locators: cfg.locators.clone(),
            catalog,
            toml_catalog: toml,
            db_catalog: None,
            allow_clear: cfg.allow_clear_without_policy,
            metrics: Default::default(),
            // Validated at start-up; should it fail here anyway, every asset is refused.
            access: crate::access::Access::new(&cfg.access, |p| std::fs::read_to_string(p)).unwrap_or_else(|e| {
                tracing::error!(error = %e, "access configuration unusable: refusing every asset request");
                crate::access::Access::deny_all()
            }),
            clock: Arc::new(SystemTime::now),
        })
    }

    /// Reads time from `clock` instead of the system clock (tests of token expiry).
    pub fn with_clock(mut self: Arc<Self>, clock: Clock) -> Arc<AppState> {
        Arc::get_mut(&mut self).expect("the clock is set before the state is shared").clock = clock;
        self
    }

    /// Now, in seconds since the Unix epoch, from the state's clock.
    pub fn now_unix(&self) -> u64 {
        (self.clock)().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

fn local_read(cfg: &Config) -> sealcast_storage::LocalRead {
    match cfg.local_read {
        crate::config::LocalReadMode::Pread => sealcast_storage::LocalRead::Pread,
        crate::config::LocalReadMode::Mmap => sealcast_storage::LocalRead::Mmap,
    }
}

/// `/readyz`: 200 while the catalog is current; 503 naming why not (a database catalog that
/// cannot reach its database serves its last good copy, but a load balancer should prefer
/// replicas that are current).
fn ready(st: &AppState) -> Response {
    let mut r = match st.catalog.degraded() {
        None => (StatusCode::OK, "ready\n".to_string()).into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("degraded: catalog database: {}\n", why.lines().next().unwrap_or(""))).into_response(),
    };
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
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

/// Serves `state` on `listener` (TLS when `tls` is given) under `limits` until `shutdown`,
/// as `sealcast serve` does, telling the operator through `announce`: the
/// `sealcast listening on …` line (a contract with scripts and tests: they read the port
/// from it), then one line per asset found under the root.
///
/// The listening line comes when nothing is left between it and the accept loop (the socket
/// is bound and listening already). Finding the assets walks the storage, which on a large
/// or remote store takes long, so it runs in the background and requests — `/healthz` first
/// of all — are answered meanwhile; its lines follow when it is done.
pub async fn serve_announced(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: crate::listen::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    announce: Arc<dyn Fn(String) + Send + Sync>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    announce(format!("sealcast listening on {scheme}://{addr}"));
    let store = state.assets.store().clone();
    let discovery = tokio::spawn(async move {
        for a in discover(&store, 4, 50).await {
            announce(format!("  {a}:  DASH {scheme}://{addr}/{a}/manifest.mpd   HLS {scheme}://{addr}/{a}/master.m3u8"));
        }
    });
    let served = crate::listen::serve(listener, state, tls, limits, shutdown).await;
    discovery.abort();
    served
}

async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    // Operators' counters are not for web pages: no CORS on them.
    let operator = req.uri().path() == "/metrics";
    let mut r = handle_inner(&st, req).await;
    st.metrics.response(r.status().as_u16());
    if operator {
        return r;
    }
    // CORS for browser players: content is public, so any origin may read it. Static headers
    // rather than a layer: no `Vary`, nothing computed per request.
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Content-Length, Content-Range, ETag, Accept-Ranges, Last-Modified"));
    r
}

async fn handle_inner(st: &AppState, req: Request) -> Response {
    // The CDN-only gate comes before anything else (health probes excepted).
    if let Err(r) = st.access.gate(req.uri().path(), req.headers()) {
        return access_refused(st, req.uri().path(), r);
    }
    let locators = |id: &str| {
        if let Some(a) = st.locators.get(id) {
            return Some(route::LocatorTarget::Asset(a.clone()));
        }
        st.catalog.locator(id).map(|l| if l.open_at(st.now_unix() as i64) { route::LocatorTarget::Asset(l.asset) } else { route::LocatorTarget::Closed })
    };
    let route = match route::parse_with(req.method(), req.uri().path(), &locators) {
        Ok(r) => r,
        Err(RouteError::MethodNotAllowed) => {
            let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return r;
        }
        Err(RouteError::Api(e)) => return refused(req.uri().path(), e),
    };
    match route {
        Route::Preflight => preflight(),
        Route::ClearKey => {
            let (parts, body) = req.into_parts();
            // Licence requests are small; anything larger is refused before it is buffered.
            let limited = http_body_util::Limited::new(body, sealcast_drm::clearkey::MAX_LICENSE_REQUEST_BYTES);
            let Ok(bytes) = http_body_util::BodyExt::collect(limited).await.map(|c| c.to_bytes()) else {
                return ApiError::BadRequest("licence request too large or unreadable".into()).into_response();
            };
            crate::keys::clearkey_route(st, &parts.headers, parts.uri.query(), &bytes)
        }
        Route::Key(kid) => crate::keys::key_route(st, req.headers(), req.uri().query(), &kid),
        Route::Metrics => {
            let mut text = st.metrics.render();
            if let Some(c) = &st.db_catalog {
                use std::fmt::Write;
                let _ = write!(
                    text,
                    "# HELP sealcast_catalog_version Version of the catalog in force.\n# TYPE sealcast_catalog_version gauge\nsealcast_catalog_version {}\n\
                     # HELP sealcast_catalog_degraded 1 while the catalog database cannot be read (the last good catalog is served).\n# TYPE sealcast_catalog_degraded gauge\nsealcast_catalog_degraded {}\n\
                     # HELP sealcast_catalog_reload_failures_total Failed checks or loads of the catalog database.\n# TYPE sealcast_catalog_reload_failures_total counter\nsealcast_catalog_reload_failures_total {}\n\
                     # HELP sealcast_catalog_last_success_timestamp_seconds When the catalog database was last read successfully.\n# TYPE sealcast_catalog_last_success_timestamp_seconds gauge\nsealcast_catalog_last_success_timestamp_seconds {}\n",
                    c.version(),
                    u8::from(c.degraded().is_some()),
                    c.reload_failures(),
                    c.last_load()
                );
            }
            text.push_str("# HELP sealcast_access_signatures_verified_total Signed URL signatures verified with a public-key operation (each is then cached).\n# TYPE sealcast_access_signatures_verified_total counter\n");
            text.push_str(&format!("sealcast_access_signatures_verified_total {}\n", st.access.signatures_verified()));
            let mut r = (StatusCode::OK, text).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Route::Health => (StatusCode::OK, "ok\n").into_response(),
        Route::Ready => ready(st),
        Route::Asset(a) => {
            // Access control: the one check of every asset URL, from the typed route, before
            // the delivery decision and any storage read.
            let policy = st.access.policy_or_default(st.catalog.access(&a.asset));
            let peer = req.extensions().get::<crate::access::PeerAddr>().map(|p| p.0);
            let presented = crate::access::Presented { uri: req.uri(), headers: req.headers(), peer };
            let carry = match st.access.check(&policy, &presented, st.now_unix()) {
                Ok(c) => {
                    if policy.is_signed() {
                        st.metrics.access_granted();
                    }
                    c
                }
                Err(r) => return access_refused(st, req.uri().path(), r),
            };
            let ctx = Ctx { st, method: req.method(), headers: req.headers(), path: req.uri().path(), query: req.uri().query(), carry };
            let mut res = handlers::asset(&ctx, &a).await;
            if matches!(res, Err(ApiError::SourceChanged(_))) {
                // A source file was replaced after it was indexed; its asset is gone from the
                // cache, so one more try answers from the new version (a second change answers 503).
                res = handlers::asset(&ctx, &a).await;
            }
            match res {
                Ok(reply) => ctx.answer(reply),
                Err(e) => refused(ctx.path, e),
            }
        }
    }
}

/// The answer to a request access control refused: 403, the fixed reason, never stored.
/// Neither the log line nor the body shows the credential (only the path and the reason).
fn access_refused(st: &AppState, path: &str, r: crate::access::Refused) -> Response {
    st.metrics.access_refused(r.0);
    tracing::debug!(path = %path, reason = r.0, "access refused");
    let mut res = (StatusCode::FORBIDDEN, format!("forbidden: {}\n", r.0)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The CORS preflight answer (Range, conditional and Authorization headers make requests
/// non-simple).
fn preflight() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, POST, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Range, If-None-Match, If-Range, If-Modified-Since, Authorization, Content-Type"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
    r
}

/// The error response of a refused or failed request, logged by who was at fault.
fn refused(path: &str, e: ApiError) -> Response {
    match &e {
        ApiError::Content { asset, detail } => tracing::warn!(asset = %asset, fault = %detail, "cannot package asset"),
        ApiError::Storage(_) | ApiError::StorageBusy { .. } | ApiError::StorageTimeout(_) | ApiError::StorageUpstream(_) => tracing::warn!(path = %path, error = %e, "storage fault"),
        _ => tracing::debug!(path = %path, error = %e, "request refused"),
    }
    e.into_response()
}

/// `sealcast catalog check`: per asset (the catalog's, then those found in storage without a
/// catalog entry) and protocol, what requests will get, as a text table.
pub async fn catalog_check(cfg: &Config) -> anyhow::Result<String> {
    use std::fmt::Write;
    let state = AppState::new(cfg)?;
    let mut rows: Vec<(String, Option<Arc<crate::catalog::AssetPolicy>>)> = state.toml_catalog.as_ref().map(|t| t.assets().into_iter().map(|(a, p)| (a, Some(p))).collect()).unwrap_or_default();
    for a in discover(state.assets.store(), 6, 10_000).await {
        if state.catalog.policy(&a).is_none() {
            rows.push((a, None));
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "# allow_clear_without_policy = {}", cfg.allow_clear_without_policy);
    for (asset, policy) in rows {
        let at_rest = if policy.as_ref().is_some_and(|p| p.storage.is_some()) { "encrypted at rest" } else if policy.is_some() { "in catalog" } else { "no policy" };
        let _ = writeln!(out, "{asset} ({at_rest})");
        for (proto, verdict) in crate::decide::describe(&asset, policy, cfg.allow_clear_without_policy) {
            let _ = writeln!(out, "  {proto:<9} {verdict}");
        }
        let _ = writeln!(out, "  {:<9} {}", "access", state.access.policy_or_default(state.catalog.access(&asset)).describe());
    }
    Ok(out)
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
