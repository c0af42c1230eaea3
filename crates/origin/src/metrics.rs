//! What operators scrape: Prometheus exposition (text format 0.0.4) built with
//! `prometheus-client`, served on the metrics listener (`[metrics] listen`), never on the
//! public port.
//!
//! Names follow OpenTelemetry's HTTP semantic conventions where they exist
//! (`http_server_request_duration_seconds`, `http_server_active_requests`,
//! `http_server_response_body_size_bytes`); the rest are `sealcast_*`. Every label value comes
//! from a fixed set (route kinds, protocols, protections, status classes, refusal reasons,
//! configured store prefixes), never from request input, so the series count stays bounded.
//!
//! Two kinds of figures:
//! - events counted where they happen (requests, storage operations, key refusals), in the
//!   registry's counters and histograms;
//! - states read when scraped (cache entries and bytes, breaker states, catalog version,
//!   process RSS and descriptors), by [`Metrics::render`]'s collector from a [`Scrape`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// One label, fixed name and value.
type L1 = [(&'static str, &'static str); 1];
/// Two labels.
type L2 = [(&'static str, &'static str); 2];

/// The request-handle cache's key: the label strings by address and length (they are all
/// `&'static`), so a lookup hashes ten words instead of five strings. Equal strings at two
/// addresses only make two entries for the same series (the families key by content).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct LabelsKey([(usize, usize); 5]);

impl LabelsKey {
    fn of(l: &RequestLabels) -> Self {
        let at = |s: &'static str| (s.as_ptr() as usize, s.len());
        LabelsKey([at(l.http_request_method), at(l.http_route), at(l.protocol), at(l.protection), at(l.status_class)])
    }
}

/// Labels of a request's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `GET`, `HEAD`, `POST`, `OPTIONS` or `_OTHER` (OpenTelemetry's name for the rest).
    pub http_request_method: &'static str,
    /// What was asked for: `manifest`, `playlist`, `init`, `segment`, `download`, `key`,
    /// `licence`, `probe`, `preflight` or `other` (unknown paths, refusals before routing).
    pub http_route: &'static str,
    /// `dash`, `hls`, `hls_ts`, `cmaf` (fMP4 segments, shared by DASH and HLS), `smooth` or
    /// `none`.
    pub protocol: &'static str,
    /// `clear`, `cenc`, `cbcs`, `aes128`, `sample_aes`, `piff` or `none` (not media).
    pub protection: &'static str,
    /// `1xx` … `5xx`.
    pub status_class: &'static str,
}

/// Labels of a storage operation's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: String,
    operation: &'static str,
    outcome: &'static str,
}

/// Hit and miss counts of one of the origin's caches (the figures moka does not keep).
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
    /// Lookups that were not (built, loaded, or joined a build in flight).
    pub misses: AtomicU64,
    /// Misses that joined a build already in flight instead of starting one.
    pub joins: AtomicU64,
    /// Entries dropped to stay within the budget.
    pub evictions: AtomicU64,
}

impl CacheCounters {
    /// Counts a lookup.
    pub fn lookup(&self, hit: bool) {
        if hit { &self.hits } else { &self.misses }.fetch_add(1, Ordering::Relaxed);
    }
}

/// One cache's state when scraped.
#[derive(Debug, Clone)]
pub struct CacheState {
    /// `index`, `asset`, `fragment` or `negative`.
    pub name: &'static str,
    /// Hits so far.
    pub hits: u64,
    /// Misses so far.
    pub misses: u64,
    /// Joins so far.
    pub joins: u64,
    /// Evictions so far.
    pub evictions: u64,
    /// Entries now.
    pub entries: u64,
    /// Bytes now (weighted size; entries for the negative cache).
    pub bytes: u64,
    /// The budget `bytes` is held to.
    pub budget: u64,
}

/// Everything read at scrape time, gathered by the server and handed to [`Metrics::render`].
#[derive(Debug, Default)]
pub struct Scrape {
    /// The caches.
    pub caches: Vec<CacheState>,
    /// The remote stores' guards.
    pub stores: Vec<sealcast_storage::BackendStatus>,
    /// Reads that joined an identical read in flight.
    pub storage_coalesced_reads: u64,
    /// Bytes sent from local files as they lie in the page cache (`sendfile`).
    pub storage_sent_from_files: u64,
    /// The catalog: version in force, degraded, reload failures, last success (Unix s).
    pub catalog: Option<(i64, bool, u64, i64)>,
    /// Signed-URL signatures verified with a public-key operation.
    pub signatures_verified: u64,
    /// 1 while draining.
    pub draining: bool,
}

/// Request-duration buckets in seconds: 100 µs to ~6.5 s, doubling.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Response-size buckets in bytes: 256 B to 64 MiB, ×4.
fn size_buckets() -> Histogram {
    Histogram::new(exponential_buckets(256.0, 4.0, 10))
}

/// Storage-latency buckets in seconds: 50 µs to ~13 s, doubling.
fn storage_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 19))
}

/// The origin's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    response_size: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// The two histograms of each request label set seen, in one map with a fast hash: the
    /// families' own lookups (SipHash of the labels, once per family) cost ~1,700 instructions
    /// a request (callgrind), a tenth of what metrics and the access log add to a cached
    /// manifest. Bounded by the fixed label sets.
    request_handles: std::sync::RwLock<std::collections::HashMap<LabelsKey, (Histogram, Histogram), rustc_hash::FxBuildHasher>>,
    active_requests: Gauge,
    responses: Family<L1, Counter>,
    /// The series of `responses` by status class, looked up once (the family's lookup hashes
    /// its labels with SipHash for every response).
    response_classes: [Counter; 5],
    keys_delivered: Family<L1, Counter>,
    keys_refused: Family<L2, Counter>,
    token_checks: Counter,
    access_refused: Family<L1, Counter>,
    access_granted: Counter,
    connections_open: Gauge,
    limits_hit: Family<L1, Counter>,
    tls_handshakes: Family<L1, Counter>,
    store_ops: Family<StoreLabels, Histogram, fn() -> Histogram>,
    store_bytes: Family<[(&'static str, String); 1], Counter>,
    access_log_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let requests = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(duration_buckets);
        let response_size = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(size_buckets);
        let store_ops = Family::<StoreLabels, Histogram, fn() -> Histogram>::new_with_constructor(storage_buckets);
        let m = Metrics {
            registry: Registry::default(),
            requests,
            response_size,
            request_handles: Default::default(),
            active_requests: Gauge::default(),
            responses: Family::default(),
            response_classes: Default::default(),
            keys_delivered: Family::default(),
            keys_refused: Family::default(),
            token_checks: Counter::default(),
            access_refused: Family::default(),
            access_granted: Counter::default(),
            connections_open: Gauge::default(),
            limits_hit: Family::default(),
            tls_handshakes: Family::default(),
            store_ops,
            store_bytes: Family::default(),
            access_log_dropped: Counter::default(),
        };
        r.register(
            "http_server_request_duration_seconds",
            "Time from the request to its response head (bodies are built in memory before), by route kind, protocol, protection and status class",
            m.requests.clone(),
        );
        r.register("http_server_response_body_size_bytes", "Response body sizes", m.response_size.clone());
        r.register("http_server_active_requests", "Requests being answered now", m.active_requests.clone());
        r.register("sealcast_responses", "HTTP responses by status class", m.responses.clone());
        r.register("sealcast_keys_delivered", "Keys and licences handed out", m.keys_delivered.clone());
        r.register("sealcast_keys_refused", "Key and licence requests refused, by reason", m.keys_refused.clone());
        r.register("sealcast_token_checks", "Tokens checked (signature and claims) for token-restricted keys", m.token_checks.clone());
        r.register("sealcast_access_refused", "Asset requests refused by access control, by reason", m.access_refused.clone());
        r.register("sealcast_access_granted", "Asset requests admitted by a signed URL, cookie or token", m.access_granted.clone());
        r.register("sealcast_connections_open", "Connections open now", m.connections_open.clone());
        r.register("sealcast_limits", "Connections refused or closed, and requests timed out, by the limit enforced", m.limits_hit.clone());
        r.register("sealcast_tls_handshakes", "TLS handshakes by outcome", m.tls_handshakes.clone());
        r.register("sealcast_storage_operation_duration_seconds", "Storage operations sent to a backend, by store, operation and outcome", m.store_ops.clone());
        r.register("sealcast_storage_read_bytes", "Bytes read from storage (decrypted size for storage-encrypted files), by store", m.store_bytes.clone());
        r.register("sealcast_access_log_dropped", "Access-log lines dropped because the writer fell behind", m.access_log_dropped.clone());
        // Series of the fixed label sets exist from the start (at 0), so queries and alerts
        // see them before the first event and `rate()` has a starting point.
        for o in ["ok", "failed", "timeout"] {
            drop(m.tls_handshakes.get_or_create(&[("outcome", o)]));
        }
        for svc in ["key", "clearkey"] {
            drop(m.keys_delivered.get_or_create(&[("service", svc)]));
        }
        let response_classes = CLASSES.map(|c| m.responses.get_or_create(&[("class", c)]).clone());
        use sealcast_drm::signed::Reason;
        let reasons = [Reason::Expired, Reason::NotYetValid, Reason::BadSignature, Reason::ResourceMismatch, Reason::IpMismatch, Reason::UnknownKey, Reason::Missing];
        for reason in reasons.iter().map(|r| r.as_str()).chain(["origin_header"]) {
            drop(m.access_refused.get_or_create(&[("reason", reason)]));
        }
        Metrics { registry: r, response_classes, ..m }
    }

    /// A request ended (its response head is ready): `elapsed` since it arrived, `bytes` of body.
    pub fn request(&self, labels: &RequestLabels, elapsed: Duration, bytes: u64) {
        let observe = |(d, s): &(Histogram, Histogram)| {
            d.observe(elapsed.as_secs_f64());
            s.observe(bytes as f64);
        };
        let key = LabelsKey::of(labels);
        if let Some(pair) = self.request_handles.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return observe(pair);
        }
        // First request with these labels: the families' series (shared, not copied).
        let pair = (self.requests.get_or_create(labels).clone(), self.response_size.get_or_create(labels).clone());
        observe(&pair);
        self.request_handles.write().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(pair);
    }

    /// A request arrived (`1`) or was answered (`-1`).
    pub fn active(&self, delta: i64) {
        self.active_requests.inc_by(delta);
    }

    /// A key (or licence) was handed out by `service` (`key`, `clearkey`).
    pub fn key_delivered(&self, service: &'static str) {
        self.keys_delivered.get_or_create(&[("service", service)]).inc();
    }

    /// `service` refused a key for `reason`.
    pub fn key_refused(&self, service: &'static str, reason: &'static str) {
        self.keys_refused.get_or_create(&[("service", service), ("reason", reason)]).inc();
    }

    /// A token was checked (signature and claims) for a token-restricted key.
    pub fn token_checked(&self) {
        self.token_checks.inc();
    }

    /// Tokens checked so far.
    pub fn token_checks(&self) -> u64 {
        self.token_checks.get()
    }

    /// Access control refused a request for `reason` (a fixed label).
    pub fn access_refused(&self, reason: &'static str) {
        self.access_refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// A signed-access policy admitted a request.
    pub fn access_granted(&self) {
        self.access_granted.inc();
    }

    /// How many requests access control refused for `reason` so far.
    pub fn access_refusals(&self, reason: &'static str) -> u64 {
        self.access_refused.get(&[("reason", reason)]).map_or(0, |c| c.get())
    }

    /// Counts a response status.
    pub fn response(&self, status: u16) {
        self.response_classes[class_index(status)].inc();
    }

    /// A connection opened (`1`) or closed (`-1`).
    pub fn connections_open(&self, delta: i64) {
        self.connections_open.inc_by(delta);
    }

    /// Connections open now.
    pub fn connections(&self) -> i64 {
        self.connections_open.get()
    }

    /// A connection limit was enforced: `limit` is one of `max_connections`, `idle_timeout`,
    /// `write_timeout`, `response_stalled`, `request_timeout`, `response_bytes`,
    /// `tls_handshake_timeout`, `drain`.
    pub fn limit_hit(&self, limit: &'static str) {
        self.limits_hit.get_or_create(&[("limit", limit)]).inc();
    }

    /// How many times `limit` was enforced so far.
    pub fn limits_hit(&self, limit: &'static str) -> u64 {
        self.limits_hit.get(&[("limit", limit)]).map_or(0, |c| c.get())
    }

    /// How many keys `service` refused for `reason` so far.
    pub fn refused(&self, service: &'static str, reason: &'static str) -> u64 {
        self.keys_refused.get(&[("service", service), ("reason", reason)]).map_or(0, |c| c.get())
    }

    /// A TLS handshake ended: `ok`, `failed` or `timeout`.
    pub fn tls_handshake(&self, outcome: &'static str) {
        self.tls_handshakes.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// An access-log line was dropped.
    pub fn access_log_dropped(&self) {
        self.access_log_dropped.inc();
    }

    /// The exposition text: the registry, then the states in `scrape` and the process's.
    pub fn render(&self, scrape: Scrape) -> String {
        let mut s = String::with_capacity(16 << 10);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut s, &self.registry);
        let mut states = Registry::default();
        states.register_collector(Box::new(States { scrape, process: process_state() }));
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut s, &states);
        s
    }
}

/// `2xx` for 200 and so on (`1xx` … `5xx`).
pub fn status_class(status: u16) -> &'static str {
    CLASSES[class_index(status)]
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    ((status / 100).clamp(1, 5) - 1) as usize
}

tokio::task_local! {
    /// Storage operations made while answering the current request (for its access-log line).
    pub static REQUEST_STORAGE_READS: Cell<u32>;
}

/// The storage observer: latency histograms per store, operation and outcome, and the
/// current request's read count.
pub struct StoreObserver(pub std::sync::Arc<Metrics>);

impl sealcast_storage::Observer for StoreObserver {
    fn operation(&self, store: &str, op: sealcast_storage::Op, outcome: &'static str, elapsed: Duration, bytes: u64) {
        self.0.store_ops.get_or_create(&StoreLabels { store: store.to_string(), operation: op.as_str(), outcome }).observe(elapsed.as_secs_f64());
        if bytes > 0 {
            self.0.store_bytes.get_or_create(&[("store", store.to_string())]).inc_by(bytes);
        }
        let _ = REQUEST_STORAGE_READS.try_with(|c| c.set(c.get().saturating_add(1)));
    }
}

/// The process's resources, from `/proc/self` (Linux; empty elsewhere).
#[derive(Debug, Default)]
struct ProcessState {
    rss_bytes: Option<u64>,
    threads: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    cpu_seconds: Option<f64>,
    start_time: Option<f64>,
}

fn process_state() -> ProcessState {
    let mut p = ProcessState::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let num = |l: &str| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok());
            if line.starts_with("VmRSS:") {
                p.rss_bytes = num(line).map(|kb| kb * 1024);
            } else if line.starts_with("Threads:") {
                p.threads = num(line);
            }
        }
    }
    p.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        p.max_fds = limits.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)).and_then(|v| v.parse().ok());
    }
    // utime and stime (fields 14 and 15) and starttime (22), in clock ticks; the fields
    // after the parenthesised command name, which may itself hold spaces.
    if let Some(rest) = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_string())) {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = 100.0; // USER_HZ: 100 on every Linux architecture we build for.
        let at = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
        if let (Some(u), Some(s)) = (at(14), at(15)) {
            p.cpu_seconds = Some((u + s) / tick);
        }
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| s.lines().find(|l| l.starts_with("btime ")).and_then(|l| l[6..].trim().parse::<f64>().ok()));
        if let (Some(st), Some(b)) = (at(22), boot) {
            p.start_time = Some(b + st / tick);
        }
    }
    p
}

/// The scrape-time states as metric families.
#[derive(Debug)]
struct States {
    scrape: Scrape,
    process: ProcessState,
}

/// Writes one gauge family of constant samples.
fn gauges<N: prometheus_client::encoding::EncodeGaugeValue, S: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (S, N)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one counter family of constant samples (the encoder adds `_total`).
fn counters<N: prometheus_client::encoding::EncodeCounterValue, S: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (S, N)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A sample without labels.
const NONE: [(&str, &str); 0] = [];

impl Collector for States {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &self.scrape.caches;
        let by_cache = |f: fn(&CacheState) -> u64| c.iter().map(move |s| ([("cache", s.name)], f(s))).collect::<Vec<_>>();
        counters(&mut enc, "sealcast_cache_hits", "Cache lookups answered from the cache", by_cache(|s| s.hits))?;
        counters(&mut enc, "sealcast_cache_misses", "Cache lookups that were not", by_cache(|s| s.misses))?;
        counters(&mut enc, "sealcast_cache_joins", "Misses that joined a load already in flight (single flight)", by_cache(|s| s.joins))?;
        counters(&mut enc, "sealcast_cache_evictions", "Entries dropped to stay within the budget", by_cache(|s| s.evictions))?;
        gauges(&mut enc, "sealcast_cache_entries", "Entries held now", by_cache(|s| s.entries))?;
        gauges(&mut enc, "sealcast_cache_bytes", "Bytes held now (entries for the negative cache)", by_cache(|s| s.bytes))?;
        gauges(&mut enc, "sealcast_cache_budget_bytes", "The budget sealcast_cache_bytes is held to", by_cache(|s| s.budget))?;
        let st = &self.scrape.stores;
        let by_store = |f: fn(&sealcast_storage::BackendStatus) -> u64| st.iter().map(move |s| ([("store", s.name.clone())], f(s))).collect::<Vec<_>>();
        gauges(
            &mut enc,
            "sealcast_storage_breaker_open",
            "1 while the store's circuit breaker is open or probing",
            by_store(|s| u64::from(s.guard.breaker != sealcast_storage::BreakerState::Closed)),
        )?;
        let states = st.iter().flat_map(|s| {
            [sealcast_storage::BreakerState::Closed, sealcast_storage::BreakerState::Open, sealcast_storage::BreakerState::HalfOpen]
                .into_iter()
                .map(move |b| ([("store", s.name.clone()), ("state", b.as_str().to_string())], u64::from(s.guard.breaker == b)))
        });
        gauges(&mut enc, "sealcast_storage_breaker_state", "The store's circuit breaker state (1 for the current one)", states)?;
        counters(&mut enc, "sealcast_storage_breaker_trips", "Times the store's circuit opened", by_store(|s| s.guard.trips))?;
        gauges(&mut enc, "sealcast_storage_in_flight", "Requests to the store in flight now", by_store(|s| s.guard.in_flight))?;
        let attempts = st.iter().filter_map(|s| s.attempts.map(|a| ([("store", s.name.clone())], a)));
        counters(&mut enc, "sealcast_storage_http_attempts", "HTTP requests sent to the store, retries included (retries = these - storage operations)", attempts)?;
        counters(&mut enc, "sealcast_storage_queue_waits", "Requests that waited for an in-flight slot", by_store(|s| s.guard.queue_waits))?;
        counters(&mut enc, "sealcast_storage_queue_rejected", "Requests refused for want of an in-flight slot", by_store(|s| s.guard.queue_rejected))?;
        counters(&mut enc, "sealcast_storage_coalesced_reads", "Reads answered by joining an identical read in flight", [(NONE, self.scrape.storage_coalesced_reads)])?;
        counters(&mut enc, "sealcast_storage_sent_from_files_bytes", "Media bytes sent from local files to sockets as they lie in the page cache (sendfile), not read", [(NONE, self.scrape.storage_sent_from_files)])?;
        counters(&mut enc, "sealcast_access_signatures_verified", "Signed URL signatures verified with a public-key operation (each is then cached)", [(NONE, self.scrape.signatures_verified)])?;
        gauges(&mut enc, "sealcast_draining", "1 while the server drains (readiness answers 503)", [(NONE, u64::from(self.scrape.draining))])?;
        if let Some((version, degraded, failures, last)) = self.scrape.catalog {
            gauges(&mut enc, "sealcast_catalog_version", "Version of the catalog in force", [(NONE, version)])?;
            gauges(&mut enc, "sealcast_catalog_degraded", "1 while the catalog database cannot be read (the last good catalog is served)", [(NONE, i64::from(degraded))])?;
            counters(&mut enc, "sealcast_catalog_reload_failures", "Failed checks or loads of the catalog database", [(NONE, failures)])?;
            gauges(&mut enc, "sealcast_catalog_last_success_timestamp_seconds", "When the catalog database was last read successfully", [(NONE, last)])?;
        }
        let p = &self.process;
        let one = |v: Option<u64>| v.map(|v| (NONE, v));
        gauges(&mut enc, "process_resident_memory_bytes", "Resident memory size in bytes", one(p.rss_bytes))?;
        gauges(&mut enc, "process_threads", "OS threads of the process", one(p.threads))?;
        gauges(&mut enc, "process_open_fds", "Open file descriptors", one(p.open_fds))?;
        gauges(&mut enc, "process_max_fds", "Most file descriptors the process may open", one(p.max_fds))?;
        counters(&mut enc, "process_cpu_seconds", "User and system CPU time spent, seconds", p.cpu_seconds.map(|v| (NONE, v)))?;
        gauges(&mut enc, "process_start_time_seconds", "Start time of the process since the Unix epoch, seconds", p.start_time.map(|v| (NONE, v)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family_and_bounded_labels() {
        let m = Metrics::new();
        let l = RequestLabels { http_request_method: "GET", http_route: "segment", protocol: "cmaf", protection: "cenc", status_class: "2xx" };
        m.request(&l, Duration::from_millis(3), 1 << 20);
        m.response(200);
        m.key_refused("key", "token_missing");
        let text = m.render(Scrape {
            caches: vec![CacheState { name: "fragment", hits: 3, misses: 1, joins: 0, evictions: 0, entries: 1, bytes: 100, budget: 1000 }],
            catalog: Some((7, false, 0, 1_700_000_000)),
            ..Scrape::default()
        });
        for want in [
            "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",http_route=\"segment\",protocol=\"cmaf\",protection=\"cenc\",status_class=\"2xx\",le=\"0.0016\"} 0",
            "http_server_request_duration_seconds_count{http_request_method=\"GET\",http_route=\"segment\",protocol=\"cmaf\",protection=\"cenc\",status_class=\"2xx\"} 1",
            "http_server_response_body_size_bytes_sum{",
            "sealcast_responses_total{class=\"2xx\"} 1",
            "sealcast_keys_refused_total{service=\"key\",reason=\"token_missing\"} 1",
            "sealcast_cache_hits_total{cache=\"fragment\"} 3",
            "sealcast_cache_budget_bytes{cache=\"fragment\"} 1000",
            "sealcast_catalog_version 7",
            "# TYPE process_resident_memory_bytes gauge",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(text.contains("status_class=\"2xx\",le=\"0.0032\"} 1"), "3 ms lands in the 3.2 ms bucket:\n{text}");
    }
}
