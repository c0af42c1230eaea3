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
use crate::respond::{Answer, Wire};
use crate::route::{self, Route, RouteError};

/// Where the server reads the time (token expiry): the system clock, or a fixed or stepped
/// one in tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Shared state of a running server.
pub struct AppState {
    /// Assets and caches.
    pub assets: Assets,
    pub(crate) seg_cc: HeaderValue,
    /// Segments of at least this many source bytes are sent from their files where they can
    /// be ([`Config::send_files_min_bytes`]).
    pub(crate) send_files_min: u64,
    pub(crate) manifest_cc: HeaderValue,
    locators: std::collections::BTreeMap<String, String>,
    /// Policies and keys.
    pub catalog: Arc<dyn Catalog>,
    /// The TOML catalog, when that is what `catalog` is (for reloads).
    pub toml_catalog: Option<Arc<TomlCatalog>>,
    /// The database catalog, when that is what `catalog` is (for metrics).
    pub db_catalog: Option<Arc<crate::catalog::db::DbCatalog>>,
    pub(crate) allow_clear: bool,
    /// What `/metrics` (on the metrics listener) shows.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The access log, when `[access_log]` is configured.
    pub access_log: Option<crate::access_log::AccessLog>,
    /// Set on SIGTERM: readiness answers 503 while requests are still served.
    pub draining: std::sync::atomic::AtomicBool,
    /// Per-request histograms are kept (a metrics listener is configured).
    record_requests: bool,
    /// Access control: the CDN-only gate, the default policy, verified signatures.
    pub access: crate::access::Access,
    clock: Clock,
    /// HLS AES-128 segments of concurrent requests, encrypted together.
    pub(crate) cbc: crate::cbc_batch::CbcBatch,
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
        let crate::config::CatalogStore::Database { url, kek, create_kek } = cfg.catalog_store()? else {
            return Self::new(cfg);
        };
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
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let store = store.with_observer(Arc::new(crate::metrics::StoreObserver(metrics.clone()))).with_send_files(cfg.send_files);
        let assets = Assets::new(store, cfg.package_options(), cfg.index_read_ahead, cfg.cache.index_bytes, cfg.cache.asset_bytes, Duration::from_secs(cfg.cache.asset_ttl_secs.max(1)))
            .with_negative_ttl(Duration::from_millis(cfg.cache.negative_ttl_ms))
            .with_limits(&cfg.content_limits)
            .with_fragment_cache(cfg.cache.fragment_bytes);
        Arc::new(AppState {
            assets,
            seg_cc: HeaderValue::from_str(&cfg.cache_control.segments).expect("validated at start-up"),
            send_files_min: cfg.send_files_min_bytes,
            manifest_cc: HeaderValue::from_str(&cfg.cache_control.manifests).expect("validated at start-up"),
            locators: cfg.locators.clone(),
            catalog,
            toml_catalog: toml,
            db_catalog: None,
            allow_clear: cfg.allow_clear_without_policy,
            metrics,
            // Checked by `Config::validate` (which starts and drops one); should it fail here
            // anyway, the server runs without an access log and says so.
            access_log: cfg
                .access_log
                .as_ref()
                .and_then(|c| crate::access_log::AccessLog::start(c).map_err(|e| tracing::error!(error = %format!("{e:#}"), "access log unusable: running without one")).ok()),
            draining: std::sync::atomic::AtomicBool::new(false),
            record_requests: cfg.metrics.is_some(),
            // Validated at start-up; should it fail here anyway, every asset is refused.
            access: crate::access::Access::new(&cfg.access, |p| std::fs::read_to_string(p)).unwrap_or_else(|e| {
                tracing::error!(error = %e, "access configuration unusable: refusing every asset request");
                crate::access::Access::deny_all()
            }),
            clock: Arc::new(SystemTime::now),
            cbc: Default::default(),
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

/// `/readyz`: 200 while the server should get traffic; 503 naming why not: draining
/// (SIGTERM), a database catalog that cannot reach its database (it serves its last good
/// copy, but a load balancer should prefer replicas that are current), or a store whose
/// circuit breaker is open.
fn ready(st: &AppState) -> Response {
    let open: Vec<String> = st.assets.store().backends().into_iter().filter(|b| b.guard.breaker == sealcast_storage::BreakerState::Open).map(|b| b.name).collect();
    let mut r = if st.draining.load(std::sync::atomic::Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_string()).into_response()
    } else if let Some(why) = st.catalog.degraded() {
        (StatusCode::SERVICE_UNAVAILABLE, format!("degraded: catalog database: {}\n", why.lines().next().unwrap_or(""))).into_response()
    } else if !open.is_empty() {
        // Half-open (probing) counts as ready: the probe decides, and a replica that would
        // never be sent traffic could never close its breaker.
        (StatusCode::SERVICE_UNAVAILABLE, format!("degraded: storage circuit open: {}\n", open.join(", "))).into_response()
    } else {
        (StatusCode::OK, "ready\n".to_string()).into_response()
    };
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The router: every request goes to [`handle`]. (In-process tests use it; the listener calls
/// [`serve_request`] without it.)
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(routed).with_state(state)
}

/// [`handle`] behind the router: the peer, if any, comes as a request extension.
async fn routed(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let peer = req.extensions().get::<crate::access::PeerAddr>().map(|p| p.0);
    let a = handle(st, req, peer, Wire::Map).await;
    debug_assert!(a.lines.is_none(), "headers in the map for the router");
    a.response
}

/// One request as the listener serves it: [`handle`] called directly, plus the two things
/// axum's router adds to a fallback's response, so both paths answer alike: a
/// `Content-Length` from an exactly known body size when the handler set none, and no body
/// for `HEAD`.
///
/// Called without the router because its work is the largest part of a small response's CPU:
/// callgrind put the router's boxing, `oneshot` and path-parameter map at about 3,000 of
/// /healthz's 21,000 instructions (benches/README.md, "the stack without axum's router").
pub(crate) async fn serve_request(st: Arc<AppState>, req: Request, peer: std::net::SocketAddr, wire: Wire) -> Answer {
    let head = req.method() == http::Method::HEAD;
    let mut a = handle(st, req, Some(peer), wire).await;
    let r = &mut a.response;
    // Prebuilt lines hold their Content-Length.
    if a.lines.is_none() && !r.headers().contains_key(header::CONTENT_LENGTH) {
        if let Some(n) = http_body::Body::size_hint(r.body()).exact() {
            r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    if head {
        *r.body_mut() = axum::body::Body::empty();
    }
    a
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

/// What a request was, for its metrics and access-log line.
#[derive(Debug, Clone, Copy)]
pub struct Tag {
    /// Route kind.
    pub route: &'static str,
    /// Protocol.
    pub protocol: &'static str,
    /// Protection (set once the delivery decision is made).
    pub protection: &'static str,
    /// Whether the route reads content (so `cache` hit or miss means something).
    pub content: bool,
}

impl Tag {
    const OTHER: Tag = Tag { route: "other", protocol: "none", protection: "none", content: false };

    fn of(route: &Route) -> Tag {
        let t = |route, protocol| Tag { route, protocol, protection: "none", content: false };
        match route {
            Route::Preflight => t("preflight", "none"),
            Route::ClearKey => t("licence", "none"),
            Route::Key(_) => t("key", "none"),
            Route::Metrics | Route::Health | Route::Ready => t("probe", "none"),
            Route::Asset(a) => Tag { content: true, ..Tag::of_resource(&a.resource) },
        }
    }

    fn of_resource(r: &route::Resource) -> Tag {
        use route::{Container, ManifestKind, Resource};
        let hls = |c: &Container| if *c == Container::Ts { "hls_ts" } else { "hls" };
        let seg = |c: &Container| {
            if *c == Container::Ts {
                "hls_ts"
            } else {
                "cmaf"
            }
        };
        let (route, protocol) = match r {
            Resource::Manifest { kind: ManifestKind::Mpd, .. } => ("manifest", "dash"),
            Resource::Manifest { kind: ManifestKind::Master(c), .. } => ("manifest", hls(c)),
            Resource::Manifest { kind: ManifestKind::Smooth, .. } => ("manifest", "smooth"),
            Resource::MediaPlaylist { container, .. } | Resource::IFramePlaylist { container, .. } => ("playlist", hls(container)),
            Resource::Init { .. } => ("init", "cmaf"),
            Resource::Segment { container, .. } | Resource::IFrameSegment { container, .. } => ("segment", seg(container)),
            Resource::SmoothFragment { .. } | Resource::AmsEncryptedFragment(_) => ("segment", "smooth"),
            Resource::Download { .. } => ("download", "progressive"),
            // Subtitles: the whole WebVTT file and the stpp files are DASH's, playlists and segments HLS's.
            Resource::Text { file: route::TextFile::Whole | route::TextFile::StppInit | route::TextFile::StppSegment(_), .. } => ("text", "dash"),
            Resource::Text { file: route::TextFile::Playlist(c) | route::TextFile::Segment(c, _), .. } => ("text", hls(c)),
        };
        Tag { route, protocol, protection: "none", content: true }
    }
}

/// The protection label of a delivery decision for a request of `protocol`.
pub fn protection_label(served: &crate::decide::Served, protocol: &str) -> &'static str {
    use crate::protection::Encryption;
    match served {
        crate::decide::Served::Clear => "clear",
        crate::decide::Served::Protected { method: Encryption::Cenc, .. } if protocol == "smooth" => "piff",
        crate::decide::Served::Protected { method: Encryption::Cenc, .. } => "cenc",
        crate::decide::Served::Protected { method: Encryption::Cbcs, .. } if protocol == "hls_ts" => "sample_aes",
        crate::decide::Served::Protected { method: Encryption::Cbcs, .. } => "cbcs",
        crate::decide::Served::Protected { method: Encryption::Aes128, .. } => "aes128",
    }
}

fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

/// Counts the request in flight while alive (also when the client goes away mid-request).
struct Active<'a>(&'a crate::metrics::Metrics);

impl<'a> Active<'a> {
    fn new(m: &'a crate::metrics::Metrics) -> Self {
        m.active(1);
        Active(m)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.active(-1);
    }
}

async fn handle(st: Arc<AppState>, req: Request, peer: Option<std::net::SocketAddr>, wire: Wire) -> Answer {
    // The clock is read only when something records the time taken.
    let started = (st.record_requests || st.access_log.is_some()).then(std::time::Instant::now);
    let _active = Active::new(&st.metrics);
    let method = method_label(req.method());
    // What the access log needs of the request, taken before the handler consumes it.
    // Nothing is formatted or allocated here for the common case (no forwarding proxy).
    let logged = st.access_log.as_ref().map(|log| {
        let id = crate::access_log::AccessLog::given_request_id(req.headers()).map(str::to_string);
        (log.next(), id, log.forwarded_client(peer, req.headers()), peer, req.uri().clone())
    });
    // Storage reads are counted per request only for the access log (its `cache` field).
    let (mut a, tag, asset, reads) = if logged.is_some() {
        crate::metrics::REQUEST_STORAGE_READS
            .scope(std::cell::Cell::new(0), async {
                let (r, tag, asset) = handle_inner(&st, req, peer, wire).await;
                (r, tag, asset, crate::metrics::REQUEST_STORAGE_READS.with(|c| c.get()))
            })
            .await
    } else {
        let (r, tag, asset) = handle_inner(&st, req, peer, wire).await;
        (r, tag, asset, 0)
    };
    let status = a.response.status().as_u16();
    let elapsed = started.map(|t| t.elapsed()).unwrap_or_default();
    let bytes = http_body::Body::size_hint(a.response.body()).exact().unwrap_or(0);
    st.metrics.response(status);
    if st.record_requests {
        let labels = crate::metrics::RequestLabels {
            http_request_method: method,
            http_route: tag.route,
            protocol: tag.protocol,
            protection: tag.protection,
            status_class: crate::metrics::status_class(status),
        };
        st.metrics.request(&labels, elapsed, bytes);
    }
    if let (Some(log), Some((n, id, client, peer, uri))) = (&st.access_log, logged) {
        if log.wanted(status, n) {
            let entry = crate::access_log::Entry {
                request_id: id.as_deref(),
                n,
                client: client.as_deref(),
                peer,
                method,
                path: uri.path(),
                route: tag.route,
                asset: asset.as_deref(),
                protocol: tag.protocol,
                protection: tag.protection,
                status,
                bytes,
                duration: elapsed,
                cache: tag.content.then_some(if reads == 0 { "hit" } else { "miss" }),
                storage_reads: reads,
            };
            if !log.write(&entry) {
                st.metrics.access_log_dropped();
            }
        }
    }
    // Prebuilt lines have CORS in them.
    if a.lines.is_none() {
        cors(a.response.headers_mut());
    }
    a
}

/// CORS for browser players: content is public, so any origin may read it. Static headers
/// rather than a layer: no `Vary`, nothing computed per request. Kept when already there (a
/// cached manifest's prebuilt headers carry them).
pub(crate) fn cors(h: &mut http::HeaderMap) {
    if !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Content-Length, Content-Range, ETag, Accept-Ranges, Last-Modified"));
    }
}

async fn handle_inner(st: &AppState, req: Request, peer: Option<std::net::SocketAddr>, wire: Wire) -> (Answer, Tag, Option<String>) {
    // The CDN-only gate comes before anything else (health probes excepted).
    if let Err(r) = st.access.gate(req.uri().path(), req.headers()) {
        return (access_refused(st, req.uri().path(), r).into(), Tag::OTHER, None);
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
            return (r.into(), Tag::OTHER, None);
        }
        Err(RouteError::Api(e)) => return (refused(req.uri().path(), e).into(), Tag::OTHER, None),
    };
    let mut tag = Tag::of(&route);
    let r = match route {
        Route::Preflight => preflight(),
        Route::ClearKey => {
            let (parts, body) = req.into_parts();
            // Licence requests are small; anything larger is refused before it is buffered.
            let limited = http_body_util::Limited::new(body, sealcast_drm::clearkey::MAX_LICENSE_REQUEST_BYTES);
            let Ok(bytes) = http_body_util::BodyExt::collect(limited).await.map(|c| c.to_bytes()) else {
                return (ApiError::BadRequest("licence request too large or unreadable".into()).into_response().into(), tag, None);
            };
            crate::keys::clearkey_route(st, &parts.headers, parts.uri.query(), &bytes)
        }
        Route::Key(kid) => crate::keys::key_route(st, req.headers(), req.uri().query(), &kid),
        // Metrics are for operators, on the metrics listener ([`metrics_router`]) only.
        Route::Metrics => refused(req.uri().path(), ApiError::NotFound("no such resource (metrics are served on the metrics listener)".into())),
        Route::Health => (StatusCode::OK, "ok\n").into_response(),
        Route::Ready => ready(st),
        Route::Asset(a) => {
            // Access control: the one check of every asset URL, from the typed route, before
            // the delivery decision and any storage read.
            let policy = st.access.policy_or_default(st.catalog.access(&a.asset));
            let presented = crate::access::Presented { uri: req.uri(), headers: req.headers(), peer };
            let carry = match st.access.check(&policy, &presented, || st.now_unix()) {
                Ok(c) => {
                    if policy.is_signed() {
                        st.metrics.access_granted();
                    }
                    c
                }
                Err(r) => return (access_refused(st, req.uri().path(), r).into(), tag, Some(a.asset)),
            };
            let ctx = Ctx { st, method: req.method(), headers: req.headers(), path: req.uri().path(), query: req.uri().query(), carry, served: std::sync::OnceLock::new(), wire };
            // Boxed: the asset handler's future is large, and every future around it (down to
            // the connection's) would otherwise carry and copy its size for every request,
            // probes included.
            let mut res = Box::pin(handlers::asset(&ctx, &a)).await;
            if matches!(res, Err(ApiError::SourceChanged(_))) {
                // A source file was replaced after it was indexed; its asset is gone from the
                // cache, so one more try answers from the new version (a second change answers 503).
                res = Box::pin(handlers::asset(&ctx, &a)).await;
            }
            if let Some(served) = ctx.served.get() {
                tag.protection = protection_label(served, tag.protocol);
            }
            let r = match res {
                Ok(reply) => ctx.answer(reply),
                Err(e) => refused(ctx.path, e).into(),
            };
            return (r, tag, Some(a.asset));
        }
    };
    (r.into(), tag, None)
}

/// The metrics listener's router: `/metrics` (Prometheus text format 0.0.4) and `/healthz`.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new().fallback(metrics_handle).with_state(state)
}

async fn metrics_handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    match req.uri().path() {
        "/metrics" => {
            let mut r = (StatusCode::OK, metrics_text(&st).await).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        "/healthz" => (StatusCode::OK, "ok\n").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The exposition text of everything `st` counts and holds.
pub async fn metrics_text(st: &AppState) -> String {
    st.assets.sync_caches().await;
    let store = st.assets.store();
    let c = store.counters();
    let mut caches = st.assets.cache_states();
    caches.push(crate::metrics::CacheState {
        name: "fragment",
        hits: c.fragment_hits.load(std::sync::atomic::Ordering::Relaxed),
        misses: c.fragment_misses.load(std::sync::atomic::Ordering::Relaxed),
        // Reads that joined an identical one in flight (fragment reads, and remote reads).
        joins: c.coalesced_reads.load(std::sync::atomic::Ordering::Relaxed),
        evictions: c.fragment_evictions.load(std::sync::atomic::Ordering::Relaxed),
        entries: store.fragment_cache_entries(),
        bytes: store.fragment_cache_bytes(),
        budget: store.fragment_cache_budget(),
    });
    let scrape = crate::metrics::Scrape {
        caches,
        stores: store.backends(),
        storage_coalesced_reads: c.coalesced_reads.load(std::sync::atomic::Ordering::Relaxed),
        storage_sent_from_files: c.bytes_sent_from_files.load(std::sync::atomic::Ordering::Relaxed),
        catalog: st.db_catalog.as_ref().map(|c| (c.version(), c.degraded().is_some(), c.reload_failures(), c.last_load())),
        signatures_verified: st.access.signatures_verified(),
        draining: st.draining.load(std::sync::atomic::Ordering::Relaxed),
    };
    st.metrics.render(scrape)
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
        ApiError::Content { asset, detail } => {
            tracing::warn!(asset = %asset, fault = %detail, "cannot package asset")
        }
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
        let at_rest = if policy.as_ref().is_some_and(|p| p.storage.is_some()) {
            "encrypted at rest"
        } else if policy.is_some() {
            "in catalog"
        } else {
            "no policy"
        };
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
            let Ok(subs) = store.list_subdirs(dir).await else {
                continue;
            };
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

#[cfg(test)]
mod future_sizes {
    use super::*;

    /// What moving a request's future costs: hyper boxes the service future of every request
    /// (a memcpy of its whole size, whatever branch runs), so branches that hold big futures
    /// (asset loading, segment building) are boxed where they run and the per-request future
    /// stays small.
    #[test]
    fn request_futures_stay_small() {
        let fx = sealcast_testkit::fixtures_dir();
        let st = AppState::with_store(&Config { root: fx.clone(), ..Config::default() }, sealcast_storage::Store::local(&fx).unwrap());
        let req = Request::get("/demo/manifest.mpd").body(axum::body::Body::empty()).unwrap();
        let inner = handle_inner(&st, req, None, Wire::Lines);
        let get = st.assets.get("demo");
        eprintln!("handle_inner {} B, Assets::get {} B", std::mem::size_of_val(&inner), std::mem::size_of_val(&get));
        let req = Request::get("/demo/manifest.mpd").body(axum::body::Body::empty()).unwrap();
        let outer = handle(st.clone(), req, None, Wire::Lines);
        let size = std::mem::size_of_val(&outer);
        eprintln!("handle {size} B");
        // 28,208 bytes before the boxing (2,952 after, rustc 1.95): ~28,000 instructions of
        // memcpy per request under callgrind, half of a cached manifest's.
        assert!(size <= 4096, "the request future is {size} bytes: box the branch that grew it");
        assert!(std::mem::size_of_val(&get) <= 1024, "Assets::get's hit path carries its miss path again");
    }
}
