//! Assets as the origin serves them: listed from storage, each track file indexed with a
//! handful of ranged reads, and kept in byte-bounded caches. Manifests are generated at most
//! once per asset version and kept with it.
//!
//! Source bytes are read as the version that was indexed ([`Assets::read_source`]): a file
//! replaced in storage since makes the read fail instead of mixing two versions, drops the
//! file's index and the asset, and the request is tried once more against a fresh index.
//!
//! What one asset may cost is bounded (`[content_limits]`): the number of track files, the
//! memory of each file's index, and segment size and duration. An asset that fails to index
//! is remembered with its error and answered from memory, with a back-off that doubles on
//! each further failure, so a broken asset is not listed and indexed again on every request.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use moka::future::Cache;
use sealcast_package::asset::SourceFile;
use sealcast_package::index::IndexLimits;
use sealcast_package::text::{TextError, TextFormat, TextLimits, TextTrack};
use sealcast_package::{ism, Asset, FileIndex, IndexMethod, PackageOptions};
use sealcast_storage::{ObjectInfo, Store};

use crate::error::ApiError;
use crate::respond::Cached;

/// Most subtitle files one asset may hold.
const MAX_TEXT_FILES: usize = 32;

/// At most this many remembered missing paths bound the negative cache's memory.
const NEGATIVE_ENTRIES: u64 = 100_000;

/// Extensions of track files.
const TRACK_EXTS: [&str; 5] = ["mp4", "cmfv", "cmfa", "ismv", "isma"];

/// An asset ready to serve, with its lazily built manifests.
pub struct Loaded {
    /// Asset path under the storage root.
    pub path: String,
    /// The packaged view.
    pub asset: Asset,
    /// Identity of all its files (changes when any changes).
    pub identity: String,
    /// Per file name: storage metadata.
    pub files: HashMap<String, ObjectInfo>,
    /// File name of its server manifest (`.ism`), if it has one.
    pub ism_name: Option<String>,
    /// Newest modification time of its files.
    pub last_modified: SystemTime,
    /// `last_modified` as a header value.
    pub last_modified_header: http::HeaderValue,
    /// Cached manifests with their ETags, by kind and track.
    manifests: Vec<OnceLock<Arc<Cached>>>,
    /// Protection state under the asset's current policy (rebuilt when the policy changes).
    pub(crate) crypto: std::sync::Mutex<Option<Arc<crate::protection::AssetCrypto>>>,
    /// When it was built: its listing is trusted until this plus the asset TTL.
    built: Instant,
}

/// Which cached manifest.
#[derive(Debug, Clone, Copy)]
pub enum ManifestSlot {
    /// DASH MPD.
    Mpd,
    /// HLS multivariant (fMP4).
    Master,
    /// HLS multivariant (TS).
    MasterTs,
    /// Smooth Streaming client manifest.
    Smooth,
    /// HLS media playlist (fMP4) of track `i`.
    Media(usize),
    /// HLS media playlist (TS) of track `i`.
    MediaTs(usize),
    /// HLS I-frame playlist (fMP4) of track `i`.
    IFrames(usize),
    /// HLS I-frame playlist (TS) of track `i`.
    IFramesTs(usize),
}

impl ManifestSlot {
    /// Number of slots of an asset with `tracks` tracks.
    pub fn count(tracks: usize) -> usize {
        4 + 4 * tracks
    }

    /// Position in a table of [`ManifestSlot::count`] slots.
    pub fn index(self, tracks: usize) -> usize {
        match self {
            ManifestSlot::Mpd => 0,
            ManifestSlot::Master => 1,
            ManifestSlot::MasterTs => 2,
            ManifestSlot::Smooth => 3,
            ManifestSlot::Media(t) => 4 + t,
            ManifestSlot::MediaTs(t) => 4 + tracks + t,
            ManifestSlot::IFrames(t) => 4 + 2 * tracks + t,
            ManifestSlot::IFramesTs(t) => 4 + 3 * tracks + t,
        }
    }
}

impl Loaded {
    /// The manifest in `slot` and its ETag, built on first use.
    pub fn manifest(&self, slot: ManifestSlot, build: impl FnOnce(&Asset) -> String) -> Arc<Cached> {
        let i = slot.index(self.asset.tracks.len());
        self.manifests[i].get_or_init(|| Arc::new(Cached::new(Bytes::from(build(&self.asset)), crate::respond::etag(&self.identity, &format!("manifest/{i}"))))).clone()
    }

    /// Storage path of a file of this asset.
    pub fn file_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    fn weight(&self) -> u32 {
        let w: usize = self.files.len() * 256 + self.asset.tracks.iter().map(|t| t.segments.len() * 64 + 4096).sum::<usize>() + self.asset.texts.iter().map(|t| t.weight()).sum::<usize>();
        w.min(u32::MAX as usize) as u32
    }
}

/// The asset and index caches over one store.
pub struct Assets {
    store: Store,
    opts: PackageOptions,
    read_ahead: u64,
    indexes: Cache<String, Arc<FileIndex>>,
    assets: Cache<String, Arc<Loaded>>,
    /// The assets in `assets`, for the hit path (see [`Hot`]).
    hot: Arc<Hot>,
    /// Asset paths recently found missing (404), remembered briefly.
    missing: Option<Cache<String, ()>>,
    /// Memory budget of each file's index.
    index_limits: IndexLimits,
    /// Most track files one asset may hold.
    max_files: usize,
    /// Assets whose files could not be packaged, with their error and back-off.
    failed: Cache<String, Arc<Failed>>,
    /// First and longest back-off of a failed asset.
    retry: (Duration, Duration),
    /// Files already warned about as walked (see [`Assets::warn_walked`]).
    walked: Cache<String, ()>,
    /// Budgets of the index and asset caches, bytes.
    budgets: (u64, u64),
    /// Hit, miss, join and eviction counts of the index, asset and negative caches.
    stats: Arc<[crate::metrics::CacheCounters; 3]>,
}

/// Positions in [`Assets`]' cache counters.
const INDEX: usize = 0;
const ASSET: usize = 1;
const NEGATIVE: usize = 2;

/// A moka eviction listener counting evictions for size into `stats[which]`.
fn count_evictions<K, V>(stats: &Arc<[crate::metrics::CacheCounters; 3]>, which: usize) -> impl Fn(Arc<K>, V, moka::notification::RemovalCause) + Send + Sync + 'static {
    let stats = stats.clone();
    move |_, _, cause| {
        if cause == moka::notification::RemovalCause::Size {
            stats[which].evictions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The loaded assets by path, in front of the moka asset cache, which stays the owner: it
/// decides what is kept (budget, recency and frequency) and this map mirrors it. An entry
/// goes in when moka answers or fills the path, and comes out when moka drops the asset
/// (eviction listener) or the asset is invalidated; it is never used past its asset's TTL.
///
/// Why: a moka lookup (SipHash of the path, its concurrent map, a read record queued for
/// its policy, a clock read) cost about 1,800 instructions per request, the largest single
/// cost of a cached manifest after the HTTP stack (callgrind; benches/README.md). A read lock
/// and a foldhash lookup cost about a tenth. Moka still sees one hit in [`HOT_TOUCH`], so an
/// asset answered from here keeps its standing in moka's eviction policy.
struct Hot {
    map: std::sync::RwLock<HashMap<String, HotEntry, foldhash::fast::RandomState>>,
    /// The asset TTL.
    ttl: Duration,
    /// When entries past their TTL were last swept out.
    swept: std::sync::Mutex<Instant>,
}

struct HotEntry {
    loaded: Arc<Loaded>,
    /// Hits answered from here since moka last saw one.
    hits: std::sync::atomic::AtomicU32,
}

/// Every this many hits on one hot asset, one goes to moka too.
const HOT_TOUCH: u32 = 16;

/// What a hot lookup found.
enum HotHit {
    /// Answer with this.
    Fresh(Arc<Loaded>),
    /// Answer with this, and tell moka it was used.
    Touch(Arc<Loaded>),
    /// Not here, or past its TTL.
    Miss,
}

impl Hot {
    fn new(ttl: Duration) -> Self {
        Hot { map: Default::default(), ttl, swept: std::sync::Mutex::new(Instant::now()) }
    }

    fn get(&self, path: &str) -> HotHit {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let Some(e) = map.get(path) else { return HotHit::Miss };
        if e.loaded.built.elapsed() >= self.ttl {
            return HotHit::Miss;
        }
        let loaded = e.loaded.clone();
        if e.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 >= HOT_TOUCH {
            e.hits.store(0, std::sync::atomic::Ordering::Relaxed);
            return HotHit::Touch(loaded);
        }
        HotHit::Fresh(loaded)
    }

    /// Puts `loaded` in. Once per TTL, entries past theirs are swept out: moka's listener
    /// removes what moka drops, but an entry put back just as moka dropped it would otherwise
    /// stay until its path is asked for again.
    fn put(&self, loaded: &Arc<Loaded>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        match map.get(&loaded.path) {
            Some(e) if Arc::ptr_eq(&e.loaded, loaded) => {}
            _ => {
                map.insert(loaded.path.clone(), HotEntry { loaded: loaded.clone(), hits: Default::default() });
            }
        }
        let mut swept = self.swept.lock().unwrap_or_else(|e| e.into_inner());
        if swept.elapsed() >= self.ttl {
            *swept = Instant::now();
            map.retain(|_, e| e.loaded.built.elapsed() < self.ttl);
        }
    }

    /// Drops `path` if it holds `loaded` (what moka dropped), or whatever it holds (`None`).
    fn remove(&self, path: &str, loaded: Option<&Arc<Loaded>>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.get(path).is_some_and(|e| loaded.is_none_or(|l| Arc::ptr_eq(&e.loaded, l))) {
            map.remove(path);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// An asset that failed to load with a content error, and when to try it again.
struct Failed {
    error: ApiError,
    /// Consecutive failures.
    failures: u32,
    retry_at: Instant,
}

impl Assets {
    /// Caches with the given byte budgets; asset listings are trusted for `ttl`.
    pub fn new(store: Store, opts: PackageOptions, read_ahead: u64, index_bytes: u64, asset_bytes: u64, ttl: Duration) -> Self {
        let stats: Arc<[crate::metrics::CacheCounters; 3]> = Arc::default();
        let hot = Arc::new(Hot::new(ttl));
        let counted = count_evictions(&stats, ASSET);
        let mirrored = hot.clone();
        let dropped = move |path: Arc<String>, loaded: Arc<Loaded>, cause| {
            mirrored.remove(&path, Some(&loaded));
            counted(path, loaded, cause);
        };
        Assets {
            store,
            opts,
            read_ahead,
            indexes: Cache::builder().max_capacity(index_bytes).weigher(|_, v: &Arc<FileIndex>| v.weight().min(u32::MAX as usize) as u32).eviction_listener(count_evictions(&stats, INDEX)).build(),
            assets: Cache::builder().max_capacity(asset_bytes).weigher(|_, v: &Arc<Loaded>| v.weight()).time_to_live(ttl).eviction_listener(dropped).build(),
            hot,
            missing: None,
            index_limits: IndexLimits::default(),
            max_files: crate::config::ContentLimits::default().files_per_asset,
            failed: failed_cache(Duration::from_secs(60)),
            retry: (Duration::from_secs(1), Duration::from_secs(60)),
            walked: Cache::builder().max_capacity(10_000).build(),
            budgets: (index_bytes, asset_bytes),
            stats,
        }
    }

    /// Runs the caches' pending maintenance, so entry counts and sizes are current (scrapes).
    pub async fn sync_caches(&self) {
        self.indexes.run_pending_tasks().await;
        self.assets.run_pending_tasks().await;
        if let Some(m) = &self.missing {
            m.run_pending_tasks().await;
        }
        self.store.sync_fragment_cache();
    }

    /// The index, asset and negative caches as they stand (hit counts, entries, bytes).
    pub fn cache_states(&self) -> Vec<crate::metrics::CacheState> {
        use std::sync::atomic::Ordering::Relaxed;
        let state = |name, c: &crate::metrics::CacheCounters, entries, bytes, budget| crate::metrics::CacheState {
            name,
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            joins: c.joins.load(Relaxed),
            evictions: c.evictions.load(Relaxed),
            entries,
            bytes,
            budget,
        };
        let s = &self.stats;
        let mut v = vec![
            state("index", &s[INDEX], self.indexes.entry_count(), self.indexes.weighted_size(), self.budgets.0),
            state("asset", &s[ASSET], self.assets.entry_count(), self.assets.weighted_size(), self.budgets.1),
        ];
        if let Some(m) = &self.missing {
            v.push(state("negative", &s[NEGATIVE], m.entry_count(), m.entry_count(), NEGATIVE_ENTRIES));
        }
        v
    }

    /// Applies `[content_limits]`: the index budget per file, the file count per asset and
    /// the back-off of failed assets. (Segment caps travel in [`PackageOptions`].)
    pub fn with_limits(mut self, l: &crate::config::ContentLimits) -> Self {
        self.index_limits = IndexLimits { max_bytes: l.index_bytes_per_file };
        self.max_files = l.files_per_asset;
        self.retry = (Duration::from_millis(l.failed_retry_ms), Duration::from_millis(l.failed_retry_max_ms));
        self.failed = failed_cache(self.retry.1);
        self
    }

    /// Remembers unknown assets for `ttl` (zero: not at all), so a flood of requests for a
    /// missing asset costs one storage listing per `ttl` rather than one each. Only "not found"
    /// is remembered, never a storage fault.
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.missing = (!ttl.is_zero()).then(|| Cache::builder().max_capacity(NEGATIVE_ENTRIES).time_to_live(ttl).eviction_listener(count_evictions(&self.stats, NEGATIVE)).build());
        self
    }

    /// Keeps up to `bytes` of hot source fragments (segment source ranges) in memory; 0: none.
    /// See [`Store::with_fragment_cache`].
    pub fn with_fragment_cache(mut self, bytes: u64) -> Self {
        self.store = self.store.with_fragment_cache(bytes);
        self
    }

    /// Reads `range` of source file `file` of `loaded` (a segment's fragments), through the hot
    /// fragment cache, as exactly the version `loaded` was built from. If storage holds another
    /// version now, the file's index and the asset are dropped (unless already rebuilt) and
    /// [`ApiError::SourceChanged`] comes back: the caller retries once against the fresh
    /// index, and a second change answers 503.
    ///
    /// A cold fragment the cache does not take comes in the request's own buffer, for an
    /// encryptor to work where it lies ([`Store::read_fragment`]).
    pub async fn read_source(&self, loaded: &Loaded, file: &str, range: std::ops::Range<u64>) -> Result<Bytes, ApiError> {
        let info = loaded.files.get(file).ok_or_else(|| ApiError::NotFound(loaded.file_path(file)))?;
        match self.store.read_fragment(info, range).await {
            Ok(b) => Ok(b),
            Err(e) => Err(self.failed(loaded, info, e).await),
        }
    }

    /// Source file `file` of `loaded` opened for sending ranges of it as they lie
    /// ([`Store::open_local`]): `None` unless it is a local file stored clear (and the kernel
    /// can tell what is cached). A file that changed since it was indexed is handled as
    /// [`Self::read_source`] handles it.
    pub async fn open_source(&self, loaded: &Loaded, file: &str) -> Result<Option<sealcast_storage::LocalFile>, ApiError> {
        let info = loaded.files.get(file).ok_or_else(|| ApiError::NotFound(loaded.file_path(file)))?;
        match self.store.open_local(info).await {
            Ok(f) => Ok(f),
            Err(e) => Err(self.failed(loaded, info, e).await),
        }
    }

    /// The error for a failed read of `info`; a source that changed since it was indexed has
    /// its index and the asset dropped first (unless already rebuilt).
    async fn failed(&self, loaded: &Loaded, info: &sealcast_storage::ObjectInfo, e: sealcast_storage::Error) -> ApiError {
        let sealcast_storage::Error::Changed(path) = e else { return e.into() };
        tracing::info!(path = %path, "source changed since it was indexed; indexing again");
        self.indexes.invalidate(&info.identity()).await;
        if self.assets.get(&loaded.path).await.is_some_and(|cur| cur.identity == loaded.identity) {
            self.assets.invalidate(&loaded.path).await;
            self.hot.remove(&loaded.path, None);
        }
        ApiError::SourceChanged(path)
    }

    /// The bytes of `span` of source file `file` for a segment, fetched by `reads` (from
    /// [`sealcast_package::AssetTrack::source_reads`], inside `span`): one read is the buffer
    /// itself; several run concurrently and are placed at their offsets in a buffer covering
    /// the span (see [`sealcast_package::progressive::assemble`]).
    pub async fn read_segment_source(&self, loaded: &Loaded, file: &str, span: std::ops::Range<u64>, reads: &[std::ops::Range<u64>]) -> Result<Bytes, ApiError> {
        if let [only] = reads {
            if *only == span {
                return self.read_source(loaded, file, span).await;
            }
        }
        let pieces = futures::future::try_join_all(reads.iter().map(|r| async move { self.read_source(loaded, file, r.clone()).await.map(|b| (r.start, b)) })).await?;
        sealcast_package::progressive::assemble(span, pieces).map_err(|e| ApiError::Content { asset: loaded.path.clone(), detail: format!("{file}: {e}") })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The asset at `path`. Concurrent misses share one build; failures are not cached.
    pub async fn get(&self, path: &str) -> Result<Arc<Loaded>, ApiError> {
        match self.hot.get(path) {
            HotHit::Fresh(hit) => {
                self.stats[ASSET].lookup(true);
                return Ok(hit);
            }
            HotHit::Touch(hit) => {
                self.stats[ASSET].lookup(true);
                // For moka's policy only: the hot entry answers either way.
                let _ = self.assets.get(path).await;
                return Ok(hit);
            }
            HotHit::Miss => {}
        }
        if let Some(hit) = self.assets.get(path).await {
            self.stats[ASSET].lookup(true);
            self.hot.put(&hit);
            return Ok(hit);
        }
        // The miss path holds the whole load (indexing, storage reads): some 26 KB of future.
        // Boxed, so that every request's future (which hyper moves into a box, copying all of
        // it) does not carry it; only a miss pays for the box.
        Box::pin(self.get_missed(path)).await
    }

    async fn get_missed(&self, path: &str) -> Result<Arc<Loaded>, ApiError> {
        self.stats[ASSET].lookup(false);
        if let Some(m) = &self.missing {
            let known = m.contains_key(path);
            self.stats[NEGATIVE].lookup(known);
            if known {
                return Err(ApiError::NotFound(format!("asset '{path}'")));
            }
        }
        let before = self.failed.get(path).await;
        if let Some(f) = &before {
            if Instant::now() < f.retry_at {
                return Err(f.error.clone());
            }
        }
        let ran = std::sync::atomic::AtomicBool::new(false);
        let load = async {
            ran.store(true, std::sync::atomic::Ordering::Relaxed);
            self.load(path).await
        };
        let r = self.assets.try_get_with(path.to_string(), load).await.map_err(|e: Arc<ApiError>| (*e).clone());
        if let Ok(loaded) = &r {
            self.hot.put(loaded);
        }
        if !ran.load(std::sync::atomic::Ordering::Relaxed) {
            // Another request's load answered this one (or filled the cache meanwhile).
            self.stats[ASSET].joins.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match &r {
            Err(ApiError::NotFound(_)) => {
                if let Some(m) = &self.missing {
                    m.insert(path.to_string(), ()).await;
                }
            }
            // Only the content's fault is remembered: a storage fault is the breaker's business
            // and may clear any moment.
            Err(e @ ApiError::Content { .. }) => {
                let failures = before.as_ref().map_or(1, |f| f.failures.saturating_add(1));
                let wait = self.retry.0.saturating_mul(1u32 << (failures - 1).min(20)).min(self.retry.1);
                tracing::warn!(asset = path, failures, retry_in_ms = wait.as_millis() as u64, error = %e, "asset cannot be packaged; remembering the error");
                self.failed.insert(path.to_string(), Arc::new(Failed { error: e.clone(), failures, retry_at: Instant::now() + wait })).await;
            }
            Ok(_) if before.is_some() => self.failed.invalidate(path).await,
            _ => {}
        }
        r
    }

    async fn load(&self, path: &str) -> Result<Arc<Loaded>, ApiError> {
        let listing = self.store.list_dir(path).await.map_err(ApiError::from)?;
        let prefix = format!("{path}/");
        let mut tracks = Vec::new();
        let mut ism_file = None;
        // Sidecar indexes by the name of the file they index; never served, never a track.
        let mut sidecars = HashMap::new();
        let mut text_files = Vec::new();
        for o in listing {
            let Some(name) = o.path.strip_prefix(&prefix).map(str::to_string) else {
                continue;
            };
            if let Some(source) = name.strip_suffix(sealcast_package::sidecar::SUFFIX) {
                sidecars.insert(source.to_string(), o);
                continue;
            }
            let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
            if TRACK_EXTS.contains(&ext.as_str()) {
                tracks.push((name, o));
            } else if TextFormat::of_file(&name).is_some() {
                text_files.push((name, o));
            } else if ext == "ism" && ism_file.is_none() {
                ism_file = Some(o);
            }
        }
        if tracks.is_empty() {
            return Err(ApiError::NotFound(format!("asset '{path}'")));
        }
        let content = |detail: String| ApiError::Content { asset: path.to_string(), detail };
        // Refused before any file is read: indexing costs a few reads per file.
        if tracks.len() > self.max_files {
            return Err(content(format!("{} track files, more than the {} an asset may hold (content_limits.files_per_asset)", tracks.len(), self.max_files)));
        }
        if text_files.len() > MAX_TEXT_FILES {
            return Err(content(format!("{} subtitle files, more than the {MAX_TEXT_FILES} an asset may hold", text_files.len())));
        }
        let mut ism_texts = Vec::new();
        let ism = match &ism_file {
            Some(o) => {
                if o.size > 1 << 20 {
                    return Err(content("server manifest larger than 1 MiB".into()));
                }
                let b = self.store.read_range(&o.path, 0..o.size).await.map_err(ApiError::from)?;
                ism_texts = sealcast_package::text::ism_text_streams(&b);
                Some(ism::parse(&b).map_err(|e| content(e.to_string()))?)
            }
            None => None,
        };
        let mut files = Vec::with_capacity(tracks.len());
        for (name, o) in &tracks {
            let index = self.index(o, sidecars.get(name)).await.map_err(|e| match e {
                ApiError::Content { detail, .. } => content(format!("{name}: {detail}")),
                other => other,
            })?;
            files.push(SourceFile { name: name.clone(), index });
        }
        let asset = Asset::build(&files, ism.as_deref(), self.opts).map_err(|e| content(e.to_string()))?;
        let asset = if text_files.is_empty() { asset } else { asset.with_texts(self.texts(path, &text_files, &ism_texts).await?) };
        let mut identity = String::new();
        let mut last_modified = UNIX_EPOCH;
        for (_, o) in &tracks {
            identity.push_str(&o.identity());
            identity.push('\n');
            last_modified = last_modified.max(o.last_modified);
        }
        if let Some(o) = &ism_file {
            identity.push_str(&o.identity());
            last_modified = last_modified.max(o.last_modified);
        }
        // Only assets with subtitles add to their identity (the others' ETags stay as they were).
        for (_, o) in &text_files {
            identity.push('\n');
            identity.push_str(&o.identity());
            last_modified = last_modified.max(o.last_modified);
        }
        let slots = ManifestSlot::count(asset.tracks.len());
        Ok(Arc::new(Loaded {
            path: path.to_string(),
            asset,
            identity,
            files: tracks.into_iter().chain(text_files).collect(),
            ism_name: ism_file.as_ref().and_then(|o| o.path.rsplit('/').next().map(str::to_string)),
            last_modified,
            last_modified_header: crate::respond::http_date(last_modified),
            manifests: (0..slots).map(|_| OnceLock::new()).collect(),
            crypto: std::sync::Mutex::new(None),
            built: Instant::now(),
        }))
    }

    /// The subtitle tracks of an asset: each file read whole (within [`TextLimits`]) and
    /// parsed. A file that is too large or does not parse becomes a track that answers its
    /// error (500 naming the file) and is left out of manifests, so one bad subtitle file
    /// does not take the asset's audio and video down; a storage fault fails the load.
    async fn texts(&self, path: &str, files: &[(String, ObjectInfo)], ism: &[(String, Option<String>)]) -> Result<Vec<TextTrack>, ApiError> {
        let limits = TextLimits::default();
        let mut out = Vec::with_capacity(files.len());
        for (name, o) in files {
            let lang = ism.iter().find(|(src, _)| src == name).and_then(|(_, l)| l.as_deref());
            let track = if o.size > limits.max_bytes {
                // Refused by its listed size, never read.
                TextTrack::new(name, &[], lang, limits).map(|mut t| {
                    t.doc = Err(TextError::Limit(format!("{} bytes, more than the {} a subtitle file may hold", o.size, limits.max_bytes)));
                    t
                })
            } else {
                let bytes = self.store.read_range(&o.path, 0..o.size).await.map_err(ApiError::from)?;
                TextTrack::new(name, &bytes, lang, limits)
            };
            if let Some(t) = track {
                if let Err(e) = &t.doc {
                    tracing::warn!(asset = path, file = %name, error = %e, "subtitle file cannot be served; left out of manifests");
                }
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The index of one file, keyed by its identity so a changed file is indexed again: from
    /// its sidecar `sidecar` when it has one for this version of the file (one GET, see
    /// [`crate::sidecar`]), else from the file itself (`sidx`, `mfra`, `moov`, or the walk).
    async fn index(&self, o: &ObjectInfo, sidecar: Option<&ObjectInfo>) -> Result<Arc<FileIndex>, ApiError> {
        let key = o.identity();
        if let Some(hit) = self.indexes.get(&key).await {
            self.stats[INDEX].lookup(true);
            return Ok(hit);
        }
        self.stats[INDEX].lookup(false);
        self.indexes
            .try_get_with(key, async {
                // A storage-encrypted file has no sidecar of ours (they are written for clear
                // files only): one next to it is not trusted.
                if let Some(sc) = sidecar.filter(|_| self.store.encryption_key_id(&o.path).is_none()) {
                    if let Some(fi) = crate::sidecar::read(&self.store, o, sc, self.index_limits).await? {
                        return Ok(Arc::new(fi));
                    }
                }
                let (fi, _) = crate::sidecar::index_object(&self.store, o, self.read_ahead, self.index_limits).await?;
                if let Some(note) = &fi.note {
                    tracing::info!(file = %o.path, "{note}");
                }
                if fi.method == IndexMethod::Walk && fi.tracks.iter().all(|t| t.samples.is_none()) {
                    self.warn_walked(o, &fi).await;
                }
                Ok(Arc::new(fi))
            })
            .await
            .map_err(|e: Arc<ApiError>| (*e).clone())
    }

    /// Says once per file (per process, up to 10 000 files) that it was indexed by walking
    /// its fragments, and how to avoid that.
    async fn warn_walked(&self, o: &ObjectInfo, fi: &FileIndex) {
        if self.walked.contains_key(&o.path) {
            return;
        }
        self.walked.insert(o.path.clone(), ()).await;
        let fragments: usize = fi.tracks.iter().map(|t| t.fragments.len()).sum();
        tracing::warn!(
            file = %o.path,
            reads = fi.reads,
            fragments,
            "indexed by walking every fragment (no sidx, no mfra, no sidecar index); run `sealcast index {}` to write a sidecar index so a cold start reads it in one request",
            o.path
        );
    }
}

/// The cache of failed assets: entries outlive the longest back-off (so the failure count
/// keeps growing while an asset stays broken), and their number is bounded.
fn failed_cache(max_backoff: Duration) -> Cache<String, Arc<Failed>> {
    Cache::builder().max_capacity(10_000).time_to_live(max_backoff.saturating_mul(2).max(Duration::from_secs(1))).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets(ttl: Duration) -> Assets {
        let store = Store::local(&sealcast_testkit::fixtures_dir()).unwrap();
        Assets::new(store, PackageOptions::default(), 65536, 64 << 20, 64 << 20, ttl)
    }

    #[tokio::test]
    async fn hot_assets_mirror_the_asset_cache() {
        let a = assets(Duration::from_secs(60));
        let first = a.get("demo").await.unwrap();
        assert_eq!(a.hot.len(), 1);
        // Hits, hot or through moka every HOT_TOUCH, are the same asset and counted as hits.
        for _ in 0..2 * HOT_TOUCH {
            assert!(Arc::ptr_eq(&first, &a.get("demo").await.unwrap()));
        }
        assert_eq!(a.stats[ASSET].hits.load(std::sync::atomic::Ordering::Relaxed), 2 * HOT_TOUCH as u64);
        // Dropped from moka (as by eviction or invalidation): gone from the hot map too, and
        // the next request builds the asset again.
        a.assets.invalidate("demo").await;
        a.assets.run_pending_tasks().await;
        assert_eq!(a.hot.len(), 0);
        let again = a.get("demo").await.unwrap();
        assert!(!Arc::ptr_eq(&first, &again));
        // An entry moka no longer holds is only removed if it is the one moka dropped.
        a.hot.remove("demo", Some(&first));
        assert_eq!(a.hot.len(), 1);
        a.hot.remove("demo", None);
        assert_eq!(a.hot.len(), 0);
    }

    #[tokio::test]
    async fn hot_assets_are_not_used_past_their_ttl() {
        let ttl = Duration::from_millis(200);
        let a = assets(ttl);
        let first = a.get("demo").await.unwrap();
        // The wait is for the TTL to pass, not a measurement.
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        assert!(matches!(a.hot.get("demo"), HotHit::Miss));
        let again = a.get("demo").await.unwrap();
        assert!(!Arc::ptr_eq(&first, &again), "a listing past its TTL is read again");
        assert!(Arc::ptr_eq(&again, &a.get("demo").await.unwrap()));
    }
}
