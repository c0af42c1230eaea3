//! Blob storage for the origin: ranged reads and listings over `object_store`, with paths
//! checked so no request can reach outside the storage root.
//!
//! The root is a local folder; path prefixes can be routed to S3, Azure Blob or GCS
//! ([`Store::with_guarded_route`], [`remote::open`]). Remote reads are guarded (bounded in
//! flight, deadline, circuit breaker: see `guard.rs`) and concurrent reads of the same range
//! share one request (single flight).
//!
//! Files stored encrypted at rest (whole-file AES-CTR, see [`sealcast_cenc::storage`]) are
//! registered with [`Store::set_encrypted_files`]; [`Store::read_range`] then returns their
//! clear bytes, decrypted in place in the read buffer. Everything above the store sees clear
//! files only.
//!
//! Reads of a known version of an object ([`Store::read_version`], [`Store::read_fragment`])
//! fail with [`Error::Changed`] when the object is no longer that version (remote stores send
//! the version's ETag as `If-Match`; local files are checked for size and modification time),
//! so bytes of two versions are never mixed. [`Store::read_fragment`] keeps hot source ranges
//! in a byte-bounded cache ([`Store::with_fragment_cache`]) keyed by the object's version.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::FutureExt;
use moka::sync::Cache;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt};

#[cfg(target_os = "linux")]
mod cached;
mod confine;
pub mod crypt;
mod flight;
mod guard;
mod mmap;
pub mod remote;
pub mod safe_path;
mod sendable;
pub mod upload;
pub use crypt::FileEncryption;
pub use guard::{BreakerState, GuardStatus};
pub use safe_path::{AssetPath, PathError};
pub use sendable::{offered as files_offered, LocalFile};

/// A storage fault, classified for HTTP status mapping.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such object or folder.
    #[error("not found: {0}")]
    NotFound(String),
    /// The store could not be reached (refused or dropped connections); retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer in time (after retries).
    #[error("storage timeout: {0}")]
    Timeout(String),
    /// The store answered with an error (after retries) or an answer that cannot be used.
    #[error("storage error: {0}")]
    Upstream(String),
    /// The origin refused to send more to a failing or saturated store (circuit open, too many
    /// requests in flight).
    #[error("storage overloaded: {detail}")]
    Overloaded {
        /// What was refused and why.
        detail: String,
        /// Seconds after which a retry may succeed.
        retry_after_secs: u64,
    },
    /// A storage-encryption key or IV could not be used (wrong size); names the file, never
    /// the key.
    #[error("storage encryption of {path}: {detail}")]
    Encryption {
        /// Object path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The object is no longer the version that was indexed (its ETag, size or modification
    /// time changed): index it again before reading.
    #[error("object changed since it was indexed: {0}")]
    Changed(String),
    /// A read returned fewer bytes than asked for (the object changed or is truncated).
    #[error("short read of {path}: wanted {want} bytes, got {got}")]
    ShortRead {
        /// Object path.
        path: String,
        /// Bytes requested.
        want: u64,
        /// Bytes received.
        got: u64,
    },
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => Error::NotFound(path),
            object_store::Error::Precondition { path, .. } => Error::Changed(path),
            other => Error::Unavailable(other.to_string()),
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What we know of an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectInfo {
    /// Path relative to the store root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time (whole seconds).
    pub last_modified: SystemTime,
    /// The store's entity tag, when it has one.
    pub e_tag: Option<String>,
}

impl ObjectInfo {
    /// A stable identity of this object's content: changes when the object changes.
    pub fn identity(&self) -> String {
        let secs = self.last_modified.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        format!("{}|{}|{}|{}", self.path, self.size, secs, self.e_tag.as_deref().unwrap_or(""))
    }
}

/// A blob store with request counters.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// For local folders, ranged reads bypass `object_store`: its local backend zero-fills a
    /// fresh buffer, then opens, stats and reads in two blocking-pool trips per request, which
    /// the load benchmark showed to be ~40 % of a segment's CPU. Listing and metadata still go
    /// through `object_store`.
    local_root: Option<Arc<std::path::PathBuf>>,
    /// The root as a directory descriptor, for reads that never block (`cached.rs`).
    #[cfg(target_os = "linux")]
    local_dir: Option<Arc<std::os::fd::OwnedFd>>,
    /// Local files mapped into memory, when [`LocalRead::Mmap`] is chosen.
    maps: Option<Arc<mmap::MapCache>>,
    counters: Arc<Counters>,
    /// Files stored encrypted at rest, shared by every clone of this store.
    encrypted: Arc<crypt::Registry>,
    /// Path prefixes served by other backends (longest first), e.g. `vod` → an S3 bucket.
    routes: Arc<Vec<Route>>,
    /// Range reads in flight, shared by identical concurrent requests.
    inflight: Arc<flight::Flights>,
    /// Whether local files may be offered for sending ([`Store::open_local`]).
    send_files: bool,
    /// Hot source fragments (clear bytes, before any output encryption), by object version
    /// and range; `None` when disabled.
    fragments: Option<Cache<FragmentKey, Bytes>>,
    /// Local clear fragments that missed the cache recently (see
    /// [`Store::read_fragment`]); with `fragments`.
    missed: Option<Arc<std::sync::Mutex<Missed>>>,
    /// Told of every storage operation (the origin's metrics); `None`: nobody listens.
    observer: Option<Arc<dyn Observer>>,
}

/// Storage operations, as [`Observer`]s see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A ranged read.
    Read,
    /// Object metadata.
    Head,
    /// A folder listing.
    List,
}

impl Op {
    /// The operation's name, as metrics show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Head => "head",
            Op::List => "list",
        }
    }
}

/// Hears of every operation a [`Store`] sends to a backend (not those answered from its
/// caches or by joining a read in flight), when it ends.
pub trait Observer: Send + Sync {
    /// `store`: the backend's name (`local`, or the route prefix of a `[[store]]`); `outcome`:
    /// [`outcome`] of the result; `bytes`: bytes read (0 for metadata and listings).
    fn operation(&self, store: &str, op: Op, outcome: &'static str, elapsed: std::time::Duration, bytes: u64);
}

/// A bounded name for how an operation ended: `ok`, `not_found`, `changed`, `timeout`,
/// `overloaded`, `unavailable`, `upstream` or `error`.
pub fn outcome<T>(r: &Result<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(Error::NotFound(_)) => "not_found",
        Err(Error::Changed(_)) => "changed",
        Err(Error::Timeout(_)) => "timeout",
        Err(Error::Overloaded { .. }) => "overloaded",
        Err(Error::Unavailable(_)) => "unavailable",
        Err(Error::Upstream(_)) => "upstream",
        Err(_) => "error",
    }
}

/// A backend of a store and its guard, for metrics and readiness.
#[derive(Debug, Clone)]
pub struct BackendStatus {
    /// The route prefix it serves.
    pub name: String,
    /// Its in-flight limit and circuit breaker.
    pub guard: GuardStatus,
    /// HTTP requests it sent so far (each retry is one more), when counted.
    pub attempts: Option<u64>,
}

/// A cached range: the object's [`ObjectInfo::identity`] (path, size, time, ETag) and the
/// byte range, so a changed object can never be answered from its old bytes.
type FragmentKey = (Arc<str>, u64, u64);

/// Which misses of the fragment cache are put in it.
#[derive(Clone, Copy)]
enum Admit {
    Always,
    /// Only a fragment that missed recently (`Missed`).
    Repeated,
}

/// The fragments (keys only) of local clear files that missed the cache, each with where in
/// the stream of such reads (their bytes so far, hits included) it missed, until as many
/// bytes as the cache holds have been read after it: a fragment asked for again within that
/// window came back sooner than a least-recently-used cache of that size would have dropped
/// it, so it goes into the cache ([`Store::read_fragment`]). Hits count: a window
/// counted in misses alone widens as the hit rate grows, until fragments that come back only
/// after more than the cache holds are admitted, each pushing out one that would have hit
/// (cenc over 484 MB of segments and a 256 MB cache: a third of the reads hit, yet a fifth of
/// them evicted something, and the run was 15-20 % slower than with no hits at all). Written
/// here: a doorkeeper with a byte-sized window is a few lines, and moka's own admission
/// decides only after the read and the insert.
struct Missed {
    /// Key to the position of its newest miss.
    keys: HashMap<FragmentKey, u64>,
    /// Misses (key, position), oldest first; a key's older entries are stale.
    order: std::collections::VecDeque<(FragmentKey, u64)>,
    /// Bytes of such reads so far, hits and misses.
    read: u64,
    window: u64,
}

/// At most this many fragments are remembered, whatever their size.
const MISSED_MAX: usize = 1 << 16;

impl Missed {
    fn new(window: u64) -> Self {
        Missed { keys: HashMap::new(), order: Default::default(), read: 0, window }
    }

    /// A read of `len` bytes that is not a doorkeeper miss (a hit, or a fragment cached anyway).
    fn pass(&mut self, len: u64) {
        self.read = self.read.saturating_add(len);
    }

    /// Whether `key` missed within the window; if not, it is remembered as missed now.
    fn again(&mut self, key: &FragmentKey) -> bool {
        let at = self.read;
        self.pass(key.2.saturating_sub(key.1));
        while let Some((_, p)) = self.order.front() {
            if at - p <= self.window && self.order.len() < MISSED_MAX {
                break;
            }
            let Some((k, p)) = self.order.pop_front() else { break };
            if self.keys.get(&k) == Some(&p) {
                self.keys.remove(&k);
            }
        }
        if self.keys.remove(key).is_some() {
            return true;
        }
        self.keys.insert(key.clone(), at);
        self.order.push_back((key.clone(), at));
        false
    }
}

/// Bookkeeping per cached fragment besides its bytes (key, moka's entry), for the weigher.
const FRAGMENT_OVERHEAD: u64 = 160;

/// The fragment cache's weight of an entry for `key`.
fn fragment_weight(key: &FragmentKey, len: u64) -> u32 {
    (len + key.0.len() as u64 + FRAGMENT_OVERHEAD).min(u32::MAX as u64) as u32
}

/// Whether `cache` has room for the fragment `key` names and an eighth of its budget to spare.
/// Moka settles its size lazily, so the size seen may be a little stale; its eviction and
/// admission policy stay the judge either way.
fn has_room(cache: &Cache<FragmentKey, Bytes>, key: &FragmentKey) -> bool {
    let weight = u64::from(fragment_weight(key, key.2.saturating_sub(key.1)));
    cache.policy().max_capacity().is_some_and(|max| cache.weighted_size().saturating_add(weight) <= max - max / 8)
}

/// A path prefix mapped to a backend; the backend holds paths without the prefix.
#[derive(Clone)]
struct Route {
    prefix: String,
    store: Arc<dyn ObjectStore>,
    guard: Arc<guard::Guard>,
    /// HTTP requests the backend sent, when counted ([`remote::open_counted`]).
    attempts: Option<Arc<AtomicU64>>,
}

/// How ranged reads of a local folder are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalRead {
    /// `pread` into a fresh buffer: safe whatever happens to the files.
    #[default]
    Pread,
    /// Map each file once and hand out slices of the mapping: no copy, no allocation, no
    /// blocking-pool trip once a file is mapped (opening and mapping it runs on the blocking
    /// pool, once per file version, without holding up reads of other files). Files must be
    /// replaced (new file, rename), never truncated in place while served: a read of pages
    /// cut off by truncation kills the process (SIGBUS). Each read re-checks the file's size
    /// and modification time and remaps on change.
    Mmap,
}

/// Requests made to the store, for tests and metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Ranged GETs sent to a backend (reads that joined an identical one in flight are not
    /// counted here but in `coalesced_reads`).
    pub range_reads: AtomicU64,
    /// Range reads answered by joining an identical read already in flight.
    pub coalesced_reads: AtomicU64,
    /// Bytes read.
    pub bytes_read: AtomicU64,
    /// HEAD requests.
    pub heads: AtomicU64,
    /// Listings.
    pub lists: AtomicU64,
    /// Bytes decrypted from storage-encrypted files.
    pub bytes_decrypted: AtomicU64,
    /// Fragment reads answered from the hot fragment cache (no storage request).
    pub fragment_hits: AtomicU64,
    /// Fragment reads the hot fragment cache could not answer (read, or joined a read).
    pub fragment_misses: AtomicU64,
    /// Fragments the hot fragment cache dropped to stay within its budget.
    pub fragment_evictions: AtomicU64,
    /// Reads refused because the object changed since it was indexed (HTTP 412 from a remote
    /// store, a local file of another size or time).
    pub changed: AtomicU64,
    /// Local reads done on the calling thread without blocking, whole or in part (path and
    /// bytes in the kernel's caches; `cached.rs`).
    pub nonblocking_reads: AtomicU64,
    /// Bytes sent from local files to sockets as they lie in the page cache
    /// ([`Store::open_local`]); they are not in `bytes_read`.
    pub bytes_sent_from_files: AtomicU64,
}

impl Store {
    /// A store over a local folder.
    pub fn local(root: &std::path::Path) -> Result<Store> {
        Self::local_with(root, LocalRead::Pread)
    }

    /// A store over a local folder, reading as `mode` says.
    pub fn local_with(root: &std::path::Path, mode: LocalRead) -> Result<Store> {
        let fs = object_store::local::LocalFileSystem::new_with_prefix(root).map_err(Error::from)?;
        let root = root.canonicalize().map_err(|e| Error::Unavailable(format!("storage root {}: {e}", root.display())))?;
        let maps = (mode == LocalRead::Mmap).then(|| Arc::new(mmap::MapCache::new(1024)));
        let mut store = Store { local_root: Some(Arc::new(root.clone())), maps, ..Store::new(Arc::new(fs)) };
        // Without it (an odd file system) every local read takes the blocking path.
        #[cfg(target_os = "linux")]
        {
            store.local_dir = rustix::fs::open(&root, rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty()).ok().map(Arc::new);
        }
        Ok(store)
    }

    /// A store over any `object_store` backend.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Store {
        Store {
            inner,
            local_root: None,
            #[cfg(target_os = "linux")]
            local_dir: None,
            maps: None,
            counters: Arc::new(Counters::default()),
            encrypted: Arc::default(),
            routes: Arc::default(),
            inflight: Arc::default(),
            fragments: None,
            missed: None,
            observer: None,
            send_files: true,
        }
    }

    /// Whether [`Store::open_local`] may offer files for sending (default: yes).
    pub fn with_send_files(mut self, on: bool) -> Store {
        self.send_files = on;
        self
    }

    /// Tells `observer` of every backend operation from now on.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Store {
        self.observer = Some(observer);
        self
    }

    /// The remote backends (`[[store]]` routes) and their guards.
    pub fn backends(&self) -> Vec<BackendStatus> {
        self.routes.iter().map(|r| BackendStatus { name: r.prefix.clone(), guard: r.guard.status(), attempts: r.attempts.as_ref().map(|a| a.load(Ordering::Relaxed)) }).collect()
    }

    /// The backend name of `path` for observers: its route prefix, or `local` / `default`.
    fn backend_name<'a>(&'a self, path: &str) -> &'a str {
        match self.route(path) {
            Some((r, _)) => r.prefix.as_str(),
            None if self.local_root.is_some() => "local",
            None => "default",
        }
    }

    /// Reports one finished backend operation to the observer.
    fn observe<T>(&self, path: &str, op: Op, started: std::time::Instant, r: &Result<T>, bytes: u64) {
        if let Some(o) = &self.observer {
            o.operation(self.backend_name(path), op, outcome(r), started.elapsed(), bytes);
        }
    }

    /// Keeps up to `max_bytes` of hot source fragments in memory (0: none), so a segment many
    /// players ask for is read from storage once. Entries are the clear bytes of
    /// [`Store::read_fragment`] reads, least recently used evicted first; they are shared and
    /// immutable: a caller that wants to change bytes in place (an output encryptor) gets
    /// `Err` from `Bytes::try_into_mut` while the cache holds them, and copies.
    pub fn with_fragment_cache(mut self, max_bytes: u64) -> Store {
        let counters = self.counters.clone();
        self.fragments = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .eviction_listener(move |_, _, cause| {
                    if cause.was_evicted() {
                        counters.fragment_evictions.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .weigher(|k: &FragmentKey, v: &Bytes| fragment_weight(k, v.len() as u64))
                .support_invalidation_closures()
                .build()
        });
        self.missed = (max_bytes > 0).then(|| Arc::new(std::sync::Mutex::new(Missed::new(max_bytes))));
        self
    }

    /// Budget of the fragment cache in bytes (0: none).
    pub fn fragment_cache_budget(&self) -> u64 {
        self.fragments.as_ref().and_then(|c| c.policy().max_capacity()).unwrap_or(0)
    }

    /// Fragments held by the fragment cache now (an estimate).
    pub fn fragment_cache_entries(&self) -> u64 {
        self.fragments.as_ref().map_or(0, |c| c.entry_count())
    }

    /// Bytes held by the fragment cache now (an estimate, for metrics and tests).
    pub fn fragment_cache_bytes(&self) -> u64 {
        self.fragments.as_ref().map_or(0, |c| c.weighted_size())
    }

    /// Runs the fragment cache's pending maintenance (evictions, size accounting); tests call
    /// it before reading [`Store::fragment_cache_bytes`].
    pub fn sync_fragment_cache(&self) {
        if let Some(c) = &self.fragments {
            c.run_pending_tasks();
        }
    }

    /// Serves every path under `prefix` (a plain folder path like `vod` or `vod/archive`) from
    /// `backend`, which holds them without the prefix (`vod/movie/a.cmfv` is `movie/a.cmfv`
    /// there). The longest matching prefix wins; other paths stay with this store. Reads are
    /// guarded with the default [`remote::RemoteTiming`].
    pub fn with_route(self, prefix: &str, backend: Arc<dyn ObjectStore>) -> Result<Store> {
        self.with_guarded_route(prefix, backend, remote::RemoteTiming::default())
    }

    /// [`Store::with_route`], with reads, heads and listings of `backend` bounded by `timing`:
    /// requests in flight, a deadline per operation, a circuit breaker (pass the same timing
    /// to [`remote::open`], which sets the per-attempt timeouts and retries).
    pub fn with_guarded_route(self, prefix: &str, backend: Arc<dyn ObjectStore>, timing: remote::RemoteTiming) -> Result<Store> {
        self.with_route_inner(prefix, backend, timing, None)
    }

    /// [`Store::with_guarded_route`] with the backend's HTTP request count from
    /// [`remote::open_counted`], reported in [`BackendStatus::attempts`].
    pub fn with_counted_route(self, prefix: &str, backend: Arc<dyn ObjectStore>, timing: remote::RemoteTiming, attempts: Arc<AtomicU64>) -> Result<Store> {
        self.with_route_inner(prefix, backend, timing, Some(attempts))
    }

    fn with_route_inner(mut self, prefix: &str, backend: Arc<dyn ObjectStore>, timing: remote::RemoteTiming, attempts: Option<Arc<AtomicU64>>) -> Result<Store> {
        if AssetPath::parse(&format!("/{prefix}")).is_err() {
            return Err(Error::Unavailable(format!("store prefix '{prefix}' must be a plain folder path")));
        }
        let mut routes: Vec<Route> = self.routes.iter().cloned().collect();
        routes.retain(|r| r.prefix != prefix);
        routes.push(Route { prefix: prefix.to_string(), store: backend, guard: Arc::new(guard::Guard::new(timing)), attempts });
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        self.routes = Arc::new(routes);
        Ok(self)
    }

    /// The route serving `path` and the path inside its backend.
    fn route<'a>(&'a self, path: &str) -> Option<(&'a Route, String)> {
        self.routes.iter().find_map(|r| {
            if path == r.prefix {
                Some((r, String::new()))
            } else {
                path.strip_prefix(r.prefix.as_str()).and_then(|rest| rest.strip_prefix('/')).map(|rest| (r, rest.to_string()))
            }
        })
    }

    /// The backend and path inside it for `path`.
    fn backend(&self, path: &str) -> (&Arc<dyn ObjectStore>, String) {
        match self.route(path) {
            Some((r, inner)) => (&r.store, inner),
            None => (&self.inner, path.to_string()),
        }
    }

    /// Request counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Replaces the set of storage-encrypted files (paths relative to the store root) with
    /// `files`; every other file reads as stored. All or nothing: if any key or IV is
    /// unusable, the current set stays and the error names the file.
    pub fn set_encrypted_files(&self, files: impl IntoIterator<Item = (String, FileEncryption)>) -> Result<usize> {
        self.encrypted.replace(files)
    }

    /// Registers one more storage-encrypted file (replacing any earlier entry for `path`).
    pub fn register_encrypted(&self, path: &str, file: FileEncryption) -> Result<()> {
        self.encrypted.insert(path, file)
    }

    /// The key ID `path` is storage-encrypted with, if it is.
    pub fn encryption_key_id(&self, path: &str) -> Option<String> {
        self.encrypted.get(path).map(|d| d.key_id().to_string())
    }

    /// Reads `range` of the object at `path`; fails unless exactly that many bytes come back.
    /// Storage-encrypted files come back clear.
    ///
    /// Reads of routed (remote) paths are single-flight: a read of the same path and range as
    /// one in flight waits for that one instead of sending another request. Nothing is kept
    /// once the read completes, so a replaced object is never answered from old bytes, and a
    /// failure reaches only the requests that were waiting for it.
    pub async fn read_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        self.read_shared(path, range, None).await
    }

    /// [`Store::read_range`] of exactly the version `object` describes (as listed when the
    /// file was indexed): [`Error::Changed`] if the object is no longer that version. Remote
    /// reads carry its ETag as `If-Match`; local files are checked for size and modification
    /// time. Nothing is cached.
    pub async fn read_version(&self, object: &ObjectInfo, range: Range<u64>) -> Result<Bytes> {
        let r = self.read_shared(&object.path, range, Some(object)).await;
        self.note_changed(object, &r);
        r
    }

    /// When `r` says `object` changed: counted, and its cached fragments dropped.
    fn note_changed<T>(&self, object: &ObjectInfo, r: &Result<T>) {
        if matches!(r, Err(Error::Changed(_))) {
            self.counters.changed.fetch_add(1, Ordering::Relaxed);
            self.forget(object);
        }
    }

    /// [`Store::read_version`] through the hot fragment cache: a range read before (same
    /// object version, same bytes) is answered from memory, and concurrent misses of one
    /// range the cache takes make one storage read (local and remote stores alike), which
    /// fills the cache before the waiters are released. Failures are not kept. Local files
    /// read by memory map skip the cache: they are served from the page cache without a copy
    /// already. A cached fragment is shared: a caller that encrypts it for its response does
    /// so out of place; a buffer that is the caller's own it may encrypt in place.
    ///
    /// Which misses the cache takes: every miss of remote and storage-encrypted objects
    /// (theirs cost a request or a decryption). A miss of a local file stored clear is taken
    /// while the cache is less than seven eighths full; after that, only if the same fragment
    /// missed before within as many bytes of reads as the cache holds (`Missed`): a fragment
    /// asked for again that soon is one the cache can keep, and from then on it is a hit with
    /// no read. One that comes back later than that (a working set larger than the cache, or
    /// a one-off) would only push out others before its next use; it is read each time into
    /// the caller's own buffer, one copy from the page cache. Measured (benches/README.md,
    /// 484 MB of segments against a 256 MB cache): taking every miss kept 41 % of reads as
    /// hits but evicted an entry on almost every miss (fresh pages, faults and zeroing for each
    /// new buffer); this keeps about as many hits with no evictions: clear DASH 2.9 to 3.7 GB
    /// per core-second, clear TS 1.8 to 2.3, AES-128 TS 0.93 to 1.04, cenc 1.8-2.3 to 2.5-2.7.
    pub async fn read_fragment(&self, object: &ObjectInfo, range: Range<u64>) -> Result<Bytes> {
        let local_clear = self.local_root.is_some() && self.route(&object.path).is_none() && self.encrypted.get(&object.path).is_none();
        self.read_through_cache(object, range, if local_clear { Admit::Repeated } else { Admit::Always }).await
    }

    /// The doorkeeper of local clear misses, locked (`None` without a fragment cache).
    fn missed(&self) -> Option<std::sync::MutexGuard<'_, Missed>> {
        self.missed.as_ref().map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A hit of the fragment cache, or a read of `range`: cached and shared by concurrent
    /// misses when `admit` says so, the caller's own otherwise.
    async fn read_through_cache(&self, object: &ObjectInfo, range: Range<u64>, admit: Admit) -> Result<Bytes> {
        let Some(cache) = self.fragments.as_ref().filter(|_| self.maps.is_none() || self.route(&object.path).is_some()) else {
            return self.read_version(object, range).await;
        };
        let id: Arc<str> = Arc::from(object.identity());
        let key: FragmentKey = (id.clone(), range.start, range.end);
        let hit = || {
            let b = cache.get(&key);
            if b.is_some() {
                self.counters.fragment_hits.fetch_add(1, Ordering::Relaxed);
            }
            b
        };
        if let Some(b) = hit() {
            // Hits count toward the doorkeeper's window (`Missed`).
            if matches!(admit, Admit::Repeated) {
                if let Some(mut m) = self.missed() {
                    m.pass(b.len() as u64);
                }
            }
            return Ok(b);
        }
        self.counters.fragment_misses.fetch_add(1, Ordering::Relaxed);
        let cache_miss = match admit {
            Admit::Always => true,
            // While the cache is short of full, nothing is pushed out: keep the fragment (the
            // eighth left free keeps evictions from reopening the door one entry at a time).
            Admit::Repeated => self.missed().is_some_and(|mut m| {
                if has_room(cache, &key) {
                    m.pass(range.end - range.start);
                    true
                } else {
                    m.again(&key)
                }
            }),
        };
        if !cache_miss {
            return self.read_version(object, range).await;
        }
        // Moka's own `try_get_with` coalesces too, but its waiters are invisible until they
        // return; our flight counts each joiner when it joins (metrics, and tests that hold a
        // read until every request waits on it).
        let start = || {
            let (s, o, c, k) = (self.clone(), object.clone(), cache.clone(), key.clone());
            async move {
                let b = s.read_version(&o, range).await?;
                c.insert(k, b.clone());
                Ok(b)
            }
            .boxed()
            .shared()
        };
        self.inflight.run((format!("fragment\n{id}"), key.1, key.2), hit, start, || self.joined()).await
    }

    /// `object` opened for sending ranges of it as they lie in the page cache
    /// ([`LocalFile`]), when it is a local file stored clear (not routed to a remote backend,
    /// not storage-encrypted) and this kernel can tell what is cached; `Ok(None)` otherwise.
    /// [`Error::Changed`] when the file is no longer that version (counted, and its cached
    /// fragments dropped, as for [`Store::read_version`]).
    pub async fn open_local(&self, object: &ObjectInfo) -> Result<Option<LocalFile>> {
        let Some(root) = self.local_root.clone() else { return Ok(None) };
        if !self.send_files || !sendable::may_offer() || self.route(&object.path).is_some() || self.encrypted.get(&object.path).is_some() {
            return Ok(None);
        }
        let version = LocalVersion { size: object.size, modified_secs: secs(object.last_modified) };
        let rel = object.path.clone();
        #[cfg(target_os = "linux")]
        let fast = self.local_dir().and_then(|d| cached::open(d, &rel, Some(version)));
        #[cfg(not(target_os = "linux"))]
        let fast: Option<std::fs::File> = None;
        let opened = match fast {
            Some(f) => Ok(f),
            None => tokio::task::spawn_blocking(move || {
                let (f, meta) = open_checked(&root, &rel, Some(version))?;
                if !meta.is_file() {
                    return Err(Error::NotFound(rel));
                }
                Ok(f)
            })
            .await
            .map_err(|e| Error::Unavailable(format!("open task failed: {e}")))?,
        };
        self.note_changed(object, &opened);
        let file = opened?;
        Ok(sendable::offer(&file).then(|| LocalFile::new(file, object.path.clone(), object.size, self.counters.clone(), self.observer.clone())))
    }

    /// Drops every cached fragment of `object`'s version (it changed in storage).
    fn forget(&self, object: &ObjectInfo) {
        if let Some(c) = &self.fragments {
            let id = object.identity();
            // Fails only if the cache was built without invalidation closures; ours has them.
            let _ = c.invalidate_entries_if(move |k, _| *k.0 == *id);
        }
    }

    /// Single flight for routed (remote) paths; local reads go straight through.
    async fn read_shared(&self, path: &str, range: Range<u64>, version: Option<&ObjectInfo>) -> Result<Bytes> {
        if self.route(path).is_none() {
            return self.read_range_once(path, range, version).await;
        }
        // Reads of a known version share a flight only with reads of that same version.
        let id = version.map_or_else(|| path.to_string(), |v| format!("{}\n{}", path, v.identity()));
        let key = (id, range.start, range.end);
        let start = || {
            let (s, p, v) = (self.clone(), path.to_string(), version.cloned());
            async move { s.read_range_once(&p, range, v.as_ref()).await }.boxed().shared()
        };
        self.inflight.run(key, || None, start, || self.joined()).await
    }

    /// Counts a read that joined one in flight.
    fn joined(&self) {
        self.counters.coalesced_reads.fetch_add(1, Ordering::Relaxed);
    }

    /// One read, not shared; of `version` when given.
    async fn read_range_once(&self, path: &str, range: Range<u64>, version: Option<&ObjectInfo>) -> Result<Bytes> {
        let started = std::time::Instant::now();
        let r = self.read_range_unobserved(path, range, version).await;
        self.observe(path, Op::Read, started, &r, r.as_ref().map_or(0, |b| b.len() as u64));
        r
    }

    async fn read_range_unobserved(&self, path: &str, range: Range<u64>, version: Option<&ObjectInfo>) -> Result<Bytes> {
        self.counters.range_reads.fetch_add(1, Ordering::Relaxed);
        let want = range.end - range.start;
        let start = range.start;
        let if_match = version.and_then(|v| v.e_tag.clone());
        let local = version.map(|v| LocalVersion { size: v.size, modified_secs: secs(v.last_modified) });
        let b = match (self.route(path), &self.local_root, &self.maps) {
            (Some((r, inner)), _, _) => r.guard.run(path, get_range(r.store.as_ref(), inner, range, if_match)).await?,
            (None, Some(root), Some(maps)) => maps.read(root, path, range, local).await?,
            (None, Some(root), None) => read_local(root.clone(), self.local_dir(), &self.counters, path, range, local).await?,
            (None, None, _) => get_range(self.inner.as_ref(), path.to_string(), range, if_match).await?,
        };
        self.counters.bytes_read.fetch_add(b.len() as u64, Ordering::Relaxed);
        if b.len() as u64 != want {
            return Err(Error::ShortRead { path: path.to_string(), want, got: b.len() as u64 });
        }
        match self.encrypted.get(path) {
            Some(d) => {
                self.counters.bytes_decrypted.fetch_add(want, Ordering::Relaxed);
                d.decrypt(path, start, b)
            }
            None => Ok(b),
        }
    }

    /// Metadata of one object.
    pub async fn head(&self, path: &str) -> Result<ObjectInfo> {
        let started = std::time::Instant::now();
        let r = self.head_unobserved(path).await;
        self.observe(path, Op::Head, started, &r, 0);
        r
    }

    async fn head_unobserved(&self, path: &str) -> Result<ObjectInfo> {
        self.counters.heads.fetch_add(1, Ordering::Relaxed);
        match self.route(path) {
            Some((r, inner)) => Ok(prefixed(&r.prefix, info(r.guard.run(path, r.store.head(&Path::from(inner))).await?))),
            None => {
                self.confine(path).await?;
                Ok(info(self.inner.head(&Path::from(path)).await?))
            }
        }
    }

    /// For a local root: `Err(NotFound)` unless `path` resolves inside it (see `confine.rs`).
    async fn confine(&self, path: &str) -> Result<()> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let rel = path.to_string();
        tokio::task::spawn_blocking(move || confine::resolve(&root, &rel).map(drop)).await.map_err(|e| Error::Unavailable(format!("path check failed: {e}")))?
    }

    /// For a local root: the listed `items` whose path (by `path_of`) resolves inside it;
    /// symlinks out of the root are left out (and logged).
    async fn keep_inside<T: Send + 'static>(&self, items: Vec<T>, path_of: fn(&T) -> &str) -> Result<Vec<T>> {
        let Some(root) = self.local_root.clone() else {
            return Ok(items);
        };
        tokio::task::spawn_blocking(move || items.into_iter().filter(|i| confine::is_inside(&root, path_of(i))).collect()).await.map_err(|e| Error::Unavailable(format!("path check failed: {e}")))
    }

    /// The objects directly inside folder `dir` (not recursive), sorted by path.
    pub async fn list_dir(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let started = std::time::Instant::now();
        let r = self.list_dir_unobserved(dir).await;
        self.observe(dir, Op::List, started, &r, 0);
        r
    }

    async fn list_dir_unobserved(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        let mut v: Vec<ObjectInfo> = match self.route(dir) {
            Some((r, inner)) => {
                let p = (!inner.is_empty()).then(|| Path::from(inner));
                let l = r.guard.run_listing(dir, r.store.list_with_delimiter(p.as_ref())).await?;
                l.objects.into_iter().map(|m| prefixed(&r.prefix, info(m))).collect()
            }
            None => {
                self.confine(dir).await?;
                let all = self.inner.list_with_delimiter(Some(&Path::from(dir))).await?.objects.into_iter().map(info).collect();
                self.keep_inside(all, |o: &ObjectInfo| &o.path).await?
            }
        };
        v.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(v)
    }

    /// Sub-folders of `dir` (relative names), sorted.
    pub async fn list_subdirs(&self, dir: &str) -> Result<Vec<String>> {
        let started = std::time::Instant::now();
        let r = self.list_subdirs_unobserved(dir).await;
        self.observe(dir, Op::List, started, &r, 0);
        r
    }

    async fn list_subdirs_unobserved(&self, dir: &str) -> Result<Vec<String>> {
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        let mut v: Vec<String> = match self.route(dir) {
            Some((r, inner)) => {
                let p = (!inner.is_empty()).then(|| Path::from(inner));
                let l = r.guard.run_listing(dir, r.store.list_with_delimiter(p.as_ref())).await?;
                l.common_prefixes.into_iter().map(|p| format!("{}/{p}", r.prefix)).collect()
            }
            None => {
                let prefix = if dir.is_empty() { None } else { Some(Path::from(dir)) };
                // A local root without the folder a route hangs from is fine.
                let listed = match self.confine(dir).await {
                    Ok(()) => self.inner.list_with_delimiter(prefix.as_ref()).await.map_err(Error::from),
                    Err(e) => Err(e),
                };
                match listed {
                    Ok(r) => self.keep_inside(r.common_prefixes.into_iter().map(|p| p.to_string()).collect(), |p: &String| p.as_str()).await?,
                    Err(Error::NotFound(_)) if !self.routes.is_empty() => Vec::new(),
                    Err(e) => return Err(e),
                }
            }
        };
        // Routes hanging directly below `dir` are sub-folders too.
        for r in self.routes.iter() {
            let parent = r.prefix.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            if parent == dir && !v.contains(&r.prefix) {
                v.push(r.prefix.clone());
            }
        }
        v.sort();
        Ok(v)
    }
}

/// The version of a local file a read expects: size and modification time (whole seconds,
/// as [`ObjectInfo`] keeps it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalVersion {
    pub(crate) size: u64,
    pub(crate) modified_secs: u64,
}

impl LocalVersion {
    /// `Err(Changed)` unless `meta` (of the open file) is this version.
    pub(crate) fn check(self, path: &str, meta: &std::fs::Metadata) -> Result<()> {
        let modified = meta.modified().map(secs).unwrap_or(0);
        if meta.len() != self.size || modified != self.modified_secs {
            return Err(Error::Changed(path.to_string()));
        }
        Ok(())
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A ranged GET, conditional on `if_match` (the indexed ETag) when given: a store whose
/// object changed answers 412, which `object_store` reports as `Precondition`.
async fn get_range(store: &dyn ObjectStore, path: String, range: Range<u64>, if_match: Option<String>) -> Result<Bytes, object_store::Error> {
    if range.is_empty() {
        // Stores refuse an empty HTTP range; a conditional HEAD still answers whether the
        // object (of that version) is there.
        let opts = GetOptions { if_match, head: true, ..GetOptions::default() };
        store.get_opts(&Path::from(path), opts).await?;
        return Ok(Bytes::new());
    }
    let opts = GetOptions { if_match, range: Some(range.into()), ..GetOptions::default() };
    store.get_opts(&Path::from(path), opts).await?.bytes().await
}

/// The storage root as a directory descriptor (Linux: reads that never block, `cached.rs`).
#[cfg(target_os = "linux")]
type LocalDir = std::os::fd::OwnedFd;
#[cfg(not(target_os = "linux"))]
type LocalDir = ();

impl Store {
    #[cfg(target_os = "linux")]
    fn local_dir(&self) -> Option<&LocalDir> {
        self.local_dir.as_deref()
    }

    #[cfg(not(target_os = "linux"))]
    fn local_dir(&self) -> Option<&LocalDir> {
        None
    }
}

/// First tried without blocking on the calling thread (`cached.rs`: path and bytes cached by
/// the kernel), then, for what that could not read, one blocking-pool trip: open, seek, read
/// into uninitialised capacity (no zero-fill).
/// `path` was validated by [`AssetPath`] (plain segments), so joining cannot leave `root` by
/// name, and [`confine::open`] refuses a symlink that leads out of it.
/// With `version`, the open file must be that version (checked on the open descriptor, so a
/// file replaced by rename after the check is still read whole from the checked one).
async fn read_local(root: Arc<std::path::PathBuf>, dir: Option<&LocalDir>, counters: &Counters, path: &str, range: Range<u64>, version: Option<LocalVersion>) -> Result<Bytes> {
    let rel = path.to_string();
    // The buffer is allocated here, on the calling (runtime worker) thread, not in the
    // blocking thread: the allocator keeps freed memory with the thread that allocated it, and
    // a burst of blocking threads that then sit idle would each keep segment-sized buffers.
    let len = range.end - range.start;
    let cap = usize::try_from(len).map_err(|_| Error::Unavailable("range too large".into()))?;
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(cap).map_err(|_| Error::Unavailable(format!("cannot allocate {len} bytes")))?;
    // First without blocking, on this thread: done when the path and the bytes are cached.
    #[cfg(target_os = "linux")]
    let rest = match dir.map(|d| cached::read(d, path, range.start, len, version, &mut v)) {
        Some(cached::Cached::Done) => {
            counters.nonblocking_reads.fetch_add(1, Ordering::Relaxed);
            return Ok(Bytes::from(v));
        }
        Some(cached::Cached::Rest(f)) => {
            counters.nonblocking_reads.fetch_add(1, Ordering::Relaxed);
            Some(f)
        }
        Some(cached::Cached::No) | None => None,
    };
    #[cfg(not(target_os = "linux"))]
    let rest: Option<std::fs::File> = dir.and(None).filter(|_| counters.nonblocking_reads.load(Ordering::Relaxed) > 0);
    if let Some(f) = rest {
        // The checked file, opened already: the blocking pool reads what was not cached.
        let got = v.len() as u64;
        return tokio::task::spawn_blocking(move || {
            read_rest(&f, &rel, range.start + got, len - got, &mut v)?;
            Ok(Bytes::from(v))
        })
        .await
        .map_err(|e| Error::Unavailable(format!("read task failed: {e}")))?;
    }
    tokio::task::spawn_blocking(move || {
        let (f, _) = open_checked(&root, &rel, version)?;
        read_rest(&f, &rel, range.start, len, &mut v)?;
        Ok(Bytes::from(v))
    })
    .await
    .map_err(|e| Error::Unavailable(format!("read task failed: {e}")))?
}

/// Opens `rel` below `root` the blocking way ([`confine::open`]), as `version` when given;
/// with its metadata.
fn open_checked(root: &std::path::Path, rel: &str, version: Option<LocalVersion>) -> Result<(std::fs::File, std::fs::Metadata)> {
    let f = confine::open(root, rel)?;
    let meta = f.metadata().map_err(|e| Error::Unavailable(format!("{rel}: {e}")))?;
    if let Some(v) = version {
        v.check(rel, &meta)?;
    }
    Ok((f, meta))
}

/// Appends `len` bytes at `start` of `f` to `v` (blocking), fewer at the end of the file (the
/// caller compares the length); into `v`'s capacity, with no zero-fill first.
fn read_rest(f: &std::fs::File, rel: &str, start: u64, len: u64, v: &mut Vec<u8>) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::Start(start)).map_err(|e| Error::Unavailable(format!("{rel}: {e}")))?;
    f.take(len).read_to_end(v).map_err(|e| Error::Unavailable(format!("{rel}: {e}")))?;
    Ok(())
}

/// `o` with its path as seen from the store root (`prefix/` + the backend's path).
fn prefixed(prefix: &str, mut o: ObjectInfo) -> ObjectInfo {
    o.path = format!("{prefix}/{}", o.path);
    o
}

fn info(m: object_store::ObjectMeta) -> ObjectInfo {
    let secs = m.last_modified.timestamp().max(0) as u64;
    ObjectInfo { path: m.location.to_string(), size: m.size, last_modified: UNIX_EPOCH + Duration::from_secs(secs), e_tag: m.e_tag }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_ranges_and_lists() {
        let dir = std::env::temp_dir().join(format!("sealcast-store-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/x.mp4"), b"0123456789").unwrap();
        let s = Store::local(&dir).unwrap();
        assert_eq!(&s.read_range("a/b/x.mp4", 2..5).await.unwrap()[..], b"234");
        assert!(s.read_range("a/b/x.mp4", 8..20).await.is_err());
        assert!(matches!(s.head("a/b/nope.mp4").await, Err(Error::NotFound(_))));
        let l = s.list_dir("a/b").await.unwrap();
        assert_eq!((l.len(), l[0].size), (1, 10));
        assert_eq!(s.list_subdirs("a").await.unwrap(), vec!["a/b".to_string()]);
        assert_eq!(s.counters().range_reads.load(Ordering::Relaxed), 2);
        // The mapped path gives the same bytes, sees a replaced file, and refuses reads past the end.
        let m = Store::local_with(&dir, LocalRead::Mmap).unwrap();
        assert_eq!(&m.read_range("a/b/x.mp4", 2..5).await.unwrap()[..], b"234");
        assert!(m.read_range("a/b/x.mp4", 8..20).await.is_err());
        std::fs::write(dir.join("a/b/y.tmp"), b"abcdefghijklmnop").unwrap();
        std::fs::rename(dir.join("a/b/y.tmp"), dir.join("a/b/x.mp4")).unwrap();
        assert_eq!(&m.read_range("a/b/x.mp4", 10..16).await.unwrap()[..], b"klmnop");
        assert!(matches!(m.read_range("a/b/none.mp4", 0..1).await, Err(Error::NotFound(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_fragments_are_read_once_and_never_mixed_across_versions() {
        let dir = std::env::temp_dir().join(format!("sealcast-frag-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/x.mp4"), vec![7u8; 4096]).unwrap();
        let s = Store::local(&dir).unwrap().with_fragment_cache(2000);
        let v1 = s.list_dir("a").await.unwrap().remove(0);
        let reads = || s.counters().range_reads.load(Ordering::Relaxed);

        // 100 concurrent misses of one cold range: one read.
        let all = futures::future::join_all((0..100).map(|_| s.read_fragment(&v1, 100..1100))).await;
        assert!(all.iter().all(|r| r.as_ref().is_ok_and(|b| b.len() == 1000 && b.iter().all(|&x| x == 7))));
        assert_eq!(reads(), 1);
        // Hot: no further read; the cached buffer is shared, so nobody can change it in place.
        let hot = s.read_fragment(&v1, 100..1100).await.unwrap();
        assert_eq!(reads(), 1);
        assert!(hot.try_into_mut().is_err(), "a cached fragment must not be writable in place");
        assert!(s.counters().fragment_hits.load(Ordering::Relaxed) >= 1);

        // A cold one goes into the cache while it has room (weights: bytes + key + 160; the
        // budget, 2,000, less an eighth), and is then a hit.
        s.sync_fragment_cache();
        assert!(s.read_fragment(&v1, 0..100).await.unwrap().try_into_mut().is_err(), "cached while the cache has room");
        assert_eq!(reads(), 2);
        assert!(s.read_fragment(&v1, 0..100).await.unwrap().iter().all(|&x| x == 7));
        assert_eq!(reads(), 2);
        // Past seven eighths full, a cold fragment of a local file stored clear is the caller's
        // own (an encryptor works in place) and not cached at its first miss; missed again
        // while remembered, it is cached, and a hit from then on.
        s.sync_fragment_cache();
        let own = s.read_fragment(&v1, 1100..1400).await.unwrap();
        assert_eq!(reads(), 3);
        assert!(own.iter().all(|&x| x == 7));
        assert!(own.try_into_mut().is_ok(), "a cold fragment the cache does not take must be the caller's own");
        assert!(s.read_fragment(&v1, 1100..1400).await.unwrap().try_into_mut().is_err(), "cached at its second miss");
        assert_eq!(reads(), 4);
        s.read_fragment(&v1, 1100..1400).await.unwrap();
        assert_eq!(reads(), 4, "a fragment that came back within the window is now a hit");
        let reads_before_failures = reads();

        // A failed read is not cached: the next one goes to storage again.
        assert!(s.read_fragment(&v1, 4000..5000).await.is_err());
        assert!(s.read_fragment(&v1, 4000..5000).await.is_err());
        assert_eq!(reads(), reads_before_failures + 2);

        // The file is replaced (other size): reads of the old version fail as Changed and its
        // fragments are dropped; the new version reads its own bytes.
        std::fs::write(dir.join("a/x.tmp"), vec![9u8; 5000]).unwrap();
        std::fs::rename(dir.join("a/x.tmp"), dir.join("a/x.mp4")).unwrap();
        assert!(matches!(s.read_version(&v1, 0..10).await, Err(Error::Changed(_))));
        s.sync_fragment_cache();
        let before = reads();
        assert!(matches!(s.read_fragment(&v1, 100..1100).await, Err(Error::Changed(_))), "old version answered from cache");
        assert_eq!(reads(), before + 1);
        let v2 = s.list_dir("a").await.unwrap().remove(0);
        assert!(s.read_fragment(&v2, 100..1100).await.unwrap().iter().all(|&x| x == 9));
        assert_eq!(s.counters().changed.load(Ordering::Relaxed), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A temp folder of `n` files, `f{i}.mp4`, each `len` bytes of [`pattern`].
    fn many_files(name: &str, n: usize, len: usize) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sealcast-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            std::fs::write(dir.join(format!("f{i}.mp4")), (0..len).map(|o| pattern(i, o)).collect::<Vec<u8>>()).unwrap();
        }
        dir
    }

    fn pattern(file: usize, offset: usize) -> u8 {
        (file.wrapping_mul(131) ^ offset.wrapping_mul(7) ^ (offset >> 8)) as u8
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mmap_concurrent_reads_of_many_files_return_their_bytes() {
        let (n, len) = (48, 8192);
        let dir = many_files("mmap-many", n, len);
        let mut s = Store::local_with(&dir, LocalRead::Mmap).unwrap();
        // Fewer mappings than files: entries are dropped and files remapped while read.
        s.maps = Some(Arc::new(mmap::MapCache::new(8)));
        let reads = (0..n * 8).map(|k| {
            let (i, start) = (k % n, (k * 997) % (len - 1000));
            let s = s.clone();
            tokio::spawn(async move { (i, start, s.read_range(&format!("f{i}.mp4"), start as u64..start as u64 + 1000).await) })
        });
        for r in futures::future::join_all(reads).await {
            let (i, start, got) = r.unwrap();
            let got = got.unwrap();
            assert!(got.iter().enumerate().all(|(o, &b)| b == pattern(i, start + o)), "f{i}.mp4 at {start}: wrong bytes");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A file whose open blocks (a slow disk, a hung network mount; here a hook that waits)
    /// holds up only the reads of that file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mmap_a_blocked_open_does_not_hold_up_other_files() {
        use std::sync::mpsc;
        let dir = many_files("mmap-blocked", 2, 4096);
        let s = Store::local_with(&dir, LocalRead::Mmap).unwrap();
        let (entered_tx, entered) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let hook: mmap::OpenHook = Arc::new(move |p: &std::path::Path| {
            if p.ends_with("f0.mp4") {
                let _ = entered_tx.send(());
                let _ = release_rx.lock().unwrap().recv();
            }
        });
        *s.maps.as_ref().unwrap().open_hook.lock().unwrap() = Some(hook);
        let blocked = tokio::spawn({
            let s = s.clone();
            async move { s.read_range("f0.mp4", 0..16).await }
        });
        entered.recv_timeout(Duration::from_secs(30)).expect("the open of f0.mp4 started");
        // Read the other file from a thread of its own, so that a read stuck behind the
        // blocked open shows as a missing answer rather than a hung test.
        let (done_tx, done) = mpsc::channel();
        let other = s.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _ = done_tx.send(rt.block_on(other.read_range("f1.mp4", 100..116)));
        });
        let got = done.recv_timeout(Duration::from_secs(20));
        release.send(()).unwrap();
        let got = got.expect("reading f1.mp4 waited for the blocked open of f0.mp4").unwrap();
        assert!(got.iter().enumerate().all(|(o, &b)| b == pattern(1, 100 + o)));
        let first = blocked.await.unwrap().unwrap();
        assert!(first.iter().enumerate().all(|(o, &b)| b == pattern(0, o)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missed_fragments_are_remembered_for_a_window_of_bytes() {
        let key = |s: u64| -> FragmentKey { (Arc::from("f"), s, s + 100) };
        // A window of three 100-byte fragments: a fourth distinct miss pushes the first out.
        let mut m = Missed::new(300);
        assert!(!m.again(&key(0)));
        assert!(m.again(&key(0)), "back within the window");
        assert!(!m.again(&key(0)), "admitted once, then a new miss");
        for s in [100, 200, 300] {
            assert!(!m.again(&key(s)));
        }
        assert!(!m.again(&key(0)), "pushed out by 300 bytes of later reads");
        // Cycling over more than the window never admits anything.
        let mut m = Missed::new(300);
        for _ in 0..5 {
            for s in [0, 100, 200, 300] {
                assert!(!m.again(&key(s)));
            }
        }
        assert!(m.keys.len() <= 4 && m.order.len() <= 4);
        // Hits count: a fragment that comes back after 300 bytes of hits is not admitted.
        let mut m = Missed::new(300);
        assert!(!m.again(&key(0)));
        m.pass(300);
        assert!(!m.again(&key(0)), "pushed out by 300 bytes of hits");
        m.pass(200);
        assert!(m.again(&key(0)), "back after 200 bytes of hits and its own 100");
        // An entry's stale position does not forget a newer miss of the same fragment.
        let mut m = Missed::new(200);
        assert!(!m.again(&key(0)));
        assert!(m.again(&key(0)));
        assert!(!m.again(&key(0)));
        assert!(!m.again(&key(100)));
        assert!(m.again(&key(0)), "the newer miss of 0 is still within the window");
    }

    #[tokio::test]
    async fn remote_reads_of_a_version_carry_its_etag() {
        let mem = Arc::new(object_store::memory::InMemory::new());
        mem.put(&Path::from("m/x.mp4"), vec![1u8; 100].into()).await.unwrap();
        let s = Store::local(&std::env::temp_dir()).unwrap().with_route("vod", mem.clone()).unwrap().with_fragment_cache(1 << 20);
        let v1 = s.head("vod/m/x.mp4").await.unwrap();
        assert!(v1.e_tag.is_some());
        assert_eq!(s.read_fragment(&v1, 0..10).await.unwrap()[..], [1u8; 10]);
        // A remote fragment is cached at its first miss (each miss costs a request).
        assert_eq!(s.read_fragment(&v1, 20..30).await.unwrap()[..], [1u8; 10]);
        let hits = s.counters().fragment_hits.load(Ordering::Relaxed);
        assert!(s.read_fragment(&v1, 20..30).await.unwrap().try_into_mut().is_err());
        assert_eq!(s.counters().fragment_hits.load(Ordering::Relaxed), hits + 1);
        mem.put(&Path::from("m/x.mp4"), vec![2u8; 100].into()).await.unwrap();
        // Same size, same second: only the ETag tells the versions apart.
        assert!(matches!(s.read_version(&v1, 10..20).await, Err(Error::Changed(_))));
        let v2 = s.head("vod/m/x.mp4").await.unwrap();
        assert_eq!(s.read_fragment(&v2, 0..10).await.unwrap()[..], [2u8; 10]);
    }
}
